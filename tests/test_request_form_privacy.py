"""The objection / credit-repair form and the requests API reveal nothing about entities and
records that have left publication: one whose records were all repaired (withdrawn), or a
record withdrawn on an upheld objection, answers exactly as a code or an id never on record
(same words, same status), while a published record still prefills the form. Through the real
portal, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from publishing import review, users
from publishing.commit import RECORDS
from publishing.models import ACTIVE
from publishing.publish import publish
from tests.factories import penalty_row, uscc, write_csv
from tests.requests_support import PDF, fields, files, form_token, months_ago, submit_request

NEVER_CODE = uscc(50)  # a valid code no file ever had
NEVER_RECORD = "pn-0000000000000000"  # a well-formed id no record ever had
GONE_NAME = "测试1食品有限公司"  # the repaired entity's name (its only record withdrawn)


@dataclass
class Gone:
    repaired: str  # the only record of uscc(1), withdrawn on a credit repair
    withdrawn: str  # a record of uscc(4), withdrawn on an upheld objection
    published: str  # uscc(4)'s other record, still published


def _approve(engine, approver, type_: str, record: str, code: str, **outcome: str) -> None:
    tracking = submit_request(engine, type_, record, code)
    review.act(engine, tracking, approver, "approve", "准予，撤下公示。", sync_search=False,
               **outcome)


@pytest.fixture
def gone(engine, cases, tmp_path) -> Gone:
    second = penalty_row(4, 处罚决定日期=months_ago(5), 领域="价格",
                         行政处罚决定书文号="烟芝市监罚〔2026〕104号")
    assert publish([write_csv(tmp_path / "second.csv", [second])], engine=engine,
                   show_progress=False).published
    approver, _ = users.add_user(engine, "wang", "approver", "correct horse battery staple")
    _approve(engine, approver, "repair", cases.repairable, cases.repairable_uscc)
    _approve(engine, approver, "objection", cases.other, cases.other_uscc, outcome="withdraw")
    with engine.connect() as conn:
        [published] = conn.execute(
            select(RECORDS.c.id).where(RECORDS.c.entity_id == uscc(4), RECORDS.c.status == ACTIVE)
        ).scalars().all()
    return Gone(cases.repairable, cases.other, published)


def _same(text: str, *secrets: str) -> str:
    """A page with its one-time form token and the code or id asked about blanked out."""
    text = re.sub(r'name="form_token" value="[^"]+"', 'name="form_token" value=""', text)
    for secret in secrets:
        text = text.replace(secret, "<asked>")
    return text


def test_the_public_pages_treat_them_as_gone(client, gone):
    # what the form must agree with
    assert client.get(f"/entities/{uscc(1)}").status_code == 404
    assert client.get(f"/records/{gone.repaired}").status_code == 410
    assert client.get(f"/records/{gone.withdrawn}").status_code == 410
    assert client.get(f"/entities/{uscc(4)}").status_code == 200


def test_the_form_does_not_know_a_repaired_entity(client, gone):
    repaired = client.get(f"/requests/new?uscc={uscc(1)}")
    never = client.get(f"/requests/new?uscc={NEVER_CODE}")
    assert repaired.status_code == never.status_code == 200
    assert GONE_NAME not in repaired.text and "主体名称" not in repaired.text
    assert f"本系统没有统一社会信用代码为 {uscc(1)} 的主体的公示信息" in repaired.text
    assert _same(repaired.text, uscc(1)) == _same(never.text, NEVER_CODE)


@pytest.mark.parametrize("which", ["repaired", "withdrawn"])
def test_a_withdrawn_record_prefills_nothing(client, gone, which):
    record = getattr(gone, which)
    owner = uscc(1) if which == "repaired" else uscc(4)
    page = client.get(f"/requests/new?type=repair&record={record}")
    never = client.get(f"/requests/new?type=repair&record={NEVER_RECORD}")
    assert page.status_code == never.status_code == 200
    assert owner not in page.text and "主体名称" not in page.text and GONE_NAME not in page.text
    assert _same(page.text, record) == _same(never.text, NEVER_RECORD)


def test_a_published_record_still_prefills_the_form(client, gone):
    page = client.get(f"/requests/new?type=objection&record={gone.published}")
    assert page.status_code == 200
    assert "主体名称：<strong>烟台市芝罘区测试4食品有限公司</strong>" in page.text
    assert f'value="{gone.published}" checked' in page.text
    assert gone.withdrawn not in page.text  # its withdrawn record is no choice


# A request naming what left publication is refused in the words a never-known one gets.
ASKED = {
    "repaired entity and record": ((uscc(1), "repaired"), (NEVER_CODE, NEVER_RECORD)),
    "withdrawn record of a published entity": ((uscc(4), "withdrawn"), (uscc(4), NEVER_RECORD)),
}


def _asked(gone: Gone, case: str) -> tuple[tuple[str, str], tuple[str, str]]:
    (code, which), never = ASKED[case]
    return (code, getattr(gone, which)), never


@pytest.mark.parametrize("case", list(ASKED))
def test_the_api_refuses_them_as_never_known(client, gone, case):
    answers = []
    for code, record in _asked(gone, case):
        data = fields(uscc=code, record_ids=[record])
        upload = files(("p.pdf", PDF, "application/pdf"))
        response = client.post("/api/v1/requests", data=data, files=upload)
        answers.append((response.status_code, _same(response.text, code, record)))
    assert answers[0] == answers[1]
    assert answers[0][0] == 422 and "已停止公示，无需申请" not in answers[0][1]
    assert GONE_NAME not in answers[0][1]


@pytest.mark.parametrize("case", list(ASKED))
def test_the_form_refuses_them_as_never_known(client, gone, case):
    answers = []
    for code, record in _asked(gone, case):
        token = form_token(client, f"/requests/new?uscc={uscc(4)}")
        data = {"form_token": token, **fields(uscc=code, record_ids=[record])}
        response = client.post(
            "/requests/new", data=data, files=files(("p.pdf", PDF, "application/pdf"))
        )
        answers.append((response.status_code, _same(response.text, code, record)))
    assert answers[0] == answers[1]
    assert answers[0][0] == 422 and "未保存任何内容" in answers[0][1]
    assert GONE_NAME not in answers[0][1]
