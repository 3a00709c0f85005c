"""The background worker (publishing.worker) on SQLite and PostgreSQL: search sync, the daily
jobs once a day (remembered across restarts), failures isolated and backed off, one active
worker at a time."""

from __future__ import annotations

import email
import email.policy
import os
import socket
import threading
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

import pytest
from sqlalchemy import update

from publishing import clock, worker
from publishing.publish import publish
from publishing.request_models import REQUESTS
from publishing.search.embedded import EmbeddedSearch
from publishing.search.sync import read_cursor
from publishing.settings import get_settings
from tests.factories import penalty_row, write_csv
from tests.requests_support import (
    PDF,
    fields,
    files,
    make_client,
    publish_cases,
    smtp,  # noqa: F401 - a fixture
    wait_for,
)

TODAY = date(2026, 11, 27)
# 2026-11-27 01:15 Beijing time: after expire (00:00) and open-data (01:00), before the digest
NOW = datetime(2026, 11, 26, 17, 15, tzinfo=UTC)


def _publish(engine, tmp_path, rows, name="p.csv"):
    result = publish(
        [write_csv(tmp_path / name, rows)], engine=engine, today=TODAY, show_progress=False
    )
    assert result.published


@pytest.fixture
def world(engine, tmp_path):
    EmbeddedSearch(engine).rebuild([])
    _publish(engine, tmp_path, [penalty_row(1), penalty_row(2)])
    return engine


def _jobs(calls: list[str] | None = None, fail: set[str] = frozenset()) -> list[worker.Job]:
    def make(name, real):
        def run(engine):
            if calls is not None:
                calls.append(name)
            if name in fail:
                raise RuntimeError(f"{name} broke")
            return real(engine)

        return run

    return [
        worker.Job(j.name, make(j.name, j.run), every=j.every, daily_at=j.daily_at)
        for j in worker.default_jobs()
    ]


def test_run_due_syncs_search_and_runs_the_daily_jobs_once(world):
    jobs = _jobs()
    done = worker.run_due(world, jobs, now=NOW)
    # digest: 08:30, logins: 03:30
    assert set(done) == {
        "search-sync",
        "expire",
        "open-data",
        "open-data-now",
        "deadlines",
        "audit-anchor",
        "calendar",
    }
    assert done["open-data-now"] is None  # open-data has just built: nothing left to do
    assert done["deadlines"] == 0  # no request with a provisional deadline
    assert done["search-sync"] == 2 and "expired" in done["expire"]
    assert done["open-data"]["seq"] == 2
    assert EmbeddedSearch(world).count() == 4
    with world.connect() as conn:
        assert read_cursor(conn, "worker:expire") == TODAY.toordinal()
    # a restarted worker (fresh jobs) does not repeat today's daily jobs
    again = worker.run_due(world, _jobs(), now=NOW)
    assert set(again) == {"search-sync", "open-data-now", "deadlines", "audit-anchor", "calendar"}
    assert again["search-sync"] == 0
    # the next day they are due again
    tomorrow = worker.run_due(world, _jobs(), now=NOW.replace(day=27))
    assert {"expire", "open-data"} <= set(tomorrow)
    # at 03:30 the login rows that no longer matter are forgotten
    night = worker.run_due(world, _jobs(), now=NOW.replace(day=27, hour=19, minute=45))
    assert night["logins"] == 0


def test_expiry_runs_right_after_midnight(world):
    """Pages and counts leave a record out from the first minute after its publicity ends;
    the expiry (and with it the search index) must not lag half an hour behind them."""
    expire_job = next(j for j in worker.default_jobs() if j.name == "expire")
    before_midnight = datetime(2026, 11, 27, 15, 59, 59, tzinfo=UTC)  # 23:59:59 Beijing
    after_midnight = datetime(2026, 11, 27, 16, 0, 2, tzinfo=UTC)  # 00:00:02 on the 28th
    worker.run_job(world, expire_job, before_midnight, time.monotonic())  # the 27th's run
    assert not worker.is_due(world, expire_job, before_midnight, time.monotonic())
    assert worker.is_due(world, expire_job, after_midnight, time.monotonic())


