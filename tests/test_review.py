"""The back office and decisions, on SQLite and PostgreSQL: login with lockout and signed
sessions, the queue by due date, accept / more material / approve / reject with reasons, the
bearer-token API, attachments for reviewers only — and an approval leaving every public output
(record page 410, search, change log and feeds, credit check, downloads) through the one writer.
"""

from __future__ import annotations

import email
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from publishing import audit, clock, request_config, request_queries, users
from publishing import requests as rq
from publishing.commit import EVENTS, RECORDS
from publishing.publish import publish
from publishing.request_models import AUDIT, LOGIN_SOURCES, REQUESTS, USERS
from publishing.users import login_key
from tests.factories import penalty_row, uscc, write_csv
from tests.requests_support import (
    PDF,
    PNG,
    count_requests,
    fields,
    files,
    form_token,
    make_client,
    months_ago,
    smtp,  # noqa: F401 - a fixture
    wait_for,
)

PASSWORD = "correct horse battery staple"


@pytest.fixture
def staff(engine):
    users.add_user(engine, "li", "reviewer", PASSWORD)
    users.add_user(engine, "wang", "approver", PASSWORD)


def api_submit(client, cases, record=None, uscc=None, type_="repair", **over):
    data = fields(
        type=type_,
        uscc=uscc or cases.repairable_uscc,
        record_ids=[record or cases.repairable],
        **over,
    )
    if type_ == "objection":
        data.pop("commitment")
    response = client.post(
        "/api/v1/requests", data=data, files=files(("proof.pdf", PDF, "application/pdf"))
    )
    assert response.status_code == 201, response.text
    return response.json()


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def login(client, name="wang", password=PASSWORD):
    page = client.get("/review/login")
    return client.post(
        "/review/login", data={"name": name, "password": password, "csrf": csrf_of(page.text)}
    )


def act(client, tracking, action, reason="依据材料作出处理。", **extra):
    page = client.get(f"/review/requests/{tracking}")
    assert page.status_code == 200, page.text[:300]
    return client.post(
        f"/review/requests/{tracking}",
        data={"csrf": csrf_of(page.text), "action": action, "reason": reason, **extra},
    )


# -- login, lockout, sessions -------------------------------------------------------------------


def _same(a: str, b: str) -> bool:
    """Two login pages alike but for the name typed and the minute a lock ends."""
    return re.sub(r"\d\d:\d\d", "HH:MM", a.replace("wang", "nobody")) == re.sub(
        r"\d\d:\d\d", "HH:MM", b.replace("wang", "nobody")
    )


def test_login_lockout_and_sessions(engine, client, staff):
    first = client.get("/review")
    assert first.status_code == 303 and first.headers["location"] == "/review/login"
    page = client.get("/review/login")
    cookie = page.headers["set-cookie"]
    for attribute in ("Secure", "HttpOnly", "SameSite=strict", "Path=/review"):
        assert attribute in cookie, cookie
    no_token = client.post("/review/login", data={"name": "wang", "password": PASSWORD})
    assert no_token.status_code == 403
    unknown = login(client, "nobody", PASSWORD)
    assert unknown.status_code == 401 and "用户名或密码错误" in unknown.text
    # A wrong password gets the same answer as an unknown name: nothing tells which names exist.
    for _ in range(5):
        wrong = login(client, "wang", "wrong password!")
        assert wrong.status_code == 401 and wrong.text.replace("wang", "nobody") == unknown.text
    # Five in a row lock this address out of the name, for 15 minutes: every password now gets
    # the same answer (none is checked, so guessing cannot go on behind the lock) ...
    still = login(client, "wang", PASSWORD)
    assert still.status_code == 423 and "已暂时锁定" in still.text
    again = login(client, "wang", "wrong password!")
    assert again.status_code == 423 and again.text == still.text
    # ... and a name that does not exist is locked alike, so the lock tells nothing either.
    for _ in range(4):  # the fifth with the first above
        assert login(client, "nobody", "wrong password!").status_code == 401
    nobody = login(client, "nobody", PASSWORD)
    assert nobody.status_code == 423 and _same(nobody.text, still.text)
    with engine.connect() as conn:
        until = conn.execute(
            select(LOGIN_SOURCES.c.locked_until).where(LOGIN_SOURCES.c.name == login_key("wang"))
        ).scalar()
        account = conn.execute(
            select(USERS.c.locked_until, USERS.c.failed_logins).where(USERS.c.name == "wang")
        ).one()
        names = set(conn.execute(select(LOGIN_SOURCES.c.name)).scalars())
    # the names as typed are not kept (a password typed into the name field would be)
    assert names == {login_key("wang"), login_key("nobody")}
    until = until if until.tzinfo else until.replace(tzinfo=UTC)
    assert timedelta(minutes=14) < until - clock.now() <= timedelta(minutes=15)
    assert account == (None, 5)  # the account itself is not locked: 5 is far from 50
    with engine.begin() as conn:  # 15 minutes later
        conn.execute(
            update(LOGIN_SOURCES)
            .where(LOGIN_SOURCES.c.name == login_key("wang"))
            .values(locked_until=clock.now() - timedelta(seconds=1))
        )
    ok = login(client, "wang", PASSWORD)
    assert ok.status_code == 303 and ok.headers["location"] == "/review"
    queue = client.get("/review")
    assert queue.status_code == 200 and "wang" in queue.text
    stolen = dict(client.cookies)
    out = client.post("/review/logout", data={"csrf": csrf_of(queue.text)})
    assert out.status_code == 303
    with make_client(engine) as thief:  # the old cookie no longer opens a session
        for name, value in stolen.items():
            thief.cookies.set(name, value, domain="testserver.local", path="/review")
        assert thief.get("/review").status_code == 303
    with engine.connect() as conn:
        actions = [e["action"] for e in audit.for_target(conn, "user", "wang")]
    assert actions.count("login.failed") == 5 and "login.locked" in actions
    assert actions[-2:] == ["login", "logout"]


