"""Each figure of the dashboard against a small data set computed by hand (docs/dashboard.md).

The raw rows are written straight into a real migrated SQLite database with chosen times (the
domains stamp "now"; here the arithmetic needs fixed ones), the triggers of migration 0034 queue
the cells, :func:`fold` folds them, and :func:`stats` answers from the rollups alone. Times are
UTC in the rows; days are Asia/Ho_Chi_Minh (UTC+7).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date

import pytest

from server.stats.errors import AgencyOutOfReach, InvalidStatsQuery
from server.stats.figures import EVERYTHING, roots_of
from server.stats.query import StatsTable, Viewer, stats
from server.stats.rollups import fold, rebuild
from storage.backends import open_database
from storage.db import Database, Tx
from storage.repos.stats import StatsRepo

NGHE_AN = "000.00.00.H41"  # province (level 1)
SO = "000.00.01.H41"  # a department: province level (2)
XA = "001.01.00.H41"  # a commune (level 4)
VPCP = "000.00.00.G22"  # central, outside Nghệ An's tree
NOV = (date(2026, 11, 1), date(2026, 11, 30))
NOV_DEC = (date(2026, 11, 1), date(2026, 12, 31))
A1, A2 = "a1" * 32, "a2" * 32
T0 = "2026-01-01T00:00:00.000000Z"


def t(text: str) -> str:
    """A stored time from ``YYYY-MM-DDTHH:MM:SS`` UTC."""
    return f"{text}.000000Z"


async def agencies(tx: Tx) -> None:
    for organ, name, parent, created in (
        (VPCP, "Văn phòng Chính phủ", None, T0),
        (NGHE_AN, "UBND tỉnh Nghệ An", None, T0),
        (SO, "Sở TTTT Nghệ An", NGHE_AN, T0),
        (XA, "UBND xã Nghi Phong", NGHE_AN, t("2026-12-05T01:00:00")),
    ):
        await tx.execute(
            "INSERT INTO agencies (organ_id, name, parent_id, created_at) VALUES (?, ?, ?, ?)",
            (organ, name, parent, created),
        )


async def document(
    tx: Tx, doc: str, sender: str, at: str, paper: int | None, attachments: list[str]
) -> None:
    business = {} if paper is None else {"business": {"type": 0, "paper": paper}}
    meta = {**business, "attachments": [{"sha256": a, "name": "vb.pdf"} for a in attachments]}
    await tx.execute(
        "INSERT INTO documents (id, sender, document_id, kind, sha256, size, received_at,"
        " meta_json) VALUES (?, ?, ?, 'document', ?, 1, ?, ?)",
        (doc, sender, f"{doc}-edxml", "00" * 32, at, json.dumps(meta)),
    )


async def delivery(tx: Tx, doc: str, recipient: str, at: str) -> None:
    await tx.execute(
        "INSERT INTO deliveries (id, document_id, recipient, kind, created_at)"
        " VALUES (?, ?, ?, 'document', ?)",
        (f"{doc}>{recipient}", doc, recipient, at),
    )


async def ack(tx: Tx, doc: str, recipient: str, at: str) -> None:
    await tx.execute(
        "UPDATE deliveries SET acked_at = ?, state = 'acked' WHERE id = ?",
        (at, f"{doc}>{recipient}"),
    )


async def status(tx: Tx, sid: str, doc: str, sender: str, code: str, at: str) -> None:
    await tx.execute(
        "INSERT INTO statuses (id, document_id, sender, recipient, code, received_at)"
        " VALUES (?, ?, ?, 'x', ?, ?)",
        (sid, doc, sender, code, at),
    )


async def report(tx: Tx, rid: str, attachment: str, verdict: str) -> None:
    await tx.execute(
        "INSERT INTO verification_reports (id, attachment_sha256, report_sha256, report_size,"
        " verified_at, policy, verdict, stored_at) VALUES (?, ?, ?, 1, ?, 'p', ?, ?)",
        (rid, attachment, rid * 8, T0, verdict, T0),
    )


async def exchange(database: Database) -> None:
    """The documents (times UTC; VN day in brackets):

    d1 SO→XA  2026-11-03 02:00 [03/11], Paper 0, A1 (first report valid, a later one invalid);
       XA: 01 after 50 s, ack after 100 s, 03 after 1000 s.
    d2 SO→XA,NGHE_AN 2026-11-10 03:00 [10/11], Paper 1, A2 (invalid); XA ack after 200 s,
       03 after 4000 s; NGHE_AN ack after 5000 s.
    d3 SO→NGHE_AN 2026-11-30 18:00 [01/12: the VN day], no Business (no Paper), no attachment.
    d4 VPCP→SO 2026-11-15 01:00 [15/11]; SO ack after 10 s.
    """
    async with database.transaction() as tx:
        await agencies(tx)
        await document(tx, "d1", SO, t("2026-11-03T02:00:00"), 0, [A1])
        await delivery(tx, "d1", XA, t("2026-11-03T02:00:00"))
        await document(tx, "d2", SO, t("2026-11-10T03:00:00"), 1, [A2])
        await delivery(tx, "d2", XA, t("2026-11-10T03:00:00"))
        await delivery(tx, "d2", NGHE_AN, t("2026-11-10T03:00:00"))
        await document(tx, "d3", SO, t("2026-11-30T18:00:00"), None, [])
        await delivery(tx, "d3", NGHE_AN, t("2026-11-30T18:00:00"))
        await document(tx, "d4", VPCP, t("2026-11-15T01:00:00"), 0, [])
        await delivery(tx, "d4", SO, t("2026-11-15T01:00:00"))
    await fold(database)  # folded before the acks, statuses and reports arrive
    async with database.transaction() as tx:
        await report(tx, "r1", A1, "valid")
        await report(tx, "r3", A1, "invalid")  # a later re-verification: the first counts
        await report(tx, "r2", A2, "invalid")
        await status(tx, "s0", "d1", XA, "01", t("2026-11-03T02:00:50"))
        await ack(tx, "d1", XA, t("2026-11-03T02:01:40"))
        await status(tx, "s1", "d1", XA, "03", t("2026-11-03T02:16:40"))
        await ack(tx, "d2", XA, t("2026-11-10T03:03:20"))
        await status(tx, "s2", "d2", XA, "03", t("2026-11-10T04:06:40"))
        await ack(tx, "d2", NGHE_AN, t("2026-11-10T04:23:20"))
        await ack(tx, "d4", SO, t("2026-11-15T01:00:10"))


# D2: received, asked for a supplement, resumed, asked again, resumed, done.
D2_EVENTS = [(2, "11-03T02:00"), (5, "11-04T02:00"), (4, "11-05T02:00"), (5, "11-06T02:00")]
D2_EVENTS += [(4, "11-07T02:00"), (9, "11-08T02:00")]


async def dossiers(database: Database) -> None:
    """The dossiers of SO (due 10:00 UTC, ends 02:00 UTC unless said):

    D1 recv 02/11 online, due 09/11, done (9) 05/11 03:00 with a result file: on time,
       3 d 1 h = 262,800 s.
    D2 recv 03/11 counter, due 10/11, two supplement requests, done 08/11: late (two
       requests), 5 d = 432,000 s.
    D3 recv 04/11 online, due 12/11, done 20/11 (late mark): late, 16 d = 1,382,400 s.
    D4 recv 05/11 counter, due 20/11, still processing: open and overdue from 20/11.
    D5 recv 25/11 online, due 10/12, still processing: overdue only in December.
    D6 recv 20/10 counter, due 30/10, done 02/12 (late): open and overdue at 30/11.
    All of procedure 1.001 but D4 (1.002).
    """
    async with database.transaction() as tx:
        for code, name in (("1.001", "Đăng ký khai sinh"), ("1.002", "Đăng ký kết hôn")):
            await tx.execute(
                "INSERT INTO procedures (code, agency, body, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (code, SO, json.dumps({"name": name}), T0, T0),
            )
        rows = [
            ("D1", 2, "2026-11-02", "2026-11-09", [(2, "11-02T02:00"), (9, "11-05T03:00")], 0),
            (
                "D2",
                1,
                "2026-11-03",
                "2026-11-10",
                D2_EVENTS,
                0,
            ),
            ("D3", 2, "2026-11-04", "2026-11-12", [(2, "11-04T02:00"), (9, "11-20T02:00")], 1),
            ("D4", 1, "2026-11-05", "2026-11-20", [(2, "11-05T02:00"), (4, "11-06T02:00")], 0),
            ("D5", 2, "2026-11-25", "2026-12-10", [(2, "11-25T02:00")], 0),
            ("D6", 1, "2026-10-20", "2026-10-30", [(2, "10-20T02:00"), (9, "12-02T02:00")], 1),
        ]
        for n, (code, channel, received, due, events, late) in enumerate(rows, 1):
            await tx.execute(
                "INSERT INTO dossiers (code, receiving_unit, day, seq, procedure, agency,"
                " channel, status, applicant, received_at, due_at, created_at, updated_at,"
                " late) VALUES (?, ?, ?, ?, '1.001', ?, ?, 2, '{}', ?, ?, ?, ?, ?)",
                (
                    code,
                    SO,
                    received,
                    n,
                    SO,
                    channel,
                    t(f"{received}T02:00:00"),
                    t(f"{due}T10:00:00"),
                    T0,
                    T0,
                    late,
                ),
            )
            for to_status, at in events:
                await tx.execute(
                    "INSERT INTO dossier_events (dossier, actor, at, to_status)"
                    " VALUES (?, ?, ?, ?)",
                    (code, SO, t(f"2026-{at}:00"), to_status),
                )
    await fold(database)
    async with database.transaction() as tx:
        # D4 is of the other procedure (a change after its first fold: the update's trigger)
        await tx.execute("UPDATE dossiers SET procedure = '1.002' WHERE code = 'D4'")
        row = await tx.fetchone(
            "SELECT id FROM dossier_events WHERE dossier = 'D1' AND to_status = 9"
        )
        assert row is not None
        await tx.execute(
            "INSERT INTO dossier_files (dossier, component, name, content_type, sha256, size,"
            " event, created_at) VALUES ('D1', 'KQ', 'kq.pdf', 'application/pdf', ?, 1, ?, ?)",
            ("bb" * 32, row["id"], T0),
        )


async def feedback(database: Database) -> None:
    """Feedback for the competent XA (and one for VPCP, outside Nghệ An's tree):

    F1 recv 02/11, answer due 20/11, answered 10/11, rated hài lòng.
    F2 recv 03/11, due 21/11, answered 25/11 (late), rated không hài lòng.
    F3 recv 04/11, due 22/11, not answered; category giao-thong (the others moi-truong).
    F4 (VPCP) recv 05/11, answered on time, rated hài lòng.
    """
    async with database.transaction() as tx:
        for category, name in (("moi-truong", "Môi trường"), ("giao-thong", "Giao thông")):
            await tx.execute(
                "INSERT INTO feedback_categories (code, name, agency, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (category, name, XA, T0, T0),
            )
        for n, (code, category, agency, received, due) in enumerate(
            (
                ("F1", "moi-truong", XA, "11-02", "11-20"),
                ("F2", "moi-truong", XA, "11-03", "11-21"),
                ("F3", "giao-thong", XA, "11-04", "11-22"),
                ("F4", "moi-truong", VPCP, "11-05", "11-20"),
            ),
            1,
        ):
            await tx.execute(
                "INSERT INTO feedback (code, day, seq, category, receiving_unit, agency,"
                " channel, status, title, content, sender, token_hash, received_at,"
                " classify_due, transfer_due, answer_due, created_at, updated_at) VALUES"
                " (?, '261102', ?, ?, ?, ?, 'web', 'received', 't', 'c', '{}',"
                " 'h', ?, ?, ?, ?, ?, ?)",
                (
                    code,
                    n,
                    category,
                    XA,
                    agency,
                    t(f"2026-{received}T02:00:00"),
                    T0,
                    T0,
                    t(f"2026-{due}T10:00:00"),
                    T0,
                    T0,
                ),
            )
    await fold(database)
    async with database.transaction() as tx:
        for code, answered, rating in (
            ("F1", "11-10", "hai-long"),
            ("F2", "11-25", "khong-hai-long"),
            ("F4", "11-06", "hai-long"),
        ):
            await tx.execute(
                "UPDATE feedback SET status = 'answered', answered_at = ?, rating = ?"
                " WHERE code = ?",
                (t(f"2026-{answered}T02:00:00"), rating, code),
            )


@pytest.fixture
async def database(database_target: str) -> AsyncIterator[Database]:
    """The figures' data, folded, on each backend of --db-backend."""
    db = await open_database(database_target)
    await exchange(db)
    await dossiers(db)
    await feedback(db)
    await fold(db)
    try:
        yield db
    finally:
        await db.close()


async def table(
    db: Database,
    figure: str,
    period: tuple[date, date],
    group_by: str = "month",
    viewer: Viewer | None = None,
    **options: str | None,
) -> StatsTable:
    return await stats(
        db,
        figure,
        start=period[0],
        end=period[1],
        level=options.get("level"),
        agency=options.get("agency"),
        group_by=group_by,
        viewer=viewer or Viewer(NGHE_AN),
    )


async def test_exchange_by_month(database: Database) -> None:
    answer = (await table(database, "exchange", NOV_DEC)).to_json()
    nov, dec = (r["values"] for r in answer["rows"])
    assert [r["key"] for r in answer["rows"]] == ["2026-11", "2026-12"]
    assert [r["label"] for r in answer["rows"]] == ["11/2026", "12/2026"]
    # November: sent d1, d2 (d3 is on 01/12 in Việt Nam; d4 is VPCP's) = 2; received d1→XA,
    # d2→XA, d2→NGHE_AN, d4→SO = 4; without paper: d1 = 1 of 2; valid: d1 (its first report)
    # = 1 of 2; failed: d2 = 1 of 2.
    assert nov["sent"] == 2 and nov["received"] == 4
    assert nov["without_paper"] == 1 and nov["share_without_paper"] == 0.5
    assert nov["signed_valid"] == 1 and nov["share_signed_valid"] == 0.5
    assert nov["signature_failed"] == 1 and nov["share_signature_failed"] == 0.5
    # acks: 10 s (bucket 0), 100 s and 200 s (bucket 1: 60–300 s), 5000 s (bucket 5:
    # 3600–7200 s); the ⌈4/2⌉ = 2nd smallest is in bucket 1, whose upper edge is 300 s.
    assert nov["median_ack_seconds"] == 300
    # first 03 (the 01 does not count): 1000 s (bucket 3: 900–1800), 4000 s (bucket 5); the
    # ⌈2/2⌉ = 1st is in bucket 3: 1800 s.
    assert nov["median_first_processing_seconds"] == 1800
    # connected by 30/11: NGHE_AN, SO (XA registered 05/12) = 2; active: SO, XA, NGHE_AN = 3.
    assert nov["agencies_connected"] == 2 and nov["agencies_active"] == 3
    # December: d3 sent by SO, received by NGHE_AN; no Paper flag counts as without paper.
    assert dec["sent"] == 1 and dec["received"] == 1 and dec["share_without_paper"] == 1.0
    assert dec["share_signed_valid"] == 0.0 and dec["share_signature_failed"] == 0.0
    assert dec["median_ack_seconds"] is None and dec["median_first_processing_seconds"] is None
    assert dec["agencies_connected"] == 3 and dec["agencies_active"] == 2
    totals = answer["totals"]
    # 3 sent, 5 received, 2 of 3 without paper, 1 of 3 valid, 1 of 3 failed.
    assert totals["sent"] == 3 and totals["received"] == 5
    assert totals["share_without_paper"] == pytest.approx(2 / 3)
    assert totals["share_signed_valid"] == pytest.approx(1 / 3)
    assert totals["share_signature_failed"] == pytest.approx(1 / 3)
    assert totals["median_ack_seconds"] == 300 and totals["agencies_active"] == 3


async def test_exchange_by_agency_and_level(database: Database) -> None:
    by_agency = (await table(database, "exchange", NOV, "agency")).to_json()
    rows = {r["key"]: r for r in by_agency["rows"]}
    assert list(rows) == [NGHE_AN, SO, XA]  # by OrganId; VPCP is outside the tree
    assert rows[SO]["label"] == "Sở TTTT Nghệ An"
    # SO sent d1, d2 and received d4; XA received d1, d2; NGHE_AN received d2.
    assert rows[SO]["values"]["sent"] == 2 and rows[SO]["values"]["received"] == 1
    assert rows[XA]["values"]["received"] == 2 and rows[XA]["values"]["sent"] == 0
    assert rows[XA]["values"]["share_without_paper"] is None  # nothing sent: no share
    # XA's acks: 100 s, 200 s -> bucket 1 -> 300 s; NGHE_AN's one: 5000 s -> 7200 s.
    assert rows[XA]["values"]["median_ack_seconds"] == 300
    assert rows[NGHE_AN]["values"]["median_ack_seconds"] == 7200
    assert rows[XA]["values"]["agencies_connected"] == 0  # registered in December
    by_level = (await table(database, "exchange", NOV, "level")).to_json()
    levels = {r["key"]: r["values"] for r in by_level["rows"]}
    assert list(levels) == ["province", "commune"]
    # province = NGHE_AN + SO: received 1 + 1 = 2; commune = XA: 2.
    assert levels["province"]["received"] == 2 and levels["commune"]["received"] == 2
    communes = (await table(database, "exchange", NOV, level="commune")).to_json()
    assert communes["totals"]["received"] == 2 and communes["totals"]["sent"] == 0


async def test_dossiers_by_the_766_rules(database: Database) -> None:
    nov = (await table(database, "dossiers", NOV, agency=SO)).to_json()["totals"]
    # received in November: D1–D5 = 5, online D1, D3, D5 = 3 -> 0.6.
    assert nov["received"] == 5 and nov["received_online"] == 3 and nov["share_online"] == 0.6
    # ended in November: D1 (on time), D2 (two supplement requests: late), D3 (late) = 3.
    assert nov["finished"] == 3 and nov["on_time"] == 1 and nov["late"] == 2
    # open and overdue at the end of 30/11: D4 (due 20/11), D6 (due 30/10, ends 02/12) = 2;
    # D5 is due in December, D3 ended. Rate: 1 / (3 + 2) = 0.2.
    assert nov["open_overdue"] == 2 and nov["on_time_rate"] == 0.2
    # (262,800 + 432,000 + 1,382,400) s / 3 / 86,400 = 8.0139 days.
    assert nov["avg_processing_days"] == 8.01
    # electronic result: D1 (a file with its 9) = 1 of 3.
    assert nov["electronic_results"] == 1
    assert nov["share_electronic_results"] == pytest.approx(1 / 3)
    months = (await table(database, "dossiers", NOV_DEC)).to_json()["rows"]
    dec = months[1]["values"]
    # December: D6 ended late (02/12); open and overdue at 31/12: D4, D5 (due 10/12) = 2;
    # rate 0 / (1 + 2) = 0.
    assert dec["finished"] == 1 and dec["late"] == 1 and dec["on_time"] == 0
    assert dec["open_overdue"] == 2 and dec["on_time_rate"] == 0.0
    assert months[0]["values"]["open_overdue"] == 2  # the November row: at 30/11
    by_procedure = (await table(database, "dossiers", NOV, "procedure")).to_json()["rows"]
    assert [(r["key"], r["label"]) for r in by_procedure] == [
        ("1.001", "Đăng ký khai sinh"),
        ("1.002", "Đăng ký kết hôn"),
    ]
    birth, marriage = (r["values"] for r in by_procedure)
    # 1.001: received D1, D2, D3, D5 = 4; ended D1 (on time), D2, D3 (late); open and overdue
    # at 30/11: D6 = 1; rate 1 / (3 + 1) = 0.25; days as above: 8.01.
    assert birth["received"] == 4 and birth["finished"] == 3 and birth["on_time"] == 1
    assert birth["open_overdue"] == 1 and birth["on_time_rate"] == 0.25
    assert birth["avg_processing_days"] == 8.01
    # 1.002: D4 received, open and overdue: 0 / (0 + 1) = 0; no average.
    assert marriage["received"] == 1 and marriage["open_overdue"] == 1
    assert marriage["on_time_rate"] == 0.0 and marriage["avg_processing_days"] is None


async def test_feedback_answered_on_time_and_satisfaction(database: Database) -> None:
    answer = (await table(database, "feedback", NOV)).to_json()
    totals = answer["totals"]
    # F1, F2, F3 (F4 is VPCP's); answered F1 (on time), F2 (late): 1 of 3 on time;
    # rated F1 (hài lòng), F2 (không): 1 of 2 satisfied.
    assert totals["received"] == 3 and totals["answered"] == 2
    assert totals["answered_on_time"] == 1 and totals["on_time_rate"] == pytest.approx(1 / 3)
    assert totals["rated"] == 2 and totals["satisfied"] == 1
    assert totals["satisfaction_rate"] == 0.5
    everything = (await table(database, "feedback", NOV, viewer=Viewer(SO, admin=True))).totals
    assert everything["received"] == 4 and everything["satisfied"] == 2  # an admin sees F4
    by_category = (await table(database, "feedback", NOV, "category")).to_json()["rows"]
    assert [(r["key"], r["label"]) for r in by_category] == [
        ("giao-thong", "Giao thông"),
        ("moi-truong", "Môi trường"),
    ]
    traffic, environment = (r["values"] for r in by_category)
    # giao-thong: F3 alone, unanswered, unrated: 0 of 1 on time, no satisfaction to measure.
    assert traffic["received"] == 1 and traffic["on_time_rate"] == 0.0
    assert traffic["satisfaction_rate"] is None
    # moi-truong: F1, F2 (F4 is VPCP's): 1 of 2 on time, 1 of 2 satisfied.
    assert environment["received"] == 2 and environment["on_time_rate"] == 0.5
    assert environment["satisfaction_rate"] == 0.5
    with pytest.raises(InvalidStatsQuery):
        await table(database, "dossiers", NOV, "category")


async def test_access_follows_the_organid_tree(database: Database) -> None:
    with pytest.raises(AgencyOutOfReach):
        await table(database, "feedback", NOV, viewer=Viewer(SO), agency=NGHE_AN)
    with pytest.raises(AgencyOutOfReach):
        await table(database, "feedback", NOV, viewer=Viewer(NGHE_AN), agency=VPCP)
    own = (await table(database, "exchange", NOV, viewer=Viewer(XA))).totals
    assert own["received"] == 2 and own["sent"] == 0  # XA alone
    with pytest.raises(InvalidStatsQuery) as bad:
        await table(database, "exchange", (date(2026, 12, 1), date(2026, 11, 1)))
    assert bad.value.parameter == "from"


async def test_rebuild_agrees_exactly_with_the_folded_rollups(database: Database) -> None:
    async with database.reader() as tx:
        folded = await StatsRepo(tx).all_cells()
        months = await StatsRepo(tx).all_months()
        subtrees = await StatsRepo(tx).all_subtrees()
        assert await StatsRepo(tx).queued() == 0
    assert folded and subtrees
    await rebuild(database)
    async with database.reader() as tx:
        assert await StatsRepo(tx).all_cells() == folded
        assert await StatsRepo(tx).all_months() == months
        assert await StatsRepo(tx).all_subtrees() == subtrees


def test_an_agency_counts_in_its_ancestors_subtrees_and_everything() -> None:
    """A commune's counters are added to its district's, its province's and the whole tree's
    rows; a ministry's (level 1) to the whole tree only; an id of no tree likewise."""
    assert roots_of("001.01.00.H41") == ("000.01.00.H41", "000.00.00.H41", EVERYTHING)
    assert roots_of("000.00.00.G22") == (EVERYTHING,)
    assert roots_of("not-an-organ-id") == (EVERYTHING,)
