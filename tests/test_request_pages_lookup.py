"""An applicant without the receipt's link looks a request up at /requests/lookup (linked from
the home page and the form) by number and code, POSTed with a form token like the lookup of
one number. The number is taken as people type it (lower-case, full-width, spaces), here and in
the API; a wrong number and a wrong code get the same answer, and every try counts against the
one per-IP limit on guessing codes. Errors are tied to their fields (aria-describedby)."""

from __future__ import annotations

import pytest
from lxml import html as lhtml

from publishing import request_config
from publishing import requests as rq
from tests.requests_support import (
    PDF,
    fields,
    files,
    form_token,
    limit_requests,
    make_client,
    objection_on_other,
)

LOOKUP = "/requests/lookup"


@pytest.fixture
def request_(engine, cases) -> rq.Receipt:
    return rq.submit(engine, objection_on_other(cases))


def _lookup(client, number: str, code: str):
    token = form_token(client, LOOKUP)
    return client.post(LOOKUP, data={"form_token": token, "tracking_no": number, "code": code})


def _as_typed(tracking: str) -> list[str]:
    """The number as applicants type it: lower-case, full-width (a Chinese input method),
    with spaces and another dash."""
    full_width = "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in tracking)
    return [tracking.lower(), full_width, f" {tracking.lower().replace('-', ' — ')} "]


def _described(doc, field_id: str) -> tuple[list[str], str | None]:
    [field] = doc.xpath(f'//*[@id="{field_id}"]')
    return field.get("aria-describedby", "").split(), field.get("aria-invalid")


def test_the_lookup_page_is_linked_and_asks_for_number_and_code(client, cases):
    for url in ("/", "/requests/new"):
        assert f'href="{LOOKUP}"' in client.get(url).text, url
    page = client.get(LOOKUP)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    doc = lhtml.fromstring(page.text)
    [form] = doc.xpath('//form[@class="request-form"]')
    assert (form.get("action"), form.get("method")) == (LOOKUP, "post")
    assert form.xpath('.//input[@id="f-tracking_no"][@name="tracking_no"]')
    assert form.xpath('.//input[@id="f-code"][@name="code"]')
    assert form.xpath('.//input[@name="form_token"]/@value')[0]


def test_a_number_as_typed_finds_the_request(client, request_):
    tracking, code = request_.tracking_no, request_.access_code
    for typed in _as_typed(tracking):
        page = _lookup(client, typed, code.lower())
        assert page.status_code == 200 and 'id="request-status"' in page.text, typed
        assert tracking in page.text and "code=" not in page.text
    # the lookup of one number, reached by typing a lower-case address by hand
    typed = tracking.lower()
    token = form_token(client, f"/requests/{typed}")
    page = client.post(f"/requests/{typed}", data={"form_token": token, "code": code})
    assert page.status_code == 200 and 'id="request-status"' in page.text
    # and the API, with the code in its header
    api = client.get(f"/api/v1/requests/{typed}", headers={"X-Access-Code": code})
    assert api.status_code == 200 and api.json()["tracking_no"] == tracking


def test_a_wrong_number_and_a_wrong_code_get_one_answer(client, request_):
    tracking, code = request_.tracking_no, request_.access_code
    other_number = tracking[:-1] + ("2" if tracking[-1] != "2" else "3")
    answers = []
    for number, guess in ((tracking, "AAAAA-AAAAA"), (other_number, code), ("nonsense", code)):
        page = _lookup(client, number, guess)
        assert page.status_code == 404 and 'id="request-status"' not in page.text
        doc = lhtml.fromstring(page.text)
        [error] = doc.xpath('//*[@id="lookup-error"]')
        answers.append(error.text_content().strip())
        for field_id, hint in (("f-tracking_no", "h-tracking_no"), ("f-code", "h-code")):
            assert _described(doc, field_id) == ([hint, "lookup-error"], "true"), field_id
        assert doc.xpath('//input[@id="f-tracking_no"]')[0].get("value") == number.upper()
        assert doc.xpath('//input[@id="f-code"]')[0].get("value") is None  # never echoed
    assert answers == ["受理编号或查询码不正确，请核对后重新输入。"] * 3


