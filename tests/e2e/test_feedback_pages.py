"""The citizens' feedback pages in real headless Chromium (Debian chromium driven by Playwright,
as tests/integration/test_lookup_browser.py does), on a phone-sized screen, against the real
app: a feedback sent from /phan-anh with two photos and a refusal naming the field, the code
and the private link; the officer answers, publishes and approves one photo over the REST
API; the private page shows the progress and takes one rating; /phan-anh/da-tra-loi shows
the answer with the name masked, no contact, the text escaped and only the approved photo,
its GPS metadata gone."""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from PIL import Image

from server.app.application import build_app
from server.feedback.categories import add_category, read_category
from server.http.appkeys import DATABASE
from server.runtime.audit import ADMIN
from server.runtime.config import load_config
from server.runtime.tokens import new_token
from storage.repos.agencies import AgencyRepo
from storage.repos.tokens import TokenRepo

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")

SO = "000.01.00.H41"  # Sở Thông tin và Truyền thông Nghệ An: receives and answers
PHONE = {"width": 375, "height": 740}
SEVERITY = {  # an Open311 service definition: a required list
    "attributes": [
        {
            "code": "muc-do",
            "datatype": "singlevaluelist",
            "required": True,
            "description": "Mức độ hư hỏng",
            "values": [{"key": "nhe", "name": "Nhẹ"}, {"key": "nang", "name": "Nặng"}],
        }
    ]
}
NOTE = {"attributes": [{"code": "ghi-chu", "datatype": "text", "description": "Ghi chú"}]}


class Site:
    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.token = token

    def url(self, path: str) -> str:
        return str(self.client.make_url(path))

    async def officer(self, path: str, body: dict[str, Any]) -> None:
        resp = await self.client.post(
            path, json=body, headers={"Authorization": f"Bearer {self.token}"}
        )
        assert resp.status == 200, await resp.text()


