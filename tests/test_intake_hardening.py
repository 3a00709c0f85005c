"""Input the intake and the back office must refuse, not crash on (security review): NUL and
other C0 controls in any text field (PostgreSQL text cannot hold NUL; SQLite stored it as is),
JSON nested beyond the parser's depth. And a second request of the same applicant on a record
is accepted like any other (refusing it told anyone whether a guessed mobile had filed about
the record), reviewers seeing it marked as the same contact. On SQLite and PostgreSQL, through
the portal's HTTP interface."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from portal.api.creditcheck import DEEP_JSON_DETAIL
from portal.review import TOO_DEEP
from publishing import request_queries, review, safetext, users
from publishing import requests as rq
from publishing.request_models import AUDIT, REQUESTS, STEPS
from tests.requests_support import (
    PDF,
    PNG,
    count_attachments,
    count_requests,
    fields,
    files,
    form_token,
    objection_on_other,
    receipt_of,
    stored_files,
)

PASSWORD = "correct horse battery staple"
CONTROLS = ("\x00", "\x1b")  # NUL, and another C0 control (ESC)
OWNER = {"contact_name": "王五", "mobile": "13912345678", "email": "caiwu@qiye.example.com"}
STRANGER = {"contact_name": "李四", "mobile": "13600000000", "email": "x@example.net"}
DEEP = "[" * 1000 + "]" * 1000


def _nothing_stored(engine) -> None:
    assert count_requests(engine) == 0 and count_attachments(engine) == 0
    assert stored_files(engine) == []


def _repair(cases, **over):
    return fields(uscc=cases.repairable_uscc, record_ids=[cases.repairable], **over)


def _with_control(cases, field: str, char: str) -> dict:
    good = _repair(cases)
    if field == "record_ids":
        return {**good, "record_ids": [cases.repairable + char]}
    value = {"uscc": cases.repairable_uscc, "type": "repair"}.get(field, good.get(field))
    at = len(value) // 2
    return {**good, field: value[:at] + char + value[at:]}


TEXT_FIELDS = ("type", "uscc", "record_ids", "contact_name", "mobile", "email", "reason")


def _login(client, name="wang", password=PASSWORD):
    page = client.get("/review/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client.post("/review/login", data={"name": name, "password": password, "csrf": csrf})


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


# -- control characters in the intake ---------------------------------------------------------


@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_a_control_character_in_a_field_is_named_and_nothing_is_stored(
    engine, client, cases, field
):
    message = safetext.unusable_problem(rq.FIELD_LABELS[field])
    for char in CONTROLS:
        data = _with_control(cases, field, char)
        if field == "email":
            data["email"] = f"cai{char}wu@qiye.example.com"
        page = client.post(
            "/requests/new",
            data={"form_token": form_token(client), **data},
            files=files(("证明.pdf", PDF, "application/pdf")),
        )
        assert page.status_code == 422, (char, page.text[:300])
        assert message in page.text and "未保存任何内容" in page.text
        api = client.post("/api/v1/requests", data=data,
                          files=files(("证明.pdf", PDF, "application/pdf")))
        assert api.status_code == 422, (char, api.text)
        assert api.json()["errors"][field] == message
    _nothing_stored(engine)


def test_tabs_and_line_breaks_are_text_where_they_belong(engine, client, cases):
    """Only the unusable controls are refused: a reason keeps its lines and tabs, a name's are
    folded into a space."""
    reason = "已全额缴纳罚款。\r\n整改措施：\t1. 更换标签；\n2. 培训员工。"
    made = client.post("/api/v1/requests",
                       data=_repair(cases, reason=reason, contact_name="张\t三"),
                       files=files(("证\x1b明\x7f.pdf", PDF, "application/pdf")))
    assert made.status_code == 201, made.text
    with engine.connect() as conn:
        req = request_queries.find(conn, made.json()["tracking_no"])
        names = [f["file_name"] for f in request_queries.files(conn, req["id"])]
    assert req["reason"] == reason and req["contact_name"] == "张 三"
    # a file's name loses its control characters (attachments.display_name); httpx writes a NUL
    # in a file name as %00, ESC and DEL as they are
    assert names == ["证明.pdf"]


def test_a_control_character_in_a_supplement_note_is_refused(engine, client, cases):
    receipt = rq.submit(engine, objection_on_other(cases))
    tracking, code = receipt.tracking_no, receipt.access_code
    approver, _ = users.add_user(engine, "wang", "approver", PASSWORD)
    review.act(engine, tracking, approver, "more_info", "请补充处罚决定书。", sync_search=False)
    for char in CONTROLS:
        lookup = client.get(f"/requests/{tracking}")
        token = re.search(r'name="form_token" value="([^"]+)"', lookup.text).group(1)
        page = client.post(f"/requests/{tracking}", data={"form_token": token, "code": code})
        token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
        sent = client.post(
            f"/requests/{tracking}/supplement",
            data={"form_token": token, "code": code, "note": f"决定书{char}见附件"},
            files=files(("决定书.png", PNG, "image/png")),
        )
        assert sent.status_code == 422, sent.text[:300]
        assert safetext.unusable_problem("说明") in sent.text
    with engine.connect() as conn:
        req = request_queries.find(conn, tracking)
        actions = [s["action"] for s in request_queries.steps(conn, req["id"])]
        assert req["status"] == "more_info" and actions == ["submitted", "more_info"]
        assert request_queries.files(conn, req["id"]) == []


# -- control characters in the back office ----------------------------------------------------


def test_a_login_name_with_a_control_character_is_a_failed_login(engine, client):
    users.add_user(engine, "wang", "approver", PASSWORD)
    for name in ("adm\x00", "wang\x00", "wa\x1bng", "\x00"):
        failed = _login(client, name)
        assert failed.status_code == 401, (name, failed.text[:300])
        assert "用户名或密码错误。" in failed.text
    with engine.connect() as conn:
        logged = conn.execute(
            select(AUDIT.c.action, AUDIT.c.target_id).order_by(AUDIT.c.n)
        ).all()
    unknown = [t for a, t in logged if a == "login.unknown"]
    assert len(unknown) == 4 and all(t.startswith("unknown(") for t in unknown)
    assert _login(client).status_code == 303  # the real name still logs in


def _objection_in_review(engine, client, cases):
    users.add_user(engine, "wang", "approver", PASSWORD)
    tracking = rq.submit(engine, objection_on_other(cases)).tracking_no
    assert _login(client).status_code == 303
    return tracking


def _unchanged(engine, tracking):
    with engine.connect() as conn:
        req = request_queries.find(conn, tracking)
        steps = conn.execute(
            select(func.count()).select_from(STEPS).where(STEPS.c.request_id == req["id"])
        ).scalar_one()
    return req["status"] == "received" and req["decision_reason"] is None and steps == 1


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("reason", {"action": "accept", "reason": "材料齐全{c}，予以受理。"}),
        ("corrections", {"action": "approve", "outcome": "correct", "reason": "异议成立。",
                         "corrections": "fine_yuan=3{c}000"}),
        ("corrections", {"action": "approve", "outcome": "correct", "reason": "异议成立。",
                         "corrections": '{{"fine_yuan": "3000{j}"}}'}),
    ],
    ids=["reason", "corrections-lines", "corrections-json"],
)
def test_a_control_character_in_a_review_action_is_named(engine, client, cases, field, values):
    tracking = _objection_in_review(engine, client, cases)
    label = {"reason": "理由", "corrections": "更正内容"}[field]
    for char in CONTROLS:
        escaped = json.dumps(char)[1:-1]  # as JSON writes it: \u0000
        sent = {k: v.format(c=char, j=escaped) for k, v in values.items()}
        page = client.get(f"/review/requests/{tracking}")
        done = client.post(f"/review/requests/{tracking}",
                           data={"csrf": _csrf(page.text), **sent})
        assert done.status_code == 422, done.text[:300]
        assert safetext.unusable_problem(label) in done.text
    assert _unchanged(engine, tracking)


def test_a_control_character_in_a_decision_through_the_api_is_named(engine, client, cases):
    tracking = _objection_in_review(engine, client, cases)
    auth = {"Authorization": f"Bearer {users.new_token(engine, 'wang')}"}
    url = f"/api/v1/review/requests/{tracking}/decision"
    for char in CONTROLS:
        reason = client.post(url, headers=auth, json={"decision": "reject", "reason": f"不{char}成立"})
        assert reason.status_code == 422, reason.text
        assert reason.json() == {"errors": {"reason": safetext.unusable_problem("理由")}}
        fixed = client.post(url, headers=auth, json={
            "decision": "approve", "outcome": "correct", "reason": "异议成立。",
            "corrections": {"fine_yuan": ["3000", {f"k{char}": "v"}]}})
        assert fixed.status_code == 422, fixed.text
        assert fixed.json() == {"errors": {"corrections": safetext.unusable_problem("更正内容")}}
    assert _unchanged(engine, tracking)


# -- JSON nested beyond the parser's depth ----------------------------------------------------


def test_deeply_nested_json_to_the_credit_check_is_a_bad_request(client):
    json_type = {"content-type": "application/json"}
    for body in (DEEP, '{"uscc": ' + DEEP + "}", "[" * 100_000 + "]" * 100_000):
        answer = client.post("/api/v1/credit-check", content=body, headers=json_type)
        assert answer.status_code == 400, answer.text[:300]
        assert answer.json() == {"status_code": 400, "detail": DEEP_JSON_DETAIL}
    # the app's guard of the query still holds on this handler, and good bodies still answer
    guarded = client.post("/api/v1/credit-check?x=%00", json={"uscc": ["913706021630401277"]})
    assert guarded.status_code == 400
    assert client.post("/api/v1/credit-check", content="{", headers=json_type).status_code == 400
    good = client.post("/api/v1/credit-check", json={"uscc": ["913706021630401277"]})
    assert good.status_code == 200 and good.json()["count"] == 1


def test_deeply_nested_json_to_the_requests_api(engine, client, cases):
    tracking = _objection_in_review(engine, client, cases)
    auth = {"Authorization": f"Bearer {users.new_token(engine, 'wang')}",
            "content-type": "application/json"}
    url = f"/api/v1/review/requests/{tracking}/decision"
    deep = client.post(url, headers=auth, content=DEEP)
    assert deep.status_code == 400 and deep.json() == {"errors": {"request": "请求体应为 JSON 对象"}}
    inner = '{"decision": "approve", "outcome": "correct", "reason": "异议成立。", "corrections": %s}'
    # readable but nested deeper than corrections are (the masking code recursed: a 500)
    for depth in (5, 900):
        nested = '{"fine_yuan": ' + "[" * depth + "]" * depth + "}"
        answer = client.post(url, headers=auth, content=inner % nested)
        assert answer.status_code == 422, answer.text[:300]
        assert answer.json() == {"errors": {"corrections": TOO_DEEP}}
    # beyond the parser's depth: unreadable
    nested = '{"fine_yuan": ' + "[" * 5000 + "]" * 5000 + "}"
    answer = client.post(url, headers=auth, content=inner % nested)
    assert answer.status_code == 400 and answer.json() == {"errors": {"request": "请求体应为 JSON 对象"}}
    # the intake takes forms only
    intake = client.post("/api/v1/requests", content=DEEP,
                         headers={"content-type": "application/json"})
    assert intake.status_code == 415 and set(intake.json()["errors"]) == {"request"}
    assert _unchanged(engine, tracking) and count_requests(engine) == 1


def test_deeply_nested_corrections_in_the_review_form(engine, client, cases):
    tracking = _objection_in_review(engine, client, cases)
    for depth in (5000, 900):
        page = client.get(f"/review/requests/{tracking}")
        nested = '{"fine_yuan": ' + "[" * depth + "]" * depth + "}"
        done = client.post(f"/review/requests/{tracking}", data={
            "csrf": _csrf(page.text), "action": "approve", "outcome": "correct",
            "reason": "异议成立。", "corrections": nested})
        assert done.status_code == 422, done.text[:300]
        assert 'id="e-corrections"' in done.text and "更正内容格式应为每行一个" in done.text
    assert _unchanged(engine, tracking)


# -- the same applicant again ------------------------------------------------------------------


def test_the_same_applicant_may_file_again_and_reviewers_see_it(engine, client, cases):
    def objection(who, **headers):
        data = fields(type="objection", commitment=None, uscc=cases.other_uscc,
                      record_ids=[cases.other], **who)
        return client.post("/api/v1/requests", data=data, files=files(), headers=headers)

    first = objection(OWNER)
    assert first.status_code == 201, first.text
    # the same mobile and e-mail (as typed differently), on the same record, while it is open
    again = objection({**OWNER, "mobile": "+86 139 1234 5678", "email": OWNER["email"].upper()},
                      **{"Idempotency-Key": "retry-0001"})
    assert again.status_code == 201, again.text
    # ... and its retry is still the same request
    retry = objection({**OWNER, "mobile": "+86 139 1234 5678", "email": OWNER["email"].upper()},
                      **{"Idempotency-Key": "retry-0001"})
    assert retry.status_code == 200 and retry.headers["idempotent-replayed"] == "true"
    assert (retry.json()["tracking_no"], retry.json()["access_code"]) == (
        again.json()["tracking_no"], again.json()["access_code"])
    # the form too: a second one is accepted, its token sent twice is one request
    token = form_token(client)
    data = fields(type="objection", commitment=None, uscc=cases.other_uscc,
                  record_ids=[cases.other], **OWNER)
    third = client.post("/requests/new", data={"form_token": token, **data}, files=files())
    assert third.status_code == 201, third.text[:300]
    assert client.post("/requests/new", data={"form_token": token, **data},
                       files=files()).status_code == 200
    stranger = objection(STRANGER)
    assert stranger.status_code == 201
    assert count_requests(engine) == 4
    # the reviewer sees the others on the record: the same contact's marked, the stranger's not
    users.add_user(engine, "wang", "approver", PASSWORD)
    assert _login(client).status_code == 303
    detail = client.get(f"/review/requests/{again.json()['tracking_no']}").text
    section = detail.split('id="related-title"', 1)[1].split("</section>", 1)[0]
    items = {re.search(r"YX\d{8}-\d{6}", li).group(0): li for li in section.split("<li>")[1:]}
    by_form = receipt_of(third.text)[0]
    assert set(items) == {first.json()["tracking_no"], stranger.json()["tracking_no"], by_form}
    assert "同一联系方式（手机号码、电子邮箱相同）" in items[first.json()["tracking_no"]]
    assert "同一联系方式（手机号码、电子邮箱相同）" in items[by_form]
    assert "同一联系方式" not in items[stranger.json()["tracking_no"]]
    with engine.connect() as conn:
        mine = request_queries.find(conn, again.json()["tracking_no"])
        same = {r["tracking_no"]: r["same_contact"] for r in request_queries.related_requests(conn, mine)}
    assert same[first.json()["tracking_no"]] == ["手机号码", "电子邮箱"]
    assert same[stranger.json()["tracking_no"]] == []


def test_the_same_mobile_alone_is_the_same_contact(engine, cases):
    first = rq.submit(engine, objection_on_other(cases))
    other = rq.submit(engine, objection_on_other(cases, email="new@example.com"))
    with engine.connect() as conn:
        related = request_queries.related_requests(conn, request_queries.find(conn, other.tracking_no))
        stored = conn.execute(select(func.count()).select_from(REQUESTS)).scalar_one()
    assert stored == 2
    assert [(r["tracking_no"], r["same_contact"]) for r in related] == [
        (first.tracking_no, ["手机号码"])]
