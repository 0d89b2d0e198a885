"""Open311 GeoReport v2 on the real app over the feedback domain (issue 17): every resource in
XML and JSON with the elements of the specification's examples (tests/corpus/open311), a
request posted by an app and read back without the sender's name or contacts, its status,
notes, deadline and agency following the lifecycle, hidden feedback gone, and the spec's
errors (403 api_key, 404 unknown service/request/token/jurisdiction, 400 naming the missing
parameter, 429 per key)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from axis_client import SO_TTTT, Axis
from lxml import etree

from server.feedback.categories import add_category, read_category
from server.http.appkeys import DATABASE
from server.http.open311_feedback import FeedbackBackend
from server.runtime.audit import ADMIN
from server.runtime.config import Config
from server.runtime.tokens import hash_token
from storage.dialects import migration_to_postgres
from storage.repos.open311_keys import Open311KeyRepo

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "open311"
V2 = "/open311/v2/"
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
JURISDICTION = "phananh.nghean.gov.vn"
PER_MINUTE = 12
ROAD = "DUONG-HU-HONG"
LIGHT = "CHIEU-SANG"  # batch: answers with a token
HOTLINE = "DUONG-DAY-NONG"  # blackbox: answers neither an id nor a token
SEVERITY = {
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
SENDER = {
    "first_name": "An",
    "last_name": "Nguyễn Văn",
    "phone": "0912345678",
    "email": "an.nguyen@example.vn",
}
POST = {
    "service_code": ROAD,
    "lat": "18.6796",
    "long": "105.6813",
    "address_string": "12 Lê Lợi, Vinh",
    "description": "Ổ gà sâu trước số 12 <script>alert(1)</script>",
    "media_url": "http://127.0.0.1:9/anh/o-ga.jpg",
    "device_id": "tt222111",
    "account_id": "acc-7",
    "attribute[muc-do]": "nang",
    **SENDER,
}


@pytest.fixture
def axis_config(axis_config: Config) -> Config:
    """Our jurisdiction, 12 posts a minute per API key."""
    feedback = dataclasses.replace(axis_config.feedback, jurisdiction_id=JURISDICTION)
    open311 = dataclasses.replace(axis_config.open311, posts_per_minute=PER_MINUTE)
    return dataclasses.replace(axis_config, feedback=feedback, open311=open311)


async def seed(axis: Axis) -> dict[str, str]:
    """Two categories and two apps' keys."""
    categories = [
        {"code": ROAD, "name": "Đường hư hỏng", "agency": SO_TTTT, "group": "Hạ tầng",
         "keywords": "đường, ổ gà", "description": "Đường, vỉa hè hư hỏng", "attributes": SEVERITY},
        {"code": LIGHT, "name": "Chiếu sáng công cộng", "agency": SO_TTTT, "type": "batch"},
        {"code": HOTLINE, "name": "Đường dây nóng", "agency": SO_TTTT, "type": "blackbox"},
    ]  # fmt: skip
    keys = {"app-a": "o311_key-of-app-a", "app-b": "o311_key-of-app-b"}
    async with axis.client.app[DATABASE].transaction() as tx:
        for data in categories:
            await add_category(tx, read_category(data), ADMIN)
        for name, key in keys.items():
            await Open311KeyRepo(tx).create(name, hash_token(key))
    return keys


def xml_tree(body: bytes) -> Any:
    """(tag, children or stripped text), recursively."""

    def walk(e: Any) -> Any:
        return [(c.tag, walk(c)) for c in e] if len(e) else (e.text or "").strip()

    root = etree.fromstring(body)
    return root.tag, walk(root)


def shape(tree: Any) -> Any:
    """The element names only, each element's children as a set of names (lists: per item)."""
    tag, value = tree
    if isinstance(value, list):
        return tag, frozenset(shape(child) for child in value)
    return tag


def spec_shape(name: str) -> Any:
    return shape(xml_tree((CORPUS / name).read_bytes()))


async def get(axis: Axis, path: str, expect: int = 200) -> Any:
    resp = await axis.client.get(V2 + path)
    body = await resp.read()
    assert resp.status == expect, body
    if path.split("?")[0].endswith(".json"):
        assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
        return json.loads(body)
    assert resp.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return xml_tree(body)


