"""Open311 over the feedback domain (server/feedback/): categories are the services, feedback
the service requests (docs/open311.md, "How feedback maps").

* A posted request goes through the domain's own intake (``read_submission`` and ``submit``:
  the same checks, code, limits and audit as the page and the REST API); what Open311 adds
  (the app, ``media_url``, ``device_id``, ``account_id``, a batch token) is recorded beside it
  in ``open311_requests``, in the intake's transaction (:class:`Open311Extras`); its channel
  is ``app``. ``media_url`` is stored as text and never fetched.
* A retried POST answers the first request and stores nothing: with an ``Idempotency-Key``
  header, the same app and key (for ever); without one, the same app and the same form
  (``api_key`` left out) within :data:`RETRY_WINDOW`.
* A request as shown: ``status`` ``closed`` once answered, published or not accepted, else
  ``open``; ``status_notes`` the published answer; ``expected_datetime`` the deadline the
  feedback runs against now (classify, transfer, answer, publish); ``agency_responsible`` the
  competent agency's name; ``description`` the content. Never the sender's name or contacts,
  never hidden feedback (storage/repos/open311_requests.py selects neither).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from server.feedback.intake import FeedbackServices, read_submission, submit
from server.feedback.lifecycle import (
    ANSWERED,
    CLASSIFIED,
    LABELS,
    NOT_ACCEPTED,
    PUBLISHED,
    RECEIVED,
)
from server.http import open311_format as o311
from storage.db import Tx
from storage.ids import utcnow
from storage.repos.feedback import CategoryRepo, CategoryRow, FeedbackRow
from storage.repos.open311_requests import Open311Repo, Open311Row

CLOSED = (ANSWERED, PUBLISHED, NOT_ACCEPTED)
MAX_REQUESTS = 1000  # the spec's default limit of GET requests
TITLE_WORDS = 200  # characters of the description that make the feedback's title
RETRY_WINDOW = timedelta(minutes=10)  # the same app posting the same form again: a retry


def service_of(category: CategoryRow) -> o311.Service:
    """A category as an Open311 service."""
    attributes = tuple(
        o311.Attribute(
            code=a["code"],
            datatype=a["datatype"],
            description=a["description"],
            required=bool(a.get("required", False)),
            variable=bool(a.get("variable", True)),
            order=int(a.get("order", 1)),
            datatype_description=a.get("datatype_description") or None,
            values=tuple(o311.AttributeValue(v["key"], v["name"]) for v in a.get("values", ())),
        )
        for a in category.attributes
    )
    return o311.Service(
        service_code=category.code,
        service_name=category.name,
        description=category.description or None,
        type=category.type,
        keywords=category.keywords,
        group=category.group or None,
        attributes=attributes,
    )


def status_of(row: Open311Row) -> str:
    """``open`` or ``closed``."""
    return "closed" if row.status in CLOSED else "open"


def expected_of(row: Open311Row) -> datetime | None:
    """The deadline the feedback runs against now; None once nothing is due."""
    if row.status == RECEIVED:
        return row.classify_due
    if row.status == CLASSIFIED and row.agency != row.receiving_unit:
        return row.transfer_due
    if row.status == ANSWERED:
        return row.publish_due
    if row.status in (PUBLISHED, NOT_ACCEPTED):
        return None
    return row.answer_due


def request_of(row: Open311Row, zone: ZoneInfo) -> o311.ServiceRequest:
    """A visible feedback as an Open311 service request (times in ``zone``)."""
    expected = expected_of(row)
    return o311.ServiceRequest(
        service_request_id=row.code,
        status=status_of(row),
        status_notes=row.answer if row.published_at is not None and row.answer else None,
        service_name=row.category_name,
        service_code=row.category,
        description=row.content,
        agency_responsible=row.agency_name or row.agency,
        requested_datetime=row.received_at.astimezone(zone),
        updated_datetime=row.updated_at.astimezone(zone),
        expected_datetime=None if expected is None else expected.astimezone(zone),
        address=row.address or None,
        lat=row.lat,
        long=row.lon,
        media_url=row.media_url,
    )


def _title(new: o311.NewRequest, service: o311.Service) -> str:
    first = (new.description or "").strip().splitlines()
    text = " ".join(first[0].split()) if first else ""
    if not text:
        return service.service_name
    return text if len(text) <= TITLE_WORDS else text[: TITLE_WORDS - 1] + "…"


def submission_fields(new: o311.NewRequest, service: o311.Service) -> dict[str, Any]:
    """The intake's fields (server/feedback/intake.py) of a posted request."""
    lists = {a.code for a in service.attributes if a.datatype == "multivaluelist"}
    address = new.address_string or ""
    if not address and new.lat is None and new.address_id:
        address = f"address_id {new.address_id}"
    return {
        "category": new.service_code,
        "title": _title(new, service),
        "content": (new.description or "").strip() or service.service_name,
        "address": address,
        "lat": new.lat,
        "long": new.long,
        "name": new.name,
        "phone": new.phone or "",
        "email": new.email or "",
        "attributes": {
            code: values if code in lists else values[0] for code, values in new.attributes.items()
        },
    }


