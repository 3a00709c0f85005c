"""The request pages show instants in Beijing time, as the tracking number and the deadlines
count them: a request sent at 07:30 Beijing time (23:30 UTC the day before) was submitted on the
Beijing date, on the applicant's status page, the receipt and the reviewer's page alike. Calendar
dates (deadlines, a record's decision date) are dates and are never shifted."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime

import pytest

from portal.templating import local_date, local_minute, time_attr
from publishing import request_queries, review, users
from publishing import requests as rq
from publishing.attachments import Upload
from tests.requests_support import (
    MOBILE,
    PDF,
    REASON,
    fields,
    files,
    form_token,
    objection_on_other,
)

SENT = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)  # 2026-11-30 07:30 in Beijing
DECIDED = datetime(2026, 11, 30, 17, 10, tzinfo=UTC)  # 2026-12-01 01:10 in Beijing
PASSWORD = "correct horse battery staple"


@pytest.mark.parametrize(
    ("value", "day", "minute"),
    [
        (datetime(2026, 11, 29, 23, 30), "2026-11-30", "2026-11-30 07:30"),  # naive: UTC
        (SENT, "2026-11-30", "2026-11-30 07:30"),
        ("2026-11-29T23:30:00", "2026-11-30", "2026-11-30 07:30"),
        ("2026-11-29T23:30:00+00:00", "2026-11-30", "2026-11-30 07:30"),
        ("2026-11-30T07:30:00+08:00", "2026-11-30", "2026-11-30 07:30"),
        ("2026-11-29", "2026-11-29", "2026-11-29"),  # a calendar date stays as it is
        (date(2026, 11, 29), "2026-11-29", "2026-11-29"),
        (None, "", ""),
    ],
)
def test_instants_in_beijing_time_dates_as_they_are(value, day, minute):
    assert (local_date(value), local_minute(value)) == (day, minute)


def test_time_attribute_names_the_offset():
    assert time_attr("2026-11-29T23:30:00") == "2026-11-30T07:30:00+08:00"
    assert time_attr(date(2026, 12, 3)) == time_attr("2026-12-03") == "2026-12-03"


def _row(html: str, label: str) -> str:
    found = re.search(rf"<dt>{label}</dt><dd>(.*?)</dd>", html, re.S)
    assert found, label
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def _status_page(client, tracking: str, code: str) -> str:
    lookup = client.get(f"/requests/{tracking}")
    token = re.search(r'name="form_token" value="([^"]+)"', lookup.text).group(1)
    page = client.post(f"/requests/{tracking}", data={"form_token": token, "code": code})
    assert page.status_code == 200, page.text[:500]
    return page.text


def _objection(engine, cases) -> rq.Receipt:
    return rq.submit(engine, objection_on_other(cases), now=SENT)


def test_status_and_review_pages_in_beijing_time(engine, client, cases):
    receipt = _objection(engine, cases)
    assert receipt.tracking_no.startswith("YX20261130-")  # numbered by the Beijing date
    approver, _ = users.add_user(engine, "wang", "approver", PASSWORD)
    review.act(engine, receipt.tracking_no, approver, "reject", "材料不足。", now=DECIDED)

    html = _status_page(client, receipt.tracking_no, receipt.access_code)
    assert _row(html, "提交时间") == "2026-11-30"
    assert _row(html, "决定时间") == "2026-12-01"
    steps = re.findall(r"<time datetime=\"([^\"]+)\">([^<]+)</time>\s*<strong>", html)
    assert steps == [
        ("2026-11-30T07:30:00+08:00", "2026-11-30 07:30"),
        ("2026-12-01T01:10:00+08:00", "2026-12-01 01:10"),
    ]
    with engine.connect() as conn:
        req = request_queries.find(conn, receipt.tracking_no)
    assert _row(html, "办理期限").startswith(req["decision_due"].isoformat())  # a date, as is
    assert "2026-11-29" not in html

    login = client.get("/review/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
    client.post("/review/login", data={"name": "wang", "password": PASSWORD, "csrf": csrf})
    detail = client.get(f"/review/requests/{receipt.tracking_no}")
    assert detail.status_code == 200
    assert _row(detail.text, "提交时间") == "2026-11-30"
    history = detail.text.split('id="history-title"')[1]
    assert re.findall(r"<time [^>]*>([^<]+)</time>", history) == [
        "2026-11-30 07:30",
        "2026-12-01 01:10",
    ]
    assert "2026-11-29" not in detail.text


def test_receipt_in_beijing_time(engine, client, cases):
    """The receipt of a repeated form shows the first submission's time, in Beijing time."""
    token = form_token(client)
    first = rq.Submission(
        type="repair",
        uscc=cases.repairable_uscc,
        record_ids=[cases.repairable],
        contact_name="张三",
        mobile=MOBILE,
        reason=REASON,
        commitment="true",
        attachments=[Upload("证明.pdf", io.BytesIO(PDF))],
        idem_key=f"form:{token.split('.')[0]}",
    )
    stored = rq.submit(engine, first, now=SENT)
    again = client.post(
        "/requests/new",
        data={
            "form_token": token,
            **fields(uscc=cases.repairable_uscc, record_ids=[cases.repairable]),
        },
        files=files(("证明.pdf", PDF, "application/pdf")),
    )
    assert again.status_code == 200, again.text[:500]  # the first one's receipt
    assert stored.tracking_no in again.text
    assert _row(again.text, "提交时间") == "2026-11-30"
