"""The /tra-cuu page in real headless Chromium (Debian chromium driven by Playwright, as
test_verify_browser.py does): a code typed in shows the status label and the masked name; the
page opened as the slip's QR code opens it (``/tra-cuu?ma=<code>``) shows it at once; an
unknown code says so."""

from __future__ import annotations

import shutil
from urllib.parse import quote

import pytest
from axis_client import SO_TTTT, Axis
from test_api_dossiers import intake, moved, seed

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")


async def test_lookup_page_in_chromium(axis: Axis) -> None:
    await seed(axis)
    code = (await intake(axis))["code"]
    await moved(axis, SO_TTTT, code, 4)
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            page = await browser.new_page()  # a citizen's browser: no token anywhere
            await page.goto(str(axis.client.make_url("/tra-cuu")))
            assert "Tra cứu hồ sơ" in await page.title()
            await page.fill("#code", f"  {code} ")
            await page.click("#search")
            await page.locator("#result").wait_for(state="visible", timeout=15000)
            assert await page.inner_text("#status-label") == "Đang xử lý"
            assert await page.inner_text("#r-applicant") == "Nguyễn V. A."
            assert await page.inner_text("#r-procedure") == "Đăng ký khai sinh (1.001193)"
            received = await page.inner_text("#r-received")
            assert len(received) == 16 and received[2] == "/" and received[5] == "/"
            assert await page.inner_text("#r-returned") == "—"
            assert await page.locator("#steps tr").count() == 2
            page_text = await page.inner_text("body")
            assert "0912" not in page_text and "040203001234" not in page_text

            # the slip's QR code opens the page with the code in ?ma=
            await page.goto(str(axis.client.make_url("/tra-cuu")) + "?ma=" + quote(code))
            await page.locator("#result").wait_for(state="visible", timeout=15000)
            assert await page.inner_text("#status-label") == "Đang xử lý"
            assert await page.inner_text("#r-applicant") == "Nguyễn V. A."
            assert await page.input_value("#code") == code

            await page.fill("#code", "000.00.01.H40-260105-0999")
            await page.click("#search")
            # A locator, not wait_for_function: the page's CSP allows no eval (http/headers.py).
            await page.locator("#message", has_text="Không tìm thấy").wait_for()
            assert await page.locator("#result").is_hidden()
        finally:
            await browser.close()
