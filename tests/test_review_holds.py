"""A decision on a request stays decided, also when the record had left publication before it
(withdrawn by a file or a snapshot, expired, superseded): a later file brings back neither a
record withdrawn on a credit repair or an upheld objection, nor the uncorrected content of one
corrected on an upheld objection; and the entity, merged again without a record so withdrawn,
is no longer found in search by a name only that record gave it. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from publishing import audit, review, users
from publishing.commit import EVENTS, PENDING, RECORDS
from publishing.expire import expire
from publishing.publish import publish
from tests.factories import credit_mark_row, penalty_row, uscc, write_csv
from tests.requests_support import months_ago, submit_request

PASSWORD = "correct horse battery staple"


@pytest.fixture
def approver(engine):
    user, _ = users.add_user(engine, "wang", "approver", PASSWORD)
    return user


def _run(engine, *paths, mode="incremental"):
    result = publish(list(paths), engine=engine, mode=mode, show_progress=False)
    assert result.published, result.as_json()
    return result.reports[0].counts


def _withdraw_file(tmp_path, n=1):
    """The file that withdraws case n of publish_cases (its decision number, 操作=撤销)."""
    dates = {1: (6, "广告"), 4: (5, "价格")}
    months, domain = dates[n]
    row = penalty_row(n, 处罚决定日期=months_ago(months), 领域=domain, 操作="撤销")
    return write_csv(tmp_path / f"withdraw{n}.csv", [row])


def _row(engine, record_id):
    with engine.connect() as conn:
        return conn.execute(select(RECORDS).where(RECORDS.c.id == record_id)).mappings().one()


def _events(engine, record_id=None):
    query = select(func.count()).select_from(EVENTS)
    if record_id:
        query = query.where(EVENTS.c.record_id == record_id)
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()


def _submit(engine, cases, type_, record, uscc):
    return submit_request(engine, type_, record, uscc)


@pytest.mark.parametrize("type_", ["repair", "objection"])
def test_a_withdrawal_decided_after_a_file_withdrew_the_record_is_held(
    engine, client, cases, approver, tmp_path, type_
):
    record = cases.repairable
    tracking = _submit(engine, cases, type_, record, cases.repairable_uscc)
    assert _run(engine, _withdraw_file(tmp_path))["withdrawn"] == 1
    before = _row(engine, record)
    assert (before["status"], before["status_reason"]) == ("withdrawn", "file")
    events = _events(engine)
    done = review.act(engine, tracking, approver, "approve", "准予，撤下公示。",
                      outcome="withdraw", sync_search=False)
    [change] = done.records
    assert change["after"]["note"] == review.NOTE_HOLD_WITHDRAWN
    after = _row(engine, record)
    # Nothing public changed: no change event, no new version; the decision is on the record.
    assert _events(engine) == events
    assert (after["status"], after["status_reason"], after["version"]) == (
        "withdrawn", type_, before["version"])
    # The platform's next export still holds the record: it stays withdrawn.
    counts = _run(engine, tmp_path / "cases.csv")
    assert counts["held"] == 1 and counts["added"] == 0
    assert client.get(f"/records/{record}").status_code == 410
    assert (_row(engine, record)["status"], _row(engine, record)["status_reason"]) == (
        "withdrawn", type_)
    assert audit.verify(engine) == (True, None)


def test_a_repair_decided_after_the_record_expired_is_held(engine, cases, approver):
    record = cases.repairable
    tracking = _submit(engine, cases, "repair", record, cases.repairable_uscc)
    expire(engine, today=date.today() + timedelta(days=3 * 366))
    assert _row(engine, record)["status"] == "expired"
    events = _events(engine)
    review.act(engine, tracking, approver, "approve", "准予信用修复。", sync_search=False)
    row = _row(engine, record)
    assert (row["status"], row["status_reason"]) == ("withdrawn", "repair")
    assert _events(engine) == events


def test_a_correction_decided_after_a_file_withdrew_the_record_is_what_comes_back(
    engine, client, cases, approver, tmp_path
):
    record = cases.other
    tracking = _submit(engine, cases, "objection", record, cases.other_uscc)
    _run(engine, _withdraw_file(tmp_path, 4))
    version = _row(engine, record)["version"]
    events = _events(engine)
    done = review.act(engine, tracking, approver, "approve", "异议成立，更正罚款金额。",
                      outcome="correct", corrections={"fine_yuan": "3000"}, sync_search=False)
    assert done.records[0]["after"]["note"] == review.NOTE_HOLD_CORRECTED
    assert _events(engine) == events  # withdrawn: nothing public changes yet
    held = _row(engine, record)
    assert (held["status"], held["status_reason"], held["version"]) == (
        "withdrawn", "corrected", version)
    assert held["data"]["fine_yuan"] == "3000.00"
    # The platform re-adds it with the uncorrected fine: the correction is what is published.
    counts = _run(engine, tmp_path / "cases.csv")
    assert (counts["added"], counts["held"]) == (1, 1)
    page = client.get(f"/api/v1/records/{record}")
    assert page.status_code == 200
    assert (page.json()["record"]["fine_yuan"], page.json()["record"]["version"]) == (
        "3000.00", version + 1)
    with engine.connect() as conn:
        last = conn.execute(
            select(EVENTS.c.op, EVENTS.c.version).where(EVENTS.c.record_id == record)
            .order_by(EVENTS.c.seq.desc())
        ).first()
    assert tuple(last) == ("add", version + 1)
    # ... and stays corrected: the same export again changes nothing.
    again = _run(engine, tmp_path / "cases.csv")
    assert again["held"] == 1 and again["added"] == 0 and again["changed"] == 0
    assert client.get(f"/api/v1/records/{record}").json()["record"]["fine_yuan"] == "3000.00"
    assert audit.verify(engine) == (True, None)


@pytest.mark.parametrize("how", ["file", "snapshot"])
def test_a_corrected_record_withdrawn_and_re_added_keeps_its_correction(
    engine, client, cases, approver, tmp_path, how
):
    record = cases.other
    tracking = _submit(engine, cases, "objection", record, cases.other_uscc)
    review.act(engine, tracking, approver, "approve", "异议成立，更正罚款金额。",
               outcome="correct", corrections={"fine_yuan": "3000"}, sync_search=False)
    if how == "file":
        _run(engine, _withdraw_file(tmp_path, 4))
    else:  # a snapshot of the kind without it
        rest = [penalty_row(1, 处罚决定日期=months_ago(6), 领域="广告")]
        _run(engine, write_csv(tmp_path / "rest.csv", rest), mode="snapshot")
    gone = _row(engine, record)
    assert (gone["status"], gone["status_reason"]) == ("withdrawn", "corrected")
    with engine.connect() as conn:
        last = conn.execute(
            select(EVENTS.c.op, EVENTS.c.reason).where(EVENTS.c.record_id == record)
            .order_by(EVENTS.c.seq.desc())
        ).first()
    assert tuple(last) == ("withdraw", how)  # the change log says why it left, as before
    assert client.get(f"/records/{record}").status_code == 410
    counts = _run(engine, tmp_path / "cases.csv")
    assert counts["added"] >= 1 and counts["held"] == 1
    assert client.get(f"/api/v1/records/{record}").json()["record"]["fine_yuan"] == "3000.00"


def test_a_decision_on_a_record_already_withdrawn_on_a_request_changes_nothing(
    engine, cases, approver
):
    """Two requests on one record: once the repair withdrew it, an upheld objection asking for
    a correction has nothing to do (and says so); the record stays withdrawn, uncorrected."""
    record = cases.repairable
    repair = _submit(engine, cases, "repair", record, cases.repairable_uscc)
    objection = _submit(engine, cases, "objection", record, cases.repairable_uscc)
    review.act(engine, repair, approver, "approve", "准予信用修复。", sync_search=False)
    before, events = _row(engine, record), _events(engine)
    done = review.act(engine, objection, approver, "approve", "异议成立。", outcome="correct",
                      corrections={"fine_yuan": "3000"}, sync_search=False)
    assert done.status == "approved"
    assert done.records[0]["after"]["note"] == review.NOTE_HELD
    assert _events(engine) == events and dict(_row(engine, record)) == dict(before)


def test_a_withdrawal_held_on_a_superseded_mark_takes_its_name_out_of_search(
    engine, client, approver, tmp_path
):
    """No change event (nothing public changed), yet the entity's search document follows the
    entity, which lost the former name that only the withdrawn mark carried: the decision's
    sync applies the record the writer noted in search_pending, and deletes the note."""
    from publishing.search.sync import sync

    entity, former = uscc(80), "烟台旧名八十有限公司"
    first = credit_mark_row(80, 主体名称=former, 标注日期="2025-01-10")
    _run(engine, write_csv(tmp_path / "a.csv", [first]))
    with engine.connect() as conn:
        record = conn.execute(select(RECORDS.c.id).where(RECORDS.c.entity_id == entity)).scalar()
    tracking = _submit(engine, None, "objection", record, entity)
    newer = credit_mark_row(80, 主体名称="烟台新名八十有限公司", 分类结果="C", 标注日期="2026-01-10")
    assert _run(engine, write_csv(tmp_path / "b.csv", [newer]))["superseded"] == 1
    sync(engine)

    def found() -> bool:
        hits = client.get("/api/v1/search", params={"q": former}).json()["hits"]
        return f"/entities/{entity}" in {h["url"] for h in hits}

    assert found()  # by its former name
    events = _events(engine)
    done = review.act(engine, tracking, approver, "approve", "异议成立，撤下公示。",
                      outcome="withdraw")
    assert done.records[0]["after"]["note"] == review.NOTE_HOLD_WITHDRAWN
    assert _events(engine) == events
    assert former not in client.get(f"/entities/{entity}").text
    assert not found()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(PENDING)).scalar_one() == 0
