"""The background worker: one process next to the portal processes (deploy/compose.yaml).

Jobs, each run when due, each in its own try (a failing job is logged, counted and retried
later; it never stops the others, nor the worker: a database that fails while the schedule is
read or a day recorded fails the job, not the process):

  search-sync    every SYNC_EVERY seconds: apply the change log to the search index
                 (publishing.search.sync; Meilisearch or embedded, whichever is configured);
                 an index in an older format (a deploy changed its documents or settings) is
                 rebuilt first, searches answered by the old one until the swap
  expire         daily at 00:00 Beijing time: withdraw records whose publicity period ended
                 (publishing.expire), then sync search; right at midnight, because pages and
                 counts already leave such records out from then, and the search index would
                 otherwise keep showing them until the job ran. The rules file
                 (publicity.toml or DISCLOSURE_RULES_FILE) is read again each run: when its
                 content (not its comments or layout) differs from the rules the stored periods
                 were last recomputed under, or none is recorded, the stored periods are first
                 recomputed (as `disclosure expire --recompute`, which records the rules too);
                 a failed recompute records nothing and is tried again
  open-data      daily at 01:00: snapshot, deltas and index.json of the open-data files
                 (publishing.opendata.build; nothing is rewritten when nothing changed)
  open-data-now  every OPEN_DATA_EVERY seconds: build at once when publishing.opendata.needs_build
                 says so: a record left publication or was corrected (at once), or the change
                 log moved on otherwise (additions, changes) and the last build is
                 opendata.SETTLE (10 min) old, so that downloads stream from the snapshot again
                 within about that, and a burst of publishes makes one build, not one a minute
  review-digest  daily at 08:30, when DISCLOSURE_SMTP_URL and DISCLOSURE_REVIEW_EMAIL are set:
                 one mail listing the open objection / credit-repair requests due within
                 DIGEST_DAYS days or overdue, each with its preliminary-review and decision
                 deadlines (either may be the overdue one). Its day is recorded before the mail
                 goes out (and given back when it cannot be sent): a database that cannot
                 record it means no digest, never the same digest at every restart
  deadlines      every DEADLINES_EVERY seconds: open requests whose deadlines were counted
                 Monday–Friday (their year's holidays unknown then) are counted again once the
                 holiday data covers them (publishing.request_deadlines.recompute_provisional; the data
                 file is read again when it changes, so no restart is needed)
  calendar       at start, then every CALENDAR_EVERY seconds: a WARNING naming the years without
                 holiday data that deadlines counted now reach (request_deadlines.calendar_gap)
                 and what to add where; its result (printed by `disclosure worker --once`) is
                 that warning, or None
  logins         daily at 03:30: forget the login rows per (name, address) that no longer
                 matter (publishing.users.forget_logins)
  retention      daily at 04:00: remove the applicants' personal data (contact, reason, notes,
                 attachment files) of requests decided longer ago than requests.toml's
                 [retention] personal_data_days; sweep the attachments folder: unfinished
                 uploads older than a day deleted, files no row names moved into quarantine
                 (.unreferenced/, deleted after 30 days, moved back when a row names them
                 again; nothing moved when suspiciously many: another database?)
                 (publishing.request_retention; its result: the counts)
  audit-anchor   every AUDIT_ANCHOR_EVERY seconds: when the audit log has grown, append its head
                 (n, hash) to the anchor file outside the database and log it, so that
                 `disclosure audit verify` finds a tail cut off (publishing.audit)

A daily job's last run (its Beijing date) is kept in the sync_cursors table ("worker:<job>"),
so a restart does not repeat it and a worker that was down at the hour catches up when it
comes back; the fingerprint of the rules last recomputed under is kept there too
("worker:rules", publishing.expire.RULES_CURSOR). Only one worker is active at a time: it holds
a PostgreSQL advisory lock (SQLite: a file lock next to the database); a second worker waits as
a hot standby. The lock goes with its database session: the active worker checks before each
round of jobs that its session still holds it, and when not (the session was killed, the
server restarted) stops running jobs, logs an error and contends again like a standby.

`run_worker(engine, once=True)` runs the due jobs once (and search-sync always) and returns
what each did; the CLI verb `disclosure worker [--once]` is a thin call of it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from sqlalchemy import Engine, Row, delete, select, update

from publishing import clock, locks
from publishing.db import get_engine, writer_connection
from publishing.models import SyncCursor

log = logging.getLogger("publishing.worker")
CURSORS = SyncCursor.__table__
SYNC_EVERY = 5.0  # seconds between search syncs
OPEN_DATA_EVERY = 60.0  # seconds between checks whether open data needs a build now
DEADLINES_EVERY = 600.0  # seconds between looks for provisional deadlines to count again
CALENDAR_EVERY = 86400.0  # seconds between warnings of a year without holiday data
AUDIT_ANCHOR_EVERY = 60.0  # seconds between anchors of the audit log's head
TICK = 1.0  # seconds between looks at the schedule
DIGEST_DAYS = 2
WORKER_LOCK_ID = locks.WORKER  # PostgreSQL advisory lock: one active worker
STANDBY_RETRY = 15.0  # seconds between a standby worker's attempts to take over


@dataclass
class Job:
    name: str
    run: Callable[[Engine], Any]
    every: float | None = None  # seconds, or
    daily_at: dtime | None = None  # Beijing time
    # a daily job whose effect lies outside the database (a mail): its day is recorded before
    # it runs, so that a day that cannot be recorded means no run rather than a run again
    mark_day_first: bool = False
    failures: int = 0
    last_run: float = 0.0  # monotonic, for `every`
    retry_at: float = 0.0  # monotonic: after a failure, not before this


# -- the jobs --------------------------------------------------------------------------------


def job_search_sync(engine: Engine) -> int:
    from publishing.search.sync import sync

    return sync(engine)


def job_expire(engine: Engine) -> dict[str, Any]:
    """Expire what is due, first recomputing the stored periods when the rules file's content
    differs from the rules last recomputed under (or none was recorded); then sync search.
    {"recomputed": bool, **expire's counts}."""
    from publishing.expire import expire, recomputed_rules
    from publishing.rules import RulesError, read_rules

    # the file as it is now, not as this process first read it: the bureau edits it in place
    try:
        rules = read_rules()
    except RulesError:
        # The stored periods are still right: what is due leaves publication tonight all the
        # same (search, feeds and open data would otherwise go on showing it until the file is
        # fixed); the recompute and scheme switches wait, and the job fails (logged, retried).
        if any(expire(engine, stored_periods_only=True).values()):
            job_search_sync(engine)
        raise
    with engine.connect() as conn:
        recompute = rules.fingerprint != recomputed_rules(conn)
    # expire records the fingerprint in its transaction: a failure raises here, records
    # nothing, and the job (not marked done) is retried
    counts = dict(expire(engine, rules=rules, recompute=recompute))
    if any(counts.values()):
        job_search_sync(engine)
    return {"recomputed": recompute, **counts}


def job_open_data(engine: Engine) -> dict[str, Any]:
    from publishing import opendata

    index = opendata.build(engine)
    return {"seq": index.get("seq"), "files": len(index.get("files", []))}


def job_open_data_if_needed(engine: Engine) -> dict[str, Any] | None:
    from publishing import opendata

    return job_open_data(engine) if opendata.needs_build(engine) else None


def job_review_digest(engine: Engine) -> int:
    """Mail the reviewers a list of open requests due soon or overdue; returns how many."""
    from publishing import mail
    from publishing.request_queries import queue
    from publishing.settings import get_settings

    settings = get_settings()
    to = settings.review_email
    if not (settings.smtp_url and to):
        return 0
    today = clock.today()
    with engine.connect() as conn:
        due = [
            r
            for r in queue(conn, today=today)
            if r["due"] <= today + timedelta(days=DIGEST_DAYS)
        ]
    if not due:
        return 0
    lines = [digest_line(r, today) for r in due]
    base = settings.base_url.rstrip("/")
    body = (
        f"以下 {len(due)} 件申请将在 {DIGEST_DAYS} 日内到期或已超期:\n\n"
        + "\n".join(lines)
        + f"\n\n办理:{base}/review\n"
    )
    if not mail.send(to, f"【信用信息公示】待办申请 {len(due)} 件({today.isoformat()})", body):
        # a failed job is retried with backoff; a returned count would mark the day done
        raise RuntimeError(f"review digest not sent to {to} (mail server unreachable?)")
    return len(due)


def digest_line(req: dict[str, Any], today: date) -> str:
    """One request of the digest (a row of request_queries.queue): both deadlines, as the queue
    shows them, so that an overdue decision is not hidden behind the preliminary review's."""
    review_late = req["review_overdue"]
    deadlines = "，".join(
        (
            _deadline_text("初审期限", req["review_due"], review_late, req["review_fallback"], today),
            _deadline_text(
                "办结期限", req["decision_due"], req["decision_overdue"], req["decision_fallback"], today
            ),
        )
    )
    flag = "【已超期】" if review_late or req["decision_overdue"] else ""
    return (
        f"{flag}{req['tracking_no']} {req['type_label']} {req['entity_name']} "
        f"{req['status_label']} {deadlines}"
    )


def _deadline_text(label: str, due: date, overdue: bool, provisional: bool, today: date) -> str:
    text = f"{label} {due.isoformat()}"
    if provisional:
        text += "（暂定）"
    if overdue:
        text += f"（已超期 {(today - due).days} 日）"
    return text


def job_deadlines(engine: Engine) -> int:
    """Count again the provisional deadlines the holiday data now covers; returns how many."""
    from publishing.request_deadlines import recompute_provisional

    return recompute_provisional(engine)


def job_calendar(engine: Engine) -> str | None:
    """Warn when deadlines counted now reach a year without holiday data (once at start, then
    daily: not per request); the warning, or None."""
    from publishing.request_deadlines import calendar_gap, provisional_open

    gap = calendar_gap()
    if gap is None:
        return None
    with engine.connect() as conn:
        provisional = provisional_open(conn)
    years = ", ".join(str(y) for y in gap.years)
    tables = " ".join(f"[years.{y}]" for y in gap.years)
    warning = (
        f"working days: no holiday data for {years}, so deadlines falling in {years} are provisional "
        f"(Monday–Friday less 元旦/劳动节/国庆节; 春节, 清明, 端午, 中秋 and 调休 unknown), "
        f"{provisional} open request(s) so far. Add {tables} (holidays, workdays) from the "
        f"State Council's notice (国务院办公厅关于部分节假日安排的通知) to {gap.file} "
        f"(DISCLOSURE_WORKDAYS_FILE names the file in use); no restart needed, the deadlines "
        f"job then counts them again (RUNBOOK: Next year's holidays)"
    )
    log.warning("worker: %s", warning)
    return warning


def job_forget_logins(engine: Engine) -> int:
    from publishing import users

    return users.forget_logins(engine)


def job_retention(engine: Engine) -> dict[str, Any]:
    from publishing import request_retention

    return request_retention.run(engine)


def job_audit_anchor(engine: Engine) -> dict[str, Any] | None:
    """Anchor the audit log's head outside the database; the anchor (logged by run_job)."""
    from publishing import audit
    from publishing.settings import get_settings

    path = get_settings().audit_anchors_path
    before = audit.last_anchor(path)
    anchor = audit.record_anchor(engine, path)
    if before:
        with engine.connect() as conn:
            top = audit.head(conn)
        if (top[0] if top else 0) < before.n:
            log.error(
                "worker: the audit log has %d entries but %d were anchored at %s: its tail "
                "was deleted (disclosure audit verify)",
                top[0] if top else 0,
                before.n,
                before.at,
            )
    return asdict(anchor) if anchor else None


def default_jobs() -> list[Job]:
    return [
        Job("search-sync", job_search_sync, every=SYNC_EVERY),
        Job("expire", job_expire, daily_at=dtime(0, 0)),
        Job("open-data", job_open_data, daily_at=dtime(1, 0)),
        # a withdrawn or expired record must leave the open-data files too, not only at 01:00;
        # additions and changes follow within opendata.SETTLE (downloads stream live till then)
        Job("open-data-now", job_open_data_if_needed, every=OPEN_DATA_EVERY),
        # before the digest, which lists requests by their deadlines
        Job("deadlines", job_deadlines, every=DEADLINES_EVERY),
        Job("calendar", job_calendar, every=CALENDAR_EVERY),
        Job("review-digest", job_review_digest, daily_at=dtime(8, 30), mark_day_first=True),
        Job("logins", job_forget_logins, daily_at=dtime(3, 30)),
        Job("retention", job_retention, daily_at=dtime(4, 0)),
        Job("audit-anchor", job_audit_anchor, every=AUDIT_ANCHOR_EVERY),
    ]


# -- schedule --------------------------------------------------------------------------------


def _cursor_name(job: Job) -> str:
    return f"worker:{job.name}"


def last_day(engine: Engine, job: Job) -> date | None:
    with engine.connect() as conn:
        seq = conn.execute(
            select(CURSORS.c.seq).where(CURSORS.c.name == _cursor_name(job))
        ).scalar()
    return date.fromordinal(seq) if seq else None


def _mark_day(engine: Engine, job: Job, day: date) -> Row | None:
    """Record `day` as the job's last; the cursor row it replaced (seq, updated_at), if any."""
    from publishing.search.sync import write_cursor

    name = _cursor_name(job)
    with writer_connection(engine) as conn, conn.begin():
        before = conn.execute(
            select(CURSORS.c.seq, CURSORS.c.updated_at).where(CURSORS.c.name == name)
        ).first()
        write_cursor(conn, name, day.toordinal())
    return before


def _unmark_day(engine: Engine, job: Job, before: Row | None) -> None:
    """Put back the cursor row _mark_day replaced, so that the failed job is due again; when
    that fails too, the job is not run again that day (never twice)."""
    name = _cursor_name(job)
    try:
        with writer_connection(engine) as conn, conn.begin():
            if before is None:
                conn.execute(delete(CURSORS).where(CURSORS.c.name == name))
            else:
                conn.execute(
                    update(CURSORS).where(CURSORS.c.name == name).values(**before._mapping)
                )
    except Exception as err:  # noqa: BLE001 - the job's failure is logged and counted anyway
        log.error("worker: job %s: its day stays recorded (%s); not run again today", job.name, err)


def is_due(engine: Engine, job: Job, now: datetime, mono: float) -> bool:
    if mono < job.retry_at:
        return False
    if job.every is not None:
        return mono - job.last_run >= job.every or job.last_run == 0.0
    assert job.daily_at is not None
    local = now.astimezone(clock.BEIJING)
    if local.time() < job.daily_at:
        return False
    done = last_day(engine, job)
    return done is None or done < local.date()


def run_job(engine: Engine, job: Job, now: datetime, mono: float) -> Any:
    """Run one job, recording success (the day, for daily jobs) or backing off after failure;
    a failure to record the day is the job's failure too."""
    started = time.perf_counter()
    day = clock.beijing_date(now)
    claimed, before = False, None
    try:
        if job.mark_day_first:
            before, claimed = _mark_day(engine, job, day), True
        result = job.run(engine)
        if job.daily_at is not None and not job.mark_day_first:
            _mark_day(engine, job, day)
    except Exception as err:  # noqa: BLE001 - one job's failure never stops the worker
        if claimed:
            _unmark_day(engine, job, before)
        return _failed(job, mono, err)
    job.failures = 0
    job.last_run = mono
    elapsed = time.perf_counter() - started
    if job.daily_at is not None or result:
        log.info("worker: job %s done in %.2fs: %s", job.name, elapsed, result)
    _metric_success(job.name, elapsed)
    return result


def _failed(job: Job, mono: float, err: Exception) -> Exception:
    """Log and count a failure of the job; it is retried after a backoff."""
    job.failures += 1
    job.retry_at = mono + min(300.0, 5.0 * 2 ** min(job.failures, 6))
    log.error(
        "worker: job %s failed (%d in a row): %s", job.name, job.failures, err, exc_info=err
    )
    _metric_failure(job.name)
    return err


def run_due(engine: Engine, jobs: list[Job], now: datetime | None = None) -> dict[str, Any]:
    """Run the jobs that are due now; returns {job: result}. A database failure while looking
    at the schedule is the job's failure (logged, counted, retried), never the worker's end."""
    now = now or clock.now()
    mono = time.monotonic()
    results: dict[str, Any] = {}
    for job in jobs:
        try:
            due = is_due(engine, job, now, mono)
        except Exception as err:  # noqa: BLE001 - as a failure inside the job
            results[job.name] = _failed(job, mono, err)
            continue
        if due:
            results[job.name] = run_job(engine, job, now, mono)
    return results


# -- one active worker -----------------------------------------------------------------------


@contextlib.contextmanager
def leadership(
    engine: Engine, wait: bool = True, stop: threading.Event | None = None
) -> Iterator[locks.Lock]:
    """Hold the worker lock while inside; yields a false Lock when not wait and another holds
    it (a standby worker tries again every STANDBY_RETRY seconds until `stop`, also while the
    database does not answer). The leader checks Lock.still_held before each round of jobs."""
    stop = stop or threading.Event()
    while True:
        with contextlib.ExitStack() as stack:
            lock = _contend(engine, stack, wait)
            if lock or not wait or stop.is_set():
                yield lock
                return
        stop.wait(STANDBY_RETRY)


def _contend(engine: Engine, stack: contextlib.ExitStack, wait: bool) -> locks.Lock:
    """Try to take the worker lock, held until `stack` closes."""
    try:
        lock = stack.enter_context(locks.holding(engine, WORKER_LOCK_ID, "worker", wait=False))
    except Exception as err:  # noqa: BLE001 - a standby outlives a database outage
        if not wait:
            raise
        log.error("worker: the worker lock could not be taken (%s); trying again", err)
        return locks.Lock(False, WORKER_LOCK_ID)
    if not lock:
        log.info("worker: another worker is active; standing by")
    return lock


# -- metrics (optional: prometheus-client) -----------------------------------------------------

_METRICS: dict[str, Any] = {}


def _metrics() -> dict[str, Any]:
    if not _METRICS:
        from prometheus_client import Counter, Gauge

        _METRICS["ok"] = Gauge(
            "disclosure_worker_job_last_success_timestamp_seconds",
            "When the job last succeeded",
            ("job",),
        )
        _METRICS["seconds"] = Gauge(
            "disclosure_worker_job_duration_seconds", "How long the last run took", ("job",)
        )
        _METRICS["failed"] = Counter(
            "disclosure_worker_job_failures", "Failed runs of the job", ("job",)
        )
    return _METRICS


def _metric_success(name: str, seconds: float) -> None:
    m = _metrics()
    m["ok"].labels(name).set_to_current_time()
    m["seconds"].labels(name).set(seconds)


def _metric_failure(name: str) -> None:
    _metrics()["failed"].labels(name).inc()


def last_successes(engine: Engine, jobs: list[Job]) -> dict[str, datetime]:
    """job -> when each daily job last succeeded, as its cursor ("worker:<job>") records it."""
    daily = {_cursor_name(j): j for j in jobs if j.daily_at is not None}
    if not daily:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(CURSORS.c.name, CURSORS.c.seq, CURSORS.c.updated_at).where(
                CURSORS.c.name.in_(daily)
            )
        ).all()
    return {daily[name].name: _success_time(daily[name], seq, at) for name, seq, at in rows if seq}


