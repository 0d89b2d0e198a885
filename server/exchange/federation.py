"""Federation between axes (liên thông giữa các trục): who hosts which organisation id.

Every recipient of a package is *resolved* to one route, in this order:

1. a **link** (``axis_links``: a child or peer axis) whose ``hosts`` patterns match the id: the
   package is forwarded to that axis;
2. an id this axis **hosts** (``[federation] hosted``; every id when the list is empty): the
   delivery stays here (pulled from the inbox, or pushed to the agency's webhook);
3. otherwise the **parent** axis (``[federation] parent_url``), when there is one;
4. otherwise it stays here (the axis has nowhere better to send it).

A pattern is either an organisation id, matching that id and every id under it (by
:meth:`edxml.OrganId.parent`), or a glob with ``*``/``?`` (``*.H41``).

An *axis account* is the agency row of another axis (its own id, as in its TraceHeader): the
parent (``parent_id``) or a link. Its tokens may send packages whose ``From`` is not the account
itself, but only for ids that resolve to that very axis here: a child may speak for the ids it
hosts, the parent for the ids that live above us, and nobody for the ids we host ourselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import functools
import logging
import ssl
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from edxml import InvalidOrganIdError, OrganId
from server.runtime.config import Config, ConfigError, FederationSettings, optional_secret
from server.runtime.secretbox import SecretBox
from server.runtime.tls import client_context
from storage.db import Database, Tx
from storage.errors import StorageError
from storage.repos.agencies import AgencyRepo
from storage.repos.routes import AxisLink, RouteRepo

log = logging.getLogger("lienthong.federation")

PARENT_TOKEN_ENV = "LIENTHONG_FEDERATION_PARENT_TOKEN"  # noqa: S105 (a variable name)


class FederationError(Exception):
    """A federation setting or answer that cannot be used; one line, naming what failed."""


def _parse(organ_id: str) -> OrganId | None:
    try:
        return OrganId.parse(organ_id)
    except InvalidOrganIdError:
        return None


def matches(organ_id: str, pattern: str) -> bool:
    """True when ``organ_id`` falls under ``pattern`` (an id and its subtree, or a glob)."""
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(organ_id, pattern)
    if organ_id == pattern:
        return True
    parsed, root = _parse(organ_id), _parse(pattern)
    return parsed is not None and root is not None and parsed.is_under(root)


def matches_any(organ_id: str, patterns: Iterable[str]) -> bool:
    """True when ``organ_id`` matches one of ``patterns``."""
    return any(matches(organ_id, p) for p in patterns)


@dataclass(frozen=True)
class Route:
    """Where packages for one recipient go.

    kind: ``local`` (the inbox here; ``webhook`` set when the agency registered one), ``link``
    (forwarded to another axis: ``url``/``token``/``axis_id``) or ``parent``.
    """

    kind: str
    axis_id: str | None = None
    url: str | None = None
    token: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None

    @property
    def pushes(self) -> bool:
        """True when the delivery worker has to send the package somewhere."""
        return self.kind != "local" or self.webhook_url is not None


LOCAL = Route("local")


def parent_token(settings: FederationSettings) -> str | None:
    """This axis's bearer token at its parent: the environment, else the token file."""
    return optional_secret(
        PARENT_TOKEN_ENV, settings.parent_token_file, "federation.parent_token_file"
    )