@dataclass(frozen=True)
class Open311Extras:
    """What an app's POST stores with the feedback, in the intake's transaction, and how a
    retry is recognised (``idempotency_key`` and ``body_hash`` are SHA-256 hex)."""

    app: str
    new: o311.NewRequest
    token: str | None
    idempotency_key: str | None
    body_hash: str

    async def earlier(self, tx: Tx) -> str | None:
        repo = Open311Repo(tx)
        if self.idempotency_key is not None:
            return await repo.posted_with_key(self.app, self.idempotency_key)
        return await repo.posted_since(self.app, self.body_hash, utcnow() - RETRY_WINDOW)

    async def store(self, tx: Tx, row: FeedbackRow) -> None:
        new = self.new
        await Open311Repo(tx).add(row.code, self.app, media_url=new.media_url,
                                  device_id=new.device_id, account_id=new.account_id,
                                  token=self.token, idempotency_key=self.idempotency_key,
                                  body_hash=self.body_hash)  # fmt: skip


@dataclass(frozen=True)
class FeedbackBackend:
    """:class:`server.http.open311.Open311Backend` over the feedback domain; ``services``
    gives the domain's services of the running app (the calendar exists once it started)."""

    services: Callable[[], FeedbackServices]
    started: datetime

    async def changeset(self) -> str:
        """When a category last changed (``YYYY-MM-DD HH:MM:SS.ffffff`` UTC, sortable); when this
        process started while there is none."""
        async with self.services().database.reader() as tx:
            changed = await Open311Repo(tx).services_changed()
        return (changed or self.started).strftime("%Y-%m-%d %H:%M:%S.%f")

    async def service_list(self) -> list[o311.Service]:
        async with self.services().database.reader() as tx:
            return [service_of(c) for c in await CategoryRepo(tx).all()]

    async def service(self, code: str) -> o311.Service | None:
        async with self.services().database.reader() as tx:
            category = await CategoryRepo(tx).get(code)
        return None if category is None else service_of(category)

    async def create(
        self, new: o311.NewRequest, app: str, retry: o311.RetryMarks
    ) -> list[dict[str, o311.Value]]:
        service = await self.service(new.service_code)
        if service is None:
            raise o311.Open311Error(404, f"service_code {new.service_code!r} was not found")
        submission = read_submission(submission_fields(new, service), channel="app")
        token = secrets.token_urlsafe(12) if service.type == "batch" else None
        extras = Open311Extras(app, new, token, retry.idempotency_key, retry.body_hash)
        received = await submit(self.services(), submission, extras=extras)
        code = received.feedback.code
        if not received.created:  # a retry: the first request's answer
            async with self.services().database.reader() as tx:
                token = await Open311Repo(tx).token_of(code)
        notice = f"Mã phản ánh {code}: đã tiếp nhận; theo dõi tại /open311/v2/requests/{code}.xml"
        if service.type == "blackbox":
            return o311.created_document(service_notice=notice, account_id=new.account_id)
        if token is not None:
            return o311.created_document(token=token, account_id=new.account_id)
        return o311.created_document(
            service_request_id=code, service_notice=notice, account_id=new.account_id
        )

    async def requests(self, query: o311.RequestQuery) -> list[o311.ServiceRequest]:
        async with self.services().database.reader() as tx:
            repo = Open311Repo(tx)
            if query.ids:
                rows = await repo.by_codes(query.ids[:MAX_REQUESTS])
            else:
                statuses = _statuses(query.statuses)
                rows = await repo.window(
                    query.start, query.end, query.service_codes, statuses, MAX_REQUESTS
                )
        zone = self.services().zone
        return [request_of(r, zone) for r in rows]

    async def request(self, service_request_id: str) -> o311.ServiceRequest | None:
        async with self.services().database.reader() as tx:
            rows = await Open311Repo(tx).by_codes([service_request_id])
        return request_of(rows[0], self.services().zone) if rows else None

    async def token(self, token: str) -> list[dict[str, o311.Value]] | None:
        async with self.services().database.reader() as tx:
            code = await Open311Repo(tx).code_of_token(token)
        return None if code is None else o311.token_document(token, code)


def _statuses(wanted: tuple[str, ...]) -> tuple[str, ...]:
    """Our statuses behind Open311's ``open``/``closed`` (none or both: all)."""
    if set(wanted) in (set(), {"open", "closed"}):
        return ()
    closed = wanted == ("closed",)
    return tuple(s for s in LABELS if (s in CLOSED) == closed)
