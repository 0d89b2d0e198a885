"""Due dates (ngày hẹn trả kết quả) and working time, on the working days and hours.

Working time is a count that runs only during the working periods of working days. Every
instant has a position on it, :meth:`WorkingClock.position` (working microseconds since the
start of the calendar's tables), which stands still outside working hours. Then:

- the clock starts at the first working moment at or after receipt (:meth:`clock_start`);
- a dossier of N working days is due at the earliest instant by which N working days
  (N × the configured working day, 8 hours by default) have elapsed since receipt
  (:meth:`due_at`): the same clock time on the N-th working day, and the close of a period
  rather than the next period's opening (Friday 17:30 + 1 → Monday 17:00, not Tuesday 07:00);
- a dossier of N calendar days is due at the close of the N-th day after the day of receipt,
  moved to the close of the next working day when that day is not one (Civil Code art. 148;
  :meth:`due_at_calendar_days`);
- the supplement pause: :meth:`working_time_between` two instants, and
  :meth:`add_working_time` to move a due date by it.

Times are timezone-aware in and out; results are in the calendar's time zone.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from server.calendar.days import WorkingDays
from server.calendar.errors import CalendarError
from server.calendar.hours import WorkingHours

_DAY_US = 86_400_000_000


class WorkingClock:
    """Working days and working hours together: every due-date question of the axis."""

    def __init__(self, days: WorkingDays, hours: WorkingHours) -> None:
        self.days = days
        self.hours = hours
        self._day_us = hours.day_us
        self._tz = hours.tz

    # --- positions on the working-time count -------------------------------------------------

    def position(self, moment: datetime) -> int:
        """Working microseconds elapsed, at ``moment``, since the start of the tables' first
        year (a count to subtract, not a meaning of its own)."""
        if moment.tzinfo is None:
            raise CalendarError(f"{moment.isoformat()} has no time zone")
        local = moment.astimezone(self._tz)
        ordinal = local.toordinal()
        tables = self.days.tables_for(ordinal)
        i = ordinal - tables.base
        done = tables.before[i] * self._day_us
        if tables.working[i]:
            clock = (
                local.hour * 3600 + local.minute * 60 + local.second
            ) * 1_000_000 + local.microsecond
            done += self.hours.worked_by(clock)
        return done

    def moment_at(self, position: int) -> datetime:
        """The earliest instant at which the count reaches ``position`` (> 0)."""
        rank, worked = divmod(position, self._day_us)
        if worked == 0:  # a whole number of days: the close of the day before
            rank, worked = rank - 1, self._day_us
        ordinal = self.days.nth_ordinal(rank)
        return self._at(ordinal, self.hours.clock_at(worked))

    def _at(self, ordinal: int, clock_us: int) -> datetime:
        if clock_us >= _DAY_US:  # a period ending at 24:00
            ordinal, clock_us = ordinal + 1, clock_us - _DAY_US
        day = date.fromordinal(ordinal)
        seconds, micro = divmod(clock_us, 1_000_000)
        minutes, second = divmod(seconds, 60)
        hour, minute = divmod(minutes, 60)
        return datetime(day.year, day.month, day.day, hour, minute, second, micro, self._tz)

    # --- the rules --------------------------------------------------------------------------

    def clock_start(self, received: datetime) -> datetime:
        """The first working moment at or after ``received`` (periods include their start and
        exclude their end: at 11:30 the clock starts at 13:30, at 17:00 the next morning)."""
        if received.tzinfo is None:
            raise CalendarError(f"{received.isoformat()} has no time zone")
        local = received.astimezone(self._tz)
        ordinal = local.toordinal()
        if self.days.is_working_day(local.date()):
            clock = (
                local.hour * 3600 + local.minute * 60 + local.second
            ) * 1_000_000 + local.microsecond
            for start, end in self.hours.periods:
                if clock < start:
                    return self._at(ordinal, start)
                if clock < end:
                    return local
        following = self.days.next_working_day(local.date(), include=False)
        return self._at(following.toordinal(), self.hours.opens_us)

    def due_at(self, received: datetime, working_days: int) -> datetime:
        """When a dossier received at ``received`` with ``working_days`` working days to
        process is due: the earliest instant by which that many working days have elapsed."""
        if working_days < 0:
            raise CalendarError(f"{working_days} working days: never negative")
        if working_days == 0:
            return self.clock_start(received)
        return self.moment_at(self.position(received) + working_days * self._day_us)

    def due_at_calendar_days(self, received: datetime, days: int) -> datetime:
        """When a dossier with ``days`` calendar days is due: the close of the working day
        (17:00) on the ``days``-th day after the day of receipt, or on the next working day
        when that day is not one."""
        if days < 0:
            raise CalendarError(f"{days} calendar days: never negative")
        if received.tzinfo is None:
            raise CalendarError(f"{received.isoformat()} has no time zone")
        last = received.astimezone(self._tz).date() + timedelta(days=days)
        due = self.days.next_working_day(last)
        return self._at(due.toordinal(), self.hours.closes_us)

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """The working time from ``start`` to ``end`` (negative if ``end`` is earlier): what
        a supplement pause took from the clock."""
        return timedelta(microseconds=self.position(end) - self.position(start))

    def add_working_time(self, moment: datetime, worked: timedelta) -> datetime:
        """The earliest instant at or after ``moment`` by which ``worked`` working time has
        elapsed since it (``moment`` itself for none): a due date moved by a pause."""
        if worked < timedelta(0):
            raise CalendarError(f"{worked}: working time to add is never negative")
        if not worked:
            if moment.tzinfo is None:
                raise CalendarError(f"{moment.isoformat()} has no time zone")
            return moment.astimezone(self._tz)
        return self.moment_at(self.position(moment) + worked // timedelta(microseconds=1))
