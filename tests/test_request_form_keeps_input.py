"""A mistyped or changed 统一社会信用代码 on step 2 of the request form keeps the citizen on step 2:
the type, the ticked records, the contact fields, the reason and the commitment come back as
typed, the code's error is shown at the code field, every link of the error summary leads to a
field on the page, and correcting the code is all it takes to file the request. The same for a
valid code of another entity than the ticked records'. Files cannot be kept by a browser: the
page says to choose them again.

Over HTTP (both backends), posting what the page's form holds as a browser would, and in a
real browser (JavaScript off, 375 px wide)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml import html as lhtml

from tests.factories import penalty_row, uscc, write_csv
from tests.requests_support import PDF, count_requests, months_ago, receipt_of
from tests.servers import CHROMIUM, chromium, portal_server

TYPED = {
    "contact_name": "王芳",
    "mobile": "13800000000",
    "email": "wang@example.com",
    "reason": "罚款金额有误，应为 1200 元，请更正。",
}


def _wrong_check_digit(code: str) -> str:
    return code[:-1] + ("0" if code[-1] != "0" else "1")


def _form_fields(doc: Any) -> dict[str, list[str]]:
    """What the page's POST form would send as it stands (files aside), as a browser sends it."""
    [form] = doc.xpath('//form[@method="post"]')
    sent: dict[str, list[str]] = {}
    for el in form.xpath(".//input[@name] | .//textarea[@name]"):
        kind = el.get("type", "text")
        if kind in ("file", "submit"):
            continue
        if kind in ("checkbox", "radio") and el.get("checked") is None:
            continue
        value = (el.text or "") if el.tag == "textarea" else el.get("value", "")
        sent.setdefault(el.get("name"), []).append(value)
    return sent


def _post(client, fields: dict[str, list[str]], with_file: bool):
    # A browser sends the file field even when empty (filename ""): multipart either way.
    upload = (
        ("证明.pdf", PDF, "application/pdf") if with_file else ("", b"", "application/octet-stream")
    )
    return client.post("/requests/new", data=fields, files=[("attachments", upload)])


def _fill(client, record: str, code: str, with_file: bool):
    """Open the form from a record, choose 异议, fill everything in, tick the commitment, type
    `code` over the prefilled one and submit."""
    page = client.get(f"/requests/new?record={record}")
    assert page.status_code == 200, page.text[:500]
    fields = _form_fields(lhtml.fromstring(page.text))
    assert fields["record_ids"] == [record]  # ticked by the link
    fields.update({k: [v] for k, v in TYPED.items()})
    fields.update(type=["objection"], commitment=["true"], uscc=[code])
    return _post(client, fields, with_file)


def _summary_targets_exist(doc: Any) -> list[str]:
    links = doc.xpath('//*[@role="alert"]//a/@href')
    assert links, "no error summary"
    return [href for href in links if not doc.xpath(f'//*[@id="{href.removeprefix("#")}"]')]


def _assert_kept(resp, record: str, code: str, entity: str, says: str) -> Any:
    assert resp.status_code == 422, resp.text[:500]
    doc = lhtml.fromstring(resp.text)
    assert "第一步" not in resp.text, "dropped back to step 1"
    assert _summary_targets_exist(doc) == []
    first = doc.xpath('//*[@role="alert"]//a/@href')[0]
    assert first == "#f-uscc"
    fields = _form_fields(doc)
    assert fields["type"] == ["objection"]
    assert fields["record_ids"] == [record]
    assert fields["commitment"] == ["true"]
    assert fields["entity_uscc"] == [entity]
    assert fields["uscc"] == [code]  # as typed, to be corrected in place
    for name, value in TYPED.items():
        assert fields[name] == [value], name
    assert not doc.xpath('//*[contains(@class, "record-choice--error")]')
    assert doc.xpath('//a[text()="更换主体"]/@href') == ["/requests/new?type=objection"]
    # The error sits with the code field and is tied to it.
    [field] = doc.xpath('//input[@id="f-uscc"]')
    assert field.get("aria-invalid") == "true"
    assert "e-uscc" in field.get("aria-describedby").split()
    [error] = field.getparent().xpath('./*[@id="e-uscc"]')
    assert says in error.text_content() and entity in error.text_content()
    return doc


@pytest.mark.parametrize("case", ["wrong check digit", "another entity's code"])
def test_a_code_error_on_step_two_keeps_every_value(engine, client, cases, case):
    record, entity = cases.other, cases.other_uscc
    code, says = (
        (_wrong_check_digit(entity), "校验位错误")
        if case == "wrong check digit"
        else (cases.repairable_uscc, "不一致")
    )
    resp = _fill(client, record, code, with_file=True)
    doc = _assert_kept(resp, record, code, entity, says)
    assert "重新选择附件" in resp.text  # a browser cannot keep the chosen file
    assert count_requests(engine) == 0

    # Correcting the code (and choosing the file again) is all it takes.
    fields = _form_fields(doc)
    fields["uscc"] = [entity]
    done = _post(client, fields, with_file=True)
    assert done.status_code == 201, done.text[:1000]
    tracking, access_code = receipt_of(done.text)
    assert access_code and count_requests(engine) == 1

    # The same form sent again is the same request (its token is the idempotency key).
    again = _post(client, fields, with_file=True)
    assert again.status_code == 200 and receipt_of(again.text)[0] == tracking
    assert count_requests(engine) == 1


