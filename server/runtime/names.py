"""Names as the public sees them: masked (dossiers' public lookup, published citizen feedback)."""

from __future__ import annotations

import unicodedata


def _initial(word: str) -> str:
    return word[0] + "."


def mask_name(name: str) -> str:
    """A person's name as the public sees it: the family name (the first word) whole, every
    middle name and the given name (the last word) as its initial and a dot.

    ``Nguyễn Văn An`` -> ``Nguyễn V. A.``; ``Trần Thị Ngọc Bình`` -> ``Trần T. N. B.``;
    ``Lê Bình`` -> ``Lê B.``; a one-word name keeps only its initial (``Bình`` -> ``B.``), since
    whole it would be the name itself. Text is NFC; spaces are collapsed; empty stays empty.
    The same rule applies to a business's name.
    """
    words = unicodedata.normalize("NFC", name).split()
    if not words:
        return ""
    if len(words) == 1:
        return _initial(words[0])
    return " ".join([words[0], *(_initial(w) for w in words[1:])])
