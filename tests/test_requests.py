"""The intake of objections and credit-repair requests, through the form and the API, on SQLite
and PostgreSQL: what a good request stores (durably, hashed, under random names), what every
kind of bad input is told (and that it stores nothing), repeats, limits, e-mail, figures."""

from __future__ import annotations

import hashlib
import os
import re

import pytest
from sqlalchemy import select

from portal.ratelimit import retry_in
from publishing import audit, request_codes, request_config, request_queries
from publishing import requests as rq
from publishing.request_models import ATTACHMENTS, REQUEST_RECORDS, REQUESTS
from tests.requests_support import (
    EXE,
    JPG,
    MOBILE,
    PDF,
    PNG,
    count_attachments,
    count_requests,
    fields,
    files,
    form_token,
    limit_requests,
    make_client,
    objection_on_other,
    receipt_of,
    smtp,  # noqa: F401 - a fixture
    stored_files,
    wait_for,
)

MB = 1024 * 1024


def submit_form(client, data, upload=None, token=None):
    token = form_token(client) if token is None else token
    return client.post(
        "/requests/new",
        data={"form_token": token, **data},
        files=upload if upload is not None else files(("证明.pdf", PDF, "application/pdf")),
    )


def look_up(client, tracking, code):
    """The status page as the lookup form asks for it: the code in a POST body."""
    lookup = client.get(f"/requests/{tracking}")
    token = re.search(r'name="form_token" value="([^"]+)"', lookup.text).group(1)
    return client.post(f"/requests/{tracking}", data={"form_token": token, "code": code})


def assert_nothing_stored(engine):
    assert count_requests(engine) == 0
    assert count_attachments(engine) == 0
    assert stored_files(engine) == []


# -- a good request ---------------------------------------------------------------------------


def test_repair_request_through_the_form(engine, client, cases):
    form = client.get(f"/requests/new?type=repair&record={cases.repairable}")
    assert form.status_code == 200
    assert form.headers["cache-control"] == "no-store"
    assert "烟台市芝罘区测试1食品有限公司" in form.text  # the entity, found from the record
    assert f'value="{cases.repairable}" checked' in form.text  # prefilled
    assert "可申请信用修复" in form.text and "守信承诺" in form.text
    response = submit_form(
        client,
        fields(uscc=cases.repairable_uscc, record_ids=[cases.repairable], email="a@example.com"),
        files(("整改报告.pdf", PDF, "application/pdf"), ("收据.jpg", JPG, "image/jpeg")),
    )
    assert response.status_code == 201, response.text
    tracking, code = receipt_of(response.text)
    assert re.fullmatch(r"YX\d{8}-\d{6}", tracking)
    assert re.fullmatch(r"[A-Z2-9]{5}-[A-Z2-9]{5}", code)
    assert "只显示这一次" in response.text
    with engine.connect() as conn:
        req = conn.execute(select(REQUESTS)).mappings().one()
        linked = conn.execute(select(REQUEST_RECORDS.c.record_id)).scalars().all()
        stored = conn.execute(select(ATTACHMENTS).order_by(ATTACHMENTS.c.id)).mappings().all()
    assert (req["tracking_no"], req["type"], req["status"], req["channel"]) == (
        tracking,
        "repair",
        "received",
        "web",
    )
    assert req["entity_id"] == cases.repairable_uscc and linked == [cases.repairable]
    assert req["commitment"] is True and req["mobile"] == MOBILE
    assert code.replace("-", "") not in req["access_hash"]
    assert request_codes.code_matches(req["access_hash"], code) and request_codes.code_matches(
        req["access_hash"], code.lower()
    )
    assert req["review_due"] > req["submitted_on"] and req["decision_due"] > req["review_due"]
    # attachments: sniffed types, random names outside anything served, SHA-256 recorded
    assert [(a["file_name"], a["media_type"], a["size"]) for a in stored] == [
        ("整改报告.pdf", "application/pdf", len(PDF)),
        ("收据.jpg", "image/jpeg", len(JPG)),
    ]
    on_disk = stored_files(engine)
    assert sorted(p.name for p in on_disk) == sorted(a["stored_name"] for a in stored)
    from portal.templating import STATIC_DIR

    for path, row in zip(
        sorted(on_disk, key=lambda p: p.name),
        sorted(stored, key=lambda a: a["stored_name"]),
        strict=True,
    ):
        assert re.fullmatch(r"[0-9a-f]{32}\.(pdf|jpg)", path.name)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"]
        assert STATIC_DIR not in path.parents
        assert path.stat().st_mode & 0o077 == 0
    assert client.get(f"/static/{on_disk[0].name}").status_code == 404
    # audited
    with engine.connect() as conn:
        entries = audit.for_target(conn, "request", tracking)
    assert [e["action"] for e in entries] == ["request.submit"]
    assert entries[0]["after"]["mobile"] == "139****5678"
    # the status page, with the code only (posted: never in the URL)
    assert client.get(f"/requests/{tracking}").status_code == 200  # asks for the code
    wrong = look_up(client, tracking, "AAAAA-AAAAA")
    assert wrong.status_code == 404 and "REASON" not in wrong.text and "张三" not in wrong.text
    page = look_up(client, tracking, code.lower())
    assert page.status_code == 200
    assert "已接收，待初审" in page.text and req["decision_due"].isoformat() in page.text
    assert page.headers["referrer-policy"] == "no-referrer"


