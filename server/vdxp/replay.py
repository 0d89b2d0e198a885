"""Replayed VDXP requests refused (issue 18, docs/vdxp.md "Replayed requests").

A VDXP request is signed (HMAC-SHA256 over its ``XroadVnpt-*`` headers, ``timestamp``
included) but the protocol has no nonce: whoever saw one request could send it again. Two
checks, both off when ``[vdxp] timestamp_window`` is 0:

- the signed ``timestamp`` must be within ``timestamp_window`` seconds of the axis's clock
  (either way): an old captured request stops working once the window has passed;
- a request that changes the directory (:data:`REPLAY_CHECKED`: a replayed registerAgency
  would restore a unit its agency deleted since, a replayed deleteAgency delete it again; and
  registerAgency's body is not signed) is refused when its signature was seen within the
  window. The signatures are kept in the database (``vdxp_seen_signatures``), so every worker
  of ``serve --workers N`` sees the others'; rows older than twice the window are pruned (a
  request that old is refused for its timestamp anyway).

The other operations are not refused for a repeated signature: the SDK takes its timestamp
once per client object, so its polling and its retries repeat the same signed request, and
repeating them changes nothing: reads; ``sendEdoc`` is answered idempotently (the same
``DocId``, nothing stored twice); ``updateStatus`` cannot take an item back from ``done``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.runtime.config import VdxpSettings
from server.vdxp import protocol
from server.vdxp.errors import AuthError, ErrorCode
from storage.db import Database
from storage.repos.vdxp_replay import SeenSignatureRepo

# Operations whose repetition changes state (lowercase, as dispatched).
REPLAY_CHECKED = frozenset({"registeragency", "deleteagency"})


def check_timestamp(settings: VdxpSettings, params: protocol.SignedParams, now: datetime) -> None:
    """AuthError unless the signed ``timestamp`` is within the window around ``now``."""
    window = settings.timestamp_window
    if window == 0:
        return
    value = params.get("timestamp")
    if value is None or not value.strip():
        raise AuthError(f"missing signed header {protocol.H_TIMESTAMP}", ErrorCode.NOT_SIGNED)
    moment = protocol.parse_timestamp(value)
    if moment is None:
        raise AuthError(
            f"header {protocol.H_TIMESTAMP} is not ddMMyyyy'T'HHmmss+SSSS",
            ErrorCode.BAD_PARAMETER,
        )
    if abs((now - moment).total_seconds()) > window:
        raise AuthError(
            f"header {protocol.H_TIMESTAMP} is more than {window} seconds away from the axis's "
            "clock: create a new client (the timestamp is taken when it is created) and check "
            "the clock",
            ErrorCode.STALE_TIMESTAMP,
        )


async def check_replay(
    database: Database,
    settings: VdxpSettings,
    operation: str,
    params: protocol.SignedParams,
    signature: str,
    now: datetime | None = None,
) -> None:
    """Both checks for one authenticated request of ``operation`` (see the module doc);
    :class:`AuthError` (1008 stale timestamp, 1009 replayed request) when one fails."""
    moment = now or datetime.now(UTC)
    check_timestamp(settings, params, moment)
    if settings.timestamp_window == 0 or operation.lower() not in REPLAY_CHECKED:
        return
    horizon = moment - timedelta(seconds=2 * settings.timestamp_window)
    async with database.transaction() as tx:
        fresh = await SeenSignatureRepo(tx).first_sighting(
            signature.strip().lower(), moment, horizon
        )
    if not fresh:
        raise AuthError(
            "this signed request was received already (a replay); a new request needs a new "
            "timestamp (a new client object)",
            ErrorCode.REPLAYED,
        )
