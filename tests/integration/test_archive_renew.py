"""Long-term validation upkeep: `lienthong archive renew` and the server's renewal job.

What the test PKI cannot show (its TSA certificate lives until 2045) a variant of it can: the
same certs/pki.yml, but the TSA ``tsa`` that timestamps the original expires THREE DAYS from
now, and a second TSA ``tsa2`` (valid until 2045, standing in for the same authority after its
key roll-over) is the ``[tsa] url`` of the axis. A PDF is signed at B-LTA by an officer (a PEM
key of the variant PKI through pyHanko's SimpleSigner: the key type is not what is tested here),
sent through the API as a document attachment, and renewed.

What the simulated-future check proves, honestly: pyHanko's
``simulate_future_ades_lta_validation(sig, spec, T, current_reference_time=R)`` grants a proof
of existence at R to everything in the file and assumes the newest timestamp's certificate is
not revoked at T, then runs the EN 319 102-1 LTA algorithm at T offline. With T = 30 days after
the first TSA certificate expired and R = one day before T (the first moment an archive that
did NOT renew in time could add a proof), the renewed file PASSES and the original does not
(NO_POE). With R = now both pass: the simulation's premise is that someone renews now, which
is exactly what the renewal did.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fixtures_pki
import pytest
import yaml
from axis_client import NGHE_AN, VPCP, Axis, document
from fixtures_pki import minimal_pdf

from server.app.lifetimes import RENEWER
from server.cli import main as lienthong
from server.http.appkeys import DATABASE, EXCHANGE, OBJECTS
from server.runtime.config import Config, load_config
from server.signatures.renewal import Renewer, renew_loop
from signing import devpki
from signing.ltv import inspect_protection
from signing.sign import B_LTA, SigningServices, async_sign_pdf

TSA_DAYS = 3


def _variant_definition(target: Path) -> Path:
    """certs/pki.yml with a short-lived ``tsa`` and a long-lived ``tsa2`` (see module doc)."""
    definition = yaml.safe_load(devpki.DEFINITION_PATH.read_text(encoding="utf-8"))
    arch = definition["pki-architectures"][devpki.ARCH_LABEL]
    definition["keysets"][devpki.ARCH_LABEL]["keys"]["tsa2"] = {"path": "tsa2.key.pem"}
    arch["entities"]["tsa2"] = {
        "organization-name": "Liên Thông Test PKI",
        "common-name": "Test Time Stamping Authority (new key)",
    }
    tsa = arch["certs"]["tsa"]
    arch["certs"]["tsa2"] = {**yaml.safe_load(yaml.safe_dump(tsa)), "subject": "tsa2"}
    now = datetime.now(UTC)
    tsa["validity"] = {
        "valid-from": (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S+0000"),
        "valid-to": (now + timedelta(days=TSA_DAYS)).strftime("%Y-%m-%dT%H:%M:%S+0000"),
    }
    arch["services"]["time-stamping"]["tsa2"] = {"signing-key": "tsa2", "signing-cert": "tsa2"}
    path = target / "pki-short-tsa.yml"
    path.write_text(yaml.safe_dump(definition, allow_unicode=True, sort_keys=False), "utf-8")
    return path


@pytest.fixture(scope="module")
def short_pki(tmp_path_factory: pytest.TempPathFactory) -> Any:
    base = tmp_path_factory.mktemp("short-tsa-pki")
    pki = devpki.generate(
        base / "pki", port=fixtures_pki.free_port(), definition=_variant_definition(base)
    )
    with devpki.PkiServer(pki):
        yield pki


def _tsa2_url(pki: devpki.DevPki) -> str:
    return f"{pki.url_prefix}/{devpki.ARCH_LABEL}/tsa/tsa2"


def _env(pki: devpki.DevPki) -> dict[str, str]:
    return {
        "LIENTHONG_SERVER_MAX_BODY_BYTES": str(1024 * 1024),
        "LIENTHONG_SERVER_LOG_JSON": "0",
        "LIENTHONG_TSA_URL": _tsa2_url(pki),
        "LIENTHONG_SIGNING_TRUST_DIR": str(pki.directory / "trust"),
    }


@pytest.fixture
def axis_config(tmp_path: Path, short_pki: devpki.DevPki) -> Config:
    """The axis of axis_client.py, with tsa2 as its TSA and the variant root as its trust."""
    return load_config(env=_env(short_pki), data_dir=tmp_path / "data")


async def _signed_lta(pki: devpki.DevPki, tmp_path: Path) -> bytes:
    from pyhanko.sign.signers import SimpleSigner

    signer = SimpleSigner.load(
        str(pki.key_path("officer")),
        str(pki.cert_path("officer")),
        ca_chain_files=(str(pki.cert_path("gov")),),
    )
    services = SigningServices(
        trust_roots=(pki.root_cert,), tsa_url=pki.tsa_url, other_certs=(pki.cert("gov"),)
    )
    source, out = tmp_path / "in.pdf", tmp_path / "lta.pdf"
    source.write_bytes(minimal_pdf(text="Quyet dinh luu tru"))
    try:
        await services.offload(async_sign_pdf(source, out, signer, level=B_LTA, services=services))
    finally:
        await asyncio.to_thread(services.close)
    return out.read_bytes()


async def _simulate(pki: devpki.DevPki, data: bytes, future: datetime, reference: datetime) -> Any:
    """pyHanko's simulated future AdES-LTA validation of the file's one signature."""
    from io import BytesIO

    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.ades import simulate_future_ades_lta_validation
    from pyhanko.sign.validation.policy_decl import (
        PdfSignatureValidationSpec,
        SignatureValidationSpec,
    )
    from pyhanko_certvalidator.context import CertValidationPolicySpec
    from pyhanko_certvalidator.policy_decl import (
        CertRevTrustPolicy,
        RevocationCheckingPolicy,
        RevocationCheckingRule,
    )
    from pyhanko_certvalidator.registry import SimpleTrustManager

    rule = RevocationCheckingRule.CRL_OR_OCSP_REQUIRED
    spec = PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=CertValidationPolicySpec(
                trust_manager=SimpleTrustManager.build(trust_roots=[pki.root_cert]),
                revinfo_policy=CertRevTrustPolicy(
                    RevocationCheckingPolicy(
                        ee_certificate_rule=rule, intermediate_ca_cert_rule=rule
                    )
                ),
            )
        )
    )
    reader = PdfFileReader(BytesIO(data))
    (signature,) = reader.embedded_regular_signatures
    result = await simulate_future_ades_lta_validation(
        signature, spec, future, current_reference_time=reference
    )
    return result.ades_subindic


def _rows(config: Config, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(config.db_path)
    try:
        return list(conn.execute(sql).fetchall())
    finally:
        conn.close()


def _objects(config: Config) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in config.objects_dir.rglob("*") if p.is_file()}


async def _cli(*argv: str) -> int:
    # main() runs asyncio.run: give it a thread of its own, away from the test's loop.
    return await asyncio.to_thread(lienthong, list(argv))


async def test_renew_adds_a_version_that_outlives_the_first_tsa(
    axis: Axis,
    short_pki: devpki.DevPki,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pki, config = short_pki, axis.config
    original = await _signed_lta(pki, tmp_path)
    before = inspect_protection(tmp_path / "lta.pdf", [pki.root_cert])
    assert before is not None and before.document_timestamps == 1
    tsa_expiry = pki.cert("tsa")["tbs_certificate"]["validity"]["not_after"].native
    assert before.expires_at == tsa_expiry  # the short-lived TSA is what the file rests on

    receipt = await axis.send_ok(
        VPCP, document(to=[NGHE_AN], attachments=[("quyet-dinh.pdf", "application/pdf", original)])
    )
    doc_id = receipt["id"]
    stored_before = _objects(config)
    for key, value in _env(pki).items():
        monkeypatch.setenv(key, value)
    data_dir = str(config.storage.data_dir)

    # Not due within 1 day (the TSA certificate still has 3): nothing is added.
    assert await _cli("archive", "renew", "--within-days", "1", "--data-dir", data_dir) == 0
    assert "0 renewed, 1 not due within 1 days" in capsys.readouterr().out
    assert _rows(config, "SELECT count(*) FROM attachment_renewals") == [(0,)]

    # Due within 30 days: one renewal, a new object; every stored object is byte-identical.
    assert await _cli("archive", "renew", "--within-days", "30", "--data-dir", data_dir) == 0
    out = capsys.readouterr().out
    assert f"renewed {doc_id} attachment 0" in out, out
    [(renewed_sha, base_sha, index, version, expires)] = _rows(
        config,
        "SELECT sha256, base_sha256, attachment_index, version_id, expires_at "
        "FROM attachment_renewals",
    )
    assert (index, version) == (0, None)
    stored_after = _objects(config)
    assert {k: stored_after[k] for k in stored_before} == stored_before
    renewed = stored_after[renewed_sha]
    assert renewed[: len(original)] == original  # an incremental update of the original
    import hashlib

    assert base_sha == hashlib.sha256(original).hexdigest()
    assert expires.startswith("2045-01-01")  # now resting on tsa2
    actions = _rows(config, "SELECT action, objects FROM audit_log WHERE action = 'archive.renew'")
    assert len(actions) == 1 and doc_id in actions[0][1]

    # Idempotent: run again with the same window, then with a window reaching past 2045 (a
    # renewal by the same TSA would not extend anything): no second renewal either time.
    assert await _cli("archive", "renew", "--within-days", "30", "--data-dir", data_dir) == 0
    assert "0 renewed" in capsys.readouterr().out
    assert await _cli("archive", "renew", "--within-days", "12000", "--data-dir", data_dir) == 0
    out = capsys.readouterr().out
    assert "0 renewed" in out and "1 not extendable" in out, out
    assert _rows(config, "SELECT count(*) FROM attachment_renewals") == [(1,)]

    # Simulated future: 30 days after the first TSA certificate expired.
    from pyhanko.sign.validation.ades import AdESIndeterminate, AdESPassed

    future = tsa_expiry + timedelta(days=30)
    late = future - timedelta(days=1)
    assert await _simulate(pki, renewed, future, late) == AdESPassed.OK
    assert await _simulate(pki, original, future, late) == AdESIndeterminate.NO_POE
    now = datetime.now(UTC)
    assert await _simulate(pki, renewed, future, now) == AdESPassed.OK
    assert await _simulate(pki, original, future, now) == AdESPassed.OK  # if renewed now


async def test_server_job_renews_on_its_interval(axis: Axis, short_pki: devpki.DevPki) -> None:
    """The app's renewer (cleanup_ctx) and the loop the server runs every interval: a due
    attachment is renewed without anyone asking (interval shortened to 50 ms here)."""
    app = axis.client.app
    assert isinstance(app[RENEWER], Renewer)
    original = await _signed_lta(short_pki, Path(axis.config.storage.data_dir))
    receipt = await axis.send_ok(
        VPCP, document(to=[NGHE_AN], attachments=[("cv.pdf", "application/pdf", original)])
    )
    renewer = Renewer(axis.config, app[DATABASE], app[OBJECTS], app[EXCHANGE])
    task = asyncio.create_task(renew_loop(renewer, 30, 0.05))
    try:
        for _ in range(600):
            await asyncio.sleep(0.1)
            rows = _rows(axis.config, "SELECT document_id FROM attachment_renewals")
            if rows:
                break
        assert rows == [(receipt["id"],)]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await renewer.aclose()
