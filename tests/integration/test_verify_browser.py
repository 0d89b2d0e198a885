"""The /xac-minh page in real headless Chromium (Debian chromium driven by Playwright):
a valid and a tampered PDF are uploaded and the verdicts read off the page; the PDF report is
downloaded; a screenshot is kept with the test output (LIENTHONG_ARTIFACTS or pytest's tmp)."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fixtures_pki
from axis_client import Axis
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.writer import PageObject

from signing import devpki
from signing.trust import TEST_TRUST_ENV

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")


@pytest.fixture
def trusted_pki(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[devpki.DevPki]:
    """The test PKI, trusted by the app (set before the app starts) and serving OCSP/CRL."""
    pki = fixtures_pki.make_pki(tmp_path / "pki")
    monkeypatch.setenv(TEST_TRUST_ENV, str(pki.directory / "trust"))
    monkeypatch.setenv("LIENTHONG_VERIFY_ONLINE", "1")
    with devpki.PkiServer(pki):
        yield pki


def _signed(pki: devpki.DevPki, path: Path) -> Path:
    path.write_bytes(fixtures_pki.signed_pdf(pki))
    return path


def _page_added(signed: Path, path: Path) -> Path:
    """``signed`` with a page appended by an incremental update after the signature.

    Made here from the test PKI rather than taken from the esig-dss corpus: with online
    fetching on, a corpus file's certificates (AIA/CRL URLs at dss.nowina.lu) would send the
    verifier off 127.0.0.1.
    """
    writer = IncrementalPdfFileWriter(io.BytesIO(signed.read_bytes()))
    content = writer.add_object(
        generic.StreamObject(stream_data=b"BT /F1 14 Tf 72 760 Td (P2) Tj ET")
    )
    box = generic.ArrayObject([generic.NumberObject(v) for v in (0, 0, 595, 842)])
    writer.insert_page(PageObject(contents=content, media_box=box))
    out = io.BytesIO()
    writer.write(out)
    path.write_bytes(out.getvalue())
    return path


async def test_page_shows_verdicts_in_chromium(
    trusted_pki: devpki.DevPki, axis: Axis, tmp_path: Path
) -> None:
    # pyHanko's sync signing runs its own event loop: keep it off the test's loop
    valid = await asyncio.to_thread(_signed, trusted_pki, tmp_path / "cong-van-hop-le.pdf")
    tampered = _page_added(valid, tmp_path / "pdf-signed-added-page.pdf")
    artifacts = Path(os.environ.get("LIENTHONG_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    url = str(axis.client.make_url("/xac-minh"))
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            # a clerk's browser: no token anywhere (the page and its upload are public)
            context = await browser.new_context(accept_downloads=True)
            page = await context.new_page()
            await page.goto(url)
            assert "Xác minh chữ ký số" in await page.title()

            await page.set_input_files("#file", str(valid))
            card = page.locator(".sig").first
            await card.wait_for(timeout=15000)
            assert await card.get_attribute("data-indication") == "TOTAL_PASSED"
            assert "passed" in (await card.get_attribute("class") or "")
            text = await card.inner_text()
            assert "Hợp lệ" in text and "Nguyễn Văn Ánh" in text and "Nguyên vẹn" in text
            summary = await page.inner_text("#summary")
            assert "Chữ ký hợp lệ của Nguyễn Văn Ánh" in summary
            await page.screenshot(path=str(artifacts / "xac-minh-hop-le.png"), full_page=True)

            async with page.expect_download() as download_info:
                await page.click("#pdf-report")
            download = await download_info.value
            report_path = artifacts / "bao-cao-xac-minh.pdf"
            await download.save_as(str(report_path))
            assert report_path.read_bytes().startswith(b"%PDF-")

            await page.set_input_files("#file", str(tampered))
            # Locators, not wait_for_function: the page CSP allows no eval (http/headers.py).
            await page.locator("#status", has_text="Đã kiểm tra pdf-signed-added-page").wait_for()
            await page.locator("#result").wait_for(state="visible")
            card = page.locator(".sig").first
            assert await card.get_attribute("data-indication") == "TOTAL_FAILED"
            text = await card.inner_text()
            assert "Không hợp lệ" in text and "đã bị sửa đổi sau khi ký" in text
            await page.screenshot(path=str(artifacts / "xac-minh-bi-sua.png"), full_page=True)
        finally:
            await browser.close()
    assert (artifacts / "xac-minh-hop-le.png").stat().st_size > 1000
