"""Verify every signature in a PDF: one trustworthy verdict per signature.

:func:`verify` is the entry point. By default each file is verified in a worker process with a
time and memory budget (:mod:`signing.isolation`), so a hostile PDF (reference loops, huge xref
tables, deep nesting) ends in a verdict within the budget instead of hanging the caller;
:func:`verify_in_process` (:mod:`signing.validation`, where the verdicts are made) does the
work itself. The names below stay importable from here as before.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from signing.isolation import shared_pool
from signing.report import ValidationReport as ValidationReport
from signing.validation import DEFAULT_MAX_BYTES as DEFAULT_MAX_BYTES
from signing.validation import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from signing.validation import VerificationPolicy as VerificationPolicy
from signing.validation import close_shared_resources as close_shared_resources
from signing.validation import quiet_library_loggers as quiet_library_loggers
from signing.validation import too_large_message, verify_in_process


def verify(
    pdf: bytes | str | Path,
    policy: VerificationPolicy | None = None,
    *,
    file_name: str | None = None,
    isolate: bool = True,
) -> ValidationReport:
    """Verify every signature of ``pdf`` (bytes or a path) under ``policy``.

    Never raises for bad input: unreadable, unsigned, hostile or too slow files come back as a
    report saying so. With ``isolate`` (the default) the work runs in a worker process limited
    to ``policy.timeout`` seconds.
    """
    policy = policy or VerificationPolicy.from_trust_store()
    if isinstance(pdf, (str, Path)):
        path = Path(pdf)
        file_name = file_name or path.name
        try:
            with path.open("rb") as stream:
                size = os.fstat(stream.fileno()).st_size
                if size > policy.max_bytes:  # hashed as it streams, never read whole
                    digest = hashlib.file_digest(stream, "sha256").hexdigest()
                    return ValidationReport.unreadable(
                        None, file_name, too_large_message(policy), sha256=digest, size=size
                    )
                pdf = stream.read()
        except OSError as exc:
            return ValidationReport.unreadable(
                b"", file_name, f"cannot read the file: {exc.strerror or exc}"
            )
    if not isolate:
        return verify_in_process(pdf, policy, file_name=file_name)
    return shared_pool().verify(pdf, policy, file_name=file_name)


__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT",
    "ValidationReport",
    "VerificationPolicy",
    "close_shared_resources",
    "quiet_library_loggers",
    "verify",
    "verify_in_process",
]
