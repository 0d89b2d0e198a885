"""The Open311 codec against the GeoReport v2 specification's own examples
(tests/corpus/open311/, copied unchanged with their provenance): the same data rendered by
server/http/open311_format.py gives the same elements, in XML and in JSON; the example POST
body reads as the spec means it; bad input is refused naming the parameter."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from server.http import open311_format as o311

CORPUS = Path(__file__).resolve().parents[2] / "corpus" / "open311"
PST = timezone(timedelta(hours=-8))


def spec_json(name: str) -> Any:
    """A JSON example, its bare numbers with leading zeros (``001``, not JSON) quoted."""
    text = (CORPUS / name).read_text(encoding="utf-8")
    return json.loads(re.sub(r'":(0\d+)(?=\s*[,}\n])', r'":"\1"', text))


def tree(xml: bytes) -> Any:
    """An XML document as nested values: an element with children is a list of (tag, value)
    pairs in order; a leaf is its text without the spaces around it ('' when empty)."""

    def walk(element: Any) -> Any:
        children = list(element)
        if not children:
            return (element.text or "").strip()
        return [(child.tag, walk(child)) for child in children]

    root = etree.fromstring(xml)
    return root.tag, walk(root)


def spec_xml(name: str) -> Any:
    return tree((CORPUS / name).read_bytes())


def by_name(value: Any) -> Any:
    """The same tree with each element's children compared as a mapping when their names are
    unique (the spec lists services 002 and 003 in another order), else as a list."""
    if isinstance(value, list):
        names = [tag for tag, _ in value]
        if len(set(names)) == len(names):
            return {tag: by_name(child) for tag, child in value}
        return [(tag, by_name(child)) for tag, child in value]
    return value


def same_json(ours: Any, spec: Any) -> None:
    """Member by member: the same keys in the same order, equal values (the spec's numbers and
    our string identifiers compared as text; its trailing spaces dropped)."""
    if isinstance(spec, dict):
        assert isinstance(ours, dict)
        assert list(ours) == list(spec) or set(ours) == set(spec)
        for key in spec:
            same_json(ours[key], spec[key])
    elif isinstance(spec, list):
        assert isinstance(ours, list) and len(ours) == len(spec)
        for a, b in zip(ours, spec, strict=True):
            same_json(a, b)
    elif spec is None or isinstance(spec, bool) or isinstance(ours, bool):
        assert ours is spec
    elif isinstance(spec, str) and not isinstance(ours, str):
        assert ours == float(spec)  # a float we send as a number
    else:
        assert str(ours).strip() == str(spec).strip(), (ours, spec)


def check_both(root: str, document: o311.Value, example: str) -> None:
    xml = o311.render_xml(root, document)
    assert xml.startswith(b'<?xml version="1.0" encoding="utf-8"?>\n')
    (root_tag, ours), (spec_root, spec) = tree(xml), spec_xml(example + ".xml")
    assert root_tag == spec_root and by_name(ours) == by_name(spec)
    same_json(json.loads(o311.render_json(document)), spec_json(example + ".json"))


# --- the examples, one per method ------------------------------------------------------------

KEYWORDS = ("lorem", "ipsum", "dolor")
A_FIELD = (o311.Attribute("NOTE", "text", "Anything else?"),)  # metadata: true
SERVICES = [
    o311.Service(
        "001",
        "Cans left out 24x7",
        "Garbage or recycling cans that have been left out for more than 24 hours after "
        "collection. Violators will be cited.",
        keywords=KEYWORDS,
        group="sanitation",
        attributes=A_FIELD,
    ),
    o311.Service(
        "002",
        "Construction plate shifted",
        "Metal construction plate covering the street or sidewalk has been moved.",
        keywords=KEYWORDS,
        group="street",
        attributes=A_FIELD,
    ),
    o311.Service(
        "003",
        "Curb or curb ramp defect",
        "Sidewalk curb or ramp has problems such as cracking, missing pieces, holes, and/or "
        "chipped curb.",
        keywords=KEYWORDS,
        group="street",
        attributes=A_FIELD,
    ),
]
DMV66 = o311.Service(
    "DMV66",
    "DMV",
    attributes=(
        o311.Attribute(
            "WHISHETN",
            "singlevaluelist",
            "What is the ticket/tag/DL number?",
            required=True,
            values=(o311.AttributeValue("123", "Ford"), o311.AttributeValue("124", "Chrysler")),
        ),
    ),
)


def sidewalk(number: str, status: str, notes: str | None, day: int, expected: int) -> Any:
    return o311.ServiceRequest(
        service_request_id=number,
        status=status,
        status_notes=notes,
        service_name="Sidewalk and Curb Issues",
        service_code="006",
        requested_datetime=datetime(2010, 4, day, 6, 37, 38, tzinfo=PST),
        updated_datetime=datetime(2010, 4, day, 6, 37, 38, tzinfo=PST),
        expected_datetime=datetime(2010, 4, expected, 6, 37, 38, tzinfo=PST),
        address="8TH AVE and JUDAH ST",
        address_id="545483",
        zipcode="94122",
        lat=37.762221815,
        long=-122.4651145,
        media_url=f"http://city.gov.s3.amazonaws.com/requests/media/{number}.jpg",
    )


def test_services_as_the_spec() -> None:
    document = o311.services_document(SERVICES)
    check_both("services", document, "services")
    # the spec's table order (its first service) is ours
    first = [tag for tag, _ in spec_xml("services.xml")[1][0][1]]
    assert [tag for tag, _ in tree(o311.render_xml("services", document))[1][0][1]] == first


def test_service_definition_as_the_spec() -> None:
    check_both("service_definition", o311.service_definition_document(DMV66), "service_definition")


def test_requests_as_the_spec() -> None:
    requests = [
        sidewalk("638344", "closed", "Duplicate request.", 14, 15),
        sidewalk("638349", "open", None, 19, 19),
    ]
    document = o311.requests_document(requests)
    xml = o311.render_xml("service_requests", document)
    assert tree(xml) == spec_xml("requests.xml")  # element by element, in order
    same_json(json.loads(o311.render_json(document)), spec_json("requests.json"))
    # GET one request: the same shape with one element
    one = o311.requests_document(requests[:1])
    assert tree(o311.render_xml("service_requests", one))[1] == spec_xml("requests.xml")[1][:1]


def test_post_response_token_and_errors_as_the_spec() -> None:
    notice = (
        "The City will inspect and require the responsible party to correct within 24 hours "
        "and/or issue a Correction Notice or Notice of Violation of the Public Works Code"
    )
    created = o311.created_document(service_request_id="293944", service_notice=notice)
    check_both("service_requests", created, "post_response")
    check_both("service_requests", o311.token_document("12345", "638344"), "token")
    refused = o311.Open311Error(
        403, "Invalid api_key received -- can't proceed with create_request."
    )
    check_both("errors", o311.errors_document(refused), "errors")
    with pytest.raises(ValueError):
        o311.created_document(service_request_id="1", token="2")  # never both


def test_discovery_as_the_spec() -> None:
    document = o311.discovery_document(
        "2011-02-03 14:18",
        "You can email or call for assistance api@mycity.org +1 (555) 555-5555",
        "You can request a key here: http://api.mycity.gov/api_key/request",
        [
            o311.Endpoint(
                "http://open311.mycity.gov/v2", "2010-11-23 09:01", formats=("text/xml",)
            ),
            o311.Endpoint("http://open311.mycity.gov/test/v2", "2010-10-02 09:01", type="test"),
            o311.Endpoint(
                "http://open311.mycity.gov/v3",
                "2011-02-03 14:18",
                type="test",
                specification="http://wiki.open311.org/GeoReport_v3",
            ),
        ],
    )
    xml = o311.render_xml("discovery", document)
    assert tree(xml) == spec_xml("discovery.xml")
    same_json(json.loads(o311.render_json(document)), spec_json("discovery.json"))


def test_text_is_escaped_and_utf8() -> None:
    xml = o311.render_xml("errors", [{"code": 400, "description": "<b>&</b> Đường hư"}])
    assert b"&lt;b&gt;&amp;&lt;/b&gt; \xc4\x90\xc6\xb0\xe1\xbb\x9dng" in xml
    assert etree.fromstring(xml)[0][1].text == "<b>&</b> Đường hư"


# --- reading a POST ---------------------------------------------------------------------------

SPEC_SERVICE = o311.Service(
    "001",
    "Cans left out 24x7",
    attributes=(
        o311.Attribute("WHISPAWN", "number", "Tag number", required=True),
        o311.Attribute("WHISDORN", "string", "Permit", order=2),
    ),
)


def spec_post_body() -> bytes:
    head, _, body = (CORPUS / "post_request.txt").read_text(encoding="utf-8").partition("\n\n")
    assert "charset=utf-8" in head
    return body.strip().encode("ascii")


def test_the_spec_post_body_reads_as_meant() -> None:
    pairs = o311.read_form(spec_post_body(), "application/x-www-form-urlencoded; charset=utf-8")
    plain, attributes = o311.form_fields(pairs)
    assert plain["api_key"] == "xyz" and plain["jurisdiction_id"] == "city.gov"
    new = o311.new_request(plain, attributes, SPEC_SERVICE)
    assert (new.lat, new.long) == (37.76524078, -122.4212043)
    assert new.address_string == "1234 5th street"
    assert new.email == "smit333@sfgov.edu" and new.phone == "111111111"
    assert new.name == "smith john"
    assert new.description == "A large sinkhole is destroying the street"
    assert new.media_url == "http://farm3.static.flickr.com/2002/2212426634_5ed477a060.jpg"
    assert new.attributes == {"WHISPAWN": ["123456"], "WHISDORN": ["COISL001"]}


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8",
        'Application/X-WWW-Form-Urlencoded;charset="UTF-8"',
    ],
)
def test_form_with_or_without_charset(content_type: str) -> None:
    body = "description=%C4%90%C6%B0%E1%BB%9Dng+h%C6%B0&x=1".encode("ascii")
    assert o311.read_form(body, content_type)[0] == ("description", "Đường hư")


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        (b"a=1", "application/json", "x-www-form-urlencoded"),
        (b"a=1", "application/x-www-form-urlencoded; charset=iso-8859-1", "iso-8859-1"),
        (b"description=\xff\xfe", "application/x-www-form-urlencoded", "not UTF-8"),
        (b"description=%FF", "application/x-www-form-urlencoded", "not UTF-8"),
        (b"&".join([b"a=1"] * 500), "application/x-www-form-urlencoded", "fields"),
    ],
)
def test_unreadable_bodies(body: bytes, content_type: str, says: str) -> None:
    with pytest.raises(o311.Open311Error) as caught:
        o311.read_form(body, content_type)
    assert caught.value.status == 400 and says in str(caught.value)


def refusal(form: dict[str, str], service: o311.Service = SPEC_SERVICE) -> o311.Open311Error:
    plain, attributes = o311.form_fields(form.items())
    with pytest.raises(o311.Open311Error) as caught:
        o311.new_request(plain, attributes, service)
    assert caught.value.status == 400
    return caught.value


GOOD = {
    "service_code": "001",
    "address_string": "12 Lê Lợi",
    "first_name": "An",
    "last_name": "Nguyễn",
    "phone": "0912345678",
    "attribute[WHISPAWN]": "12",
}


def test_missing_parameters_are_named_each() -> None:
    error = refusal({"service_code": "001", "description": "x"})
    texts = [text for _, text in error.errors]
    assert any(t.startswith("a location was not provided") for t in texts)
    assert any(t.startswith("first_name or last_name was not provided") for t in texts)
    assert any(t.startswith("email or phone was not provided") for t in texts)
    assert "attribute[WHISPAWN] was not provided" in texts
    # an empty value is a missing one ("optional" means empty = absent)
    assert "email or phone" in str(refusal({**GOOD, "phone": "  "}))
    assert "long was not provided" in str(refusal({**GOOD, "lat": "21.0"}))


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"lat": "91", "long": "105"}, "lat must be between -90 and 90"),
        ({"lat": "21", "long": "nan"}, "long must be between"),
        ({"lat": "abc", "long": "105"}, "lat is not a number"),
        ({"description": "x" * 4001}, "description is longer than 4000"),
        ({"attribute[WHISPAWN]": "twelve"}, "is not a number"),
        ({"attribute[NOPE]": "1"}, "attribute[NOPE] is not an attribute of 001"),
        ({"attribute[WHISDORN]": "a\nb"}, "without line breaks"),
    ],
)
def test_bad_values_are_named(extra: dict[str, str], says: str) -> None:
    assert says in str(refusal({**GOOD, **extra}))


def test_list_attributes() -> None:
    colours = o311.Service(
        "C",
        "Colours",
        attributes=(
            o311.Attribute(
                "COL",
                "multivaluelist",
                "Which?",
                required=True,
                values=(o311.AttributeValue("r", "Red"), o311.AttributeValue("g", "Green")),
            ),
            o311.Attribute(
                "ONE",
                "singlevaluelist",
                "One",
                values=(o311.AttributeValue("y", "Yes"),),
                order=2,
            ),
        ),
    )
    form = "address_string=x&phone=1&last_name=L&attribute[COL][]=r&attribute%5BCOL%5D%5B%5D=g"
    plain, attributes = o311.form_fields(
        o311.read_form(form.encode(), "application/x-www-form-urlencoded")
    )
    assert o311.new_request(plain, attributes, colours).attributes == {"COL": ["r", "g"]}
    base = {"address_string": "x", "phone": "1", "last_name": "L"}
    assert "'b' is not one of its values" in str(
        refusal({**base, "attribute[COL][]": "b"}, colours)
    )
    assert "attribute[ONE]: 'n' is not one" in str(
        refusal({**base, "attribute[COL][]": "r", "attribute[ONE]": "n"}, colours)
    )


# --- jurisdiction and the GET requests query -------------------------------------------------


def test_jurisdiction() -> None:
    for given in (None, "", "  ", "phananh.example.vn"):
        o311.check_jurisdiction(given, "phananh.example.vn")
    with pytest.raises(o311.Open311Error) as caught:
        o311.check_jurisdiction("sfgov.org", "phananh.example.vn")
    assert caught.value.status == 404 and "sfgov.org" in str(caught.value)


NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


def test_query_defaults_to_the_last_90_days() -> None:
    query = o311.request_query({}, NOW)
    assert (query.start, query.end) == (NOW - timedelta(days=90), NOW)
    assert query.ids == query.service_codes == query.statuses == ()
    started = o311.request_query({"start_date": "2026-01-01T00:00:00+07:00"}, NOW)
    assert started.end - started.start == timedelta(days=90)
    ended = o311.request_query({"end_date": "2026-06-01T00:00:00Z", "start_date": ""}, NOW)
    assert ended.end == datetime(2026, 6, 1, tzinfo=UTC)
    assert ended.start == ended.end - timedelta(days=90)


def test_query_lists_and_ids_override() -> None:
    query = o311.request_query({"service_code": "A, B,,A", "status": "open,closed"}, NOW)
    assert query.service_codes == ("A", "B") and query.statuses == ("open", "closed")
    ids = o311.request_query({"service_request_id": "X-1,Y-2", "status": "bogus"}, NOW)
    assert ids.ids == ("X-1", "Y-2") and ids.statuses == ()


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"status": "pending"}, "status must be open or closed"),
        ({"start_date": "2026-01-01 00:00"}, "start_date must be a W3C date-time"),
        ({"start_date": "2026-01-01T00:00:00"}, "start_date must be a W3C date-time"),
        ({"end_date": "2026-02-30T00:00:00Z"}, "end_date is not a valid date-time"),
        (
            {"start_date": "2026-06-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"},
            "start_date is after end_date",
        ),
        (
            {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},
            "more than 90 days",
        ),
    ],
)
def test_bad_queries(params: dict[str, str], says: str) -> None:
    with pytest.raises(o311.Open311Error) as caught:
        o311.request_query(params, NOW)
    assert caught.value.status == 400 and says in str(caught.value)


def test_times_need_a_zone() -> None:
    assert o311.w3_time(datetime(2010, 1, 1, tzinfo=UTC)) == "2010-01-01T00:00:00+00:00"
    with pytest.raises(ValueError):
        o311.w3_time(datetime(2010, 1, 1))
