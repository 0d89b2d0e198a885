"""The OpenAPI document is true: routes and methods match the app, both ways.

(That every answer a test meets is documented is checked by the ``axis`` fixture itself.)
"""

from __future__ import annotations

from axis_client import Axis

from server.app.application import build_app
from server.http.errors import PROBLEM_TYPES
from server.runtime.config import Config


def _app_routes(config: Config) -> set[tuple[str, str]]:
    app = build_app(config)
    routes = set()
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method == "HEAD":
            continue
        path = resource.canonical
        if path.startswith("/api/v1") or path == "/healthz":
            routes.add((path, route.method))
    return routes


def _doc_routes(doc: dict) -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, item in doc["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }


async def test_every_route_is_documented_and_nothing_else(axis: Axis) -> None:
    resp = await axis.get("/api/v1/openapi.json", None)
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    assert _app_routes(axis.config) == _doc_routes(doc)


async def test_document_is_well_formed(axis: Axis) -> None:
    doc = await (await axis.get("/api/v1/openapi.json", None)).json()
    schemas = doc["components"]["schemas"]
    problem_types = set(schemas["Problem"]["properties"]["type"]["enum"])
    assert problem_types == {t.uri for t in PROBLEM_TYPES.values()}

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in schemas, ref
    for path, item in doc["paths"].items():
        for operation in item.values():
            assert operation["responses"], path
            for param in operation.get("parameters", []):
                if param["in"] == "path":
                    assert "{" + param["name"] + "}" in path


def test_every_problem_slug_is_documented() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text("utf-8")
    for slug, ptype in PROBLEM_TYPES.items():
        assert f"| `{slug}` | {ptype.status} |" in text, slug
