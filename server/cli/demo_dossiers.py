"""The demo dossiers of ``lienthong demo`` (``make run``): three birth registrations at the demo
commune, received and moved through the domain functions (server/dossiers/), so that the public
lookup page ``/tra-cuu`` shows something. Idempotent: each has its ``Idempotency-Key``, and only
a dossier received by this run is moved."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

from server.calendar.hours import WorkingHours
from server.calendar.store import CalendarSource
from server.dossiers.intake import Intake, StagedFile, read_request, receive
from server.dossiers.moves import Move, advance
from server.runtime.config import Config
from server.runtime.objectstore import close_object_store, open_object_store
from storage.db import Database
from storage.ids import utcnow

UNIT = "000.05.31.H41"  # receiving unit and competent agency of 1.001193 in the demo catalogue
PROCEDURE = "1.001193"
# (idempotency key, applicant name, ID number, phone, the moves after intake)
DOSSIERS = (
    ("demo-tra-cuu-1", "Nguyễn Văn An", "040203001234", "0912345678", (4,)),
    ("demo-tra-cuu-2", "Trần Thị Ngọc Bình", "040303005678", "0987654321", (4, 5)),
    ("demo-tra-cuu-3", "Lê Minh Châu", "040199002468", "0901234567", (4, 9, 10)),
)


def _staged(directory: Path, component: str) -> StagedFile:
    path = directory / f"{component}.pdf"
    data = f"%PDF-1.7\n% demo {component}\n".encode()
    path.write_bytes(data)
    return StagedFile(
        component,
        f"{component}.pdf",
        "application/pdf",
        path,
        hashlib.sha256(data).hexdigest(),
        len(data),
    )


async def seed_demo_dossiers(config: Config, database: Database) -> list[str]:
    """Receive (or find again) the demo dossiers; their codes."""
    zone = ZoneInfo(config.dossiers.timezone)
    source = await CalendarSource.load(database, WorkingHours.from_settings(config.dossiers))
    objects = await open_object_store(config, database=database)
    codes = []
    try:
        for key, name, id_number, phone, moves in DOSSIERS:
            applicant = {"name": name, "id_number": id_number, "phone": phone}
            request = read_request({"procedure": PROCEDURE, "applicant": applicant}, utcnow())
            with tempfile.TemporaryDirectory() as tmp:
                files = [_staged(Path(tmp), c) for c in ("TK", "GCS")]
                received = await receive(
                    database, objects, source.clock, zone, Intake(UNIT, request, files, key)
                )
            code = received.dossier.code
            if received.created:
                for status in moves:
                    await advance(database, objects, source.clock, Move(UNIT, code, status))
            codes.append(code)
    finally:
        await close_object_store(objects)
    return codes