async def post(axis: Axis, form: dict[str, str], fmt: str = "xml", **headers: str) -> Any:
    resp = await axis.client.post(V2 + f"requests.{fmt}", data=form, headers={**FORM, **headers})
    return resp.status, resp.headers, await resp.read()


def errors_of(body: bytes) -> list[tuple[str, str]]:
    tag, errors = xml_tree(body)
    assert tag == "errors"
    return [(dict(e)["code"], dict(e)["description"]) for _, e in errors]


async def test_discovery_services_and_definitions_as_the_spec(axis: Axis) -> None:
    await seed(axis)
    discovery = await get(axis, "discovery.xml")
    assert shape(discovery) == spec_shape("discovery.xml")
    endpoint = dict(dict(dict(discovery[1])["endpoints"])["endpoint"])
    assert endpoint["url"] == axis.config.base_url + "/open311/v2"
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    as_json = await get(axis, "discovery.json")
    assert list(as_json) == ["changeset", "contact", "key_service", "endpoints"]
    # a category added later moves the changeset on (clients refresh their cached services)
    async with axis.client.app[DATABASE].transaction() as tx:
        data = {"code": "RAC", "name": "Vệ sinh môi trường", "agency": SO_TTTT}
        await add_category(tx, read_category(data), ADMIN)
    later = await get(axis, "discovery.json")
    assert later["changeset"] > as_json["changeset"] == as_json["endpoints"][0]["changeset"]
    assert as_json["endpoints"][0]["formats"] == ["text/xml", "application/json"]

    services = await get(axis, "services.xml")
    assert shape(services) == spec_shape("services.xml")
    road = dict(next(s for _, s in services[1] if dict(s)["service_code"] == ROAD))
    assert road["service_name"] == "Đường hư hỏng" and road["metadata"] == "true"
    assert road["keywords"] == "đường, ổ gà" and road["group"] == "Hạ tầng"
    listed = await get(axis, "services.json")
    assert [s["service_code"] for s in listed] == [LIGHT, HOTLINE, ROAD, "RAC"]  # by code
    light = listed[0]
    assert light["metadata"] is False and light["type"] == "batch" and light["group"] is None

    definition = await get(axis, f"services/{ROAD}.xml")
    assert shape(definition) == spec_shape("service_definition.xml")
    as_json = await get(axis, f"services/{ROAD}.json")
    attribute = as_json["attributes"][0]
    assert attribute["code"] == "muc-do" and attribute["required"] is True
    assert attribute["values"] == [{"key": "nhe", "name": "Nhẹ"}, {"key": "nang", "name": "Nặng"}]
    assert attribute["datatype_description"] is None

    # the jurisdiction: ours, empty or missing is fine; another is 404
    assert (await get(axis, f"services.xml?jurisdiction_id={JURISDICTION}"))[0] == "services"
    assert len(await get(axis, "services.json?jurisdiction_id=")) == 4
    other = await axis.client.get(V2 + "services.xml?jurisdiction_id=sfgov.org")
    assert other.status == 404 and "sfgov.org" in errors_of(await other.read())[0][1]
    unknown = await axis.client.get(V2 + "services/NOPE.json")
    assert unknown.status == 404
    assert await unknown.json() == [
        {"code": 404, "description": "service_code 'NOPE' was not found"}
    ]
    head = await axis.client.head(V2 + "services.xml")
    assert head.status == 200 and head.headers["Content-Type"] == "text/xml; charset=utf-8"
    for path in ("nothing.xml", "services.html", "requests/x/y.json"):
        resp = await axis.client.get(V2 + path)
        assert resp.status == 404 and resp.content_type in {"text/xml", "application/json"}


