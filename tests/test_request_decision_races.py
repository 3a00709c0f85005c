"""A staff decision and the applicant's supplement at the same moment, and decisions made on an
out-of-date page, on SQLite and PostgreSQL.

The races are made deterministic by holding one party just before it writes the request's row
(a SQLAlchemy hook on the engine) while the other runs: the other must then wait for it (the
row is locked; SQLite: the write transaction) and see what it did, never write over it.
Exactly one of a supplement and a decision made on the page showing 需补正材料 wins; the loser
is told (409) and nothing of it is stored; status, decision, steps and audit agree.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event

from publishing import audit, request_queries, review, users
from publishing import requests as rq
from publishing.attachments import Upload
from tests.requests_support import PDF, make_client

PASSWORD = "correct horse battery staple"
ASK = "请补充缴纳罚款的银行回单。"
NOTE = "已补充缴款凭证，见说明。"
REJECT = "材料不全，不予信用修复。"
CHANGED = "该申请在您打开页面后已有变化"
# How long the second party is given before the first goes on: with the fix it waits for the
# first's lock all along; without it, it ran through (and wrote) well within this.
HEAD_START = 1.5


@pytest.fixture
def staff(engine) -> dict[str, users.Principal]:
    return {
        "li": users.add_user(engine, "li", "reviewer", PASSWORD)[0],
        "wang": users.add_user(engine, "wang", "approver", PASSWORD)[0],
    }


def filed(engine: Engine, cases, now: Any = None) -> rq.Receipt:
    """A repair request, received now (or at `now`)."""
    sub = rq.Submission(
        type="repair",
        uscc=cases.repairable_uscc,
        record_ids=[cases.repairable],
        contact_name="张三",
        mobile="13912345678",
        reason="已经全额缴纳罚款并完成整改，申请提前停止公示。",
        commitment=True,
        attachments=[Upload("proof.pdf", io.BytesIO(PDF))],
    )
    return rq.submit(engine, sub, now=now)


def more_info_request(engine: Engine, cases, staff) -> tuple[str, str]:
    """A repair request the reviewer asked more material for: (tracking number, access code)."""
    receipt = filed(engine, cases)
    review.act(engine, receipt.tracking_no, staff["li"], "more_info", ASK)
    assert receipt.access_code
    return receipt.tracking_no, receipt.access_code


def state(engine: Engine, tracking: str) -> dict[str, Any]:
    with engine.connect() as conn:
        req = request_queries.find(conn, tracking)
        assert req is not None
        steps = [s["action"] for s in request_queries.steps(conn, req["id"])]
        entries = audit.for_target(conn, "request", tracking)
    return {
        "status": req["status"],
        "decision": req["decision"],
        "decided_by": req["decided_by"],
        "decided_at": req["decided_at"],
        "decision_reason": req["decision_reason"],
        "steps": steps,
        "audit": [(e["action"], (e["before"] or {}).get("status")) for e in entries],
    }


# -- holding one party just before it writes the request -------------------------------------


def _writes_request(statement: str) -> bool:
    return statement.lstrip().upper().startswith("UPDATE REQUESTS ")


def _values(parameters: Any) -> list[Any]:
    items = parameters.values() if isinstance(parameters, dict) else parameters or ()
    return list(items)


@contextmanager
def held(
    engine: Engine, match: Callable[[str, Any], bool]
) -> Iterator[tuple[threading.Event, threading.Event]]:
    """Hold the first statement `match`es (statement, parameters) until `go` is set; yields
    (reached, go)."""
    go, reached = threading.Event(), threading.Event()
    fired: list[bool] = []

    def hook(conn, cursor, statement, parameters, context, executemany) -> None:
        if not fired and match(statement, parameters):
            fired.append(True)
            reached.set()
            go.wait(60)

    event.listen(engine, "before_cursor_execute", hook)
    try:
        yield reached, go
    finally:
        go.set()
        event.remove(engine, "before_cursor_execute", hook)


def race(engine: Engine, first: Callable[[], Any], second: Callable[[], Any]) -> list[Any]:
    """Run `first` up to its write of the request row and hold it there; run `second`; let
    `first` go once `second` is done or has waited HEAD_START. Each one's result or exception."""
    out: list[Any] = [None, None]

    def run(index: int, fn: Callable[[], Any]) -> None:
        try:
            out[index] = fn()
        except Exception as err:  # noqa: BLE001 - the loser's answer is the test's to look at
            out[index] = err

    def by_first(statement: str, parameters: Any) -> bool:
        return threading.current_thread().name == "first" and _writes_request(statement)

    with held(engine, by_first) as (reached, go):
        one = threading.Thread(target=run, args=(0, first), name="first")
        one.start()
        assert reached.wait(30), out
        two = threading.Thread(target=run, args=(1, second), name="second")
        two.start()
        two.join(HEAD_START)
        go.set()
        one.join(60)
        two.join(60)
    assert not one.is_alive() and not two.is_alive()
    return out