def test_objection_marks_the_profile_and_the_record(engine, client, cases):
    response = submit_form(
        client,
        fields(
            type="objection",
            commitment=None,
            uscc=cases.other_uscc,
            record_ids=[cases.other],
            reason="罚款金额与处罚决定书不一致,决定书为3000元。",
        ),
        files(),
    )
    assert response.status_code == 201, response.text
    with engine.connect() as conn:
        assert request_queries.objection_pending(conn, entity_id=cases.other_uscc)
        assert request_queries.objection_pending(conn, record_id=cases.other)
        assert not request_queries.objection_pending(conn, entity_id=cases.repairable_uscc)
    assert "异议处理中" in client.get(f"/entities/{cases.other_uscc}").text
    assert "异议处理中" in client.get(f"/records/{cases.other}").text
    assert "异议处理中" not in client.get(f"/entities/{cases.repairable_uscc}").text
    # a second objection on the same record while the first is open is accepted (the same
    # applicant's too: reviewers see both, tests/test_review_applicants.py)
    again = submit_form(
        client,
        fields(type="objection", commitment=None, uscc=cases.other_uscc, record_ids=[cases.other]),
        files(),
    )
    assert again.status_code == 201, again.text[:500]
    assert count_requests(engine) == 2


# -- bad inputs: each says what is wrong and stores nothing -----------------------------------


