"""``lienthong demo`` seeds months of demo traffic for the dashboard (issue 19,
server/cli/demo_traffic.py): documents with acknowledgements, statuses 03, paper copies and
signed PDFs with their verification reports; dossiers received online and at the counter, moved,
some late, some with a supplement; feedback answered and rated. Idempotent.

The real command parser in process, on a real SQLite file; the rows are read back with SQL
(read-only) to check what the figures will count.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, redirect_stdout
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest

import edxml
from edxml import DiscardSink, Envelope
from server.cli import main
from server.cli.demo_traffic import DOCUMENT_DAYS, DOCUMENTS, DOSSIERS, FEEDBACK
from server.demo import content as demo_content


def demo(data: Path) -> str:
    out = StringIO()
    with redirect_stdout(out):
        assert main(["demo", "--data-dir", str(data)]) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    data = tmp_path_factory.mktemp("traffic") / "data"
    yield data, demo(data)


def rows(data: Path, sql: str, *params: object) -> list[sqlite3.Row]:
    uri = f"file:{data / 'lienthong.sqlite3'}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as db:
        db.row_factory = sqlite3.Row
        return db.execute(sql, params).fetchall()


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_documents_span_months_with_acks_statuses_paper_and_signatures(
    seeded: tuple[Path, str],
) -> None:
    data, out = seeded
    assert f"dashboard traffic: {DOCUMENTS} documents, {DOSSIERS} dossiers" in out
    docs = rows(data, "SELECT * FROM documents WHERE document_id LIKE '%DEMO-demo-traffic'")
    assert len(docs) == DOCUMENTS
    now = datetime.now(UTC)
    times = [when(d["received_at"]) for d in docs]
    assert min(times) >= now - timedelta(days=DOCUMENT_DAYS + 1)
    assert max(times) < now
    assert len({(t.year, t.month) for t in times}) >= 4  # a few months of charts

    metas = [json.loads(d["meta_json"]) for d in docs]
    papers = [m["business"]["paper"] for m in metas]
    assert 0 < papers.count(1) < len(papers)  # some with a paper copy, most without

    # The stored packages are real edXML, with the axis TraceHeader at the back-dated time.
    objects = data / "objects"
    stored = next(p for p in objects.rglob(docs[0]["sha256"]) if p.is_file())
    parsed = edxml.parse(stored, sink=DiscardSink())
    assert isinstance(parsed, Envelope)
    assert parsed.header.document_id == metas[0]["edxml_document_id"]

    # Signed PDFs: each PDF attachment has a verification report; most passed, a few failed.
    pdf_digests = [
        a["sha256"]
        for m in metas
        for a in m["attachments"]
        if a["content_type"] == "application/pdf"
    ]
    verdicts = {
        r["attachment_sha256"]: r["verdict"]
        for r in rows(data, "SELECT * FROM verification_reports")
    }
    assert pdf_digests and all(d in verdicts for d in pdf_digests)
    shown = [verdicts[d] for d in pdf_digests]
    assert shown.count("valid") > shown.count("invalid") > 0

    ids = {d["id"]: d for d in docs}
    deliveries = [r for r in rows(data, "SELECT * FROM deliveries") if r["document_id"] in ids]
    assert len(deliveries) == DOCUMENTS
    for r in deliveries:  # all acknowledged: the guide's inbox?state=new shows its package alone
        assert r["created_at"] == ids[r["document_id"]]["received_at"]
        assert r["state"] == "acked"
        assert when(ids[r["document_id"]]["received_at"]) < when(r["acked_at"]) < now
    ack_of = {r["document_id"]: when(r["acked_at"]) for r in deliveries}
    statuses = [r for r in rows(data, "SELECT * FROM statuses") if r["document_id"] in ids]
    assert {s["code"] for s in statuses} == {"03"}
    assert len(deliveries) // 2 < len(statuses) < len(deliveries)  # most answered, not all
    for s in statuses:  # the recipient answers after it acknowledged
        assert s["sender"] == next(
            r["recipient"] for r in deliveries if r["document_id"] == s["document_id"]
        )
        assert ack_of[s["document_id"]] < when(s["received_at"]) < now


def test_agencies_are_connected_since_their_first_traffic(seeded: tuple[Path, str]) -> None:
    """ "Agencies connected" counts an agency from its registration (docs/dashboard.md): the
    demo's agencies exchanged documents months ago, so they were connected then; the Văn phòng
    Chính phủ, which takes no part in the traffic, keeps the demo's day."""
    data, _ = seeded
    first = {
        r["organ"]: when(r["at"])
        for r in rows(
            data,
            "SELECT organ, min(at) AS at FROM ("
            " SELECT d.sender AS organ, d.received_at AS at FROM documents d"
            " UNION ALL SELECT v.recipient, v.created_at FROM deliveries v"
            ") WHERE at >= ? GROUP BY organ",
            (datetime.now(UTC) - timedelta(days=DOCUMENT_DAYS + 1)).strftime("%Y-%m-%d"),
        )
    }
    registered = {
        r["organ_id"]: when(r["created_at"]) for r in rows(data, "SELECT * FROM agencies")
    }
    traffic = {o for o in first if o != demo_content.DEMO_SENDER}
    assert len(traffic) == 4
    for organ in traffic:
        assert registered[organ] <= first[organ], organ
    assert registered[demo_content.DEMO_SENDER] > datetime.now(UTC) - timedelta(days=1)


def test_dossiers_online_late_supplemented_and_open(seeded: tuple[Path, str]) -> None:
    data, _ = seeded
    dossiers = rows(data, "SELECT * FROM dossiers")
    assert len(dossiers) >= DOSSIERS
    channels = {d["channel"] for d in dossiers}
    assert {1, 2} <= channels  # counter and online
    finished = [d for d in dossiers if d["status"] in (9, 10)]
    assert any(d["late"] for d in finished)
    assert sum(not d["late"] for d in finished) > sum(d["late"] for d in finished)
    assert any(d["status"] not in (9, 10) for d in dossiers)  # still open
    events = rows(data, "SELECT * FROM dossier_events")
    assert any(e["to_status"] == 5 for e in events)  # a supplement was asked for
    now = datetime.now(UTC)
    received = [when(d["received_at"]) for d in dossiers]
    assert min(received) < now - timedelta(days=21)  # back-dated, spread over weeks


def test_feedback_answered_and_rated(seeded: tuple[Path, str]) -> None:
    data, _ = seeded
    items = rows(data, "SELECT * FROM feedback")
    assert len(items) == FEEDBACK
    answered = [f for f in items if f["status"] == "answered"]
    assert answered and len(answered) < len(items)
    ratings = {f["rating"] for f in answered}
    assert {"hai-long", "khong-hai-long"} <= ratings


def test_demo_twice_adds_no_traffic(seeded: tuple[Path, str]) -> None:
    data, _ = seeded
    count = "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM statuses)"
    before = tuple(rows(data, count)[0])
    out = demo(data)
    assert "dashboard traffic: 0 documents, 0 dossiers, 0 feedback items added" in out
    after = tuple(rows(data, count)[0])
    assert after == before
