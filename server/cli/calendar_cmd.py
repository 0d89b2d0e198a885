"""``lienthong calendar off | on | clear | show | due``: the working-day calendar.

``off`` and ``on`` decide a day in the override table when the Government announces a
schedule (``on``: a make-up Saturday, or a day the holidays package has that was not
confirmed); ``clear`` forgets a decision. Each edit is written with its audit entry in one
transaction; running servers see it at their next calendar refresh. ``show`` lists a year's
days off and worked days with their names and sources; ``due`` prints the due date a dossier
received at a given time would get, for clerks to check by hand.
"""

from __future__ import annotations

import argparse
from datetime import date, datetime
from typing import Any

from server.calendar.clock import WorkingClock
from server.calendar.days import ADMIN as ADMIN_ORIGIN
from server.calendar.days import PACKAGE, SHIPPED, check_year, holidays_version
from server.calendar.hours import WorkingHours
from server.calendar.shipped import shipped
from server.calendar.store import decide, forget, load_days
from server.cli import CliError
from server.cli.database import with_database
from server.cli.options import add_local_options, local_config
from server.cli.table import render_table
from server.runtime.audit import ADMIN
from server.runtime.config import Config
from storage.db import Database
from storage.repos.calendar import CalendarOverrideRow

WEEKDAYS = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật")
ORIGINS = {PACKAGE: "holidays", SHIPPED: "shipped", ADMIN_ORIGIN: "admin"}


def register(sub: Any) -> None:
    """Add ``calendar`` and its sub-commands to the ``lienthong`` parser."""
    calendar = sub.add_parser("calendar", help="the working-day calendar of due dates")
    cmds = calendar.add_subparsers(dest="calendar_command", metavar="SUBCOMMAND")
    cmds.required = True
    for name, help_text in (
        ("off", "make DATE a day off (a holiday the calendar lacks, a swapped weekday)"),
        ("on", "make DATE a working day (a make-up Saturday, an unconfirmed holiday)"),
    ):
        cmd = cmds.add_parser(name, help=help_text)
        cmd.add_argument("day", metavar="DATE", help="YYYY-MM-DD or DD/MM/YYYY")
        cmd.add_argument("--name", required=True, help="e.g. 'Làm bù cho thứ Sáu 02/01/2026'")
        cmd.add_argument("--source", help="the announcement, e.g. 'Công văn 12729/VPCP-KGVX'")
        add_local_options(cmd)
        cmd.set_defaults(func=cmd_decide, working=name == "on")
    clear = cmds.add_parser("clear", help="forget the decision on DATE (back to the shipped one)")
    clear.add_argument("day", metavar="DATE")
    add_local_options(clear)
    clear.set_defaults(func=cmd_clear)
    show = cmds.add_parser("show", help="a year's days off and worked days, with sources")
    show.add_argument("year", metavar="YEAR")
    add_local_options(show)
    show.set_defaults(func=cmd_show)
    due = cmds.add_parser("due", help="the due date of a dossier received at a given time")
    due.add_argument("received", metavar="'YYYY-MM-DD HH:MM'", help="local time of receipt")
    due.add_argument("n", metavar="N", help="processing time in days (0 or more)")
    due.add_argument(
        "--calendar-days", action="store_true", help="N calendar days (default: working days)"
    )
    add_local_options(due)
    due.set_defaults(func=cmd_due)


# --- parsing ----------------------------------------------------------------------------------


def _number(text: str, what: str) -> int:
    value = text.strip()
    if not value.isascii() or not value.isdigit():
        raise CliError(f"{text!r} is not {what}")
    return int(value)


def parse_day(text: str) -> date:
    """``YYYY-MM-DD`` or ``DD/MM/YYYY``; CliError otherwise."""
    value = text.strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            day = datetime.strptime(value, fmt).date()
        except ValueError:
            continue
        check_year(day.year)
        return day
    raise CliError(f"{text!r} is not a date (YYYY-MM-DD or DD/MM/YYYY)")


