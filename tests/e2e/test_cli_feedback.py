"""``lienthong feedback`` through the installed console script against a real ``lienthong
serve`` with the demo data: the demo categories, a category added with an Open311 service
definition (a bad one refused in one line), and a feedback the province's office enters,
classifies and forwards over the axis to the district, which answers it; the office publishes
the answer and the public list shows it. ``serve --workers 2``: concurrent intakes spread over
two processes take the day's numbers without gap or repeat."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from server.cli.http_client import AxisClient
from tests.e2e.test_cli_client import LIENTHONG, Axis, start_axis, stop_axis

TINH, HUYEN = "TOKEN_H41", "TOKEN_31_H41"  # UBND tỉnh Nghệ An, UBND huyện Nam Đàn


@pytest.fixture(scope="module")
def axis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Axis]:
    running = start_axis(tmp_path_factory.mktemp("axis"), "--workers", "2")
    yield running
    stop_axis(running)


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LIENTHONG), "feedback", *argv],
        capture_output=True, text=True, encoding="utf-8", timeout=60, check=False,
    )  # fmt: skip


def ok(*argv: str) -> str:
    done = run(*argv)
    assert done.returncode == 0, done.stderr
    return done.stdout


def client_args(axis: Axis, token_var: str) -> list[str]:
    return ["--server", axis.url, "--token", axis.tokens[token_var]]


def eventually(check: Callable[[], Any], seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_categories_seeded_added_and_refused(axis: Axis, tmp_path: Path) -> None:
    local = ["--data-dir", str(axis.data)]
    listed = ok("category", "list", *local)
    for code in ("duong-hu-hong", "chieu-sang", "ve-sinh-moi-truong", "thu-tuc-hanh-chinh"):
        assert code in listed
    assert "thai-do-can-bo" in listed
    definition = tmp_path / "cay-xanh.json"
    definition.write_text(
        json.dumps(
            {
                "attributes": [
                    {"code": "loai-cay", "datatype": "string", "description": "Loại cây"},
                ]
            }
        ),
        "utf-8",
    )
    out = ok(
        "category", "add", "cay-xanh", "--name", "Cây xanh đô thị", "--agency", "000.00.31.H41",
        "--keywords", "cây,đổ", "--attributes", str(definition), *local,
    )  # fmt: skip
    assert out.startswith("Added category cay-xanh")
    definition.write_text('{"attributes": [{"code": "x", "datatype": "colour"}]}', "utf-8")
    bad = run("category", "add", "cay-2", "--name", "X", "--agency", "000.00.31.H41",
              "--attributes", str(definition), *local)  # fmt: skip
    assert bad.returncode == 1 and "attributes[0].datatype" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


def test_classify_forward_answer_publish(axis: Axis) -> None:
    office = AxisClient(axis.url, axis.tokens[TINH])
    made = office.request(
        "POST",
        "/api/v1/feedback",
        json_body={
            "category": "duong-hu-hong",
            "title": "Ổ gà trước chợ Sa Nam",
            "content": "Ổ gà sâu, nguy hiểm.",
            "address": "Chợ Sa Nam, Nam Đàn",
            "name": "Trần Thị Bình",
            "phone": "0987654321",
            "channel": "phone",
            "attributes": {"muc-do": "cao"},
        },
    ).body
    code = made["code"]
    assert re.fullmatch(r"PA-\d{6}-\d{4}", code)
    assert code in ok("list", *client_args(axis, TINH))
    assert "classified" in ok("classify", code, *client_args(axis, TINH))
    again = run("classify", code, *client_args(axis, TINH))
    assert again.returncode == 1 and "cannot move" in again.stderr
    out = ok("forward", code, *client_args(axis, TINH))
    assert "now transferred" in out and "000.00.31.H41" in out

    district = AxisClient(axis.url, axis.tokens[HUYEN])

    def forwarded() -> list[Any]:
        items = district.every_item("/api/v1/feedback-inbox")
        return [i for i in items if i["feedback"] == code]

    assert eventually(forwarded), "the forwarded feedback did not reach the district's inbox"
    inbox = ok("inbox", *client_args(axis, HUYEN))
    [line] = [row for row in inbox.splitlines() if code in row]
    forwarded_id = line.split()[0]
    answer = "Huyện đã vá ổ gà."
    out = ok("answer", "--forwarded", forwarded_id, "--text", answer, *client_args(axis, HUYEN))
    assert "answered" in out

    def answered() -> bool:
        return bool(office.request("GET", f"/api/v1/feedback/{code}").body["answer"])

    assert eventually(answered), "the answer did not come back over the axis"
    shown = ok("show", code, *client_args(axis, TINH))
    assert "answered (Đã trả lời)" in shown and answer in shown and "Trần Thị Bình" in shown
    assert "now published" in ok("publish", code, *client_args(axis, TINH))
    with urllib.request.urlopen(axis.url + "/api/v1/public/feedback", timeout=10) as resp:
        public = json.load(resp)
    [item] = [i for i in public["items"] if i["code"] == code]
    assert item["answer"] == answer and item["sender_name"] == "Trần T. B."


def test_concurrent_intakes_across_workers_number_without_gap(axis: Axis) -> None:
    """20 intakes at once (an officer's token: not rate-limited), on connections the kernel
    spreads over the two workers sharing the database: each takes the next number, once."""
    office = AxisClient(axis.url, axis.tokens[TINH])
    before = office.every_item("/api/v1/feedback")
    body = {
        "category": "chieu-sang",
        "title": "Đèn đường không sáng",
        "content": "Cả dãy đèn tắt.",
        "address": "Đường Kim Liên",
        "name": "Lê Văn Cường",
        "email": "cuong@example.vn",
        "channel": "letter",
    }

    def one(_: int) -> str:
        return str(office.request("POST", "/api/v1/feedback", json_body=body).body["code"])

    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = sorted(pool.map(one, range(20)))
    day = codes[0].split("-")[1]
    taken = sum(1 for f in before if f["code"].split("-")[1] == day)
    assert codes == [f"PA-{day}-{n:04d}" for n in range(taken + 1, taken + 21)]
