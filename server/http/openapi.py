"""The OpenAPI 3.1 description of the API, served at /api/v1/openapi.json.

Written by hand next to the handlers; ``tests/integration/test_api_openapi.py`` keeps it true:
every route under /api/v1 is described with its methods (and nothing else is), and every
response code the tests meet is listed.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server import __version__
from server.http.errors import PROBLEM_TYPES
from server.http.jsonresponse import json_response

routes = web.RouteTableDef()


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_UNAUTHORIZED = _problem("No valid bearer token (`unauthorized`).")
_NOT_FOUND = _problem("Absent, or not the caller's (`not-found`): the two are not told apart.")
_BAD_QUERY = _problem("A query parameter is unusable (`invalid-query`).")
_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "The axis's id of the package (from a receipt or the inbox).",
}
_PAGING = [
    {
        "name": "after",
        "in": "query",
        "schema": {"type": "string"},
        "description": "Cursor: the `next` value of the previous page.",
    },
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
    },
]
_PACKAGE_BODY = {
    "required": True,
    "content": {
        t: {"schema": {"type": "string", "format": "binary"}}
        for t in ("application/xml", "text/xml", "application/octet-stream")
    },
}
_SEND_ERRORS = {
    "400": _problem("Empty body, malformed XML, invalid UTF-8, or a DTD/entity (unsafe-xml)."),
    "401": _UNAUTHORIZED,
    "403": _problem("From is not the caller, or a business/status rule forbids it."),
    "409": _problem("The DocumentId was already used for other bytes (`duplicate-document`)."),
    "413": _problem("The body exceeds server.max_body_bytes (`payload-too-large`)."),
    "415": _problem("Wrong Content-Type (`unsupported-media-type`)."),
    "422": _problem("Not edXML, invalid, unknown recipients, unknown original/document."),
    "503": _problem("Storage full or unavailable; nothing was stored. Retry later."),
}


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
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {
                "get": {
                    "summary": "Liveness and readiness (database, object store)",
                    "security": [],
                    "responses": {
                        "200": _json("Ready", _ref("Health")),
                        "503": _json("Not ready", _ref("Health")),
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": _json("OpenAPI 3.1", {"type": "object"})},
                }
            },
            "/api/v1/webhook": {
                "put": {
                    "summary": "Register the caller's webhook (push delivery; docs/delivery.md)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["url", "secret"],
                                    "properties": {
                                        "url": {"type": "string", "format": "uri"},
                                        "secret": {"type": "string", "minLength": 16},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json("The webhook (without its secret)", _ref("Webhook")),
                        "400": _problem("Not JSON, not an http(s) URL, or a short secret."),
                        "401": _UNAUTHORIZED,
                    },
                },
                "get": {
                    "summary": "The caller's webhook",
                    "responses": {
                        "200": _json("The webhook (without its secret)", _ref("Webhook")),
                        "401": _UNAUTHORIZED,
                        "404": _problem("The caller has no webhook: it pulls its inbox."),
                    },
                },
                "delete": {
                    "summary": "Remove the caller's webhook (its inbox is pulled again)",
                    "responses": {
                        "204": {"description": "Removed"},
                        "401": _UNAUTHORIZED,
                        "404": _problem("The caller has no webhook."),
                    },
                },
            },
            "/api/v1/me": {
                "get": {
                    "summary": "The caller's agency (organ id, name) and its token's roles",
                    "responses": {
                        "200": _json("The authenticated agency", _ref("Me")),
                        "401": _UNAUTHORIZED,
                    },
                }
            },
            "/api/v1/agencies": {
                "get": {
                    "summary": "The directory of agencies (đơn vị liên thông)",
                    "responses": {
                        "200": _json(
                            "Agencies by organ id",
                            {
                                "type": "object",
                                "properties": {"items": {"type": "array", "items": _ref("Agency")}},
                            },
                        ),
                        "401": _UNAUTHORIZED,
                    },
                }
            },
            "/api/v1/documents": {
                "post": {
                    "summary": "Send an edXML document package",
                    "description": (
                        "The body is streamed to disk and hashed; the axis appends its "
                        "TraceHeader. A resend of the same bytes with the same DocumentId "
                        "answers 200 with the first receipt."
                    ),
                    "requestBody": _PACKAGE_BODY,
                    "responses": {
                        "201": _json("Accepted and routed", _ref("Receipt")),
                        "200": _json("The same package again: the first receipt", _ref("Receipt")),
                        **_SEND_ERRORS,
                    },
                }
            },
            "/api/v1/documents/{id}": {
                "get": {
                    "summary": "The package as stored (ETag = SHA-256, single byte range)",
                    "parameters": [
                        _ID,
                        {"name": "Range", "in": "header", "schema": {"type": "string"}},
                        {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "The package",
                            "content": {"application/xml": {"schema": {"type": "string"}}},
                        },
                        "206": {
                            "description": "The requested byte range",
                            "content": {"application/xml": {"schema": {"type": "string"}}},
                        },
                        "304": {"description": "Not modified (If-None-Match matched)"},
                        "401": _UNAUTHORIZED,
                        "404": _NOT_FOUND,
                        "416": _problem("Range outside the package (`range-not-satisfiable`)."),
                        "503": _problem("The object store cannot be reached. Retry later."),
                    },
                }
            },
            "/api/v1/documents/{id}/meta": {
                "get": {
                    "summary": "JSON summary: edXML fields, recipients, attachments, links, trace",
                    "parameters": [_ID],
                    "responses": {
                        "200": _json("Summary", _ref("Meta")),
                        "401": _UNAUTHORIZED,
                        "404": _NOT_FOUND,
                    },
                }
            },
            "/api/v1/documents/{id}/attachments/{n}": {
                "get": {
                    "summary": "One attachment, decoded (and unzipped when the SDK zipped it)",
                    "parameters": [
                        _ID,
                        {
                            "name": "n",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 0},
                            "description": "0-based index, as in meta.attachments[].index",
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "The file; Content-Disposition has filename*",
                            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                        },
                        "401": _UNAUTHORIZED,
                        "404": _NOT_FOUND,
                        "422": _problem("The stored attachment cannot be decoded or unzipped."),
                    },
                }
            },
            "/api/v1/archive/{id}": {
                "get": {
                    "summary": "Archive record: package and attachments as received (sha256), "
                    "verification reports, status history, audit trail (docs/archive.md)",
                    "description": "For the sender, the recipients and their archivists only.",
                    "parameters": [_ID],
                    "responses": {
                        "200": _json("The archive record", {"type": "object"}),
                        "401": _UNAUTHORIZED,
                        "403": _problem("An archivist token asked for more than a read."),
                        "404": _NOT_FOUND,
                        "503": _problem("The object store cannot be reached. Retry later."),
                    },
                }
            },
            "/api/v1/archive/{id}/package": {
                "get": {
                    "summary": "BagIt archival package of the document (zip, manifest-sha256)",
                    "parameters": [_ID],
                    "responses": {
                        "200": {
                            "description": "The bag as a zip",
                            "content": {
                                "application/zip": {
                                    "schema": {"type": "string", "format": "binary"}
                                }
                            },
                        },
                        "401": _UNAUTHORIZED,
                        "404": _NOT_FOUND,
                        "503": _problem("The object store cannot be reached. Retry later."),
                    },
                }
            },
            "/api/v1/archive/{id}/renewals/{renewal}": {
                "get": {
                    "summary": "A renewed attachment: the PDF with an added document timestamp "
                    "(B-LTA renewal; `renewals[].href` of the archive record)",
                    "description": "Renewals of an attachment as sent: for the sender, the "
                    "recipients and their archivists. Renewals of a version: for the agency "
                    "that made the version.",
                    "parameters": [
                        _ID,
                        {
                            "name": "renewal",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "The renewed PDF",
                            "content": {
                                "application/pdf": {
                                    "schema": {"type": "string", "format": "binary"}
                                }
                            },
                        },
                        "401": _UNAUTHORIZED,
                        "404": _NOT_FOUND,
                        "503": _problem("The object store cannot be reached. Retry later."),
                    },
                }
            },
            "/api/v1/documents/{id}/receipt": {
                "get": {
                    "summary": "Signed receipt of a sent document (CMS with an RFC 3161 "
                    "timestamp, sealed by the axis; docs/audit.md)",
                    "description": "For the sender only; offered as `receipt_url` in the answer "
                    "to a send when the axis has a seal. Check it offline with "
                    "`lienthong receipt verify`.",
                    "parameters": [_ID],
                    "responses": {
                        "200": {
                            "description": "The receipt (DER)",
                            "content": {
                                "application/pkcs7-mime": {
                                    "schema": {"type": "string", "format": "binary"}
                                }
                            },
                        },
                        "401": _UNAUTHORIZED,
                        "404": _NOT_FOUND,
                        "503": _problem("The receipt cannot be sealed right now. Retry later."),
                    },
                }
            },
            "/api/v1/audit": {
                "get": {
                    "summary": "Audit log entries (hash chain), oldest first, for admin tokens",
                    "description": "Other tokens get 404. `after` is a seq returned as `next`.",
                    "parameters": [
                        {"name": "after", "in": "query", "schema": {"type": "string"}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                    ],
                    "responses": {
                        "200": _json(
                            "A page of entries with the head and last anchor", {"type": "object"}
                        ),
                        "400": _problem("`after` or `limit` is not usable."),
                        "401": _UNAUTHORIZED,
                        "404": _NOT_FOUND,
                    },
                }
            },
            "/api/v1/documents/{id}/statuses": {
                "get": {
                    "summary": "Status history of a document (its sender and recipients only)",
                    "parameters": [_ID],
                    "responses": {
                        "200": _json(
                            "Oldest first",
                            {
                                "type": "object",
                                "properties": {"items": {"type": "array", "items": _ref("Status")}},
                            },
                        ),
                        "401": _UNAUTHORIZED,
                        "404": _NOT_FOUND,
                    },
                }
            },
            "/api/v1/statuses": {
                "post": {
                    "summary": "Send a status message (01-06, 15, 16: recipient; 13: sender)",
                    "requestBody": _PACKAGE_BODY,
                    "responses": {
                        "201": _json("Accepted and routed to the other party", _ref("Receipt")),
                        **_SEND_ERRORS,
                    },
                }
            },
            "/api/v1/inbox": {
                "get": {
                    "summary": "The caller's deliveries, oldest first",
                    "parameters": [
                        *_PAGING,
                        {
                            "name": "kind",
                            "in": "query",
                            "schema": {"type": "string", "enum": ["document", "status"]},
                        },
                        {
                            "name": "state",
                            "in": "query",
                            "schema": {"type": "string", "enum": ["new", "acked"]},
                        },
                    ],
                    "responses": {
                        "200": _json("A page", _page("InboxItem")),
                        "400": _BAD_QUERY,
                        "401": _UNAUTHORIZED,
                        "403": _problem("An archivist token (`role-not-allowed`)."),
                    },
                }
            },
            "/api/v1/inbox/{delivery_id}/ack": {
                "post": {
                    "summary": "Acknowledge a delivery (idempotent)",
                    "parameters": [
                        {
                            "name": "delivery_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": _json("The delivery, acknowledged", {"type": "object"}),
                        "401": _UNAUTHORIZED,
                        "404": _NOT_FOUND,
                    },
                }
            },
            "/api/v1/sent": {
                "get": {
                    "summary": "The caller's sent documents with each recipient's latest status",
                    "parameters": _PAGING,
                    "responses": {
                        "200": _json("A page", _page("SentItem")),
                        "400": _BAD_QUERY,
                        "401": _UNAUTHORIZED,
                    },
                }
            },
            **_signing_paths(),
            **_verification_paths(),
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`lienthong token create ORGANID`",
                }
            },
            "schemas": _schemas(),
        },
    }


def _signing_paths() -> dict[str, Any]:
    """Signing sessions, the VGCA plugin's files and seals (described in server/http/signing.py)."""
    from server.http.signing import openapi_paths

    return openapi_paths()


def _verification_paths() -> dict[str, Any]:
    """Signature verification (described in server/http/verify.py, issue 7)."""
    from server.http.verify import OPENAPI_PATHS

    return OPENAPI_PATHS


def _page(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "next"],
        "properties": {
            "items": {"type": "array", "items": _ref(item)},
            "next": {"type": ["string", "null"], "description": "Cursor for `after`, or null"},
        },
    }


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
                "signatures": _ref("DocumentVerdict"),
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
                            "verification": _ref("AttachmentVerification"),
                        },
                    },
                },
                "signatures": _ref("DocumentVerdict"),
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