async def test_post_then_read_back_through_the_lifecycle(axis: Axis) -> None:
    keys = await seed(axis)
    status, headers, body = await post(axis, {**POST, "api_key": keys["app-a"]})
    assert status == 200, body
    assert headers["Content-Type"] == "text/xml; charset=utf-8"
    created = xml_tree(body)
    assert shape(created) == spec_shape("post_response.xml")
    fields = dict(dict(created[1])["request"])
    code = fields["service_request_id"]
    assert code.startswith("PA-") and code in fields["service_notice"]
    assert fields["account_id"] == "acc-7"

    # GET it back, XML and JSON: the spec's elements, never the sender
    one = await get(axis, f"requests/{code}.xml")
    assert shape(one) == shape(("service_requests", [spec_request()]))
    raw = await (await axis.client.get(V2 + f"requests/{code}.json")).text()
    for private in ("0912345678", "an.nguyen", "Nguyễn Văn", "tt222111", "acc-7"):
        assert private not in raw
    [request] = json.loads(raw)
    assert request["service_request_id"] == code and request["status"] == "open"
    assert request["service_code"] == ROAD and request["service_name"] == "Đường hư hỏng"
    assert request["description"] == POST["description"]  # stored as text, as given
    assert request["agency_responsible"] == "Sở Thông tin và Truyền thông Nghệ An"
    assert request["media_url"] == POST["media_url"]  # recorded, never fetched
    assert (request["lat"], request["long"]) == (18.6796, 105.6813)
    assert request["address"] == "12 Lê Lợi, Vinh"
    assert request["status_notes"] is None and request["expected_datetime"] is not None
    assert request["requested_datetime"].endswith("+07:00")
    officers = await axis.client.get(f"/api/v1/feedback/{code}", headers=axis.auth(SO_TTTT))
    stored = await officers.json()
    assert stored["channel"] == "app" and stored["sender"]["name"] == "Nguyễn Văn An"
    assert stored["attributes"] == {"muc-do": "nang"}

    # the lifecycle: classified, answered (closed), published (the answer becomes the notes)
    answer = "Đã vá ổ gà ngày 05/12."
    for move, note in (("classified", ""), ("answered", answer), ("published", "")):
        resp = await axis.client.post(
            f"/api/v1/feedback/{code}/events",
            json={"status": move, "note": note},
            headers=axis.auth(SO_TTTT),
        )
        assert resp.status == 200, await resp.text()
        [request] = await get(axis, f"requests/{code}.json")
        assert request["status"] == ("open" if move == "classified" else "closed")
        assert request["status_notes"] == (answer if move == "published" else None)
    assert request["expected_datetime"] is None  # nothing left due
    listed = await get(axis, "requests.json?status=closed")
    assert [r["service_request_id"] for r in listed] == [code]
    assert await get(axis, "requests.json?status=open") == []

    # an officer hides it: gone from every Open311 read
    resp = await axis.client.post(
        f"/api/v1/feedback/{code}/moderation",
        json={"hidden": True, "reason": "personal data in the text"},
        headers=axis.auth(SO_TTTT),
    )
    assert resp.status == 200, await resp.text()
    assert await get(axis, "requests.json") == []
    assert await get(axis, f"requests.json?service_request_id={code}") == []
    await get(axis, f"requests/{code}.xml", 404)


def spec_request() -> Any:
    """The first request of the spec's GET requests example."""
    _, requests = xml_tree((CORPUS / "requests.xml").read_bytes())
    return requests[0]