def test_a_withdrawal_rebuilds_open_data_without_waiting_for_the_night(world, tmp_path):
    from publishing import opendata

    worker.run_due(world, _jobs(), now=NOW)
    built = opendata.load_index(opendata.default_dir())["seq"]
    _publish(world, tmp_path, [{**penalty_row(1), "操作": "撤销"}], name="w.csv")
    later = NOW.replace(hour=18)  # the same night, long before tomorrow's 01:00 build
    done = worker.run_due(world, [j for j in _jobs() if j.name == "open-data-now"], now=later)
    assert done["open-data-now"]["seq"] > built
    assert opendata.load_index(opendata.default_dir())["seq"] == done["open-data-now"]["seq"]
    assert not opendata.needs_build(world)


def test_a_failing_job_does_not_stop_the_others_and_backs_off(world):
    calls: list[str] = []
    jobs = _jobs(calls, fail={"expire"})
    done = worker.run_due(world, jobs, now=NOW)
    assert isinstance(done["expire"], RuntimeError)
    assert done["search-sync"] == 2 and "open-data" in done
    expire = next(j for j in jobs if j.name == "expire")
    assert expire.failures == 1 and expire.retry_at > time.monotonic()
    assert worker.last_day(world, expire) is None  # not marked done: it will run again
    calls.clear()
    worker.run_due(world, jobs, now=NOW)
    assert "expire" not in calls  # backing off


def test_run_worker_once_and_in_a_loop(world, tmp_path, monkeypatch):
    result = worker.run_worker(world, once=True, jobs=_jobs())
    assert result["search-sync"] == 2
    monkeypatch.setattr(worker, "TICK", 0.05)
    monkeypatch.setattr(worker, "SYNC_EVERY", 0.05)
    stop = threading.Event()
    jobs = [worker.Job("search-sync", worker.job_search_sync, every=0.05)]
    thread = threading.Thread(
        target=worker.run_worker, args=(world,), kwargs={"jobs": jobs, "stop": stop}
    )
    thread.start()
    try:
        _publish(world, tmp_path, [penalty_row(3)], "q.csv")
        deadline = time.monotonic() + 10
        while EmbeddedSearch(world).count() < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert EmbeddedSearch(world).count() == 6  # the loop synced the new publish
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_one_active_worker(world):
    with worker.leadership(world, wait=False) as first:
        assert first
        with worker.leadership(world, wait=False) as second:
            assert not second
        standby = worker.run_worker(world, once=True)
        assert standby["standby"] is True and set(standby) == {"standby", "calendar"}
    with worker.leadership(world, wait=False) as again:
        assert again  # released


def test_review_digest_needs_smtp_and_an_address(world):
    assert worker.job_review_digest(world) == 0


def _filed_request(engine, tmp_path) -> str:
    """A repair request filed over the API; its tracking number."""
    cases = publish_cases(engine, tmp_path)
    with make_client(engine) as client:
        sent = client.post(
            "/api/v1/requests",
            data=fields(uscc=cases.repairable_uscc, record_ids=[cases.repairable]),
            files=files(("proof.pdf", PDF, "application/pdf")),
        )
    assert sent.status_code == 201, sent.text
    return sent.json()["tracking_no"]


