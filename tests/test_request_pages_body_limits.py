"""The request routes take 55 MB bodies for their files, but hold at most 64 KB of form text in
memory: a long URL-encoded body, or a long text part of a multipart form, is refused (413) before
it is read whole, on the form, the supplement, the lookup and the API. Files still stream."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode

from publishing import requests as rq
from tests.requests_support import (
    PDF,
    count_requests,
    fields,
    files,
    form_token,
    objection_on_other,
    stored_files,
)

KB = 1024


def _data(cases, **over):
    return fields(uscc=cases.repairable_uscc, record_ids=[cases.repairable], **over)


def _form_encoded(data: dict) -> bytes:
    return urlencode(data, doseq=True).encode()


URLENCODED = {"Content-Type": "application/x-www-form-urlencoded"}


def _chunks(body: bytes, size: int = 16 * KB):
    """The body without a Content-Length (chunked): the limit holds on what arrives."""
    for i in range(0, len(body), size):
        yield body[i : i + size]


def test_api_refuses_long_urlencoded_bodies(engine, client, cases):
    body = _form_encoded(_data(cases, reason="理" * 300_000))  # 2.7 MB URL-encoded
    for content in (body, _chunks(body)):
        response = client.post("/api/v1/requests", content=content, headers=URLENCODED)
        assert response.status_code == 413, response.text[:300]
        assert "64 KB" in response.json()["errors"]["request"]
    assert count_requests(engine) == 0


def test_api_refuses_a_long_text_part(engine, client, cases):
    data = _data(cases, reason="理" * 300_000)
    response = client.post(
        "/api/v1/requests", data=data, files=files(("p.pdf", PDF, "application/pdf"))
    )
    assert response.status_code == 413 and "request" in response.json()["errors"]
    assert count_requests(engine) == 0 and stored_files(engine) == []


def test_api_still_takes_a_full_reason_urlencoded_and_big_files(engine, client, cases):
    """The limit leaves room for the longest reason (5,000 characters, 45 KB URL-encoded)."""
    data = _data(cases, type="objection", reason="理" * 5000, commitment=None)
    response = client.post("/api/v1/requests", content=_form_encoded(data), headers=URLENCODED)
    assert response.status_code == 201, response.text[:500]
    big = PDF + b"%" + b"0" * (3 * 1024 * KB)  # a 3 MB file: files are not form text
    response = client.post(
        "/api/v1/requests",
        data=fields(uscc=cases.other_uscc, record_ids=[cases.other], type="objection"),
        files=files(("big.pdf", big, "application/pdf")),
    )
    assert response.status_code == 201, response.text[:500]
    assert count_requests(engine) == 2


def test_form_and_supplement_refuse_long_text(engine, client, cases):
    token = form_token(client)
    body = _form_encoded({"form_token": token, **_data(cases, reason="理" * 300_000)})
    page = client.post("/requests/new", content=body, headers=URLENCODED)
    assert page.status_code == 413 and "64 KB" in page.text and "<html" in page.text
    long_part = client.post(
        "/requests/new",
        data={"form_token": token, **_data(cases, reason="理" * 300_000)},
        files=files(("p.pdf", PDF, "application/pdf")),
    )
    assert long_part.status_code == 413
    assert count_requests(engine) == 0
    receipt = rq.submit(engine, objection_on_other(cases))
    url = f"/requests/{receipt.tracking_no}/supplement"
    supplement = client.post(
        url, content=_form_encoded({"note": "说" * 300_000}), headers=URLENCODED
    )
    assert supplement.status_code == 413
    lookup = client.get(f"/requests/{receipt.tracking_no}")
    token = re.search(r'name="form_token" value="([^"]+)"', lookup.text).group(1)
    too_long = client.post(
        f"/requests/{receipt.tracking_no}",
        content=_form_encoded({"form_token": token, "code": "x" * 100 * KB}),
        headers=URLENCODED,
    )
    assert too_long.status_code == 413


def _peak_rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * KB


def test_a_long_body_is_not_held_in_memory(tmp_path):
    """A 40 MB URL-encoded body (within the 55 MB route limit) raises the portal's peak memory
    by what it reads before refusing, not by 40 MB; sent with or without a Content-Length."""
    import httpx

    from publishing.db import make_engine, upgrade
    from tests.servers import portal_server

    url = f"sqlite:///{tmp_path / 'disclosure.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    body = b"type=repair&reason=" + b"x" * 40 * 1024 * KB
    env = {"DISCLOSURE_DATABASE_URL": url, "DISCLOSURE_DATA_DIR": str(tmp_path / "var")}
    with (
        portal_server(env, access_log=False) as (base, proc),
        httpx.Client(base_url=base, timeout=60) as http,
    ):
        http.post("/api/v1/requests", content=b"type=repair", headers=URLENCODED)  # warm up
        before = _peak_rss(proc.pid)
        for content in (_chunks(body, 256 * KB), body):
            response = http.post("/api/v1/requests", content=content, headers=URLENCODED)
            assert response.status_code == 413, response.text[:300]
        grown = _peak_rss(proc.pid) - before
    assert grown < 8 * 1024 * KB, f"peak memory grew by {grown // (1024 * KB)} MB"


def test_back_office_forms_refuse_long_bodies(client):
    long = {"name": "wang", "password": "a" * (200 * KB), "csrf": "x"}
    for path in ("/review/login", "/review/logout"):
        answer = client.post(path, content=_form_encoded(long), headers=URLENCODED)
        assert answer.status_code == 413, (path, answer.status_code)
    # a decision: to the login page first, before its body is read
    action = client.post("/review/requests/YX20261128-000001", content=_form_encoded(long),
                         headers=URLENCODED)
    assert action.status_code == 303


def test_an_unknown_charset_of_a_text_part_is_read_as_utf8(engine, client, cases):
    boundary = "b0undary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"type\"\r\n"
        "Content-Type: text/plain; charset=foo-bar\r\n\r\nrepair\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    answer = client.post("/api/v1/requests", content=body,
                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert answer.status_code == 422, answer.text  # the form is read; its fields are checked
