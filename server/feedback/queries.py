"""Reading feedback for the public side: the category names the public pages show. The public
list of Open311 ``GET requests`` (newest first, agency names, ``media_url``, on the
``(received_at, code)`` index) is storage/repos/open311_requests.py, the only one.

How to call it::

    async with database.reader() as tx:
        names = await category_names(tx)      # {service_code: name}
"""

from __future__ import annotations

from storage.db import Tx
from storage.repos.feedback import CategoryRepo


async def category_names(tx: Tx) -> dict[str, str]:
    """Each category's name, by service code."""
    return {c.code: c.name for c in await CategoryRepo(tx).all()}
