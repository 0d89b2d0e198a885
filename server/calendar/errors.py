"""The calendar's refusals."""

from __future__ import annotations

from server.runtime.problems import DomainError, problem_type

CALENDAR_DATE = problem_type(
    "calendar-date",
    422,
    "Date outside the working-day calendar",
    "A date or time the working-day calendar cannot use (a naive time, a year out of range, a "
    "negative duration).",
)


class CalendarError(DomainError):
    """A date, time or duration the calendar cannot work with."""

    problem = CALENDAR_DATE
