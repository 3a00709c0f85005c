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
