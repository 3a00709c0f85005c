"""A year without holiday data (2027: not in chinese-calendar 1.11, not in the data file): its
deadlines still skip the holidays the law fixes by date, stay provisional, and the operators are
told (the worker's WARNING and `disclosure worker --once`, the back office's banner). And the
reviewers' digest names both deadlines, each marked when overdue. On SQLite and PostgreSQL."""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import logging
from datetime import UTC, date, datetime
from datetime import time as dtime

import pytest
from sqlalchemy import update

from publishing import clock, worker
from publishing import requests as rq
from publishing.request_deadlines import calendar_gap
from publishing.request_models import REQUESTS
from publishing.settings import get_settings
from publishing.workdays import Deadline, add_workdays, is_workday
from tests.requests_support import (
    objection_on_other,
    smtp,  # noqa: F401 - a fixture
    submit_request,
    wait_for,
)
from tests.test_review import login

NEW_YEARS_EVE = datetime(2026, 12, 31, 2, 0, tzinfo=UTC)  # 10:00 in Beijing


@pytest.fixture
def no_2027(tmp_path, monkeypatch):
    """A workdays file without 2027 (whatever the bundled one says by then); its path."""
    data = tmp_path / "workdays.toml"
    data.write_text("[years]\n", encoding="utf-8")
    monkeypatch.setenv("DISCLOSURE_WORKDAYS_FILE", str(data))
    get_settings.cache_clear()
    yield data
    get_settings.cache_clear()


def _on(monkeypatch, day: date) -> None:
    monkeypatch.setattr(clock, "today", lambda: day)


def _add_2027(data) -> None:
    """What the bureau adds from the notice (a test's made-up dates, not 2027's real ones)."""
    data.write_text('[years.2027]\nholidays = ["2027-01-01"]\nworkdays = []\n', encoding="utf-8")


# -- the fallback skips the fixed-date holidays ------------------------------------------------


def test_the_fallback_skips_the_holidays_fixed_by_date_and_stays_provisional():
    for day in (date(2027, 1, 1), date(2028, 5, 1), date(2028, 5, 2), date(2029, 10, 1),
                date(2029, 10, 2), date(2029, 10, 3)):
        assert day.weekday() < 5, day
        assert is_workday(day, {}) == (False, "weekdays"), day
    assert is_workday(date(2027, 1, 5), {}) == (True, "weekdays")
    # filed on 2026-12-31: the preliminary review is not due on 元旦 but on Monday 01-04
    assert add_workdays(date(2026, 12, 31), 1, {}) == Deadline(date(2027, 1, 4), True)
    assert add_workdays(date(2027, 9, 30), 1, {}) == Deadline(date(2027, 10, 4), True)


def test_a_request_filed_on_new_years_eve_is_not_due_on_new_years_day(engine, cases, no_2027):
    receipt = rq.submit(engine, objection_on_other(cases), now=NEW_YEARS_EVE)
    assert receipt.review_due == date(2027, 1, 4)
    assert receipt.as_json()["review_fallback"] is True  # still provisional: 调休 unknown
    with engine.connect() as conn:
        row = conn.execute(
            REQUESTS.select().where(REQUESTS.c.tracking_no == receipt.tracking_no)
        ).mappings().one()
    assert row["review_due"] == date(2027, 1, 4) and row["calendar_fallback"] is True


# -- when the operators are told ---------------------------------------------------------------


def test_the_gap_is_named_from_december_or_once_a_deadline_reaches_it(no_2027):
    assert calendar_gap(date(2026, 11, 30)) is None  # 2026 known; 2027 a month away
    gap = calendar_gap(date(2026, 12, 1))
    assert gap is not None and gap.years == (2027,) and gap.file == no_2027
    assert calendar_gap(date(2027, 3, 1)).years == (2027,)  # the year itself is missing
    _add_2027(no_2027)
    assert calendar_gap(date(2026, 12, 1)) is None


