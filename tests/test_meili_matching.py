"""The Meilisearch backend finds what the embedded one finds, on the same database, where the
real Meilisearch's limits used to hide matches (the fake models them: at most 10 query terms,
only the last word a prefix, a prefix of more than 4 bytes expanded to at most 1,000 words):

- pinyin of 7+ syllables (only runs of up to 6 were words of the index);
- single characters that are not a name's last one (烟 台: only the last word was a prefix);
- code prefixes: a district's worth of codes (a prefix search found 1,000 of them) and records
  (the embedded backend finds entities by a code prefix, records by their exact code only).
"""

from __future__ import annotations

import pytest

from publishing.search.base import SearchQuery
from publishing.search.embedded import EmbeddedSearch
from publishing.search.meili_encoding import index_doc, query_string
from publishing.search.sync import sync
from publishing.search.text import parse_query
from tests import test_search_meili as meili_suite
from tests.factories import penalty_row, uscc
from tests.fake_meili import MAX_PREFIX_COUNT, Index, parse_q
from tests.test_search import run

meili = meili_suite.meili
_backend = meili_suite._backend

LONG = "烟台好运来超市"  # yan tai hao yun lai chao shi: 7 syllables
LONGER = "烟台市芝罘区东山好运来超市有限公司"
ELSEWHERE = {"所属区市": "龙口市", "住所": "龙口市东江街道", "处罚机关": "龙口市市场监督管理局"}
QUERIES = [
    "yantaihaoyunlaichaoshi",
    "yantai haoyun laichaoshi",
    "yantaihaoyunlaichaosh",  # still typing
    "zhifuqudongshanhaoyunlai",
    "haoyunlaichaoshiyouxiangongsi",
    "烟 台",
    "东 山",
    "烟 台 东",
    "运 超 山",
    "东山 yantai",
    "好运来超市",
    "12370602",  # a prefix of the codes of two entities with records
    "123706020",
    uscc(7, head="12"),
]


@pytest.fixture
def index(meili):
    b = _backend(meili)
    yield b
    b.drop()


def _ids(backend, q: str) -> tuple[int, list[str]]:
    result = backend.search(SearchQuery(q=q, limit=100))
    return result.total, sorted(h.id for h in result.hits)


def test_the_same_matches_as_the_embedded_backend(engine, tmp_path, index):
    rows = [
        penalty_row(1, 当事人名称=LONG),
        penalty_row(2, 当事人名称=LONGER),
        penalty_row(3, 当事人名称="龙口东兴水产品有限公司", **ELSEWHERE),
        penalty_row(4, 当事人名称="龙口山东好运商行", **ELSEWHERE),
        penalty_row(5, 当事人名称="龙口台东超市", **ELSEWHERE),
        penalty_row(6, 当事人名称="龙口好运来超市", **ELSEWHERE),
        penalty_row(7, 当事人名称="龙口东山商店", 统一社会信用代码=uscc(7, head="12"), **ELSEWHERE),
        penalty_row(8, 当事人名称="龙口西山商店", 统一社会信用代码=uscc(8, head="12"), **ELSEWHERE),
    ]
    run(engine, tmp_path, "a.csv", rows)
    embedded = EmbeddedSearch(engine)
    embedded.rebuild([])
    sync(engine, embedded)
    sync(engine, index)
    everything = index.count()
    for q in QUERIES:
        want = _ids(embedded, q)
        assert 0 < want[0] < everything, q  # a query that tells documents apart
        assert _ids(index, q) == want, q


def test_long_pinyin_is_sent_as_overlapping_words_of_indexed_length():
    # (cut where every reading has a boundary: hao may be ha o, chao cha o)
    words = ["yantaihaoyunlai", "yunlaichaoshi"]
    assert query_string(parse_query("yantaihaoyunlaichaoshi")).split() == words
    assert query_string(parse_query("yantai haoyun laichaoshi")).split() == words
    assert query_string(parse_query("yantaihaoyunlaichaosh")).split() == [
        *words[:1],
        "yunlaichaosh",
    ]
    assert query_string(parse_query("yantaizhangyu")) == "yantaizhangyu"  # one indexed word


def test_a_code_prefix_finds_every_entity_of_a_district(meili, index):
    """More codes start with the query than Meilisearch expands a prefix to (1,000)."""
    n = MAX_PREFIX_COUNT + 100
    docs = [_entity(i, uscc(i, head="92")) for i in range(1, n + 1)]
    docs.append(_entity(0, uscc(1, area="370611", head="92")))  # another district
    index.upsert(docs)
    result = index.search(SearchQuery(q="92370602", limit=10))
    assert (result.total, result.capped) == (n, False)
    assert {h.type for h in result.hits} == {"entity"}
    assert index.search(SearchQuery(q="9237060200000010", limit=10)).total == 10  # 10–19
    assert index.search(SearchQuery(q="92370611")).total == 1


def test_a_document_grows_by_its_single_characters_and_code_prefixes():
    name = "烟台市芝罘区好运来食品有限公司"
    doc = index_doc(_entity(1, uscc(1)) | {"names": [name]})
    assert doc["name"].split()[-len(name) :] == [f"c{ord(c):05x}" for c in name]
    assert doc["code_prefix"] == [uscc(1)[:n] for n in range(8, 18)]


def _entity(n: int, code: str) -> dict:
    return {
        "id": code,
        "type": "entity",
        "title": f"测试{n}",
        "url": f"/entities/{code}",
        "entity_id": code,
        "district": code[2:8],
        "date": "2026-06-01",
        "status": "active",
        "uscc": code,
        "names": [f"测试{n}"],
        "text": [],
        "data": {},
    }


# -- the fake models what the real server does -----------------------------------------------


def test_the_fake_reads_ten_query_terms_and_no_prefix_beyond():
    terms = parse_q(" ".join(f"w{i}" for i in range(11)))
    assert len(terms) == 10 and terms[-1] == ("word", "w9", False)
    assert parse_q('a "b c" d')[-1] == ("word", "d", True)


def test_the_fake_expands_a_long_prefix_to_a_thousand_words():
    index = Index("t", "id")
    index.settings["searchableAttributes"] = ["w"]
    index.docs = {str(i): {"id": str(i), "w": f"abcde{i:05d} ab{i:05d}"} for i in range(1500)}
    index.order = {k: i for i, k in enumerate(index.docs)}
    assert len(index.prefixed("abcde")) == MAX_PREFIX_COUNT  # longer than 4 bytes
    assert len(index.prefixed("ab")) == 3000  # the prefix database: every word
    index.docs["x"] = {"id": "x", "w": "abcde"}
    index.order["x"] = 1500
    index.changed()
    assert len(index.prefixed("abcde")) == MAX_PREFIX_COUNT + 1  # and the word itself
