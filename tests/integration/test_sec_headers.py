"""Issue 18, finding 8: security headers on every page and answer; attachments sandboxed."""

from __future__ import annotations

import re
import shutil

import pytest
from axis_client import NGHE_AN, VPCP, Axis, document

PAGES = [
    "/",
    "/xac-minh",
    "/tra-cuu",
    "/phan-anh",
    "/phan-anh/da-tra-loi",
    "/bang-dieu-khien",
    "/problems/bad-request",
]


def _directives(policy: str) -> dict[str, str]:
    return {d.split(" ", 1)[0]: d.partition(" ")[2] for d in policy.split("; ")}


@pytest.mark.parametrize("path", PAGES)
async def test_pages_carry_a_nonce_policy_their_own_scripts_satisfy(axis: Axis, path: str) -> None:
    resp = await axis.get(path, None)
    assert resp.status == 200 and resp.content_type == "text/html"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    policy = _directives(resp.headers["Content-Security-Policy"])
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    [nonce] = re.findall(r"'nonce-([^']+)'", policy["script-src"])
    assert policy["style-src"] == f"'nonce-{nonce}'"
    html = await resp.text()
    tags = re.findall(r"<(?:script|style)\b[^>]*>", html)
    assert tags, "every page has at least its style"
    assert all(f'nonce="{nonce}"' in tag for tag in tags), tags
    # no inline event handler, which no nonce can allow
    assert not [t for t in re.findall(r"<[a-z][^>]*>", html) if re.search(r"\son[a-z]+=", t)]
    again = await axis.get(path, None)
    assert nonce not in again.headers["Content-Security-Policy"]  # one nonce per answer


@pytest.mark.parametrize("path", ["/api/v1/openapi.json", "/healthz", "/api/v1/inbox", "/nowhere"])
async def test_every_other_answer_loads_nothing_and_is_not_framed(axis: Axis, path: str) -> None:
    resp = await axis.get(path, None)
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    policy = _directives(resp.headers["Content-Security-Policy"])
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"


@pytest.mark.parametrize(
    ("name", "ctype", "data"),
    [
        ("trang.html", "text/html", b"<script>alert(document.cookie)</script>"),
        ("anh.svg", "image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg" onload="x()"/>'),
    ],
)
async def test_attachments_are_served_sandboxed_and_unsniffed(
    axis: Axis, name: str, ctype: str, data: bytes
) -> None:
    receipt = await axis.send_ok(VPCP, document(VPCP, [NGHE_AN], attachments=[(name, ctype, data)]))
    resp = await axis.get(f"/api/v1/documents/{receipt['id']}/attachments/0", NGHE_AN)
    assert resp.status == 200
    assert await resp.read() == data
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Content-Security-Policy"] == "sandbox"
    assert resp.headers["Content-Disposition"].startswith("attachment")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")
async def test_pages_break_no_rule_of_their_policy_in_chromium(axis: Axis) -> None:
    """Each page's own script and style run under its CSP (no violation reported), and a
    script injected without the nonce does not."""
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            page = await browser.new_page()
            violations: list[str] = []
            page.on(
                "console",
                lambda m: (
                    violations.append(m.text) if "Content Security Policy" in m.text else None
                ),
            )
            for path in PAGES:
                await page.goto(str(axis.client.make_url(path)))
                # the nonce-carrying style applied: the body is not the browser's default font
                font = await page.evaluate("getComputedStyle(document.body).fontFamily")
                assert "system-ui" in font or "sans-serif" in font, (path, font)
            assert violations == []
            # The policy does hold: a script added without the nonce is refused.
            ran = await page.evaluate(
                """() => new Promise(done => {
                    window.injected = false;
                    const s = document.createElement('script');
                    s.textContent = 'window.injected = true';
                    document.body.appendChild(s);
                    setTimeout(() => done(window.injected), 100);
                })"""
            )
            assert ran is False
            assert violations, "the refused script is reported"
        finally:
            await browser.close()
