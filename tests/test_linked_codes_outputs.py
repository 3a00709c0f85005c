"""One company under two entity ids (publishing.read: first under its 注册号 alone, later with its
USCC too) in the outputs beyond the profile and the credit check: the entity's feed, search by
exact code (embedded and Meilisearch), and the objection / credit-repair form. Either code
reaches the company's records, as the profile does; only while the USCC's records are
published. Real SQLite and PostgreSQL, the portal through Litestar's test client, Meilisearch
through the fake server at the HTTP boundary (tests/fake_meili.py)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from publishing import requests as rq
from publishing.commit import RECORDS
from publishing.request_models import REQUEST_RECORDS, REQUESTS
from publishing.search.base import SearchQuery
from publishing.search.sync import sync
from tests.api_helpers import api_client, publish_csv
from tests.factories import credit_mark_row, penalty_row, uscc
from tests.requests_support import MOBILE, REASON, form_token, make_client
from tests.search_backends import meili, search_backend  # noqa: F401 - fixtures
from tests.test_feeds import NS, get_atom, get_rss, tombstones

USCC, REG = uscc(602), "370687600987656"  # REG alone first, then with USCC
NAME = "海阳市耀宸鑫海鲜馆"
REG_DECISIONS = ("烟芝市监罚〔2026〕621号", "烟芝市监罚〔2026〕622号")


def _mark(**over: str) -> dict[str, str]:
    """A 严重违法失信名单 mark carrying both codes: it links them."""
    row = credit_mark_row(1, 统一社会信用代码=USCC, 注册号=REG, 标注类型="严重违法失信名单", 分类结果="")
    return {**row, "主体名称": NAME, **over}


def _reg_penalty(n: int, **over: str) -> dict[str, str]:
    """A penalty of REG published before the company had a USCC (the 注册号 column only)."""
    return penalty_row(n, 统一社会信用代码="", 注册号=REG, 当事人名称=NAME, **over)


def _split_company(engine, tmp_path) -> dict[str, str]:
    """REG's two penalties, then the mark with both codes: record id by decision number / "mark"."""
    publish_csv(engine, tmp_path, "reg.csv", [_reg_penalty(621), _reg_penalty(622)])
    publish_csv(engine, tmp_path, "mark.csv", [_mark()])
    with engine.connect() as conn:
        rows = conn.execute(select(RECORDS.c.id, RECORDS.c.kind, RECORDS.c.data)).all()
    return {r.data["decision_no"] if r.kind == "penalty" else "mark": r.id for r in rows}


def _withdraw(engine, tmp_path, name: str, row: dict[str, str]) -> None:
    publish_csv(engine, tmp_path, name, [{**row, "操作": "撤销"}])


# -- the entity's feed ----------------------------------------------------------------------


def _entry_records(root) -> set[str]:
    """The record ids of a feed's entries (their ids: tag:…:records/<id>/v<n>)."""
    return {e.findtext("a:id", namespaces=NS).rsplit("/", 2)[1] for e in root.findall("a:entry", NS)}


def test_the_company_has_one_feed_under_either_code(engine, tmp_path):
    ids = _split_company(engine, tmp_path)
    with api_client(engine) as client:
        root = get_atom(client, f"/entities/{USCC}/feed.atom")
        assert _entry_records(root) == set(ids.values())
        items = get_rss(client, f"/entities/{USCC}/feed.rss").findall("channel/item")
        assert {i.findtext("link").rsplit("/", 1)[1] for i in items} == set(ids.values())

        # The 注册号's feed is the company's, as its profile is: one hop to the USCC's (an
        # archive position is of the 注册号's own feed: dropped, as the profile drops `next`).
        for fmt in ("atom", "rss"):
            r = client.get(f"/entities/{REG}/feed.{fmt}", follow_redirects=False)
            assert r.status_code == 302, (fmt, r.status_code)  # temporary: the link can end
            assert r.headers["location"] == f"/entities/{USCC}/feed.{fmt}"
        wide = "".join(chr(ord(c) + 0xFEE0) for c in REG)
        r = client.get(f"/entities/{wide}/feed.atom?before=99", follow_redirects=False)
        assert r.headers["location"] == f"/entities/{USCC}/feed.atom"

        # A record under the 注册号 withdrawn: its tombstone is in the company's feed too.
        gone = ids[REG_DECISIONS[0]]
        _withdraw(engine, tmp_path, "w.csv", _reg_penalty(621))
        root = get_atom(client, f"/entities/{USCC}/feed.atom")
        assert _entry_records(root) == set(ids.values()) - {gone}
        assert [t.get("ref").rsplit("/", 2)[1] for t in tombstones(root)] == [gone]

        # The mark withdrawn, nothing of USCC is public, nor the link: each code on its own.
        _withdraw(engine, tmp_path, "w2.csv", _mark())
        root = get_atom(client, f"/entities/{REG}/feed.atom")
        assert _entry_records(root) == {ids[REG_DECISIONS[1]]}
        empty = client.get(f"/entities/{USCC}/feed.atom")
        assert empty.status_code == 200 and NAME not in empty.text
        assert get_atom(client, f"/entities/{USCC}/feed.atom").findall("a:entry", NS) == []


