"""Corrections on upheld objections, on SQLite and PostgreSQL, through the decision API: the
corrected dates decide the end of publicity as a file's would (有效期至 ends a credit mark's,
an explicit 公示截止日期 wins over the rules), a correction that ends publicity takes the
record out of every public output at once (op expire), and malformed decisions get 422."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from publishing import clock, read, request_queries, review, users
from publishing.commit import EVENTS, RECORDS
from publishing.expire import expire
from publishing.publish import publish
from publishing.rules import add_months
from tests.factories import credit_mark_row, penalty_row, uscc, write_csv
from tests.requests_support import PDF, fields, files, months_ago

PASSWORD = "correct horse battery staple"


@pytest.fixture
def approver(engine):
    user, _ = users.add_user(engine, "wang", "approver", PASSWORD)
    return user


@pytest.fixture
def bearer(engine, approver):
    return {"Authorization": f"Bearer {users.new_token(engine, 'wang')}"}


@pytest.fixture
def marks(engine, tmp_path):
    """Two 严重违法失信名单 marks (a list: the credit check reports them): entity 60's has no
    有效期至, entity 61's is valid until the end of 2027. {entity: record id}."""
    rows = [
        credit_mark_row(60, 标注类型="严重违法失信名单", 分类结果="", 标注日期="2026-01-10"),
        credit_mark_row(61, 标注类型="严重违法失信名单", 分类结果="", 标注日期="2026-01-10",
                        有效期至="2027-12-31"),
    ]
    path = write_csv(tmp_path / "marks.csv", rows, header=list(rows[1]))
    assert publish([path], engine=engine, show_progress=False).published
    with engine.connect() as conn:
        query = select(RECORDS.c.entity_id, RECORDS.c.id).where(RECORDS.c.kind == "credit_mark")
        return dict(conn.execute(query).all())


def _object(client, record: str, entity: str) -> str:
    """An objection to one record, filed through the API; its tracking number."""
    data = fields(type="objection", uscc=entity, record_ids=[record],
                  reason="记录内容与认定文书不一致，见附件。")
    data.pop("commitment")
    response = client.post("/api/v1/requests", data=data,
                           files=files(("proof.pdf", PDF, "application/pdf")))
    assert response.status_code == 201, response.text
    return response.json()["tracking_no"]


def _correct(client, bearer, tracking: str, corrections, reason="异议成立，予以更正。"):
    return client.post(
        f"/api/v1/review/requests/{tracking}/decision",
        json={"decision": "approve", "outcome": "correct", "reason": reason,
              "corrections": corrections},
        headers=bearer,
    )


def _form_correct(client, tracking: str, corrections: str):
    """The same decision through the back office's form (logged in as wang)."""
    csrf = re.compile(r'name="csrf" value="([^"]+)"')
    page = client.get("/review/login")
    client.post("/review/login", data={"name": "wang", "password": PASSWORD,
                                       "csrf": csrf.search(page.text).group(1)})
    page = client.get(f"/review/requests/{tracking}")
    assert page.status_code == 200, page.text[:300]
    return client.post(f"/review/requests/{tracking}", data={
        "csrf": csrf.search(page.text).group(1), "action": "approve", "outcome": "correct",
        "reason": "异议成立，予以更正。", "corrections": corrections})


def _row(engine, record: str):
    with engine.connect() as conn:
        return conn.execute(select(RECORDS).where(RECORDS.c.id == record)).mappings().one()


def _events(engine, record: str) -> list[tuple]:
    with engine.connect() as conn:
        query = (select(EVENTS.c.op, EVENTS.c.reason, EVENTS.c.version)
                 .where(EVENTS.c.record_id == record).order_by(EVENTS.c.seq))
        return [tuple(e) for e in conn.execute(query)]


def _listed(client, entity: str) -> bool:
    body = client.get("/api/v1/credit-check", params={"uscc": entity}).json()
    return body["results"][0]["listed"]


# -- the corrected dates decide the end of publicity ---------------------------------------------


def test_a_corrected_valid_until_ends_a_credit_marks_publicity(engine, client, bearer, marks):
    record, entity = marks[uscc(60)], uscc(60)
    assert _row(engine, record)["publicity_until"] is None  # no 有效期至: until superseded
    until = clock.today() + timedelta(days=90)
    done = _correct(client, bearer, _object(client, record, entity),
                    {"valid_until": until.isoformat()})
    assert done.status_code == 200, done.text
    row = _row(engine, record)
    assert (row["status"], row["version"], row["publicity_until"]) == ("active", 2, until)
    public = client.get(f"/api/v1/records/{record}").json()["record"]
    assert (public["valid_until"], public["publicity_until"]) == (until.isoformat(),) * 2
    assert _listed(client, entity)
    # The nightly expiry ends it on that date, as it would a file's 有效期至.
    assert expire(engine, today=until)["expired"] == 0
    assert expire(engine, today=until + timedelta(days=1))["expired"] == 1
    assert not _listed(client, entity)


