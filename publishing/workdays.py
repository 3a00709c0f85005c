"""Working days in China: statutory holidays and make-up working days (调休).

Sources, in order: the `chinese-calendar` package (2004–2026 as installed), then
publishing/data/workdays.toml (or DISCLOSURE_WORKDAYS_FILE) for the years it does not cover.
A date neither covers is counted Monday–Friday, less the holidays whose dates the law fixes
every year (元旦, 劳动节, 国庆节: FIXED_HOLIDAYS); 春节, 清明, 端午, 中秋 and the make-up
working days (调休) are only known from the year's notice. Every answer says whether that
fallback was used, so a deadline computed without the year's holiday arrangement is shown as
provisional. Nothing here raises for a date outside the data; years_unknown lists the years
without data (the worker warns of them, the back office shows a banner).

The data file is read again when it changes (its modification time and size), so a year added
to it reaches a running portal and the worker without a restart; the worker then recomputes
the provisional deadlines of open requests (publishing.request_deadlines.recompute_provisional).
"""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import chinese_calendar

log = logging.getLogger("publishing.workdays")
DEFAULT_FILE = Path(__file__).parent / "data" / "workdays.toml"
SOURCE_PACKAGE, SOURCE_FILE, SOURCE_WEEKDAYS = "chinese-calendar", "workdays.toml", "weekdays"
# 全国年节及纪念日放假办法 (as in force since 2025): the days off on the same Gregorian date every
# year, (month, day). Only these are known for a year without its notice; the lunar ones and the
# 调休 are not, so a deadline counted with them alone stays provisional.
FIXED_HOLIDAYS = frozenset({(1, 1), (5, 1), (5, 2), (10, 1), (10, 2), (10, 3)})
FIXED_HOLIDAYS_SINCE = 2025  # 劳动节 has had two days since then (before: one, earlier three)


@dataclass(frozen=True)
class Deadline:
    due: date
    fallback: bool  # some day was counted Monday–Friday, without holiday data


@dataclass(frozen=True)
class YearData:
    holidays: frozenset[date]
    workdays: frozenset[date]


def data_file() -> Path:
    """The data file in use: DISCLOSURE_WORKDAYS_FILE, else the bundled one."""
    from publishing.settings import get_settings

    return Path(get_settings().workdays_file or DEFAULT_FILE)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


def load_years(path: Path | None = None) -> dict[int, YearData]:
    """The years of the data file (path, else data_file()); read again once the file changes.

    A file that does not parse (caught half-saved, or mistyped) is logged, and what it said
    before is used meanwhile (nothing, when it never parsed: deadlines are then provisional)."""
    path = data_file() if path is None else Path(path)
    years = _read_years(path, _stamp(path))
    if years is None:
        return _last_good.get(path, {})
    _last_good[path] = years
    return years


_last_good: dict[Path, dict[int, YearData]] = {}


@lru_cache(maxsize=8)
def _read_years(path: Path, stamp: tuple[int, int] | None) -> dict[int, YearData] | None:
    if stamp is None:
        return {}
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
        years = {}
        for year, table in (raw.get("years") or {}).items():
            years[int(year)] = YearData(
                frozenset(date.fromisoformat(str(d)) for d in table.get("holidays", ())),
                frozenset(date.fromisoformat(str(d)) for d in table.get("workdays", ())),
            )
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, ValueError, TypeError, AttributeError) as err:
        log.error("workdays: %s cannot be read (%s); keeping the data read before", path, err)
        return None
    return years


def _clear() -> None:
    _read_years.cache_clear()
    _last_good.clear()


load_years.cache_clear = _clear  # type: ignore[attr-defined]


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
    return day.weekday() < 5 and not fixed_holiday(day), SOURCE_WEEKDAYS


def fixed_holiday(day: date) -> bool:
    """A statutory holiday whose date the law fixes (FIXED_HOLIDAYS), in the years it does."""
    return day.year >= FIXED_HOLIDAYS_SINCE and (day.month, day.day) in FIXED_HOLIDAYS


def year_known(year: int, years: dict[int, YearData] | None = None) -> bool:
    """Whether the year's holiday arrangement is known: chinese-calendar or the data file."""
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
        return True
    except NotImplementedError:
        return year in (load_years() if years is None else years)


def years_unknown(
    start: date, end: date, years: dict[int, YearData] | None = None
) -> list[int]:
    """The years from start's to end's whose holiday arrangement is not known."""
    years = load_years() if years is None else years
    return [y for y in range(start.year, end.year + 1) if not year_known(y, years)]


def add_workdays(start: date, n: int, years: dict[int, YearData] | None = None) -> Deadline:
    """The n-th working day after `start` (the day of submission itself does not count)."""
    years = load_years() if years is None else years
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
    years = load_years() if years is None else years
    day, count, fallback = start, 0, False
    while day < end:
        day += timedelta(days=1)
        work, source = is_workday(day, years)
        fallback |= source == SOURCE_WEEKDAYS
        count += work
    return count, fallback
