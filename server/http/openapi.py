"""The OpenAPI 3.1 description of the API, served at /api/v1/openapi.json.

Written by hand next to the handlers: each route module describes its own routes in an
``openapi_paths()`` (made of the parts in :mod:`server.http.openapi_parts`); this module holds the
document's frame, the shared ``components`` and the list of the modules it merges. A new
resource adds its module to ``DESCRIBED``. ``tests/integration/test_api_openapi.py`` keeps it
true: every route under /api/v1 is described with its methods (and nothing else is), and every
response code the tests meet is listed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from server import __version__
from server.http import (
    agencies,
    archive,
    audit,
    documents,
    dossier_transfers,
    dossiers,
    feedback,
    health,
    inbox,
    me,
    procedures,
    public_dossiers,
    public_feedback,
    routes_admin,
    seals,
    sent,
    signing,
    stats,
    stats_report,
    statuses,
    verify,
)
from server.http.errors import PROBLEM_TYPES
from server.http.jsonresponse import json_response
from server.http.openapi_parts import json_body, problem, ref

routes = web.RouteTableDef()


def openapi_paths() -> dict[str, Any]:
    """The description of this module's own route: the document."""
    return {
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": json_body("OpenAPI 3.1")},
            }
        },
    }


# The route modules whose ``openapi_paths()`` make the document's ``paths``, in this order.
DESCRIBED: tuple[Callable[[], dict[str, Any]], ...] = (
    health.openapi_paths,
    openapi_paths,
    routes_admin.openapi_paths,
    me.openapi_paths,
    agencies.openapi_paths,
    procedures.openapi_paths,
    dossiers.openapi_paths,
    public_dossiers.openapi_paths,
    dossier_transfers.openapi_paths,
    feedback.openapi_paths,
    public_feedback.openapi_paths,
    documents.openapi_paths,
    archive.openapi_paths,
    audit.openapi_paths,
    statuses.openapi_paths,
    inbox.openapi_paths,
    sent.openapi_paths,
    signing.openapi_paths,
    seals.openapi_paths,
    verify.openapi_paths,
    stats.openapi_paths,
    stats_report.openapi_paths,
)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a fresh dict each time)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Liên Thông API",
            "version": __version__,
            "description": (
                "Trục liên thông văn bản điện tử (edXML, QCVN 102:2016): send packages, read the "
                "inbox, fetch, acknowledge, answer with statuses. Errors are RFC 9457 problem+json "
                "with `type` = `/problems/<slug>`; see docs/api.md."
            ),
        },
        "servers": [{"url": "/"}],
        # a bearer token, or a client certificate bound to the agency (server/http/client_certs.py)
        "security": [{"bearer": []}, {"clientCertificate": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`lienthong token create ORGANID`",
                },
                "clientCertificate": {
                    "type": "mutualTLS",
                    "description": (
                        "HTTPS with `[server.tls] client_ca`: a client certificate bound with "
                        "`lienthong agency cert add ORGANID FILE.pem`"
                    ),
                },
            },
            "schemas": _schemas(),
        },
    }


def _paths() -> dict[str, Any]:
    """The paths of every described module; a method of a path is described once only."""
    paths: dict[str, dict[str, Any]] = {}
    for describe in DESCRIBED:
        for path, item in describe().items():
            merged = paths.setdefault(path, {})
            twice = merged.keys() & item.keys()
            if twice:
                raise ValueError(f"{path} {sorted(twice)} is described twice")
            merged.update(item)
    # Every operation that takes a token refuses the roles that do not reach it: an admin or
    # archivist token outside its few routes (server/http/auth.py, role_refusal).
    for item in paths.values():
        for operation in item.values():
            responses = operation.get("responses", {})
            if "401" in responses:
                responses.setdefault("403", _ROLE_NOT_ALLOWED)
    return paths


_ROLE_NOT_ALLOWED = problem("The token's role does not reach this operation (`role-not-allowed`).")


