"""Organisation identifiers (mã định danh) of QCVN 102:2016 and Thông tư 01/2022.

Three spellings are met in real packages:

- the classic 13-character form ``V1V2V3.Z1Z2.Y1Y2.MX1X2`` (``000.00.00.G22``), read right to
  left: ``MX1X2`` (a letter and two digits) is level 1, ``Y1Y2`` level 2, ``Z1Z2`` level 3 and
  ``V1V2V3`` level 4; a group of zeros means "no lower level";
- the 2022 form: up to 35 characters, groups of digits and capital letters separated by dots
  (``001.00.20.TT2``, ``01.02.G22``). We read it with the same right-to-left rule, group by group;
- lowercase ids of test systems such as ``vxp.saas.03``: accepted, flagged :attr:`is_test`, and
  given no hierarchy (their groups do not follow the right-to-left rule).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edxml.errors import InvalidOrganIdError

MAX_LENGTH = 35
"""Longest id Thông tư 01/2022 allows."""

_CLASSIC = re.compile(r"[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}")
_MODERN = re.compile(r"[0-9A-Z]+(?:\.[0-9A-Z]+)*")
# Test ids always have several groups: this keeps placeholders such as "null" out.
_TEST = re.compile(r"[0-9A-Za-z]+(?:\.[0-9A-Za-z]+)+")


@dataclass(frozen=True, slots=True)
class OrganId:
    """A parsed organisation id: build it with :meth:`parse`, read it back with ``str()``."""

    value: str

    @classmethod
    def parse(cls, text: str) -> OrganId:
        """Parse ``text`` as an organisation id or raise :class:`InvalidOrganIdError`.

        Accepts the classic 13-character form, the 2022 form (≤ 35 characters of ``[0-9A-Z]``
        groups separated by dots) and lowercase test ids (flagged by :attr:`is_test`). The text is
        taken as given: surrounding spaces make it invalid.
        """
        if not isinstance(text, str):
            raise InvalidOrganIdError(f"an organisation id must be text, not {type(text).__name__}")
        if text == "":
            raise InvalidOrganIdError("the organisation id is empty")
        if len(text) > MAX_LENGTH:
            raise InvalidOrganIdError(
                f"the organisation id {text[:40]!r}... is {len(text)} characters long; "
                f"at most {MAX_LENGTH} are allowed"
            )
        if text != text.strip():
            raise InvalidOrganIdError(f"the organisation id {text!r} has spaces before or after it")
        if _MODERN.fullmatch(text) or _TEST.fullmatch(text):
            return cls(text)
        raise InvalidOrganIdError(
            f"{text!r} is not an organisation id: expected groups of digits and capital letters "
            "separated by dots, such as 000.00.00.G22"
        )

    def __str__(self) -> str:
        return self.value

    @property
    def is_classic(self) -> bool:
        """True for the strict 13-character form ``V1V2V3.Z1Z2.Y1Y2.MX1X2``."""
        return _CLASSIC.fullmatch(self.value) is not None

    @property
    def is_test(self) -> bool:
        """True for ids of test systems (they contain lowercase letters, e.g. ``vxp.saas.03``)."""
        return _MODERN.fullmatch(self.value) is None

    @property
    def groups(self) -> tuple[str, ...]:
        """The dot-separated groups, left to right as written."""
        return tuple(self.value.split("."))

    @property
    def level(self) -> int:
        """The administrative level: 1 for ``000.00.00.G22`` up to 4 for ``001.12.14.H20``.

        The rightmost group is level 1; each group further left that is not all zeros raises the
        level to its position. Test ids have no known hierarchy and are level 1.
        """
        if self.is_test:
            return 1
        groups = self.groups[::-1]
        level = 1
        for position, group in enumerate(groups[1:], start=2):
            if group.strip("0"):
                level = position
        return level

    @property
    def parent(self) -> OrganId | None:
        """The organisation one level up (the id with its own level's group zeroed).

        ``None`` for level-1 ids and test ids.
        """
        level = self.level
        if level == 1:
            return None
        groups = list(self.groups)
        index = len(groups) - level
        groups[index] = "0" * len(groups[index])
        return OrganId(".".join(groups))

    def is_under(self, other: OrganId) -> bool:
        """True when ``other`` is this id or one of its ancestors."""
        current: OrganId | None = self
        while current is not None:
            if current == other:
                return True
            current = current.parent
        return False
