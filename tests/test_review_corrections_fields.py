"""Which fields an upheld objection may correct, on SQLite and PostgreSQL: every public field of
the record's kind (the entity's name, legal representative, address and district too) but the
record's identity, named by key or by the contract's Chinese header and its aliases, cleaned and
masked as a file's cell of that column. And the back office's forms: the queue's footnote only
with a provisional deadline, the decision form only with the actions the request's state allows.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from publishing import request_queries, users
from publishing.commit import EVENTS, RECORDS
from publishing.corrections import correctable_fields
from publishing.publish import publish
from publishing.request_models import REQUESTS
from tests.factories import (
    blacklist_row,
    credit_mark_row,
    pledge_row,
    uscc,
    write_csv,
    write_ndjson,
)
from tests.requests_support import submit_request

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def bearer(engine) -> dict[str, str]:
    users.add_user(engine, "wang", "approver", PASSWORD)
    users.add_user(engine, "li", "reviewer", PASSWORD)
    return {"Authorization": f"Bearer {users.new_token(engine, 'wang')}"}


def _login(client, name: str = "wang") -> None:
    page = client.get("/review/login")
    done = client.post("/review/login", data={"name": name, "password": PASSWORD,
                                              "csrf": CSRF.search(page.text).group(1)})
    assert done.status_code == 303, done.text[:300]


def _form(client, tracking: str, action: str = "approve", **data):
    page = client.get(f"/review/requests/{tracking}")
    assert page.status_code == 200, page.text[:300]
    return client.post(f"/review/requests/{tracking}", data={
        "csrf": CSRF.search(page.text).group(1), "action": action,
        "reason": "异议成立，予以更正。", **data})


def _api(client, bearer, tracking: str, corrections):
    return client.post(
        f"/api/v1/review/requests/{tracking}/decision",
        json={"decision": "approve", "outcome": "correct", "reason": "异议成立，予以更正。",
              "corrections": corrections},
        headers=bearer,
    )


def _record(client, record: str) -> dict:
    return client.get(f"/api/v1/records/{record}").json()["record"]


def _stored(engine, record: str) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(RECORDS).where(RECORDS.c.id == record)).mappings().one())


def _event_count(engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(EVENTS.c.seq)).all())


def _status(engine, tracking: str) -> str:
    with engine.connect() as conn:
        return request_queries.find(conn, tracking)["status"]


# -- which fields -------------------------------------------------------------------------------


def test_every_public_field_but_the_identity_is_correctable():
    penalty = correctable_fields("penalty")
    for key in ("entity_name", "legal_rep", "address", "district", "fine_yuan", "facts"):
        assert key in penalty
    # the record id is the digest of the decision number (and the entity's code)
    for key in ("decision_no", "uscc", "reg_no", "publicity_until", "fine_wan", "op"):
        assert key not in penalty
    blacklist = correctable_fields("blacklist")
    assert {"violation", "action", "address", "responsible_persons"} <= set(blacklist)
    assert not {"publisher", "issue_no", "products"} & set(blacklist)
    pledge = correctable_fields("return_pledge")
    assert {"conditions", "exclusions", "category", "entity_name"} <= set(pledge)
    assert "address" not in pledge and "status" not in pledge  # a pledge's key; the withdrawal
    # a mark's scheme and domain move it among its group's marks (test_review_supersession)
    assert {"scheme", "domain", "marked_on", "reason", "address"} <= set(
        correctable_fields("credit_mark"))


# -- a non-penalty field reaches every public output ----------------------------------------------


def test_a_corrected_address_reaches_the_record_the_entity_and_open_data(
    engine, client, cases, bearer, tmp_path
):
    record, entity = cases.other, cases.other_uscc
    old = "烟台市芝罘区南大街4号"
    assert _record(client, record)["address"] == old
    tracking = submit_request(engine, "objection", record, entity)
    _login(client)
    # Chinese headers (an alias too: 负责人 is the file readers' name for 法定代表人)
    done = _form(client, tracking, outcome="correct",
                 corrections="住所=烟台市芝罘区北大街88号\n负责人=李四")
    assert done.status_code == 303, done.text[-2000:]
    public = _record(client, record)
    assert (public["address"], public["legal_rep"], public["version"]) == (
        "烟台市芝罘区北大街88号", "李四", 2)
    page = client.get(f"/records/{record}").text
    assert "烟台市芝罘区北大街88号" in page and old not in page
    csv = client.get("/open-data/penalty.csv").text
    assert "烟台市芝罘区北大街88号" in csv and old not in csv
    profile = client.get(f"/entities/{entity}").text
    assert "烟台市芝罘区北大街88号" in profile and old not in profile
    # The platform's next file still has the old address: held, the correction stays.
    again = publish([tmp_path / "cases.csv"], engine=engine, show_progress=False)
    assert again.published and again.as_json()["held"] == 1
    assert _record(client, record)["address"] == "烟台市芝罘区北大街88号"


KINDS = {
    "blacklist": ("b.csv", [blacklist_row(80)], {"违法事实": "销售农药残留超标的芹菜",
                                                 "住所": "烟台市芝罘区西大街1号"},
                  {"violation": "销售农药残留超标的芹菜", "address": "烟台市芝罘区西大街1号"}),
    "credit_mark": ("m.csv", [credit_mark_row(81, 分类结果="", 标注类型="严重违法失信名单")],
                    {"事由": "未按规定履行公示义务", "法定代表人": "王五"},
                    {"reason": "未按规定履行公示义务", "legal_rep": "王五"}),
    "return_pledge": ("p.ndjson", [pledge_row(82)], {"除外商品": "生鲜食品", "商户名称": "烟台测试82购物中心"},
                      {"exclusions": "生鲜食品", "entity_name": "烟台测试82购物中心"}),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_other_kinds_fields_are_corrected_by_their_chinese_names(
    engine, client, bearer, tmp_path, kind
):
    name, rows, corrections, expected = KINDS[kind]
    path = tmp_path / name
    (write_ndjson if name.endswith("ndjson") else write_csv)(path, rows)
    assert publish([path], engine=engine, show_progress=False).published
    with engine.connect() as conn:
        record, entity = conn.execute(
            select(RECORDS.c.id, RECORDS.c.entity_id).where(RECORDS.c.kind == kind)).one()
    done = _api(client, bearer, submit_request(engine, "objection", record, entity), corrections)
    assert done.status_code == 200, done.text
    public = _record(client, record)
    assert {k: public[k] for k in expected} == expected and public["version"] == 2


# -- cleaned and masked as a file's cell ----------------------------------------------------------


@pytest.mark.parametrize(
    ("corrections", "message"),
    [
        # the entity's columns are named by their Chinese label too, not by key twice
        ({"所属区市": "火星区"}, "所属区市（district）：所属区市无法识别"),
        ({"当事人名称": " "}, "（entity_name）：必填项为空"),
        ({"处罚决定日期": "2026-02-30"}, "日期不存在"),
        ({"罚款金额(元)": "13812345678"}, "疑似个人信息"),
    ],
    ids=["district", "required-name", "date", "personal-number"],
)
def test_an_invalid_corrected_value_is_refused_as_a_files_cell(
    engine, client, cases, bearer, corrections, message
):
    tracking = submit_request(engine, "objection", cases.other, cases.other_uscc)
    before, events = _stored(engine, cases.other), _event_count(engine)
    refused = _api(client, bearer, tracking, corrections)
    assert refused.status_code == 422, refused.text
    assert message in refused.json()["errors"]["corrections"]
    assert _stored(engine, cases.other) == before and _event_count(engine) == events
    assert _status(engine, tracking) == "received"


def test_personal_data_in_a_corrected_text_is_masked_and_a_district_normalised(
    engine, client, cases, bearer
):
    tracking = submit_request(engine, "objection", cases.other, cases.other_uscc)
    done = _api(client, bearer, tracking, {
        "legal_rep": "王五（身份证370602199001011234，电话13812345678）",
        "address": "烟台市福山区河滨路1号 联系13812345678",
        "district": "福山",
    })
    assert done.status_code == 200, done.text
    public = _record(client, cases.other)
    for key in ("legal_rep", "address"):
        assert "13812345678" not in public[key] and "138****5678" in public[key]
    assert "199001011234" not in public["legal_rep"]
    assert (public["district_code"], public["district"]) == ("370611", "福山区")
    stored = _stored(engine, cases.other)
    assert stored["district"] == "370611" and "13812345678" not in str(stored["data"])
    with engine.connect() as conn:
        [district] = conn.execute(select(EVENTS.c.district).where(
            EVENTS.c.record_id == cases.other, EVENTS.c.op == "change")).scalars().all()
    assert district == "370611"


# -- names: the contract's Chinese headers and aliases ---------------------------------------------


def test_chinese_headers_and_aliases_name_the_fields(engine, client, cases, bearer):
    tracking = submit_request(engine, "objection", cases.other, cases.other_uscc)
    _login(client)
    # full-width brackets and an IME's full-width equals sign, as a reviewer types them
    done = _form(client, tracking, outcome="correct", corrections="罚款金额（元）＝7500")
    assert done.status_code == 303, done.text[-2000:]
    assert _record(client, cases.other)["fine_yuan"] == "7500.00"
    again = submit_request(engine, "objection", cases.other, cases.other_uscc)
    done = _api(client, bearer, again, {"主要违法事实": "当事人经营超过保质期的糕点。"})
    assert done.status_code == 200, done.text
    assert _record(client, cases.other)["facts"] == "当事人经营超过保质期的糕点。"


def test_a_field_named_twice_is_refused(engine, client, cases, bearer):
    tracking = submit_request(engine, "objection", cases.other, cases.other_uscc)
    refused = _api(client, bearer, tracking, {"fine_yuan": "1000", "罚款金额(元)": "2000"})
    assert refused.status_code == 422 and "重复给出" in refused.json()["errors"]["corrections"]


# -- the identity is refused ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "corrections",
    [{"decision_no": "烟芝市监罚〔2026〕99号"}, {"决定书文号": "烟芝市监罚〔2026〕99号"},
     {"统一社会信用代码": "913706020000000000"}],
    ids=["decision-no", "decision-no-alias", "uscc"],
)
def test_the_records_identity_is_refused(engine, client, cases, bearer, corrections):
    tracking = submit_request(engine, "objection", cases.other, cases.other_uscc)
    before = _stored(engine, cases.other)
    refused = _api(client, bearer, tracking, corrections)
    assert refused.status_code == 422, refused.text
    message = refused.json()["errors"]["corrections"]
    assert "是记录的标识，不能更正" in message and "撤下公示" in message
    assert _stored(engine, cases.other) == before


def test_an_unknown_field_is_refused_naming_the_correctable_ones_in_chinese(
    engine, client, cases, bearer
):
    tracking = submit_request(engine, "objection", cases.other, cases.other_uscc)
    _login(client)
    refused = _form(client, tracking, outcome="correct", corrections="状态=active")
    assert refused.status_code == 422
    listed = re.search(r"字段 状态 不能更正（可更正：([^）]+)）", refused.text)
    assert listed, refused.text[-3000:]
    names = listed.group(1).split("、")
    assert {"住所", "法定代表人", "罚款金额(元)", "违法事实"} <= set(names)
    assert "行政处罚决定书文号" not in names and "fine_yuan" not in names
    # the form says the same before anything is typed
    page = client.get(f"/review/requests/{tracking}").text
    assert "行政处罚可更正的字段：" in page and "住所（address）" in page
    assert "罚款金额(元)（fine_yuan）" in page and "decision_no" not in page


# -- the queue's footnote -------------------------------------------------------------------------


def _queued(n: int, fallback: bool) -> dict:
    day = date(2026, 3, 2)
    return {
        "tracking_no": f"YX{day:%Y%m%d}-{n:06d}", "type": "repair", "status": "received",
        "entity_id": uscc(1), "entity_name": "烟台市芝罘区测试1食品有限公司", "record_ids": [],
        "contact_name": "张三", "mobile": "13912345678", "reason": "已经全额缴纳罚款并完成整改。",
        "commitment": True, "channel": "api", "access_hash": "sha256$00$00",
        "payload_hash": f"{n:064d}", "submitted_at": datetime(2026, 3, 2, 1, tzinfo=UTC),
        "submitted_on": day, "review_due": day + timedelta(days=3),
        "decision_due": day + timedelta(days=14), "calendar_fallback": fallback,
        "updated_at": datetime(2026, 3, 2, 1, tzinfo=UTC),
    }


def test_the_queues_footnote_only_explains_a_starred_deadline(engine, client, bearer):
    footnote = "期限所在年份缺少节假日数据"
    with engine.begin() as conn:
        conn.execute(insert(REQUESTS), [_queued(1, False)])
    _login(client)
    page = client.get("/review").text
    assert "YX20260302-000001" in page and "*</td>" not in page and footnote not in page
    with engine.begin() as conn:
        conn.execute(insert(REQUESTS), [_queued(2, True)])
    page = client.get("/review").text
    assert "*</td>" in page and footnote in page


# -- the decision form ----------------------------------------------------------------------------


def _offered(client, tracking: str) -> list[str]:
    page = client.get(f"/review/requests/{tracking}").text
    return re.findall(r'name="action" value="([a-z_]+)"', page)


def test_the_form_offers_only_the_actions_the_requests_state_allows(
    engine, client, cases, bearer
):
    tracking = submit_request(engine, "objection", cases.other, cases.other_uscc)
    _login(client)
    page = client.get(f"/review/requests/{tracking}").text
    # every action needs a reason (the applicant sees each step's note): the form says so
    assert re.search(r'<textarea id="f-reason"[^>]* required', page) and "理由（必填" in page
    assert _offered(client, tracking) == ["accept", "more_info", "approve", "reject"]
    assert _form(client, tracking, "accept", reason="材料齐全，予以受理。").status_code == 303
    assert _offered(client, tracking) == ["more_info", "approve", "reject"]  # no 受理 again
    assert _form(client, tracking, "more_info", reason="请补充处罚决定书。").status_code == 303
    page = client.get(f"/review/requests/{tracking}").text
    assert _offered(client, tracking) == ["reject"] and 'id="f-outcome"' not in page
    # a reviewer (no approval) on an accepted request: only asking for more material
    with engine.begin() as conn:
        conn.execute(update(REQUESTS).where(REQUESTS.c.tracking_no == tracking)
                     .values(status="accepted"))
    client.cookies.clear()
    _login(client, "li")
    assert _offered(client, tracking) == ["more_info"]