class Router:
    """Resolves recipients and senders to routes for one axis (config + the links table)."""

    def __init__(self, config: Config) -> None:
        self.settings = config.federation
        self.axis_id = config.server.axis_id
        # Opens the sealed axis-link tokens and webhook secrets (server.runtime.secretbox).
        self.secrets = SecretBox(config.storage.data_dir)
        self._parent_token: str | None = None
        self._parent_token_read = False

    @functools.cached_property
    def client_ssl(self) -> ssl.SSLContext | bool:
        """The TLS settings of requests to other axes (forwards, directory sync): this axis's
        client certificate presented and their certificates checked against ``server_ca``
        ([federation], server/runtime/tls.py); True (aiohttp's default checks) when neither is
        configured. ConfigError when the files are unusable."""
        context = client_context(self.settings)
        return True if context is None else context

    @property
    def has_parent(self) -> bool:
        """True when a parent axis is configured."""
        return bool(self.settings.parent_url)

    @property
    def federated(self) -> bool:
        """True when this axis hosts only some ids (``hosted`` set) or has a parent."""
        return bool(self.settings.hosted) or self.has_parent

    def parent_route(self) -> Route:
        """The route to the parent axis (its token read once, lazily)."""
        if not self._parent_token_read:
            self._parent_token = parent_token(self.settings)
            # A token file written after start-up is read on the next use.
            self._parent_token_read = self._parent_token is not None
        return Route(
            "parent",
            axis_id=self.settings.parent_id,
            url=(self.settings.parent_url or "").rstrip("/"),
            token=self._parent_token,
        )

    def hosts(self, organ_id: str) -> bool:
        """True when this axis's own config says it hosts ``organ_id``."""
        return not self.settings.hosted or matches_any(organ_id, self.settings.hosted)

    @staticmethod
    def _best_link(organ_id: str, links: Sequence[AxisLink]) -> AxisLink | None:
        # The most specific pattern wins: a district axis linked under a province pattern.
        best: tuple[int, AxisLink] | None = None
        for link in links:
            for pattern in link.hosts:
                if matches(organ_id, pattern):
                    score = len(pattern.replace("*", ""))
                    if best is None or score > best[0]:
                        best = (score, link)
        return None if best is None else best[1]

    async def resolve(self, tx: Tx, organ_id: str) -> Route:
        """The route of packages addressed to ``organ_id`` (see the module docstring)."""
        link = self._best_link(organ_id, await RouteRepo(tx, self.secrets).links())
        if link is not None and link.organ_id != organ_id:
            return Route("link", axis_id=link.organ_id, url=link.url.rstrip("/"), token=link.token)
        if link is None and not self.hosts(organ_id) and self.has_parent:
            if organ_id != self.settings.parent_id:
                return self.parent_route()
        hook = await RouteRepo(tx, self.secrets).webhook(organ_id)
        if hook is None:
            return LOCAL
        return Route("local", webhook_url=hook.url, webhook_secret=hook.secret)

    async def axis_account(self, tx: Tx, caller: str) -> str | None:
        """``caller``'s axis (``caller`` itself) when it is the parent or a linked axis."""
        if self.has_parent and caller == self.settings.parent_id:
            return caller
        if await RouteRepo(tx, self.secrets).link(caller) is not None:
            return caller
        return None

    async def may_speak_for(self, tx: Tx, caller: str, organ_id: str) -> bool:
        """True when ``caller`` is an axis account and ``organ_id`` resolves to it here."""
        if await self.axis_account(tx, caller) is None:
            return False
        route = await self.resolve(tx, organ_id)
        return route.kind in {"link", "parent"} and route.axis_id == caller

    async def routed_through(self, tx: Tx, caller: str, organ_id: str) -> bool:
        """True when packages for ``organ_id`` would go back to the axis ``caller``: a
        forwarded package is not routed back where it came from."""
        route = await self.resolve(tx, organ_id)
        return route.kind in {"link", "parent"} and route.axis_id == caller


# --- the directory from the parent -----------------------------------------------------------


async def sync_directory(
    config: Config,
    database: Database,
    router: Router,
    session: aiohttp.ClientSession,
) -> int:
    """Copy the parent's directory (GET /api/v1/agencies) into ours; return how many agencies
    were added. Ids this axis hosts are never taken from the parent (ours are authoritative)."""
    route = router.parent_route()
    if not route.url:
        return 0
    headers = {"Authorization": f"Bearer {route.token}"} if route.token else {}
    timeout = aiohttp.ClientTimeout(total=config.delivery.timeout)
    async with session.get(
        f"{route.url}/api/v1/agencies", headers=headers, timeout=timeout, ssl=router.client_ssl
    ) as resp:
        if resp.status != 200:
            raise FederationError(f"the parent answered {resp.status} to GET /api/v1/agencies")
        body: Any = await resp.json(content_type=None)
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise FederationError("the parent's directory is not {'items': [...]}")
    wanted: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("organ_id"), str):
            continue
        organ_id = item["organ_id"]
        if _parse(organ_id) is None or organ_id == config.server.axis_id:
            continue
        if router.settings.hosted and matches_any(organ_id, router.settings.hosted):
            continue
        wanted.append(item)
    added = 0
    async with database.transaction() as tx:
        agencies = AgencyRepo(tx)
        have = await agencies.known(i["organ_id"] for i in wanted)
        new = [i for i in wanted if i["organ_id"] not in have]
        for item in new:
            name = item.get("name") if isinstance(item.get("name"), str) else item["organ_id"]
            parent = item.get("parent_id")
            # A parent not in our directory (or not yet inserted) is simply left out.
            if not isinstance(parent, str) or parent not in have:
                parent = None
            await agencies.add(item["organ_id"], name or item["organ_id"], parent_id=parent)
            have.add(item["organ_id"])
            added += 1
    if added:
        log.info("directory synced from the parent", extra={"added": added})
    return added


@contextlib.asynccontextmanager
async def directory_sync(
    config: Config, database: Database, router: Router, session: aiohttp.ClientSession
) -> AsyncIterator[asyncio.Task[None] | None]:
    """Sync the directory from the parent at start and every ``sync_interval`` seconds, in a
    background task that the block's end cancels. Failures are logged and retried later."""
    if not router.has_parent:
        yield None
        return

    async def loop() -> None:
        delay = 1.0
        while True:
            try:
                await sync_directory(config, database, router, session)
                delay = float(config.federation.sync_interval)
                if delay <= 0:
                    return
            except (
                TimeoutError,
                aiohttp.ClientError,
                ConfigError,
                FederationError,
                StorageError,
            ) as exc:
                log.warning("directory sync failed", extra={"error": str(exc)})
                delay = min(60.0, delay * 2)
            await asyncio.sleep(delay)

    task = asyncio.create_task(loop(), name="lienthong-directory-sync")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
