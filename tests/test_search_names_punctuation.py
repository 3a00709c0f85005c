"""Names typed without their brackets, and names typed after 山东省 / 烟台市 (review of the
embedded search): both backends of the embedded index (SQLite, PostgreSQL) and Meilisearch (the
fake server, at its HTTP boundary), on the same database."""

from __future__ import annotations

import uuid

import pytest

from publishing.search.base import SearchQuery
from publishing.search.embedded import EmbeddedSearch, index_row
from publishing.search.highlight import marked
from publishing.search.meili import MeiliSearch
from publishing.search.meili_encoding import encode, index_doc, query_string
from publishing.search.sync import sync
from publishing.search.text import name_texts, normalize, parse_query, tokens
from tests import test_search_meili as meili_suite
from tests.factories import penalty_row, uscc
from tests.test_search import fresh_engine, run

meili = meili_suite.meili  # the fake Meilisearch (session), or DISCLOSURE_MEILI_URL's server

TONG = "通百鑫（烟台）调味品有限公司"
TONG_BRANCH = "通百鑫（烟台）调味品有限公司芝罘分公司"
BAIXING = "百姓家（烟台）超市有限公司"
RUNFANG = "润方(烟台)水产有限公司"  # ASCII brackets
HONG = "芝罘区鸿万兴冷饮店"
SHUANGYE = "芝罘区双业冷饮店"
MARKET = "芝罘区农贸市场服务中心"
JINHAI = "福山区金海冷饮店"
JINHAI_CITY = "烟台市福山区金海冷饮店"
XINHUA_OLD = "鑫华（烟台）商贸有限公司"
XINHUA = "烟台鑫华商贸有限公司"
NUMBER = "烟芝市监罚〔2026〕12号"  # penalty_row(12)'s decision number

# the reviewer's queries, and what each must find (an entity's name)
FOUND = {
    "通百鑫烟台": TONG,
    "通百鑫调味品": TONG,
    "百姓家烟台": BAIXING,
    "润方烟台水产": RUNFANG,
    "润方水产": RUNFANG,
    "鑫华烟台商贸": XINHUA,  # by its 曾用名
    "烟台市芝罘区鸿万兴冷饮店": HONG,
    "山东省芝罘区鸿万兴冷饮店": HONG,
    "山东省烟台市芝罘区双业冷饮店": SHUANGYE,
    "山东省 烟台市 芝罘区双业冷饮店": SHUANGYE,
}


def _world(engine, tmp_path) -> None:
    names = [TONG, TONG_BRANCH, BAIXING, RUNFANG, HONG, SHUANGYE, MARKET, JINHAI, JINHAI_CITY]
    rows = [
        # addresses without 烟台市: the prefixed queries must not match them as text
        penalty_row(n, 当事人名称=name, 住所=f"南大街{n}号")
        for n, name in enumerate(names, start=1)
    ]
    rows.append(penalty_row(12, 当事人名称="烟台市芝罘区测试食品有限公司", 住所="南大街12号"))
    rows.append(penalty_row(13, 当事人名称=XINHUA_OLD, 处罚决定日期="2026-02-01"))
    run(engine, tmp_path, "a.csv", rows)
    # renamed: the bracketed name becomes its 曾用名
    run(engine, tmp_path, "b.csv", [penalty_row(14, 统一社会信用代码=uscc(13), 当事人名称=XINHUA)])


@pytest.fixture(scope="module", params=("sqlite", "postgresql"))
def world(request, tmp_path_factory):
    """The names above published and synced into the embedded index (read-only, shared)."""
    tmp_path = tmp_path_factory.mktemp("punct")
    with fresh_engine(request.param, tmp_path_factory, "punct") as engine:
        _world(engine, tmp_path)
        index = EmbeddedSearch(engine)
        assert sync(engine, index) > 0
        yield index


def search(index, q: str, **kw):
    return index.search(SearchQuery(q=q, limit=50, **kw))


def entity_titles(index, q: str) -> list[str]:
    return [h.title for h in search(index, q).hits if h.type == "entity"]


# -- text (no database) ----------------------------------------------------------------------


def test_a_name_is_tokenised_across_and_without_its_brackets():
    joined, bare = name_texts(normalize(TONG))
    assert (joined, bare) == ("通百鑫烟台调味品有限公司", "通百鑫调味品有限公司")
    assert "鑫烟" in tokens(joined) and "鑫调" in tokens(bare)
    # a bracketed end adds nothing the joined name does not have
    assert name_texts(normalize("芝罘区好运来批发部（个体工商户）")) == [
        "芝罘区好运来批发部个体工商户"
    ]
    # words stay words
    assert name_texts(normalize("烟台 XYZ Tech 店")) == ["烟台 xyz tech 店"]


def test_the_administrative_prefix_of_a_query():
    assert parse_query("烟台市芝罘区鸿万兴冷饮店").unprefixed == HONG
    assert parse_query("山东省烟台市芝罘区双业冷饮店").unprefixed == SHUANGYE
    assert parse_query("山东省烟台樟宇").unprefixed == "樟宇"
    # 烟台 alone is part of names; 烟台市场 is no 烟台市; a prefix alone is no query for all
    for q in ("烟台樟宇", "烟台市场", "烟台市", "山东省烟台市", "芝罘区鸿万兴冷饮店", NUMBER):
        assert parse_query(q).unprefixed is None, q


