"""The review queue pages through every request, in the order each view needs (open: the most
urgent deadline first; decided: the newest decision first), with the true count in the
heading and plain next / previous links. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert

from portal.review import QUEUE_PAGE_SIZE
from publishing import request_queries, users
from publishing.request_models import REQUESTS
from tests.factories import uscc
from tests.requests_support import make_client

PASSWORD = "correct horse battery staple"
DECIDED, OPEN = 520, 510  # both over the 500 the queue used to stop at
START = date(2026, 1, 5)


def _request(n: int, status: str) -> dict:
    """One stored request: later numbers were filed, are due and were decided later."""
    day = START + timedelta(days=n // 10)
    at = datetime(2026, 1, 5, 9, tzinfo=UTC) + timedelta(hours=n)
    decided = status in ("approved", "rejected")
    return {
        "tracking_no": f"YX{day:%Y%m%d}-{n:06d}",
        "type": "repair",
        "status": status,
        "entity_id": uscc(1),
        "entity_name": "烟台市芝罘区测试1食品有限公司",
        "record_ids": [],
        "contact_name": "张三",
        "mobile": "13912345678",
        "reason": "已经全额缴纳罚款并完成整改。",
        "commitment": True,
        "channel": "api",
        "access_hash": "sha256$00$00",
        "payload_hash": f"{n:064d}",
        "submitted_at": at,
        "submitted_on": day,
        "review_due": day + timedelta(days=2 + n % 3),  # not in the order of the decision due
        "decision_due": day + timedelta(days=14),
        "calendar_fallback": False,
        "decided_at": at + timedelta(days=3) if decided else None,
        "decision": "approve" if decided else None,
        "updated_at": at,
    }


@pytest.fixture
def stored(engine):
    rows = [_request(n, "approved" if n % 2 else "rejected") for n in range(DECIDED)]
    rows += [_request(DECIDED + n, "received") for n in range(OPEN)]
    with engine.begin() as conn:
        conn.execute(insert(REQUESTS), rows)
    return rows


@pytest.fixture
def client(engine):
    users.add_user(engine, "wang", "approver", PASSWORD)
    with make_client(engine) as c:
        page = c.get("/review/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        assert c.post(
            "/review/login", data={"name": "wang", "password": PASSWORD, "csrf": csrf}
        ).status_code == 303
        yield c


def _walk(client, url: str) -> tuple[list[str], list[str]]:
    """Every page from url on, by its next links: (tracking numbers, captions)."""
    numbers, captions = [], []
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.text[:300]
        numbers += re.findall(r'<th scope="row"><a href="/review/requests/([^"]+)"', page.text)
        captions.append(re.search(r'<caption id="queue-caption">([^<]+)<', page.text).group(1))
        nxt = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
    return numbers, captions


def test_decided_view_pages_through_all_the_newest_first(engine, client, stored):
    numbers, captions = _walk(client, "/review?view=decided")
    decided = [r for r in stored if r["decided_at"]]
    newest_first = sorted(decided, key=lambda r: r["decided_at"], reverse=True)
    assert numbers == [r["tracking_no"] for r in newest_first]
    pages = -(-DECIDED // QUEUE_PAGE_SIZE)
    assert len(captions) == pages
    assert captions[0] == f"已办结的申请，最近办结的在前（共 {DECIDED} 件，第 1/{pages} 页：第 1–100 件）"
    last = client.get(f"/review?view=decided&page={pages}").text
    assert 'rel="prev"' in last and 'rel="next"' not in last


def test_open_view_pages_through_all_the_most_urgent_first(engine, client, stored):
    numbers, captions = _walk(client, "/review")
    waiting = [r for r in stored if not r["decided_at"]]
    urgent_first = sorted(waiting, key=lambda r: (r["review_due"], r["decision_due"]))
    assert [n for n in numbers] == [r["tracking_no"] for r in urgent_first]
    assert f"（共 {OPEN} 件，第 1/" in captions[0]
    # the worker's digest reads the whole open queue, in the same order
    with engine.connect() as conn:
        everything = request_queries.queue(conn)
    assert [q["tracking_no"] for q in everything] == numbers
