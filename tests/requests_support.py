"""Shared by the objection / credit-repair tests: published records in each eligibility case,
the portal as a test client (over HTTPS: its cookies are Secure), files, form helpers."""

from __future__ import annotations

import io
import re
import socket
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select

from publishing import clock, request_config
from publishing import requests as rq
from publishing.attachments import Upload
from publishing.commit import RECORDS
from publishing.publish import publish
from publishing.request_models import ATTACHMENTS, REQUESTS
from tests.factories import penalty_row, uscc, write_csv

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64
MOBILE = "13912345678"
REASON = "已经全额缴纳罚款并完成整改,申请提前停止公示。"


def months_ago(n: int, today: date | None = None) -> str:
    today = today or clock.today()
    return (today - timedelta(days=round(n * 30.5))).isoformat()


@dataclass
class Published:
    repairable: str  # record id: repair allowed now (一般, 广告, decided 6 months ago)
    repairable_uscc: str
    too_early: str  # food penalty decided a month ago: repairable only after its 12 months
    # of publicity (SAMR's minimum), when it ends anyway: repair is moot
    too_early_uscc: str
    never: str  # includes 吊销营业执照: never repairable early
    never_uscc: str
    other: str  # a second entity's record (for USCC mismatches and objections)
    other_uscc: str
    soon: str  # 一般 price penalty decided a month ago: repairable after 3 of its 12 months
    soon_uscc: str


def publish_cases(engine, tmp_path: Path) -> Published:
    rows = [
        penalty_row(1, 处罚决定日期=months_ago(6), 领域="广告"),
        penalty_row(2, 处罚决定日期=months_ago(1), 领域="食品"),
        penalty_row(3, 处罚决定日期=months_ago(6), 领域="广告", 处罚种类="罚款;吊销营业执照"),
        penalty_row(4, 处罚决定日期=months_ago(5), 领域="价格"),
        penalty_row(5, 处罚决定日期=months_ago(1), 领域="价格"),
    ]
    result = publish([write_csv(tmp_path / "cases.csv", rows)], engine=engine, show_progress=False)
    assert result.published, result.as_json()
    with engine.connect() as conn:
        ids = dict(conn.execute(select(RECORDS.c.entity_id, RECORDS.c.id)).all())
    return Published(
        ids[uscc(1)], uscc(1), ids[uscc(2)], uscc(2), ids[uscc(3)], uscc(3), ids[uscc(4)], uscc(4),
        ids[uscc(5)], uscc(5),
    )


def limit_requests(tmp_path: Path, monkeypatch, name: str, limit: tuple[int, int]) -> None:
    """Requests settings (DISCLOSURE_REQUESTS_FILE) with the rate limit `name` set to (requests,
    seconds); the caller clears request_config.load_config's cache when done."""
    from publishing.settings import get_settings

    source = request_config.DEFAULT_FILE.read_text(encoding="utf-8")
    limited = tmp_path / "requests.toml"
    new = f"{name} = [{limit[0]}, {limit[1]}]"
    limited.write_text(re.sub(rf"{name} = \[\d+, \d+\]", new, source), encoding="utf-8")
    monkeypatch.setenv("DISCLOSURE_REQUESTS_FILE", str(limited))
    get_settings.cache_clear()
    request_config.load_config.cache_clear()


def make_client(engine) -> TestClient:
    from portal.app import create_app

    client = TestClient(create_app(engine), base_url="https://testserver.local")
    client.follow_redirects = False  # the tests look at each redirect
    return client


def submit_request(engine, type_: str, record: str, code: str) -> str:
    """A request of `type_` (objection | repair) about one record, filed directly (with a PDF):
    its tracking number."""
    sub = rq.Submission(
        type=type_,
        uscc=code,
        record_ids=[record],
        contact_name="张三",
        mobile="13912345678",
        reason="已经全额缴纳罚款并完成整改，或处罚信息有误，见附件。",
        commitment=type_ == "repair",
        attachments=[Upload("proof.pdf", io.BytesIO(PDF))],
    )
    return rq.submit(engine, sub).tracking_no


def count_requests(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(REQUESTS)).scalar_one()


def count_attachments(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(ATTACHMENTS)).scalar_one()


def stored_files(engine) -> list[Path]:
    from publishing.settings import get_settings

    folder = get_settings().attachments_dir
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.exists() else []


def form_token(client: TestClient, url: str | None = None) -> str:
    """A form token for this client (the form of a published entity carries one)."""
    page = client.get(url or f"/requests/new?uscc={uscc(1)}")
    assert page.status_code == 200, page.text
    match = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert match, "the form has no token"
    return match.group(1)


def objection_on_other(
    cases: Published, reason: str = "罚款金额与处罚决定书不一致，见决定书。", **extra: Any
) -> rq.Submission:
    """An objection to cases.other (a penalty), as 赵六 files it."""
    return rq.Submission(type="objection", uscc=cases.other_uscc, record_ids=[cases.other],
                         contact_name="赵六", mobile="13700000000", reason=reason, **extra)


def fields(**over: Any) -> dict[str, Any]:
    base = {
        "type": "repair",
        "contact_name": "张三",
        "mobile": MOBILE,
        "email": "",
        "reason": REASON,
        "commitment": "true",
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def files(*items: tuple[str, bytes, str]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("attachments", item) for item in items]


def receipt_of(html: str) -> tuple[str, str | None]:
    tracking = re.search(r'id="tracking-no">([^<]+)<', html)
    code = re.search(r'id="access-code">([^<]+)<', html)
    assert tracking, html[:2000]
    return tracking.group(1), code.group(1) if code else None


@pytest.fixture
def smtp(monkeypatch):
    """A real SMTP server on localhost (aiosmtpd) that keeps what it receives."""
    from aiosmtpd.controller import Controller

    from publishing.settings import get_settings

    class Keep:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            self.messages.append(envelope)
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    handler = Keep()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv(
        "DISCLOSURE_SMTP_URL", f"smtp://127.0.0.1:{port}?from=xypt@scjg.yantai.gov.cn"
    )
    get_settings.cache_clear()
    yield handler
    controller.stop()
    get_settings.cache_clear()


def wait_for(predicate, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


# -- fixtures shared by the request and review tests (registered in tests/conftest.py) ----------


@pytest.fixture
def cases(engine, tmp_path):
    """The records the request tests file on (publish_cases)."""
    return publish_cases(engine, tmp_path)


@pytest.fixture
def client(engine):
    """A test client of the portal on the test's database."""
    with make_client(engine) as c:
        yield c
