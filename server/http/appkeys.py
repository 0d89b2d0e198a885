"""Typed keys of the aiohttp application (dependency injection without module globals).

``app.py`` fills them at start-up; handlers read them with ``request.app[KEY]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from server.calendar.store import CalendarSource
    from server.dossiers.slips import SlipSealer
    from server.exchange import Exchange
    from server.runtime.config import Config
    from server.runtime.leases import Jobs
    from server.signatures.verification import Verifier
    from storage.db import Database
    from storage.objects.base import ObjectStore
    from storage.repos.tokens import Principal

CONFIG: web.AppKey[Config] = web.AppKey("config")
DATABASE: web.AppKey[Database] = web.AppKey("database")
OBJECTS: web.AppKey[ObjectStore] = web.AppKey("objects")
EXCHANGE: web.AppKey[Exchange] = web.AppKey("exchange")
# The working-day calendar of due dates (server/calendar/store.py); loaded by
# server/app/lifetimes.py calendar_context.
CALENDAR: web.AppKey[CalendarSource] = web.AppKey("calendar")
# The seal of dossier slips (the receipts' seal and TSA); set by server/app/lifetimes.py
# evidence_context.
SLIP_SEALER: web.AppKey[SlipSealer] = web.AppKey("slip_sealer")
# The once-only jobs, each run while this process holds its lease (server/runtime/leases.py);
# set by server/app/lifetimes.py jobs_context.
JOBS: web.AppKey[Jobs] = web.AppKey("jobs")
# Signature verification (server/signatures/verification.py); set by server/http/verify.py at
# start-up.
VERIFIER: web.AppKey[Verifier] = web.AppKey("verifier")

# Per-request values set by the middlewares.
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal")
