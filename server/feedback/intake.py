"""Receiving a feedback (tiếp nhận phản ánh, kiến nghị): the checks, its code, its limits, its
photos, the sender's private token.

Everything is checked before anything is stored (:func:`read_submission` for the fields, then
the category, its attributes and the photos). The photos are re-encoded without metadata
(server/feedback/photos.py) and stored with intent records first; the feedback row, its photos,
its first event and its audit entry are written in one transaction that also allocates the
number of its code, ``<prefix>-YYMMDD-NNNN`` (``[feedback] code_prefix``, the day in
``[dossiers] timezone``): a refused intake takes no number.

The private follow-up token is 32 random bytes (URL-safe base64), stored as its SHA-256 only.
With an ``Idempotency-Key`` (stored as its SHA-256 too), the token is the HMAC of the code
under the key, so a retry with the same key gets the same code *and* the same token, and a
leaked database reveals neither.

How to call it (the REST API, the /phan-anh pages and Open311 all do)::

    services = FeedbackServices(database, objects, clock, zone, config.feedback)
    submission = read_submission(fields, photos=[spooled_file, ...], channel="web")
    received = await submit(services, submission, officer=None, idempotency_key=None)
    received.feedback.code, received.token, received.created

A channel that stores more with a feedback (Open311: the app, ``media_url``, a batch token)
passes ``extras=`` (:class:`IntakeExtras`): its rows are written in the intake's own
transaction, and it may say the intake repeats an earlier feedback (a retried post), which
is then answered without storing anything.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol
from zoneinfo import ZoneInfo

from server.calendar.clock import WorkingClock
from server.feedback.categories import check_values
from server.feedback.errors import FeedbackNotFound, InvalidFeedback
from server.feedback.lifecycle import ANSWER_DAYS, CLASSIFY_DAYS, RECEIVED, TRANSFER_DAYS
from server.feedback.photos import MAX_PHOTOS, CleanPhoto, clean_photo
from server.runtime.audit import record
from server.runtime.config import FeedbackSettings
from server.runtime.contacts import EMAIL, IDEMPOTENCY_KEY, PHONE, PHONE_RULE, phone_digits
from server.runtime.spool import temp_path
from server.runtime.staging import settle_objects, store_objects
from storage.db import Database, Tx
from storage.ids import utcnow
from storage.objects.base import ObjectStore
from storage.repos.agencies import AgencyRepo
from storage.repos.feedback import CategoryRepo, FeedbackRepo, FeedbackRow, PhotoRow

MAX_CONTENT = 4000
MAX_TITLE = 200
MAX_ADDRESS = 500
MAX_BACKDATE = timedelta(days=30)
# How feedback came: the web page and the REST API (web), Open311 apps (app), and what
# receiving officers enter: by phone, letter, e-mail or at the desk.
CHANNELS = ("web", "app", "phone", "letter", "email", "counter")
OFFICER_CHANNELS = ("phone", "letter", "email", "counter")  # entered by receiving officers
FIELDS = {
    "category",
    "title",
    "content",
    "address",
    "lat",
    "long",
    "name",
    "phone",
    "email",
    "attributes",
    "channel",
    "received_at",
}

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class FeedbackServices:
    """What the feedback domain needs of the running axis."""

    database: Database
    objects: ObjectStore
    clock: WorkingClock
    zone: ZoneInfo
    settings: FeedbackSettings
    spool_dir: Path


@dataclass(frozen=True)
class Submission:
    """The checked fields of a feedback; ``photos`` are open files (spooled), at their start."""

    category: str
    title: str
    content: str
    name: str
    phone: str = ""
    email: str = ""
    address: str = ""
    lat: float | None = None
    lon: float | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    photos: Sequence[IO[bytes]] = ()
    channel: str = "web"
    received_at: datetime | None = None


class IntakeExtras(Protocol):
    """What a channel stores with a feedback, in the intake's transaction."""

    async def earlier(self, tx: Tx) -> str | None:
        """The code of an earlier feedback this intake repeats (nothing is stored), or None."""
        ...

    async def store(self, tx: Tx, row: FeedbackRow) -> None:
        """Write the channel's rows of the new feedback ``row``."""
        ...


@dataclass(frozen=True)
class Received:
    """What an intake answered: the feedback, the private token (to give the sender) and
    whether it was created now (False: a retry with the same ``Idempotency-Key``, or one that
    :meth:`IntakeExtras.earlier` recognised: then the token is ``""``, not known)."""

    feedback: FeedbackRow
    token: str
    created: bool


def _text(data: Mapping[str, Any], key: str, limit: int, *, required: bool, lines: bool) -> str:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise InvalidFeedback(key, "is required")
        return ""
    if not isinstance(value, str):
        raise InvalidFeedback(key, "must be a string")
    value = _CONTROL.sub("", value).replace("\r\n", "\n").strip()
    if not lines:
        value = " ".join(value.split())
    if len(value) > limit:
        raise InvalidFeedback(key, f"must be at most {limit} characters")
    if required and not value:
        raise InvalidFeedback(key, "is required")
    return value


