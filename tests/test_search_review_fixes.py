"""Fixes from the search review of a 3,000-entity sample, on SQLite and PostgreSQL (embedded
index) and, where the behaviour lives in the backend, on Meilisearch (the fake server at the
HTTP boundary, tests/fake_meili.py):

- a name typed with another legal form or a place prefix (烟台品烨热力有限责任公司, 品烨公司,
  烟台福山区鲁聚酒馆) that finds nothing is searched once relaxed, and the page and API say so;
- the search feed reads q as the page does (punctuation only, a code inside a longer query),
  and the page offers no feed for a query that means nothing;
- an exact 曾用名 ranks as an exact name (the company above its old records);
- a name holding a latin word ranks above one whose pinyin initials only spell it;
- a person named in a penalty's 违法事实 is found (published text), the legal representative not;
- invisible characters are dropped from a query as the import drops them from the data;
- a 注册号 linked to a USCC shows the company's (the USCC's) card.
"""

from __future__ import annotations

from datetime import date

import pytest
from litestar.testing import TestClient

from portal.app import create_app
from publishing.publish import publish
from publishing.search import meili_encoding
from publishing.search.base import SearchQuery
from publishing.search.embedded import EmbeddedSearch
from publishing.search.sync import reindex, sync
from publishing.search.text import parse_query, relaxed_query
from tests import test_search_meili as meili_suite
from tests.factories import credit_mark_row, penalty_row, uscc, write_csv
from tests.test_feeds import entries, get_atom
from tests.test_search import fresh_engine

TODAY = date(2026, 11, 27)
YUNYOUXING = "烟台云优星粮油有限责任公司"
PINYE = "烟台品烨热力有限公司"
LUJU = "福山区鲁聚酒馆"
XINGYE = "福山区星烨装饰材料店"  # initials f s q x y z …
XYZ = "烟台XYZ科技有限公司"
OLD, NEW = "烟台旧名食品厂", "烟台新名食品有限公司"
SEAFOOD, FRUIT = "烟台海鲜酒家", "烟台鲜果海产店"  # 海鲜, and 海 and 鲜 apart
PERSON, REP = "王小明", "赵大勇"
ATOM = "http://www.w3.org/2005/Atom"
meili = meili_suite.meili  # the fake Meilisearch server (or DISCLOSURE_MEILI_URL's)


def _publish(engine, tmp_path, name: str, rows: list[dict[str, str]], header=None) -> None:
    path = write_csv(tmp_path / name, rows, header=header)
    result = publish([path], engine=engine, today=TODAY, show_progress=False)
    assert result.published, result.as_json()


def _world_rows() -> list[dict[str, str]]:
    fushan = {"所属区市": "福山区"}
    return [
        penalty_row(1, 当事人名称=YUNYOUXING),
        penalty_row(2, 当事人名称=PINYE, 所属区市="蓬莱区", 住所="烟台市蓬莱区蓬莱阁东路85号"),
        penalty_row(3, 当事人名称=LUJU, 住所="烟台市福山区汇福街99号", **fushan),
        penalty_row(4, 当事人名称=XINGYE, 住所="烟台市福山区鸿福街68号", **fushan),
        penalty_row(5, 当事人名称=XYZ),
        penalty_row(6, 当事人名称=OLD, 处罚决定日期="2026-02-01"),  # renamed to NEW below
        penalty_row(7, 当事人名称=OLD, 处罚决定日期="2026-03-01"),  # another company, named so now
        penalty_row(8, 当事人名称=SEAFOOD),
        penalty_row(9, 当事人名称=FRUIT),
        penalty_row(
            10,
            当事人名称="烟台某某商店",
            法定代表人=REP,
            违法事实=f"经查，{PERSON}在当事人店内销售过期食品。",
        ),
    ]


@pytest.fixture(scope="module", params=("sqlite", "postgresql", "meilisearch"))
def searcher(request, tmp_path_factory):
    """The world published and indexed: the embedded index on SQLite or PostgreSQL, or a
    Meilisearch index (the fake server) synced from a SQLite database."""
    tmp_path = tmp_path_factory.mktemp("review-world")
    dialect = "sqlite" if request.param == "meilisearch" else request.param
    with fresh_engine(dialect, tmp_path_factory, "review") as engine:
        _publish(engine, tmp_path, "a.csv", _world_rows())
        _publish(
            engine, tmp_path, "b.csv", [penalty_row(11, 统一社会信用代码=uscc(6), 当事人名称=NEW)]
        )
        if request.param == "meilisearch":
            backend = meili_suite._backend(request.getfixturevalue("meili"))
            assert sync(engine, backend) > 0
            yield backend
            backend.drop()
        else:
            backend = EmbeddedSearch(engine)
            assert sync(engine, backend) > 0
            yield backend


