"""The working hours of a day (giờ làm việc): the periods of ``[dossiers] working_hours``."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import tzinfo

from server.runtime.config import DossierSettings, parse_working_hours

MINUTE_US = 60_000_000


@dataclass(frozen=True)
class WorkingHours:
    """The day's working periods in a time zone; every working day has the same hours.

    ``periods``: (start, end) in microseconds after local midnight, in order and apart.
    """

    periods: tuple[tuple[int, int], ...]
    tz: tzinfo

    @classmethod
    def from_settings(cls, settings: DossierSettings) -> WorkingHours:
        """The hours of a ``[dossiers]`` section (validated by the config loader)."""
        return cls.from_minutes(settings.periods(), zoneinfo.ZoneInfo(settings.timezone))

    @classmethod
    def from_text(cls, periods: tuple[str, ...], tz: str = "Asia/Ho_Chi_Minh") -> WorkingHours:
        """Hours from ``("07:00-11:30", "13:30-17:00")``-style text."""
        return cls.from_minutes(parse_working_hours(periods), zoneinfo.ZoneInfo(tz))

    @classmethod
    def from_minutes(cls, periods: tuple[tuple[int, int], ...], tz: tzinfo) -> WorkingHours:
        """Hours from (start, end) minutes after midnight."""
        return cls(tuple((s * MINUTE_US, e * MINUTE_US) for s, e in periods), tz)

    @property
    def day_us(self) -> int:
        """Working microseconds in one working day (8 hours with the default hours)."""
        return sum(end - start for start, end in self.periods)

    @property
    def opens_us(self) -> int:
        """When the working day starts (07:00), microseconds after midnight."""
        return self.periods[0][0]

    @property
    def closes_us(self) -> int:
        """When the working day ends (17:00), microseconds after midnight."""
        return self.periods[-1][1]

    def worked_by(self, clock_us: int) -> int:
        """Working microseconds of a working day elapsed at ``clock_us`` after midnight."""
        done = 0
        for start, end in self.periods:
            if clock_us <= start:
                return done
            if clock_us < end:
                return done + clock_us - start
            done += end - start
        return done

    def clock_at(self, worked_us: int) -> int:
        """The earliest clock time (microseconds after midnight) by which ``worked_us``
        (0 < worked_us <= day_us) working microseconds of the day have elapsed: a period's end
        rather than the next period's start (11:30, not 13:30; 17:00, not 07:00 next day)."""
        done = 0
        for start, end in self.periods:
            if worked_us <= done + end - start:
                return start + worked_us - done
            done += end - start
        return self.closes_us