async def test_queries_tokens_and_the_window(axis: Axis) -> None:
    keys = await seed(axis)
    codes = []
    for text in ("Một", "Hai"):
        status, _, body = await post(axis, {**POST, "description": text, "api_key": keys["app-b"]})
        assert status == 200, body
        codes.append(dict(dict(xml_tree(body)[1])["request"])["service_request_id"])
    # a batch service answers with a token, which gives the id
    form = {**POST, "service_code": LIGHT, "api_key": keys["app-b"]}
    del form["attribute[muc-do]"]
    status, _, body = await post(axis, form, "json")
    assert status == 200, body
    [created] = json.loads(body)
    assert "service_request_id" not in created and created["token"]
    [resolved] = await get(axis, f"tokens/{created['token']}.json")
    assert resolved["token"] == created["token"]
    codes.append(resolved["service_request_id"])
    # a blackbox service answers neither, but the feedback is received and listed
    form = {**form, "service_code": HOTLINE, "description": "Ba"}
    status, _, body = await post(axis, form, "json")
    assert status == 200, body
    [created_blind] = json.loads(body)
    assert set(created_blind) == {"service_notice", "account_id"}
    tree = await get(axis, f"tokens/{created['token']}.xml")
    assert shape(tree) == spec_shape("token.xml")
    await get(axis, "tokens/nope.xml", 404)

    listed = await get(axis, "requests.xml")
    assert shape(listed) == spec_shape("requests.xml")
    listed_codes = [dict(r)["service_request_id"] for _, r in listed[1]]
    assert len(listed_codes) == 4 and listed_codes[1:] == codes[::-1]  # newest first
    only_road = await get(axis, f"requests.json?service_code={ROAD}")
    assert [r["service_request_id"] for r in only_road] == codes[1::-1]
    by_ids = await get(axis, f"requests.json?service_request_id={codes[2]},{codes[0]}&status=x")
    assert sorted(r["service_request_id"] for r in by_ids) == sorted([codes[0], codes[2]])
    assert await get(axis, "requests.json?end_date=2020-01-01T00:00:00Z") == []
    bad = await axis.client.get(V2 + "requests.json?start_date=2026-01-01")
    assert bad.status == 200  # a bare date is midnight UTC
    for query, says in (
        ("start_date=yesterday", "start_date must be a W3C date-time"),
        ("status=pending", "status must be open or closed"),
        ("start_date=2020-01-01T00:00:00Z&end_date=2021-01-01T00:00:00Z", "90 days"),
    ):
        resp = await axis.client.get(V2 + f"requests.json?{query}")
        assert resp.status == 400
        [error] = await resp.json()
        assert error["code"] == 400 and says in error["description"]
    await get(axis, "requests/PA-000101-9999.json", 404)

    # not accepted (with its reason): closed, the reason not shown, nothing more due
    resp = await axis.client.post(
        f"/api/v1/feedback/{codes[0]}/events",
        json={"status": "not_accepted", "note": "Không thuộc phạm vi"},
        headers=axis.auth(SO_TTTT),
    )
    assert resp.status == 200, await resp.text()
    [refused] = await get(axis, f"requests/{codes[0]}.json")
    assert refused["status"] == "closed" and refused["status_notes"] is None
    assert refused["expected_datetime"] is None
    [still] = await get(axis, f"requests/{codes[1]}.json")  # received: the classify deadline
    assert still["status"] == "open" and still["expected_datetime"] is not None
    officers = await axis.client.get(f"/api/v1/feedback/{codes[1]}", headers=axis.auth(SO_TTTT))
    classify_due = datetime.fromisoformat((await officers.json())["due"]["classify"])
    assert datetime.fromisoformat(still["expected_datetime"]) == classify_due.replace(microsecond=0)
    closed = await get(axis, "requests.json?status=closed")
    assert [r["service_request_id"] for r in closed] == [codes[0]]


async def test_post_refusals_in_the_spec_shape(axis: Axis) -> None:
    keys = await seed(axis)
    good = {**POST, "api_key": keys["app-a"]}
    # 403: no key, a wrong key (the spec's example error, in both formats)
    status, _, body = await post(axis, {**POST})
    assert status == 403 and errors_of(body)[0][0] == "403"
    assert xml_tree(body)[0] == "errors" and shape(xml_tree(body)) == spec_shape("errors.xml")
    status, _, body = await post(axis, {**POST, "api_key": "o311_wrong"}, "json")
    assert status == 403 and json.loads(body)[0]["code"] == 403
    # 404: unknown service, another jurisdiction
    status, _, body = await post(axis, {**good, "service_code": "NOPE"})
    assert status == 404 and "NOPE" in errors_of(body)[0][1]
    status, _, body = await post(axis, {**good, "jurisdiction_id": "sfgov.org"})
    assert status == 404
    # 400, naming each missing parameter: the contact, the attribute, a location
    form = {k: v for k, v in good.items() if k not in SENDER and k != "attribute[muc-do]"}
    form = {k: v for k, v in form.items() if k not in ("lat", "long", "address_string")}
    status, _, body = await post(axis, form, "json")
    assert status == 400
    said = " | ".join(e["description"] for e in json.loads(body))
    for name in ("a location", "first_name or last_name", "email or phone", "attribute[muc-do]"):
        assert name in said
    status, _, body = await post(axis, {**good, "service_code": ""})
    assert status == 400 and "service_code was not provided" in errors_of(body)[0][1]
    status, _, body = await post(axis, {**good, "phone": "111111111", "email": ""})
    assert status == 400 and "phone" in errors_of(body)[0][1]  # the domain's own check
    status, _, body = await post(axis, {**good, "attribute[muc-do]": "rat-nang"})
    assert status == 400 and "'rat-nang' is not one of its values" in errors_of(body)[0][1]
    # form-encoded UTF-8 only
    resp = await axis.client.post(
        V2 + "requests.xml", data=b"api_key=x&description=\xff", headers=FORM
    )
    assert resp.status == 400 and "not UTF-8" in errors_of(await resp.read())[0][1]
    resp = await axis.client.post(V2 + "requests.json", json={"api_key": keys["app-a"]})
    assert resp.status == 400
    huge = {**good, "description": "x" * 300_000}  # past the 256 KiB a post may take
    status, _, body = await post(axis, huge)
    assert status == 400 and errors_of(body)[0][0] == "413"
    # chunked, without a Content-Length: read whole however it arrives, bounded all the same
    text = "Ổ gà sâu. " * 300  # 3,000 characters, ~24 KB percent-encoded
    form_bytes = urlencode({**good, "description": text}).encode()

    async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
        for start in range(0, len(data), size):
            yield data[start : start + size]

    resp = await axis.client.post(V2 + "requests.json", data=pieces(form_bytes, 1000), headers=FORM)
    assert resp.status == 200, await resp.text()
    [created] = await resp.json()
    [stored] = await get(axis, f"requests/{created['service_request_id']}.json")
    assert stored["description"] == text.strip()
    resp = await axis.client.post(
        V2 + "requests.json", data=pieces(b"a=" + b"x" * 300_000, 8192), headers=FORM
    )
    assert resp.status == 400 and (await resp.json())[0]["code"] == 413
    status, _, body = await post(axis, {**good, "description": "x" * 4001})
    assert status == 400 and "description is longer than 4000" in errors_of(body)[0][1]
    # nothing was stored by any refusal: the one request is the chunked post's
    assert len(await get(axis, "requests.json")) == 1


