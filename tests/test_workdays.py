"""Working days: China's holidays and make-up days (chinese-calendar), the data file for years it
does not cover, and the Monday–Friday fallback that says so instead of failing."""

from __future__ import annotations

import os
from datetime import date

import pytest

from publishing import workdays
from publishing.request_config import load_config
from publishing.request_deadlines import deadlines
from publishing.workdays import add_workdays, is_workday, load_years, workdays_between


def test_national_day_2026_and_its_make_up_saturday():
    assert is_workday(date(2026, 9, 30)) == (True, "chinese-calendar")
    for day in range(1, 8):
        assert is_workday(date(2026, 10, day))[0] is False, day
    assert is_workday(date(2026, 10, 10)) == (True, "chinese-calendar")  # Saturday, make-up day
    assert is_workday(date(2026, 10, 11))[0] is False  # Sunday
    # submitted on the last day before the holiday: reviewed on the first day after it
    assert add_workdays(date(2026, 9, 30), 1) == workdays.Deadline(date(2026, 10, 8), False)
    # submitted during the holiday: the same
    assert add_workdays(date(2026, 10, 3), 1).due == date(2026, 10, 8)
    # Friday 10-09 → the make-up Saturday 10-10
    assert add_workdays(date(2026, 10, 9), 1).due == date(2026, 10, 10)
    # Saturday 10-10 → Monday 10-12 (Sunday 10-11 is a day off)
    assert add_workdays(date(2026, 10, 10), 1).due == date(2026, 10, 12)


def test_decision_deadlines_across_national_day():
    # 15 working days from 2026-09-28 (Mon): 09-29, 09-30, 10-08, 10-09, 10-10 (Sat), 10-12 …
    # 10-23. Counted Monday–Friday the same span would end on 10-19.
    assert add_workdays(date(2026, 9, 28), 15).due == date(2026, 10, 23)
    config = load_config()
    review, decision, fallback = deadlines("repair", date(2026, 9, 28), config)
    assert (review, decision, fallback) == (date(2026, 9, 29), date(2026, 10, 23), False)
    review, decision, fallback = deadlines("objection", date(2026, 9, 28), config)
    assert decision == date(2026, 10, 30) and not fallback
    assert workdays_between(date(2026, 9, 30), date(2026, 10, 12)) == (4, False)


def test_years_without_data_fall_back_to_weekdays_and_say_so():
    # 2027: not in chinese-calendar 1.11, not in the bundled data file
    # 元旦, a Friday: a holiday by law whatever the year's schedule (so are 5-1, 5-2, 10-1..3)
    assert is_workday(date(2027, 1, 1)) == (False, "weekdays")
    assert is_workday(date(2027, 1, 2)) == (False, "weekdays")
    assert is_workday(date(2027, 1, 4)) == (True, "weekdays")
    deadline = add_workdays(date(2026, 12, 28), 5)
    assert deadline == workdays.Deadline(date(2027, 1, 5), True)
    assert add_workdays(date(2026, 12, 1), 5).fallback is False
    # far outside any data: still an answer, never an exception
    assert add_workdays(date(2100, 2, 26), 3) == workdays.Deadline(date(2100, 3, 3), True)
    assert add_workdays(date(1999, 12, 30), 1).fallback is True
    _, _, fallback = deadlines("objection", date(2026, 12, 20))
    assert fallback is True


def test_data_file_covers_years_the_package_does_not(tmp_path, monkeypatch):
    data = tmp_path / "workdays.toml"
    data.write_text(
        '[years.2027]\nholidays = ["2027-01-01", "2027-01-04"]\nworkdays = ["2027-01-09"]\n',
        encoding="utf-8",
    )
    years = load_years(data)
    assert is_workday(date(2027, 1, 1), years) == (False, "workdays.toml")
    assert is_workday(date(2027, 1, 9), years) == (True, "workdays.toml")  # a Saturday
    assert is_workday(date(2027, 1, 10), years) == (False, "workdays.toml")
    assert add_workdays(date(2026, 12, 31), 2, years) == workdays.Deadline(date(2027, 1, 6), False)
    assert add_workdays(date(2027, 1, 8), 1, years).due == date(2027, 1, 9)
    # through the setting, as the portal reads it
    from publishing.settings import get_settings

    monkeypatch.setenv("DISCLOSURE_WORKDAYS_FILE", str(data))
    get_settings.cache_clear()
    load_years.cache_clear()
    try:
        assert is_workday(date(2027, 1, 4)) == (False, "workdays.toml")
    finally:
        get_settings.cache_clear()
        load_years.cache_clear()


@pytest.mark.parametrize("n", [0, 1, 15, 20, 250])
def test_deadlines_are_working_days(n):
    start = date(2026, 1, 1)
    deadline = add_workdays(start, n)
    assert workdays_between(start, deadline.due)[0] == n
    if n:
        assert is_workday(deadline.due)[0]


def _touch_later(path):
    """Make sure the file's modification time moves (coarse clocks, fast tests)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_an_edited_data_file_is_read_again_without_a_restart(tmp_path, caplog):
    data = tmp_path / "workdays.toml"
    data.write_text("[years]\n", encoding="utf-8")
    assert load_years(data) == {}
    assert add_workdays(date(2026, 12, 31), 1, load_years(data)) == workdays.Deadline(
        date(2027, 1, 4), True
    )
    data.write_text('[years.2027]\nholidays = ["2027-01-01"]\n', encoding="utf-8")
    _touch_later(data)
    assert add_workdays(date(2026, 12, 31), 1, load_years(data)) == workdays.Deadline(
        date(2027, 1, 4), False
    )
    # a file caught half-saved (or mistyped) is logged, and what it said before still holds
    data.write_text('[years.2027]\nholidays = ["2027-01-0', encoding="utf-8")
    _touch_later(data)
    with caplog.at_level("ERROR", logger="publishing.workdays"):
        assert date(2027, 1, 1) in load_years(data)[2027].holidays
    assert "cannot be read" in caplog.text
    data.unlink()
    assert load_years(data) == {}
