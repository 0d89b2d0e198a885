"""The dashboard's figures on the real app (issue 19): a mixed workload through the real routes
(documents with signed, tampered and unsigned PDFs, acks, status 03; dossiers through their
moves with a supplement and a late end; feedback answered and rated), the rollups folded as it
arrives and rebuilt from the raw rows, agreeing exactly; access by the OrganId tree; the CSV;
bad input named by parameter. The formulas themselves: tests/unit/stats/test_stats_formulas.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest
from axis_client import NGHE_AN, OUTSIDER, SO_TTTT, VPCP, XA, Axis, document, status
from test_api_dossiers import VN, intake, moved
from test_api_dossiers import seed as seed_procedures
from test_api_feedback import BASE, post
from test_api_feedback import seed as seed_categories
from test_dossier_transfers import call
from test_verify_arrival import ORIGINAL, PDF, TAMPERED, UNSIGNED

from edxml import Business, StatusCode
from server.http.appkeys import DATABASE, VERIFIER
from server.runtime.config import Config
from server.runtime.tokens import new_token
from server.stats.rollups import fold, rebuild
from storage.repos.stats import StatsRepo
from storage.repos.tokens import TokenRepo

pytestmark = pytest.mark.usefixtures("offline_verification")


@pytest.fixture
def axis_config(axis_config: Config) -> Config:
    """The province's office (NGHE_AN) receives anonymous feedback."""
    feedback = dataclasses.replace(axis_config.feedback, receiving_unit=NGHE_AN)
    return dataclasses.replace(axis_config, feedback=feedback)


def period() -> str:
    today = datetime.now(VN).date()
    return f"from={(today - timedelta(days=40)).isoformat()}&to={today.isoformat()}"


async def cells(axis: Axis) -> list[tuple[Any, ...]]:
    """The daily, monthly and subtree rollups and the tree, once nothing is queued."""
    async with axis.client.app[DATABASE].reader() as tx:
        repo = StatsRepo(tx)
        assert await repo.queued() == 0
        return [*await repo.all_cells(), *await repo.all_months(), *await repo.all_subtrees()]


async def exchange_workload(axis: Axis) -> None:
    pdfs = [("ky.pdf", PDF, ORIGINAL), ("sua.pdf", PDF, TAMPERED)]
    first = document(VPCP, [NGHE_AN, SO_TTTT], attachments=pdfs, business=Business(paper=0))
    receipt = await axis.send_ok(VPCP, first)
    unsigned = document(SO_TTTT, [XA], attachments=[("chua-ky.pdf", PDF, UNSIGNED)])
    await axis.send_ok(SO_TTTT, unsigned)
    await axis.send_ok(XA, document(XA, [NGHE_AN], business=Business(paper=1)))
    await fold(axis.client.app[DATABASE])  # before the reports, acks and statuses
    await axis.client.app[VERIFIER].drain()
    [item] = [i for i in (await axis.inbox(NGHE_AN))["items"] if i["sender"] == VPCP]
    assert item["document_id"] == receipt["id"]
    resp = await axis.client.post(
        f"/api/v1/inbox/{item['delivery_id']}/ack", headers=axis.auth(NGHE_AN)
    )
    assert resp.status == 200, await resp.text()
    resp = await axis.send_status(NGHE_AN, status(NGHE_AN, first, StatusCode.ACCEPTED))
    assert resp.status == 201, await resp.text()


async def dossier_workload(axis: Axis) -> None:
    await seed_procedures(axis)
    now = datetime.now(VN).replace(microsecond=0)
    late = await intake(axis, received_at=(now - timedelta(days=25)).isoformat(), channel=2)
    accepted_at = (now - timedelta(days=25) + timedelta(minutes=1)).isoformat()
    accepted = await moved(axis, XA, late["code"], 2, at=accepted_at)  # online: waits at 1
    due = datetime.fromisoformat(accepted["due_at"])
    await moved(axis, SO_TTTT, late["code"], 4, at=(due - timedelta(minutes=5)).isoformat())
    await moved(axis, SO_TTTT, late["code"], 9, at=(due + timedelta(minutes=1)).isoformat())
    await fold(axis.client.app[DATABASE])
    paused = await intake(axis, received_at=(now - timedelta(days=20)).isoformat())
    at = (now - timedelta(days=20) + timedelta(minutes=1)).isoformat()
    await moved(axis, SO_TTTT, paused["code"], 5, note="Thiếu giấy chứng sinh", at=at)
    await moved(axis, XA, paused["code"], 4, at=(now - timedelta(minutes=2)).isoformat())
    await moved(axis, SO_TTTT, paused["code"], 9, at=now.isoformat())
    await moved(axis, XA, paused["code"], 10)
    await intake(axis)  # still open


