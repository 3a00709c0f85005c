"""An expiry keeps a correction's mark: a record corrected on an upheld objection that expires
is not replaced by the platform's uncorrected export when a later file brings it back with a
longer publicity period. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from publishing import review, users
from publishing.commit import EVENTS, RECORDS
from publishing.expire import expire
from publishing.publish import publish
from tests.factories import penalty_row, write_csv
from tests.requests_support import months_ago, publish_cases
from tests.test_review_holds import PASSWORD, _submit


def test_a_corrected_record_that_expired_does_not_come_back_uncorrected(engine, tmp_path):
    cases = publish_cases(engine, tmp_path)
    approver, _ = users.add_user(engine, "wang", "approver", PASSWORD)
    record = cases.other
    tracking = _submit(engine, cases, "objection", record, cases.other_uscc)
    review.act(engine, tracking, approver, "approve", "异议成立，更正罚款金额。",
               outcome="correct", corrections={"fine_yuan": "3000"}, sync_search=False)
    later = date.today() + timedelta(days=3 * 366)
    assert expire(engine, today=later)["expired"] >= 1
    with engine.connect() as conn:
        row = conn.execute(select(RECORDS).where(RECORDS.c.id == record)).mappings().one()
        op, reason = conn.execute(select(EVENTS.c.op, EVENTS.c.reason).where(
            EVENTS.c.record_id == record).order_by(EVENTS.c.seq.desc())).first()
    assert (row["status"], row["status_reason"]) == ("expired", "corrected")
    assert (op, reason) == ("expire", "expired")  # the change log says why it left
    # The platform publishes it again with a later end of publicity: its uncorrected content
    # must not return. What is stored is the correction, with its own (past) end of publicity.
    again = penalty_row(4, 处罚决定日期=months_ago(5), 领域="价格",
                        公示截止日期=(later + timedelta(days=30)).isoformat())
    path = write_csv(tmp_path / "again.csv", [again], header=[*again])
    result = publish([path], engine=engine, today=later, show_progress=False)
    assert result.published and result.reports[0].counts["held"] == 1
    assert result.reports[0].counts["added"] == 0
    with engine.connect() as conn:
        back = conn.execute(select(RECORDS).where(RECORDS.c.id == record)).mappings().one()
    assert (back["status"], back["status_reason"], back["data"]["fine_yuan"]) == (
        "expired", "corrected", "3000.00")


def test_a_corrected_credit_mark_keeps_its_correction_through_supersede_and_restore(
    engine, tmp_path
):
    from tests.factories import credit_mark_row

    approver, _ = users.add_user(engine, "wang", "approver", PASSWORD)
    mark = credit_mark_row(5, 分类结果="B", 标注日期="2026-01-10")
    original = write_csv(tmp_path / "m.csv", [mark])
    assert publish([original], engine=engine, show_progress=False).published
    with engine.connect() as conn:
        record = conn.execute(select(RECORDS.c.id).where(RECORDS.c.kind == "credit_mark")).scalar()
    tracking = _submit(engine, None, "objection", record, mark["统一社会信用代码"])
    review.act(engine, tracking, approver, "approve", "异议成立，更正分类结果。",
               outcome="correct", corrections={"grade": "A"}, sync_search=False)

    def state():
        with engine.connect() as conn:
            row = conn.execute(select(RECORDS).where(RECORDS.c.id == record)).mappings().one()
        return row["status"], row["status_reason"], row["data"]["grade"]

    assert state() == ("active", "corrected", "A")
    newer = credit_mark_row(5, 分类结果="C", 标注日期="2026-06-10")
    assert publish([write_csv(tmp_path / "n.csv", [newer])], engine=engine,
                   show_progress=False).published
    assert state() == ("superseded", "corrected", "A")
    withdraw = write_csv(tmp_path / "w.csv", [{**newer, "操作": "撤销"}])
    assert publish([withdraw], engine=engine, show_progress=False).published
    assert state() == ("active", "corrected", "A")  # current again, still corrected
    # the platform's original export again: the correction stands
    result = publish([original], engine=engine, show_progress=False)
    assert result.published and result.reports[0].counts["held"] == 1
    assert state() == ("active", "corrected", "A")