# -- search by exact code -------------------------------------------------------------------


def _found(backend, q: str) -> list[tuple[str, str]]:
    result = backend.search(SearchQuery(q=q, limit=50))
    return [(h.type, h.id) for h in result.hits]


def test_the_reg_no_finds_the_company(engine, tmp_path, search_backend):  # noqa: F811 - fixture
    """Already so before the feed and form fixes (a guard, not a fix's test): the USCC entity's
    document carries the 注册号 (entities.reg_no), and both backends' exact-code tier matches
    `uscc = code OR reg_no = code`."""
    ids = _split_company(engine, tmp_path)
    sync(engine, search_backend)
    by_reg = _found(search_backend, REG)
    assert ("entity", USCC) in by_reg and ("entity", REG) in by_reg
    assert {i for t, i in by_reg if t != "entity"} == set(ids.values())
    # Without the link, the 注册号 finds only what is its own.
    _withdraw(engine, tmp_path, "w.csv", _mark())
    sync(engine, search_backend)
    assert ("entity", USCC) not in _found(search_backend, REG)


# -- the objection / credit-repair form -----------------------------------------------------


def _choices(html: str) -> set[str]:
    return set(re.findall(r'name="record_ids" value="([^"]+)"', html))


def test_the_form_offers_the_records_under_either_code(engine, tmp_path):
    ids = _split_company(engine, tmp_path)
    with make_client(engine) as client:
        page = client.get(f"/requests/new?uscc={USCC}")
        assert page.status_code == 200 and _choices(page.text) == set(ids.values())
        # The 注册号 stands for the company, as on its profile: the USCC's step 2.
        page = client.get(f"/requests/new?uscc={REG}")
        assert page.status_code == 200 and _choices(page.text) == set(ids.values())
        assert f'name="entity_uscc" value="{USCC}"' in page.text
        # From a record under the 注册号 (its page's link): the company's form.
        page = client.get(f"/requests/new?record={ids[REG_DECISIONS[0]]}")
        assert _choices(page.text) == set(ids.values())

        # Sent: a record under the other code is the company's, by the form or by either code.
        token = form_token(client, f"/requests/new?uscc={REG}")
        data = {
            "form_token": token, "type": "objection", "uscc": REG, "entity_uscc": USCC,
            "record_ids": [ids[REG_DECISIONS[0]], ids["mark"]],
            "contact_name": "张三", "mobile": MOBILE, "reason": REASON,
        }
        sent = client.post("/requests/new", data=data)
        assert sent.status_code == 201, re.findall(r'class="error[^"]*"[^>]*>([^<]+)<', sent.text)
    for code, record in ((USCC, ids[REG_DECISIONS[1]]), (REG, ids["mark"])):
        rq.submit(engine, rq.Submission(
            type="objection", uscc=code, record_ids=[record], contact_name="李四",
            mobile="13700000000", reason=REASON,
        ))
    with engine.connect() as conn:
        stored = conn.execute(
            select(REQUESTS.c.entity_id, REQUEST_RECORDS.c.record_id)
            .join(REQUEST_RECORDS, REQUEST_RECORDS.c.request_id == REQUESTS.c.id)
        ).all()
    assert {e for e, _ in stored} == {USCC}
    assert {r for _, r in stored} == set(ids.values())
    # The mark withdrawn, the link goes with it: the 注册号 is its own entity again, and the
    # USCC no entity at all.
    _withdraw(engine, tmp_path, "w.csv", _mark())
    with make_client(engine) as client:
        page = client.get(f"/requests/new?uscc={REG}")
        assert _choices(page.text) == {ids[d] for d in REG_DECISIONS}
        assert f'name="entity_uscc" value="{REG}"' in page.text
    with pytest.raises(rq.IntakeError) as err:
        rq.submit(engine, rq.Submission(
            type="objection", uscc=USCC, record_ids=[ids[REG_DECISIONS[0]]],
            contact_name="王五", mobile="13600000000", reason=REASON,
        ))
    assert err.value.errors["uscc"] == rq.no_entity(USCC)
