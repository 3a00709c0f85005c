"""The access code never travels in a URL (access logs, browser history): the lookup form POSTs
it with a form token, the status page is the answer to that POST, and the API takes it in the
X-Access-Code header (the older `?code=` still answers, marked deprecated)."""

from __future__ import annotations

import re

import pytest

from publishing import requests as rq
from publishing import review, users
from tests.requests_support import PNG, files, make_client, objection_on_other

TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


@pytest.fixture
def request_(engine, cases) -> rq.Receipt:
    return rq.submit(engine, objection_on_other(cases))


def _token(html: str) -> str:
    return TOKEN.search(html).group(1)


def test_the_lookup_form_posts_the_code(client, request_):
    tracking, code = request_.tracking_no, request_.access_code
    lookup = client.get(f"/requests/{tracking}")
    assert lookup.status_code == 200 and lookup.headers["referrer-policy"] == "no-referrer"
    form = re.search(r'<form [^>]*class="request-form"[^>]*>', lookup.text).group(0)
    assert f'action="/requests/{tracking}"' in form and 'method="post"' in form
    page = client.post(
        f"/requests/{tracking}", data={"form_token": _token(lookup.text), "code": code}
    )
    assert page.status_code == 200 and 'id="request-status"' in page.text
    assert "已接收，待初审" in page.text and page.headers["cache-control"] == "no-store"
    assert "code=" not in page.text  # no link carries the code
    # wrong code: the lookup form again, with a fresh token
    wrong = client.post(
        f"/requests/{tracking}", data={"form_token": _token(lookup.text), "code": "AAAAA-AAAAA"}
    )
    assert wrong.status_code == 404 and 'id="request-status"' not in wrong.text
    assert "受理编号或查询码不正确" in wrong.text and _token(wrong.text)


def test_a_code_in_the_url_is_not_looked_at(client, request_):
    tracking, code = request_.tracking_no, request_.access_code
    page = client.get(f"/requests/{tracking}", params={"code": code})
    assert page.status_code == 200
    assert 'id="request-status"' not in page.text and "已接收" not in page.text
    assert 'id="f-code"' in page.text  # asks for it instead


def test_the_lookup_needs_its_form_token(engine, client, request_):
    tracking, code = request_.tracking_no, request_.access_code
    missing = client.post(f"/requests/{tracking}", data={"code": code})
    assert missing.status_code == 403 and 'id="request-status"' not in missing.text
    with make_client(engine) as other:  # a token of another browser, or of another request
        foreign = _token(other.get(f"/requests/{tracking}").text)
    assert (
        client.post(f"/requests/{tracking}", data={"form_token": foreign, "code": code}).status_code
        == 403
    )
    elsewhere = _token(client.get("/requests/YX20990101-000001").text)
    assert (
        client.post(
            f"/requests/{tracking}", data={"form_token": elsewhere, "code": code}
        ).status_code
        == 403
    )


def test_supplement_from_the_posted_status_page(engine, client, request_):
    tracking, code = request_.tracking_no, request_.access_code
    approver, _ = users.add_user(engine, "wang", "approver", "correct horse battery staple")
    review.act(engine, tracking, approver, "more_info", "请补充处罚决定书。")
    lookup = client.get(f"/requests/{tracking}")
    page = client.post(
        f"/requests/{tracking}", data={"form_token": _token(lookup.text), "code": code}
    )
    assert "需补正材料" in page.text and "请补充处罚决定书。" in page.text
    sent = client.post(
        f"/requests/{tracking}/supplement",
        data={"form_token": _token(page.text), "code": code, "note": "决定书见附件"},
        files=files(("决定书.png", PNG, "image/png")),
    )
    assert sent.status_code == 200 and "补正材料已收到" in sent.text


def test_api_takes_the_code_in_a_header(client, request_):
    url = f"/api/v1/requests/{request_.tracking_no}"
    status = client.get(url, headers={"X-Access-Code": request_.access_code.lower()})
    assert status.status_code == 200 and status.json()["status"] == "received"
    assert "deprecation" not in status.headers
    assert client.get(url).status_code == 404
    wrong = client.get(url, headers={"X-Access-Code": "AAAAA-AAAAA"})
    assert wrong.status_code == 404 and wrong.json() == {
        "errors": {"code": "受理编号或查询码不正确"}
    }
    # the query parameter still answers for the systems built on it, marked deprecated
    old = client.get(url, params={"code": request_.access_code})
    assert old.status_code == 200 and old.json()["tracking_no"] == request_.tracking_no
    assert old.headers["deprecation"].startswith("@")
    schema = client.get("/schema/openapi.json").json()
    params = schema["paths"]["/api/v1/requests/{tracking_no}"]["get"]["parameters"]
    assert {(p["name"], p["in"]) for p in params} >= {("X-Access-Code", "header")}
    assert "code" not in {p["name"] for p in params}
