"""The requests' public figures (home page, review queue) with a few hundred requests in every
state, made by the real intake and review functions: received by type, repairs granted and the
records they took down, objections upheld, and the median working days from submission to
decision, with an odd and with an even number of decisions. The home page shows them at most a
minute old. On SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import statistics
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import select

from portal.pages import home
from publishing import clock, request_queries, review, users, workdays
from publishing import requests as rq
from publishing.attachments import Upload
from publishing.commit import RECORDS
from publishing.publish import publish
from tests.factories import penalty_row, uscc, write_csv
from tests.requests_support import PDF, REASON, make_client, months_ago

ENTITIES = 300
PASSWORD = "correct horse battery staple"
# What happens to request i: its type is REPAIR for even i; its path through review is
# PATHS[i % len(PATHS)] (the actions in order; none: still received).
PATHS = (
    (),
    ("accept",),
    ("more_info",),
    ("approve",),
    ("reject",),
    ("accept", "approve"),
    ("accept", "reject"),
)


def _two_records(n: int) -> bool:
    return n % 5 == 0


def _publish(engine, tmp_path) -> dict[str, list[str]]:
    """ENTITIES entities with repairable penalties, some with two; uscc -> its record ids."""
    rows = []
    for n in range(1, ENTITIES + 1):
        rows.append(penalty_row(n, 处罚决定日期=months_ago(6), 领域="广告"))
        if _two_records(n):
            rows.append(
                penalty_row(
                    n,
                    处罚决定日期=months_ago(6),
                    领域="广告",
                    行政处罚决定书文号=f"烟芝市监罚〔2026〕{n}-2号",
                )
            )
    result = publish([write_csv(tmp_path / "many.csv", rows)], engine=engine, show_progress=False)
    assert result.published, result.as_json()
    with engine.connect() as conn:
        pairs = conn.execute(select(RECORDS.c.entity_id, RECORDS.c.id).order_by(RECORDS.c.id))
        records: dict[str, list[str]] = {}
        for entity, rid in pairs:
            records.setdefault(entity, []).append(rid)
    assert sum(map(len, records.values())) == len(rows)
    return records


def _submit(engine, type_: str, code: str, record_ids: list[str], at: datetime) -> str:
    sub = rq.Submission(
        type=type_,
        uscc=code,
        record_ids=record_ids,
        contact_name="张三",
        mobile="13912345678",
        reason=REASON,
        commitment=type_ == "repair",
        attachments=[Upload("proof.pdf", io.BytesIO(PDF))],
    )
    return rq.submit(engine, sub, now=at).tracking_no


class Expected:
    """The figures, counted from what the test did (not from the database)."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.approved: Counter[str] = Counter()
        self.repaired_records = 0
        self.days: list[int] = []

    def figures(self) -> dict:
        return {
            "received": sum(self.received.values()),
            "received_repair": self.received["repair"],
            "received_objection": self.received["objection"],
            "repaired": self.approved["repair"],
            "repaired_records": self.repaired_records,
            "objections_upheld": self.approved["objection"],
            "decided": len(self.days),
            "median_workdays_to_decide": statistics.median(self.days) if self.days else None,
        }


def _act(engine, approver, tracking, type_, action, at, submitted_at, records, expected):
    outcome = "withdraw" if action == "approve" and type_ == "objection" else None
    review.act(
        engine,
        tracking,
        approver,
        action,
        "经审核作出决定。",
        outcome=outcome,
        now=at,
        sync_search=False,
    )
    if action in ("approve", "reject"):
        days, _ = workdays.workdays_between(
            clock.beijing_date(submitted_at), clock.beijing_date(at)
        )
        expected.days.append(days)
    if action == "approve":
        expected.approved[type_] += 1
        expected.repaired_records += len(records) if type_ == "repair" else 0


def _figures(engine) -> dict:
    with engine.connect() as conn:
        return request_queries.public_figures(conn)


def same(figures: dict, expected: Expected) -> bool:
    """Equal, and as JSON too: a median of 2 is not shown as 2.0, nor 2.5 as 2."""
    as_json = json.dumps(figures, sort_keys=True)
    return figures == expected.figures() and as_json == json.dumps(
        expected.figures(), sort_keys=True
    )


def test_public_figures_of_a_few_hundred_requests_in_every_state(engine, tmp_path, monkeypatch):
    records = _publish(engine, tmp_path)
    approver, _ = users.add_user(engine, "wang", "approver", PASSWORD)
    expected = Expected()
    start = clock.now() - timedelta(days=30)
    still_received = []
    for i, n in enumerate(range(1, ENTITIES + 1)):
        type_ = "repair" if i % 2 == 0 else "objection"
        code = uscc(n)
        submitted_at = start + timedelta(hours=2 * i)
        tracking = _submit(engine, type_, code, records[code], submitted_at)
        expected.received[type_] += 1
        path = PATHS[i % len(PATHS)]
        for step, action in enumerate(path, start=1):
            # decided 0 to 12 days later (across weekends): varied working-day counts
            at = submitted_at + timedelta(days=(i % 13) * step / len(path), minutes=step)
            _act(
                engine, approver, tracking, type_, action, at, submitted_at, records[code], expected
            )
            # right after every decision: the median's middle moves through the distribution
            assert same(_figures(engine), expected), (i, action)
        if not path:
            still_received.append((tracking, type_, submitted_at, records[code]))
    assert len(set(expected.days)) > 5 and expected.repaired_records > expected.approved["repair"]
    assert same(_figures(engine), expected)

    # the home page shows the same figures, and keeps them a minute
    timer = [1000.0]
    monkeypatch.setattr(home.request_figures, "timer", lambda: timer[0])
    with make_client(engine) as client:
        assert same(client.get("/api/v1").json()["requests"], expected)
        # one more decision: the number of decisions changes parity, so does the median's rule
        tracking, type_, submitted_at, ids = still_received[0]
        decided_at = submitted_at + timedelta(days=3)
        _act(engine, approver, tracking, type_, "approve", decided_at, submitted_at, ids, expected)
        assert same(_figures(engine), expected)
        assert not same(client.get("/api/v1").json()["requests"], expected)  # kept a minute
        timer[0] += home.FIGURES_SECONDS
        assert same(client.get("/api/v1").json()["requests"], expected)
        assert f"已办结 {len(expected.days):,} 件" in client.get("/").text
