"""Fixes from an operator's simulated production day: the worker's metric series exist from its
start (RUNBOOK §6's alerts), `disclosure serve --workers N` logs only JSON lines when asked
to, and the empty open-data files built before a first publish are rebuilt right after it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from datetime import time as dtime

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text, update

from publishing import clock, opendata, worker
from publishing.db import make_engine, upgrade
from publishing.publish import publish
from publishing.search.embedded import EmbeddedSearch
from publishing.search.sync import write_cursor
from tests.factories import penalty_row, write_csv
from tests.servers import ROOT, free_port, stop, wait_up

# -- 1. the worker's metrics after a restart ---------------------------------------------------

# when the daily jobs last succeeded, as an earlier worker process recorded it
EXPIRE_AT = datetime(2026, 11, 28, 16, 0, 2, tzinfo=UTC)  # 00:00:02 Beijing
OPEN_DATA_AT = datetime(2026, 11, 28, 17, 0, 9, tzinfo=UTC)  # 01:00:09 Beijing


def _mark_done_today(engine, name: str, at: datetime | None) -> None:
    """The cursor a worker leaves when the daily job `name` succeeded today at `at`."""
    cursor = f"worker:{name}"
    with engine.begin() as conn:
        write_cursor(conn, cursor, clock.today().toordinal())
        conn.execute(
            update(worker.CURSORS).where(worker.CURSORS.c.name == cursor).values(updated_at=at)
        )


def _scrape(port: int) -> dict[str, dict[str, float]]:
    """metric sample name -> {job label: value} of the worker's /metrics."""
    out: dict[str, dict[str, float]] = {}
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if "job" in sample.labels:
                out.setdefault(sample.name, {})[sample.labels["job"]] = sample.value
    return out


@contextmanager
def _running_worker(engine, port: int):
    stop_event = threading.Event()
    thread = threading.Thread(
        target=worker.run_worker,
        args=(engine,),
        kwargs={"stop": stop_event, "metrics_port": port},
    )
    thread.start()
    try:
        yield
    finally:
        stop_event.set()
        thread.join(timeout=30)
    assert not thread.is_alive()


def test_a_restarted_worker_exposes_last_successes_and_zero_failures(engine):
    EmbeddedSearch(engine).rebuild([])
    jobs = worker.default_jobs()
    # every daily job already ran today (none runs again now), one row from before its time
    # was recorded: the hour it was due
    for job in jobs:
        if job.daily_at is not None:
            _mark_done_today(engine, job.name, {"expire": EXPIRE_AT}.get(job.name, OPEN_DATA_AT))
    _mark_done_today(engine, "logins", None)
    for metric in worker._metrics().values():  # a new process: no series yet
        metric.clear()
    port = free_port()  # the OS's: fixed ports collided with the other xdist worker's servers
    with _running_worker(engine, port):
        deadline = time.monotonic() + 20
        while "search-sync" not in (got := _scrape(port)).get(
            "disclosure_worker_job_last_success_timestamp_seconds", {}
        ):
            assert time.monotonic() < deadline, got
            time.sleep(0.1)
    last = got["disclosure_worker_job_last_success_timestamp_seconds"]
    assert last["expire"] == EXPIRE_AT.timestamp()
    assert last["open-data"] == OPEN_DATA_AT.timestamp()
    logins = datetime.combine(clock.today(), dtime(3, 30), clock.BEIJING)
    assert last["logins"] == logins.timestamp()
    failures = got["disclosure_worker_job_failures_total"]
    assert failures == {job.name: 0.0 for job in jobs}


# -- 2. `disclosure serve --workers 2` logs JSON only ------------------------------------------


def _newer_schema(url: str) -> None:
    """The database as a newer release left it (RUNBOOK §4: a rollback): serve warns, in the
    parent process, before uvicorn starts."""
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff_newer_release'"))
    engine.dispose()


@pytest.mark.parametrize("schema", ["current", "newer"])
def test_serve_with_workers_logs_only_json_lines(tmp_path, schema):
    url = f"sqlite:///{tmp_path / 'disclosure.db'}"
    if schema == "newer":
        _newer_schema(url)
    env = {
        **os.environ,
        "DISCLOSURE_DATABASE_URL": url,
        "DISCLOSURE_DATA_DIR": str(tmp_path / "var"),
        "DISCLOSURE_SECRET_KEY": "ops-fixes-secret-of-32-characters-or-more",
        "DISCLOSURE_LOG_FORMAT": "json",
    }
    env.pop("DISCLOSURE_MEILI_URL", None)
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "portal.cli", "serve", "--workers", "2", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_up(f"http://127.0.0.1:{port}/healthz/live", 60, proc)
            httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        finally:
            stop(proc, 15)
    lines = log.read_text().splitlines()
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}\n" + "\n".join(lines))
    messages = [json.loads(line)["message"] for line in lines]
    # the parent process's lines are among them
    assert any(m.startswith("Started parent process") for m in messages), messages
    assert any(m.startswith("Stopping parent process") for m in messages), messages
    if schema == "newer":
        assert any("which this release does not know" in m for m in messages), messages


# -- 3. open data after a first publish ---------------------------------------------------------


def test_the_empty_files_of_a_first_start_are_rebuilt_after_the_first_publish(engine, tmp_path):
    empty = opendata.build(engine)  # the worker's first start, nothing published yet
    assert empty["seq"] == 0
    assert not opendata.needs_build(engine)
    assert worker.job_open_data_if_needed(engine) is None
    result = publish(
        [write_csv(tmp_path / "p.csv", [penalty_row(1), penalty_row(2)])],
        engine=engine,
        show_progress=False,
    )
    assert result.published
    # the first additions make a build due at once (within OPEN_DATA_EVERY), not after SETTLE
    assert opendata.needs_build(engine)
    rebuilt = worker.job_open_data_if_needed(engine)
    assert rebuilt is not None and rebuilt["seq"] > 0
    index = opendata.load_index()
    assert opendata.snapshot_files(index)[("penalty", "csv")]["rows"] == 2
    assert not opendata.needs_build(engine)
    # later additions wait until the build is opendata.SETTLE old (one build for a burst)
    publish([write_csv(tmp_path / "q.csv", [penalty_row(3)])], engine=engine, show_progress=False)
    assert not opendata.needs_build(engine)
