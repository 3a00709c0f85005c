"""A request's deadlines in working days (publishing.workdays): the preliminary review's and
the decision's, counted from the day of submission or of the last supplement; whether they were
counted Monday–Friday for want of holiday data (review_fallback, the stored calendar_fallback),
and counting such provisional deadlines again once the data covers them (recompute_provisional,
run by the worker); the years without data that deadlines counted now reach (calendar_gap: the
worker warns of them, the back office's queue shows them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from publishing import audit, clock, workdays
from publishing.commit import durable_transaction
from publishing.request_config import Config, load_config
from publishing.request_models import OPEN_STATUSES, RECEIVED, REQUESTS, STEPS


def deadlines(type_: str, on: date, config: Config | None = None) -> tuple[date, date, bool]:
    """(review due, decision due, calendar_fallback). The decision's count runs through the
    review's (more working days from the same day), so the flag, "a deadline was counted
    Monday–Friday", is the decision's own; the review's is told by review_fallback."""
    config = config or load_config()
    review = workdays.add_workdays(on, config.review_days)
    decision = workdays.add_workdays(on, config.decision_days[type_])
    return review.due, decision.due, review.fallback or decision.fallback


# The next year's holidays are asked for from this many days before it (from 1 December; the
# State Council's notice usually comes in November), or earlier when a deadline reaches it.
NOTICE_DAYS = 31


@dataclass(frozen=True)
class CalendarGap:
    years: tuple[int, ...]  # without holiday data, reached by deadlines counted from now
    file: Path  # where to add them (publishing.workdays.data_file)


def calendar_gap(today: date | None = None, config: Config | None = None) -> CalendarGap | None:
    """The years without holiday data that a deadline counted today reaches, or that begin
    within NOTICE_DAYS; None when every such year is known."""
    today = today or clock.today()
    config = config or load_config()
    longest = max(config.review_days, *config.decision_days.values())
    horizon = max(today + timedelta(days=NOTICE_DAYS), workdays.add_workdays(today, longest).due)
    missing = workdays.years_unknown(today, horizon)
    return CalendarGap(tuple(missing), workdays.data_file()) if missing else None


def provisional_open(conn: Connection) -> int:
    """How many open requests have a deadline counted without holiday data."""
    return int(
        conn.execute(
            select(func.count())
            .select_from(REQUESTS)
            .where(REQUESTS.c.status.in_(OPEN_STATUSES), REQUESTS.c.calendar_fallback.is_(True))
        ).scalar_one()
    )


def review_counted_weekdays(req: Mapping[str, Any], start: date) -> bool:
    """The preliminary review's deadline was counted Monday–Friday: a deadline was (the stored
    flag), and the review's few days from `start` still reach a day without holiday data."""
    return bool(req["calendar_fallback"]) and workdays.workdays_between(start, req["review_due"])[1]


def review_fallback(conn: Connection, req: Mapping[str, Any]) -> bool:
    """Whether a request's preliminary-review deadline was counted Monday–Friday (the decision's:
    req["calendar_fallback"]). Reads the day they count from only for a flagged request."""
    if not req["calendar_fallback"]:
        return False
    return review_counted_weekdays(req, count_starts(conn, [req])[req["id"]])


def count_starts(conn: Connection, reqs: Sequence[Mapping[str, Any]]) -> dict[int, date]:
    """The day each request's deadlines count from: that of its last supplement (they were
    counted again then), else that of its submission."""
    supplemented = dict(
        conn.execute(
            select(STEPS.c.request_id, func.max(STEPS.c.at))
            .where(
                STEPS.c.request_id.in_([r["id"] for r in reqs]),
                STEPS.c.action == "supplemented",
            )
            .group_by(STEPS.c.request_id)
        ).all()
    )
    return {
        r["id"]: clock.beijing_date(supplemented[r["id"]])
        if r["id"] in supplemented
        else r["submitted_on"]
        for r in reqs
    }


def recompute_provisional(engine: Engine, *, now: datetime | None = None) -> int:
    """Count again the deadlines of open requests that were counted Monday–Friday (their year's
    holiday arrangement not yet known), as the holiday data says now; returns how many changed.

    Run by the worker: once the bureau adds a year to workdays.toml (or chinese-calendar is
    upgraded), such deadlines become definitive without anyone touching the requests. Only the
    open, provisional ones are read (usually none); a deadline counts from the day of
    submission, or of the last supplement (when the deadlines were counted again)."""
    now = now or clock.now()
    config = load_config()
    with engine.connect() as conn:
        rows = (
            conn.execute(
                select(
                    REQUESTS.c.id,
                    REQUESTS.c.tracking_no,
                    REQUESTS.c.type,
                    REQUESTS.c.submitted_on,
                    REQUESTS.c.review_due,
                    REQUESTS.c.decision_due,
                ).where(
                    REQUESTS.c.status.in_(OPEN_STATUSES), REQUESTS.c.calendar_fallback.is_(True)
                )
            )
            .mappings()
            .all()
        )
        if not rows:
            return 0
        starts = count_starts(conn, rows)
    changes = []
    for r in rows:
        review_due, decision_due, fallback = deadlines(r["type"], starts[r["id"]], config)
        if (review_due, decision_due, fallback) != (r["review_due"], r["decision_due"], True):
            changes.append((r, review_due, decision_due, fallback))
    if not changes:
        return 0
    changed = 0
    with durable_transaction(engine) as conn:
        # Every row locked first, in one order, before the first audit entry takes the audit's
        # lock: a decision or supplement holding one of the rows (review.act locks it, then
        # audits) is waited for here, never waited on while holding the audit (a deadlock).
        conn.execute(
            select(REQUESTS.c.id)
            .where(REQUESTS.c.id.in_([r["id"] for r, *_ in changes]))
            .order_by(REQUESTS.c.id)
            .with_for_update()
        )
        for r, review_due, decision_due, fallback in changes:
            # only if nothing else changed the deadlines meanwhile (a supplement, a decision)
            done = conn.execute(
                update(REQUESTS)
                .where(
                    REQUESTS.c.id == r["id"],
                    REQUESTS.c.status.in_(OPEN_STATUSES),
                    REQUESTS.c.calendar_fallback.is_(True),
                    REQUESTS.c.review_due == r["review_due"],
                    REQUESTS.c.decision_due == r["decision_due"],
                )
                .values(
                    review_due=review_due,
                    decision_due=decision_due,
                    calendar_fallback=fallback,
                    updated_at=now,
                )
            ).rowcount
            if not done:
                continue
            changed += 1
            audit.append(
                conn,
                actor="worker",
                action="request.deadlines",
                target_type="request",
                target_id=r["tracking_no"],
                at=now,
                before={
                    "review_due": r["review_due"],
                    "decision_due": r["decision_due"],
                    "calendar_fallback": True,
                },
                after={
                    "review_due": review_due,
                    "decision_due": decision_due,
                    "calendar_fallback": fallback,
                },
            )
    return changed


def due_date(req: dict[str, Any]) -> date:
    """The next deadline: preliminary review while received, else the decision."""
    return req["review_due"] if req["status"] == RECEIVED else req["decision_due"]
