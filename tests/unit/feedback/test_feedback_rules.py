"""The feedback domain's pure rules: the worked example of docs/feedback.md (limits on the 2026
calendar), the move table, overdue flags, categories as Open311 service definitions, the
checks of a submission."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from server.calendar.clock import WorkingClock
from server.calendar.days import WorkingDays
from server.calendar.hours import WorkingHours
from server.calendar.shipped import shipped
from server.feedback.categories import check_values, read_attributes, read_category
from server.feedback.errors import (
    InvalidCategory,
    InvalidFeedback,
    MoveNotPermitted,
    MoveRefused,
)
from server.feedback.intake import feedback_code, read_submission
from server.feedback.lifecycle import (
    ANSWER_DAYS,
    CLASSIFY_DAYS,
    PUBLISH_DAYS,
    TRANSFER_DAYS,
    after_move,
    check_move,
    overdue_flags,
)
from storage.repos.feedback import FeedbackRow

VN = ZoneInfo("Asia/Ho_Chi_Minh")
CLOCK = WorkingClock(
    WorkingDays(shipped().decisions), WorkingHours.from_text(("07:00-11:30", "13:30-17:00"))
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=VN)


def row(received: datetime, **changes: Any) -> FeedbackRow:
    base = FeedbackRow(
        code="PA-260424-0001", day="260424", seq=1, category="duong", receiving_unit="A",
        agency="B", channel="web", status="received", title="t", content="c", address="a",
        lat=None, lon=None, attributes={}, sender={"name": "N"}, token_hash="h",
        idempotency_key=None, received_at=received,
        classify_due=CLOCK.due_at(received, CLASSIFY_DAYS),
        transfer_due=CLOCK.due_at(received, TRANSFER_DAYS),
        answer_due=CLOCK.due_at(received, ANSWER_DAYS),
    )  # fmt: skip
    return base.but(**changes)


def test_the_worked_example_of_the_docs() -> None:
    received = at("2026-04-24T10:00")  # Friday; Monday 27/04, 30/04 and 01/05 are off
    f = row(received)
    assert f.classify_due == at("2026-04-29T10:00")
    assert f.transfer_due == at("2026-05-06T10:00")
    assert f.answer_due == at("2026-05-20T10:00")
    f = after_move(CLOCK, f.but(status="classified"), "transferred", "", at("2026-05-08T16:00"))
    assert f.answer_due == at("2026-05-29T16:00")  # 15 working days from the transfer
    paused = after_move(CLOCK, f, "supplement", "Ảnh", at("2026-05-11T16:00"))
    assert (paused.paused_at, paused.supplements) == (at("2026-05-11T16:00"), 1)
    resumed = after_move(CLOCK, paused, "processing", "", at("2026-05-12T08:00"))
    assert resumed.paused_at is None
    # the pause took 2 working hours (Monday 16:00-17:00, Tuesday 07:00-08:00): the answer is
    # due 2 working hours later, Friday 16:00 -> Monday 01/06 08:00
    assert resumed.answer_due == at("2026-06-01T08:00")
    answered = after_move(CLOCK, resumed, "answered", "Đã vá", at("2026-05-22T09:00"))
    assert (answered.answer, answered.answered_at) == ("Đã vá", at("2026-05-22T09:00"))
    assert (
        answered.publish_due
        == at("2026-05-26T09:00")
        == CLOCK.due_at(at("2026-05-22T09:00"), PUBLISH_DAYS)
    )


def test_overdue_flags_one_per_limit() -> None:
    f = row(at("2026-04-24T10:00"))
    assert not any(overdue_flags(f, at("2026-04-29T09:00")).values())
    late = overdue_flags(f, at("2026-05-07T08:00"))
    assert late == {"classify": True, "transfer": True, "answer": False, "publish": False}
    # the office is also the competent agency: no transfer to make, so never late for it
    own = f.but(agency="A", status="classified")
    assert overdue_flags(own, at("2026-05-21T08:00")) == {
        "classify": False, "transfer": False, "answer": True, "publish": False,
    }  # fmt: skip
    paused = own.but(status="supplement", paused_at=at("2026-05-01T08:00"))
    assert not any(overdue_flags(paused, at("2026-05-21T08:00")).values())


def test_the_move_table_and_its_parties() -> None:
    f = row(at("2026-04-24T10:00"))
    check_move(f, "classified", receiving=True, competent=False)
    with pytest.raises(MoveRefused) as refused:
        check_move(f, "answered", receiving=True, competent=True)
    assert refused.value.extra["allowed"] == ["classified", "not_accepted"]
    with pytest.raises(MoveNotPermitted):
        check_move(f, "classified", receiving=False, competent=True)
    classified = f.but(status="classified")
    with pytest.raises(MoveRefused, match="forwarding"):
        check_move(classified, "transferred", receiving=True, competent=False)
    check_move(classified, "transferred", receiving=True, competent=False, forwarding=True)
    with pytest.raises(MoveRefused, match="once"):
        check_move(classified.but(supplements=1), "supplement", receiving=False, competent=True)
    for final in ("not_accepted", "published"):
        with pytest.raises(MoveRefused) as refused:
            check_move(f.but(status=final), "processing", receiving=True, competent=True)
        assert refused.value.extra["allowed"] == []


def test_a_service_definition_is_checked_field_by_field() -> None:
    good = read_attributes(
        {
            "attributes": [
                {"code": "b", "datatype": "number", "description": "Số", "order": 2},
                {
                    "code": "a", "datatype": "multivaluelist", "description": "Loại",
                    "order": 1, "required": True,
                    "values": [{"key": "x", "name": "X"}, {"key": "y", "name": "Y"}],
                },
            ]
        }
    )  # fmt: skip
    assert [a["code"] for a in good] == ["a", "b"]  # by order
    assert good[1] == {
        "variable": True, "code": "b", "datatype": "number", "required": False,
        "datatype_description": "", "order": 2, "description": "Số", "values": [],
    }  # fmt: skip
    for definition, field in [
        ([], "attributes"),
        ({"attributes": [{"code": "a", "datatype": "colour", "description": "d"}]},
         "attributes[0].datatype"),
        ({"attributes": [{"code": "a", "datatype": "singlevaluelist", "description": "d"}]},
         "attributes[0].values"),
        ({"attributes": [{"code": "a", "datatype": "string", "description": "d",
                          "values": [{"key": "k", "name": "n"}]}]}, "attributes[0].values"),
        ({"attributes": [{"code": "a b", "datatype": "string", "description": "d"}]},
         "attributes[0].code"),
        ({"attributes": [{"code": "a", "datatype": "string", "description": "d", "x": 1}]},
         "attributes[0].x"),
        ({"attributes": [{"code": "a", "datatype": "string", "description": "d"}] * 2},
         "attributes"),
    ]:  # fmt: skip
        with pytest.raises(InvalidCategory) as refused:
            read_attributes(definition)
        assert refused.value.field == field
    category = read_category(
        {"code": "c", "name": "C", "agency": "000.00.31.H41", "attributes": {"attributes": [
            {"code": "a", "datatype": "multivaluelist", "description": "Loại", "required": True,
             "values": [{"key": "x", "name": "X"}, {"key": "y", "name": "Y"}]},
            {"code": "n", "datatype": "number", "description": "Số"},
            {"code": "d", "datatype": "datetime", "description": "Khi"},
        ]}}
    )  # fmt: skip
    assert check_values(category, {"a": ["x", "y"], "n": "2.5"}) == {"a": ["x", "y"], "n": 2.5}
    for values, field in [
        ({}, "attribute[a]"),
        ({"a": ["z"]}, "attribute[a]"),
        ({"a": "x", "n": "many"}, "attribute[n]"),
        ({"a": "x", "d": "yesterday"}, "attribute[d]"),
        ({"a": "x", "zz": "1"}, "attribute[zz]"),
    ]:
        with pytest.raises(InvalidFeedback) as wrong:
            check_values(category, values)
        assert wrong.value.field == field
    for data, field in [
        ({"code": "c/d", "name": "C", "agency": "000.00.31.H41"}, "code"),
        ({"code": "c", "name": "C", "agency": "not-an-organ"}, "agency"),
        ({"code": "c", "name": "C", "agency": "000.00.31.H41", "type": "fast"}, "type"),
        ({"code": "c", "agency": "000.00.31.H41"}, "name"),
    ]:
        with pytest.raises(InvalidCategory) as refused:
            read_category(data)
        assert refused.value.field == field


BASE = {
    "category": "c", "title": "T", "content": "Nội dung\r\ndòng hai", "address": "A",
    "name": "  Nguyễn   Văn An ", "phone": "0912 345 678",
}  # fmt: skip


def test_a_submission_is_read_and_named_field_by_field() -> None:
    s = read_submission({**BASE, "lat": "18.5", "long": 105})
    assert (s.name, s.phone, s.lat, s.lon) == ("Nguyễn Văn An", "0912345678", 18.5, 105.0)
    assert s.content == "Nội dung\ndòng hai"  # lines kept, as text
    html = read_submission({**BASE, "title": "<script>x</script>"})
    assert html.title == "<script>x</script>"  # stored as text; escaped where it is shown
    for change, field in [
        ({"lat": "nan", "long": 1}, "lat"),
        ({"lat": 1}, "long"),
        ({"long": 181, "lat": 0}, "long"),
        ({"lat": True, "long": 1}, "lat"),
        ({"email": "an@", "phone": ""}, "email"),
        ({"title": "x" * 201}, "title"),
        ({"category": ""}, "category"),
        ({"received_at": "2026-01-01T08:00"}, "received_at"),
    ]:
        with pytest.raises(InvalidFeedback) as refused:
            read_submission({**BASE, **change})
        assert refused.value.field == field
    assert feedback_code("PA", "260424", 7) == "PA-260424-0007"
