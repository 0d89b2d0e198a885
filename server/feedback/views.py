"""What each reader of a feedback sees, built field by field (nothing copied whole):

- :func:`officer_view`: its parties (the receiving unit, the competent agency): everything,
  the sender's contacts included, with the limits and overdue flags;
- :func:`private_view`: the sender, through the private link: the progress (statuses and
  when, the limits), the answer once given, the rating; no officer's note but the answer and
  the reason of a refusal or the supplement asked;
- :func:`public_view`: anyone, once published and not hidden: category, agency, place, dates,
  the answer, the sender's name masked; never the contacts; only the photos an officer
  approved.

Texts are returned as stored (plain text); the pages escape them when they show them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from server.feedback.lifecycle import LABELS, NOT_ACCEPTED, SUPPLEMENT, overdue_flags
from server.runtime.names import mask_name
from server.runtime.timeline import event_json
from storage.repos.feedback import EventRow, FeedbackRow, PhotoRow


def _time(moment: datetime | None, zone: ZoneInfo) -> str | None:
    return None if moment is None else moment.astimezone(zone).isoformat()


def _place(row: FeedbackRow) -> dict[str, Any]:
    return {"address": row.address, "lat": row.lat, "long": row.lon}


def _limits(row: FeedbackRow, zone: ZoneInfo) -> dict[str, str | None]:
    return {
        "classify": _time(row.classify_due, zone),
        "transfer": _time(row.transfer_due, zone),
        "answer": _time(row.answer_due, zone),
        "publish": _time(row.publish_due, zone),
    }


def _head(row: FeedbackRow) -> dict[str, Any]:
    return {
        "code": row.code,
        "status": row.status,
        "status_label": LABELS[row.status],
        "category": row.category,
        "title": row.title,
    }


def summary(row: FeedbackRow, now: datetime, zone: ZoneInfo) -> dict[str, Any]:
    """A feedback as officers' lists show it."""
    flags = overdue_flags(row, now)
    return {
        **_head(row),
        "receiving_unit": row.receiving_unit,
        "agency": row.agency,
        "channel": row.channel,
        "received_at": _time(row.received_at, zone),
        "due": _limits(row, zone),
        "overdue": flags,
        "is_overdue": any(flags.values()),
        "hidden": row.hidden,
    }


def _photo(p: PhotoRow) -> dict[str, Any]:
    return {
        "n": p.n,
        "content_type": p.content_type,
        "sha256": p.sha256,
        "size": p.size,
        "width": p.width,
        "height": p.height,
        "approved": p.approved,
    }


def officer_view(
    row: FeedbackRow,
    photos: list[PhotoRow],
    events: list[EventRow],
    now: datetime,
    zone: ZoneInfo,
) -> dict[str, Any]:
    """One feedback for its parties."""
    body = summary(row, now, zone)
    body.update(
        content=row.content,
        place=_place(row),
        attributes=row.attributes,
        sender=dict(row.sender),
        answer=row.answer,
        answered_at=_time(row.answered_at, zone),
        published_at=_time(row.published_at, zone),
        paused_at=_time(row.paused_at, zone),
        supplements=row.supplements,
        hidden_reason=row.hidden_reason,
        rating=row.rating,
        rated_at=_time(row.rated_at, zone),
        photos=[_photo(p) for p in photos],
        events=[event_json(e, zone) for e in events],
    )
    return body


def private_view(row: FeedbackRow, events: list[EventRow], zone: ZoneInfo) -> dict[str, Any]:
    """The sender's view through the private link."""
    shown = {NOT_ACCEPTED, SUPPLEMENT}
    return {
        **_head(row),
        "content": row.content,
        "place": _place(row),
        "received_at": _time(row.received_at, zone),
        "due": _limits(row, zone),
        "steps": [
            {
                "status": e.to_status,
                "status_label": LABELS[e.to_status],
                "at": _time(e.at, zone),
                "note": e.note if e.to_status in shown else "",
            }
            for e in events
        ],
        "answer": row.answer,
        "answered_at": _time(row.answered_at, zone),
        "published_at": _time(row.published_at, zone),
        "rating": row.rating,
        "may_rate": row.rating is None and row.answered_at is not None,
    }


def public_view(
    row: FeedbackRow,
    category_name: str,
    agency_name: str,
    photos: list[PhotoRow],
    zone: ZoneInfo,
) -> dict[str, Any]:
    """A published feedback as anyone sees it (``photos``: all of them; only approved shown)."""
    return {
        "code": row.code,
        "category": {"code": row.category, "name": category_name},
        "agency": {"organ_id": row.agency, "name": agency_name},
        "title": row.title,
        "content": row.content,
        "place": _place(row),
        "sender_name": mask_name(str(row.sender.get("name", ""))),
        "received_at": _time(row.received_at, zone),
        "answered_at": _time(row.answered_at, zone),
        "published_at": _time(row.published_at, zone),
        "answer": row.answer,
        "photos": [p.n for p in photos if p.approved],
    }
