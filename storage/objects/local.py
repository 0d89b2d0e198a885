"""A local file with an object's bytes, for code that must read a package from disk (parsers).

The filesystem store already has one (``local_path``); for S3 the object is copied into a
temp file first, through the hash-checked ``open``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path

from storage.objects.base import ObjectStore


async def fetch_to_file(store: ObjectStore, sha256: str, directory: Path) -> Path:
    """Copy object ``sha256`` into a new temp file in ``directory``; the caller removes it.

    NotFound when the object is absent; IntegrityError when the bytes do not match the name.
    """
    chunks = store.open(sha256)
    fd, name = await asyncio.to_thread(tempfile.mkstemp, dir=directory, suffix=".obj")
    path = Path(name)
    try:
        out = await asyncio.to_thread(os.fdopen, fd, "wb")
        try:
            async for chunk in chunks:
                await asyncio.to_thread(out.write, chunk)
        finally:
            await asyncio.to_thread(out.close)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return path
