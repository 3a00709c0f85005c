"""Working days in China: statutory holidays and make-up working days (调休).

Sources, in order: the `chinese-calendar` package (2004–2026 as installed), then
publishing/data/workdays.toml (or DISCLOSURE_WORKDAYS_FILE) for the years it does not cover.
A date neither covers is counted Monday–Friday; every answer says whether that fallback was
used, so a deadline computed without the year's holiday arrangement is shown as provisional.
Nothing here raises for a date outside the data.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import chinese_calendar

DEFAULT_FILE = Path(__file__).parent / "data" / "workdays.toml"
SOURCE_PACKAGE, SOURCE_FILE, SOURCE_WEEKDAYS = "chinese-calendar", "workdays.toml", "weekdays"


@dataclass(frozen=True)
class Deadline:
    due: date
    fallback: bool  # some day was counted Monday–Friday, without holiday data


@dataclass(frozen=True)
class YearData:
    holidays: frozenset[date]
    workdays: frozenset[date]


@lru_cache
def load_years(path: Path | None = None) -> dict[int, YearData]:
    if path is None:
        from publishing.settings import get_settings

        path = get_settings().workdays_file or DEFAULT_FILE
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    years = {}
    for year, table in (raw.get("years") or {}).items():
        years[int(year)] = YearData(
            frozenset(date.fromisoformat(str(d)) for d in table.get("holidays", ())),
            frozenset(date.fromisoformat(str(d)) for d in table.get("workdays", ())),
        )
    return years


def is_workday(day: date, years: dict[int, YearData] | None = None) -> tuple[bool, str]:
    """(is a working day, source of the answer: chinese-calendar | workdays.toml | weekdays)."""
    try:
        return chinese_calendar.is_workday(day), SOURCE_PACKAGE
    except NotImplementedError:
        pass
    data = (load_years() if years is None else years).get(day.year)
    if data is not None:
        if day in data.workdays:
            return True, SOURCE_FILE
        if day in data.holidays:
            return False, SOURCE_FILE
        return day.weekday() < 5, SOURCE_FILE
    return day.weekday() < 5, SOURCE_WEEKDAYS


def add_workdays(start: date, n: int, years: dict[int, YearData] | None = None) -> Deadline:
    """The n-th working day after `start` (the day of submission itself does not count)."""
    day, left, fallback = start, n, False
    while left > 0:
        day += timedelta(days=1)
        work, source = is_workday(day, years)
        fallback |= source == SOURCE_WEEKDAYS
        left -= work
    return Deadline(day, fallback)


def workdays_between(
    start: date, end: date, years: dict[int, YearData] | None = None
) -> tuple[int, bool]:
    """Working days after `start` up to and including `end` (0 when end <= start)."""
    day, count, fallback = start, 0, False
    while day < end:
        day += timedelta(days=1)
        work, source = is_workday(day, years)
        fallback |= source == SOURCE_WEEKDAYS
        count += work
    return count, fallback
