"""`disclosure expire --recompute` settles the supersession of credit marks again, as publishing
their rows again would: marks stored before an ended newer mark superseded the older ones (the
older one left active beside it) are superseded. Nothing else changes: nothing is restored,
withdrawn marks stay, a mark of the same date stays. On SQLite and PostgreSQL."""

from __future__ import annotations

import copy
from datetime import date, timedelta

import pytest
from sqlalchemy import Engine, func, select, update

from publishing import clock, creditcheck, worker
from publishing.commit import BATCHES, EVENTS, RECORDS
from publishing.expire import expire
from publishing.publish import publish
from publishing.rules import Rules, load_rules
from publishing.search.embedded import EmbeddedSearch
from tests.factories import credit_mark_row, uscc, write_csv

TODAY = date(2026, 11, 27)
LIST = "经营异常名录"
HEADER = [*credit_mark_row(1), "有效期至", "操作"]


def mark(marked_on: str, until: str = "", op: str = "新增") -> dict[str, str]:
    return credit_mark_row(1, 标注类型=LIST, 分类结果="", 标注日期=marked_on, 有效期至=until, 操作=op)


def publish_marks(engine: Engine, tmp_path, name: str, *rows: dict[str, str],
                  today: date = TODAY, rules: Rules | None = None) -> None:
    result = publish([write_csv(tmp_path / name, list(rows), header=HEADER)], engine=engine,
                     today=today, rules=rules, show_progress=False)
    assert result.published, result.as_json()


def marks(engine: Engine) -> dict[str, str]:
    """Status of each stored mark by its 标注日期."""
    with engine.connect() as conn:
        rows = conn.execute(select(RECORDS.c.event_date, RECORDS.c.status)
                            .where(RECORDS.c.kind == "credit_mark"))
        return {day.isoformat(): status for day, status in rows}


def make_current(engine: Engine, marked_on: str, status: str = "active") -> None:
    """Store the mark as code from before plan.SUPERSEDING left it: current beside the newer
    ended mark (what the fix superseded is set back)."""
    with engine.begin() as conn:
        conn.execute(update(RECORDS).where(RECORDS.c.kind == "credit_mark",
                                           RECORDS.c.event_date == date.fromisoformat(marked_on))
                     .values(status=status, status_reason=None))


def head(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.coalesce(func.max(EVENTS.c.seq), 0))).scalar_one()


def events_since(engine: Engine, seq: int) -> list[tuple[str, str | None, str]]:
    with engine.connect() as conn:
        query = (select(EVENTS.c.op, EVENTS.c.reason, RECORDS.c.event_date)
                 .join(RECORDS, RECORDS.c.id == EVENTS.c.record_id)
                 .where(EVENTS.c.seq > seq).order_by(EVENTS.c.seq))
        return [(op, reason, day.isoformat()) for op, reason, day in conn.execute(query)]


def batches(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(BATCHES)).scalar_one()


def listed(engine: Engine, today: date = TODAY) -> bool:
    with engine.connect() as conn:
        [result] = creditcheck.check(conn, [uscc(1)], today=today, rules=load_rules())["results"]
    return result["listed"]


def old_data(engine: Engine, tmp_path) -> None:
    """A 2025 mark left active beside the newer mark of 2026, which has ended."""
    publish_marks(engine, tmp_path, "a.csv", mark("2025-03-01"))
    publish_marks(engine, tmp_path, "b.csv", mark("2026-01-01", "2026-06-30"))
    make_current(engine, "2025-03-01")
    assert marks(engine) == {"2025-03-01": "active", "2026-01-01": "expired"}
    assert listed(engine)


def test_recompute_supersedes_a_mark_left_current_beside_an_ended_newer_one(engine, tmp_path):
    old_data(engine, tmp_path)
    seq = head(engine)
    counts = expire(engine, today=TODAY, recompute=True)
    assert counts["superseded"] == 1
    assert marks(engine) == {"2025-03-01": "superseded", "2026-01-01": "expired"}
    assert events_since(engine, seq) == [("withdraw", "superseded", "2025-03-01")]
    assert not listed(engine)
    # settled: a second run changes nothing
    seq = head(engine)
    again = expire(engine, today=TODAY, recompute=True)
    assert again["superseded"] == 0 and events_since(engine, seq) == []
    assert marks(engine) == {"2025-03-01": "superseded", "2026-01-01": "expired"}


def test_a_dry_run_counts_it_and_writes_nothing(engine, tmp_path):
    old_data(engine, tmp_path)
    seq, runs = head(engine), batches(engine)
    assert expire(engine, today=TODAY, recompute=True, dry_run=True)["superseded"] == 1
    assert marks(engine) == {"2025-03-01": "active", "2026-01-01": "expired"}
    assert (head(engine), batches(engine)) == (seq, runs)
    assert listed(engine)


