"""What a small enterprise met filing an objection or credit repair on a phone, fixed: the
reviewer sees the applicant's supplement note; an oversize upload says the limits and links back
to its form; a failed supplement keeps the note typed; a full-width access code works; material
asked for is no longer shown as the status's reason once supplied; the receipt and the status
page say how many files arrived; the rate limit speaks in minutes and says what it is; and a
record whose repair date is its publicity's end is said to stop being published by itself, the
problems of several records joined without a doubled "。；". Over HTTP, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import update

from portal.ratelimit import per_window, retry_in
from publishing import clock, read, request_config, users
from publishing.publish import publish
from publishing.request_models import REQUESTS
from tests.factories import penalty_row, uscc, write_csv
from tests.requests_support import (
    PDF,
    PNG,
    count_requests,
    fields,
    files,
    form_token,
    limit_requests,
    make_client,
    months_ago,
    receipt_of,
    stored_files,
)
from tests.test_review import PASSWORD, act, api_submit, login

TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
ASKED = "请补充提供加盖公章的缴款凭证。"
MB = 1024 * 1024


@pytest.fixture
def staff(engine):
    """A reviewer (li: accept, more material) and an approver (wang), as in test_review."""
    users.add_user(engine, "li", "reviewer", PASSWORD)
    users.add_user(engine, "wang", "approver", PASSWORD)


def _token(html: str) -> str:
    return TOKEN.search(html).group(1)


def _status(client, tracking: str, code: str):
    """The applicant's status page: the lookup form, then its answer."""
    lookup = client.get(f"/requests/{tracking}")
    return client.post(
        f"/requests/{tracking}", data={"form_token": _token(lookup.text), "code": code}
    )


def _supplement(client, tracking: str, code: str, note: str, attached=()):
    page = _status(client, tracking, code)
    assert page.status_code == 200 and 'id="supplement-title"' in page.text, page.text[:500]
    return client.post(
        f"/requests/{tracking}/supplement",
        data={"form_token": _token(page.text), "code": code, "note": note},
        files=list(attached) or None,
    )


def _more_info(client, cases) -> tuple[str, str]:
    """A repair request (one PDF) a reviewer asked more material for: (tracking, code)."""
    receipt = api_submit(client, cases)
    tracking, code = receipt["tracking_no"], receipt["access_code"]
    assert login(client, "li").status_code == 303
    assert act(client, tracking, "accept", "材料基本齐全，予以受理。").status_code == 303
    assert act(client, tracking, "more_info", ASKED).status_code == 303
    return tracking, code


def _history(html: str) -> str:
    return html.split('id="history-title"', 1)[1]


# -- 1. the reviewer sees the supplement's note -------------------------------------------------


def test_the_reviewer_sees_the_supplement_note_escaped(engine, client, cases, staff):
    tracking, code = _more_info(client, cases)
    note = "盖章的缴款凭证见附件。<script>alert(1)</script>"
    sent = _supplement(client, tracking, code, note, files(("凭证.png", PNG, "image/png")))
    assert sent.status_code == 200 and "补正材料已收到" in sent.text
    page = client.get(f"/review/requests/{tracking}")
    history = _history(page.text)
    assert "盖章的缴款凭证见附件。&lt;script&gt;alert(1)&lt;/script&gt;" in history
    assert "<script>alert(1)" not in page.text
    entry = next(li for li in history.split("<li>") if "补正材料" in li and "申请人" in li)
    assert "说明" in entry and "缴款凭证见附件" in entry and "（附件 1 个）" in entry


# -- 2. an oversize upload says the limits and links back ---------------------------------------


def _file_limits(tmp_path, monkeypatch, max_files: int, max_bytes: int) -> None:
    """requests.toml with other file limits, read from here on."""
    from publishing.settings import get_settings

    source = request_config.DEFAULT_FILE.read_text(encoding="utf-8")
    edited = source.replace("max_files = 5", f"max_files = {max_files}").replace(
        "max_bytes = 10_485_760", f"max_bytes = {max_bytes}"
    )
    assert f"max_files = {max_files}\n" in edited and f"max_bytes = {max_bytes} " in edited
    path = tmp_path / "requests-limits.toml"
    path.write_text(edited, encoding="utf-8")
    monkeypatch.setenv("DISCLOSURE_REQUESTS_FILE", str(path))
    get_settings.cache_clear()
    request_config.load_config.cache_clear()


