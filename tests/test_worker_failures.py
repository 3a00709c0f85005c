"""The worker (publishing.worker) when its database fails, for real: a database that refuses
writes (SQLite query_only, PostgreSQL read-only transactions) or connections (PostgreSQL
ALLOW_CONNECTIONS false, sessions terminated). A failure in the schedule's bookkeeping is a
failed job, never the worker's end; the reviewers' digest is never mailed twice for a day it
could not record; and a leader whose lock session was killed stops leading."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from datetime import time as dtime

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import URL, make_url

from publishing import clock, locks, worker
from publishing.db import make_engine
from publishing.settings import get_settings
from tests.conftest import migrated_pg_database
from tests.requests_support import (
    smtp,  # noqa: F401 - a fixture
    wait_for,
)
from tests.servers import free_port
from tests.test_worker import _filed_request

MORNING = dtime(8, 35)  # after the digest's 08:30


def _failures(job: str) -> float:
    return REGISTRY.get_sample_value("disclosure_worker_job_failures_total", {"job": job}) or 0.0


def _url(url: URL, **query: str) -> str:
    return url.update_query_dict(query).render_as_string(hide_password=False)


def _read_only(engine: Engine) -> Engine:
    """Another engine on the same database that reads but cannot write, as a full disk."""
    if engine.dialect.name == "postgresql":
        return make_engine(_url(engine.url, options="-c default_transaction_read_only=on"))
    ro = make_engine(_url(engine.url))
    event.listen(ro, "connect", lambda dbapi, _: dbapi.execute("PRAGMA query_only = ON"))
    return ro


def _unreachable(engine: Engine, tmp_path) -> Engine:
    """An engine on a database that cannot be opened."""
    if engine.dialect.name == "postgresql":
        return make_engine(_url(engine.url.set(database="disclosure_no_such_database")))
    return make_engine(f"sqlite:///file:{tmp_path}/gone.db?mode=ro&uri=true")


def _digest() -> list[worker.Job]:
    """The digest job as a freshly (re)started worker has it."""
    return [j for j in worker.default_jobs() if j.name == "review-digest"]


def test_a_digest_whose_day_cannot_be_recorded_is_not_mailed(engine, tmp_path, monkeypatch, smtp):  # noqa: F811 - fixture
    """Repro: a full disk; each restart of the worker mailed the digest, then died recording
    its day. Now the day is recorded first: no mail while it cannot be, one once it can."""
    _filed_request(engine, tmp_path)
    monkeypatch.setenv("DISCLOSURE_REVIEW_EMAIL", "shenhe@scjg.yantai.gov.cn")
    get_settings.cache_clear()
    morning = datetime.combine(clock.today(), MORNING, tzinfo=clock.BEIJING)
    full = _read_only(engine)
    failed_before = _failures("review-digest")
    try:
        for _restart in range(3):
            result = worker.run_due(full, _digest(), now=morning)
            assert isinstance(result["review-digest"], Exception)
    finally:
        full.dispose()
    assert smtp.messages == []
    assert _failures("review-digest") == failed_before + 3
    # space again: one digest, and only one
    assert worker.run_due(engine, _digest(), now=morning) == {"review-digest": 1}
    assert worker.run_due(engine, _digest(), now=morning) == {}
    assert len(smtp.messages) == 1


def test_a_digest_that_could_not_be_sent_gives_its_day_back(engine, tmp_path, monkeypatch, smtp):  # noqa: F811 - fixture
    _filed_request(engine, tmp_path)
    monkeypatch.setenv("DISCLOSURE_REVIEW_EMAIL", "shenhe@scjg.yantai.gov.cn")
    get_settings.cache_clear()
    morning = datetime.combine(clock.today(), MORNING, tzinfo=clock.BEIJING)
    assert worker.run_due(engine, _digest(), now=morning - timedelta(days=1)) == {"review-digest": 1}
    job = _digest()[0]
    before = worker.last_successes(engine, [job])
    monkeypatch.setenv("DISCLOSURE_SMTP_URL", f"smtp://127.0.0.1:{free_port()}?from=x@example.cn")
    get_settings.cache_clear()  # the mail server is down today
    assert isinstance(worker.run_due(engine, [job], now=morning)["review-digest"], Exception)
    assert worker.last_day(engine, job) == clock.today() - timedelta(days=1)  # due again
    assert worker.last_successes(engine, [job]) == before


def test_a_job_that_succeeded_but_could_not_record_its_day_failed(engine):
    jobs = [worker.Job("wfail-daily", lambda _: "done", daily_at=dtime(0, 0))]
    full = _read_only(engine)
    try:
        result = worker.run_due(full, jobs, now=clock.now())
    finally:
        full.dispose()
    assert isinstance(result["wfail-daily"], Exception)
    assert jobs[0].failures == 1 and worker.last_day(engine, jobs[0]) is None  # retried later


def test_a_database_that_cannot_be_reached_fails_the_jobs_not_the_worker(engine, tmp_path):
    """Repro: the schedule's look at a daily job's last day raised out of the worker."""
    jobs = worker.default_jobs()
    failed_before = _failures("expire")
    down = _unreachable(engine, tmp_path)
    try:
        result = worker.run_due(down, jobs, now=clock.now())
        assert isinstance(result["expire"], Exception)
        assert isinstance(result["search-sync"], Exception)
        assert _failures("expire") == failed_before + 1
        assert worker.run_due(down, jobs, now=clock.now()) == {}  # every job backs off
    finally:
        down.dispose()


# -- PostgreSQL: sessions killed, connections refused ----------------------------------------


LOCK_HOLDER = f"""
    SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)
    WHERE l.locktype = 'advisory' AND l.objid = {locks.WORKER} AND l.granted
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"""


def _admin(url: str, sql: str) -> list:
    """Run a statement from the server's "postgres" database (outside `url`'s); its rows."""
    engine = make_engine(_url(make_url(url).set(database="postgres")))
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            result = conn.execute(text(sql))
            return result.all() if result.returns_rows else []
    finally:
        engine.dispose()


def _holders(url: str) -> list[tuple[int, str]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(LOCK_HOLDER)).all()]
    finally:
        engine.dispose()


def _terminate(url: str, pids: list[int]) -> None:
    for pid in pids:  # and wait (up to 5 s) until the session is gone
        _admin(url, f"SELECT pg_terminate_backend({pid}, 5000)")


def _sessions(url: str) -> list[int]:
    name = make_url(url).database
    rows = _admin(url, f"SELECT pid FROM pg_stat_activity WHERE datname = '{name}' "
                       "AND pid <> pg_backend_pid()")
    return [pid for (pid,) in rows]


def _connections(url: str, allowed: bool) -> None:
    _admin(url, f'ALTER DATABASE "{make_url(url).database}" ALLOW_CONNECTIONS {str(allowed).lower()}')


def _wait(predicate, seconds: float = 15.0) -> bool:
    return wait_for(predicate, seconds)


@pytest.fixture
def own_pg() -> Iterator[str]:
    """A PostgreSQL database of this test's own, whose connections it may refuse."""
    with migrated_pg_database(f"disclosure_test_{os.getpid()}_wfail") as url:
        try:
            yield url
        finally:
            _connections(url, True)


