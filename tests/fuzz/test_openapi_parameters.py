"""Every ``{name}`` of a path in the OpenAPI document is described as a path parameter of each
of its operations (issue 18: the two verification routes had none), and the paging ``limit``
is an integer, as the server reads it."""

from __future__ import annotations

import re

from server.http.openapi import openapi_document


def test_every_path_template_names_its_parameters() -> None:
    paths = openapi_document()["paths"]
    missing = []
    for path, item in paths.items():
        names = set(re.findall(r"\{(\w+)\}", path))
        shared = {p["name"] for p in item.get("parameters", []) if p.get("in") == "path"}
        for method, operation in item.items():
            if method == "parameters":
                continue
            own = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"}
            for name in sorted(names - own - shared):
                missing.append(f"{method.upper()} {path}: {{{name}}}")
            for param in operation.get("parameters", []):
                if param.get("in") == "path":
                    assert param.get("required") is True, (path, param)
    assert not missing, missing


def test_limit_is_an_integer_everywhere() -> None:
    for path, item in openapi_document()["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for param in operation.get("parameters", []):
                if param.get("name") == "limit" and param.get("in") == "query":
                    assert param["schema"]["type"] == "integer", (path, param)