# -- the embedded index ----------------------------------------------------------------------


@pytest.mark.parametrize("q", list(FOUND))
def test_each_reviewer_query_finds_its_entity(world, q):
    titles = entity_titles(world, q)
    assert FOUND[q] in titles, (q, titles)
    assert titles[0] == FOUND[q], (q, titles)  # (通百鑫: before its longer-named branch)


# what the highlight of each bracket-free query marks in its entity's name
MARKED = {
    "通百鑫烟台": "<mark>通百鑫</mark>（<mark>烟台</mark>）调味品有限公司",
    "通百鑫调味品": "<mark>通百鑫</mark>（烟台）<mark>调味品</mark>有限公司",
    "润方水产": "<mark>润方</mark>(烟台)<mark>水产</mark>有限公司",
    "鑫华烟台商贸": "曾用名：<mark>鑫华</mark>（<mark>烟台</mark>）<mark>商贸</mark>有限公司",
}


@pytest.mark.parametrize("q", list(MARKED))
def test_a_bracket_free_query_is_marked_where_it_matched(world, q):
    hit = next(h for h in search(world, q).hits if h.type == "entity")
    assert hit.highlight == MARKED[q]


def test_a_word_between_chinese_runs_is_not_jumped_by_a_highlight():
    assert marked("烟台 XYZ 市场", parse_query("台市")) is None
    assert marked("烟台，市场", parse_query("台市")) == "烟<mark>台</mark>，<mark>市</mark>场"


def test_exact_full_names_still_come_first(world):
    for name in (TONG, BAIXING, RUNFANG, JINHAI, JINHAI_CITY, HONG):
        hits = search(world, name).hits
        assert (hits[0].type, hits[0].title) == ("entity", name), name
    # a prefixed query that is a name itself is answered as such (nothing dropped)
    assert entity_titles(world, JINHAI_CITY) == [JINHAI_CITY]
    assert entity_titles(world, JINHAI) == [JINHAI, JINHAI_CITY]
    # a query with brackets, as before
    assert entity_titles(world, "通百鑫（烟台）调味品")[:2] == [TONG, TONG_BRANCH]


def test_decision_number_searches_are_unchanged(world):
    for q in (NUMBER, "烟芝市监罚[2026]12号", "烟芝市监罚（2026）12号"):
        hits = search(world, q).hits
        assert hits[0].type == "penalty" and hits[0].doc["decision_no"] == NUMBER, q


def test_the_prefix_does_not_make_an_unrelated_query_match(world):
    everything = world.count()
    for q in ("烟台市不存在的名称", "山东省不存在的冷饮店", "烟台市场", "山东省烟台市场"):
        assert search(world, q).total == 0, q  # 场 alone would find 芝罘区农贸市场服务中心
    for q in ("烟台市", "山东省烟台市"):
        assert search(world, q).total < everything, q
    # the filters still apply to the query without its prefix
    assert search(world, "烟台市芝罘区鸿万兴冷饮店", types=("penalty",)).hits[0].type == "penalty"
    assert search(world, "烟台市芝罘区鸿万兴冷饮店", district="370611").total == 0  # 福山区


def test_index_tokens_of_a_bracketed_name():
    doc = {"id": "x", "type": "entity", "names": [TONG, XINHUA_OLD], "text": []}
    row = index_row(doc)
    assert {"鑫烟", "鑫调", "华烟", "华商"} <= set(row.name)
    assert "鑫烟" not in row.body


# -- Meilisearch, at its HTTP boundary --------------------------------------------------------


def test_meilisearch_indexes_names_as_the_embedded_index_does():
    doc = {"id": "x", "type": "entity", "title": TONG, "url": "/x", "names": [TONG, XINHUA_OLD]}
    out = index_doc(doc)
    assert encode("鑫烟") in out["name"].split() and encode("鑫调") in out["name"].split()
    assert encode("华烟") in out["former"][0].split()


def test_meilisearch_finds_what_the_embedded_index_finds(world, meili):
    url, key, fake = meili
    backend = MeiliSearch(
        url, key, f"test_{uuid.uuid4().hex[:12]}", backoff=0.01, search_timeout=(1.0, 60.0)
    )
    try:
        assert sync(world.engine, backend) > 0
        for q in [*FOUND, "烟台市不存在的名称", "烟台市场", JINHAI_CITY, NUMBER]:
            got = search(backend, q)
            want = search(world, q)
            assert (got.total, {h.id for h in got.hits}) == (
                want.total,
                {h.id for h in want.hits},
            ), q
        if fake is not None:  # what it sent: the query, then the query without its prefix
            fake.requests.clear()
            search(backend, "烟台市芝罘区鸿万兴冷饮店")
            sent = [
                [s["q"] for s in body["queries"]]
                for method, path, body in fake.requests
                if method == "POST" and path == "multi-search"
            ]
            assert [qs[-1] for qs in sent] == [
                query_string(parse_query("烟台市芝罘区鸿万兴冷饮店")),
                query_string(parse_query(HONG)),
            ]
    finally:
        backend.drop()
