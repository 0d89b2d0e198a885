"""The shapes of what people and clients type in, shared by the domains that take them in
(one-stop dossiers, citizen feedback): Vietnamese phone numbers, e-mail addresses,
``Idempotency-Key`` headers."""

from __future__ import annotations

import re

PHONE = re.compile(r"^(0|\+84)\d{9,10}$")  # 0 or +84, then 9 or 10 digits
PHONE_SEPARATORS = re.compile(r"[ .\-()]")  # what people type between the digits
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")  # 1 to 200 visible ASCII characters
PHONE_RULE = "must be a Vietnamese number: 0 or +84 and 9 or 10 digits"


def phone_digits(text: str) -> str:
    """A phone number without the separators people type (spaces, dots, dashes, brackets)."""
    return PHONE_SEPARATORS.sub("", text)
