"""A credit mark whose 有效期至 lies before its own 标注日期 (a mistyped date: such rows are
rejected at intake now, older ones are stored as expired) supersedes nothing: not on
`disclosure expire --recompute`, not when an older row is published again, not after a
correction, and it does not stop a restoration. A mark that really ended (on or after its date)
still supersedes the older ones. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine, select, update

from publishing import creditcheck, users
from publishing.commit import RECORDS
from publishing.expire import _unsettled_groups, expire
from publishing.models import ACTIVE, AGGREGATE, EXPIRED, SUPERSEDED, WITHDRAWN
from publishing.plan import SUPERSEDES_SQL, is_superseding, supersedes
from publishing.publish import publish
from publishing.rules import load_rules
from tests.factories import credit_mark_row, uscc, write_csv
from tests.requests_support import submit_request
from tests.test_recompute_supersession import events_since, head

TODAY = date(2026, 11, 27)
LIST = "经营异常名录"
HEADER = [*credit_mark_row(1), "有效期至", "操作"]
CURRENT_ONE, TYPO = "2026-01-05", "2026-05-10"  # the review's repro: TYPO "ends" 2026-04-10
PASSWORD = "correct horse battery staple"


def mark(marked_on: str, until: str = "", op: str = "新增") -> dict[str, str]:
    return credit_mark_row(1, 标注类型=LIST, 分类结果="", 标注日期=marked_on, 有效期至=until, 操作=op)


def publish_marks(engine: Engine, tmp_path, name: str, *rows: dict[str, str],
                  today: date = TODAY) -> dict:
    result = publish([write_csv(tmp_path / name, list(rows), header=HEADER)], engine=engine,
                     today=today, show_progress=False)
    assert result.published, result.as_json()
    return result.as_json() | {"events": result.events}


def marks(engine: Engine) -> dict[str, str]:
    """Status of each stored mark by its 标注日期."""
    with engine.connect() as conn:
        rows = conn.execute(select(RECORDS.c.event_date, RECORDS.c.status)
                            .where(RECORDS.c.kind == "credit_mark"))
        return {day.isoformat(): status for day, status in rows}


def set_mark(engine: Engine, marked_on: str, **values) -> None:
    """Store a mark as code from before the intake check (or plan.SUPERSEDING) left it."""
    with engine.begin() as conn:
        conn.execute(update(RECORDS).where(RECORDS.c.kind == "credit_mark",
                                           RECORDS.c.event_date == date.fromisoformat(marked_on))
                     .values(**values))


def end_before_its_date(engine: Engine, marked_on: str = TYPO, until: str = "2026-04-10") -> None:
    set_mark(engine, marked_on, publicity_until=date.fromisoformat(until))


def make_current(engine: Engine, marked_on: str) -> None:
    set_mark(engine, marked_on, status=ACTIVE, status_reason=None)


def listed(engine: Engine) -> bool:
    with engine.connect() as conn:
        [result] = creditcheck.check(conn, [uscc(1)], today=TODAY, rules=load_rules())["results"]
    return result["listed"]


def old_data(engine: Engine, tmp_path) -> None:
    """The review's repro as code from before the intake check stored it: the current listing
    of 2026-01-05 beside the 2026-05-10 one whose 有效期至 was typed as 2026-04-10."""
    publish_marks(engine, tmp_path, "a.csv", mark(CURRENT_ONE))
    publish_marks(engine, tmp_path, "b.csv", mark(TYPO, "2026-06-30"))
    end_before_its_date(engine)
    make_current(engine, CURRENT_ONE)
    assert marks(engine) == {CURRENT_ONE: ACTIVE, TYPO: EXPIRED}
    assert listed(engine)


# -- the predicate --------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "until", "expected"), [
    (ACTIVE, None, True), (AGGREGATE, "2027-01-01", True),
    (EXPIRED, "2026-06-30", True), (EXPIRED, TYPO, True),  # ended on its own date: a real end
    (EXPIRED, "2026-05-09", False), (EXPIRED, None, False),
    (SUPERSEDED, "2027-01-01", False), (WITHDRAWN, "2026-06-30", False),
])
def test_which_marks_supersede(status, until, expected):
    end = date.fromisoformat(until) if until else None
    assert supersedes(status, date.fromisoformat(TYPO), end) is expected


def test_the_sql_condition_is_the_same_test(engine, tmp_path):
    """SUPERSEDES_SQL (expire's candidate query) decides as is_superseding on every stored mark."""
    publish_marks(engine, tmp_path, "a.csv", mark("2024-03-01"))
    publish_marks(engine, tmp_path, "b.csv", mark("2025-03-01", "2025-03-01"))
    publish_marks(engine, tmp_path, "c.csv", mark("2025-09-01", "2026-02-01"))
    publish_marks(engine, tmp_path, "d.csv", mark("2026-03-01"))
    publish_marks(engine, tmp_path, "e.csv", mark(TYPO, "2026-06-30"))
    end_before_its_date(engine)
    make_current(engine, "2026-03-01")
    set_mark(engine, "2025-09-01", publicity_until=None)
    with engine.connect() as conn:
        rows = conn.execute(select(RECORDS.c.status, RECORDS.c.event_date,
                                   RECORDS.c.publicity_until, SUPERSEDES_SQL.label("sql"))).all()
    assert {r.status for r in rows} == {SUPERSEDED, EXPIRED, ACTIVE}
    assert [bool(r.sql) for r in rows] == [is_superseding(r) for r in rows]
    assert sum(is_superseding(r) for r in rows) == 2  # 2025-03-01 (ended that day), 2026-03-01


# -- expire --recompute ---------------------------------------------------------------------


def test_recompute_leaves_the_current_mark_beside_one_that_ended_before_its_date(
        engine, tmp_path):
    old_data(engine, tmp_path)
    with engine.connect() as conn:
        assert _unsettled_groups(conn) == []  # the candidate query applies the condition too
    seq = head(engine)
    counts = expire(engine, today=TODAY, recompute=True)
    assert counts["superseded"] == 0
    assert marks(engine) == {CURRENT_ONE: ACTIVE, TYPO: EXPIRED}
    assert events_since(engine, seq) == []
    assert listed(engine)


def test_recompute_settles_a_group_against_its_newest_real_mark(engine, tmp_path):
    """The newest superseding mark is the current 2026-03-01 one, not the later mistyped one:
    only the 2025 mark (left current beside the ended 2026-01-01 one) is superseded."""
    publish_marks(engine, tmp_path, "d.csv", mark("2025-03-01"))
    publish_marks(engine, tmp_path, "c.csv", mark("2026-01-01", "2026-06-30"))
    publish_marks(engine, tmp_path, "a.csv", mark("2026-03-01"))
    publish_marks(engine, tmp_path, "b.csv", mark(TYPO, "2026-06-30"))
    end_before_its_date(engine)
    make_current(engine, "2025-03-01")
    make_current(engine, "2026-03-01")
    seq = head(engine)
    assert expire(engine, today=TODAY, recompute=True)["superseded"] == 1
    assert marks(engine) == {"2025-03-01": SUPERSEDED, "2026-01-01": EXPIRED,
                             "2026-03-01": ACTIVE, TYPO: EXPIRED}
    assert events_since(engine, seq) == [("withdraw", "superseded", "2025-03-01")]
    assert listed(engine)


@pytest.mark.parametrize("until", [TYPO, "2026-06-30"])  # on its own date, or after it
def test_recompute_still_supersedes_by_a_mark_that_really_ended(engine, tmp_path, until):
    publish_marks(engine, tmp_path, "a.csv", mark(CURRENT_ONE))
    publish_marks(engine, tmp_path, "b.csv", mark(TYPO, until))
    assert marks(engine) == {CURRENT_ONE: SUPERSEDED, TYPO: EXPIRED}
    make_current(engine, CURRENT_ONE)
    seq = head(engine)
    assert expire(engine, today=TODAY, recompute=True)["superseded"] == 1
    assert marks(engine) == {CURRENT_ONE: SUPERSEDED, TYPO: EXPIRED}
    assert events_since(engine, seq) == [("withdraw", "superseded", CURRENT_ONE)]
    assert not listed(engine)


# -- publishing -----------------------------------------------------------------------------


def test_the_current_row_published_again_stays_current(engine, tmp_path):
    old_data(engine, tmp_path)
    seq = head(engine)
    report = publish_marks(engine, tmp_path, "a2.csv", mark(CURRENT_ONE))
    assert report["events"] == 0 and report["unchanged"] == 1
    assert marks(engine) == {CURRENT_ONE: ACTIVE, TYPO: EXPIRED}
    assert events_since(engine, seq) == []
    assert listed(engine)


def test_an_older_mark_arriving_after_one_that_ended_before_its_date_is_published(
        engine, tmp_path):
    publish_marks(engine, tmp_path, "b.csv", mark(TYPO, "2026-06-30"))
    end_before_its_date(engine)
    report = publish_marks(engine, tmp_path, "a.csv", mark(CURRENT_ONE))
    assert report["added"] == 1 and not report.get("stored_superseded")
    assert marks(engine) == {CURRENT_ONE: ACTIVE, TYPO: EXPIRED}
    assert listed(engine)


@pytest.mark.parametrize("until", [TYPO, "2026-06-30"])
def test_an_older_mark_arriving_after_one_that_really_ended_is_superseded(
        engine, tmp_path, until):
    publish_marks(engine, tmp_path, "b.csv", mark(TYPO, until))
    report = publish_marks(engine, tmp_path, "a.csv", mark(CURRENT_ONE))
    assert report["events"] == 0 and report["stored_superseded"] == 1
    assert not listed(engine)


def test_withdrawing_the_newest_mark_restores_past_one_that_ended_before_its_date(
        engine, tmp_path):
    """restorable passes over the mistyped mark: the entity's 2026-01-05 mark is current
    again, as if the mistyped one were not there."""
    publish_marks(engine, tmp_path, "a.csv", mark(CURRENT_ONE))
    publish_marks(engine, tmp_path, "b.csv", mark(TYPO, "2026-06-30"))
    publish_marks(engine, tmp_path, "c.csv", mark("2026-08-01"))
    end_before_its_date(engine)
    assert marks(engine) == {CURRENT_ONE: SUPERSEDED, TYPO: EXPIRED, "2026-08-01": ACTIVE}
    report = publish_marks(engine, tmp_path, "w.csv", mark("2026-08-01", op="撤销"))
    assert report["withdrawn"] == 1 and report["restored"] == 1
    assert marks(engine) == {CURRENT_ONE: ACTIVE, TYPO: EXPIRED, "2026-08-01": WITHDRAWN}
    assert listed(engine)


# -- a correction on an upheld objection ------------------------------------------------------


def test_a_corrected_current_mark_is_not_superseded_by_one_that_ended_before_its_date(
        engine, client, tmp_path):
    """review._settle_mark weighs the corrected mark against its group as the planner does."""
    users.add_user(engine, "wang", "approver", PASSWORD)
    bearer = {"Authorization": f"Bearer {users.new_token(engine, 'wang')}"}
    old_data(engine, tmp_path)
    with engine.connect() as conn:
        current = conn.execute(select(RECORDS.c.id).where(
            RECORDS.c.event_date == date.fromisoformat(CURRENT_ONE))).scalar_one()
    seq = head(engine)
    tracking = submit_request(engine, "objection", current, uscc(1))
    done = client.post(
        f"/api/v1/review/requests/{tracking}/decision",
        json={"decision": "approve", "outcome": "correct", "reason": "异议成立，予以更正。",
              "corrections": {"marked_on": "2026-01-06"}},
        headers=bearer,
    )
    assert done.status_code == 200, done.text
    assert marks(engine) == {"2026-01-06": ACTIVE, TYPO: EXPIRED}
    assert events_since(engine, seq) == [("change", "objection", "2026-01-06")]
    assert listed(engine)
