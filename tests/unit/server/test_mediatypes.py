"""The attachment types described and served (server/exchange/mediatypes.py, issue 18)."""

from __future__ import annotations

import pytest

from server.exchange.mediatypes import OCTET_STREAM, attachment_type, guess_type


@pytest.mark.parametrize(
    ("declared", "served"),
    [
        ("application/pdf", "application/pdf"),
        (" Application/PDF ; name=x.pdf", "application/pdf"),
        ("text/plain; charset=utf-8", "text/plain"),
        ("text/plain\r\nX-Injected: 1", OCTET_STREAM),  # a summary stored before the fix
        ("text/html", OCTET_STREAM),
        ("image/svg+xml", OCTET_STREAM),
        ("application/xml", OCTET_STREAM),
        ("application/xhtml+xml", OCTET_STREAM),
        ("nonsense", OCTET_STREAM),
        ("", None),
        (None, None),
    ],
)
def test_only_allowed_types_are_kept(declared: str | None, served: str | None) -> None:
    assert attachment_type(declared) == served


def test_a_name_suggests_a_type_under_the_same_list() -> None:
    assert guess_type("bao-cao.pdf") == "application/pdf"
    assert guess_type("trang.html") == OCTET_STREAM
    assert guess_type("hinh.svg") == OCTET_STREAM
    assert guess_type(None) == OCTET_STREAM