@pytest.fixture
def small_files(tmp_path, monkeypatch):
    """requests.toml with other file limits (3 files of 8 MB): the 413 page says these."""
    _file_limits(tmp_path, monkeypatch, 3, 8 * MB)
    yield
    request_config.load_config.cache_clear()


LIMITS = "每个文件不超过 8 MB，最多 3 个"


def test_the_body_limit_follows_the_file_limits(engine, cases, tmp_path, monkeypatch):
    """Six files of 9.8 MB (59 MB) go through once requests.toml allows 6 files of 10 MB; the
    body limit was a fixed 55 MB. With 3 files of 8 MB, a 27 MB body is refused unread."""
    nearly_ten = PDF + b"0" * (9_800_000 - len(PDF))
    six = [(f"p{i}.pdf", nearly_ten, "application/pdf") for i in range(6)]
    data = fields(uscc=cases.other_uscc, record_ids=[cases.other], type="objection")
    try:
        _file_limits(tmp_path, monkeypatch, 6, 10 * MB)
        taken = make_client(engine).post("/api/v1/requests", data=data, files=files(*six))
        assert taken.status_code == 201, taken.text[:300]
        assert len(stored_files(engine)) == 6
        _file_limits(tmp_path, monkeypatch, 3, 8 * MB)
        small = make_client(engine)
        refused = small.post("/api/v1/requests", data=data, files=files(*six[:3]))
        assert refused.status_code == 413, refused.text[:300]
        assert LIMITS in refused.json()["errors"]["request"]
    finally:
        request_config.load_config.cache_clear()
    assert count_requests(engine) == 1


def _chunks(body: bytes, size: int = 4 * MB):
    """A body without a Content-Length: Litestar stops it while it streams."""
    for i in range(0, len(body), size):
        yield body[i : i + size]


def test_an_oversize_form_says_the_limits_and_links_back(engine, client, cases, small_files):
    token = form_token(client)
    data = {
        "form_token": token,
        **fields(uscc=cases.repairable_uscc, record_ids=[cases.repairable]),
    }
    nearly_ten = PDF + b"0" * (9_800_000 - len(PDF))
    six = files(*[(f"p{i}.pdf", nearly_ten, "application/pdf") for i in range(6)])
    page = client.post(
        "/requests/new", data=data, files=six, headers={"Referer": "https://evil.example/"}
    )
    assert page.status_code == 413 and "<html" in page.text
    assert LIMITS in page.text and "未保存任何内容" in page.text
    assert re.search(r'<a href="/requests/new" id="back-link">返回申请表</a>', page.text)
    assert "evil.example" not in page.text and "请重新选择文件" in page.text
    assert "请求内容过大" not in page.text
    # one 60 MB file, sent without a Content-Length: the same page
    one = client.build_request(
        "POST",
        "/requests/new",
        data=data,
        files=files(("big.pdf", PDF + b"0" * 60 * MB, "application/pdf")),
    )
    body = b"".join(one.stream)
    streamed = client.post(
        "/requests/new",
        content=_chunks(body),
        headers={"Content-Type": one.headers["Content-Type"]},
    )
    assert (
        streamed.status_code == 413
        and LIMITS in streamed.text
        and 'id="back-link"' in streamed.text
    )
    assert count_requests(engine) == 0 and stored_files(engine) == []


def test_an_oversize_supplement_links_back_to_its_status_page(
    engine, client, cases, staff, small_files
):
    tracking, code = _more_info(client, cases)
    page = _status(client, tracking, code)
    big = files(("big.pdf", PDF + b"0" * 56 * MB, "application/pdf"))
    response = client.post(
        f"/requests/{tracking.lower()}/supplement",
        data={"form_token": _token(page.text), "code": code, "note": "见附件"},
        files=big,
        headers={"Referer": "https://evil.example/"},
    )
    assert response.status_code == 413 and LIMITS in response.text
    assert f'<a href="/requests/{tracking}" id="back-link">' in response.text
    assert "重新输入查询码" in response.text and "evil.example" not in response.text
    assert code not in response.text  # the link carries no code


