"""Findings of the security review: an attachment is downloaded under the extension of its
sniffed type (never the applicant's ".html"); no answer to a request tells whether a mobile and
e-mail have an open request on a record; a failed login keeps no unknown name in plain text in
the audit log. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from urllib.parse import unquote

import pytest
from sqlalchemy import select

from publishing import audit, request_queries, users
from publishing.attachments import download_name
from publishing.request_models import AUDIT
from tests.requests_support import count_requests, fields, files, make_client

PASSWORD = "correct horse battery staple"
OWNER = {"contact_name": "王五", "mobile": "13912345678", "email": "caiwu@qiye.example.com"}


def saved_as(content_disposition: str) -> str:
    """The file name a browser takes from a Content-Disposition header."""
    starred = re.search(r"filename\*=utf-8''([^;]+)", content_disposition, re.I)
    if starred:
        return unquote(starred.group(1))
    return re.search(r'filename="([^"]*)"', content_disposition).group(1)


# -- attachments: the extension is the sniffed type's ------------------------------------------


@pytest.mark.parametrize(
    ("given", "media_type", "expected"),
    [
        ('../../etc/"evil\r\nX-Injected: 1".html', "application/pdf", "_evilX-Injected_ 1_.pdf"),
        ("<img src=x onerror=alert(1)>.svg", "image/png", "_img src=x onerror=alert(1)_.png"),
        ("证明材料.PDF", "application/pdf", "证明材料.pdf"),
        ("report.final.html", "application/pdf", "report.final.pdf"),
        ("扫描件", "image/jpeg", "扫描件.jpg"),
        ("x.html.", "application/pdf", "x.html.pdf"),
        (".html", "application/pdf", "附件.pdf"),
        ("", "image/png", "未命名文件.png"),
    ],
)
def test_download_name_takes_its_extension_from_the_sniffed_type(given, media_type, expected):
    assert download_name(given, media_type) == expected


def test_a_pdf_named_html_is_downloaded_as_a_pdf(engine, client, cases):
    users.add_user(engine, "li", "reviewer", PASSWORD)
    pdf = b"%PDF-1.4\n<html><script>alert(document.domain)</script></html>\n"
    named = '"evil\u2026".html'
    receipt = client.post(
        "/api/v1/requests",
        data=fields(type="objection", commitment=None, uscc=cases.other_uscc,
                    record_ids=[cases.other]),
        files=files((named, pdf, "text/html")),
    )
    assert receipt.status_code == 201, receipt.text
    with engine.connect() as conn:
        req = request_queries.find(conn, receipt.json()["tracking_no"])
        attachment = request_queries.files(conn, req["id"])[0]
    assert attachment["media_type"] == "application/pdf"
    page = client.get("/review/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    client.post("/review/login", data={"name": "li", "password": PASSWORD, "csrf": csrf})
    served = client.get(f"/review/attachments/{attachment['id']}")
    assert served.status_code == 200 and served.content == pdf
    disposition = served.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert saved_as(disposition) == "_evil\u2026_.pdf"
    assert ".html" not in unquote(disposition)
    assert served.headers["content-type"].startswith("application/pdf")
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-security-policy"].startswith("sandbox")
    # the reviewer still sees the name the applicant gave (escaped)
    detail = client.get(f"/review/requests/{req['tracking_no']}").text
    assert "&#34;evil\u2026&#34;.html" in detail or "&quot;evil\u2026&quot;.html" in detail


# -- a second request on a record: the answer does not depend on the contact details --------


def test_the_answer_to_a_request_is_the_same_whoever_is_the_contact(engine, client, cases):
    def objection(**over):
        data = fields(type="objection", commitment=None, uscc=cases.other_uscc,
                      record_ids=[cases.other], **{**OWNER, **over})
        return client.post("/api/v1/requests", data=data, files=files())

    assert objection().status_code == 201
    # probes with an empty reason (nothing would be stored): the filer's contact, then others
    probes = [objection(reason="", **contact) for contact in (
        {}, {"mobile": "13912345679"}, {"email": "other@example.com"}, {"email": ""})]
    assert {p.status_code for p in probes} == {422}
    assert all(p.json() == probes[0].json() for p in probes), [p.json() for p in probes]
    assert list(probes[0].json()["errors"]) == ["reason"]
    # complete: the filer's second request is accepted, as a stranger's is (a refusal of the
    # filer's only would confirm a guessed mobile, and let anyone block its owner)
    again = objection(mobile="+86 139 1234 5678", email=OWNER["email"].upper())
    assert again.status_code == 201, again.text
    assert objection(mobile="13600000000", email="x@example.net").status_code == 201
    assert count_requests(engine) == 3


# -- failed logins: no unknown name in plain text in the audit log ----------------------------


def test_failed_logins_keep_no_typed_name_but_a_fingerprint(engine, database_url, tmp_path):
    users.add_user(engine, "wang", "approver", PASSWORD)
    typed = "S3cret-Passw0rd!"  # a password typed into the name field
    here, there = "198.51.100.7", "203.0.113.9"
    for _ in range(6):  # the sixth finds the address locked out of the name
        users.login(engine, typed, PASSWORD, source=here)
    users.login(engine, typed, PASSWORD, source=there)
    users.login(engine, "Other-Typo", PASSWORD, source=there)
    users.login(engine, "wang", "wrong password!", source=there)
    users.disable_user(engine, "wang")
    users.login(engine, "wang", PASSWORD, source=here)
    with engine.connect() as conn:
        rows = conn.execute(select(AUDIT).order_by(AUDIT.c.n)).mappings().all()
    assert not [r for r in rows if typed in str(dict(r)) or "Other-Typo" in str(dict(r))]
    fingerprint = users.unknown_name(typed)
    assert re.fullmatch(r"unknown\(16\) [0-9a-f]{16}", fingerprint)
    failed = [(r["action"], r["actor"], r["target_id"]) for r in rows
              if r["action"].startswith("login")]
    assert failed == [
        *[("login.unknown", fingerprint, fingerprint)] * 5,
        ("login.locked", fingerprint, fingerprint),
        ("login.unknown", fingerprint, fingerprint),  # the same name: the same fingerprint
        ("login.unknown", users.unknown_name("Other-Typo"), users.unknown_name("Other-Typo")),
        ("login.failed", "wang", "wang"),
        ("login.unknown", "wang", "wang"),  # a disabled user's name is a user's name
    ]
    assert users.unknown_name("Other-Typo") != fingerprint
    assert audit.verify(engine) == (True, None)
    env = {**os.environ, "DISCLOSURE_DATABASE_URL": database_url}
    verified = subprocess.run([sys.executable, "-m", "portal.cli", "audit", "verify"], env=env,
                              capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0, verified.stderr


def test_a_login_through_the_portal_with_an_unknown_name_is_logged_by_fingerprint(engine):
    with make_client(engine) as client:
        page = client.get("/review/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        answer = client.post("/review/login",
                             data={"name": "hunter2-password", "password": "x", "csrf": csrf})
    assert answer.status_code == 401
    with engine.connect() as conn:
        actors = conn.execute(select(AUDIT.c.actor, AUDIT.c.target_id)).all()
    shown = users.unknown_name("hunter2-password")
    assert [tuple(a) for a in actors] == [(shown, shown)]