def _bad_cases(c):
    ok_file = files(("证明.pdf", PDF, "application/pdf"))
    uscc_bad = c.repairable_uscc[:-1] + ("0" if c.repairable_uscc[-1] != "0" else "1")
    return {
        "wrong check digit": (
            fields(uscc=uscc_bad, record_ids=[c.repairable]),
            ok_file,
            "uscc",
            "校验位错误",
        ),
        "USCC not the record's entity": (
            fields(uscc=c.other_uscc, record_ids=[c.repairable]),
            ok_file,
            "uscc",
            "与所选记录的当事主体不一致",
        ),
        "repair before repairable_from": (
            fields(uscc=c.soon_uscc, record_ids=[c.soon]),
            ok_file,
            "record_ids",
            "起方可申请信用修复",
        ),
        "repair when publicity ends first": (
            fields(uscc=c.too_early_uscc, record_ids=[c.too_early]),
            ok_file,
            "record_ids",
            "公示期满并自动停止公示，无需申请信用修复",
        ),
        "never-repairable penalty": (
            fields(uscc=c.never_uscc, record_ids=[c.never]),
            ok_file,
            "record_ids",
            "吊销营业执照",
        ),
        "oversize file": (
            fields(uscc=c.repairable_uscc, record_ids=[c.repairable]),
            files(("big.pdf", PDF + b"0" * (10 * MB), "application/pdf")),
            "attachments",
            "超过单个文件 10 MB",
        ),
        "exe renamed pdf": (
            fields(uscc=c.repairable_uscc, record_ids=[c.repairable]),
            files(("证明.pdf", EXE, "application/pdf")),
            "attachments",
            "不是 PDF、JPG 或 PNG",
        ),
        "six files": (
            fields(uscc=c.repairable_uscc, record_ids=[c.repairable]),
            files(*[(f"{i}.png", PNG, "image/png") for i in range(6)]),
            "attachments",
            "最多上传 5 个文件",
        ),
        "no commitment": (
            fields(uscc=c.repairable_uscc, record_ids=[c.repairable], commitment=None),
            ok_file,
            "commitment",
            "守信承诺",
        ),
        "bad mobile": (
            fields(uscc=c.repairable_uscc, record_ids=[c.repairable], mobile="0535-123"),
            ok_file,
            "mobile",
            "手机号码应为11位",
        ),
        "no proof for repair": (
            fields(uscc=c.repairable_uscc, record_ids=[c.repairable]),
            [],
            "attachments",
            "证明材料",
        ),
        "unknown record": (
            fields(uscc=c.repairable_uscc, record_ids=["pn-0000000000000000"]),
            ok_file,
            "record_ids",
            "没有编号为",
        ),
    }


CASE_NAMES = [
    "wrong check digit",
    "USCC not the record's entity",
    "repair before repairable_from",
    "never-repairable penalty",
    "oversize file",
    "exe renamed pdf",
    "six files",
    "no commitment",
    "bad mobile",
    "no proof for repair",
    "unknown record",
]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_form_input_is_explained_and_stores_nothing(engine, client, cases, case):
    data, upload, field, message = _bad_cases(cases)[case]
    response = submit_form(client, data, upload)
    assert response.status_code == 422, response.text[:500]
    assert message in response.text
    assert f'id="e-{field}"' in response.text  # next to its field
    assert "未保存任何内容" in response.text
    assert_nothing_stored(engine)


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_api_input_names_the_field_and_stores_nothing(engine, client, cases, case):
    data, upload, field, message = _bad_cases(cases)[case]
    response = client.post("/api/v1/requests", data=data, files=upload)
    assert response.status_code == 422
    body = response.json()
    assert message in body["errors"][field], body
    assert_nothing_stored(engine)


def test_missing_and_foreign_form_tokens_are_refused(engine, client, cases):
    data = fields(uscc=cases.repairable_uscc, record_ids=[cases.repairable])
    form_token(client)  # the browser has its cookie
    missing = client.post(
        "/requests/new", data=data, files=files(("p.pdf", PDF, "application/pdf"))
    )
    assert missing.status_code == 403 and "缺少安全令牌" in missing.text
    with make_client(engine) as other:  # another browser's token: its cookie is not ours
        foreign = form_token(other)
    stolen = submit_form(client, data, token=foreign)
    assert stolen.status_code == 403 and "不匹配" in stolen.text
    forged = submit_form(client, data, token=foreign.rsplit(".", 1)[0] + ".0123456789abcdef")
    assert forged.status_code == 403
    honeypot = submit_form(client, {**data, "website": "http://spam.example"})
    assert honeypot.status_code == 400
    assert_nothing_stored(engine)


def test_replayed_form_token_never_creates_a_second_request(engine, client, cases):
    token = form_token(client)
    data = fields(uscc=cases.repairable_uscc, record_ids=[cases.repairable])
    first = submit_form(client, data, token=token)
    assert first.status_code == 201
    again = submit_form(client, data, token=token)  # a double click, or the page reloaded
    assert again.status_code == 200
    assert receipt_of(again.text) == receipt_of(first.text)
    assert "未重复受理" in again.text
    changed = submit_form(
        client, {**data, "reason": "另一份申请的理由,内容不同于第一次。"}, token=token
    )
    assert changed.status_code == 409 and "已用于提交另一份申请" in changed.text
    assert count_requests(engine) == 1 and len(stored_files(engine)) == 1


