"""The due-date rules of issue 16 on worked examples (docs/dossiers.md states the same ones)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from server.calendar.clock import WorkingClock
from server.calendar.days import ADMIN, PACKAGE, SHIPPED, DayDecision, WorkingDays
from server.calendar.errors import CalendarError
from server.calendar.hours import WorkingHours
from server.calendar.shipped import shipped
from server.calendar.store import CalendarSource, decide, forget
from server.runtime.config import ConfigError, load_config
from storage.db import Database

VN = ZoneInfo("Asia/Ho_Chi_Minh")
HOURS = WorkingHours.from_text(("07:00-11:30", "13:30-17:00"))
CLOCK = WorkingClock(WorkingDays(shipped().decisions), HOURS)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=VN)


def due(received: str, n: int) -> str:
    return CLOCK.due_at(at(received), n).strftime("%a %Y-%m-%d %H:%M")


# --- the examples of the issue ------------------------------------------------------------------


def test_friday_after_close_plus_one_is_monday_at_close() -> None:
    assert due("2026-03-06 17:30", 1) == "Mon 2026-03-09 17:00"


def test_monday_morning_plus_one_is_tuesday_same_time() -> None:
    assert due("2026-03-09 09:00", 1) == "Tue 2026-03-10 09:00"
    assert due("2026-03-09 09:00", 3) == "Thu 2026-03-12 09:00"
    assert due("2026-03-09 14:45", 5) == "Mon 2026-03-16 14:45"


@pytest.mark.parametrize(
    ("received", "start"),
    [
        ("2026-03-09 06:10", "2026-03-09 07:00"),  # before opening: 07:00 that day
        ("2026-03-09 07:00", "2026-03-09 07:00"),
        ("2026-03-09 11:29", "2026-03-09 11:29"),
        ("2026-03-09 11:30", "2026-03-09 13:30"),  # at lunch: 13:30
        ("2026-03-09 12:15", "2026-03-09 13:30"),
        ("2026-03-09 17:00", "2026-03-10 07:00"),  # after the close: the next morning
        ("2026-03-09 21:00", "2026-03-10 07:00"),
        ("2026-03-07 10:00", "2026-03-09 07:00"),  # Saturday: Monday morning
        ("2026-04-30 09:00", "2026-05-04 07:00"),  # 30/4, 1/5 off, then the weekend
    ],
)
def test_the_clock_starts_at_the_first_working_moment(received: str, start: str) -> None:
    assert CLOCK.clock_start(at(received)) == at(start)


def test_receipt_before_opening_and_after_close() -> None:
    assert due("2026-03-09 06:00", 1) == "Mon 2026-03-09 17:00"
    assert due("2026-03-09 18:00", 1) == "Tue 2026-03-10 17:00"
    assert due("2026-03-09 17:00", 2) == "Wed 2026-03-11 17:00"


def test_receipt_at_lunch_is_due_when_eight_working_hours_have_passed() -> None:
    # The clock starts at 13:30; 8 working hours are done at 11:30 the next working day (the
    # same working moment as 13:30: the clock stands still over lunch).
    assert due("2026-03-09 12:00", 1) == "Tue 2026-03-10 11:30"
    assert CLOCK.working_time_between(at("2026-03-09 12:00"), at("2026-03-10 11:30")) == (
        timedelta(hours=8)
    )


def test_zero_days_is_the_clock_start_and_seconds_are_kept() -> None:
    assert CLOCK.due_at(at("2026-03-09 12:00"), 0) == at("2026-03-09 13:30")
    assert CLOCK.due_at(at("2026-03-09 09:10:42.5"), 2) == at("2026-03-11 09:10:42.5")


def test_any_time_zone_in_the_calendar_zone_out() -> None:
    received = datetime(2026, 3, 6, 10, 30, tzinfo=UTC)  # 17:30 in Hà Nội
    result = CLOCK.due_at(received, 1)
    assert result == at("2026-03-09 17:00") and result.utcoffset() == timedelta(hours=7)


# --- 2026: New Year (corrected) and Tết ---------------------------------------------------------


def test_new_year_2026_friday_off_and_saturday_10_worked() -> None:
    # 1/1 holiday, Friday 2/1 off (12729/VPCP-KGVX), 3–4/1 weekend.
    assert due("2025-12-31 10:00", 1) == "Mon 2026-01-05 10:00"
    assert due("2025-12-31 10:00", 5) == "Fri 2026-01-09 10:00"
    # Saturday 10/1/2026 is a make-up working day.
    assert due("2025-12-31 10:00", 6) == "Sat 2026-01-10 10:00"
    assert due("2025-12-31 10:00", 7) == "Mon 2026-01-12 10:00"
    assert CLOCK.clock_start(at("2026-01-10 08:00")) == at("2026-01-10 08:00")


def test_the_package_alone_gets_new_year_2026_wrong() -> None:
    package_only = WorkingDays()
    assert package_only.is_working_day(date(2026, 1, 2))
    assert not package_only.is_working_day(date(2026, 1, 10))
    assert not CLOCK.days.is_working_day(date(2026, 1, 2))
    assert CLOCK.days.is_working_day(date(2026, 1, 10))


def test_tet_2026() -> None:
    # Weekdays Monday 16/2 – Friday 20/2 off; 14/2–22/2 with the weekends.
    assert due("2026-02-13 15:00", 1) == "Mon 2026-02-23 15:00"
    assert due("2026-02-14 09:00", 1) == "Mon 2026-02-23 17:00"
    assert due("2026-02-12 10:00", 3) == "Tue 2026-02-24 10:00"
    for day in range(16, 21):
        assert not CLOCK.days.is_working_day(date(2026, 2, day))


def test_other_2026_days_off() -> None:
    off = [date(2026, 4, 27), date(2026, 4, 30), date(2026, 5, 1), date(2026, 8, 31)]
    assert not any(CLOCK.days.is_working_day(d) for d in off)
    assert CLOCK.days.is_working_day(date(2026, 8, 22))  # make-up Saturday for 31/8


# --- calendar-day procedures -------------------------------------------------------------------


def test_calendar_days_end_at_the_close_of_the_nth_day() -> None:
    assert CLOCK.due_at_calendar_days(at("2026-03-09 16:00"), 10) == at("2026-03-19 17:00")


def test_calendar_days_ending_on_a_holiday_move_to_the_next_working_day() -> None:
    # 10/2 + 7 = 17/2 (Tết) -> Monday 23/2.
    assert CLOCK.due_at_calendar_days(at("2026-02-10 10:00"), 7) == at("2026-02-23 17:00")
    # 29/12/2025 + 3 = 1/1 (New Year); 2/1 off (corrected), weekend -> Monday 5/1.
    assert CLOCK.due_at_calendar_days(at("2025-12-29 08:00"), 3) == at("2026-01-05 17:00")
    # Ending on a Sunday -> Monday.
    assert CLOCK.due_at_calendar_days(at("2026-03-12 08:00"), 3) == at("2026-03-16 17:00")


def test_calendar_days_ending_on_a_make_up_saturday_stay_there() -> None:
    assert CLOCK.due_at_calendar_days(at("2026-01-07 08:00"), 3) == at("2026-01-10 17:00")


# --- the supplement pause ----------------------------------------------------------------------


def test_paused_working_time_moves_the_due_date() -> None:
    paused = CLOCK.working_time_between(at("2026-03-09 16:00"), at("2026-03-10 08:00"))
    assert paused == timedelta(hours=2)
    assert CLOCK.add_working_time(at("2026-03-11 10:00"), paused) == at("2026-03-11 14:00")
    # A pause over a weekend and a holiday counts only working time.
    paused = CLOCK.working_time_between(at("2026-04-29 15:00"), at("2026-05-04 08:00"))
    assert paused == timedelta(hours=3)
    assert CLOCK.working_time_between(at("2026-03-10 08:00"), at("2026-03-09 16:00")) == (
        -timedelta(hours=2)
    )
    assert CLOCK.add_working_time(at("2026-03-11 10:00"), timedelta(0)) == at("2026-03-11 10:00")


def test_bad_input_is_a_calendar_error() -> None:
    with pytest.raises(CalendarError):
        CLOCK.due_at(datetime(2026, 3, 9, 9), 1)
    with pytest.raises(CalendarError):
        CLOCK.due_at(at("2026-03-09 09:00"), -1)
    with pytest.raises(CalendarError):
        CLOCK.due_at_calendar_days(at("2026-03-09 09:00"), -1)
    with pytest.raises(CalendarError):
        CLOCK.add_working_time(at("2026-03-09 09:00"), timedelta(hours=-1))
    with pytest.raises(CalendarError):
        CLOCK.due_at(at("1850-03-09 09:00"), 1)


# --- other working hours -----------------------------------------------------------------------


def test_working_day_length_follows_the_configured_hours() -> None:
    hours = WorkingHours.from_text(("08:00-12:00", "13:00-16:00"))  # 7 hours a day
    clock = WorkingClock(CLOCK.days, hours)
    assert hours.day_us == 7 * 3600 * 1_000_000
    assert clock.due_at(at("2026-03-09 10:00"), 1) == at("2026-03-10 10:00")
    assert clock.due_at(at("2026-03-06 16:30"), 1) == at("2026-03-09 16:00")
    assert clock.due_at_calendar_days(at("2026-03-09 10:00"), 1) == at("2026-03-10 16:00")


def test_dossiers_config_defaults_env_and_validation(tmp_path: Path) -> None:
    config = load_config(env={})
    assert config.dossiers.periods() == ((420, 690), (810, 1020))
    assert config.dossiers.timezone == "Asia/Ho_Chi_Minh"
    env = {"LIENTHONG_DOSSIERS_WORKING_HOURS": "07:30-11:30, 13:00-17:00"}
    assert load_config(env=env).dossiers.periods() == ((450, 690), (780, 1020))
    toml = tmp_path / "c.toml"
    toml.write_text('[dossiers]\nworking_hours = ["08:00-16:00"]\ntimezone = "UTC"\n')
    assert load_config(toml, env={}).dossiers.periods() == ((480, 960),)
    bad = [
        {"LIENTHONG_DOSSIERS_WORKING_HOURS": "17:00-07:00"},
        {"LIENTHONG_DOSSIERS_WORKING_HOURS": "07:00-12:00,11:00-17:00"},
        {"LIENTHONG_DOSSIERS_WORKING_HOURS": "7h-17h"},
        {"LIENTHONG_DOSSIERS_WORKING_HOURS": "07:00-25:00"},
        {"LIENTHONG_DOSSIERS_WORKING_HOURS": ""},
        {"LIENTHONG_DOSSIERS_TIMEZONE": "Asia/Hanoi_Nowhere"},
    ]
    for variables in bad:
        with pytest.raises(ConfigError, match="dossiers"):
            load_config(env=variables)


# --- where each day comes from, and the admin's decisions --------------------------------------


def test_days_of_2026_name_their_origin_and_source() -> None:
    days = {d.day: d for d in CLOCK.days.days_of(2026)}
    assert (days[date(2026, 1, 2)].origin, days[date(2026, 1, 2)].working) == (SHIPPED, False)
    assert "12729/VPCP-KGVX" in str(days[date(2026, 1, 10)].source)
    assert days[date(2026, 1, 10)].working
    assert days[date(2026, 2, 17)].origin == PACKAGE and "Tết" in days[date(2026, 2, 17)].name
    assert days[date(2026, 11, 24)].unconfirmed and not days[date(2026, 11, 24)].working
    assert days[date(2026, 8, 22)].working
    assert shipped().holidays_version == "0.109"


def test_the_admin_decides_over_shipped_and_package() -> None:
    decisions = [
        *shipped().decisions,
        DayDecision(date(2026, 11, 24), True, "Làm việc", "QĐ", ADMIN),
        DayDecision(date(2026, 3, 10), False, "Nghỉ", "QĐ", ADMIN),
    ]
    days = WorkingDays(decisions)
    assert days.is_working_day(date(2026, 11, 24))
    assert not days.is_working_day(date(2026, 3, 10))
    clock = WorkingClock(days, HOURS)
    assert clock.due_at(at("2026-03-09 09:00"), 1) == at("2026-03-11 09:00")


def test_far_years_grow_the_tables() -> None:
    days = WorkingDays(shipped().decisions)
    assert days.add_working_days(date(2026, 3, 9), 1) == date(2026, 3, 10)
    assert days.is_working_day(date(2031, 3, 10))
    assert days.add_working_days(date(2020, 12, 31), 0) == date(2020, 12, 31)
    assert days.add_working_days(date(2021, 1, 2), 0) == date(2021, 1, 4)
    assert days.working_days_between(date(2026, 3, 9), date(2026, 3, 16)) == 5
    with pytest.raises(CalendarError):
        days.is_working_day(date(2300, 1, 1))


async def test_source_loads_once_and_reloads_after_an_edit(tmp_path: Path) -> None:
    database = await Database.open(tmp_path / "meta.db")
    try:
        source = await CalendarSource.load(database, HOURS)
        assert not source.clock.days.is_working_day(date(2026, 1, 2))
        assert not await source.refresh(database)
        async with database.transaction() as tx:
            await decide(
                tx, date(2026, 3, 10), working=False, name="Nghỉ", source="QĐ 1", actor="admin"
            )
        assert source.clock.days.is_working_day(date(2026, 3, 10))  # not re-read per call
        assert await source.refresh(database)
        assert not source.clock.days.is_working_day(date(2026, 3, 10))
        async with database.transaction() as tx:
            assert await forget(tx, date(2026, 3, 10), actor="admin")
            assert not await forget(tx, date(2026, 3, 11), actor="admin")
        assert await source.refresh(database)
        assert source.clock.days.is_working_day(date(2026, 3, 10))
        async with database.reader() as tx:
            actions = [r[0] for r in await tx.fetchall("SELECT action FROM audit_log")]
        assert actions == ["calendar.off", "calendar.clear"]
    finally:
        await database.close()


def test_the_holidays_version_is_the_locked_one_and_the_shipped_one() -> None:
    import tomllib

    from server.calendar.days import holidays_version

    lock = tomllib.loads((Path(__file__).parents[3] / "uv.lock").read_text(encoding="utf-8"))
    locked = next(p["version"] for p in lock["package"] if p["name"] == "holidays")
    assert holidays_version() == locked == shipped().holidays_version