@pytest.fixture
async def site(aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[Site]:
    """The app on 127.0.0.1 with one agency, its officer's token and two categories."""
    config = load_config(env={"LIENTHONG_SERVER_LOG_JSON": "0"}, data_dir=tmp_path / "data")
    app = build_app(config)
    client = await aiohttp_client(app)
    token, token_hash = new_token()
    async with app[DATABASE].transaction() as tx:
        await AgencyRepo(tx).add(SO, "Sở Thông tin và Truyền thông Nghệ An")
        await TokenRepo(tx).create(SO, token_hash, label="test")
        for code, name, attributes in (
            ("DUONG", "Đường hư hỏng", SEVERITY),
            ("RAC", "Vệ sinh môi trường", NOTE),
        ):
            data = {"code": code, "name": name, "agency": SO, "group": "Hạ tầng"}
            await add_category(tx, read_category({**data, "attributes": attributes}), ADMIN)
    yield Site(client, token)


def photo_with_gps(colour: tuple[int, int, int]) -> bytes:
    image = Image.new("RGB", (80, 60), colour)
    exif = Image.Exif()
    exif[0x0110] = "Camera X"
    exif[0x8825] = {1: "N", 2: (18.0, 40.0, 0.0), 3: "E", 4: (105.0, 40.0, 0.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


async def fill(page: Any, **values: str) -> None:
    for field, value in values.items():
        await page.fill(f"#{field}", value)


async def test_send_follow_rate_and_read_published(site: Site) -> None:
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            page = await browser.new_page(viewport=PHONE)  # a citizen's phone, no token
            await page.goto(site.url("/phan-anh"))
            assert "Gửi phản ánh" in await page.title()
            assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            # the chosen category's attributes only
            assert await page.locator("fieldset.attrs:visible").count() == 0
            await page.select_option("#category", "RAC")
            assert await page.locator("#attr-RAC-ghi-chu").is_visible()
            await page.select_option("#category", "DUONG")
            assert await page.locator("#attr-RAC-ghi-chu").is_hidden()
            await page.select_option("#attr-DUONG-muc-do", "nang")
            content = "Ổ gà sâu <b>nguy hiểm</b> & trơn"
            await fill(
                page,
                title="Ổ gà trên đường Lê Lợi",
                content=content,
                address="12 Lê Lợi, Vinh",
                lat="18.6796",
                long="105.6813",
                name="Nguyễn Văn An",
                phone="",
                email="",
            )
            photos = [
                {"name": f"anh{i}.jpg", "mimeType": "image/jpeg", "buffer": photo_with_gps(c)}
                for i, c in enumerate([(200, 30, 30), (30, 30, 200)], 1)
            ]
            await page.set_input_files("#photo", photos)
            # no phone nor e-mail: refused, the field named, what was typed kept
            await page.click("#send")
            await page.locator("#error").wait_for(timeout=15000)
            assert "Điện thoại" in await page.inner_text("#error")
            assert await page.input_value("#title") == "Ổ gà trên đường Lê Lợi"
            assert await page.input_value("#content") == content
            assert await page.input_value("#category") == "DUONG"
            assert await page.input_value("#attr-DUONG-muc-do") == "nang"

            await page.fill("#phone", "0912 345 678")
            await page.set_input_files("#photo", photos)
            await page.click("#send")
            await page.locator("#code").wait_for(timeout=15000)
            code = await page.inner_text("#code")
            assert re.fullmatch(r"PA-\d{6}-\d{4}", code)
            link = await page.get_attribute("#private-link", "href")
            assert link is not None and f"/phan-anh/{code}?token=" in link
            assert link.startswith("http://127.0.0.1:8080/")  # [server] public_url's base
            parts = urlsplit(link)
            link = site.url(f"{parts.path}?{parts.query}")  # the test server's port

            # the private page: received, no answer yet, nothing to rate
            await page.goto(link)
            assert await page.inner_text("#status-label") == "Đã tiếp nhận"
            assert await page.locator("#rate-hai-long").count() == 0
            assert "Chưa có câu trả lời" in await page.inner_text("#answer")

            # the officer classifies, answers, publishes and approves the second photo
            answer = "Đã vá ổ gà <i>ngày</i> 05/12."
            for move, note in (("classified", ""), ("answered", answer), ("published", "")):
                await site.officer(
                    f"/api/v1/feedback/{code}/events", {"status": move, "note": note}
                )
            moderation = {"approved_photos": [2]}
            await site.officer(f"/api/v1/feedback/{code}/moderation", moderation)

            await page.goto(link)
            assert await page.inner_text("#status-label") == "Đã công khai"
            assert await page.inner_text("#answer") == answer  # escaped, shown as text
            await page.click("#rate-hai-long")
            await page.locator("#rating").wait_for(timeout=15000)
            assert "Hài lòng" in await page.inner_text("#rating")
            assert await page.locator("#rate-hai-long").count() == 0  # once only

            # a wrong token is not found
            await page.goto(site.url(f"/phan-anh/{code}?token=wrong"))
            assert "Không tìm thấy" in await page.inner_text("h1")

            # the published list
            await page.goto(site.url("/phan-anh/da-tra-loi"))
            article = page.locator(f"#fb-{code}")
            text = await article.inner_text()
            assert content in text and answer in text  # markup shown as text
            assert await article.locator("b, i").count() == 0
            assert await page.inner_text(f"#sender-{code}") == "Nguyễn V. A."
            assert "0912" not in await page.inner_text("body")
            assert (
                await page.inner_text(f"#agency-{code}") == "Sở Thông tin và Truyền thông Nghệ An"
            )
            images = article.locator("img")
            assert await images.count() == 1  # the approved photo only
            await page.wait_for_function(
                f"document.querySelector('#fb-{code} img').naturalWidth === 80"
            )
            src = await images.first.get_attribute("src")
            assert src == f"/phan-anh/anh/{code}/2"
        finally:
            await browser.close()

    published = await site.client.get(f"/phan-anh/anh/{code}/2")
    assert published.status == 200
    image = Image.open(io.BytesIO(await published.read()))
    assert image.size == (80, 60) and not image.getexif().get_ifd(0x8825)
    assert "exif" not in image.info
    hidden = await site.client.get(f"/phan-anh/anh/{code}/1")  # not approved
    assert hidden.status == 404


async def test_form_echo_is_escaped_and_flood_is_slowed(site: Site) -> None:
    """Without a browser: what the form echoes back is escaped, and a flood from one address
    gets 429 with Retry-After ([feedback] submit_per_minute, 10 by default) on the page too."""
    hostile = '"><script>alert(1)</script>'
    form = {"category": "DUONG", "title": hostile, "content": "x", "address": "y", "name": "Z"}
    statuses = []
    for _ in range(12):
        resp = await site.client.post("/phan-anh", data=form)  # no contact: refused
        statuses.append(resp.status)
        html = await resp.text()
        assert "<script>alert(1)</script>" not in html
        if resp.status == 422:  # the domain's invalid-feedback
            assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
            assert "Điện thoại" in html
    assert statuses[0] == 422 and statuses[-1] == 429
    assert "Retry-After" in resp.headers and "quá nhiều lần" in html
    listing = await site.client.get("/phan-anh/da-tra-loi")
    assert listing.status == 200 and 'id="empty"' in await listing.text()


async def test_attributes_of_the_chosen_category_are_read(site: Site) -> None:
    """Without a browser (all fieldsets sent): only the chosen category's attributes count, a
    missing required one is named, and the feedback keeps the value given."""
    form = {
        "category": "DUONG",
        "title": "Ổ gà",
        "content": "Sâu",
        "address": "12 Lê Lợi",
        "name": "Nguyễn Văn An",
        "phone": "0912345678",
        "attributes[RAC][ghi-chu]": "of another category: ignored",
    }
    refused = await site.client.post("/phan-anh", data=form)
    assert refused.status == 422 and "attribute[muc-do]" in await refused.text()
    sent = await site.client.post("/phan-anh", data={**form, "attributes[DUONG][muc-do]": "nhe"})
    html = await sent.text()
    assert sent.status == 200, html
    code = re.search(r'id="code">([^<]+)<', html)
    assert code is not None
    resp = await site.client.get(
        f"/api/v1/feedback/{code.group(1)}", headers={"Authorization": f"Bearer {site.token}"}
    )
    assert (await resp.json())["attributes"] == {"muc-do": "nhe"}


async def test_published_list_pages(site: Site) -> None:
    """21 published feedback: 20 on the first page, newest first, the last on the next one
    (``?sau=``); hidden ones are left out."""
    auth = {"Authorization": f"Bearer {site.token}"}
    codes = []
    for n in range(22):
        body = {
            "category": "RAC",
            "title": f"Rác số {n}",
            "content": "Rác chưa thu gom.",
            "address": "Vinh",
            "name": "Trần Thị Bình",
            "phone": "0912345678",
            "channel": "phone",  # entered by the officer: not limited per address
        }
        resp = await site.client.post("/api/v1/feedback", json=body, headers=auth)
        assert resp.status == 201, await resp.text()
        code = (await resp.json())["code"]
        codes.append(code)
        for move, note in (("classified", ""), ("answered", f"Đã thu gom {n}."), ("published", "")):
            await site.officer(f"/api/v1/feedback/{code}/events", {"status": move, "note": note})
    await site.officer(f"/api/v1/feedback/{codes[5]}/moderation", {"hidden": True, "reason": "x"})
    shown = [c for c in reversed(codes) if c != codes[5]]
    first = await (await site.client.get("/phan-anh/da-tra-loi")).text()
    assert re.findall(r'<article id="fb-([^"]+)"', first) == shown[:20]
    more = re.search(r'<a id="more" href="([^"]+)"', first)
    assert more is not None
    second = await (await site.client.get(more.group(1))).text()
    assert re.findall(r'<article id="fb-([^"]+)"', second) == shown[20:]
    assert 'id="more"' not in second and "Trần T. B." in second and "0912" not in second


async def test_a_file_that_is_not_an_image_is_named(site: Site) -> None:
    form = aiohttp.FormData()
    fields = {"category": "RAC", "title": "Rác", "content": "Rác", "address": "Vinh"}
    for name, value in {**fields, "name": "Lê Văn C", "phone": "0912345678"}.items():
        form.add_field(name, value)
    form.add_field("photo", photo_with_gps((0, 0, 0)), filename="a.jpg", content_type="image/jpeg")
    form.add_field("photo", b"MZ\x90\x00 not an image", filename="b.jpg", content_type="image/jpeg")
    resp = await site.client.post("/phan-anh", data=form)
    html = await resp.text()
    assert resp.status == 422 and "ảnh thứ 2" in html, html


async def test_garbage_to_the_pages_is_a_4xx_page(site: Site) -> None:
    """Broken bodies to the form and the rating, and odd codes, answer 4xx, never a 500."""
    cases = [
        ("/phan-anh", b"--x\r\nContent-Disposition: form-data\r\n\r\n", "multipart/form-data"),
        ("/phan-anh", b"--x\r\nbroken", "multipart/form-data; boundary=x"),
        ("/phan-anh", b"\xff\xfe=\xff", "application/x-www-form-urlencoded"),
        (
            "/phan-anh/PA-000000-0001",
            b"token=&rating=hai-long",
            "application/x-www-form-urlencoded",
        ),
        ("/phan-anh/PA-000000-0001", b"--x\r\nbroken", "multipart/form-data; boundary=x"),
    ]
    for path, body, content_type in cases:
        resp = await site.client.post(path, data=body, headers={"Content-Type": content_type})
        assert 400 <= resp.status < 500, (path, body, resp.status, await resp.text())
    for path in ("/phan-anh/PA-1-1?token=%FF", "/phan-anh/anh/PA-1-1/x", "/phan-anh/anh/PA-1-1/99"):
        resp = await site.client.get(path)
        assert resp.status == 404, (path, await resp.text())