# -- 1. the applicant's supplement and a decision at the same moment ----------------------------


def test_supplement_first_then_the_decision_on_the_old_page_is_refused(engine, cases, staff):
    tracking, code = more_info_request(engine, cases, staff)
    supplemented, decided = race(
        engine,
        lambda: rq.supplement(engine, tracking, code, NOTE, []),
        # as the review page showing 需补正材料 sends it (its status and version)
        lambda: review.act(engine, tracking, staff["wang"], "reject", REJECT,
                           expected_status="more_info", expected_version="2"),
    )
    assert isinstance(supplemented, dict) and supplemented["status"] == "received"
    assert isinstance(decided, review.ReviewError) and decided.status == 409, decided
    assert CHANGED in decided.errors["status"] and "申请人已补正材料" in decided.errors["status"]
    after = state(engine, tracking)
    assert after["status"] == "received"
    assert (after["decision"], after["decided_by"], after["decided_at"]) == (None, None, None)
    assert after["steps"] == ["submitted", "more_info", "supplemented"]
    assert after["audit"] == [
        ("request.submit", None), ("request.more_info", "received"),
        ("request.supplement", "more_info"),
    ]
    assert audit.verify(engine) == (True, None)


def test_decision_first_then_the_supplement_is_refused(engine, cases, staff):
    tracking, code = more_info_request(engine, cases, staff)
    decided, supplemented = race(
        engine,
        lambda: review.act(engine, tracking, staff["wang"], "reject", REJECT,
                           expected_status="more_info", expected_version="2"),
        lambda: rq.supplement(engine, tracking, code, NOTE, []),
    )
    assert isinstance(decided, review.Outcome) and decided.status == "rejected"
    assert isinstance(supplemented, rq.IntakeError) and supplemented.status == 409
    assert "已有变化" in supplemented.errors["status"]
    assert "不予信用修复" in supplemented.errors["status"]  # what it is now
    after = state(engine, tracking)
    assert (after["status"], after["decision"], after["decided_by"]) == (
        "rejected", "reject", "wang")
    assert after["decision_reason"] == REJECT  # not cleared by a supplement
    assert after["steps"] == ["submitted", "more_info", "rejected"]
    assert after["audit"][-1] == ("request.reject", "more_info")
    assert "request.supplement" not in [a for a, _ in after["audit"]]
    assert audit.verify(engine) == (True, None)


def test_a_decision_without_precondition_follows_the_supplement(engine, cases, staff):
    """A decision with no precondition (an API caller sending none) made while a supplement is
    being stored comes after it: its audit entry says it followed 已接收, and the supplement
    does not undo it."""
    tracking, code = more_info_request(engine, cases, staff)
    supplemented, decided = race(
        engine,
        lambda: rq.supplement(engine, tracking, code, NOTE, []),
        lambda: review.act(engine, tracking, staff["wang"], "reject", REJECT),
    )
    assert isinstance(supplemented, dict) and isinstance(decided, review.Outcome), (
        supplemented, decided)
    after = state(engine, tracking)
    assert (after["status"], after["decision"], after["decision_reason"]) == (
        "rejected", "reject", REJECT)
    assert after["steps"] == ["submitted", "more_info", "supplemented", "rejected"]
    assert after["audit"][-2:] == [
        ("request.supplement", "more_info"), ("request.reject", "received")]


