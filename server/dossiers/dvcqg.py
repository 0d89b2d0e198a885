"""The DVCQG sync: dossiers and their progress steps in the shapes of the National Public
Service Portal's ``DongBoHoSoMC`` and ``CapNhatTienDoHoSoMC`` services (shared/ONE-STOP.md §2.2,
as OpenCPS sends them), pushed to a configured adapter by one worker, and written to a file by
``lienthong dossier export-dvcqg``.

The rendering is pure (:func:`render_dossier`, :func:`render_steps`); :class:`DvcqgSync` reads
what changed since the adapter last accepted it (storage/repos/dvcqg.py), posts it, and keeps the
marks, the back-off and the dead-letter list. Field values are strings, as OpenCPS sends them
(``String.valueOf``); dates are ``yyyyMMddHHmmss`` in Asia/Ho_Chi_Minh (+07:00), "" when none.
Which fields are certain and which are not: docs/dossiers.md, "DVCQG sync".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from server.dossiers.catalogue import from_row
from server.dossiers.lifecycle import (
    DONE,
    LABELS,
    NEW,
    REFUSED,
    RETURNED,
    STOPPED,
    SUPPLEMENT,
    WITHDRAWN,
)
from server.dossiers.procedures import Procedure
from server.runtime.audit import ADMIN, record
from server.runtime.config import ConfigError, DvcqgSettings, optional_secret
from storage.db import Database, Tx
from storage.ids import utcnow
from storage.repos.agencies import AgencyRepo
from storage.repos.dossiers import (
    ApologyRow,
    DossierEventRow,
    DossierFileRow,
    DossierRepo,
    DossierRow,
)
from storage.repos.dvcqg import DvcqgRepo, SyncState
from storage.repos.procedures import ProcedureRepo

log = logging.getLogger("lienthong.dossiers.dvcqg")

VN = ZoneInfo("Asia/Ho_Chi_Minh")
DATE_FORMAT = "%Y%m%d%H%M%S"  # yyyyMMddHHmmss
TOKEN_ENV = "LIENTHONG_DVCQG_TOKEN"  # noqa: S105 (a variable name)
SYNC_DOSSIERS = "DongBoHoSoMC"
SYNC_STEPS = "CapNhatTienDoHoSoMC"
STEPS_PER_CALL = 10  # progress steps go in chunks of 10, as the Thanh Hoá client sends them
MAX_ERROR = 300  # characters of an adapter's answer kept as a dossier's last error


def dvcqg_date(value: datetime | None) -> str:
    """``yyyyMMddHHmmss`` in +07:00; "" for no date."""
    return "" if value is None else value.astimezone(VN).strftime(DATE_FORMAT)


@dataclass(frozen=True)
class DossierView:
    """What rendering a dossier needs, read in one transaction."""

    dossier: DossierRow
    procedure: Procedure | None
    files: Sequence[DossierFileRow]
    events: Sequence[DossierEventRow]
    names: Mapping[str, str]  # organ id -> agency name
    apologies: Sequence[ApologyRow] = ()

    def name(self, organ_id: str) -> str:
        return self.names.get(organ_id, organ_id)


async def read_view(tx: Tx, code: str) -> DossierView | None:
    """The dossier with everything its DVCQG form shows, or None."""
    repo = DossierRepo(tx)
    dossier = await repo.get(code)
    if dossier is None:
        return None
    row = await ProcedureRepo(tx).get(dossier.procedure)
    events = await repo.events(code)
    names: dict[str, str] = {}
    for organ_id in {dossier.agency, dossier.receiving_unit, *(e.actor for e in events)}:
        agency = await AgencyRepo(tx).get(organ_id)
        if agency is not None:
            names[organ_id] = agency.name
    return DossierView(
        dossier,
        None if row is None else from_row(row),
        await repo.files(code),
        events,
        names,
        await repo.apologies(code),
    )


def _first_at(events: Sequence[DossierEventRow], statuses: set[int]) -> datetime | None:
    return next((e.at for e in events if e.to_status in statuses), None)


def appointment(view: DossierView) -> datetime:
    """``NgayHenTra``: the due date the portal judges the dossier by (QĐ 766 KPI 2.1: on time
    when it ends by this date). The supplement pauses are in it; an apology's new date is not:
    the date sent is the one the first apology missed, so that a dossier late by an apology is
    late at the portal too, as it is here."""
    return view.apologies[0].old_due_at if view.apologies else view.dossier.due_at


def ended_at(events: Sequence[DossierEventRow]) -> datetime | None:
    """``NgayKetThucXuLy``: when processing ended, the first move to 9 (done), 10 (returned),
    8 (stopped), 3 (refused), or 7 (withdrawn) of a dossier that had been accepted (QĐ 766
    KPI 2.1: a withdrawal ends only an accepted dossier); None while it goes on."""
    for e in events:
        if e.to_status in (DONE, RETURNED, STOPPED, REFUSED):
            return e.at
        if e.to_status == WITHDRAWN and e.from_status not in (None, NEW):
            return e.at
    return None


def render_dossier(view: DossierView) -> dict[str, Any]:
    """The ``DongBoHoSoMC`` data item of a dossier."""
    d, events = view.dossier, view.events
    applicant = d.applicant
    procedure = view.procedure
    fees = () if procedure is None else procedure.fees
    files_of: dict[int | None, list[DossierFileRow]] = {}
    for f in view.files:
        files_of.setdefault(f.event, []).append(f)
    return {
        "MaHoSo": d.code,
        "MaTTHC": d.procedure,
        "TenTTHC": "" if procedure is None else procedure.name,
        "MaLinhVuc": "" if procedure is None else procedure.field or "",
        "TenLinhVuc": "",
        "ChuHoSo": str(applicant.get("name", "")),
        "LoaiDoiTuong": "2" if applicant.get("kind") == "business" else "1",
        "MaDoiTuong": "",
        "ThongTinKhac": "",
        "Email": str(applicant.get("email") or ""),
        "Fax": "",
        "SoDienThoai": str(applicant.get("phone", "")),
        "TrichYeuHoSo": "" if procedure is None else procedure.name,
        "NgayTiepNhan": dvcqg_date(d.received_at),
        "NgayHenTra": dvcqg_date(appointment(view)),
        "TrangThaiHoSo": str(d.status),
        "NgayTra": dvcqg_date(_first_at(events, {RETURNED})),
        "ThongTinTra": "",
        "HinhThuc": "1" if d.channel == 3 else "0",
        "NgayKetThucXuLy": dvcqg_date(ended_at(events)),
        "DonViXuLy": view.name(d.agency),
        "GhiChu": "",
        "TaiLieuNop": [_file(f) for f in files_of.get(None, [])],
        "DanhSachLePhi": [
            {
                "TenPhiLePhi": fee.description,
                "MaPhiLePhi": "",
                "HinhThucThu": "",
                "Gia": str(fee.amount),
                "LoaiPhiLePhi": "",
            }
            for fee in fees
        ],
        "DanhSachTepDinhKemKhac": [],
        "DanhSachHoSoBoSung": _supplements(view, files_of),
        "DanhSachGiayToKetQua": [],
        # Fields of the 2024–2025 Thanh Hoá client (ONE-STOP.md §2.2, [M]).
        "KenhThucHien": str(d.channel),
        "SoGiayToChuHoSo": str(applicant.get("id_number", "")),
        "NgayNopHoSo": dvcqg_date(d.received_at),
        "NgayTuChoi": dvcqg_date(_first_at(events, {REFUSED})),
    }


def _file(f: DossierFileRow) -> dict[str, Any]:
    return {
        "TepDinhKemId": f.sha256,
        "TenTepDinhKem": f.name,
        "IsDeleted": "False",
        "MaThanhPhanHoSo": f.component,
        "DuongDanTaiTepTin": "",
    }


def _supplements(
    view: DossierView, files_of: Mapping[int | None, list[DossierFileRow]]
) -> list[dict[str, Any]]:
    """Each supplement request (a move to 5) with the move that answered it, if any."""
    items = []
    events = list(view.events)
    for i, event in enumerate(events):
        if event.to_status != SUPPLEMENT:
            continue
        answer = next((e for e in events[i + 1 :] if e.from_status == SUPPLEMENT), None)
        items.append(
            {
                "HoSoBoSungId": str(event.id),
                "NguoiYeuCauBoSung": view.name(event.actor),
                "NoiDungBoSung": event.note,
                "NgayBoSung": dvcqg_date(event.at),
                "NguoiTiepNhanBoSung": "" if answer is None else view.name(answer.actor),
                "ThongTinTiepNhan": "" if answer is None else answer.note,
                "NgayTiepNhanBoSung": "" if answer is None else dvcqg_date(answer.at),
                "TrangThaiBoSung": "0" if answer is None else "1",
                "DanhSachGiayToBoSung": []
                if answer is None
                else [_file(f) for f in files_of.get(answer.id, [])],
                "DanhSachLePhiBoSung": [],
                # the due date when the pause began, and after the supplement moved it
                "NgayHenTraTruoc": dvcqg_date(event.due_at),
                "NgayHenTraMoi": "" if answer is None else dvcqg_date(answer.due_at),
            }
        )
    return items


def render_steps(view: DossierView, only: set[int] | None = None) -> list[dict[str, Any]]:
    """The ``CapNhatTienDoHoSoMC`` data items of the dossier's events (those in ``only``)."""
    d = view.dossier
    steps = []
    start = d.received_at
    for event in view.events:
        if only is None or event.id in only:
            steps.append(
                {
                    "MaHoSo": d.code,
                    "NguoiXuLy": view.name(event.actor),
                    "ChucDanh": "",
                    "ThoiDiemXuLy": dvcqg_date(event.at),
                    "PhongBanXuLy": view.name(event.actor),
                    "NoiDungXuLy": event.note or LABELS.get(event.to_status, ""),
                    "TrangThai": str(event.to_status),
                    "NgayBatDau": dvcqg_date(start),
                    "NgayKetThucTheoQuyDinh": dvcqg_date(event.due_at or d.due_at),
                }
            )
        start = event.at
    return steps