def _coordinate(data: Mapping[str, Any], key: str, bound: float) -> float | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidFeedback(key, f"{value!r} is not a number") from None
    if isinstance(value, bool) or not math.isfinite(number) or abs(number) > bound:
        raise InvalidFeedback(key, f"must be between -{bound:g} and {bound:g}")
    return number


def read_contact(data: Mapping[str, Any]) -> tuple[str, str, str]:
    """The sender's name and a phone or an e-mail (NĐ 20/2008 Art. 7: required)."""
    name = _text(data, "name", 200, required=True, lines=False)
    phone = phone_digits(_text(data, "phone", 30, required=False, lines=False))
    email = _text(data, "email", 254, required=False, lines=False)
    if not phone and not email:
        raise InvalidFeedback("phone", "a phone number or an e-mail address is required")
    if phone and not PHONE.match(phone):
        raise InvalidFeedback("phone", PHONE_RULE)
    if email and not EMAIL.match(email):
        raise InvalidFeedback("email", f"{email!r} is not an e-mail address")
    return name, phone, email


def read_submission(
    data: Mapping[str, Any],
    *,
    photos: Sequence[IO[bytes]] = (),
    channel: str = "web",
    now: datetime | None = None,
) -> Submission:
    """The fields of a feedback (JSON, form or Open311 mapped to these names), each checked:
    ``category``, ``title``, ``content`` (≤ 4,000 characters, plain text: stored as given,
    shown escaped), ``address`` and/or ``lat`` + ``long``, ``name`` and ``phone`` or
    ``email``, ``attributes`` (``{code: value}``), ``received_at`` (officers only, ≤ 30 days
    back). :class:`InvalidFeedback` names the field."""
    unknown = set(data) - FIELDS
    if unknown:
        raise InvalidFeedback(sorted(unknown)[0], "is not a known field")
    category = _text(data, "category", 50, required=True, lines=False)
    title = _text(data, "title", MAX_TITLE, required=True, lines=False)
    content = _text(data, "content", MAX_CONTENT, required=True, lines=True)
    address = _text(data, "address", MAX_ADDRESS, required=False, lines=False)
    lat = _coordinate(data, "lat", 90)
    lon = _coordinate(data, "long", 180)
    if (lat is None) != (lon is None):
        raise InvalidFeedback("lat" if lat is None else "long", "lat and long go together")
    if not address and lat is None:
        raise InvalidFeedback("address", "the place is required: an address or lat and long")
    name, phone, email = read_contact(data)
    attributes = data.get("attributes") or {}
    if not isinstance(attributes, Mapping):
        raise InvalidFeedback("attributes", "must be an object {code: value}")
    if len(photos) > MAX_PHOTOS:
        raise InvalidFeedback("photos", f"at most {MAX_PHOTOS} photos")
    if channel not in CHANNELS:
        raise InvalidFeedback("channel", f"must be one of {', '.join(CHANNELS)}")
    received_at = None
    if data.get("received_at"):
        moment = data["received_at"]
        try:
            received_at = datetime.fromisoformat(str(moment))
        except ValueError:
            raise InvalidFeedback("received_at", f"{moment!r} is not an ISO 8601 time") from None
        if received_at.tzinfo is None:
            raise InvalidFeedback("received_at", "must carry its offset (e.g. +07:00)")
        current = now or utcnow()
        if received_at > current or received_at < current - MAX_BACKDATE:
            raise InvalidFeedback("received_at", "must be within the last 30 days")
    return Submission(
        category, title, content, name, phone, email, address, lat, lon,
        dict(attributes), tuple(photos), channel, received_at,
    )  # fmt: skip


def check_key(key: str | None) -> str | None:
    """An ``Idempotency-Key``: 1–200 visible ASCII characters."""
    if key is not None and not IDEMPOTENCY_KEY.match(key):
        raise InvalidFeedback("Idempotency-Key", "must be 1 to 200 visible ASCII characters")
    return key


def hash_secret(text: str) -> str:
    """The stored form of a token or an idempotency key."""
    return hashlib.sha256(text.encode()).hexdigest()


