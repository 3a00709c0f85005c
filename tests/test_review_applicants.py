"""Several applicants on one record: a stranger's request does not shut the enterprise out (nor
is the same applicant's second request refused), reviewers see the other requests on the
record, and once one is decided the others are still decided sensibly. The bureau's mails carry
nothing the applicant typed but what identifies the request. On SQLite and PostgreSQL."""

from __future__ import annotations

import email
import re

import pytest
from sqlalchemy import func, select

from publishing import request_queries, review, users
from publishing.commit import EVENTS, RECORDS
from tests.requests_support import (
    PDF,
    count_requests,
    fields,
    files,
    smtp,  # noqa: F401 - a fixture
    wait_for,
)

PASSWORD = "correct horse battery staple"
STRANGER = {"contact_name": "李四", "mobile": "13600000000", "email": "x@example.net"}
OWNER = {"contact_name": "王五", "mobile": "13912345678", "email": "caiwu@qiye.example.com"}


@pytest.fixture
def approver(engine):
    user, _ = users.add_user(engine, "wang", "approver", PASSWORD)
    return user


def _file(client, cases, who, type_="repair", **over):
    data = fields(type=type_, uscc=cases.repairable_uscc, record_ids=[cases.repairable],
                  **{**who, **over})
    if type_ == "objection":
        data.pop("commitment")
    return client.post("/api/v1/requests", data=data,
                       files=files(("proof.pdf", PDF, "application/pdf")))


def _login(client):
    page = client.get("/review/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    assert client.post(
        "/review/login", data={"name": "wang", "password": PASSWORD, "csrf": csrf}
    ).status_code == 303


@pytest.mark.parametrize("type_", ["repair", "objection"])
def test_a_strangers_request_does_not_block_the_enterprise(engine, client, cases, approver, type_):
    first = _file(client, cases, STRANGER, type_)
    assert first.status_code == 201, first.text
    # the enterprise itself, on the same record, while the stranger's is open
    own = _file(client, cases, OWNER, type_)
    assert own.status_code == 201, own.text
    # the same applicant again (e-mail in other case, mobile with +86): accepted like any other
    # (refusing it told anyone whether a guessed mobile had filed about the record)
    again = _file(client, cases, OWNER, type_, mobile="+86 139 1234 5678",
                  email=OWNER["email"].upper())
    assert again.status_code == 201, again.text
    assert count_requests(engine) == 3
    # reviewers see the other requests on each, the same contact's marked as such
    with engine.connect() as conn:
        mine = request_queries.find(conn, own.json()["tracking_no"])
        related = request_queries.related_requests(conn, mine)
        theirs = request_queries.related_requests(conn, request_queries.find(conn, first.json()["tracking_no"]))
    assert [(r["tracking_no"], r["open"], r["mobile"], r["record_ids"], r["same_contact"])
            for r in related] == [
        (first.json()["tracking_no"], True, STRANGER["mobile"], [cases.repairable], []),
        (again.json()["tracking_no"], True, OWNER["mobile"], [cases.repairable],
         ["手机号码", "电子邮箱"]),
    ]
    assert [r["tracking_no"] for r in theirs] == [
        own.json()["tracking_no"], again.json()["tracking_no"]]
    assert not any(r["same_contact"] for r in theirs)
    # ... on the detail page too
    _login(client)
    detail = client.get(f"/review/requests/{own.json()['tracking_no']}").text
    section = detail.split('id="related-title"', 1)[1].split("</section>", 1)[0]
    assert first.json()["tracking_no"] in section and cases.repairable in section
    assert section.count("同一联系方式（手机号码、电子邮箱相同）") == 1


def test_once_one_is_approved_the_others_are_decided_with_nothing_to_do(
    engine, client, cases, approver
):
    stranger = _file(client, cases, STRANGER).json()["tracking_no"]
    objection = _file(client, cases, STRANGER, "objection").json()["tracking_no"]
    own = _file(client, cases, OWNER).json()["tracking_no"]
    review.act(engine, own, approver, "approve", "已履行，准予信用修复。", sync_search=False)
    assert client.get(f"/records/{cases.repairable}").status_code == 410
    with engine.connect() as conn:
        events = conn.execute(select(func.count()).select_from(EVENTS)).scalar_one()
        related = request_queries.related_requests(conn, request_queries.find(conn, stranger))
    assert {(r["tracking_no"], r["status_label"], r["open"]) for r in related} == {
        (own, "准予信用修复", False), (objection, "已接收，待初审", True)}
    # the reviewer approves the stranger's repair too: the page says there was nothing to do
    _login(client)
    page = client.get(f"/review/requests/{stranger}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    done = client.post(f"/review/requests/{stranger}",
                       data={"csrf": csrf, "action": "approve", "reason": "记录已修复。"})
    assert done.status_code == 303
    shown = client.get(done.headers["location"]).text
    assert review.NOTE_HELD in shown and cases.repairable in shown
    # an upheld objection asking for a correction: nothing to correct, said in the API answer
    token = users.new_token(engine, "wang")
    answer = client.post(
        f"/api/v1/review/requests/{objection}/decision",
        json={"decision": "approve", "outcome": "correct", "reason": "异议成立。",
              "corrections": {"fine_yuan": "3000"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["records"][0]["after"]["note"] == review.NOTE_HELD
    with engine.connect() as conn:
        row = conn.execute(select(RECORDS).where(RECORDS.c.id == cases.repairable)).mappings().one()
        assert conn.execute(select(func.count()).select_from(EVENTS)).scalar_one() == events
    assert (row["status"], row["status_reason"], row["data"]["fine_yuan"]) == (
        "withdrawn", "repair", "5000.00")


def test_mails_greet_without_the_applicants_text(engine, client, cases, approver, smtp):  # noqa: F811
    lure = "恭喜中奖请访问 http://evil.example 领取"
    filed = _file(client, cases, {**OWNER, "contact_name": lure, "email": "victim@example.com"})
    assert filed.status_code == 201, filed.text
    tracking = filed.json()["tracking_no"]
    assert wait_for(lambda: len(smtp.messages) == 1)
    review.act(engine, tracking, approver, "reject", "缴款凭证与处罚决定书金额不符。",
               sync_search=False)
    assert wait_for(lambda: len(smtp.messages) == 2)
    for envelope in smtp.messages:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        body = message.get_body().get_content()
        assert body.startswith("您好：") and tracking in body, body
        assert "evil" not in body and "中奖" not in body and "evil" not in str(message["Subject"])
