"""``lienthong jobs``: the leases of the once-only jobs (docs/scaling.md, "Once-only jobs").

Which process holds each job's lease (``host:pid:random``), its fencing token and until when,
read from the database of a local data directory (the servers running on it keep renewing).
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from edxml.model import VN_TZ
from server.cli.database import with_database
from server.cli.options import add_local_options, local_config
from server.cli.table import render_table
from storage.db import Database
from storage.ids import utcnow
from storage.repos.leases import LeaseRepo, LeaseRow


def register(sub: Any) -> None:
    """Add ``jobs`` to the ``lienthong`` parser."""
    jobs = sub.add_parser(
        "jobs", help="the once-only jobs: which server process holds each one's lease"
    )
    add_local_options(jobs)
    jobs.set_defaults(func=cmd_jobs)


async def _leases(database: Database) -> list[LeaseRow]:
    async with database.reader() as tx:
        return await LeaseRepo(tx).all()


def _state(row: LeaseRow, now: datetime) -> str:
    if row.held_at(now):
        return f"held, {int((row.expires_at - now).total_seconds())} s left"
    return "free (released or expired)"


def _time(value: datetime) -> str:
    return value.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M:%S")


def cmd_jobs(args: argparse.Namespace) -> int:
    """List the job leases: job, holder, token, expiry (+07:00) and whether held now."""
    rows = with_database(local_config(args), _leases)
    if not rows:
        print("No job has taken a lease yet (no server has run on this database).")
        return 0
    now = utcnow()
    print(
        render_table(
            ["JOB", "HOLDER", "TOKEN", "EXPIRES (+07:00)", "STATE"],
            [[r.job, r.holder, r.token, _time(r.expires_at), _state(r, now)] for r in rows],
        )
    )
    return 0
