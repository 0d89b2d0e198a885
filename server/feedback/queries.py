"""Reading feedback for the public side (the ``/phan-anh`` pages, Open311 ``GET requests``):
only what is in public view (an officer's ``hidden`` feedback never), shaped by
server/feedback/views.py.

How to call it::

    async with database.reader() as tx:
        rows = await in_public_view(tx, FeedbackQuery(since, until, category="duong-hu-hong",
                                                      statuses=("received", "processing")))
        row = await public_one(tx, code)      # FeedbackNotFound if absent or hidden
        names = await category_names(tx)      # {service_code: name}
"""

from __future__ import annotations

from server.feedback.errors import FeedbackNotFound
from storage.db import Tx
from storage.repos.feedback import CategoryRepo, FeedbackQuery, FeedbackRepo, FeedbackRow


async def in_public_view(tx: Tx, query: FeedbackQuery) -> list[FeedbackRow]:
    """The feedback ``query`` keeps, newest received first, hidden ones left out."""
    return await FeedbackRepo(tx).received_between(query)


async def public_one(tx: Tx, code: str) -> FeedbackRow:
    """One feedback in public view (from receipt on, unless hidden); FeedbackNotFound else."""
    row = await FeedbackRepo(tx).get(code)
    if row is None or row.hidden:
        raise FeedbackNotFound("No feedback has this code.")
    return row


async def category_names(tx: Tx) -> dict[str, str]:
    """Each category's name, by service code."""
    return {c.code: c.name for c in await CategoryRepo(tx).all()}