def test_the_worker_warns_once_per_run_and_worker_once_prints_it(
    engine, cases, no_2027, monkeypatch, caplog, capsys
):
    from portal import cli

    rq.submit(engine, objection_on_other(cases), now=NEW_YEARS_EVE)
    _on(monkeypatch, date(2026, 12, 31))
    jobs = [j for j in worker.default_jobs() if j.name in ("deadlines", "calendar")]
    with caplog.at_level(logging.WARNING, logger="publishing.worker"):
        first = worker.run_due(engine, jobs)
        again = worker.run_due(engine, jobs)  # the same run, minutes later
    warning = first["calendar"]
    assert "no holiday data for 2027" in warning and "[years.2027]" in warning
    assert str(no_2027) in warning and "DISCLOSURE_WORKDAYS_FILE" in warning
    assert "1 open request(s)" in warning
    assert "calendar" not in again  # not per request, not per tick: once a day
    warned = [r for r in caplog.records if r.levelno == logging.WARNING and "2027" in r.message]
    assert len(warned) == 1

    # `disclosure worker --once` prints it among its results
    monkeypatch.setattr(cli, "open_database", lambda: engine)  # the test's engine, no second pool
    capsys.readouterr()
    cli.cmd_worker(argparse.Namespace(once=True, metrics_port=None))
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "no holiday data for 2027" in printed["calendar"]
    # ... and so it does beside an active worker, on standby
    with worker.leadership(engine, wait=False) as active:
        assert active
        cli.cmd_worker(argparse.Namespace(once=True, metrics_port=None))
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["standby"] is True and "no holiday data for 2027" in printed["calendar"]

    _add_2027(no_2027)  # the year is added: nothing to warn of, the deadline is counted again
    fresh = [j for j in worker.default_jobs() if j.name in ("deadlines", "calendar")]
    assert worker.run_due(engine, fresh) == {"deadlines": 1, "calendar": None}


def test_the_queue_shows_a_banner_while_deadlines_reach_a_missing_year(
    engine, cases, client, no_2027, monkeypatch
):
    from publishing import users
    from tests.test_review import PASSWORD

    users.add_user(engine, "wang", "approver", PASSWORD)
    assert login(client).status_code == 303
    _on(monkeypatch, date(2026, 11, 30))
    page = client.get("/review").text
    assert 'id="calendar-gap"' not in page  # a month before 2027, no deadline reaching it yet
    _on(monkeypatch, date(2026, 12, 1))
    page = client.get("/review").text
    assert 'id="calendar-gap"' in page and "缺少 2027 年的法定节假日安排" in page
    assert str(no_2027) in page and "[years.2027]" in page
    assert "春节" in page  # what the provisional deadlines still lack
    # an open request whose deadline is still provisional though its year is now known (the
    # worker has not counted it again yet): the banner says so
    rq.submit(engine, objection_on_other(cases), now=NEW_YEARS_EVE)
    _add_2027(no_2027)
    page = client.get("/review").text
    assert 'id="calendar-gap"' in page and "缺少 2027 年" not in page
    assert "后台任务（disclosure worker）会自动重新计算" in page
    worker.job_deadlines(engine)
    assert 'id="calendar-gap"' not in client.get("/review").text


# -- the reviewers' digest ---------------------------------------------------------------------


def test_the_digest_names_both_deadlines_and_marks_the_overdue_ones(
    engine, cases, monkeypatch, smtp  # noqa: F811 - a fixture
):
    late = submit_request(engine, "objection", cases.other, cases.other_uscc)
    accepted = submit_request(engine, "repair", cases.repairable, cases.repairable_uscc)
    with engine.begin() as conn:
        # still awaiting its preliminary review (due 10-21), and its decision (11-17) is late too
        conn.execute(update(REQUESTS).where(REQUESTS.c.tracking_no == late).values(
            status="received", review_due=date(2026, 10, 21), decision_due=date(2026, 11, 17)))
        # reviewed: its preliminary review's deadline is past but no longer binds
        conn.execute(update(REQUESTS).where(REQUESTS.c.tracking_no == accepted).values(
            status="accepted", review_due=date(2026, 11, 20), decision_due=date(2026, 11, 30)))
    today = date(2026, 11, 29)
    _on(monkeypatch, today)
    monkeypatch.setenv("DISCLOSURE_REVIEW_EMAIL", "shenhe@scjg.yantai.gov.cn")
    get_settings.cache_clear()
    digest = [j for j in worker.default_jobs() if j.name == "review-digest"]
    morning = datetime.combine(today, dtime(8, 35), tzinfo=clock.BEIJING)
    assert worker.run_due(engine, digest, now=morning) == {"review-digest": 2}
    assert wait_for(lambda: smtp.messages), "no digest arrived"
    (envelope,) = smtp.messages
    message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    lines = {
        line.split()[0]: line for line in message.get_body().get_content().splitlines()
        if "期限" in line
    }
    assert lines[f"【已超期】{late}"].endswith(
        "初审期限 2026-10-21（已超期 39 日），办结期限 2026-11-17（已超期 12 日）"
    )
    assert lines[accepted].endswith("初审期限 2026-11-20，办结期限 2026-11-30")
