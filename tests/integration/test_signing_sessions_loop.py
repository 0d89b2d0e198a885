"""While a signing session prepares a large PDF, the axis's event loop keeps answering.

pyHanko parses, lays out and hashes on whatever loop awaits it (SIGNING-NOTES.md, trap 11);
the axis awaits it on the signing worker loop instead (``SigningServices.offload``). The test
counts loop ticks and /healthz answers during the request: on the server's own loop, the
preparation would be one long block without a tick. Loose bounds only (speed is for bench/).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import fixtures_pki
import pytest
from aiohttp import FormData
from axis_client import NGHE_AN, Axis
from signing_session_fixtures import Tokens, sig_pki, sig_tokens, signing_env

from server.runtime.config import Config, load_config
from signing import devpki as pki_cli

__all__ = ["sig_pki", "sig_tokens"]

PAGES = 3000  # walking the page tree is most of the preparation's CPU time
PADDING = 12 * 1024 * 1024  # a large stream: the file is ~13 MB, hashed once


def large_pdf() -> bytes:
    """A valid PDF of about 13 MB: ``PAGES`` pages and one large stream."""
    return fixtures_pki.minimal_pdf(pages=PAGES, text="Ho so lon", padding=PADDING)


@pytest.fixture
def axis_config(tmp_path: Path, sig_pki: pki_cli.DevPki, sig_tokens: Tokens) -> Config:
    """The signing axis of signing_session_fixtures, with room for a large upload."""
    env = {**signing_env(sig_pki, sig_tokens), "LIENTHONG_SERVER_MAX_BODY_BYTES": str(64 << 20)}
    return load_config(env=env, data_dir=tmp_path / "data")


async def test_loop_keeps_answering_while_a_session_prepares_a_large_pdf(
    axis: Axis, sig_pki: pki_cli.DevPki, tmp_path: Path
) -> None:
    pdf = await asyncio.to_thread(large_pdf)
    assert len(pdf) > 10 * 1024 * 1024
    loop = asyncio.get_running_loop()

    async def create() -> tuple[int, float]:
        form = FormData()
        form.add_field("pdf", pdf, filename="ho-so.pdf", content_type="application/pdf")
        form.add_field("certificate", sig_pki.cert_path("officer").read_bytes(), filename="o.pem")
        start = time.monotonic()
        resp = await axis.client.post(
            "/api/v1/signing-sessions", data=form, headers=axis.auth(NGHE_AN)
        )
        assert resp.status == 201, await resp.text()
        return resp.status, time.monotonic() - start

    request = asyncio.create_task(create())
    gaps: list[float] = []
    health = 0

    async def tick() -> None:
        while not request.done():
            before = loop.time()
            await asyncio.sleep(0.005)
            gaps.append(loop.time() - before)

    async def healthz() -> None:
        nonlocal health
        while not request.done():
            resp = await axis.client.get("/healthz")
            assert resp.status == 200
            health += 1
            await asyncio.sleep(0.01)

    await asyncio.gather(tick(), healthz())
    _, took = await request
    # The preparation took a while; during it the loop ticked and /healthz kept answering,
    # and no single stall came close to the whole request.
    assert took > 0.2, f"the large PDF prepared in {took:.3f} s: too small to tell"
    longest = max(gaps)
    assert health >= 5, f"/healthz answered {health} times in {took:.2f} s"
    assert longest < took / 2, f"the loop stalled {longest:.3f} s in a {took:.3f} s request"