def search(backend, q: str, **kw):
    kw.setdefault("limit", 50)
    return backend.search(SearchQuery(q=q, **kw))


# -- 1. a name with another legal form or a place prefix -------------------------------------


def test_the_relaxed_query_drops_a_legal_form_and_splits_a_place_off():
    def terms(q: str) -> list[str] | None:
        relaxed = relaxed_query(parse_query(q))
        return [t.source for t in relaxed.terms] if relaxed else None

    assert terms("烟台品烨热力有限责任公司") == ["烟台", "品烨热力"]
    assert terms("品烨热力公司") == ["品烨热力"]
    assert terms("烟台福山区鲁聚酒馆") == ["烟台", "福山区", "鲁聚酒馆"]
    assert terms("福山鲁聚酒馆股份有限公司") == ["福山", "鲁聚酒馆"]
    assert terms("烟台市福山区鲁聚酒馆") == ["福山区", "鲁聚酒馆"]  # (烟台市 unprefixed first)
    assert terms("烟台公司") == ["烟台"]  # (2 characters are left)
    # nothing to relax, too little left, or a code: no second search
    for q in ("品烨热力", "有限公司", "烟台市场", "xyz", uscc(1), "烟芝市监罚〔2026〕1号"):
        assert terms(q) is None, q  # 烟台市场: not 烟台 + 市场


@pytest.mark.parametrize(
    ("q", "want"),
    [
        ("烟台云优星粮油有限公司", uscc(1)),
        ("烟台品烨热力有限责任公司", uscc(2)),
        ("品烨热力公司", uscc(2)),
        ("品烨公司", uscc(2)),
        ("福山鲁聚酒馆", uscc(3)),
        ("烟台福山区鲁聚酒馆", uscc(3)),
    ],
)
def test_a_name_with_another_legal_form_or_place_is_found_relaxed(searcher, q, want):
    result = search(searcher, q)
    assert result.relaxed and result.total, q
    assert (result.hits[0].type, result.hits[0].id) == ("entity", want), q


def test_a_query_that_finds_something_is_not_relaxed(searcher):
    strict = search(searcher, "品烨热力")
    assert not strict.relaxed and strict.hits[0].id == uscc(2)
    unprefixed = search(searcher, "烟台市福山区鲁聚酒馆")  # 福山区鲁聚酒馆: found as before
    assert not unprefixed.relaxed and unprefixed.hits[0].id == uscc(3)
    nothing = search(searcher, "不存在的热力有限公司")
    assert (nothing.total, nothing.relaxed) == (0, False)


# -- 3. an exact 曾用名 ----------------------------------------------------------------------


def test_an_exact_former_name_ranks_as_an_exact_name(searcher):
    hits = search(searcher, OLD).hits
    # the company named so now, the one that was (above its old record), then the records
    assert [(h.type, h.id) for h in hits[:2]] == [("entity", uscc(7)), ("entity", uscc(6))]
    assert {h.type for h in hits[2:]} == {"penalty"}
    assert hits[1].highlight == f"曾用名：<mark>{OLD}</mark>"


def test_a_name_search_on_an_index_without_former_keys_is_answered(meili, engine, tmp_path):
    """An index of the previous format (no filterable former_key) until the sync rebuilds
    it: a name is searched for as before (its exact name alone), not answered with 503."""
    _publish(engine, tmp_path, "a.csv", _world_rows()[:2])
    backend = meili_suite._backend(meili)
    old_filterable, old_doc = meili_encoding.FILTERABLE, meili_encoding.index_doc
    try:
        meili_encoding.FILTERABLE = tuple(a for a in old_filterable if a != "former_key")
        meili_encoding.index_doc = lambda d: {**old_doc(d), "former_key": None}
        reindex(engine, backend)
    finally:
        meili_encoding.FILTERABLE, meili_encoding.index_doc = old_filterable, old_doc
    try:
        assert backend.outdated()
        assert [h.id for h in search(backend, PINYE).hits][:1] == [uscc(2)]
        assert search(backend, "品烨公司").relaxed  # and found nothing: relaxed, the same way
    finally:
        backend.drop()


# -- 4. a literal name match above a pinyin / initials one -----------------------------------


def test_a_name_with_the_word_ranks_above_one_that_only_spells_it(searcher):
    entities = [h.title for h in search(searcher, "xyz").hits if h.type == "entity"]
    assert entities == [XYZ, XINGYE]


# -- 5. people in published text -------------------------------------------------------------