async def feedback_workload(axis: Axis) -> None:
    await seed_categories(axis)
    answered = await post(axis, BASE, 201)
    await post(axis, BASE, 201)  # not answered
    await fold(axis.client.app[DATABASE])
    events = f"/api/v1/feedback/{answered['code']}/events"
    await call(axis, "POST", events, NGHE_AN, 200, json={"status": "classified"})
    await call(axis, "POST", events, SO_TTTT, 200, json={"status": "processing"})
    await call(axis, "POST", events, SO_TTTT, 200, json={"status": "answered", "note": "Đã vá"})
    resp = await axis.client.post(
        f"/api/v1/public/feedback/{answered['code']}/rating",
        json={"token": answered["token"], "rating": "hai-long"},
    )
    assert resp.status == 200, await resp.text()


async def test_rebuild_agrees_exactly_with_the_rollups_kept_as_data_arrives(axis: Axis) -> None:
    await exchange_workload(axis)
    await dossier_workload(axis)
    await feedback_workload(axis)
    database = axis.client.app[DATABASE]
    await fold(database)
    folded = await cells(axis)
    figures = {c[0] for c in folded}
    assert figures == {"exchange", "dossiers", "feedback", "tree"}
    # the province's subtree rows hold what SO_TTTT and XA (under it) counted, by figure
    assert {c[0] for c in folded if c[0] != "tree" and len(c) == 6 and c[2] == NGHE_AN} == {
        "exchange",
        "dossiers",
        "feedback",
    }
    await rebuild(database)
    assert await cells(axis) == folded

    # The subtree sums and the per-agency ones agree: the totals are the same by month, by
    # level and by agency, and each count is the sum of the agencies' rows.
    for figure in ("exchange", "dossiers", "feedback"):
        answers = {
            group: await call(
                axis, "GET", f"/api/v1/stats/{figure}?{period()}&group_by={group}", NGHE_AN, 200
            )
            for group in ("month", "level", "agency")
        }
        totals = answers["month"]["totals"]
        assert answers["level"]["totals"] == totals == answers["agency"]["totals"]
        counts = [c["key"] for c in answers["month"]["columns"] if c["unit"] == "count"]
        for key in counts:
            assert totals[key] == sum(r["values"][key] for r in answers["agency"]["rows"]), key

    # What the API says of it, as NGHE_AN (itself, SO_TTTT, XA under it).
    ex = await call(axis, "GET", f"/api/v1/stats/exchange?{period()}&group_by=agency", NGHE_AN, 200)
    rows = {r["key"]: r["values"] for r in ex["rows"]}
    assert set(rows) == {NGHE_AN, SO_TTTT, XA}  # VPCP and OUTSIDER are not under it
    # NGHE_AN received VPCP's and XA's, acked one, gave it a 03; XA sent one with Paper 1.
    assert rows[NGHE_AN]["received"] == 2 and rows[NGHE_AN]["median_ack_seconds"] == 60
    assert rows[NGHE_AN]["median_first_processing_seconds"] == 60
    assert rows[XA]["sent"] == 1 and rows[XA]["without_paper"] == 0
    assert rows[SO_TTTT]["sent"] == 1 and rows[SO_TTTT]["signed_valid"] == 0
    vpcp = await call(axis, "GET", f"/api/v1/stats/exchange?{period()}", VPCP, 200)
    # VPCP's one document: Paper 0; its tampered PDF failed; no signature valid (foreign root).
    assert vpcp["totals"]["sent"] == 1 and vpcp["totals"]["share_without_paper"] == 1.0
    assert vpcp["totals"]["share_signature_failed"] == 1.0
    assert vpcp["totals"]["share_signed_valid"] == 0.0
    dossiers = await call(axis, "GET", f"/api/v1/stats/dossiers?{period()}", NGHE_AN, 200)
    totals = dossiers["totals"]
    # three received (one online); two ended: the late one, the paused one on time; the open
    # one is not due yet.
    assert totals["received"] == 3 and totals["received_online"] == 1
    assert totals["finished"] == 2 and totals["on_time"] == 1 and totals["late"] == 1
    assert totals["open_overdue"] == 0 and totals["on_time_rate"] == 0.5
    fb = await call(axis, "GET", f"/api/v1/stats/feedback?{period()}", SO_TTTT, 200)
    assert fb["totals"]["received"] == 2 and fb["totals"]["answered_on_time"] == 1
    assert fb["totals"]["satisfaction_rate"] == 1.0

    # The drill-down lists the records behind a cell.
    late = await call(
        axis, "GET", f"/api/v1/stats/dossiers/items?{period()}&column=late", SO_TTTT, 200
    )
    assert len(late["items"]) == 1 and late["items"][0]["late"] is True
    received = f"/api/v1/stats/dossiers/items?{period()}&column=received&limit=2"
    page = await call(axis, "GET", received, SO_TTTT, 200)
    assert len(page["items"]) == 2 and page["next"]
    rest = await call(axis, "GET", f"{received}&after={page['next']}", SO_TTTT, 200)
    assert len(rest["items"]) == 1 and rest["next"] is None
    codes = [i["code"] for i in page["items"] + rest["items"]]
    assert len(set(codes)) == 3


