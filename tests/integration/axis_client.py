"""Helpers and fixtures for the HTTP API tests: the real app on real SQLite + files under tmp_path.

``axis`` starts the application (pytest-aiohttp's ``aiohttp_client``, a real server on
127.0.0.1), seeds a few agencies with one bearer token each, and offers small helpers to build
edXML packages with ``edxml.serialize`` and to send them.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from fixtures_pg import PgDatabases, database_settings

import edxml
from edxml import (
    Attachment,
    Business,
    Code,
    Envelope,
    ManifestReference,
    MessageHeader,
    Organization,
    OtherInfo,
    Priority,
    PromulgationInfo,
    ResponseFor,
    StaffInfo,
    StatusCode,
    StatusMessage,
)
from server.app.application import build_app
from server.http.appkeys import DATABASE
from server.http.openapi import openapi_document
from server.runtime.config import Config, load_config
from server.runtime.tokens import new_token
from storage.repos.agencies import AgencyRepo
from storage.repos.tokens import TokenRepo

VPCP = "000.00.00.G22"  # Văn phòng Chính phủ
NGHE_AN = "000.00.00.H41"  # UBND tỉnh Nghệ An
SO_TTTT = "000.01.00.H41"  # a department under UBND tỉnh Nghệ An
XA = "001.01.00.H41"  # a commune
OUTSIDER = "000.00.00.G17"  # an agency that takes part in nothing

AGENCIES = [
    (VPCP, "Văn phòng Chính phủ", None),
    (NGHE_AN, "UBND tỉnh Nghệ An", None),
    (SO_TTTT, "Sở Thông tin và Truyền thông Nghệ An", NGHE_AN),
    (XA, "UBND xã Nghi Phong", NGHE_AN),
    (OUTSIDER, "Bộ Thông tin và Truyền thông", None),
]

XML = {"Content-Type": "application/xml"}
_numbers = itertools.count(1)


def document(
    sender: str = VPCP,
    to: Sequence[str] = (NGHE_AN,),
    *,
    document_id: str | None = None,
    subject: str = "V/v thử nghiệm trục liên thông",
    attachments: Sequence[tuple[str, str, bytes]] = (),
    business: Business | None = None,
    response_for: Sequence[ResponseFor] = (),
) -> Envelope:
    """A valid document package; attachments are (name, content_type, bytes)."""
    number = next(_numbers)
    atts = tuple(
        Attachment(f"att{i}", name=name, content_type=ctype, data=data)
        for i, (name, ctype, data) in enumerate(attachments)
    )
    return Envelope(
        header=MessageHeader(
            from_=Organization(sender, organ_name=sender),
            to=tuple(Organization(o, organ_name=o) for o in to),
            document_id=document_id or f"{sender},2024/05/01,{number}/TEST",
            subject=subject,
            code=Code(str(number), "VPCP-TTĐT"),
            promulgation_info=PromulgationInfo("Hà Nội", date(2024, 5, 1)),
            other_info=OtherInfo(priority=Priority.URGENT),
            response_for=tuple(response_for),
        ),
        business=business,
        manifest=tuple(
            ManifestReference(f"cid:{a.content_id}", a.content_type, None, a.name) for a in atts
        ),
        attachments=atts,
    )


def status(
    sender: str, about: Envelope, code: StatusCode, *, description: str = "Đã xử lý"
) -> StatusMessage:
    """A status message from ``sender`` about the document package ``about``."""
    return StatusMessage(
        from_=Organization(sender),
        response_for=ResponseFor(
            organ_id=about.header.from_.organ_id, document_id=about.header.document_id
        ),
        status_code=code,
        description=description,
        staff_info=StaffInfo(staff="Nguyễn Văn A"),
        timestamp=datetime(2024, 5, 2, 9, 30, tzinfo=edxml.VN_TZ),
    )


@dataclass
class Axis:
    """The running app, its config and the bearer token of each seeded agency."""

    client: TestClient
    config: Config
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, organ_id: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[organ_id]}", **extra}

    async def post(self, path: str, organ_id: str, body: bytes, **headers: str) -> Any:
        return await self.client.post(
            path, data=body, headers=self.auth(organ_id, **XML, **headers)
        )

    async def send(self, organ_id: str, package: Envelope | bytes) -> Any:
        body = package if isinstance(package, bytes) else edxml.serialize(package)
        return await self.post("/api/v1/documents", organ_id, body)

    async def send_ok(self, organ_id: str, package: Envelope | bytes) -> dict[str, Any]:
        resp = await self.send(organ_id, package)
        assert resp.status == 201, await resp.text()
        return dict(await resp.json())

    async def send_status(self, organ_id: str, message: StatusMessage | bytes) -> Any:
        body = message if isinstance(message, bytes) else edxml.serialize(message)
        return await self.post("/api/v1/statuses", organ_id, body)

    async def get(self, path: str, organ_id: str | None, **headers: str) -> Any:
        auth = self.auth(organ_id) if organ_id else {}
        return await self.client.get(path, headers={**auth, **headers})

    async def inbox(self, organ_id: str, query: str = "") -> dict[str, Any]:
        resp = await self.get(f"/api/v1/inbox{query}", organ_id)
        assert resp.status == 200, await resp.text()
        return dict(await resp.json())

    async def snapshot(self) -> dict[str, Any]:
        """What is stored: row counts per table, object files and spool files."""
        async with self.client.app[DATABASE].reader() as tx:
            counts = {
                t: (await tx.fetchone(f"SELECT count(*) FROM {t}"))[0]  # type: ignore[index]  # noqa: S608
                for t in ("documents", "deliveries", "statuses")
            }
        objects = sorted(
            str(p.relative_to(self.config.objects_dir))
            for p in self.config.objects_dir.rglob("*")
            if p.is_file()
        )
        spool = sorted(p.name for p in self.config.spool_dir.iterdir())
        return {"rows": counts, "objects": objects, "spool": spool}


@pytest.fixture
def offline_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OCSP/CRL/AIA fetching by the app's verifier (LIENTHONG_VERIFY_ONLINE=0).

    For modules that upload corpus PDFs: their certificates name hosts on the Internet
    (dss.nowina.lu), and tests send traffic to 127.0.0.1 only. A fixture that sets the
    variable to 1 later (the test PKI on 127.0.0.1) turns fetching back on for its test.
    """
    monkeypatch.setenv("LIENTHONG_VERIFY_ONLINE", "0")


