"""The parts every OpenAPI description of a route is made of: responses, parameters, schemas.

Each route module of server/http/ describes its own routes in an ``openapi_paths()`` built from
these parts; :mod:`server.http.openapi` merges them into the document, with the shared
``components``. This module imports nothing of server/http/, so any route module may import it
(the document's module imports the route modules and could not be imported by them).
"""

from __future__ import annotations

from typing import Any

BINARY: dict[str, Any] = {"type": "string", "format": "binary"}
STRING: dict[str, Any] = {"type": "string"}
STRING_OR_NULL: dict[str, Any] = {"type": ["string", "null"]}
STATUS: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": 10}  # a dossier's


def ref(name: str) -> dict[str, str]:
    """A reference to the shared schema ``name`` (``components/schemas``)."""
    return {"$ref": f"#/components/schemas/{name}"}


def problem(description: str) -> dict[str, Any]:
    """A problem+json answer (RFC 9457, the ``Problem`` schema)."""
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def json_body(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON answer of ``schema`` (any object when not given)."""
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"type": "object"} if schema is None else schema}
        },
    }


def binary_body(description: str, media_type: str) -> dict[str, Any]:
    """An answer of bytes of ``media_type`` (a file, a package, a zip...)."""
    return {"description": description, "content": {media_type: {"schema": BINARY}}}


def list_of(item: str) -> dict[str, Any]:
    """The schema of a whole list: ``{"items": [...]}`` of shared schema ``item``."""
    return {"type": "object", "properties": {"items": {"type": "array", "items": ref(item)}}}


def page_of(item: str) -> dict[str, Any]:
    """The schema of a page of a list resource: shared schema ``item``s and the next cursor."""
    return {
        "type": "object",
        "required": ["items", "next"],
        "properties": {
            "items": {"type": "array", "items": ref(item)},
            "next": {"type": ["string", "null"], "description": "Cursor for `after`, or null"},
        },
    }


def path_param(
    name: str, schema: dict[str, Any] | None = None, description: str | None = None
) -> dict[str, Any]:
    """A parameter ``{name}`` of the path (a string when ``schema`` is not given)."""
    return _param(name, "path", schema, description, required=True)


def query_param(
    name: str, schema: dict[str, Any] | None = None, description: str | None = None
) -> dict[str, Any]:
    """An optional parameter of the query (a string when ``schema`` is not given)."""
    return _param(name, "query", schema, description)


def _param(
    name: str,
    place: str,
    schema: dict[str, Any] | None,
    description: str | None,
    required: bool = False,
) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": place}
    if required:
        param["required"] = True
    param["schema"] = {"type": "string"} if schema is None else schema
    if description is not None:
        param["description"] = description
    return param


UNAUTHORIZED = problem("No valid bearer token (`unauthorized`).")
NOT_FOUND = problem("Absent, or not the caller's (`not-found`): the two are not told apart.")
BAD_QUERY = problem("A query parameter is unusable (`invalid-query`).")
STORE_UNAVAILABLE = problem(
    "The object store cannot be reached (`storage-unavailable`: retry later), or the stored "
    "bytes are missing or no stored version of them matches their SHA-256 "
    "(`object-unavailable`)."
)
ID = path_param("id", description="The axis's id of the package (from a receipt or the inbox).")
PAGING = [
    query_param("after", description="Cursor: the `next` value of the previous page."),
    query_param("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
]
TOO_MANY_REQUESTS = problem(
    "Over the budget of the client address; `Retry-After` says when to try again "
    "(`too-many-lookups`)."
)