def test_the_api_says_the_limits_in_json(engine, client, cases, small_files):
    data = fields(uscc=cases.repairable_uscc, record_ids=[cases.repairable])
    big = files(("big.pdf", PDF + b"0" * 56 * MB, "application/pdf"))
    response = client.post("/api/v1/requests", data=data, files=big)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/json")
    assert LIMITS in response.json()["errors"]["request"]
    assert count_requests(engine) == 0


# -- 3. a failed supplement keeps its note -------------------------------------------------------


def test_a_failed_supplement_keeps_the_note_and_asks_for_the_files_again(
    engine, client, cases, staff
):
    tracking, code = _more_info(client, cases)
    note = "盖章凭证见附件。</textarea><b>x</b>"
    fake = files(
        ("fake.pdf", b"MZ not a pdf", "application/pdf"),
        ("fake2.pdf", b"MZ not a pdf either", "application/pdf"),
    )
    bad = _supplement(client, tracking, code, note, fake)
    assert bad.status_code == 422, bad.text[:500]
    textarea = re.search(r'<textarea id="f-note"[^>]*>(.*?)</textarea>', bad.text, re.S)
    assert textarea and textarea.group(1) == "盖章凭证见附件。&lt;/textarea&gt;&lt;b&gt;x&lt;/b&gt;"
    assert "请重新选择文件" in bad.text
    # the two files' problems, joined as one Chinese text
    error = re.search(r'id="e-attachments">(.*?)</p>', bad.text, re.S).group(1)
    assert "fake.pdf" in error and "fake2.pdf" in error and "；" in error and ";" not in error
    # once received, the form is gone and nothing is typed again
    good = _supplement(client, tracking, code, "见附件", files(("凭证.png", PNG, "image/png")))
    assert good.status_code == 200 and 'id="f-note"' not in good.text


# -- 4. a full-width access code ------------------------------------------------------------------


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def test_a_full_width_access_code_opens_the_status_page(engine, client, cases):
    receipt = api_submit(client, cases, type_="objection")
    tracking, code = receipt["tracking_no"], receipt["access_code"]
    typed = _full_width(f"{code[:5]}-{code[5:]}".lower())  # ｔｈｊｈｆ－ｎｋｂｕｃ
    assert typed != code and "－" in typed
    for variant in (typed, _full_width(code[:5]) + "—" + code[5:], f"{code[:5]}\u3000{code[5:]}"):
        page = _status(client, _full_width(tracking), variant)
        assert page.status_code == 200 and 'id="request-status"' in page.text, variant


# -- 5. material asked for, once supplied, is history ------------------------------------------


def test_material_asked_for_is_not_the_status_reason_once_supplied(engine, client, cases, staff):
    tracking, code = _more_info(client, cases)
    asked = _status(client, tracking, code)
    assert f'<dt>需补正的材料</dt><dd id="decision-reason">{ASKED}</dd>' in asked.text
    review = client.get(f"/review/requests/{tracking}").text
    assert f"<dt>补正要求</dt><dd>{ASKED}</dd>" in review
    sent = _supplement(client, tracking, code, "见附件", files(("p.png", PNG, "image/png")))
    assert sent.status_code == 200
    status = _status(client, tracking, code)
    assert "已接收，待初审" in status.text and 'id="decision-reason"' not in status.text
    assert f"<strong>要求补正材料</strong>：{ASKED}" in status.text  # what it was, in the steps
    api = client.get(f"/api/v1/requests/{tracking}", headers={"X-Access-Code": code}).json()
    assert api["status"] == "received" and api["decision_reason"] is None
    review = client.get(f"/review/requests/{tracking}").text
    assert "<dt>补正要求</dt>" not in review and "<dt>决定理由</dt>" not in review
    assert ASKED in _history(review)
    # a request supplemented before this fix still holds the reason: not shown as the status's
    with engine.begin() as conn:
        conn.execute(
            update(REQUESTS).where(REQUESTS.c.tracking_no == tracking).values(decision_reason=ASKED)
        )
    assert 'id="decision-reason"' not in _status(client, tracking, code).text
    review = client.get(f"/review/requests/{tracking}").text
    assert "<dt>补正要求</dt>" not in review and "<dt>决定理由</dt>" not in review
    # a decision's reason is shown as the reason (by the approver, in a browser of their own)
    with make_client(engine) as approver:
        login(approver, "wang")
        assert act(approver, tracking, "reject", "材料仍不能证明已履行。").status_code == 303
        review = approver.get(f"/review/requests/{tracking}").text
    assert "<dt>决定理由</dt><dd>材料仍不能证明已履行。</dd>" in review
    decided = _status(client, tracking, code)
    assert '<dt>理由</dt><dd id="decision-reason">材料仍不能证明已履行。</dd>' in decided.text