OWNER, STRANGER = "198.51.100.20", "203.0.113.66"


def test_a_stranger_cannot_lock_the_reviewer_out(engine, staff):
    """Wrong passwords lock out the address they come from, not the account: the reviewer
    logs in from her own address while a stranger is locked out."""
    for _ in range(5):
        assert users.login(engine, "wang", "wrong password!", source=STRANGER) == (
            users.LoginResult(None)
        )
    locked = users.login(engine, "wang", PASSWORD, source=STRANGER)
    assert locked.user is None and locked.locked_until > clock.now()
    assert users.login(engine, "wang", PASSWORD, source=OWNER).user.name == "wang"
    # IPv6: the lock covers the stranger's /64 (new addresses in it are free to make), not more
    for _ in range(5):
        users.login(engine, "li", "wrong password!", source="2001:db8:1:2::7")
    assert users.login(engine, "li", PASSWORD, source="2001:db8:1:2::99").locked_until
    assert users.login(engine, "li", PASSWORD, source="2001:db8:1:3::7").user.name == "li"
    # an admin's reset (`disclosure users add`) lifts the address locks on the name
    users.add_user(engine, "wang", "approver", PASSWORD)
    assert users.login(engine, "wang", PASSWORD, source=STRANGER).user.name == "wang"


def test_guesses_sent_at_once_get_no_more_tries_than_one_by_one(engine, staff):
    """Ten wrong passwords from one address at the same moment: five are checked, the others
    find the address locked (the row per name and address is locked while a login uses it)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    start = threading.Barrier(10)

    def one(i: int) -> users.LoginResult:
        start.wait()
        return users.login(engine, "wang", f"guess {i}!", source=STRANGER)

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(one, range(10)))
    assert sum(r.locked_until is not None for r in results) == 5
    with engine.connect() as conn:
        actions = [e["action"] for e in audit.for_target(conn, "user", "wang")]
    # the first refusal by the lock is audited, the others counted (login.locked_attempts later)
    assert actions.count("login.failed") == 5 and actions.count("login.locked") == 1


def test_guessing_from_many_addresses_locks_the_account_but_not_for_its_owner(engine, staff):
    """A guess spread over many addresses (never 5 from one) locks the account after
    account_failures, for every address its owner has not logged in from lately; the locked
    account answers as an unknown name does, whatever the password, so it neither reveals the
    name nor lets the guessing go on."""
    limits = {"failures": 5, "minutes": 15, "account_failures": 10}
    assert users.login(engine, "wang", PASSWORD, source=OWNER, **limits).user  # a known address
    for i in range(10):
        result = users.login(engine, "wang", f"guess {i}!", source=f"192.0.2.{i}", **limits)
        assert result == users.LoginResult(None)
    with engine.connect() as conn:
        failed, until = conn.execute(
            select(USERS.c.failed_logins, USERS.c.locked_until).where(USERS.c.name == "wang")
        ).one()
    until = until if until.tzinfo else until.replace(tzinfo=UTC)
    assert failed == 10 and timedelta(minutes=14) < until - clock.now() <= timedelta(minutes=15)
    # a new address, even with the right password, gets what an unknown name gets
    elsewhere = users.login(engine, "wang", PASSWORD, source="192.0.2.200", **limits)
    unknown = users.login(engine, "nobody", PASSWORD, source="192.0.2.201", **limits)
    assert elsewhere == unknown == users.LoginResult(None)
    # the owner, at her usual address, is not locked out; the attack still counts on
    assert users.login(engine, "wang", PASSWORD, source=OWNER, **limits).user.name == "wang"
    with engine.connect() as conn:
        assert conn.execute(
            select(USERS.c.failed_logins).where(USERS.c.name == "wang")
        ).scalar() == 10
        entries = [e for e in audit.for_target(conn, "user", "wang")
                   if e["action"] == "login.locked"]
    assert entries and entries[-1]["after"]["scope"] == "account"
    # each further round of failures locks for twice as long, at most a day
    lock = users._account_lock
    assert [lock(n, 10, 15) for n in (9, 10, 11, 20, 30)] == [
        None, timedelta(minutes=15), None, timedelta(minutes=30), timedelta(minutes=60)
    ]
    assert lock(500, 10, 15) == timedelta(days=1)
    # rows that no longer matter are forgotten (the worker does this daily): the guesses'
    # rows a day later, the owner's address once she has not used it for 90 days
    with engine.connect() as conn:
        assert conn.execute(select(LOGIN_SOURCES.c.source)).scalars().all()
    assert users.forget_logins(engine, now=clock.now() + timedelta(days=2)) == 12
    with engine.connect() as conn:
        kept = conn.execute(select(LOGIN_SOURCES.c.source)).scalars().all()
    assert kept == [OWNER]
    assert users.forget_logins(engine, now=clock.now() + timedelta(days=91)) == 1


def test_queue_sorted_by_due_date_with_overdue_highlighted(engine, client, cases, staff):
    old = rq.Submission(
        type="objection",
        uscc=cases.other_uscc,
        record_ids=[cases.other],
        contact_name="赵六",
        mobile="13700000000",
        reason="决定书文号有误,应为烟芝市监罚〔2026〕4号之一。",
    )
    late = rq.submit(engine, old, now=datetime.now(UTC) - timedelta(days=45))
    fresh = rq.submit(
        engine,
        rq.Submission(
            type="objection",
            uscc=cases.repairable_uscc,
            record_ids=[cases.repairable],
            contact_name="赵六",
            mobile="13700000000",
            reason="处罚机关名称有误,应为莱山分局。",
        ),
    )
    login(client)
    page = client.get("/review")
    assert page.status_code == 200
    rows = re.findall(
        r'<tr class="([^"]*)">\s*<th scope="row"><a href="/review/requests/([^"]+)"', page.text
    )
    assert [t for _, t in rows] == [late.tracking_no, fresh.tracking_no]
    assert rows[0][0] == "is-overdue" and rows[1][0] == ""
    assert page.text.count("已逾期") == 1
    # on a phone the rows are cards (.stack), each value under its column's name
    table = page.text.split('<table class="data-table queue stack">', 1)[1].split("</table>", 1)[0]
    cells = re.findall(r"<td[^>]*>", table.split("<tbody>", 1)[1])
    assert len(cells) == 12 and all("data-label=" in c for c in cells), cells
    with engine.connect() as conn:
        queue = request_queries.queue(conn)
    assert [q["tracking_no"] for q in queue] == [late.tracking_no, fresh.tracking_no]
    assert queue[0]["overdue"] and not queue[1]["overdue"]


# -- actions --------------------------------------------------------------------------------------


def test_accept_ask_for_material_and_supplement(engine, client, cases, staff):
    receipt = api_submit(client, cases)
    tracking, code = receipt["tracking_no"], receipt["access_code"]
    login(client, "li")
    detail = client.get(f"/review/requests/{tracking}")
    assert 'value="accept"' in detail.text and 'value="approve"' not in detail.text  # a reviewer
    no_reason = act(client, tracking, "accept", reason="")
    assert no_reason.status_code == 422 and "请填写理由" in no_reason.text
    assert act(client, tracking, "accept", "材料齐全,予以受理。").status_code == 303
    denied = act(client, tracking, "approve", "越权批准")
    assert denied.status_code == 403 and "无权批准" in denied.text
    asked = act(client, tracking, "more_info", "请补充缴纳罚款的银行回单。")
    assert asked.status_code == 303
    lookup = client.get(f"/requests/{tracking}")
    form_token = re.search(r'name="form_token" value="([^"]+)"', lookup.text).group(1)
    status = client.post(f"/requests/{tracking}", data={"form_token": form_token, "code": code})
    assert "需补正材料" in status.text and "请补充缴纳罚款的银行回单。" in status.text
    token = re.search(r'name="form_token" value="([^"]+)"', status.text).group(1)
    bad = client.post(
        f"/requests/{tracking}/supplement",
        data={"form_token": token, "code": code, "note": "回单见附件"},
        files=files(("回单.pdf", b"MZ not a pdf", "application/pdf")),
    )
    assert bad.status_code == 422 and "不是 PDF" in bad.text
    sent = client.post(
        f"/requests/{tracking}/supplement",
        data={"form_token": token, "code": code, "note": "回单见附件"},
        files=files(("回单.png", PNG, "image/png")),
    )
    assert sent.status_code == 200 and "补正材料已收到" in sent.text
    with engine.connect() as conn:
        req = request_queries.find(conn, tracking)
        steps = [s["action"] for s in request_queries.steps(conn, req["id"])]
        stages = [f["stage"] for f in request_queries.files(conn, req["id"])]
    assert req["status"] == "received"
    assert steps == ["submitted", "accepted", "more_info", "supplemented"]
    assert stages == ["submission", "supplement"]
    assert audit.verify(engine) == (True, None)


def test_approved_repair_leaves_every_public_output(engine, client, cases, staff, tmp_path):
    from publishing.search.sync import sync

    sync(engine)
    record, entity = cases.repairable, cases.repairable_uscc
    name = client.get(f"/api/v1/records/{record}").json()["record"]["entity_name"]
    assert _search_ids(client, name) & {record}
    assert _credit_check(client, entity)["penalties"] == 1
    assert record in client.get("/open-data/penalty.csv").text
    receipt = api_submit(client, cases)
    tracking = receipt["tracking_no"]
    login(client)
    approve = act(client, tracking, "approve", "已履行处罚决定并完成整改,准予信用修复。")
    assert approve.status_code == 303
    assert "已批准" in client.get(approve.headers["location"]).text
    # the record is gone from every public output, at once
    assert client.get(f"/records/{record}").status_code == 410
    gone = client.get(f"/api/v1/records/{record}").json()
    assert (gone["id"], gone["status"], gone["status_code"]) == (record, "gone", 410)
    assert record not in _search_ids(client, name)
    assert _credit_check(client, entity)["penalties"] == 0
    assert record not in client.get("/open-data/penalty.csv").text
    with engine.connect() as conn:
        last = (
            conn.execute(
                select(EVENTS).where(EVENTS.c.record_id == record).order_by(EVENTS.c.seq.desc())
            )
            .mappings()
            .first()
        )
        row = conn.execute(select(RECORDS).where(RECORDS.c.id == record)).mappings().one()
    assert (last["op"], last["reason"], last["version"]) == ("withdraw", "repair", 2)
    assert (row["status"], row["status_reason"], row["version"]) == ("withdrawn", "repair", 2)
    changes = client.get("/api/v1/changes", params={"since": last["seq"] - 1}).text
    assert record in changes and "withdraw" in changes
    # its only record gone, the entity has no profile (as if never published), and its feed is
    # empty, as for a code never on record ...
    assert client.get(f"/entities/{entity}").status_code == 404
    own = client.get(f"/entities/{entity}/feed.atom")
    assert own.status_code == 200 and "entry" not in own.text and name not in own.text
    # ... and the kind's feed carries an RFC 6721 deletion, no reason given
    feed = client.get("/feeds/penalty.atom")
    deleted = re.search(rf"<at:deleted-entry[^>]*{record}[^>]*>.*?</at:deleted-entry>", feed.text,
                        re.S)
    assert deleted and "已撤回" in deleted.group(0), feed.text
    assert "修复" not in feed.text  # nothing tells that the entity had a record repaired
    # the applicant sees the decision and its reason
    status = client.get(f"/api/v1/requests/{tracking}",
                        headers={"X-Access-Code": receipt["access_code"]})
    assert status.json()["status"] == "approved"
    assert status.json()["decision_reason"] == "已履行处罚决定并完成整改,准予信用修复。"
    # held: publishing the same file again does not bring it back
    again = publish([tmp_path / "cases.csv"], engine=engine, show_progress=False)
    assert again.as_json()["added"] == 0
    assert client.get(f"/records/{record}").status_code == 410
    # audited, in one chain with the submission
    with engine.connect() as conn:
        entries = audit.for_target(conn, "request", tracking)
        figures = request_queries.public_figures(conn)
    assert [e["action"] for e in entries] == ["request.submit", "request.approve"]
    decision = entries[-1]
    assert decision["actor"] == "wang"
    assert decision["before"]["records"][record] == {"status": "active", "version": 1}
    assert decision["after"]["records"][record]["status"] == "withdrawn"
    assert audit.verify(engine) == (True, None)
    assert (figures["received"], figures["repaired"], figures["median_workdays_to_decide"]) == (
        1,
        1,
        0,
    )


def _search_ids(client, q: str) -> set[str]:
    body = client.get("/api/v1/search", params={"q": q}).json()
    return {hit["id"] for hit in body["hits"]}


def _credit_check(client, uscc: str) -> dict:
    body = client.get("/api/v1/credit-check", params={"uscc": uscc}).json()
    result = body["results"][0] if "results" in body else body
    penalties = result.get("penalties")
    count = penalties.get("count") if isinstance(penalties, dict) else penalties
    if isinstance(count, list):
        count = len(count)
    return {"penalties": count, "raw": result}


def test_upheld_objections_correct_or_withdraw(engine, database_url, client, cases, staff, tmp_path):
    corrected = api_submit(
        client,
        cases,
        record=cases.other,
        uscc=cases.other_uscc,
        type_="objection",
        reason="罚款金额应为3000元,见处罚决定书第2页。",
    )
    login(client)
    no_fields = act(client, corrected["tracking_no"], "approve", "异议成立", outcome="correct")
    assert no_fields.status_code == 422 and "更正须给出更正后的字段" in no_fields.text
    wrong_field = act(
        client,
        corrected["tracking_no"],
        "approve",
        "异议成立",
        outcome="correct",
        corrections="status=active",
    )
    assert wrong_field.status_code == 422 and "不能更正" in wrong_field.text
    ok = act(
        client,
        corrected["tracking_no"],
        "approve",
        "异议成立,按决定书更正罚款金额。",
        outcome="correct",
        corrections="fine_yuan=3000",
    )
    assert ok.status_code == 303
    record = client.get(f"/api/v1/records/{cases.other}").json()["record"]
    assert (record["fine_yuan"], record["version"]) == ("3000.00", 2)
    with engine.connect() as conn:
        ops = conn.execute(
            select(EVENTS.c.op, EVENTS.c.reason, EVENTS.c.version)
            .where(EVENTS.c.record_id == cases.other)
            .order_by(EVENTS.c.seq)
        ).all()
    assert [tuple(o) for o in ops] == [("add", None, 1), ("change", "objection", 2)]
    assert "异议处理中" not in client.get(f"/entities/{cases.other_uscc}").text
    # The platform's next export still has the uncorrected fine: it must not undo the correction.
    report = tmp_path / "again.json"
    again = subprocess.run(
        [sys.executable, "-m", "portal.cli", "publish", str(tmp_path / "cases.csv"), "--report", str(report)],
        env={**os.environ, "DISCLOSURE_DATABASE_URL": database_url,
             "DISCLOSURE_DATA_DIR": str(tmp_path / "var")},
        capture_output=True, text=True, timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert "依申请处理保留 1" in again.stdout and "变更事件 0 条" in again.stdout
    assert json.loads(report.read_text(encoding="utf-8"))["held"] == 1
    record = client.get(f"/api/v1/records/{cases.other}").json()["record"]
    assert (record["fine_yuan"], record["version"]) == ("3000.00", 2)
    # Once the platform has the correction too, its export is the published content: unchanged.
    fixed = write_csv(tmp_path / "fixed.csv", [
        penalty_row(4, 处罚决定日期=months_ago(5), 领域="价格", **{"罚款金额(元)": "3000"})])
    same = publish([fixed], engine=engine, show_progress=False)
    assert same.events == 0 and same.reports[0].counts["unchanged"] == 1
    assert "held" not in same.reports[0].counts
    withdrawn = api_submit(
        client,
        cases,
        record=cases.too_early,
        uscc=cases.too_early_uscc,
        type_="objection",
        reason="该处罚决定已被行政复议撤销,见复议决定书。",
    )
    outcome_missing = act(client, withdrawn["tracking_no"], "approve", "异议成立")
    assert outcome_missing.status_code == 422 and "须选择处理结果" in outcome_missing.text
    assert (
        act(
            client,
            withdrawn["tracking_no"],
            "approve",
            "处罚决定已被撤销,撤下公示。",
            outcome="withdraw",
        ).status_code
        == 303
    )
    assert client.get(f"/records/{cases.too_early}").status_code == 410
    with engine.connect() as conn:
        last = conn.execute(
            select(EVENTS.c.op, EVENTS.c.reason)
            .where(EVENTS.c.record_id == cases.too_early)
            .order_by(EVENTS.c.seq.desc())
        ).first()
    assert tuple(last) == ("withdraw", "objection")
    rejected = api_submit(
        client,
        cases,
        record=cases.never,
        uscc=cases.never_uscc,
        type_="objection",
        reason="认为处罚过重,请求撤下公示记录。",
    )
    assert (
        act(client, rejected["tracking_no"], "reject", "处罚决定合法有效,异议不成立。").status_code
        == 303
    )
    assert client.get(f"/records/{cases.never}").status_code == 200
    assert act(client, rejected["tracking_no"], "approve", "再次批准").status_code == 409
    assert audit.verify(engine) == (True, None)


def test_decision_api_with_bearer_tokens(engine, client, cases, staff):
    receipt = api_submit(client, cases)
    url = f"/api/v1/review/requests/{receipt['tracking_no']}/decision"
    body = {"decision": "approve", "outcome": "withdraw", "reason": "准予信用修复。"}
    assert client.post(url, json=body).status_code == 401
    bad = client.post(url, json=body, headers={"Authorization": "Bearer dsk_not-a-token"})
    assert bad.status_code == 401 and "authorization" in bad.json()["errors"]
    reviewer = users.new_token(engine, "li")
    denied = client.post(url, json=body, headers={"Authorization": f"Bearer {reviewer}"})
    assert denied.status_code == 403 and "无权批准" in denied.json()["errors"]["decision"]
    approver = {"Authorization": f"Bearer {users.new_token(engine, 'wang')}"}
    assert client.post(url, json={**body, "decision": "maybe"}, headers=approver).status_code == 422
    assert client.post(url, json={**body, "reason": ""}, headers=approver).json() == {
        "errors": {"reason": "请填写理由"}
    }
    done = client.post(url, json=body, headers=approver)
    assert done.status_code == 200, done.text
    assert (
        done.json()["status"] == "approved" and done.json()["records"][0]["id"] == cases.repairable
    )
    assert client.get(f"/records/{cases.repairable}").status_code == 410
    assert client.post(url, json=body, headers=approver).status_code == 409
    missing = client.post(
        "/api/v1/review/requests/YX20990101-000001/decision", json=body, headers=approver
    )
    assert missing.status_code == 404
    with engine.connect() as conn:
        tokens = conn.execute(select(REQUESTS.c.decided_by)).scalars().all()
    assert tokens == ["wang"]


def test_attachments_only_for_logged_in_reviewers(engine, client, cases, staff):
    receipt = api_submit(client, cases)
    with engine.connect() as conn:
        req = request_queries.find(conn, receipt["tracking_no"])
        attachment = request_queries.files(conn, req["id"])[0]
    url = f"/review/attachments/{attachment['id']}"
    anonymous = client.get(url)
    assert anonymous.status_code == 401 and PDF not in anonymous.content
    login(client, "li")
    detail = client.get(f"/review/requests/{receipt['tracking_no']}")
    assert url in detail.text and attachment["sha256"] in detail.text
    served = client.get(url)
    assert served.status_code == 200 and served.content == PDF
    assert served.headers["content-type"].startswith("application/pdf")
    assert served.headers["content-disposition"].startswith("attachment")
    assert "no-store" in served.headers["cache-control"]
    assert client.get("/review/attachments/999999").status_code == 404
    with engine.connect() as conn:
        viewed = [
            e
            for e in audit.for_target(conn, "request", receipt["tracking_no"])
            if e["action"] == "attachment.view"
        ]
    assert [(e["actor"], e["after"]["sha256"]) for e in viewed] == [("li", attachment["sha256"])]


def test_decision_email(engine, client, cases, staff, smtp):  # noqa: F811 - fixture
    receipt = api_submit(client, cases, email="qiye@example.com")
    assert wait_for(lambda: len(smtp.messages) == 1)
    login(client)
    act(client, receipt["tracking_no"], "reject", "缴款凭证与处罚决定书金额不符。")
    assert wait_for(lambda: len(smtp.messages) == 2)
    message = email.message_from_bytes(
        smtp.messages[1].original_content, policy=email.policy.default
    )
    body = message.get_body().get_content()
    assert "不予信用修复" in str(message["Subject"]) and "缴款凭证与处罚决定书金额不符。" in body


def test_form_submission_then_review_in_the_browser_flow(engine, client, cases, staff):
    """The two halves over HTTP as a browser does them (the Playwright test drives them too)."""
    token = form_token(client)
    response = client.post(
        "/requests/new",
        data={
            "form_token": token,
            **fields(uscc=cases.repairable_uscc, record_ids=[cases.repairable]),
        },
        files=files(("证明.pdf", PDF, "application/pdf")),
    )
    assert response.status_code == 201
    tracking = re.search(r'id="tracking-no">([^<]+)<', response.text).group(1)
    login(client)
    assert tracking in client.get("/review").text
    assert act(client, tracking, "approve", "准予修复").status_code == 303
    assert count_requests(engine) == 1


def test_cli_users_add_and_token(engine, database_url, client, cases, tmp_path):
    env = {
        **os.environ,
        "DISCLOSURE_DATABASE_URL": database_url,
        "DISCLOSURE_DATA_DIR": str(tmp_path / "var"),
    }

    def cli(*args, stdin=""):
        return subprocess.run(
            [sys.executable, "-m", "portal.cli", *args],
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    added = cli("users", "add", "zhao", "--role", "approver", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert "已添加用户 zhao" in added.stdout
    assert cli("users", "add", "qian", "--role", "approver", stdin="short\n").returncode == 1
    assert cli("users", "add", "sun", "--role", "boss", stdin=PASSWORD + "\n").returncode == 2
    assert cli("users", "token", "nobody").returncode == 1
    token = cli("users", "token", "zhao")
    assert token.returncode == 0, token.stderr
    value = token.stdout.strip()
    assert value.startswith("dsk_") and len(value) > 40
    with engine.connect() as conn:
        assert users.token_user(conn, value).name == "zhao"
        assert value not in str(conn.execute(select(users.TOKENS)).all())
    assert login(client, "zhao", PASSWORD).status_code == 303
    receipt = api_submit(client, cases)
    decided = client.post(
        f"/api/v1/review/requests/{receipt['tracking_no']}/decision",
        json={"decision": "reject", "reason": "材料不全"},
        headers={"Authorization": f"Bearer {value}"},
    )
    assert decided.status_code == 200 and decided.json()["status"] == "rejected"


def test_more_records_in_one_request(engine, client, tmp_path, staff):
    rows = [
        penalty_row(
            50,
            处罚决定日期=months_ago(5 + i),
            领域="广告",
            行政处罚决定书文号=f"烟芝市监罚〔2026〕5{i}号",
        )
        for i in range(3)
    ]
    publish([write_csv(tmp_path / "multi.csv", rows)], engine=engine, show_progress=False)
    with engine.connect() as conn:
        ids = (
            conn.execute(select(RECORDS.c.id).where(RECORDS.c.entity_id == uscc(50)))
            .scalars()
            .all()
        )
    assert len(ids) == 3
    response = client.post(
        "/api/v1/requests",
        data=fields(uscc=uscc(50), record_ids=ids),
        files=files(("p.pdf", PDF, "application/pdf")),
    )
    assert response.status_code == 201, response.text
    approver = {"Authorization": f"Bearer {users.new_token(engine, 'wang')}"}
    done = client.post(
        f"/api/v1/review/requests/{response.json()['tracking_no']}/decision",
        json={"decision": "approve", "reason": "三案均已履行"},
        headers=approver,
    )
    assert done.status_code == 200
    assert all(client.get(f"/records/{i}").status_code == 410 for i in ids)


# -- corrections are cleaned like a file row ----------------------------------------------------


def _objection(client, cases) -> str:
    return api_submit(
        client, cases, record=cases.other, uscc=cases.other_uscc, type_="objection",
        reason="违法事实表述有误,见处罚决定书第2页。",
    )["tracking_no"]


def test_corrections_are_masked_in_every_output(engine, client, cases, staff):
    from publishing.search.sync import sync

    sync(engine)
    person_id = "370602199001011234"
    facts = f"当事人之一身份证{person_id},手机13812345678,经营超过保质期的食品。"
    approver = {"Authorization": f"Bearer {users.new_token(engine, 'wang')}"}
    done = client.post(
        f"/api/v1/review/requests/{_objection(client, cases)}/decision",
        json={"decision": "approve", "outcome": "correct", "reason": "异议成立,更正违法事实。",
              "corrections": {"facts": facts}},
        headers=approver,
    )
    assert done.status_code == 200, done.text
    record = client.get(f"/api/v1/records/{cases.other}").json()["record"]
    assert record["version"] == 2 and "138****5678" in record["facts"]
    name = record["entity_name"]
    with engine.connect() as conn:
        stored = conn.execute(select(RECORDS.c.data).where(RECORDS.c.id == cases.other)).scalar()
        trail = json.dumps(conn.execute(select(AUDIT)).mappings().all(), default=str)
    outputs = {
        "database": json.dumps(stored, ensure_ascii=False),
        "audit": trail,
        "page": client.get(f"/records/{cases.other}").text,
        "api": client.get(f"/api/v1/records/{cases.other}").text,
        "search": client.get("/api/v1/search", params={"q": name}).text,
        "changes": client.get("/api/v1/changes", params={"since": 0}).text,
        "csv": client.get("/open-data/penalty.csv").text,
        "ndjson": client.get("/open-data/penalty.ndjson").text,
    }
    assert "经营超过保质期的食品" in outputs["search"] + outputs["changes"]
    for where, text in outputs.items():
        for secret in ("13812345678", "199001011234"):
            assert secret not in text, (where, secret)
    assert "138****5678" in outputs["page"] and "138****5678" in outputs["csv"]


@pytest.mark.parametrize(
    ("corrections", "message"),
    [
        ({"decided_on": "2031-01-01"}, "日期晚于今天"),
        ({"severity": "超级严重"}, "失信程度应为 轻微/一般/严重"),
        ({"procedure": "简易"}, "简易程序案件不予公示"),
        ({"fine_yuan": "-5"}, "金额不能为负数"),
        ({"facts": ""}, "必填项为空"),
    ],
    ids=["future-date", "severity", "simple-procedure", "negative-fine", "required-blank"],
)
def test_invalid_corrections_are_refused_before_anything_is_written(
    engine, client, cases, staff, corrections, message
):
    tracking = _objection(client, cases)
    with engine.connect() as conn:
        before = conn.execute(select(RECORDS).where(RECORDS.c.id == cases.other)).mappings().one()
        events = conn.execute(select(EVENTS.c.seq)).all()
    approver = {"Authorization": f"Bearer {users.new_token(engine, 'wang')}"}
    refused = client.post(
        f"/api/v1/review/requests/{tracking}/decision",
        json={"decision": "approve", "outcome": "correct", "reason": "异议成立,予以更正。",
              "corrections": corrections},
        headers=approver,
    )
    assert refused.status_code == 422, refused.text
    assert message in refused.json()["errors"]["corrections"]
    login(client)
    form = act(client, tracking, "approve", "异议成立,予以更正。", outcome="correct",
               corrections=json.dumps(corrections, ensure_ascii=False))
    assert form.status_code == 422 and message in form.text
    with engine.connect() as conn:
        after = conn.execute(select(RECORDS).where(RECORDS.c.id == cases.other)).mappings().one()
        assert conn.execute(select(EVENTS.c.seq)).all() == events
        assert request_queries.find(conn, tracking)["status"] == "received"
    assert dict(after) == dict(before)


def test_a_repaired_record_is_not_named_in_any_feed(engine, client, cases, staff):
    """RSS deletions (current documents and archives) carry only a reference and the date."""
    record, entity = cases.repairable, cases.repairable_uscc
    published = client.get(f"/api/v1/records/{record}").json()["record"]
    approver = {"Authorization": f"Bearer {users.new_token(engine, 'wang')}"}
    done = client.post(
        f"/api/v1/review/requests/{api_submit(client, cases)['tracking_no']}/decision",
        json={"decision": "approve", "reason": "准予信用修复。"},
        headers=approver,
    )
    assert done.status_code == 200, done.text
    with engine.connect() as conn:
        seq = conn.execute(select(EVENTS.c.seq).order_by(EVENTS.c.seq.desc())).scalars().first()
    own = client.get(f"/entities/{entity}/feed.rss")
    assert own.status_code == 200 and "<item>" not in own.text  # nothing left of it
    urls = ["/feeds/penalty.rss", "/feeds/all.rss",
            f"/feeds/penalty.rss?before={seq + 1}", f"/feeds/all.rss?before={seq + 1}"]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, (url, response.text[:300])
        items = re.findall(r"<item>.*?</item>", response.text, re.S)
        [gone] = [i for i in items if f"/records/{record}<" in i]
        assert re.search(r"<title>【已撤下】公示信息</title>", gone), gone
        assert f"records/{record}/v2</guid>" in gone and "<pubDate>" in gone
        for detail in (published["entity_name"], published["decision_no"], "信用修复", "停止公示"):
            assert detail not in "".join(items), (url, detail)


def test_login_hint_states_the_configured_lockout(engine, tmp_path, monkeypatch):
    from publishing.settings import get_settings

    source = request_config.DEFAULT_FILE.read_text(encoding="utf-8")
    configured = re.sub(r"lockout_minutes = \d+", "lockout_minutes = 7",
                        re.sub(r"lockout_failures = \d+", "lockout_failures = 3", source))
    (tmp_path / "requests.toml").write_text(configured, encoding="utf-8")
    monkeypatch.setenv("DISCLOSURE_REQUESTS_FILE", str(tmp_path / "requests.toml"))
    get_settings.cache_clear()
    request_config.load_config.cache_clear()
    try:
        with make_client(engine) as client:
            hint = client.get("/review/login").text
        assert "连续 3 次输入错误" in hint and "暂停登录 7 分钟" in hint
    finally:
        request_config.load_config.cache_clear()