def _parse_received(text: str, clock: WorkingClock) -> datetime:
    value = " ".join(text.split())
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=clock.hours.tz)
        except ValueError:
            continue
    raise CliError(f"{text!r} is not a time of receipt ('YYYY-MM-DD HH:MM')")


def _shown(moment: datetime) -> str:
    return f"{WEEKDAYS[moment.weekday()]} {moment.strftime('%d/%m/%Y %H:%M')}"


def _clock(config: Config) -> WorkingClock:
    async def load(database: Database) -> WorkingClock:
        async with database.reader() as tx:
            days, _ = await load_days(tx)
        return WorkingClock(days, WorkingHours.from_settings(config.dossiers))

    return with_database(config, load)


# --- commands ---------------------------------------------------------------------------------


def cmd_decide(args: argparse.Namespace) -> int:
    """Decide a day (``off`` or ``on``) with its audit entry."""
    config = local_config(args)
    day = parse_day(args.day)
    name = " ".join(args.name.split())
    if not name:
        raise CliError("--name must not be empty")
    source = " ".join(args.source.split()) if args.source else None

    async def write(database: Database) -> CalendarOverrideRow:
        async with database.transaction() as tx:
            return await decide(
                tx, day, working=args.working, name=name, source=source, actor=ADMIN
            )

    with_database(config, write)
    state = "a working day" if args.working else "a day off"
    print(f"{WEEKDAYS[day.weekday()]} {day:%d/%m/%Y} is now {state}: {name}.")
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    """Forget the admin's decision on a day."""
    config = local_config(args)
    day = parse_day(args.day)

    async def remove(database: Database) -> bool:
        async with database.transaction() as tx:
            return await forget(tx, day, actor=ADMIN)

    if not with_database(config, remove):
        raise CliError(f"no decision on {day:%d/%m/%Y} to clear (see `lienthong calendar show`)")
    print(f"Cleared the decision on {day:%d/%m/%Y}: the shipped calendar decides it again.")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Print a year's days off and worked days with their names and sources."""
    config = local_config(args)
    year = _number(args.year, "a year")
    check_year(year)
    clock = _clock(config)
    days = clock.days.days_of(year)
    rows = [
        (
            f"{d.day:%d/%m/%Y}",
            WEEKDAYS[d.day.weekday()],
            "làm việc" if d.working else "nghỉ",
            d.name
            + (" (chưa xác nhận)" if d.unconfirmed and "chưa xác nhận" not in d.name else ""),
            ORIGINS[d.origin],
            d.source,
        )
        for d in days
    ]
    print(render_table(("DATE", "DAY", "STATUS", "NAME", "FROM", "SOURCE"), rows))
    checked = shipped().checked_years.get(year)
    print(f"\nBase: holidays {holidays_version()} (VN); Monday to Friday otherwise.")
    if checked is not None:
        print(f"{year}: checked against the official schedule. {checked.checked}")
    else:
        print(
            f"{year}: provisional, no official schedule recorded: decide days with "
            "`lienthong calendar off|on` when the Government announces it."
        )
    return 0


def cmd_due(args: argparse.Namespace) -> int:
    """Print when a dossier received at a given local time is due."""
    config = local_config(args)
    n = _number(args.n, "a number of days (0 or more)")
    clock = _clock(config)
    received = _parse_received(args.received, clock)
    if args.calendar_days:
        due = clock.due_at_calendar_days(received, n)
        rule = f"{n} calendar day(s), to the close of a working day"
    else:
        due = clock.due_at(received, n)
        hours = clock.hours.day_us / 3_600_000_000
        rule = f"{n} working day(s) of {hours:g} working hours"
    start = clock.clock_start(received)
    print(f"Due:          {_shown(due)} ({rule})")
    print(f"Received:     {_shown(received)} ({config.dossiers.timezone})")
    if not args.calendar_days:
        print(f"Clock starts: {_shown(start)}")
    return 0
