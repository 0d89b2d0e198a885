"""A bounded, seeded schemathesis pass over the served OpenAPI document (issue 18, "Fuzzing
in CI"): every operation of a real ``lienthong serve`` on the demo data, positive and negative
cases, with the demo's real ids drawn often enough to get past the 404s.

Checks: no 5xx, status codes and content types the document lists, bodies that match their
schemas, and negative data refused. Budget: ``MAX_EXAMPLES`` per operation, about two minutes on
the 2-core CI machine (the run's report is printed when it fails; ``--seed`` reproduces it).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from demo_axis import RECIPIENT, DemoAxis, serve_log

ST = Path(sys.executable).parent / "st"
SEED = 18
MAX_EXAMPLES = 12
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
]


def _config(axis: DemoAxis, path: Path) -> Path:
    """schemathesis.toml: the demo's ids as dictionaries bound to the path parameters."""
    ids = axis.ids
    dictionaries = {
        "document": [ids["document"]],
        "delivery": [ids["delivery"]],
        "session": [ids["signing_session"]],
        "dossier": [ids["dossier"]],
        "attachment": [0],
        "download_token": [ids["download_token"]],
        "upload_token": [ids["upload_token"]],
    }
    lines = [
        f"[dictionaries.{name}]\nvalues = {json.dumps(values)}\n"
        for name, values in dictionaries.items()
    ]
    regex, name = "include-path-regex", "include-name"
    doc = {"path.id": "document", "path.n": "attachment"}
    files = "/api/v1/signing-files/{id}"
    bindings: list[tuple[str, str, dict[str, str]]] = [
        (regex, r"^/api/v1/(documents|archive)/\{id\}", doc),
        (regex, r"^/api/v1/inbox/\{delivery_id\}", {"path.delivery_id": "delivery"}),
        (regex, r"^/api/v1/signing-sessions/\{id\}", {"path.id": "session"}),
        (name, f"GET {files}", {"path.id": "session", "query.token": "download_token"}),
        (name, f"POST {files}", {"path.id": "session", "query.token": "upload_token"}),
        (regex, r"^/api/v1/(public/)?dossiers/\{code\}", {"path.code": "dossier"}),
    ]
    for selector, value, params in bindings:
        lines.append(f"[[operations]]\n{selector} = {json.dumps(value)}\n")
        lines.append("[operations.parameters]")
        for key, dictionary in params.items():
            lines.append(f'"{key}" = {{ dictionary = "{dictionary}", probability = 0.7 }}')
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def st_run(axis: DemoAxis, work: Path, token: str, *extra: str) -> str:
    """One bounded, seeded ``st run`` against the served document; its output (asserted 0)."""
    config = _config(axis, work / "schemathesis.toml")
    result = subprocess.run(
        [str(ST), "--config-file", str(config), "run", axis.url + "/api/v1/openapi.json",
         "--header", f"Authorization: Bearer {token}",
         "--checks", ",".join(CHECKS), "--phases", "examples,coverage,fuzzing",
         "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "2",
         "--no-shrink", "--no-color", "--request-timeout", "60", "--generation-database", "none",
         "--report", "junit", "--report-dir", str(work / "report"), *extra],
        cwd=work, capture_output=True, text=True, encoding="utf-8", timeout=600, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    print(output[-6000:])  # the summary, shown with pytest -s or on failure
    assert result.returncode == 0, output[-20000:]
    return output


def test_schemathesis_finds_nothing_on_the_served_demo(demo_axis: DemoAxis, tmp_path: Path) -> None:
    output = st_run(demo_axis, tmp_path, demo_axis.tokens[RECIPIENT])
    # every operation of the document was run, none skipped for want of a schema
    summary = re.search(r"API Operations:\s+Selected: (\d+)/(\d+)\s+Tested: (\d+)", output)
    assert summary is not None, output[-3000:]
    selected, total, tested = map(int, summary.groups())
    assert selected == total == tested, output[-3000:]
    # the demo's ids were used: requests reached the real document, session and dossier
    log = serve_log(demo_axis)
    for name in ("document", "signing_session", "dossier"):
        hits = log.count(demo_axis.ids[name])
        print(name, hits)
        assert hits > 5, (name, hits)
    # the plugin's JWTs opened its routes: answers past authentication, for each method
    session = demo_axis.ids["signing_session"]
    for method in ("GET", "POST"):
        past_auth = re.findall(
            rf"method={method} path=/api/v1/signing-files/{session} status=(?!401)\d+", log
        )
        assert past_auth, method


def test_schemathesis_finds_nothing_on_the_admin_operations(
    demo_axis: DemoAxis, tmp_path: Path
) -> None:
    """The audit log answers 404 to an agency token: fuzzed again with an admin's."""
    output = st_run(demo_axis, tmp_path, demo_axis.admin_token, "--include-path", "/api/v1/audit")
    assert re.search(r"Selected: 1/\d+\s+Tested: 1", output), output[-3000:]
    assert re.search(r"method=GET path=/api/v1/audit status=200", serve_log(demo_axis))