# -- the same races through HTTP: the applicant's page and the approver's form ---------------------


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def hidden(html: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', html).group(1)


def login(client, name: str) -> None:
    page = client.get("/review/login")
    answer = client.post(
        "/review/login", data={"name": name, "password": PASSWORD, "csrf": csrf_of(page.text)})
    assert answer.status_code == 303, answer.text[:300]


def review_form(client, tracking: str) -> dict[str, str]:
    """The review page's form as it is now, for a reject sent later."""
    page = client.get(f"/review/requests/{tracking}")
    assert page.status_code == 200, page.text[:300]
    return {
        "csrf": csrf_of(page.text),
        "action": "reject",
        "reason": REJECT,
        "expected_status": hidden(page.text, "expected_status"),
        "expected_version": hidden(page.text, "expected_version"),
    }


def supplement_form(client, tracking: str, code: str) -> dict[str, str]:
    """The applicant's status page (需补正材料) and its supplement form."""
    lookup = client.get(f"/requests/{tracking}")
    page = client.post(
        f"/requests/{tracking}", data={"form_token": hidden(lookup.text, "form_token"),
                                       "code": code})
    assert "需补正材料" in page.text and 'action="/requests/' in page.text
    return {"form_token": hidden(page.text, "form_token"), "code": code, "note": NOTE}


def http_race(engine, first_holds: str, first, second) -> list[Any]:
    """As race, the first party being the HTTP request whose write of the request row sets
    the status `first_holds`."""
    out: list[Any] = [None, None]

    def match(statement: str, parameters: Any) -> bool:
        return _writes_request(statement) and first_holds in _values(parameters)

    with held(engine, match) as (reached, go):
        one = threading.Thread(target=lambda: out.__setitem__(0, first()))
        one.start()
        assert reached.wait(30)
        two = threading.Thread(target=lambda: out.__setitem__(1, second()))
        two.start()
        two.join(HEAD_START)
        go.set()
        one.join(60)
        two.join(60)
    return out


@pytest.mark.parametrize("first", ["supplement", "reject"])
def test_supplement_and_reject_over_http(engine, cases, staff, first):
    tracking, code = more_info_request(engine, cases, staff)
    with make_client(engine) as applicant, make_client(engine) as approver:
        login(approver, "wang")
        form = review_form(approver, tracking)
        supplement = supplement_form(applicant, tracking, code)

        def send_supplement():
            return applicant.post(f"/requests/{tracking}/supplement", data=supplement)

        def send_reject():
            return approver.post(f"/review/requests/{tracking}", data=form)

        if first == "supplement":
            sent, rejected = http_race(engine, "received", send_supplement, send_reject)
        else:
            rejected, sent = http_race(engine, "rejected", send_reject, send_supplement)
    after = state(engine, tracking)
    if first == "supplement":
        assert sent.status_code == 200 and "补正材料已收到" in sent.text
        assert rejected.status_code == 409, rejected.text[:500]
        assert CHANGED in rejected.text and "请刷新页面查看后再办理" in rejected.text
        assert (after["status"], after["decision"]) == ("received", None)
        assert after["audit"][-1] == ("request.supplement", "more_info")
    else:
        assert rejected.status_code == 303, rejected.text[:500]
        assert sent.status_code == 409 and "已有变化" in sent.text and "补正材料未保存" in sent.text
        assert "不予信用修复" in sent.text  # the page shows where the request is now
        assert (after["status"], after["decision"], after["decision_reason"]) == (
            "rejected", "reject", REJECT)
        assert after["audit"][-1] == ("request.reject", "more_info")
    assert len([a for a, _ in after["audit"] if a in ("request.supplement", "request.reject")]) == 1


# -- 2. a decision made on an out-of-date page ----------------------------------------------------


def test_a_reject_from_a_page_shown_before_more_info_is_refused(engine, cases, staff, client):
    other = filed(engine, cases).tracking_no
    login(client, "wang")
    stale = review_form(client, other)
    assert (stale["expected_status"], stale["expected_version"]) == ("received", "1")
    review.act(engine, other, staff["li"], "more_info", ASK)  # meanwhile, the reviewer
    before = state(engine, other)
    refused = client.post(f"/review/requests/{other}", data=stale)
    assert refused.status_code == 409, refused.text[:500]
    assert CHANGED in refused.text and "已要求补正材料" in refused.text
    assert "请刷新页面查看后再办理" in refused.text
    assert state(engine, other) == before  # nothing written
    # a tampered version of thousands of digits is the form's error, not a 500 (int() refuses
    # strings of over 4,300 digits)
    huge = client.post(f"/review/requests/{other}", data={**stale, "expected_version": "9" * 5000})
    assert huge.status_code == 422 and "expected_version" in huge.text, huge.text[:300]
    fresh = client.post(f"/review/requests/{other}", data=review_form(client, other))
    assert fresh.status_code == 303 and state(engine, other)["status"] == "rejected"


def test_a_reject_from_a_page_shown_before_a_supplement_is_refused(engine, cases, staff, client):
    """The status is the same again (已接收), but material arrived the approver has not seen."""
    tracking, code = more_info_request(engine, cases, staff)
    rq.supplement(engine, tracking, code, NOTE, [])  # back to 已接收
    login(client, "wang")
    stale = review_form(client, tracking)
    assert (stale["expected_status"], stale["expected_version"]) == ("received", "3")
    review.act(engine, tracking, staff["li"], "more_info", "请再补充整改报告。")
    rq.supplement(engine, tracking, code, "整改报告见说明。", [])  # 已接收 again
    before = state(engine, tracking)
    assert before["status"] == "received"
    refused = client.post(f"/review/requests/{tracking}", data=stale)
    assert refused.status_code == 409, refused.text[:500]
    assert "申请人已补正材料" in refused.text and "请刷新页面查看后再办理" in refused.text
    assert state(engine, tracking) == before
    fresh = client.post(f"/review/requests/{tracking}", data=review_form(client, tracking))
    assert fresh.status_code == 303 and state(engine, tracking)["decision"] == "reject"


def test_the_decision_api_takes_the_same_precondition(engine, cases, staff, client):
    tracking, code = more_info_request(engine, cases, staff)
    rq.supplement(engine, tracking, code, NOTE, [])  # now 已接收, version 3
    bearer = {"Authorization": f"Bearer {users.new_token(engine, 'wang')}"}
    url = f"/api/v1/review/requests/{tracking}/decision"
    body = {"decision": "reject", "reason": REJECT}
    before = state(engine, tracking)
    for stale in ({"expected_status": "more_info"}, {"expected_version": 2},
                  {"expected_status": "received", "expected_version": 2}):
        answer = client.post(url, json={**body, **stale}, headers=bearer)
        assert answer.status_code == 409, (stale, answer.text)
        assert CHANGED in answer.json()["errors"]["status"]
    for wrong in ({"expected_status": "open"}, {"expected_version": "two"},
                  {"expected_version": True}, {"expected_status": ["received"]}):
        assert client.post(url, json={**body, **wrong}, headers=bearer).status_code == 422, wrong
    assert state(engine, tracking) == before
    done = client.post(url, json={**body, "expected_status": "received", "expected_version": 3},
                       headers=bearer)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "rejected"


# -- the worker's deadline recount beside a decision ---------------------------------------------


def test_the_deadline_recount_waits_for_a_decision_without_deadlocking(
    engine, cases, staff, tmp_path, monkeypatch
):
    """The worker recounts two provisional deadlines while a reviewer's decision holds the
    second request's row: the recount waits for it (it locks the rows before its first audit
    entry), instead of holding the audit's lock while the decision waits for it (PostgreSQL
    broke that deadlock by failing one of them)."""
    from datetime import UTC, datetime

    from publishing.request_deadlines import recompute_provisional
    from publishing.settings import get_settings
    from tests.requests_support import objection_on_other

    data = tmp_path / "workdays.toml"
    data.write_text("[years]\n", encoding="utf-8")  # 2027 unknown: the deadlines are provisional
    monkeypatch.setenv("DISCLOSURE_WORKDAYS_FILE", str(data))
    get_settings.cache_clear()
    try:
        new_years_eve = datetime(2026, 12, 31, 2, 0, tzinfo=UTC)
        first = rq.submit(engine, objection_on_other(cases), now=new_years_eve)
        second = filed(engine, cases, new_years_eve)
        data.write_text('[years.2027]\nholidays = ["2027-01-01"]\n', encoding="utf-8")
        decided, recounted = race(
            engine,
            lambda: review.act(engine, second.tracking_no, staff["li"], "accept", "材料齐全，予以受理。"),
            lambda: recompute_provisional(engine),
        )
    finally:
        get_settings.cache_clear()
    assert isinstance(decided, review.Outcome), decided
    assert recounted == 2, recounted  # both counted again, the second after the decision
    assert state(engine, second.tracking_no)["audit"][-1][0] == "request.deadlines"
    assert state(engine, first.tracking_no)["audit"][-1][0] == "request.deadlines"
    assert audit.verify(engine) == (True, None)



def test_the_decision_api_reads_the_version_it_sends_back(engine, cases, staff, client):
    """An API client reads the request's state and version, decides on them, and is refused
    once the applicant has supplied material since its read."""
    tracking, code = more_info_request(engine, cases, staff)
    bearer = {"Authorization": f"Bearer {users.new_token(engine, 'wang')}"}
    url = f"/api/v1/review/requests/{tracking}"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get(url + "0", headers=bearer).status_code == 404
    seen = client.get(url.lower(), headers=bearer)  # typed as people type it
    assert seen.status_code == 200, seen.text
    read = seen.json()
    assert (read["status"], read["version"]) == ("more_info", len(read["steps"])) == ("more_info", 2)
    assert "mobile" not in read and "contact_name" not in read and "13912345678" not in seen.text
    rq.supplement(engine, tracking, code, NOTE, [])  # the applicant answers after the read
    body = {"decision": "reject", "reason": REJECT,
            "expected_status": read["status"], "expected_version": read["version"]}
    refused = client.post(url + "/decision", json=body, headers=bearer)
    assert refused.status_code == 409, refused.text
    again = client.get(url, headers=bearer).json()
    assert (again["status"], again["version"]) == ("received", 3)
    body.update(expected_status=again["status"], expected_version=again["version"])
    done = client.post(url + "/decision", json=body, headers=bearer)
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["version"]) == ("rejected", 4)