# -- the API -----------------------------------------------------------------------------------


def test_api_intake_status_and_idempotency(engine, client, cases):
    data = fields(uscc=cases.repairable_uscc, record_ids=[cases.repairable])
    upload = files(("proof.png", PNG, "image/png"))
    created = client.post(
        "/api/v1/requests", data=data, files=upload, headers={"Idempotency-Key": "cn-credit-0001"}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) >= {"tracking_no", "access_code", "status", "review_due", "decision_due"}
    assert body["status"] == "received" and body["type"] == "repair"
    repeat = client.post(
        "/api/v1/requests", data=data, files=upload, headers={"Idempotency-Key": "cn-credit-0001"}
    )
    assert repeat.status_code == 200 and repeat.headers["idempotent-replayed"] == "true"
    assert (repeat.json()["tracking_no"], repeat.json()["access_code"]) == (
        body["tracking_no"],
        body["access_code"],
    )
    other = client.post(
        "/api/v1/requests",
        data={**data, "reason": "完全不同的理由,另一份申请。"},
        files=upload,
        headers={"Idempotency-Key": "cn-credit-0001"},
    )
    assert other.status_code == 409 and "idempotency_key" in other.json()["errors"]
    assert count_requests(engine) == 1
    status = client.get(
        f"/api/v1/requests/{body['tracking_no']}", headers={"X-Access-Code": body["access_code"]}
    )
    assert status.status_code == 200 and "deprecation" not in status.headers
    view = status.json()
    assert (view["status"], view["record_ids"], view["decision"]) == (
        "received",
        [cases.repairable],
        None,
    )
    assert view["steps"][0]["action"] == "submitted"
    for code in ("", "WRONG-CODE1"):
        denied = client.get(
            f"/api/v1/requests/{body['tracking_no']}", headers={"X-Access-Code": code}
        )
        assert denied.status_code == 404 and denied.json() == {
            "errors": {"code": "受理编号或查询码不正确"}
        }
    assert client.get(f"/api/v1/requests/{body['tracking_no']}").status_code == 404  # no code
    unknown = client.get("/api/v1/requests/YX20990101-000001", headers={"X-Access-Code": "A" * 10})
    assert unknown.status_code == 404
    as_json = client.post("/api/v1/requests", json=data)
    assert as_json.status_code == 415 and "request" in as_json.json()["errors"]


def test_api_reports_every_field_at_fault(engine, client, cases):
    response = client.post(
        "/api/v1/requests",
        data={"type": "complaint", "uscc": "123", "mobile": "12", "email": "not-an-address"},
    )
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {
        "type",
        "uscc",
        "record_ids",
        "contact_name",
        "mobile",
        "email",
        "reason",
    }
    assert_nothing_stored(engine)


def test_body_size_limit(engine, client, cases):
    data = fields(uscc=cases.repairable_uscc, record_ids=[cases.repairable])
    big = files(*[(f"{i}.pdf", PDF + b"0" * (10 * MB - 200), "application/pdf") for i in range(6)])
    response = client.post("/api/v1/requests", data=data, files=big)
    assert response.status_code == 413
    assert_nothing_stored(engine)


def test_per_ip_rate_limit(engine, cases, tmp_path, monkeypatch):
    limit_requests(tmp_path, monkeypatch, "submit", (2, 3600))
    try:
        with make_client(engine) as client:
            answers = [client.post("/api/v1/requests", data={"type": "repair"}) for _ in range(3)]
            assert [a.status_code for a in answers] == [422, 422, 429]
            # the wait as people say it (retry_in: minutes past one; the hour's window is
            # the clock's, so how long is left of it depends on when the test runs)
            wait = int(answers[-1].headers["retry-after"])
            assert answers[-1].json()["errors"]["request"] == f"提交过于频繁，请{retry_in(wait)}再试"
            page = submit_form(
                client, fields(uscc=cases.repairable_uscc, record_ids=[cases.repairable])
            )
            assert page.status_code == 429 and "过于频繁" in page.text
            assert int(page.headers["retry-after"]) > 0
    finally:
        request_config.load_config.cache_clear()
    assert_nothing_stored(engine)