# -- 6. how many files arrived -----------------------------------------------------------------


def test_receipt_and_status_page_count_the_files(engine, client, cases, staff):
    token = form_token(client)
    data = {
        "form_token": token,
        **fields(uscc=cases.repairable_uscc, record_ids=[cases.repairable]),
    }
    two = files(("决定书.pdf", PDF, "application/pdf"), ("照片.png", PNG, "image/png"))
    first = client.post("/requests/new", data=data, files=two)
    assert first.status_code == 201, first.text[:500]
    assert '<dd id="attachments-count">已上传附件 2 个</dd>' in first.text
    again = client.post("/requests/new", data=data, files=two)  # the same form again: replayed
    assert (
        again.status_code == 200 and '<dd id="attachments-count">已上传附件 2 个</dd>' in again.text
    )
    tracking, code = receipt_of(first.text)
    status = _status(client, tracking, code)
    assert '<dd id="attachments-count">已上传附件 2 个</dd>' in status.text
    assert login(client, "li").status_code == 303
    assert act(client, tracking, "more_info", ASKED).status_code == 303
    _supplement(client, tracking, code, "", files(("凭证.png", PNG, "image/png")))
    assert '<dd id="attachments-count">已上传附件 3 个</dd>' in _status(client, tracking, code).text
    objection = api_submit(
        client, cases, record=cases.other, uscc=cases.other_uscc, type_="objection"
    )
    other = _status(client, objection["tracking_no"], objection["access_code"])
    assert '<dd id="attachments-count">已上传附件 1 个</dd>' in other.text  # its own files only


def test_a_receipt_without_files_says_so(engine, client, cases):
    token = form_token(client, f"/requests/new?uscc={cases.other_uscc}")
    data = {
        "form_token": token,
        **fields(
            type="objection", uscc=cases.other_uscc, record_ids=[cases.other], commitment=None
        ),
    }
    page = client.post("/requests/new", data=data)
    assert page.status_code == 201, page.text[:500]
    assert '<dd id="attachments-count">未上传附件</dd>' in page.text


# -- 7. the rate limit in minutes, with what it is ------------------------------------------------


def test_wait_in_words():
    assert retry_in(3162) == "约 53 分钟后" and retry_in(61) == "约 2 分钟后"
    assert retry_in(30) == "在 30 秒后" and retry_in(60) == "在 60 秒后"
    assert retry_in(3 * 3600) == "约 3 小时后"
    assert (per_window(3600), per_window(600), per_window(60), per_window(86400)) == (
        "每小时",
        "每 10 分钟",
        "每分钟",
        "每天",
    )


def test_the_rate_limit_page_says_the_limit_and_the_wait(engine, cases, tmp_path, monkeypatch):
    limit_requests(tmp_path, monkeypatch, "submit", (2, 3600))
    try:
        with make_client(engine) as client:
            data = fields(uscc=cases.repairable_uscc, record_ids=[cases.repairable])
            tries = [client.post("/requests/new", data=data) for _ in range(3)]
            assert [t.status_code for t in tries] == [403, 403, 429]  # failed ones count too
            page = tries[-1]
            wait = int(page.headers["retry-after"])
            assert "同一网络地址每小时最多提交 2 次（提交未成功的也计入）" in page.text
            assert f"请{retry_in(wait)}再试。" in page.text
            if wait > 60:
                assert f"{wait} 秒" not in page.text
            supplement = client.post("/requests/YX20261128-000001/supplement", data={"note": "x"})
            assert supplement.status_code == 429 and "每小时最多提交 2 次" in supplement.text
    finally:
        request_config.load_config.cache_clear()