def _success_time(job: Job, day: int, at: datetime | None) -> datetime:
    if at is None:  # a row without its time: the hour the job was due on its day
        assert job.daily_at is not None
        return datetime.combine(date.fromordinal(day), job.daily_at, clock.BEIJING)
    return at if at.tzinfo else at.replace(tzinfo=UTC)  # stored in UTC


def _metrics_at_start(engine: Engine, jobs: list[Job]) -> None:
    """Every series from the first scrape on: a daily job's last success from its cursor (not
    only once it runs again, up to a day later: the 26 h alert could not fire meanwhile), and
    each job's failure count at 0 (a rate needs a first sample)."""
    m = _metrics()
    for job in jobs:
        m["failed"].labels(job.name)
    try:
        done = last_successes(engine, jobs)
    except Exception as err:  # noqa: BLE001 - the jobs set them as they run
        log.warning("worker: last successes not read (%s); the jobs' runs will set them", err)
        return
    for name, at in done.items():
        m["ok"].labels(name).set(at.timestamp())


# -- the loop --------------------------------------------------------------------------------


def run_worker(
    engine: Engine | None = None,
    once: bool = False,
    jobs: list[Job] | None = None,
    stop: threading.Event | None = None,
    metrics_port: int | None = None,
) -> dict[str, Any]:
    """Run the worker until SIGTERM / SIGINT (or `stop`); with once=True run the due jobs (and
    a search sync) once and return their results."""
    engine = engine or get_engine()
    jobs = jobs if jobs is not None else default_jobs()
    stop = stop or threading.Event()
    if once:
        with leadership(engine, wait=False) as leader:
            if not leader:
                # the calendar check only reads: an operator checking a year just added to the
                # holiday file gets its answer while the active worker runs (RUNBOOK)
                return {"standby": True, "calendar": job_calendar(engine)}
            return run_due(engine, jobs)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port)
    results: dict[str, Any] = {}
    led = False
    while not stop.is_set():
        with leadership(engine, wait=True, stop=stop) as lock:
            if not lock:  # stopped while standing by
                break
            led = True
            log.info("worker: active (%s)", ", ".join(j.name for j in jobs))
            _metrics_at_start(engine, jobs)
            _lead(engine, jobs, lock, stop, results)
    log.info("worker: stopped")
    return results if led else {"standby": True}


def _lead(
    engine: Engine, jobs: list[Job], lock: locks.Lock, stop: threading.Event, results: dict
) -> None:
    """Run the due jobs each TICK while the worker lock is this worker's: once its session is
    gone (killed, the server restarted) another worker may be active, and two must never be."""
    while not stop.is_set():
        if not lock.still_held():
            log.error("worker: the worker lock was lost (its database session ended); no "
                      "longer active, contending again")
            return
        results.update(run_due(engine, jobs))
        stop.wait(TICK)