@pytest.fixture
def axis_config(tmp_path: Path, db_backend: str, request: pytest.FixtureRequest) -> Config:
    """Defaults with the data directory in tmp_path, a small body limit (1 MiB), and OCSP/CRL
    fetching allowed from 127.0.0.1 (the test PKI); the metadata in SQLite in that directory,
    or in a PostgreSQL database of the test's own (`db_backend`, tests/conftest.py)."""
    database: dict[str, str] = {}
    if db_backend == "postgresql":
        databases: PgDatabases = request.getfixturevalue("pg_databases")
        url = asyncio.run(databases.new())
        database = database_settings(url, tmp_path)
    config = load_config(
        env={
            **database,
            "LIENTHONG_SERVER_MAX_BODY_BYTES": str(1024 * 1024),
            "LIENTHONG_SERVER_LOG_JSON": "0",
            # the session's test PKI answers OCSP/CRL on loopback, which the axis refuses to
            # fetch from unless allowed (signing/netguard.py)
            "LIENTHONG_VERIFICATION_FETCH_ALLOW": "127.0.0.1",
            # test webhook receivers listen on loopback, which webhooks may not reach unless
            # allowed (server/exchange/webhooks.py)
            "LIENTHONG_DELIVERY_WEBHOOK_ALLOW": "127.0.0.1",
        },
        data_dir=tmp_path / "data",
    )
    return config


def documented_paths() -> set[str]:
    """The paths the OpenAPI document describes."""
    return set(openapi_document()["paths"])


def undocumented(seen: Sequence[tuple[str, str, int]]) -> set[tuple[str, str, int]]:
    """The (route, method, status) answers met that the OpenAPI document does not list."""
    paths = openapi_document()["paths"]
    missing = set()
    for path, method, code in seen:
        if path not in paths or method == "HEAD":
            continue
        responses = paths[path].get(method.lower(), {}).get("responses", {})
        if str(code) not in responses:
            missing.add((path, method, code))
    return missing


@pytest.fixture
async def axis(aiohttp_client: Any, axis_config: Config) -> AsyncIterator[Axis]:
    """The app running on 127.0.0.1 with the seeded agencies and their tokens.

    Every answer the test receives is recorded; at the end, each (route, method, status) must
    be listed in the OpenAPI document, which keeps the document true to what tests meet.
    """
    app = build_app(axis_config)
    seen: list[tuple[str, str, int]] = []

    async def record(request: web.Request, response: web.StreamResponse) -> None:
        resource = request.match_info.route.resource
        if resource is not None:
            seen.append((resource.canonical, request.method, response.status))

    app.on_response_prepare.append(record)
    client = await aiohttp_client(app)
    result = Axis(client, axis_config)
    async with app[DATABASE].transaction() as tx:
        for organ_id, name, parent in AGENCIES:
            await AgencyRepo(tx).add(organ_id, name, parent_id=parent)
            token, token_hash = new_token()
            await TokenRepo(tx).create(organ_id, token_hash, label="test")
            result.tokens[organ_id] = token
    yield result
    assert not undocumented(seen), "answers missing from the OpenAPI document"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