async def test_rate_limit_per_key_and_revocation(axis: Axis) -> None:
    keys = await seed(axis)
    for n in range(PER_MINUTE):  # in a burst of as many (each another request, not a retry)
        form = {**POST, "description": f"Ổ gà số {n}", "api_key": keys["app-a"]}
        status, _, body = await post(axis, form)
        assert status == 200, body
    status, headers, body = await post(axis, {**POST, "api_key": keys["app-a"]})
    assert status == 429 and int(headers["Retry-After"]) >= 1
    assert errors_of(body)[0][0] == "429"
    # another app, from the same address, is not slowed
    status, _, body = await post(axis, {**POST, "api_key": keys["app-b"]}, "json")
    assert status == 200, body
    assert len(await get(axis, "requests.json")) == PER_MINUTE + 1

    async with axis.client.app[DATABASE].transaction() as tx:
        assert await Open311KeyRepo(tx).revoke("app-b")
    status, _, body = await post(axis, {**POST, "api_key": keys["app-b"]})
    assert status == 403 and "unknown or revoked" in errors_of(body)[0][1]


async def test_a_retried_post_answers_the_first_request(axis: Axis) -> None:
    """The documented rule (docs/open311.md): the same app posting the same form within ten
    minutes, or the same ``Idempotency-Key`` at any time, gets the first request's answer and
    stores nothing; another app, or another key, makes a new request."""
    keys = await seed(axis)
    form = {**POST, "api_key": keys["app-a"]}

    async def posted(form: dict[str, str], **headers: str) -> dict[str, Any]:
        status, _, body = await post(axis, form, "json", **headers)
        assert status == 200, body
        [answer] = json.loads(body)
        return dict(answer)

    first = await posted(form)
    reordered = dict(reversed(list(form.items())))  # the same fields in another order
    assert await posted(reordered) == first
    other_app = await posted({**POST, "api_key": keys["app-b"]})
    assert other_app["service_request_id"] != first["service_request_id"]
    changed = await posted({**form, "description": "Ổ gà thứ hai"})
    assert changed["service_request_id"] != first["service_request_id"]

    # With an Idempotency-Key: the key decides, not the form.
    keyed = await posted(form, **{"Idempotency-Key": "lan-1"})
    assert keyed["service_request_id"] not in (first["service_request_id"], None)
    again = await posted({**form, "description": "sửa lại"}, **{"Idempotency-Key": "lan-1"})
    assert again == keyed
    status, _, body = await post(axis, form, **{"Idempotency-Key": "có dấu"})
    assert status == 400 and "Idempotency-Key" in errors_of(body)[0][1]

    # A batch service: the retry gets the same token.
    batch = {
        **SENDER,
        "service_code": LIGHT,
        "address_string": "Cột đèn 7",
        "api_key": keys["app-a"],
    }
    token = (await posted(batch))["token"]
    assert token and (await posted(batch))["token"] == token
    listed = await get(axis, "requests.json")
    assert len(listed) == 5  # first, other app, changed, keyed, batch