def test_an_explicit_end_outlives_a_correction_of_what_the_rules_read(
    engine, client, bearer, marks, tmp_path
):
    # A mark's 有效期至 stays its end when its 标注日期 is corrected (the rules give marks none).
    record, entity = marks[uscc(61)], uscc(61)
    done = _correct(client, bearer, _object(client, record, entity), {"marked_on": "2026-02-01"})
    assert done.status_code == 200, done.text
    row = _row(engine, record)
    assert (row["event_date"], row["publicity_until"]) == (date(2026, 2, 1), date(2027, 12, 31))
    page = client.get(f"/records/{record}").text
    assert "2027-12-31" in page and "长期" not in page
    # A penalty's 公示截止日期 from its file stays when its 失信程度 is corrected (not the
    # rules' 36 months); the repair date follows the new severity.
    decided = date.fromisoformat(months_ago(5))
    row62 = penalty_row(62, 处罚决定日期=decided.isoformat(), 领域="价格", 公示截止日期="2027-06-30")
    assert publish([write_csv(tmp_path / "explicit.csv", [row62])], engine=engine,
                   show_progress=False).published
    with engine.connect() as conn:
        penalty = conn.execute(select(RECORDS.c.id).where(RECORDS.c.entity_id == uscc(62))).scalar()
    done = _correct(client, bearer, _object(client, penalty, uscc(62)), {"severity": "严重"})
    assert done.status_code == 200, done.text
    row = _row(engine, penalty)
    assert (row["publicity_until"], row["repairable_from"]) == (
        date(2027, 6, 30), add_months(decided, 12) + timedelta(days=1))


# -- a correction that ends publicity expires the record at once ---------------------------------


def _name(client, record: str) -> str:
    return client.get(f"/api/v1/records/{record}").json()["record"]["entity_name"]


def _in_search(client, name: str, record: str) -> bool:
    hits = client.get("/api/v1/search", params={"q": name}).json()["hits"]
    return record in {h["id"] for h in hits}


def _active(engine, kind: str) -> int:
    with engine.connect() as conn:
        return read.counts(conn)["by_kind"][kind]


@pytest.mark.parametrize(
    ("kind", "corrections"),
    [("penalty", {"decided_on": "2020-01-10"}), ("credit_mark", {"valid_until": "2026-02-01"})],
    ids=["penalty-decided-on", "mark-valid-until"],
)
def test_a_correction_that_ends_publicity_expires_the_record_at_once(
    engine, client, bearer, cases, marks, tmp_path, kind, corrections
):
    from publishing.search.sync import sync

    sync(engine)
    record, entity = (cases.other, cases.other_uscc) if kind == "penalty" else (
        marks[uscc(60)], uscc(60))
    name = _name(client, record)
    assert _in_search(client, name, record)
    active = _active(engine, kind)
    done = _correct(client, bearer, _object(client, record, entity), corrections)
    assert done.status_code == 200, done.text
    [result] = done.json()["records"]
    assert result["after"]["status"] == "expired" and result["after"]["version"] == 2
    # one new version, out of publication, still marked corrected; its event is the expiry
    row = _row(engine, record)
    assert (row["status"], row["status_reason"], row["version"]) == ("expired", "corrected", 2)
    assert row["publicity_until"] < clock.today()
    assert _events(engine, record) == [("add", None, 1), ("expire", "expired", 2)]
    # gone from every public output at once, not only after tonight's `disclosure expire`
    assert client.get(f"/records/{record}").status_code == 410
    assert not _in_search(client, name, record)
    assert _active(engine, kind) == active - 1
    feed = client.get(f"/feeds/{kind}.atom").text
    assert re.search(rf"<at:deleted-entry[^>]*{record}", feed), feed
    changes = client.get("/api/v1/changes", params={"since": 0}).json()
    assert json.dumps(changes).count('"expire"') >= 1
    assert not _listed(client, entity) and client.get(f"/entities/{entity}").status_code == 404
    assert expire(engine)["expired"] == 0  # nothing left for the nightly run
    # the platform's next file does not bring it back
    source = tmp_path / ("cases.csv" if kind == "penalty" else "marks.csv")
    publish([source], engine=engine, show_progress=False)
    assert client.get(f"/records/{record}").status_code == 410


# -- malformed decisions are refused (422), nothing written ---------------------------------------


def test_per_record_corrections_that_are_not_objects_are_refused(
    engine, client, bearer, cases, approver
):
    record = cases.other
    tracking = _object(client, record, cases.other_uscc)
    before = _row(engine, record)
    refused = _correct(client, bearer, tracking, {record: "x"})
    assert refused.status_code == 422, refused.text
    assert "更正内容应为对象" in refused.json()["errors"]["corrections"]
    listed = _correct(client, bearer, tracking, {record: ["fine_yuan", "3000"]})
    assert listed.status_code == 422, listed.text
    whole = _correct(client, bearer, tracking, ["fine_yuan", "3000"])  # not even per record
    assert whole.status_code == 422 and "更正内容应为对象" in whole.json()["errors"]["corrections"]
    form = _form_correct(client, tracking, json.dumps({record: "x"}))
    assert form.status_code == 422 and "更正内容应为对象" in form.text
    with pytest.raises(review.ReviewError) as err:
        review.act(engine, tracking, approver, "approve", "异议成立，予以更正。",
                   outcome="correct", corrections="fine_yuan=3000")  # type: ignore[arg-type]
    assert err.value.status == 422 and "更正内容应为对象" in err.value.errors["corrections"]
    assert dict(_row(engine, record)) == dict(before)
    with engine.connect() as conn:
        assert request_queries.find(conn, tracking)["status"] == "received"


def test_a_reason_that_is_not_text_is_refused(engine, client, bearer, cases, approver):
    tracking = _object(client, cases.other, cases.other_uscc)
    with pytest.raises(review.ReviewError) as err:
        review.act(engine, tracking, approver, "reject", ["a"])  # type: ignore[arg-type]
    assert err.value.status == 422 and err.value.errors == {"reason": "理由应为文字"}
    # the API passes it on as it came (it made "['a']" of it)
    refused = client.post(f"/api/v1/review/requests/{tracking}/decision",
                          json={"decision": "reject", "reason": ["a"]}, headers=bearer)
    assert refused.status_code == 422 and refused.json()["errors"] == {"reason": "理由应为文字"}
    with engine.connect() as conn:
        req = request_queries.find(conn, tracking)
    assert (req["status"], req["decision_reason"]) == ("received", None)