# -- e-mail and figures ------------------------------------------------------------------------


def test_confirmation_email(engine, client, cases, smtp):  # noqa: F811 - fixture
    import email

    response = submit_form(
        client,
        fields(uscc=cases.repairable_uscc, record_ids=[cases.repairable], email="qiye@example.com"),
    )
    assert response.status_code == 201
    tracking, code = receipt_of(response.text)
    assert wait_for(lambda: smtp.messages), "no mail arrived"
    envelope = smtp.messages[0]
    assert envelope.rcpt_tos == ["qiye@example.com"]
    assert envelope.mail_from == "xypt@scjg.yantai.gov.cn"
    message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    assert tracking in str(message["Subject"])
    body = message.get_body().get_content()
    assert tracking in body and "办理期限" in body
    assert code.replace("-", "") not in body.replace("-", "")  # the access code is never mailed


def test_public_figures(engine, cases):
    with engine.connect() as conn:
        assert request_queries.public_figures(conn) == {
            "received": 0,
            "received_repair": 0,
            "received_objection": 0,
            "repaired": 0,
            "repaired_records": 0,
            "objections_upheld": 0,
            "decided": 0,
            "median_workdays_to_decide": None,
        }


@pytest.mark.slow
def test_concurrent_submissions_to_a_real_server(engine, database_url, tmp_path):
    """50 submissions at once over HTTP to uvicorn (bench/requests_load.py does 200): every one
    stored exactly once, distinct tracking numbers, every attachment on disk, the chain intact."""
    from bench.requests_load import run

    summary = run(database_url, tmp_path, 50, 50)
    lat = summary["latency"]
    print(
        f"\n50 concurrent submissions ({engine.dialect.name}): {summary['wall_seconds']:.2f} s, "
        f"p50 {lat['p50'] * 1000:.0f} ms, p95 {lat['p95'] * 1000:.0f} ms"
    )
    assert summary["statuses"] == [201]
    assert (
        summary["stored"] == summary["distinct_tracking_numbers"] == summary["receipts_found"] == 50
    )
    assert summary["attachments"] == 50 and summary["files_on_disk_ok"]
    assert summary["expected_hashes_ok"] and summary["audit_chain_ok"]
    assert summary["ok"]


def test_a_missing_type_is_explained_in_chinese_only(engine, client, cases):
    data = fields(type="", uscc=cases.repairable_uscc, record_ids=[cases.repairable])
    page = submit_form(client, data)
    assert page.status_code == 422 and "请选择申请类型：异议或信用修复" in page.text
    api = client.post("/api/v1/requests", data=data, files=files(("p.pdf", PDF, "application/pdf")))
    assert api.json()["errors"]["type"] == "请选择申请类型：异议或信用修复"
    assert_nothing_stored(engine)


# -- several requests on one record, under concurrency ------------------------------------------


