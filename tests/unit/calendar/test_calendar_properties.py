"""The fast calendar (tables, positions) against slow references that walk the calendar.

The references share nothing with the code under test but the ``holidays`` package and the
shipped decisions: they ask the package about each day, and walk minute by minute (small N) or
period by period (any N).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
from hypothesis import given, settings
from hypothesis import strategies as st

from server.calendar.clock import WorkingClock
from server.calendar.days import WorkingDays
from server.calendar.hours import WorkingHours
from server.calendar.shipped import shipped

VN = ZoneInfo("Asia/Ho_Chi_Minh")
PACKAGE = holidays.country_holidays("VN", years=range(2024, 2030), language="vi")
DECIDED = {d.day: d.working for d in shipped().decisions}
HOUR_SETS = {
    "default": ("07:00-11:30", "13:30-17:00"),
    "one period": ("08:00-16:00",),
    "three periods": ("07:30-09:00", "09:15-12:00", "13:00-16:45"),
}
CLOCKS = {
    name: WorkingClock(WorkingDays(shipped().decisions), WorkingHours.from_text(periods))
    for name, periods in HOUR_SETS.items()
}


def ref_working_day(day: date) -> bool:
    if day in DECIDED:
        return DECIDED[day]
    if day in PACKAGE.weekend_workdays:
        return True
    return day.weekday() < 5 and day not in PACKAGE


def ref_periods(name: str, day: date) -> list[tuple[datetime, datetime]]:
    """The working periods of ``day`` as local datetimes ([] on a day off)."""
    if not ref_working_day(day):
        return []
    result = []
    for period in HOUR_SETS[name]:
        start, end = (datetime.strptime(t, "%H:%M").time() for t in period.split("-"))
        result.append(
            (datetime.combine(day, start, tzinfo=VN), datetime.combine(day, end, tzinfo=VN))
        )
    return result


def ref_day_length(name: str) -> timedelta:
    monday = date(2026, 3, 9)
    return sum((end - start for start, end in ref_periods(name, monday)), timedelta())


def ref_add(name: str, moment: datetime, worked: timedelta) -> datetime:
    """Walk period by period from ``moment`` until ``worked`` has elapsed (worked > 0)."""
    moment = moment.astimezone(VN)
    left = worked
    day = moment.date()
    while True:
        for start, end in ref_periods(name, day):
            begin = max(start, moment)
            if begin >= end:
                continue
            if end - begin >= left:
                return begin + left
            left -= end - begin
        day += timedelta(days=1)


def ref_minutes_walk(name: str, moment: datetime, n: int) -> datetime:
    """Walk minute by minute (moment on a whole minute): count working minutes."""
    needed = n * (ref_day_length(name) // timedelta(minutes=1))
    t = moment.astimezone(VN)
    periods_by_day: dict[date, list[tuple[datetime, datetime]]] = {}
    count = 0
    while True:
        periods = periods_by_day.setdefault(t.date(), ref_periods(name, t.date()))
        if any(start <= t < end for start, end in periods):
            count += 1
            if count == needed:
                return t + timedelta(minutes=1)
        t += timedelta(minutes=1)


def ref_between(name: str, a: datetime, b: datetime) -> timedelta:
    total = timedelta()
    day = a.astimezone(VN).date()
    while day <= b.astimezone(VN).date():
        for start, end in ref_periods(name, day):
            lo, hi = max(start, a), min(end, b)
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return total


def ref_calendar_days(name: str, received: datetime, n: int) -> datetime:
    day = received.astimezone(VN).date() + timedelta(days=n)
    while not ref_working_day(day):
        day += timedelta(days=1)
    return ref_periods(name, day)[-1][1]


receipts = st.datetimes(
    min_value=datetime(2024, 12, 1), max_value=datetime(2028, 12, 31), timezones=st.just(VN)
)
minute_receipts = receipts.map(lambda t: t.replace(second=0, microsecond=0))
# Receipts near the interesting days: New Year 2026, Tết 2026, 30/4, National Day.
near = st.sampled_from(
    [datetime(2025, 12, 29), datetime(2026, 2, 12), datetime(2026, 4, 24), datetime(2026, 8, 20)]
)
near_receipts = st.builds(
    lambda base, minutes: (base + timedelta(minutes=minutes)).replace(tzinfo=VN),
    near,
    st.integers(0, 10 * 24 * 60),
)
hour_sets = st.sampled_from(sorted(HOUR_SETS))


@settings(max_examples=300, deadline=None)
@given(st.one_of(receipts, near_receipts), st.integers(1, 60), hour_sets)
def test_due_at_is_the_period_walk(received: datetime, n: int, hours: str) -> None:
    expected = ref_add(hours, received, n * ref_day_length(hours))
    assert CLOCKS[hours].due_at(received, n) == expected


@settings(max_examples=60, deadline=None)
@given(st.one_of(minute_receipts, near_receipts), st.integers(1, 3), hour_sets)
def test_due_at_is_the_minute_walk(received: datetime, n: int, hours: str) -> None:
    assert CLOCKS[hours].due_at(received, n) == ref_minutes_walk(hours, received, n)


@settings(max_examples=200, deadline=None)
@given(st.one_of(receipts, near_receipts), st.integers(1, 40))
def test_due_at_is_the_same_in_any_time_zone(received: datetime, n: int) -> None:
    clock = CLOCKS["default"]
    assert clock.due_at(received.astimezone(UTC), n) == clock.due_at(received, n)


@settings(max_examples=200, deadline=None)
@given(st.one_of(receipts, near_receipts), st.integers(0, 120), hour_sets)
def test_calendar_days_are_the_day_walk(received: datetime, n: int, hours: str) -> None:
    expected = ref_calendar_days(hours, received, n)
    assert CLOCKS[hours].due_at_calendar_days(received, n) == expected


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(receipts, near_receipts),
    st.integers(0, 20 * 24 * 3600 * 1000),
    hour_sets,
)
def test_paused_time_is_the_period_walk(a: datetime, ms: int, hours: str) -> None:
    b = a + timedelta(milliseconds=ms)
    clock = CLOCKS[hours]
    paused = clock.working_time_between(a, b)
    assert paused == ref_between(hours, a, b)
    assert clock.working_time_between(b, a) == -paused
    if paused:
        moved = clock.add_working_time(a, paused)
        assert moved == ref_add(hours, a, paused)
        assert moved <= b and clock.working_time_between(a, moved) == paused


@settings(max_examples=200, deadline=None)
@given(st.one_of(receipts, near_receipts), hour_sets)
def test_clock_start_is_the_first_working_moment(received: datetime, hours: str) -> None:
    start = CLOCKS[hours].clock_start(received)
    day = received.date()
    expected = None
    while expected is None:
        for begin, end in ref_periods(hours, day):
            if received < end:
                expected = max(begin, received)
                break
        day += timedelta(days=1)
    assert start == expected