async def test_a_post_is_one_transaction(axis: Axis) -> None:
    """The feedback and its Open311 extras are written together: when the extras cannot be
    written, no feedback is left without them (and no code number is taken)."""
    keys = await seed(axis)
    database = axis.client.app[DATABASE]
    trigger = (
        "CREATE TRIGGER open311_fails BEFORE INSERT ON open311_requests"
        " BEGIN SELECT RAISE (ABORT, 'the disk is gone'); END"
    )
    async with database.transaction() as tx:
        if tx.dialect == "postgresql":  # the same trigger, as plpgsql (no parameters: one call)
            trigger = migration_to_postgres(trigger + ";", "test")
        await tx.execute(trigger)
    status, _, body = await post(axis, {**POST, "api_key": keys["app-a"]})
    assert status >= 500 and errors_of(body)
    async with database.transaction() as tx:
        await tx.execute(
            "DROP TRIGGER open311_fails"
            + (" ON open311_requests" if tx.dialect == "postgresql" else "")
        )
        assert await tx.fetchall("SELECT code FROM feedback") == []
    status, _, body = await post(axis, {**POST, "api_key": keys["app-a"]})
    assert status == 200, body
    assert dict(dict(xml_tree(body)[1])["request"])["service_request_id"].endswith("-0001")


async def test_an_unexpected_failure_is_a_500_in_the_spec_shape(
    axis: Axis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug under /open311/ answers 500 as ``errors/error`` (XML or JSON by the suffix) with
    the request id to quote, not problem+json, and no traceback."""
    await seed(axis)

    async def broken(self: Any) -> Any:
        raise RuntimeError("secret internals /work/data")

    monkeypatch.setattr(FeedbackBackend, "service_list", broken)
    resp = await axis.client.get(V2 + "services.xml")
    body = await resp.read()
    assert resp.status == 500 and resp.headers["Content-Type"] == "text/xml; charset=utf-8"
    [(code, description)] = errors_of(body)
    assert code == "500" and "request id" in description
    assert b"secret" not in body and b"Traceback" not in body
    resp = await axis.client.get(V2 + "services.json")
    [error] = await resp.json()
    assert resp.status == 500 and resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert error["code"] == 500 and "request id" in error["description"]
    assert resp.headers.get("X-Request-Id", "-") in error["description"]


async def test_garbage_gets_the_spec_errors_never_a_traceback(axis: Axis) -> None:
    keys = await seed(axis)
    paths = [
        "requests/%00.xml",
        "requests/..%2F..%2Fetc.json",
        "tokens/%FF%FE.xml",
        "services/%3Cscript%3E.json",
        "requests.json?start_date=%00",
        "requests.xml?status=open,,closed,%FF",
        "requests.json?service_request_id=" + ",".join(f"A{i}" for i in range(1200)),
        "requests.xml?end_date=9999-12-31T23:59:59Z",
    ]
    for path in paths:
        resp = await axis.client.get(V2 + path)
        body = await resp.read()
        assert resp.status in {200, 400, 404}, (path, body)
        if path.split("?")[0].endswith(".json"):
            assert isinstance(json.loads(body), list)
        else:
            assert etree.fromstring(body).tag in {
                "service_requests",
                "errors",
                "service_definition",
            }
    bodies = [
        (b"\x00\x01\x02", FORM["Content-Type"]),
        (b"=&=&&==", FORM["Content-Type"]),
        (f"api_key={keys['app-a']}&attribute[=1&attribute]]=2".encode(), FORM["Content-Type"]),
        (f"api_key={keys['app-a']}&service_code=%FF".encode(), FORM["Content-Type"]),
        (f"api_key={keys['app-a']}&lat=1e999&long=-1e999&service_code={ROAD}".encode(), None),
        (b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--", "multipart/form-data"),
    ]
    for raw, content_type in bodies:
        headers = {"Content-Type": content_type} if content_type else {}
        resp = await axis.client.post(V2 + "requests.xml", data=raw, headers=headers)
        body = await resp.read()
        assert resp.status in {400, 403, 404}, (raw, body)
        assert etree.fromstring(body).tag == "errors"