def test_a_plain_expiry_leaves_supersession_to_the_recompute(engine, tmp_path):
    old_data(engine, tmp_path)
    assert "superseded" not in expire(engine, today=TODAY)
    assert marks(engine)["2025-03-01"] == "active"


@pytest.mark.parametrize("made_public", [False, True])
def test_a_statistics_only_mark_is_superseded_quietly(engine, tmp_path, made_public):
    """Also when the scheme is public again: superseded first, it is not published again."""
    raw = copy.deepcopy(load_rules().raw)
    raw["credit_mark"]["schemes"][LIST]["public"] = False
    hidden = Rules(raw)
    publish_marks(engine, tmp_path, "a.csv", mark("2025-03-01"), rules=hidden)
    publish_marks(engine, tmp_path, "b.csv", mark("2026-01-01", "2026-06-30"), rules=hidden)
    make_current(engine, "2025-03-01", "aggregate")
    seq = head(engine)
    rules = load_rules() if made_public else hidden
    counts = expire(engine, today=TODAY, rules=rules, recompute=True)
    assert counts["superseded"] == 1 and counts["republished"] == 0
    assert marks(engine) == {"2025-03-01": "superseded", "2026-01-01": "expired"}
    assert events_since(engine, seq) == []


def test_nothing_is_restored_and_withdrawn_marks_stay(engine, tmp_path):
    publish_marks(engine, tmp_path, "a.csv", mark("2024-06-01"))
    publish_marks(engine, tmp_path, "b.csv", mark("2025-03-01"))
    publish_marks(engine, tmp_path, "c.csv", mark("2026-01-01", "2026-06-30"))
    publish_marks(engine, tmp_path, "d.csv", mark("2026-08-01"))
    publish_marks(engine, tmp_path, "w.csv", mark("2026-08-01", op="撤销"))
    make_current(engine, "2025-03-01")
    expire(engine, today=TODAY, recompute=True)
    # the withdrawn 2026-08 mark supersedes nothing, and is not brought back
    assert marks(engine) == {"2024-06-01": "superseded", "2025-03-01": "superseded",
                             "2026-01-01": "expired", "2026-08-01": "withdrawn"}


def test_a_mark_of_the_same_date_stays(engine, tmp_path):
    """Only an older mark is superseded (plan.older_rivals): two marks of a group share a date
    only after a correction, and the planner leaves both as they are."""
    publish_marks(engine, tmp_path, "a.csv", mark("2025-03-01"))
    publish_marks(engine, tmp_path, "b.csv", mark("2026-01-01", "2026-06-30"))
    with engine.begin() as conn:
        conn.execute(update(RECORDS).where(RECORDS.c.event_date == date(2025, 3, 1))
                     .values(status="active", status_reason="corrected",
                             event_date=date(2026, 1, 1)))
    assert expire(engine, today=TODAY, recompute=True)["superseded"] == 0
    with engine.connect() as conn:
        assert sorted(conn.execute(select(RECORDS.c.status)).scalars()) == ["active", "expired"]


def test_a_mark_past_its_own_end_is_expired_not_superseded(engine, tmp_path):
    """As its row published again: a mark whose 有效期至 has passed is expired, whatever else."""
    earlier = date(2026, 9, 1)
    publish_marks(engine, tmp_path, "a.csv", mark("2025-03-01", "2026-10-31"), today=earlier)
    publish_marks(engine, tmp_path, "b.csv", mark("2026-01-01", "2026-06-30"), today=earlier)
    make_current(engine, "2025-03-01")
    seq = head(engine)
    counts = expire(engine, today=TODAY, recompute=True)
    assert (counts["expired"], counts["superseded"]) == (1, 0)
    assert marks(engine) == {"2025-03-01": "expired", "2026-01-01": "expired"}
    assert events_since(engine, seq) == [("expire", "expired", "2025-03-01")]


def test_the_workers_recompute_settles_it_too(engine, tmp_path):
    """The nightly expiry recomputes when the rules changed (here: none recorded yet)."""
    EmbeddedSearch(engine).rebuild([])
    today = clock.today()
    day = lambda n: (today - timedelta(days=n)).isoformat()  # noqa: E731
    publish_marks(engine, tmp_path, "a.csv", mark(day(400)), today=today)
    publish_marks(engine, tmp_path, "b.csv", mark(day(200), day(10)), today=today)
    make_current(engine, day(400))
    night = worker.job_expire(engine)
    assert night["recomputed"] is True and night["superseded"] == 1
    assert marks(engine) == {day(400): "superseded", day(200): "expired"}
    assert not listed(engine, today)