def test_the_lookup_of_one_number_ties_its_error_to_the_code_field(client, request_):
    tracking = request_.tracking_no
    token = form_token(client, f"/requests/{tracking}")
    wrong = client.post(f"/requests/{tracking}", data={"form_token": token, "code": "AAAAA"})
    doc = lhtml.fromstring(wrong.text)
    assert wrong.status_code == 404 and doc.xpath('//*[@id="lookup-error"][@role="alert"]')
    assert _described(doc, "f-code") == (["h-code", "lookup-error"], "true")
    # a form-token problem is not about the code: the field is not marked
    missing = client.post(f"/requests/{tracking}", data={"code": "AAAAA"})
    assert missing.status_code == 403
    assert _described(lhtml.fromstring(missing.text), "f-code") == (["h-code"], None)


def test_the_lookup_needs_its_form_token(engine, client, request_):
    tracking, code = request_.tracking_no, request_.access_code
    data = {"tracking_no": tracking, "code": code}
    assert client.post(LOOKUP, data=data).status_code == 403
    with make_client(engine) as other:  # a token of another browser
        foreign = form_token(other, LOOKUP)
    assert client.post(LOOKUP, data={**data, "form_token": foreign}).status_code == 403
    of_one_number = form_token(client, f"/requests/{tracking}")
    assert client.post(LOOKUP, data={**data, "form_token": of_one_number}).status_code == 403
    own = form_token(client, LOOKUP)
    answer = client.post(LOOKUP, data={**data, "form_token": own})
    assert answer.status_code == 200 and 'id="request-status"' in answer.text


def test_both_lookups_share_the_limit_on_guessing_codes(engine, cases, tmp_path, monkeypatch):
    limit_requests(tmp_path, monkeypatch, "status", (3, 600))
    receipt = rq.submit(engine, objection_on_other(cases))
    tracking, code = receipt.tracking_no, receipt.access_code
    try:
        with make_client(engine) as client:
            token = form_token(client, f"/requests/{tracking}")
            tries = [
                client.post(f"/requests/{tracking}", data={"form_token": token, "code": "AAAAA"})
                for _ in range(2)
            ]
            tries += [_lookup(client, tracking, code) for _ in range(2)]  # the right code
            assert [t.status_code for t in tries] == [404, 404, 200, 429]
            assert "查询过于频繁" in tries[-1].text and int(tries[-1].headers["retry-after"])
    finally:
        request_config.load_config.cache_clear()


def test_step_one_sent_empty_says_what_is_missing(client, cases):
    page = client.get("/requests/new?uscc=")
    doc = lhtml.fromstring(page.text)
    assert page.status_code == 200
    [error] = doc.xpath('//*[@id="e-uscc"]')
    assert "请填写统一社会信用代码" in error.text_content()
    assert doc.xpath('//*[@role="alert"]//a[@href="#f-uscc"]')
    assert _described(doc, "f-uscc") == (["h-uscc", "e-uscc"], "true")
    # a first visit is not an error
    assert 'id="e-uscc"' not in client.get("/requests/new").text


def test_a_repair_without_the_commitment_points_at_its_checkbox(client, cases):
    token = form_token(client, f"/requests/new?uscc={cases.repairable_uscc}")
    data = fields(
        uscc=cases.repairable_uscc, record_ids=[cases.repairable], commitment=None, form_token=token
    )
    page = client.post(
        "/requests/new", data=data, files=files(("证明.pdf", PDF, "application/pdf"))
    )
    assert page.status_code == 422
    doc = lhtml.fromstring(page.text)
    [link] = doc.xpath('//*[@role="alert"]//a[contains(@href, "commitment")]')
    [target] = doc.xpath(f'//*[@id="{link.get("href")[1:]}"]')
    assert (target.tag, target.get("type")) == ("input", "checkbox")
    assert _described(doc, target.get("id")) == (["commitment-text", "e-commitment"], "true")
