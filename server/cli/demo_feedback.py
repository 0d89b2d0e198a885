"""The demo feedback categories of ``lienthong demo`` (``make run``): the five of issue 17
(``server/demo/feedback_categories.json``), added once each (a category already there, changed
by hand or not, is left as it is); and the demo Open311 app's key, fresh at every run."""

from __future__ import annotations

import json
from pathlib import Path

from server.feedback.categories import add_category, read_category
from server.runtime.audit import ADMIN, record
from storage.db import Tx
from storage.repos.feedback import CategoryRepo
from storage.repos.open311_keys import Open311KeyRepo

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


DEMO_APP = "demo-app"  # the Open311 app of the demo: its key is fresh at every run
OPEN311_KEY_VARIABLE = "OPEN311_KEY"  # not LIENTHONG_*: those are settings


async def fresh_demo_open311_key(tx: Tx) -> str:
    """Revoke the demo app's Open311 key if any and make a new one, in ``tx``; the key, to
    print once (like the demo tokens)."""
    from server.cli.open311_cmd import new_api_key

    repo = Open311KeyRepo(tx)
    if await repo.revoke(DEMO_APP):
        await record(tx, ADMIN, "open311.key.revoke", [DEMO_APP])
    key, key_hash = new_api_key()
    await repo.create(DEMO_APP, key_hash)
    await record(tx, ADMIN, "open311.key.create", [DEMO_APP])
    return key


def open311_lines(base_url: str, key: str) -> list[str]:
    """What the demo prints for citizens and app developers: the feedback page, the Open311
    endpoint and the demo app's key (shown once) with one example call."""
    v2 = f"{base_url}/open311/v2"
    entry = json.loads(DEMO_CATEGORIES.read_text("utf-8"))["categories"][0]
    service = read_category(entry).code
    return [
        f"Citizen feedback (phản ánh, kiến nghị): {base_url}/phan-anh",
        f"Open311 GeoReport v2 for apps: {v2}/discovery.json (docs/open311.md)",
        f"Open311 API key of the app {DEMO_APP} (shown once; the app sends it as api_key):",
        f"export {OPEN311_KEY_VARIABLE}={key}",
        f'  e.g. curl -s "{v2}/requests.json" -d "api_key=${OPEN311_KEY_VARIABLE}"'
        f" -d service_code={service} --data-urlencode 'address_string=12 Lê Lợi, Vinh'"
        " --data-urlencode 'description=Ổ gà sâu' -d first_name=An -d phone=0912345678",
    ]