def _schemas() -> dict[str, Any]:
    s = {"type": "string"}
    ns = {"type": ["string", "null"]}
    ni = {"type": ["integer", "null"]}
    return {
        "Problem": {
            "type": "object",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string", "enum": [t.uri for t in PROBLEM_TYPES.values()]},
                "title": s,
                "status": {"type": "integer"},
                "detail": s,
                "instance": s,
                "request_id": s,
                "problems": {"type": "array", "items": {"type": "object"}},
                "unknown": {"type": "array", "items": s},
            },
        },
        "Health": {
            "type": "object",
            "properties": {"status": s, "version": s, "checks": {"type": "object"}},
        },
        "Me": {
            "type": "object",
            "required": ["organ_id", "name", "roles"],
            "properties": {"organ_id": s, "name": ns, "roles": {"type": "array", "items": s}},
        },
        "Agency": {
            "type": "object",
            "properties": {"organ_id": s, "name": s, "parent_id": ns, "email": ns},
        },
        "Procedure": procedures.procedure_schema(),
        **dossiers.dossier_schemas(),
        **public_dossiers.public_dossier_schemas(),
        **feedback.feedback_schemas(),
        **public_feedback.public_feedback_schemas(),
        "Webhook": {
            "type": "object",
            "properties": {"organ_id": s, "url": s, "created_at": s, "updated_at": s},
        },
        "Receipt": {
            "type": "object",
            "required": ["id", "document_id", "sha256", "received_at", "recipients"],
            "properties": {
                "id": s,
                "kind": {"type": "string", "enum": ["document", "status"]},
                "document_id": {"type": "string", "description": "The edXML DocumentId"},
                "sha256": {"type": "string", "description": "Of the stored package (= ETag)"},
                "size": {"type": "integer"},
                "received_at": {"type": "string", "format": "date-time"},
                "recipients": {"type": "array", "items": s},
                "duplicate": {"type": "boolean"},
            },
        },
        "InboxItem": {
            "type": "object",
            "properties": {
                "delivery_id": s,
                "document_id": s,
                "edxml_document_id": s,
                "kind": {"type": "string", "enum": ["document", "status"]},
                "sender": s,
                "subject": ns,
                "code": ns,
                "priority": ni,
                "business_type": {"type": "integer"},
                "related_id": ns,
                "received_at": s,
                "state": {"type": "string", "enum": ["new", "acked"]},
                "acked_at": ns,
                "status_code": ns,
                "status_label": ns,
                "status_description": ns,
                "signatures": ref("DocumentVerdict"),
            },
        },
        "SentItem": {
            "type": "object",
            "properties": {
                "id": s,
                "edxml_document_id": s,
                "subject": ns,
                "code": ns,
                "received_at": s,
                "recipients": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "organ_id": s,
                            "state": s,
                            "acked_at": ns,
                            "status": {"type": ["object", "null"]},
                        },
                    },
                },
            },
        },
        "Status": {
            "type": "object",
            "properties": {
                "id": s,
                "code": s,
                "label": ns,
                "sender": s,
                "recipient": s,
                "description": ns,
                "staff": ns,
                "timestamp": ns,
                "received_at": s,
                "package_id": ns,
            },
        },
        "DocumentVerdict": {
            "type": "string",
            "enum": ["valid", "invalid", "indeterminate", "none", "pending"],
            "description": "The worst verdict over the PDF attachments (docs/verification.md): "
            "valid only when every PDF attachment is signed and every signature passed; none "
            "when a PDF attachment is unsigned or there is no PDF; pending while verifying.",
        },
        "AttachmentVerification": {
            "type": "object",
            "description": "Summary of the report made when the attachment arrived "
            "(the full report: `report`, lienthong.verification/1).",
            "required": ["verdict", "status", "signatures", "summary_vi"],
            "properties": {
                "verdict": {
                    "type": "string",
                    "enum": ["valid", "invalid", "indeterminate", "none", "pending", "not_pdf"],
                },
                "status": {
                    "type": "string",
                    "enum": ["signed", "unsigned", "unreadable", "pending", "not_pdf"],
                },
                "indication": ns,
                "all_passed": {"type": ["boolean", "null"]},
                "signatures": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "index": {"type": "integer"},
                            "kind": s,
                            "indication": s,
                            "subindication": ns,
                            "signer": ns,
                            "organization": ns,
                            "signing_time": ns,
                            "intact": {"type": "boolean"},
                            "changes": {"type": "string", "enum": ["none", "permitted", "other"]},
                        },
                    },
                },
                "summary_vi": s,
                "verified_at": ns,
                "sha256": ns,
                "report": {"type": "string", "description": "URL of the full report"},
            },
        },
        "Meta": {
            "type": "object",
            "properties": {
                "id": s,
                "kind": s,
                "sender": s,
                "sha256": s,
                "size": {"type": "integer"},
                "edxml_document_id": ns,
                "subject": ns,
                "recipients": {"type": "array", "items": {"type": "object"}},
                "attachments": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "index": {"type": "integer"},
                            "name": ns,
                            "content_type": ns,
                            "size": ni,
                            "sha256": ns,
                            "verification": ref("AttachmentVerification"),
                        },
                    },
                },
                "signatures": ref("DocumentVerdict"),
                "business": {"type": "object"},
                "related": {
                    "type": "object",
                    "properties": {
                        "original": {"type": ["object", "null"]},
                        "changes": {"type": "array"},
                    },
                },
                "trace_headers": {"type": "array", "items": {"type": "object"}},
            },
        },
    }


@routes.get("/api/v1/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of this API."""
    return json_response(openapi_document())