@pytest.fixture
def quick(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(worker, "TICK", 0.05)
    monkeypatch.setattr(worker, "STANDBY_RETRY", 0.2)
    monkeypatch.setenv("DISCLOSURE_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    caplog.set_level(logging.INFO, logger="publishing.worker")
    yield
    get_settings.cache_clear()


def _start(engine: Engine, jobs: list[worker.Job]) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(
        target=worker.run_worker, args=(engine,), kwargs={"jobs": jobs, "stop": stop}, daemon=True
    )
    thread.start()
    return thread, stop


def _logged(caplog, text_: str) -> int:
    return sum(text_ in r.getMessage() for r in caplog.records)


def test_the_running_worker_outlives_a_database_that_refuses_connections(own_pg, quick, caplog):
    """Repro: connections refused and sessions killed; the worker exited within 5 s. Now the
    jobs fail (counted) while its lock session lives, it contends again once that is killed
    too, and it is active again once the database answers, without repeating the day's job."""
    ran: list[int] = []
    rounds: list[int] = []
    jobs = [
        worker.Job("wfail-loop", lambda _: ran.append(1) or len(ran), daily_at=dtime(0, 0)),
        worker.Job("wfail-rounds", lambda _: rounds.append(1), every=0.01),
    ]
    engine = make_engine(own_pg)
    thread, stop = _start(engine, jobs)
    try:
        assert _wait(lambda: ran), "the daily job never ran"
        (leader, _name), = _holders(own_pg)
        # refused connections, the lock's session alive: the schedule's reads fail
        failed = _failures("wfail-loop")
        _connections(own_pg, False)
        _terminate(own_pg, [pid for pid in _sessions(own_pg) if pid != leader])
        assert _wait(lambda: _failures("wfail-loop") > failed), "the failure was not counted"
        assert thread.is_alive()
        # the lock's session killed too: no longer active, contending while refused
        _terminate(own_pg, [leader])
        assert _wait(lambda: _logged(caplog, "could not be taken") >= 2)
        assert _logged(caplog, "the worker lock was lost") == 1
        assert thread.is_alive()
        _connections(own_pg, True)
        assert _wait(lambda: _logged(caplog, "worker: active") == 2), "not active again"
        since = len(rounds)
        assert _wait(lambda: len(rounds) > since)  # a round of jobs ran
        assert ran == [1]  # the day's run was recorded: not repeated
    finally:
        stop.set()
        thread.join(timeout=15)
        engine.dispose()
    assert not thread.is_alive()


def test_a_lock_whose_session_was_killed_is_no_longer_held(pg_url):
    engine = make_engine(pg_url)
    try:
        with worker.leadership(engine, wait=False) as lock:
            assert lock and lock.still_held()
            (pid, _name), = _holders(pg_url)
            _terminate(pg_url, [pid])
            assert not lock.still_held()
    finally:
        engine.dispose()


def test_only_one_worker_is_active_after_the_leaders_session_is_killed(pg_url, quick, caplog):
    """Repro: A active, B standing by; A's lock session killed: B took the lock and A went on
    running its jobs. Now A notices before its next round and contends again."""
    ran: list[str] = []
    started = []
    for name in ("worker-a", "worker-b"):
        engine = make_engine(_url(make_url(pg_url), application_name=name))
        jobs = [worker.Job("wfail-tick", lambda _, n=name: ran.append(n), every=0.01)]
        started.append((engine, *_start(engine, jobs)))
        assert _wait(lambda: _holders(pg_url)), "no worker became active"
    try:
        assert _wait(lambda: _logged(caplog, "standing by"))
        (pid, first), = _holders(pg_url)
        assert first == "worker-a"
        _terminate(pg_url, [pid])
        assert _wait(lambda: _logged(caplog, "the worker lock was lost"))
        assert _wait(lambda: _holders(pg_url)), "nobody took over"
        (new_pid, holder), = _holders(pg_url)
        assert new_pid != pid
        ran.clear()
        threading.Event().wait(0.5)
        assert set(ran) == {holder}  # one worker runs jobs: the one holding the lock
    finally:
        for engine, thread, stop in started:
            stop.set()
            thread.join(timeout=15)
            engine.dispose()
    assert not any(thread.is_alive() for _, thread, _ in started)
