"""The demo feedback categories of ``lienthong demo`` (``make run``): the five of issue 17
(``server/demo/feedback_categories.json``), added once each (a category already there, changed
by hand or not, is left as it is)."""

from __future__ import annotations

import json
from pathlib import Path

from server.feedback.categories import add_category, read_category
from server.runtime.audit import ADMIN
from storage.db import Tx
from storage.repos.feedback import CategoryRepo

DEMO_CATEGORIES = Path(__file__).resolve().parents[1] / "demo" / "feedback_categories.json"


async def seed_demo_categories(tx: Tx) -> list[str]:
    """Add the demo categories missing from the database, in ``tx``; the codes added."""
    data = json.loads(DEMO_CATEGORIES.read_text("utf-8"))
    added = []
    for entry in data["categories"]:
        category = read_category(entry)
        if await CategoryRepo(tx).get(category.code) is None:
            await add_category(tx, category, ADMIN)
            added.append(category.code)
    return added