def test_a_person_named_in_the_facts_is_found_the_legal_representative_not(searcher):
    found = search(searcher, PERSON).hits
    assert [h.type for h in found] == ["penalty"] and PERSON in found[0].highlight
    assert search(searcher, REP).total == 0


# -- 6. invisible characters -----------------------------------------------------------------


def test_invisible_characters_are_dropped_from_a_query(searcher):
    plain = search(searcher, "海鲜")
    assert {h.title for h in plain.hits if h.type == "entity"} == {SEAFOOD}
    for q in ("海\u200b鲜", "\u200e海鲜\ufeff", "海\u00ad鲜"):
        result = search(searcher, q)
        assert [h.id for h in result.hits] == [h.id for h in plain.hits], repr(q)
        assert [h.highlight for h in result.hits] == [h.highlight for h in plain.hits], repr(q)
    assert "<mark>海鲜</mark>" in plain.hits[0].highlight


# -- the portal: page, API and feed ----------------------------------------------------------


@pytest.fixture
def client(engine, tmp_path):
    _publish(engine, tmp_path, "a.csv", _world_rows()[:3])
    reindex(engine)
    with TestClient(app=create_app(engine)) as client:
        yield client


def _api(client, q: str, **params) -> dict:
    r = client.get("/api/v1/search", params={"q": q, **params})
    assert r.status_code == 200, r.text[:300]
    return r.json()


def test_the_page_and_api_say_when_the_query_was_relaxed(client):
    notice = "没有与“品烨公司”完全一致的结果，以下结果忽略了“有限公司”等组织形式或拆开了地名。"
    data = _api(client, "品烨公司")
    assert data["relaxed"] is True and data["hits"][0]["title"] == PINYE
    page = client.get("/search", params={"q": "品烨公司"}).text
    assert notice in page and PINYE in page
    strict = _api(client, "品烨热力")
    assert strict["relaxed"] is False and strict["hits"][0]["title"] == PINYE
    assert "完全一致的结果" not in client.get("/search", params={"q": "品烨热力"}).text
    assert _api(client, "不存在的公司")["relaxed"] is False


def test_the_search_feed_reads_q_as_the_page_does(client):
    for q in ("😀", "！！！", "…"):
        assert _api(client, q)["total"] == 0, q
        page = client.get("/search", params={"q": q}).text
        assert "/search/feed.atom" not in page, q  # no feed offered for nothing
        assert entries(get_atom(client, f"/search/feed.atom?q={q}")) == [], q
    # with a filter, the page and the feed list that filter's records, as for no q
    everything = _api(client, "😀", kind="penalty")["total"]
    assert everything == 3
    assert len(entries(get_atom(client, "/search/feed.atom?q=😀&kind=penalty"))) == everything
    # a code inside a longer query: the page finds the company, the feed its records
    q = f"统一社会信用代码：{uscc(2)}"
    data = _api(client, q)
    assert data["exact_match"]["name"] == PINYE
    records = {h["id"] for h in data["hits"] if h["type"] == "penalty"}
    assert records
    feed = entries(get_atom(client, f"/search/feed.atom?q={q}"))
    assert {e.findtext(f"{{{ATOM}}}id").rsplit("/", 2)[1] for e in feed} == records
    # the feed offered by a page with an invisible character is the clean query's
    page = client.get("/search", params={"q": "品烨\u200b热力"}).text
    assert "/search/feed.atom?q=%E5%93%81%E7%83%A8%E7%83%AD%E5%8A%9B" in page


def test_a_reg_no_linked_to_a_uscc_shows_the_companys_card(engine, tmp_path):
    company, reg_no, name = uscc(602), "370687600987656", "海阳市耀宸鑫海鲜馆"
    reg_penalty = penalty_row(621, 统一社会信用代码="", 注册号=reg_no, 当事人名称=name)
    _publish(engine, tmp_path, "reg.csv", [reg_penalty], header=[*reg_penalty, "注册号"])
    mark = credit_mark_row(1, 统一社会信用代码=company, 注册号=reg_no, 主体名称=name)
    mark.update(标注类型="严重违法失信名单", 分类结果="")
    _publish(engine, tmp_path, "mark.csv", [mark], header=[*mark, "注册号"])
    reindex(engine)
    with TestClient(app=create_app(engine)) as client:
        for q in (reg_no, f"注册号：{reg_no}"):
            card = _api(client, q)["exact_match"]
            assert (card["uscc"], card["url"]) == (company, f"/entities/{company}"), q
        page = client.get("/search", params={"q": reg_no}).text
        assert f'<a href="/entities/{company}">{name}</a>' in page
