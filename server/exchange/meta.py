"""The JSON summary stored with every package (``meta_json``) and the readers of it.

:func:`summarize` builds it from the parsed edXML when a package is accepted;
:func:`document_meta` and :func:`edxml_document_id` read it back from a stored row (handlers,
receipts, delivery, archive and signatures use them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import edxml
from edxml import BusinessDocType, Envelope, StatusMessage
from server.exchange.mediatypes import attachment_type
from server.runtime.spool import SpooledPackage
from storage.repos.documents import Document


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _org(org: edxml.Organization) -> dict[str, Any]:
    return {"organ_id": org.organ_id, "name": org.organ_name or org.organization_in_charge}


def _response_for(rf: edxml.ResponseFor) -> dict[str, Any]:
    return {
        "organ_id": rf.organ_id,
        "code": rf.code,
        "promulgation_date": _iso(rf.promulgation_date),
        "document_id": rf.document_id,
    }


def _business(business: edxml.Business | None) -> dict[str, Any]:
    if business is None:
        return {"type": 0, "label": BusinessDocType.NEW.label}
    info = business.document_info
    return {
        "type": int(business.doc_type),
        "label": business.doc_type.label,
        "reason": business.reason,
        "document_id": business.document_id,
        "paper": business.paper,
        "document_info": None
        if info is None
        else {
            "document_info": info.document_info,
            "document_receiver": info.document_receiver,
            "receivers": [
                {"organ_id": r.organ_id, "receiver_type": r.receiver_type} for r in info.receivers
            ],
        },
        "replacements": [
            {"document_id": r.document_id, "organ_ids": list(r.organ_ids)}
            for r in business.replacements
        ],
    }


def _traces(traces: Iterable[edxml.TraceHeader]) -> list[dict[str, Any]]:
    return [{"organ_id": t.organ_id, "timestamp": _iso(t.timestamp)} for t in traces]


def summarize(
    obj: Envelope | StatusMessage,
    package: SpooledPackage,
    warnings: Sequence[edxml.Problem],
) -> dict[str, Any]:
    """The JSON summary stored with a package (``meta_json``): what clerks and systems list.

    Holds the edXML fields, the attachments (no content), the trace, and the hash of the bytes
    as received (the stored package differs by the axis's TraceHeader).
    """
    meta: dict[str, Any] = {
        "received_sha256": package.received_sha256,
        "received_size": package.received_size,
        "trace_headers": _traces(obj.trace_headers),
        "business": _business(obj.business),
        "signed": obj.signature is not None,
        "warnings": [{"path": w.path, "message": w.message} for w in warnings],
    }
    if isinstance(obj, StatusMessage):
        meta.update(
            {
                "edxml_document_id": obj.response_for.document_id,
                "from": _org(obj.from_),
                "status": {
                    "code": obj.status_code.value,
                    "label": obj.status_code.label,
                    "description": obj.description,
                    "staff": None if obj.staff_info is None else obj.staff_info.staff,
                    "department": None if obj.staff_info is None else obj.staff_info.department,
                    "timestamp": _iso(obj.timestamp),
                },
                "response_for": [_response_for(obj.response_for)],
                "attachments": [],
            }
        )
        return meta
    header = obj.header
    other = header.other_info
    meta.update(
        {
            "edxml_document_id": header.document_id,
            "from": _org(header.from_),
            "to": [_org(o) for o in header.to],
            "subject": header.subject,
            "content": header.content,
            "code": None
            if header.code is None
            else {"number": header.code.number, "notation": header.code.notation},
            "promulgation": None
            if header.promulgation_info is None
            else {
                "place": header.promulgation_info.place,
                "date": _iso(header.promulgation_info.date),
            },
            "document_type": None
            if header.document_type is None
            else {
                "type": header.document_type.type,
                "type_detail": header.document_type.type_detail,
                "type_name": header.document_type.type_name,
            },
            "signer": None
            if header.signer_info is None
            else {
                "competence": header.signer_info.competence,
                "position": header.signer_info.position,
                "full_name": header.signer_info.full_name,
            },
            "due_date": _iso(header.due_date),
            "priority": None if other is None or other.priority is None else int(other.priority),
            "steering_type": header.steering_type,
            "response_for": [_response_for(rf) for rf in header.response_for],
            "attachments": [
                {
                    "index": i,
                    "content_id": a.content_id,
                    "name": a.name,
                    "content_type": attachment_type(a.content_type),
                    "description": a.description,
                    "size": a.size,
                    "sha256": a.sha256,
                }
                for i, a in enumerate(obj.attachments)
            ],
        }
    )
    return meta


def document_meta(doc: Document) -> dict[str, Any]:
    """The stored JSON summary of a package (an empty dict if the stored text is unreadable)."""
    try:
        meta = json.loads(doc.meta_json)
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def edxml_document_id(doc: Document) -> str:
    """The DocumentId written in the package (the row's key may carry a business suffix)."""
    value = document_meta(doc).get("edxml_document_id")
    return value if isinstance(value, str) else doc.document_id