def test_the_lookup_limit_says_the_limit(engine, cases, tmp_path, monkeypatch):
    limit_requests(tmp_path, monkeypatch, "status", (1, 600))
    try:
        with make_client(engine) as client:
            token = form_token(client, "/requests/lookup")
            tries = [
                client.post(
                    "/requests/lookup", data={"form_token": token, "tracking_no": "x", "code": "y"}
                )
                for _ in range(2)
            ]
            assert tries[-1].status_code == 429
            wait = int(tries[-1].headers["retry-after"])
            assert "同一网络地址每 10 分钟最多查询 1 次" in tries[-1].text
            assert f"请{retry_in(wait)}再试。" in tries[-1].text
    finally:
        request_config.load_config.cache_clear()


# -- 8. a repair date at the publicity's end; problems joined once -----------------------------


def test_repair_at_the_end_of_publicity_is_not_needed(engine, client, tmp_path):
    code = uscc(61)
    rows = [  # one entity: food (repair after 12 months = its publicity), price (after 3 of 12)
        penalty_row(61, 处罚决定日期=months_ago(1), 领域="食品"),
        penalty_row(
            61,
            处罚决定日期=months_ago(1),
            领域="价格",
            行政处罚决定书文号="烟芝市监罚〔2026〕610号",
        ),
    ]
    assert publish(
        [write_csv(tmp_path / "p.csv", rows)], engine=engine, show_progress=False
    ).published
    with engine.connect() as conn:
        records = read.entity_records(conn, code, clock.today(), limit=None)
    food = next(r for r in records if r["domain"] == "食品")
    # the minimum (12 months) ends with the publicity: repair only from the day after
    last_day = date.fromisoformat(food["publicity_until"])
    assert food["repairable_from"] == (last_day + timedelta(days=1)).isoformat()
    token = form_token(client, f"/requests/new?uscc={code}")
    data = {"form_token": token, **fields(uscc=code, record_ids=[r["id"] for r in records])}
    page = client.post("/requests/new", data=data, files=files(("p.pdf", PDF, "application/pdf")))
    assert page.status_code == 422
    error = re.search(r'id="e-record_ids">(.*?)</p>', page.text, re.S).group(1)
    assert f"该记录将于 {food['publicity_until']} 公示期满并自动停止公示，无需申请信用修复" in error
    assert "最短公示期未满" in error  # the price penalty: its own date, before the publicity ends
    assert "。；" not in error and "；" in error
    assert f"{food['repairable_from']} 起方可申请信用修复" not in page.text


# -- codes read as one token are never broken on a phone (a11y review) --------------------------

# A USCC, a record id or a district code inside a <span class="code…">.
_CODE_SPAN = re.compile(r'<span class="(code[^"]*)">([0-9A-Z]{18}|[a-z]{2}-[0-9a-f]{16}|\d{6})</span>')


def _code_classes(html: str) -> list[str]:
    return [cls for cls, _ in _CODE_SPAN.findall(html)]


def test_codes_are_kept_whole_on_status_review_form_and_feeds_pages(engine, client, cases, staff):
    receipt = api_submit(client, cases)
    pages = {
        "status": _status(client, receipt["tracking_no"], receipt["access_code"]).text,
        "form": client.get(f"/requests/new?uscc={cases.repairable_uscc}").text,
        "feeds": client.get("/feeds").text,
    }
    assert login(client, "wang").status_code == 303
    pages["review"] = client.get(f"/review/requests/{receipt['tracking_no']}").text
    for name, html in pages.items():
        classes = _code_classes(html)
        assert classes, name  # the page shows such codes
        assert all("code--id" in c.split() for c in classes), (name, classes)