def dossiers_body(items: list[dict[str, Any]], *, updating: bool) -> dict[str, Any]:
    """The body of a ``DongBoHoSoMC`` call (without ``madonvi``)."""
    return {"service": SYNC_DOSSIERS, "isUpdating": "True" if updating else "False", "data": items}


def steps_body(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The body of a ``CapNhatTienDoHoSoMC`` call (without ``madonvi``)."""
    return {"service": SYNC_STEPS, "data": items}


async def export(database: Database, since: datetime) -> dict[str, Any]:
    """The dossiers changed at or after ``since`` and all their steps, as one document: the
    two services' bodies, with the same items the sync pushes."""
    dossiers: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    async with database.reader() as tx:
        for code in await DvcqgRepo(tx).changed_since(since):
            view = await read_view(tx, code)
            if view is not None:
                dossiers.append(render_dossier(view))
                steps.extend(render_steps(view))
    return {
        SYNC_DOSSIERS: dossiers_body(dossiers, updating=False),
        SYNC_STEPS: steps_body(steps),
    }


async def requeue(database: Database, code: str) -> bool:
    """Take a dossier off the dead-letter list (the next pass pushes it), recorded in the audit
    chain; False when it was not on the list."""
    async with database.transaction() as tx:
        if not await DvcqgRepo(tx).requeue(code):
            return False
        await record(tx, ADMIN, "dossier.dvcqg_retry", [code])
    return True


def adapter_token(settings: DvcqgSettings) -> str | None:
    """The adapter's bearer token: the environment, else the token file; None: none."""
    return optional_secret(TOKEN_ENV, settings.token_file, "dvcqg.token_file")


class AdapterError(Exception):
    """The adapter refused a call or could not be reached (the message names no secret)."""


@dataclass
class PassReport:
    """What one pass did: dossiers pushed, steps among them, failures, and the codes of the
    dossiers it put on the dead-letter list."""

    pushed: int = 0
    steps: int = 0
    failed: int = 0
    dead: list[str] = field(default_factory=list)


class DvcqgSync:
    """Pushes new and changed dossiers and their new steps to the adapter (one worker)."""

    def __init__(
        self, settings: DvcqgSettings, database: Database, session: aiohttp.ClientSession
    ) -> None:
        if settings.url is None:
            raise ConfigError("setting dvcqg.url: the sync needs the adapter's URL")
        self.settings = settings
        self.url = settings.url
        self.database = database
        self.session = session
        self._token = adapter_token(settings)
        self._lock = asyncio.Lock()  # passes never overlap

    async def run_once(self) -> PassReport:
        """One pass: every due dossier (at most ``batch``), one after the other."""
        report = PassReport()
        async with self._lock:
            async with self.database.reader() as tx:
                codes = await DvcqgRepo(tx).due(utcnow(), self.settings.batch)
            for code in codes:
                await self._sync(code, report)
        return report

    async def run(self) -> None:
        """Passes every ``interval`` seconds until cancelled."""
        while True:
            try:
                report = await self.run_once()
                if report.pushed or report.failed:
                    counts = {"pushed": report.pushed, "steps": report.steps}
                    log.info("dvcqg sync pass", extra={**counts, "failed": report.failed})
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next pass tries again
                log.error("dvcqg sync pass failed", extra={"error": type(exc).__name__})
            await asyncio.sleep(self.settings.interval)

    async def _sync(self, code: str, report: PassReport) -> None:
        async with self.database.reader() as tx:
            view = await read_view(tx, code)
            repo = DvcqgRepo(tx)
            state = await repo.state(code)
            sent = await repo.synced_events(code)
        if view is None:
            return
        updating = state is not None and state.synced_version is not None
        new_events = [e.id for e in view.events if e.id not in sent]
        steps = render_steps(view, set(new_events))
        unit = self.settings.unit_code or view.dossier.receiving_unit
        try:
            await self._post(unit, dossiers_body([render_dossier(view)], updating=updating))
            for i in range(0, len(steps), STEPS_PER_CALL):
                await self._post(unit, steps_body(steps[i : i + STEPS_PER_CALL]))
        except AdapterError as exc:
            await self._failed(code, state, str(exc), report)
            return
        async with self.database.transaction() as tx:
            await DvcqgRepo(tx).mark_synced(code, view.dossier.updated_at, new_events, utcnow())
        report.pushed += 1
        report.steps += len(steps)

    async def _failed(
        self, code: str, state: SyncState | None, error: str, report: PassReport
    ) -> None:
        attempts = 1 + (0 if state is None else state.attempts)
        now = utcnow()
        delay = min(self.settings.base_delay * 2 ** (attempts - 1), self.settings.max_delay)
        dead = now if attempts >= self.settings.max_attempts else None
        async with self.database.transaction() as tx:
            await DvcqgRepo(tx).mark_failed(code, error, now + timedelta(seconds=delay), dead)
        report.failed += 1
        extra = {"dossier": code, "attempts": attempts, "error": error}
        if dead is not None:
            report.dead.append(code)
            log.error("dvcqg sync gave up: dossier on the dead-letter list", extra=extra)
        else:
            log.warning("dvcqg sync failed, will retry", extra={**extra, "retry_in": delay})

    async def _post(self, unit: str, body: dict[str, Any]) -> None:
        headers = {"Content-Type": "application/json", "dstcode": unit}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        payload = {**body, "madonvi": unit}
        try:
            async with self.session.post(
                self.url,
                json=payload,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
            ) as resp:
                text = await resp.text()
                if resp.status != 200:
                    raise AdapterError(f"{body['service']}: HTTP {resp.status} {self._cut(text)}")
                try:
                    answer = await resp.json(content_type=None)
                except ValueError:
                    raise AdapterError(f"{body['service']}: not JSON: {self._cut(text)}") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AdapterError(f"{body['service']}: {type(exc).__name__}: {exc}") from None
        if not isinstance(answer, dict) or str(answer.get("error_code")) != "0":
            raise AdapterError(f"{body['service']}: refused: {self._cut(text)}")

    def _cut(self, text: str) -> str:
        """An adapter's answer, shortened, with the token blanked should it echo it."""
        text = text[:MAX_ERROR]
        return text.replace(self._token, "***") if self._token else text