def test_step_two_errors_of_other_fields_come_with_the_code_error(engine, client, cases):
    """What is said of the other fields is said at once, checked against step 2's entity."""
    page = client.get(f"/requests/new?record={cases.other}")
    fields = _form_fields(lhtml.fromstring(page.text))
    fields.update(type=["objection"], uscc=[cases.repairable_uscc], mobile=["12345"])
    resp = _post(client, fields, with_file=False)
    assert resp.status_code == 422
    doc = lhtml.fromstring(resp.text)
    assert _summary_targets_exist(doc) == []
    assert doc.xpath('//*[@role="alert"]//a/@href')[:2] == ["#f-uscc", "#f-contact_name"]
    assert doc.xpath('//*[@id="e-mobile"]') and doc.xpath('//*[@id="e-reason"]')
    assert "重新选择附件" not in resp.text  # no file was chosen
    assert count_requests(engine) == 0


def test_step_one_summary_links_only_to_its_fields(engine, client, cases):
    """A form without step 2's entity (sent from a page of before) with a bad code is shown as
    step 1: its summary does not link to step 2's fields."""
    page = client.get(f"/requests/new?record={cases.other}")
    fields = _form_fields(lhtml.fromstring(page.text))
    fields.pop("entity_uscc", None)
    fields.update(uscc=[_wrong_check_digit(cases.other_uscc)])
    resp = _post(client, fields, with_file=False)
    assert resp.status_code == 422 and "第一步" in resp.text
    doc = lhtml.fromstring(resp.text)
    assert _summary_targets_exist(doc) == []
    assert count_requests(engine) == 0


# -- in a browser -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from sqlalchemy import select

    from publishing.commit import RECORDS
    from publishing.db import make_engine, upgrade
    from publishing.publish import publish

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium fonts-wqy-microhei")
    workdir = tmp_path_factory.mktemp("keeps-input")
    url = f"sqlite:///{workdir / 'disclosure.db'}"
    engine = make_engine(url)
    upgrade(engine)
    rows = [
        penalty_row(80 + i, 当事人名称=f"烟台保留输入测试{i}有限公司", 处罚决定日期=months_ago(3))
        for i in range(2)
    ]
    assert publish(
        [write_csv(workdir / "p.csv", rows)], engine=engine, show_progress=False
    ).published
    with engine.connect() as conn:
        record = conn.execute(
            select(RECORDS.c.id).where(RECORDS.c.entity_id == uscc(80))
        ).scalar_one()
    engine.dispose()
    proof = workdir / "决定书.pdf"
    proof.write_bytes(PDF)
    env = {"DISCLOSURE_DATABASE_URL": url, "DISCLOSURE_DATA_DIR": str(workdir / "var")}
    with portal_server(env) as (base, _):
        yield {"base": base, "record": record, "uscc": uscc(80), "other": uscc(81), "proof": proof}


LINKS_OK = "els => els.map(e => [e.getAttribute('href'), !!document.querySelector(e.getAttribute('href'))])"


@pytest.mark.browser
def test_in_a_browser_without_javascript_at_375px(site):
    with chromium() as browser:
        context = browser.new_context(
            locale="zh-CN", viewport={"width": 375, "height": 667}, java_script_enabled=False
        )
        page = context.new_page()
        for code, says in (
            (_wrong_check_digit(site["uscc"]), "校验位错误"),
            (site["other"], "不一致"),
        ):
            page.goto(f"{site['base']}/requests/new?record={site['record']}")
            page.check("#t-objection")
            page.fill("#f-uscc", code)
            page.fill("#f-contact_name", TYPED["contact_name"])
            page.fill("#f-mobile", TYPED["mobile"])
            page.fill("#f-reason", TYPED["reason"])
            page.set_input_files("#f-attachments", str(site["proof"]))
            page.check("#f-commitment")
            page.get_by_role("button", name="提交申请").click()
            page.wait_for_load_state()

            assert "第一步" not in page.content()
            links = page.eval_on_selector_all('[role="alert"] a', LINKS_OK)
            assert links and all(ok for _, ok in links), links
            assert links[0][0] == "#f-uscc"
            assert page.is_checked("#t-objection") and page.is_checked("#f-commitment")
            assert page.is_checked(f'input[name="record_ids"][value="{site["record"]}"]')
            assert page.input_value("#f-contact_name") == TYPED["contact_name"]
            assert page.input_value("#f-mobile") == TYPED["mobile"]
            assert page.input_value("#f-reason") == TYPED["reason"]
            assert page.input_value("#f-uscc") == code
            assert says in page.inner_text("#e-uscc") and page.is_visible("#e-uscc")
            assert "重新选择附件" in page.inner_text('[role="alert"]')
            # The error is right under the field, and nothing runs off a 375 px screen.
            field, error = (
                page.locator("#f-uscc").bounding_box(),
                page.locator("#e-uscc").bounding_box(),
            )
            assert field and error and 0 <= error["y"] - (field["y"] + field["height"]) < 120
            assert error["x"] >= 0 and error["x"] + error["width"] <= 375
            assert page.evaluate("document.documentElement.scrollWidth") <= 375

            page.fill("#f-uscc", site["uscc"])
            page.set_input_files("#f-attachments", str(site["proof"]))
            page.get_by_role("button", name="提交申请").click()
            page.wait_for_selector("#tracking-no")
            assert page.inner_text("#access-code").strip()
        context.close()
