"""Which once-per-start jobs a server process runs besides serving requests (``lienthong serve
--workers N``).

See server/app/workers.py for what runs where; :func:`role_of` reads it from an app. The
periodic jobs that must run once among all processes are not a role: whichever process holds a
job's lease runs it (server/runtime/leases.py, server/app/lifetimes.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True)
class WorkerRole:
    """Which jobs this server process runs besides serving requests (see the module doc)."""

    index: int = 0
    workers: int = 1

    @property
    def single(self) -> bool:
        """The only server process (no parent did the once-per-start jobs)."""
        return self.workers == 1

    @property
    def startup_jobs(self) -> bool:
        """Clear the spool, sweep orphan objects, seal plaintext secrets at start-up."""
        return self.single

    @property
    def shutdown_anchor(self) -> bool:
        """Anchor the audit head when the app stops (else the parent does, after all)."""
        return self.single

    @property
    def label(self) -> str:
        """The worker's index as text (X-Lienthong-Worker, the ``worker`` log field)."""
        return str(self.index)


ROLE: web.AppKey[WorkerRole] = web.AppKey("worker_role", WorkerRole)


def role_of(app: web.Application) -> WorkerRole:
    """The app's role; a single process when none was set (tests build apps directly)."""
    return app.get(ROLE) or WorkerRole()
