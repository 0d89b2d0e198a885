"""Hardened lxml parsers: every XML parse in :mod:`edxml` goes through :func:`xml_parser`.

No DTD is loaded or validated, no entity is expanded, nothing is fetched from the network, and
a resolver answers any request for an external resource with nothing (defence in depth: should
libxml2 still ask, it gets an empty document). Callers refuse a DOCTYPE outright
(:func:`has_doctype`, or a parser target's ``doctype`` callback): edXML never needs one.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

# collect_ids stays at its default (True): collect_ids=False makes libxml2 open an external DTD
# subset named by a DOCTYPE from disk, whatever load_dtd says.
_HARDENED: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "attribute_defaults": False,
    "collect_ids": True,
}


class _NoExternal(etree.Resolver):
    """Answers every request for an external DTD or entity with nothing."""

    # lxml calls resolve with a context argument its stubs do not declare.
    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:  # type: ignore[override]
        return self.resolve_string("", context, base_url=None)


def xml_parser(**options: Any) -> etree.XMLParser:
    """A new lxml parser with the hardened options plus ``options`` (``huge_tree``, ``target``,
    ``remove_comments``...); an option that would undo the hardening raises ``TypeError``."""
    clash = sorted(set(options) & set(_HARDENED))
    if clash:
        raise TypeError(f"xml_parser: {', '.join(clash)} cannot be overridden")
    parser = etree.XMLParser(**_HARDENED, **options)
    parser.resolvers.add(_NoExternal())
    return parser


def has_doctype(tree: etree._ElementTree) -> bool:
    """True when the parsed document has a DOCTYPE (with or without an internal subset)."""
    info = tree.docinfo
    # DocInfo.doctype is missing from the lxml stubs.
    doctype: str = getattr(info, "doctype", "")
    return bool(doctype) or info.internalDTD is not None or info.externalDTD is not None
