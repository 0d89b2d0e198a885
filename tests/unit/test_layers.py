"""The rules of docs/ARCHITECTURE.md: imports point down, between the top-level packages and
between the packages of ``server/``, and no module takes part in an import circle."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = ("edxml", "signing", "storage", "server")

# package -> top-level project packages it must never import
FORBIDDEN = {
    "edxml": {"server", "storage", "signing"},
    "signing": {"server", "storage"},
    "storage": {"server"},
}

# server/<package> -> the other server/ packages it may import, lowest layer first. A new
# domain (dossiers, feedback, dashboard) is a package of its own and gets a line here.
# The domains http/ serves (everything below the HTTP layer but the demo).
_BELOW_HTTP = {
    "runtime",
    "calendar",
    "exchange",
    "signatures",
    "archive",
    "vdxp",
    "dossiers",
    "feedback",
    "stats",
}
SERVER_LAYERS: dict[str, set[str]] = {
    "runtime": set(),
    "calendar": {"runtime"},
    "exchange": {"runtime"},
    "signatures": {"runtime", "exchange"},
    "archive": {"runtime", "exchange", "signatures"},
    "vdxp": {"runtime", "exchange"},
    "dossiers": {"runtime", "calendar", "exchange", "signatures"},
    "feedback": {"runtime", "calendar", "exchange"},
    "stats": {"runtime", "calendar"},
    "http": _BELOW_HTTP,
    "demo": {"runtime", "vdxp"},
    "app": _BELOW_HTTP | {"http"},
    "cli": _BELOW_HTTP | {"http", "app", "demo"},
}
# The packages holding a domain's rules: they never see aiohttp's server or the HTTP layer.
DOMAINS = _BELOW_HTTP | {"demo"}


def _module_name(path: Path) -> str:
    relative = path.relative_to(ROOT) if path.is_relative_to(ROOT) else Path(path.name)
    parts = relative.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[str]:
    """Every module name ``path`` imports, at any depth (in functions too), made absolute."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                prefix = package[: len(package) - node.level + 1]
                base = ".".join([*prefix, base] if base else prefix)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _imported_top_levels(path: Path) -> set[str]:
    return {name.split(".")[0] for name in _imports(path)}


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (``from a import b`` names module a.b if it is
    one, else a)."""
    modules = {_module_name(p): p for pkg in PROJECT_PACKAGES for p in _sources(pkg)}

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {resolve(imported) for imported in _imports(path)}
        graph[name] = {t for t in targets if t is not None and t != name}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _server_package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "server" and len(parts) > 1 else None


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_down(package: str) -> None:
    offenders = []
    for path in _sources(package):
        bad = _imported_top_levels(path) & FORBIDDEN[package]
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {', '.join(sorted(bad))}")
    assert offenders == []


def test_every_server_package_has_a_layer() -> None:
    packages = {p.name for p in (ROOT / "server").iterdir() if (p / "__init__.py").exists()}
    assert packages == set(SERVER_LAYERS)


def test_server_packages_import_only_the_layers_below() -> None:
    offenders = []
    for module, targets in sorted(_graph().items()):
        own = _server_package(module)
        if own is None:
            continue
        for target in sorted(targets):
            other = _server_package(target)
            if other is not None and other != own and other not in SERVER_LAYERS[own]:
                offenders.append(f"{module} imports {target}")
    assert offenders == []


def test_domains_do_not_see_the_web_server() -> None:
    offenders = []
    for package in sorted(DOMAINS):
        for path in _sources(f"server/{package}"):
            for name in _imports(path):
                if name == "aiohttp.web" or name.startswith(("aiohttp.web.", "server.http")):
                    offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_no_import_circle() -> None:
    assert _circles(_graph()) == []


def test_the_rules_detect_an_upward_import_and_a_circle(tmp_path: Path) -> None:
    bad = tmp_path / "m.py"
    bad.write_text("from server.app import build_app\nimport storage.db\n", encoding="utf-8")
    assert _imported_top_levels(bad) == {"server", "storage"}
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []
