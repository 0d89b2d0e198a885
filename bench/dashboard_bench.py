"""The dashboard at volume (issue 19, "Benchmarks"): every stats call for a year, and the page.

Run by hand, never by the test suite. A temporary data directory gets the demo (agencies,
procedures, feedback categories), then ``--agencies`` agencies (default 1,000: districts of
the demo province and their communes, registered two years ago) and, spread over the last
365 days, ``--documents`` documents (default 2,000,000; one recipient each, 90 % acknowledged,
70 % answered with a status 03, 40 % carrying a PDF whose verification report passed or,
for one in twenty, failed), ``--dossiers`` dossiers (default 1,000,000, with their intake,
processing and end events, some late, some with a supplement request) and ``--feedback``
feedback items (default 200,000, most answered, some rated). Then ``lienthong stats rebuild``
computes the rollups from those raw rows, and the real ``lienthong serve`` answers:

(1) *stats calls*: ``GET /api/v1/stats/{exchange|dossiers|feedback}`` for the last 12 whole
    months with every ``group_by`` (month, agency, level), with and without ``level`` and with
    ``agency`` (the province, a district, a commune), as an admin token (everything) and as the
    province's own token, rotated by ``wrk`` (bench/dossier_read.lua) over ``--connections``
    connections for ``--seconds``; then each kind of call alone. Goal: p99 under 100 ms.
(2) *the page*: ``/bang-dieu-khien`` in headless Chromium (Playwright), its first render
    (navigation, login with the province's token, until its charts are drawn), ``--renders``
    times. Goal: under 1 s. Skipped when the page is not on this branch (it answers 404).

    .venv/bin/python bench/dashboard_bench.py [--scale 1.0] [--seconds 10]
        [--connections 1 10] [--keep DIR] [--reuse DIR]

``--scale`` multiplies the three volumes (0.1 for a quick run); ``--reuse DIR`` benches a data
directory an earlier ``--keep DIR`` run seeded and rebuilt. Raw SQL on purpose: this is the
one place the dashboard's source tables are filled around the domains (the exchange's accept
and the intakes would take hours for millions of rows); the rows have exactly the columns those
write (migrations 0001, 0008, 0014, 0027) and the triggers of migration 0034 fire on them as on
any insert. Figures: docs/dashboard.md, "Benchmarks".
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dossier_bench import describe, new_token, run, serve, wrk

PROVINCE = "000.00.00.H41"
PROCEDURES = (("1.001193", 1), ("2.000806", 15), ("2.001263", 30))  # code, days to process
CATEGORIES = ("duong-hu-hong", "chieu-sang", "ve-sinh-moi-truong", "thu-tuc-hanh-chinh")
PDFS = 1000  # distinct PDF attachments (each with one report): 1 in 20 failed
DAY = 86400


def agencies(count: int) -> list[tuple[str, str, str]]:
    """``count`` (organ id, name, parent): districts of the province (``000.00.DD.H41``, DD from
    40, at most 60) and as many communes under each (``000.CC.DD.H41``, at most 99 each)."""
    districts = min(60, max(1, round(count / 25)))
    per_district = min(99, max(0, (count - districts) // districts))
    out = []
    for d in range(districts):
        district = f"000.00.{40 + d:02d}.H41"
        out.append((district, f"UBND huyện {d + 1}", PROVINCE))
        for c in range(1, per_district + 1):
            out.append((f"000.{c:02d}.{40 + d:02d}.H41", f"UBND xã {c} huyện {d + 1}", district))
    return out


def iso(moment: datetime) -> str:
    return moment.isoformat()


def document_rows(
    count: int, units: list[str], now: datetime, rng: random.Random
) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...] | None]]:
    """Each document with its delivery and (perhaps) its status 03."""
    start = now - timedelta(days=365)
    pdf_digests = [f"{n:064x}" for n in range(1, PDFS + 1)]
    for n in range(count):
        sender, recipient = rng.choice(units), rng.choice(units)
        sent = start + timedelta(seconds=rng.randrange(365 * DAY))
        meta: dict[str, Any] = {"business": {"paper": 1 if rng.random() < 0.15 else 0}}
        if rng.random() < 0.4:
            meta["attachments"] = [
                {"index": 0, "content_type": "application/pdf", "sha256": rng.choice(pdf_digests)}
            ]
        else:
            meta["attachments"] = []
        doc_id = f"b{n:031x}"
        document = (
            doc_id, sender, f"{sender},{n}/BENCH", "document", f"{n:064x}", 4096,
            "V/v thử nghiệm", f"{n}/BENCH", None, 0, None, iso(sent),
            json.dumps(meta, separators=(",", ":")),
        )  # fmt: skip
        acked = sent + timedelta(seconds=rng.randrange(60, 2 * DAY)) if rng.random() < 0.9 else None
        delivery = (
            f"d{n:031x}", doc_id, recipient, "document", "acked" if acked else "new", iso(sent),
            None if acked is None else iso(acked),
        )  # fmt: skip
        status = None
        if acked is not None and rng.random() < 0.78:
            at = acked + timedelta(seconds=rng.randrange(60, 3 * DAY))
            status = (
                f"s{n:031x}",
                doc_id,
                recipient,
                sender,
                "03",
                None,
                None,
                iso(at),
                None,
                iso(at),
            )
        yield document, delivery, status


def dossier_rows(
    count: int, units: list[str], now: datetime, rng: random.Random
) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    """Each dossier with its events (intake, processing, perhaps a supplement, its end)."""
    start = now - timedelta(days=365)
    seq: dict[tuple[str, str], int] = {}
    for _ in range(count):
        unit = rng.choice(units)
        received = start + timedelta(seconds=rng.randrange(365 * DAY))
        day = received.strftime("%y%m%d")
        number = seq[unit, day] = seq.get((unit, day), 0) + 1
        code = f"{unit}-{day}-{number:04d}"
        procedure, days = rng.choice(PROCEDURES)
        due = received + timedelta(days=days * 1.4)
        events = [(code, unit, iso(received), None, 2)]
        at = received + timedelta(hours=rng.uniform(1, 24))
        events.append((code, unit, iso(at), 2, 4))
        if rng.random() < 0.1:
            events.append((code, unit, iso(at + timedelta(hours=2)), 4, 5))
            at = at + timedelta(days=rng.uniform(1, 5))
            events.append((code, unit, iso(at), 5, 4))
        end = received + (due - received) * rng.uniform(0.2, 1.25)
        status = 4
        if end < now and end > at:
            events.append((code, unit, iso(end), 4, 9))
            events.append((code, unit, iso(end + timedelta(hours=4)), 9, 10))
            status = 10
        applicant = '{"name":"Nguyễn Văn Bench","id_number":"040203001234","phone":"0912345678"}'
        dossier = (
            code, unit, day, number, procedure, unit, 2 if rng.random() < 0.45 else 1, status,
            applicant, iso(received), iso(due), None, None, iso(received), iso(now),
        )  # fmt: skip
        yield dossier, events


def feedback_rows(
    count: int, units: list[str], now: datetime, rng: random.Random
) -> Iterator[tuple[Any, ...]]:
    start = now - timedelta(days=365)
    seq: dict[str, int] = {}
    for _ in range(count):
        received = start + timedelta(seconds=rng.randrange(365 * DAY))
        day = received.strftime("%y%m%d")
        number = seq[day] = seq.get(day, 10_000) + 1  # clear of the demo's numbers
        agency = rng.choice(units)
        answer_due = received + timedelta(days=21)
        answered = received + timedelta(days=rng.uniform(1, 25))
        done = answered < now and rng.random() < 0.85
        rating = None
        if done and rng.random() < 0.5:
            rating = "hai-long" if rng.random() < 0.8 else "khong-hai-long"
        yield (
            f"PA-{day}-{number:05d}", day, number, rng.choice(CATEGORIES), PROVINCE, agency,
            "web", "answered" if done else "processing", "Phản ánh", "Nội dung", "Nghệ An",
            "{}", "Người gửi", "0" * 64, iso(received), iso(received + timedelta(days=2)),
            iso(received + timedelta(days=7)), iso(answer_due), "Đã xử lý" if done else "",
            iso(answered) if done else None, rating, iso(answered) if rating else None,
            iso(received), iso(now),
        )  # fmt: skip


def seed(database: Path, args: argparse.Namespace) -> dict[str, float]:
    """The bench rows, table by table, each in one transaction; seconds per table."""
    rng = random.Random(args.random_seed)
    now = datetime.now(UTC)
    took: dict[str, float] = {}
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        started = time.perf_counter()
        conn.execute("BEGIN")
        registered = iso(now - timedelta(days=730))
        rows = agencies(args.agencies)
        conn.executemany(
            "INSERT OR IGNORE INTO agencies (organ_id, name, parent_id, email, created_at)"
            " VALUES (?, ?, ?, NULL, ?)",
            [(*row, registered) for row in rows],
        )
        conn.execute("UPDATE agencies SET created_at = ?", (registered,))
        conn.execute("COMMIT")
        units = [r[0] for r in rows]
        took["agencies"] = time.perf_counter() - started

        started = time.perf_counter()
        conn.execute("BEGIN")
        for digest in range(1, PDFS + 1):
            verdict = "invalid" if digest % 20 == 0 else "valid"
            conn.execute(
                "INSERT INTO verification_reports (id, attachment_sha256, report_sha256,"
                " report_size, verified_at, policy, verdict, stored_at)"
                " VALUES (?, ?, ?, 100, ?, 'bench', ?, ?)",
                (f"v{digest:031x}", f"{digest:064x}", "f" * 64, iso(now), verdict, iso(now)),
            )
        documents, deliveries, statuses = [], [], []
        for document, delivery, status in document_rows(
            round(args.documents * args.scale), units, now, rng
        ):
            documents.append(document)
            deliveries.append(delivery)
            if status is not None:
                statuses.append(status)
            if len(documents) >= 50_000:
                _exchange_batch(conn, documents, deliveries, statuses)
        _exchange_batch(conn, documents, deliveries, statuses)
        conn.execute("COMMIT")
        took["documents"] = time.perf_counter() - started

        started = time.perf_counter()
        conn.execute("BEGIN")
        dossiers: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        for dossier, its_events in dossier_rows(round(args.dossiers * args.scale), units, now, rng):
            dossiers.append(dossier)
            events.extend(its_events)
            if len(dossiers) >= 50_000:
                _dossier_batch(conn, dossiers, events)
        _dossier_batch(conn, dossiers, events)
        conn.execute("COMMIT")
        took["dossiers"] = time.perf_counter() - started

        started = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO feedback (code, day, seq, category, receiving_unit, agency, channel,"
            " status, title, content, address, attributes, sender, token_hash, received_at,"
            " classify_due, transfer_due, answer_due, answer, answered_at, rating, rated_at,"
            " created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            feedback_rows(round(args.feedback * args.scale), units, now, rng),
        )
        conn.execute("COMMIT")
        took["feedback"] = time.perf_counter() - started
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return took


def _exchange_batch(
    conn: sqlite3.Connection,
    documents: list[tuple[Any, ...]],
    deliveries: list[tuple[Any, ...]],
    statuses: list[tuple[Any, ...]],
) -> None:
    conn.executemany(
        "INSERT INTO documents (id, sender, document_id, kind, sha256, size, subject, code,"
        " priority, business_type, related_id, received_at, meta_json)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        documents,
    )
    conn.executemany(
        "INSERT INTO deliveries (id, document_id, recipient, kind, state, created_at, acked_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        deliveries,
    )
    conn.executemany(
        "INSERT INTO statuses (id, document_id, sender, recipient, code, description, staff,"
        " status_time, package_id, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        statuses,
    )
    documents.clear()
    deliveries.clear()
    statuses.clear()


def _dossier_batch(
    conn: sqlite3.Connection, dossiers: list[tuple[Any, ...]], events: list[tuple[Any, ...]]
) -> None:
    conn.executemany(
        "INSERT INTO dossiers (code, receiving_unit, day, seq, procedure, agency, channel,"
        " status, applicant, received_at, due_at, paused_at, idempotency_key, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        dossiers,
    )
    conn.executemany(
        "INSERT INTO dossier_events (dossier, actor, at, from_status, to_status)"
        " VALUES (?, ?, ?, ?, ?)",
        events,
    )
    dossiers.clear()
    events.clear()


def year() -> tuple[str, str]:
    """The last 12 whole months (the API's default period), as ``from`` and ``to``."""
    today = datetime.now(UTC).date()
    first = today.replace(day=1)
    end = first - timedelta(days=1)
    return f"{first.year - 1}-{first.month:02d}-01", end.isoformat()


def calls(units: list[str]) -> dict[str, list[str]]:
    """The stats calls, by kind: every figure with every grouping and filter."""
    start, end = year()
    period = f"from={start}&to={end}"
    district, commune = units[0], units[-1]
    kinds: dict[str, list[str]] = {}
    for figure in ("exchange", "dossiers", "feedback"):
        base = f"/api/v1/stats/{figure}?{period}"
        for group in ("month", "agency", "level"):
            kinds.setdefault(f"group_by={group}", []).append(f"{base}&group_by={group}")
            kinds.setdefault(f"level=commune&group_by={group}", []).append(
                f"{base}&level=commune&group_by={group}"
            )
            for name, agency in (("province", PROVINCE), ("district", district)):
                kinds.setdefault(f"agency={name}&group_by={group}", []).append(
                    f"{base}&agency={agency}&group_by={group}"
                )
            kinds.setdefault(f"agency=commune&group_by={group}", []).append(
                f"{base}&agency={commune}&group_by={group}"
            )
        kinds.setdefault("csv", []).append(f"{base}&group_by=agency&format=csv")
    return kinds


def bench_calls(data: Path, units: list[str], args: argparse.Namespace) -> None:
    admin = run("token", "create", PROVINCE, "--role", "admin", "--data-dir", str(data))
    admin_token = next(ln for ln in admin.splitlines() if ln.startswith("lt_"))
    province_token = new_token(data, PROVINCE)
    kinds = calls(units)
    axis = serve(data, 1)
    try:
        for token_name, token in (("admin", admin_token), ("province", province_token)):
            every = [path for paths in kinds.values() for path in paths]
            for connections in args.connections:
                figures = _load(axis.url, every, token, connections, args.seconds)
                print(
                    f"(1) all {len(every)} calls, {token_name} token, {connections} "
                    f"connection(s): {describe(figures)}"
                )
        for kind, paths in kinds.items():
            figures = _load(axis.url, paths, admin_token, 1, max(4, args.seconds // 2))
            print(f"    {kind} (3 figures), admin, 1 connection: {describe(figures)}")
    finally:
        axis.stop()


def _load(url: str, paths: list[str], token: str, connections: int, seconds: int) -> Any:
    with tempfile.NamedTemporaryFile("w", suffix=".paths", delete=False) as listing:
        listing.write("\n".join(paths) + "\n")
    try:
        return wrk(
            url,
            "dossier_read.lua",
            connections,
            seconds,
            {"DOSSIER_PATHS": listing.name, "DOSSIER_TOKEN": token},
        )
    finally:
        Path(listing.name).unlink()


def bench_page(data: Path, args: argparse.Namespace) -> None:
    """The page's first render at volume: from navigation, through the login with the
    province's token, until the page marks its charts drawn (``body[data-loaded='1']``, as
    tests/integration/test_dashboard_page.py waits for), in a fresh browser context each time."""
    from playwright.sync_api import sync_playwright

    token = new_token(data, PROVINCE)
    axis = serve(data, 1)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or None)
            times = []
            for _ in range(args.renders):
                context = browser.new_context()
                page = context.new_page()
                started = time.perf_counter()
                answer = page.goto(axis.url + "/bang-dieu-khien")
                if answer is None or answer.status != 200 or not page.locator("#token").count():
                    print("(2) the page: /bang-dieu-khien is not on this branch: not measured")
                    return
                page.fill("#token", token)
                page.click("#login-btn")
                page.locator("body[data-loaded='1']").wait_for(timeout=60_000)
                times.append(time.perf_counter() - started)
                context.close()
            times.sort()
            print(
                f"(2) the page's first render (login to charts drawn), {args.renders} times: "
                f"median {times[len(times) // 2] * 1000:.0f} ms, worst {times[-1] * 1000:.0f} ms"
            )
            browser.close()
    finally:
        axis.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agencies", type=int, default=1000)
    parser.add_argument("--documents", type=int, default=2_000_000)
    parser.add_argument("--dossiers", type=int, default=1_000_000)
    parser.add_argument("--feedback", type=int, default=200_000)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the three volumes")
    parser.add_argument("--random-seed", type=int, default=19)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--renders", type=int, default=5, help="0: no page")
    parser.add_argument("--keep", type=Path, help="keep the data directory under DIR")
    parser.add_argument("--reuse", type=Path, help="a data directory a --keep run left")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1
    root = args.keep or Path(tempfile.mkdtemp(prefix="dashboard-bench-"))
    try:
        if args.reuse is not None:
            data = args.reuse
        else:
            data = root / "data"
            run("demo", "--data-dir", str(data))
            took = seed(data / "lienthong.sqlite3", args)
            print("seeded (s): " + ", ".join(f"{k} {v:.0f}" for k, v in took.items()))
            started = time.perf_counter()
            print(run("stats", "rebuild", "--data-dir", str(data)).strip())
            print(f"    rebuild took {time.perf_counter() - started:.0f} s")
        conn = sqlite3.connect(f"file:{data / 'lienthong.sqlite3'}?mode=ro", uri=True)
        try:
            units = [
                r[0]
                for r in conn.execute(
                    "SELECT organ_id FROM agencies WHERE organ_id LIKE '%.H41' ORDER BY organ_id"
                )
            ]
            counts = {
                t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608
                for t in ("agencies", "documents", "dossiers", "feedback", "stats_daily")
            }
        finally:
            conn.close()
        print("rows: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        districts = [u for u in units if u.startswith("000.00.") and u != PROVINCE]
        communes = [u for u in units if not u.startswith("000.00.")]
        bench_calls(data, [districts[-1], communes[-1]], args)
        if args.renders > 0:
            bench_page(data, args)
    finally:
        if args.keep is None and args.reuse is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