async def test_access_follows_the_organid_tree(axis: Axis) -> None:
    await axis.send_ok(VPCP, document(VPCP, [NGHE_AN]))
    await fold(axis.client.app[DATABASE])
    base = f"/api/v1/stats/exchange?{period()}"
    # In the OrganId tree XA (001.01.00.H41) is under SO_TTTT (000.01.00.H41), under NGHE_AN
    # (000.00.00.H41); not the other way round; VPCP is nobody's; H99 is unknown.
    await call(axis, "GET", f"{base}&agency={XA}", NGHE_AN, 200)
    await call(axis, "GET", f"{base}&agency={XA}", SO_TTTT, 200)
    for caller, agency in (
        (XA, NGHE_AN),
        (NGHE_AN, VPCP),
        (SO_TTTT, NGHE_AN),
        (XA, "000.00.00.H99"),
    ):
        problem = await call(axis, "GET", f"{base}&agency={agency}", caller, 404)
        assert problem["type"].endswith("/not-found")
    await call(
        axis, "GET", f"/api/v1/stats/exchange/items?{period()}&column=sent&agency={VPCP}", XA, 404
    )
    # An admin token sees everything: VPCP's document too.
    token, token_hash = new_token()
    async with axis.client.app[DATABASE].transaction() as tx:
        await TokenRepo(tx).create(OUTSIDER, token_hash, label="admin", roles=("admin",))
    resp = await axis.client.get(base, headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200
    answer = await resp.json()
    assert answer["agency"] is None and answer["totals"]["sent"] == 1
    mine = await call(axis, "GET", base, NGHE_AN, 200)
    assert mine["agency"] == NGHE_AN and mine["totals"]["sent"] == 0
    assert mine["totals"]["received"] == 1


async def test_csv_is_utf8_with_bom_and_the_labels(axis: Axis) -> None:
    resp = await axis.get(
        "/api/v1/stats/feedback?from=2026-01-01&to=2026-03-31&format=csv", NGHE_AN
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    body = await resp.read()
    assert body.startswith(b"\xef\xbb\xbf")
    lines = body.decode("utf-8-sig").splitlines()
    assert lines[0] == (
        "key,label,Phản ánh tiếp nhận,Đã trả lời,Trả lời đúng hạn,Tỷ lệ trả lời đúng hạn,"
        "Được đánh giá,Hài lòng,Tỷ lệ hài lòng"
    )
    # three months, counts 0, shares empty (null)
    assert lines[1:] == [f"2026-0{m},0{m}/2026,0,0,0,,0,0," for m in (1, 2, 3)]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("exchange?from=2026-13-01", "from"),
        ("exchange?from=01/11/2026", "from"),
        ("exchange?to=2026-02-30", "to"),
        ("exchange?from=2026-12-01&to=2026-11-01", "from"),
        ("exchange?from=2000-01-01&to=2026-01-01", "to"),
        ("exchange?level=tinh", "level"),
        ("exchange?group_by=week", "group_by"),
        ("exchange?group_by=category", "group_by"),
        ("feedback?group_by=procedure", "group_by"),
        ("exchange?format=xlsx", "format"),
        ("exchange?agency=%3Cscript%3E", "agency"),
        ("votes", "figure"),
        ("dossiers/items?column=nope", "column"),
        ("dossiers/items", "column"),
        ("dossiers/items?column=agencies_active", "column"),
        ("feedback/items?column=received&limit=0", "limit"),
        ("feedback/items?column=received&after=zz", "after"),
        ("exchange/items?column=sent&scope=all", "scope"),
        ("exchange/items?column=sent&scope=own", "scope"),
        ("exchange/items?column=sent&level=tinh", "level"),
        ("exchange/items?column=sent&procedure=1.0001", "procedure"),
        ("dossiers/items?column=received&category=giao-thong", "category"),
        ("dossiers/items?column=received&procedure=%3Cb%3E", "procedure"),
    ],
)
async def test_bad_input_is_a_problem_naming_the_parameter(
    axis: Axis, query: str, parameter: str
) -> None:
    resp = await axis.get(f"/api/v1/stats/{query}", NGHE_AN)
    assert resp.status == 400
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    problem: dict[str, Any] = await resp.json()
    assert problem["type"].endswith("/invalid-stats-query")
    assert problem["parameter"] == parameter


async def test_the_fold_job_of_the_app_folds_what_arrives(axis: Axis) -> None:
    """No explicit fold: the app's own job (server/app/lifetimes.py) folds the queued cells."""
    await axis.send_ok(VPCP, document(VPCP, [NGHE_AN]))
    path = f"/api/v1/stats/exchange?{period()}"
    for _ in range(600):  # the job runs every 2 s; give it up to a minute on a busy machine
        answer = await call(axis, "GET", path, VPCP, 200)
        if answer["totals"]["sent"]:
            break
        await asyncio.sleep(0.1)
    assert answer["totals"]["sent"] == 1
    async with axis.client.app[DATABASE].reader() as tx:
        assert await StatsRepo(tx).queued() == 0