def test_review_digest_mails_the_reviewers_address(engine, tmp_path, monkeypatch, smtp):  # noqa: F811 - fixture
    tracking = _filed_request(engine, tmp_path)
    today = clock.today()
    with engine.begin() as conn:  # its acceptance was due yesterday
        conn.execute(update(REQUESTS).values(review_due=today - timedelta(days=1)))
    monkeypatch.setenv("DISCLOSURE_REVIEW_EMAIL", "shenhe@scjg.yantai.gov.cn")
    get_settings.cache_clear()
    digest = [j for j in worker.default_jobs() if j.name == "review-digest"]
    morning = datetime.combine(today, dtime(8, 35), tzinfo=clock.BEIJING)
    assert worker.run_due(engine, digest, now=morning) == {"review-digest": 1}
    assert wait_for(lambda: smtp.messages), "no digest arrived"
    (envelope,) = smtp.messages
    assert envelope.rcpt_tos == ["shenhe@scjg.yantai.gov.cn"]
    message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    body = message.get_body().get_content()
    assert "待办申请 1 件" in str(message["Subject"])
    assert f"【已超期】{tracking}" in body and "/review" in body


def test_a_digest_that_could_not_be_sent_is_sent_later(engine, tmp_path, monkeypatch, smtp):  # noqa: F811 - fixture
    _filed_request(engine, tmp_path)
    working = os.environ["DISCLOSURE_SMTP_URL"]
    with socket.socket() as s:  # a port nobody listens on: the mail server is down
        s.bind(("127.0.0.1", 0))
        down = s.getsockname()[1]
    monkeypatch.setenv("DISCLOSURE_SMTP_URL", f"smtp://127.0.0.1:{down}?from=x@example.cn")
    monkeypatch.setenv("DISCLOSURE_REVIEW_EMAIL", "shenhe@scjg.yantai.gov.cn")
    get_settings.cache_clear()
    morning = datetime.combine(clock.today(), dtime(8, 35), tzinfo=clock.BEIJING)
    jobs = [j for j in worker.default_jobs() if j.name == "review-digest"]
    failed = worker.run_due(engine, jobs, now=morning)
    assert isinstance(failed["review-digest"], Exception)  # not counted as done for the day
    monkeypatch.setenv("DISCLOSURE_SMTP_URL", working)  # the mail server is back
    get_settings.cache_clear()
    later = morning + timedelta(hours=1)
    jobs = [j for j in worker.default_jobs() if j.name == "review-digest"]  # past the backoff
    assert worker.run_due(engine, jobs, now=later) == {"review-digest": 1}
    assert wait_for(lambda: smtp.messages), "the day's digest never went out"


def test_a_search_index_in_an_older_format_is_rebuilt_by_one_worker_run(
    world, tmp_path, monkeypatch, caplog
):
    """After a deploy that changed the search format, the worker rebuilds the index by itself
    (no `disclosure reindex`), once; searches answer before, meanwhile and after."""
    from publishing.search.base import SearchQuery
    from publishing.search.index_format import FORMAT_VERSION
    from tests.test_search import (
        DECISION_NO,
        _decision_world,
        _rebuilding,
        index_generation,
        old_format_index,
        stamp,
    )

    _decision_world(world, tmp_path)
    old_format_index(world, monkeypatch)  # built by the previous release, then this one deployed
    index = EmbeddedSearch(world)
    before = index_generation(world)

    def first(q: str) -> str | None:
        hits = index.search(SearchQuery(q=q)).hits
        return hits[0].doc.get("decision_no") if hits else None

    assert first(DECISION_NO) != DECISION_NO  # answered, without the decision number's tier
    sync_only = [j for j in worker.default_jobs() if j.name == "search-sync"]
    with caplog.at_level("WARNING", logger="publishing.search.sync"):
        assert worker.run_worker(world, once=True, jobs=sync_only) == {"search-sync": 0}
        assert len(_rebuilding(caplog)) == 1
        assert index_generation(world) != before and stamp(world) == FORMAT_VERSION + 1
        assert first(DECISION_NO) == DECISION_NO
        # the next run finds it current: nothing rebuilt, nothing logged
        rebuilt = index_generation(world)
        sync_only = [j for j in worker.default_jobs() if j.name == "search-sync"]
        assert worker.run_worker(world, once=True, jobs=sync_only) == {"search-sync": 0}
        assert len(_rebuilding(caplog)) == 1 and index_generation(world) == rebuilt
    assert first(DECISION_NO) == DECISION_NO
