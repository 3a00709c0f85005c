"""A blacklist entry's 发布日期 is its issue's (黑榜期次: one date for every entry of the issue,
kept on the blacklist_issues row): an upheld objection on one entry may not correct it. It
rewrote the issue's date while the other entries kept the old one; now it is refused, with the
reason, and not offered as correctable. The identity's refusal is unchanged. On SQLite and
PostgreSQL, through publishing.review as the back office calls it."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select

from publishing import request_queries, review, users
from publishing.commit import EVENTS, ISSUES, RECORDS
from publishing.corrections import R_IDENTITY, correctable_fields
from publishing.publish import publish
from tests.factories import blacklist_row, write_csv
from tests.requests_support import submit_request

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
ISSUED = date(2026, 9, 1)  # blacklist_row's 发布日期


@pytest.fixture
def approver(engine):
    user, _ = users.add_user(engine, "wang", "approver", PASSWORD)
    return user


@pytest.fixture
def issue(engine, tmp_path) -> list[dict]:
    """One issue (2026年第9期) of two entries, published: their stored rows."""
    path = write_csv(tmp_path / "blacklist.csv", [blacklist_row(1), blacklist_row(2)])
    assert publish([path], engine=engine, show_progress=False).published
    return _entries(engine)


def _entries(engine) -> list[dict]:
    with engine.connect() as conn:
        query = select(RECORDS).where(RECORDS.c.kind == "blacklist").order_by(RECORDS.c.entity_id)
        return [dict(r) for r in conn.execute(query).mappings()]


def _issue_row(engine, issue_id: str) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(ISSUES).where(ISSUES.c.id == issue_id)).mappings().one())


def _events(engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(EVENTS.c.seq)).all())


@pytest.mark.parametrize("name", ["发布日期", "issued_on", " 发布 日期 "])
def test_one_entrys_issue_date_is_refused_and_nothing_changes(
    engine, approver, issue, name
):
    first, second = issue
    assert first["issue_id"] == second["issue_id"]
    before_issue, events = _issue_row(engine, first["issue_id"]), _events(engine)
    assert before_issue["issued_on"] == ISSUED
    tracking = submit_request(engine, "objection", first["id"], first["entity_id"])
    with pytest.raises(review.ReviewError) as refused:
        review.act(engine, tracking, approver, "approve", "异议成立，更正发布日期。",
                   outcome="correct", corrections={name: "2026-08-25"}, sync_search=False)
    assert refused.value.status == 422
    message = refused.value.errors["corrections"]
    assert f"字段 {name} 属于整期黑榜" in message and "不能只更正一条记录" in message
    assert "由数据文件重新报送该期" in message
    # the issue and both entries keep one date: nothing was written
    assert _issue_row(engine, first["issue_id"]) == before_issue
    assert _entries(engine) == issue and _events(engine) == events
    with engine.connect() as conn:
        assert request_queries.find(conn, tracking)["status"] == "received"


def test_the_identitys_refusal_stays_and_the_entrys_own_fields_are_corrected(
    engine, approver, issue
):
    first, second = issue
    tracking = submit_request(engine, "objection", first["id"], first["entity_id"])
    with pytest.raises(review.ReviewError) as refused:
        review.act(engine, tracking, approver, "approve", "异议成立，予以更正。",
                   outcome="correct", corrections={"期次": "2026年第8期", "发布日期": "2026-08-25"},
                   sync_search=False)
    message = refused.value.errors["corrections"]
    # the identity's refusal as before, then the issue's field
    assert R_IDENTITY.format(names="期次") in message
    assert "字段 发布日期 属于整期黑榜" in message
    assert _entries(engine) == issue
    # the same request then corrects what is the entry's own
    review.act(engine, tracking, approver, "approve", "异议成立，予以更正。", outcome="correct",
               corrections={"违法事实": "销售农药残留超标的芹菜"}, sync_search=False)
    corrected, other = _entries(engine)
    assert corrected["data"]["violation"] == "销售农药残留超标的芹菜"
    assert corrected["version"] == 2 and other == second
    assert _issue_row(engine, first["issue_id"])["issued_on"] == ISSUED


def test_the_form_does_not_offer_the_issue_date(engine, client, approver, issue):
    assert "issued_on" not in correctable_fields("blacklist")
    assert {"violation", "action", "address"} <= set(correctable_fields("blacklist"))
    first, _ = issue
    tracking = submit_request(engine, "objection", first["id"], first["entity_id"])
    page = client.get("/review/login")
    client.post("/review/login", data={"name": "wang", "password": PASSWORD,
                                       "csrf": CSRF.search(page.text).group(1)})
    page = client.get(f"/review/requests/{tracking}").text
    [offered] = re.findall(r"食品安全黑榜可更正的字段：([^。]*)。", page)
    assert "违法事实（violation）" in offered and "发布日期" not in offered
    # and the form says why it is not offered
    assert "发布日期属于整期黑榜，不能只更正一条" in page