def _token(code: str, key: str | None) -> str:
    raw = (
        secrets.token_bytes(32)
        if key is None
        else hmac.digest(key.encode(), f"lienthong-feedback:{code}".encode(), "sha256")
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def feedback_code(prefix: str, day: str, seq: int) -> str:
    """``PA-YYMMDD-NNNN``: letters, digits and ``-`` only (one URL path segment)."""
    return f"{prefix}-{day}-{seq:04d}"


async def _clean(services: FeedbackServices, photos: Sequence[IO[bytes]]) -> list[CleanPhoto]:
    out: list[CleanPhoto] = []
    settings = services.settings
    try:
        for n, photo in enumerate(photos, 1):
            path = temp_path(services.spool_dir, ".photo")
            out.append(
                await asyncio.to_thread(
                    clean_photo,
                    photo,
                    f"photos[{n}]",
                    path,
                    max_bytes=settings.max_photo_bytes,
                    max_pixels=settings.max_photo_pixels,
                )
            )
    except BaseException:
        for done in out:
            done.path.unlink(missing_ok=True)
        raise
    return out


async def _earlier(database: Database, key: str | None) -> FeedbackRow | None:
    if key is None:
        return None
    async with database.reader() as tx:
        return await FeedbackRepo(tx).by_idempotency_key(hash_secret(key))


async def submit(
    services: FeedbackServices,
    submission: Submission,
    *,
    officer: str | None = None,
    idempotency_key: str | None = None,
    extras: IntakeExtras | None = None,
) -> Received:
    """Check and store a feedback; :class:`InvalidFeedback` (nothing stored) when it breaks a
    rule. ``officer``: the organ id of a receiving officer entering it (phone, letter...): that
    agency receives it; anonymous feedback goes to ``[feedback] receiving_unit``, or to the
    category's agency. A retry with the same ``Idempotency-Key`` answers the first feedback.
    ``extras``: the channel's own rows, in the same transaction (see :class:`IntakeExtras`)."""
    key = check_key(idempotency_key)
    known = await _earlier(services.database, key)
    if known is not None:
        return Received(known, _token(known.code, key), created=False)
    if officer is None and (
        submission.channel in OFFICER_CHANNELS or submission.received_at is not None
    ):
        field = "channel" if submission.channel in OFFICER_CHANNELS else "received_at"
        raise InvalidFeedback(field, "only receiving officers enter feedback that came so")
    async with services.database.reader() as tx:
        category = await CategoryRepo(tx).get(submission.category)
        if category is None:
            raise InvalidFeedback("category", f"{submission.category!r} is not a category")
        attributes = check_values(category, submission.attributes)
        receiving = officer or services.settings.receiving_unit or category.agency
        if receiving not in await AgencyRepo(tx).known([receiving]):
            raise InvalidFeedback("category", f"its receiving unit {receiving} is not on this axis")
    photos = await _clean(services, submission.photos)
    try:
        target = _Target(category.code, category.agency, receiving, officer, attributes)
        return await _store(services, submission, target, photos, key, extras)
    finally:
        for photo in photos:
            photo.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class _Target:
    category: str
    agency: str
    receiving: str
    officer: str | None
    attributes: dict[str, Any]


async def _store(
    services: FeedbackServices,
    submission: Submission,
    target: _Target,
    photos: list[CleanPhoto],
    key: str | None,
    extras: IntakeExtras | None,
) -> Received:
    clock = services.clock
    now = utcnow()
    received_at = submission.received_at or now
    day = received_at.astimezone(services.zone).strftime("%y%m%d")
    await store_objects(services.database, services.objects, photos)
    async with services.database.transaction() as tx:
        repo = FeedbackRepo(tx)
        if key is not None:
            known = await repo.by_idempotency_key(hash_secret(key))
            if known is not None:  # a concurrent retry won
                return Received(known, _token(known.code, key), created=False)
        repeated = None if extras is None else await extras.earlier(tx)
        if repeated is not None:
            earlier = await repo.get(repeated)
            if earlier is not None:
                return Received(earlier, "", created=False)
        seq = await repo.next_seq(day)
        code = feedback_code(services.settings.code_prefix, day, seq)
        token = _token(code, key)
        sender = {"name": submission.name, "phone": submission.phone, "email": submission.email}
        row = FeedbackRow(
            code=code, day=day, seq=seq, category=target.category,
            receiving_unit=target.receiving, agency=target.agency,
            channel=submission.channel, status=RECEIVED,
            title=submission.title, content=submission.content, address=submission.address,
            lat=submission.lat, lon=submission.lon, attributes=target.attributes,
            sender=sender, token_hash=hash_secret(token),
            idempotency_key=None if key is None else hash_secret(key),
            received_at=received_at, classify_due=clock.due_at(received_at, CLASSIFY_DAYS),
            transfer_due=clock.due_at(received_at, TRANSFER_DAYS),
            answer_due=clock.due_at(received_at, ANSWER_DAYS), created_at=now, updated_at=now,
        )  # fmt: skip
        await repo.insert(row)
        await repo.add_photos(
            code,
            [
                PhotoRow(n, p.content_type, p.sha256, p.size, p.width, p.height)
                for n, p in enumerate(photos, 1)
            ],
        )
        actor = target.officer or "citizen"
        await repo.add_event(code, actor, received_at, None, RECEIVED, "")
        await settle_objects(tx, photos)
        details = {
            "category": target.category,
            "receiving_unit": target.receiving,
            "agency": target.agency,
            "channel": submission.channel,
            "photos": [p.sha256 for p in photos],
        }
        await record(tx, actor, "feedback.intake", [code], details)
        if extras is not None:
            await extras.store(tx, row)
    return Received(row, token, created=True)


async def by_token(database: Database, code: str, token: str) -> FeedbackRow:
    """The feedback whose private link is ``code`` + ``token``; :class:`FeedbackNotFound` for
    an unknown code or a wrong token (the same answer: nothing tells them apart)."""
    async with database.reader() as tx:
        row = await FeedbackRepo(tx).get(code)
    if row is None or not token or not hmac.compare_digest(row.token_hash, hash_secret(token)):
        raise FeedbackNotFound("No feedback has this code and token.")
    return row