def test_concurrent_submissions_for_one_record_are_each_stored(engine, cases):
    """Six threads submit an objection about the same record at the same moment (the same
    applicant, different reasons): none is refused, each is stored once with its own tracking
    number, and the audit chain holds."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    n = 6
    start = threading.Barrier(n)

    def one(i: int):
        sub = objection_on_other(cases, f"罚款金额与处罚决定书不一致,第{i}次提交。")
        start.wait()
        try:
            return rq.submit(engine, sub)
        except rq.IntakeError as err:
            return err

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(one, range(n)))
    assert all(isinstance(r, rq.Receipt) and not r.replayed for r in results), results
    assert len({r.tracking_no for r in results}) == n
    with engine.connect() as conn:
        linked = conn.execute(select(REQUEST_RECORDS.c.record_id)).scalars().all()
    assert count_requests(engine) == n and linked == [cases.other] * n
    assert audit.verify(engine) == (True, None)


def test_concurrent_twins_with_one_idempotency_key_get_one_receipt(engine, cases):
    """The same submission sent twice at once (a double click over a slow line) is one request:
    the twin that finds the key taken (its re-check, or the key's unique index) answers with the
    first receipt, not with an error."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    start = threading.Barrier(4)

    def one(_: int):
        sub = objection_on_other(cases, "罚款金额与处罚决定书不一致,见决定书。", idem_key="api:twin-0001")
        start.wait()
        return rq.submit(engine, sub)

    with ThreadPoolExecutor(4) as pool:
        receipts = list(pool.map(one, range(4)))
    assert len({r.tracking_no for r in receipts}) == 1
    assert sum(not r.replayed for r in receipts) == 1
    assert count_requests(engine) == 1


# -- provisional deadlines ----------------------------------------------------------------------


def test_provisional_deadlines_are_counted_again_once_the_holidays_are_known(
    engine, cases, tmp_path, monkeypatch
):
    """Requests filed in late December 2026 have 2027 deadlines counted Monday–Friday (no
    holiday data for 2027 yet). When the bureau adds 2027 to the data file, the worker counts
    the open ones again, from the day their deadlines count from; decided ones stay as they are."""
    from datetime import UTC, date, datetime

    from publishing import review, users, workdays, worker
    from publishing.settings import get_settings

    data = tmp_path / "workdays.toml"
    data.write_text("[years]\n", encoding="utf-8")
    monkeypatch.setenv("DISCLOSURE_WORKDAYS_FILE", str(data))
    get_settings.cache_clear()
    late_december = datetime(2026, 12, 28, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
    reviewer, _ = users.add_user(engine, "wang", "approver", "correct horse battery staple")

    def objection(uscc, record, at=late_december):
        sub = rq.Submission(type="objection", uscc=uscc, record_ids=[record],
                            contact_name="赵六", mobile="13700000000",
                            reason="罚款金额与处罚决定书不一致,见决定书。")
        return rq.submit(engine, sub, now=at)

    plain = objection(cases.other_uscc, cases.other)
    decided = objection(cases.never_uscc, cases.never)
    review.act(engine, decided.tracking_no, reviewer, "reject", "材料不足。", now=late_december)
    again = objection(cases.too_early_uscc, cases.too_early)
    review.act(engine, again.tracking_no, reviewer, "more_info", "请补充决定书。",
               now=late_december)
    rq.supplement(engine, again.tracking_no, again.access_code, "已补充。", [],
                  now=datetime(2026, 12, 30, 2, 0, tzinfo=UTC))  # the deadlines count again

    def row(tracking):
        with engine.connect() as conn:
            return request_queries.find(conn, tracking)

    before = {r.tracking_no: row(r.tracking_no) for r in (plain, decided, again)}
    assert all(r["calendar_fallback"] for r in before.values())
    jobs = [j for j in worker.default_jobs() if j.name == "deadlines"]
    assert worker.run_due(engine, jobs) == {"deadlines": 0}  # nothing known about 2027 yet

    # the bureau publishes 2027 (the running worker picks the edited file up by itself)
    data.write_text(
        '[years.2027]\nholidays = ["2027-01-01", "2027-01-04", "2027-01-05"]\n'
        'workdays = ["2027-01-09"]\n',
        encoding="utf-8",
    )
    stat = data.stat()
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    years = workdays.load_years(data)
    assert 2027 in years
    jobs = [j for j in worker.default_jobs() if j.name == "deadlines"]
    assert worker.run_due(engine, jobs) == {"deadlines": 2}
    config = request_config.load_config()
    for receipt, start in ((plain, date(2026, 12, 28)), (again, date(2026, 12, 30))):
        now = row(receipt.tracking_no)
        assert now["calendar_fallback"] is False
        assert now["review_due"] == workdays.add_workdays(start, config.review_days, years).due
        expected = workdays.add_workdays(start, config.decision_days["objection"], years)
        assert now["decision_due"] == expected.due and not expected.fallback
        assert now["decision_due"] > before[receipt.tracking_no]["decision_due"]  # 3 days off
        with engine.connect() as conn:
            entries = [e for e in audit.for_target(conn, "request", receipt.tracking_no)
                       if e["action"] == "request.deadlines"]
        assert len(entries) == 1 and entries[0]["actor"] == "worker"
    untouched = row(decided.tracking_no)  # decided: its deadlines are history
    assert untouched["calendar_fallback"] is True
    assert untouched["decision_due"] == before[decided.tracking_no]["decision_due"]
    assert worker.job_deadlines(engine) == 0  # done once
    assert audit.verify(engine) == (True, None)


def test_only_the_deadline_in_a_year_without_holiday_data_is_marked_provisional(
    engine, cases, client, tmp_path, monkeypatch
):
    """Filed on Monday 28 December 2026, an objection's preliminary review is due on the 29th
    (2026's holidays are known) and its decision in January 2027 (not yet): only the decision
    is marked as counted Monday–Friday — on the receipt (and its replay), the status page, the
    API, the back office's page and queue. Filed on the 31st, both fall in 2027: both marked."""
    from datetime import UTC, date, datetime

    from publishing import users
    from publishing.settings import get_settings
    from tests.test_review import PASSWORD, login

    data = tmp_path / "workdays.toml"
    data.write_text("[years]\n", encoding="utf-8")
    monkeypatch.setenv("DISCLOSURE_WORKDAYS_FILE", str(data))
    get_settings.cache_clear()
    users.add_user(engine, "wang", "approver", PASSWORD)

    def objection(uscc, record, at):
        sub = rq.Submission(
            type="objection",
            uscc=uscc,
            record_ids=[record],
            contact_name="赵六",
            mobile="13700000000",
            idem_key=f"test:{record}",
            reason="罚款金额与处罚决定书不一致,见决定书。",
        )
        return rq.submit(engine, sub, now=at)

    filed = {
        "late": (cases.other_uscc, cases.other, datetime(2026, 12, 28, 2, 0, tzinfo=UTC)),
        "both": (cases.never_uscc, cases.never, datetime(2026, 12, 31, 2, 0, tzinfo=UTC)),
    }
    late, both = (objection(*filed[name]) for name in ("late", "both"))
    assert late.review_due == date(2026, 12, 29) and late.decision_due.year == 2027
    assert both.review_due.year == 2027
    expected = {late.tracking_no: (False, True), both.tracking_no: (True, True)}
    label = "（按周一至周五推算）"

    def marked(html: str, receipt) -> tuple[bool, bool]:
        """Whether each deadline on the page is followed by the label (and nothing else is)."""
        found = tuple(
            f'{due}</time><span class="hint">{label}' in html
            for due in (receipt.review_due, receipt.decision_due)
        )
        assert html.count(label) == sum(found)
        return found

    for receipt, name in ((late, "late"), (both, "both")):
        again = objection(*filed[name])  # the same submission again: its receipt, replayed
        assert again.replayed
        for r in (receipt.as_json(), again.as_json()):
            assert (r["review_fallback"], r["decision_fallback"]) == expected[r["tracking_no"]]
            assert r["calendar_fallback"] is True  # one of them is: as before
        code = {"X-Access-Code": receipt.access_code}
        api = client.get(f"/api/v1/requests/{receipt.tracking_no}", headers=code).json()
        assert (api["review_fallback"], api["decision_fallback"]) == expected[api["tracking_no"]]
        page = look_up(client, receipt.tracking_no, receipt.access_code).text
        assert marked(page, receipt) == expected[receipt.tracking_no]
    assert login(client).status_code == 303
    for receipt in (late, both):
        page = client.get(f"/review/requests/{receipt.tracking_no}").text
        assert marked(page, receipt) == expected[receipt.tracking_no]
    queue = client.get("/review").text
    assert f"{late.review_due}*" not in queue and f"{late.decision_due}*" in queue
    assert f"{both.review_due}*" in queue and f"{both.decision_due}*" in queue
