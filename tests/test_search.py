"""Embedded search (issue 3) on SQLite and PostgreSQL: Chinese matching, codes, pinyin, ranking,
filters and facets, highlighting, and sync from the change log."""

from __future__ import annotations

import random
import time
from collections import Counter
from contextlib import contextmanager
from datetime import date

import pytest
from sqlalchemy import delete, select, text, update

from publishing.db import make_engine, upgrade
from publishing.models import SyncCursor
from publishing.publish import publish
from publishing.search import documents as documents_mod
from publishing.search import embedded as embedded_mod
from publishing.search import get_backend, index_format
from publishing.search.base import SearchQuery
from publishing.search.embedded import EmbeddedSearch
from publishing.search.highlight import marked
from publishing.search.index_format import FORMAT_VERSION, rebuild_lock, stamp_name
from publishing.search.sync import cursor_name, read_cursor, reindex, sync
from publishing.search.text import (
    _SYLLABLE_PREFIXES,
    MAX_TOKEN,
    SYLLABLES,
    _whole_splits,
    code_key,
    decision_key,
    initial_grams,
    normalize,
    parse_query,
    pinyin_grams,
    pinyin_splits,
    syllables,
    tokens,
)
from tests.conftest import PG_ADMIN_URL, _worker
from tests.factories import (
    blacklist_row,
    credit_mark_row,
    penalty_row,
    pledge_row,
    uscc,
    write_csv,
    write_ndjson,
)

TODAY = date(2026, 11, 27)
HAOYUNLAI = "烟台市芝罘区好运来食品有限公司"
ZHANGYU = "烟台樟宇商贸有限公司"
DONGXING = "龙口东兴水产品有限公司"
STAMP = stamp_name("embedded")  # the sync_cursors row of the embedded index's format version


def run(engine, tmp_path, name, rows, **kw):
    path = (write_ndjson if name.endswith(".ndjson") else write_csv)(tmp_path / name, rows)
    result = publish([path], engine=engine, today=TODAY, show_progress=False, **kw)
    assert result.published, result.as_json()
    return result


@pytest.fixture
def index(engine) -> EmbeddedSearch:
    """The embedded index on the test's database, empty (PostgreSQL's database is shared)."""
    backend = EmbeddedSearch(engine)
    backend.rebuild([])
    return backend


@contextmanager
def fresh_engine(backend: str, tmp_path_factory, name: str):
    """A migrated database of its own on the backend, for module-scoped fixtures."""
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp(name) / 'db.sqlite'}")
        upgrade(engine)
        yield engine
        engine.dispose()
        return
    db = f"disclosure_{name}_{_worker()}"
    admin = make_engine(PG_ADMIN_URL)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{db}"'))
    engine = make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{db}")
    upgrade(engine)
    yield engine
    engine.dispose()
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module", params=("sqlite", "postgresql"))
def world(request, tmp_path_factory) -> EmbeddedSearch:
    """A few entities with records of every kind, synced into the index (read-only, shared)."""
    tmp_path = tmp_path_factory.mktemp("world")
    with fresh_engine(request.param, tmp_path_factory, "search") as engine:
        run(
            engine,
            tmp_path,
            "p.csv",
            [
                penalty_row(1, 当事人名称=HAOYUNLAI),
                penalty_row(
                    2,
                    当事人名称=ZHANGYU,
                    违法行为类型="销售不合格商品",
                    违法事实="当事人销售的食品添加剂标签不合格",
                    领域="产品质量",
                    所属区市="莱山区",
                    处罚决定日期="2026-03-01",
                ),
                penalty_row(3, 当事人名称=DONGXING, 所属区市="龙口市", 处罚决定日期="2026-09-15"),
                penalty_row(
                    4,
                    当事人名称="烟台盛源百货有限公司",
                    所属区市="福山区",
                    违法行为类型="价格违法",
                    违法事实="当事人未明码标价",
                    领域="价格",
                    处罚决定日期="2026-10-10",
                ),
            ],
        )
        run(
            engine,
            tmp_path,
            "m.csv",
            [
                credit_mark_row(1, 主体名称=HAOYUNLAI, 分类结果="C"),
                credit_mark_row(5, 主体名称="烟台恒泰电梯工程有限公司", 分类结果="A"),
            ],
        )
        run(engine, tmp_path, "b.csv", [blacklist_row(6, 主体名称="烟台市芝罘区鑫华超市")])
        run(engine, tmp_path, "r.ndjson", [pledge_row(7, entity_name="烟台开发区海韵服装店")])
        index = EmbeddedSearch(engine)
        assert sync(engine, index) > 0
        yield index


def search(index, q="", **kw):
    kw.setdefault("limit", 50)
    return index.search(SearchQuery(q=q, **kw))


def ids(result):
    return [h.id for h in result.hits]


def top(index, q, **kw):
    hits = search(index, q, **kw).hits
    assert hits, f"nothing found for {q!r}"
    return hits[0]


# -- text processing (no database) -----------------------------------------------------------


def test_the_shipped_traditional_to_simplified_map_is_what_opencc_gives():
    """publishing/data/t2s.json saves a short CLI run OpenCC's 0.2 s start; regenerate it with
    publishing.search.text.write_t2s_file() when OpenCC changes."""
    import json

    from publishing.search.text import T2S_FILE, build_t2s_map

    assert json.loads(T2S_FILE.read_text(encoding="utf-8")) == build_t2s_map()


def test_normalize_full_width_traditional_and_case():
    assert normalize("龍口東興ＡＢＣ１２３（食品）") == "龙口东兴abc123(食品)"
    assert normalize("plain ascii") == "plain ascii"


def test_standard_simplified_characters_are_not_converted():
    # OpenCC's t2s maps these to other characters, though they are standard simplified ones
    # (in GB 2312): 烟台乾坤 is not 烟台干坤, nor read gankun
    assert normalize("乾坤於後徵菸甯") == "乾坤於後徵菸甯"
    assert syllables(normalize("烟台乾坤")) == ["yan", "tai", "qian", "kun"]
    # a traditional character still becomes its simplified one, and reads as it in a phrase
    assert normalize("銀行鍾錶") == "银行钟表"
    assert syllables(normalize("重慶銀行")) == ["chong", "qing", "yin", "hang"]


def test_a_long_run_of_letters_or_digits_is_its_first_max_token_characters():
    run = "abcdefghij" * 210
    assert tokens(f"当事人{run}") == ["当事", "事人", "人", run[:MAX_TOKEN]]
    assert syllables(f"烟台{run}") == ["yan", "tai", run[:MAX_TOKEN]]
    (term,) = parse_query(run[:90]).terms
    assert term.alternatives[0].tokens == (run[:MAX_TOKEN],)
    assert parse_query(run[:90]).name_key == run[:90]  # the exact name is the whole query


def test_decision_key():
    key = "招市监罚 2026 9 号"
    for q in (
        "招市监罚〔2026〕9号",
        "招市监罚[2026]9号",
        "招市监罚（2026）9号",
        "招市监罚 (2026) 9 号",
    ):
        assert decision_key(q) == key and parse_query(q).decision == key, q
    assert decision_key("招市监罚〔2026〕19号") != key
    assert decision_key("烟台樟宇") is None and decision_key("2026 9") is None
    # Chinese and digits alone do not make a decision number to look up by tag
    for plain in ("好运来超市2店", "芝罘区7天酒店", "烟台市 2026"):
        assert parse_query(plain).decision is None, plain


def test_tokens_are_bigrams_plus_last_char_and_words():
    assert tokens("烟台市 abc12 号") == ["烟台", "台市", "市", "abc12", "号"]


def test_pinyin_and_initials_tokens():
    items = syllables(normalize("烟台樟宇"))
    assert items == ["yan", "tai", "zhang", "yu"]
    assert pinyin_grams(items) == ["yantai", "taizhang", "zhangyu", "yan", "tai", "zhang", "yu"]
    assert initial_grams(items) == ["ytz", "tzy", "yt", "tz", "zy"]


def test_spaced_pinyin_is_one_phrase_and_other_words_stay_apart():
    (term,) = parse_query("yantai zhangyu").terms
    assert term.pinyin == ((("yan", "tai", "zhang", "yu"), False),)
    assert [t.source for t in parse_query("kfc yantai").terms] == ["kfc", "yantai"]
    assert parse_query("yantai zh").terms[0].pinyin == ((("yan", "tai", "zh"), True),)


def test_pinyin_splits():
    assert pinyin_splits("yantaizhangyu")[0] == (("yan", "tai", "zhang", "yu"), False)
    assert {s for s, _ in pinyin_splits("xian")} == {("xian",), ("xi", "an")}
    assert pinyin_splits("yantaizh") == [(("yan", "tai", "zh"), True)]
    assert pinyin_splits("ytzy") == []


def _exhaustive_splits(word: str) -> list[tuple[tuple[str, ...], bool]]:
    """pinyin_splits as it was: every way tried (exponential, for short words only)."""
    found: list[tuple[str, ...]] = []

    def walk(rest: str, acc: tuple[str, ...]) -> None:
        if len(found) >= 16:
            return
        if not rest:
            found.append(acc)
            return
        for n in range(min(6, len(rest)), 0, -1):
            if rest[:n] in SYLLABLES:
                walk(rest[n:], (*acc, rest[:n]))

    walk(word, ())
    if found:
        return [(s, False) for s in sorted(found, key=len)[:4]]
    partial: list[tuple[str, ...]] = []
    for n in range(min(6, len(word) - 1), 0, -1):
        if word[-n:] in _SYLLABLE_PREFIXES:
            found.clear()
            walk(word[:-n], ())
            partial.extend((*s, word[-n:]) for s in found if s)
    return [(s, True) for s in sorted(partial, key=len)[:4]]


def test_pinyin_splits_are_those_of_trying_every_way():
    rnd = random.Random(20261128)
    pieces = [*sorted(SYLLABLES), "q", "v", "zh", "ng", "x"]
    for _ in range(3000):
        word = "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 5)))[:18]
        assert pinyin_splits(word) == _exhaustive_splits(word), word


@pytest.mark.parametrize(
    "q",
    [
        "xian" * 15 + "xiaq",  # many ways to split, none whole: every one used to be tried
        "xian" * 24 + "q",  # 97 characters (read as its first MAX_TOKEN): minutes
        "xian" * 8 + "q",  # 33 letters: read as pinyin, still typing the last syllable
        " ".join(["xian" * 8 + "q"] * 3),
        "xian" * 8 + "q " + "xianxi" * 12,
    ],
)
def test_a_pinyin_like_query_costs_little(q):
    started = time.perf_counter()
    assert parse_query(q).terms
    assert time.perf_counter() - started < 0.05


def test_a_word_that_splits_no_way_is_given_up_at_once():
    started = time.perf_counter()
    assert _whole_splits("xian" * 16 + "q") == []  # (whatever its length)
    assert len(_whole_splits("xian" * 24)) == 16  # the first 16 of 2**24
    assert time.perf_counter() - started < 0.05


def test_a_long_letter_run_is_not_read_as_pinyin():
    assert pinyin_splits("xian" * 9 + "q") == []  # 37 letters
    assert pinyin_splits("xian" * 8 + "q")[0] == (("xian",) * 8 + ("q",), True)


def test_code_key():
    assert code_key("９１３７ ０６０２-ma3c") == "91370602MA3C"
    assert code_key("9137060") is None and code_key("yantaizhangyu") is None


def test_highlight_escapes_and_maps_back_to_the_original():
    assert (
        marked("龍口<東興>&", parse_query("龙口 东兴"))
        == "<mark>龍口</mark>&lt;<mark>東興</mark>&gt;&amp;"
    )
    assert marked(ZHANGYU, parse_query("ytzy"), pinyin=True) == "<mark>烟台樟宇</mark>商贸有限公司"
    assert marked("无关", parse_query("烟台")) is None


# -- matching --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "q", ["烟台", "食品", "好运来", "芝罘区好运来", "区好运", "来食品", "运来食品有"]
)
def test_any_part_of_a_name_matches(world, q):
    result = search(world, q)
    assert HAOYUNLAI in [h.title for h in result.hits if h.type == "entity"]


def test_two_character_parts_match_everywhere(world):
    assert "烟台盛源百货有限公司" in [h.title for h in search(world, "盛源").hits]
    assert top(world, "樟宇").title == ZHANGYU


def test_traditional_and_full_width_input(world):
    assert top(world, "龍口東興").title == DONGXING
    assert top(world, "樟宇商貿").title == ZHANGYU
    assert top(world, "好运来　食品").title == HAOYUNLAI  # ideographic space: two terms
    code = uscc(2).translate(
        str.maketrans(
            "0123456789ABCDEFGHJKLMNPQRTUWXY",
            "０１２３４５６７８９ＡＢＣＤＥＦＧＨＪＫＬＭＮＰＱＲＴＵＷＸＹ",
        )
    )
    assert top(world, code).title == ZHANGYU


def test_one_character_query(world):
    titles = {h.title for h in search(world, "樟").hits}
    assert ZHANGYU in titles
    assert "烟台盛源百货有限公司" not in titles


@pytest.mark.parametrize(
    "variant",
    [
        str.lower,
        lambda c: " ".join([c[:6], c[6:12], c[12:]]),
        lambda c: f"{c[:8]}-{c[8:]}".lower(),
        lambda c: c[:17],
    ],
)
def test_uscc_exact_any_case_or_spacing_and_prefix(world, variant):
    code = uscc(2)
    result = search(world, variant(code))
    assert result.hits[0].id == code and result.hits[0].type == "entity"
    # a whole code also finds the entity's records (after it)
    types = {h.type for h in result.hits if h.doc.get("uscc") == code}
    assert "penalty" in types or len(variant(code)) < 18


def test_uscc_prefix_lists_every_code_that_starts_so(world):
    result = search(world, uscc(1)[:8])  # 91370602: every entity of the factories
    entities = [h for h in result.hits if h.type == "entity"]
    assert len(entities) == 7
    assert "<mark>91370602</mark>" in entities[0].highlight


def test_embedded_code_prefix_lists_entities_only(engine, tmp_path):
    # (a district's prefix would otherwise also bring every record of the district)
    index = EmbeddedSearch(engine)
    index.rebuild([])
    run(engine, tmp_path, "a.csv", [penalty_row(1), penalty_row(2)])
    sync(engine, index)
    assert {h.type for h in search(index, uscc(1)[:10]).hits} == {"entity"}
    assert {h.type for h in search(index, uscc(1)).hits} == {"entity", "penalty"}


@pytest.mark.parametrize(
    "q",
    [
        "yantai zhangyu",
        "yantaizhangyu",
        "ytzy",
        "zhangyu",
        "zhang yu",
        "YanTaiZhangYu",
        "yantai zhang",
        "yantaizh",
    ],
)
def test_pinyin_and_initials(world, q):
    hit = top(world, q)
    assert hit.title == ZHANGYU and hit.type == "entity"
    assert "<mark>" in hit.highlight


def test_pinyin_of_a_name_part(world):
    assert top(world, "zhifuqu").title in (HAOYUNLAI, "烟台市芝罘区鑫华超市")
    assert top(world, "haoyunlai").title == HAOYUNLAI
    assert top(world, "hyl").title == HAOYUNLAI


def test_text_fields_are_searchable_but_not_person_names(world):
    assert {h.type for h in search(world, "未明码标价").hits} == {"penalty"}
    assert search(world, "张三").total == 0  # 法定代表人 is shown, not searchable


def test_nothing_found(world):
    result = search(world, "不存在的名称")
    assert (result.total, result.hits, result.facets["type"]) == (0, [], {})


# -- ranking ---------------------------------------------------------------------------------


def test_exact_name_then_names_then_text(engine, tmp_path, index):
    run(
        engine,
        tmp_path,
        "x.csv",
        [
            penalty_row(8, 当事人名称="烟台盛源百货有限公司芝罘分公司", 处罚决定日期="2026-10-01"),
            penalty_row(4, 当事人名称="烟台盛源百货有限公司", 处罚决定日期="2026-02-01"),
            penalty_row(
                9, 当事人名称="烟台某某商店", 违法事实="当事人从烟台盛源百货有限公司购进商品"
            ),
        ],
    )
    sync(engine, index)
    hits = search(index, "烟台盛源百货有限公司").hits
    order = [(h.type, h.title) for h in hits]
    assert order[0] == ("entity", "烟台盛源百货有限公司")  # exact name
    assert order[1][0] == "penalty" and order[1][1].startswith("烟台盛源百货有限公司 ·")
    assert order[2] == ("entity", "烟台盛源百货有限公司芝罘分公司")  # name match
    assert order[-1][1].startswith("烟台某某商店")  # text only
    assert "<mark>" in hits[-1].highlight and hits[-1].highlight.startswith("违法事实")
    code = top(index, uscc(8))  # an exact code wins over everything
    assert (code.type, code.id) == ("entity", uscc(8))


def test_an_exact_decision_number_comes_first(engine, tmp_path, index, monkeypatch):
    number = "招市监罚〔2026〕9号"
    run(
        engine,
        tmp_path,
        "d.csv",
        [
            penalty_row(
                9,
                当事人名称="烟台甲乙商贸有限公司",
                行政处罚决定书文号=number,
                处罚决定日期="2026-03-01",
            ),
            # newer, and with every word of the query (the 9 in its facts)
            penalty_row(
                27,
                当事人名称="烟台丙丁商贸有限公司",
                违法事实="案值9元",
                行政处罚决定书文号="招市监罚〔2026〕27号",
                处罚决定日期="2026-10-01",
            ),
        ],
    )
    sync(engine, index)
    for q in (number, "招市监罚[2026]9号", "招市监罚（2026）9号", "招市监罚 (2026) 9 号"):
        hits = search(index, q).hits
        assert [h.doc["decision_no"] for h in hits] == [number, "招市监罚〔2026〕27号"], q
    assert top(index, number, types=("penalty",)).doc["decision_no"] == number
    assert search(index, number, types=("entity",)).hits == []
    # found beyond the first CAP matches too, as an exact code is
    monkeypatch.setattr(embedded_mod, "CAP", 1)
    assert top(index, number).doc["decision_no"] == number


def test_a_standard_character_is_not_read_as_another(engine, tmp_path, index):
    qiankun, gankun = "烟台乾坤商贸有限公司", "烟台干坤建材经营部"
    run(
        engine,
        tmp_path,
        "q.csv",
        [
            penalty_row(1, 当事人名称=qiankun, 处罚决定日期="2026-03-01"),
            penalty_row(2, 当事人名称=gankun, 处罚决定日期="2026-10-01"),
        ],
    )
    sync(engine, index)
    for q in ("乾坤", "qiankun", "ytqk"):
        assert top(index, q).title == qiankun, q
        assert gankun not in {h.title for h in search(index, q).hits}, q
    assert qiankun not in {h.title for h in search(index, "gankun").hits}


def test_a_long_unbroken_run_does_not_stop_the_sync(engine, tmp_path, index):
    run_ = "abcdefghij" * 210  # PostgreSQL: "word is too long (2100 bytes, max 2047 bytes)"
    run(engine, tmp_path, "a.csv", [penalty_row(1, 违法事实=f"当事人{run_}。")])
    assert sync(engine, index) == 1
    hit = top(index, run_[:80])  # a query of its first 80 letters: as indexed, its first 64
    assert hit.type == "penalty" and "<mark>" in hit.highlight
    run(engine, tmp_path, "b.csv", [penalty_row(2, 违法事实="当事人销售过期月饼")])
    assert sync(engine, index) == 1
    assert top(index, "过期月饼").type == "penalty"
    assert reindex(engine, index) == 4


def test_a_document_indexes_a_bounded_number_of_tokens(engine):
    """PostgreSQL refuses a tsvector over 1 MB; both databases index the same first tokens.
    (The embedded index only: no `index` fixture, which tests/test_search_meili.py shares.)"""
    index = EmbeddedSearch(engine)
    index.rebuild([])
    words = [f"w{i:06d}" for i in range(150_000)]
    doc = {
        "id": "P-HUGE",
        "type": "penalty",
        "title": "烟台巨量文本食品有限公司 · 行政处罚",
        "url": "/records/P-HUGE",
        "date": "2026-06-01",
        "status": "active",
        "names": ["烟台巨量文本食品有限公司"],
        "text": [["违法事实", " ".join(words)]],
        "data": {},
    }
    row = embedded_mod.index_row(doc)
    assert row.name == tokens(normalize(doc["names"][0]))  # names first, whole
    assert 0 < len(row.body) < len(words) and row.body == words[: len(row.body)]
    index.upsert([doc])
    with engine.connect() as conn:
        found = conn.execute(text("SELECT id FROM search_docs WHERE id = 'P-HUGE'")).scalar()
    assert found == "P-HUGE"


def test_entities_before_their_records_on_equal_name_match(world):
    types = [h.type for h in search(world, "好运来").hits]
    assert types[0] == "entity" and set(types[1:]) == {"penalty", "credit_mark"}


def test_sort_by_date(world):
    dates = [h.date for h in search(world, "烟台", sort="date").hits]
    known = [d for d in dates if d]
    assert known == sorted(known, reverse=True)
    assert dates.index(None) > len(known) - 1 if None in dates else True


# -- filters and facets ----------------------------------------------------------------------


def test_facet_counts_match_the_documents(world):
    docs = list(world.documents())
    result = search(world, "")
    assert result.total == len(docs)
    for facet in ("type", "district", "status", "grade"):
        want = Counter(d[facet] for d in docs if d[facet] is not None)
        assert result.facets[facet] == dict(want), facet
    烟台 = search(world, "烟台")
    assert sum(烟台.facets["type"].values()) == 烟台.total


def test_filters(world):
    assert {h.type for h in search(world, "烟台", types=("penalty",)).hits} == {"penalty"}
    both = search(world, "烟台", types=("penalty", "blacklist"))
    assert set(both.facets["type"]) == {"penalty", "blacklist"}
    laishan = search(world, "", district="370613")
    assert {h.district for h in laishan.hits} == {"370613"} and laishan.total >= 2
    graded = search(world, "", grade="C")
    assert {(h.type, h.title) for h in graded.hits} == {
        ("entity", HAOYUNLAI),
        ("credit_mark", f"{HAOYUNLAI} · 信用标注 信用风险分类 C"),
    }
    assert search(world, "好运来", status="active").facets["type"] == {
        "penalty": 1,
        "credit_mark": 1,
    }
    assert search(world, "好运来", types=("return_pledge",)).total == 0
    assert search(world, uscc(1), types=("penalty",)).hits[0].type == "penalty"


def test_entity_document_carries_counts_and_grade(world):
    hit = top(world, HAOYUNLAI)
    assert hit.type == "entity" and hit.grade == "C"
    assert hit.doc["counts"] == {"credit_mark": 1, "penalty": 1}
    assert hit.doc["uscc"] == uscc(1) and hit.url == f"/entities/{uscc(1)}"


def test_paging_and_cap(world, monkeypatch):
    everything = search(world, "烟台", limit=100)
    pages = search(world, "烟台", limit=3).hits + search(world, "烟台", limit=3, offset=3).hits
    assert ids(everything)[:6] == [h.id for h in pages]
    assert not everything.capped
    monkeypatch.setattr(embedded_mod, "CAP", 4)
    capped = search(world, "烟台")
    assert capped.capped and capped.total == 4 and sum(capped.facets["type"].values()) == 4


# -- sync from the change log ----------------------------------------------------------------


def test_withdrawn_record_is_no_longer_found(engine, tmp_path, index):
    run(engine, tmp_path, "a.csv", [penalty_row(1, 当事人名称=HAOYUNLAI), penalty_row(2)])
    sync(engine, index)
    assert {h.type for h in search(index, "好运来").hits} == {"entity", "penalty"}
    header = [*penalty_row(1), "操作"]
    path = write_csv(
        tmp_path / "w.csv", [penalty_row(1, 当事人名称=HAOYUNLAI, 操作="撤销")], header=header
    )
    publish([path], engine=engine, today=TODAY, show_progress=False)
    assert sync(engine, index) == 1
    # Its entity had no other record: it is no longer found by name either (a repaired
    # company must not stay findable), while the other entity and its penalty stay.
    assert search(index, "好运来").hits == []
    assert index.count() == 2
    assert reindex(engine, index) == 2 and search(index, "好运来").hits == []


def test_changed_record_is_updated(engine, tmp_path, index):
    run(engine, tmp_path, "a.csv", [penalty_row(1)])
    sync(engine, index)
    run(engine, tmp_path, "b.csv", [penalty_row(1, 违法事实="当事人销售过期月饼")])
    assert sync(engine, index) == 1
    hit = top(index, "过期月饼")
    assert hit.type == "penalty" and hit.doc["version"] == 2


def test_entity_found_under_new_and_former_name(engine, tmp_path, index):
    run(
        engine,
        tmp_path,
        "a.csv",
        [penalty_row(1, 当事人名称="烟台旧名食品厂", 处罚决定日期="2026-02-01")],
    )
    sync(engine, index)
    run(
        engine,
        tmp_path,
        "b.csv",
        [penalty_row(2, 统一社会信用代码=uscc(1), 当事人名称="烟台新名食品有限公司")],
    )
    sync(engine, index)
    new = top(index, "新名食品")
    assert (new.type, new.title) == ("entity", "烟台新名食品有限公司")
    old = [h for h in search(index, "旧名").hits if h.type == "entity"]
    assert [h.title for h in old] == ["烟台新名食品有限公司"]
    assert old[0].highlight == "曾用名：烟台<mark>旧名</mark>食品厂"
    assert top(index, "jiuming").title == "烟台新名食品有限公司"
    assert index.count() == 3  # one entity, two penalties


def test_sync_is_idempotent_resumable_and_counts_events(engine, tmp_path, index):
    run(engine, tmp_path, "a.csv", [penalty_row(i) for i in range(1, 8)])
    assert sync(engine, index, batch=3) == 7
    assert sync(engine, index) == 0
    before = _dump(engine)

    class Crash(Exception):
        pass

    class Flaky(EmbeddedSearch):
        calls = 0

        def bound(self, conn):
            Flaky.calls += 1
            if Flaky.calls == 2:
                raise Crash
            return super().bound(conn)

    _set_cursor(engine, "search:embedded", 0)
    with pytest.raises(Crash):
        sync(engine, Flaky(engine), batch=3)
    assert _cursor(engine) == 3  # the first batch was committed with its cursor
    assert sync(engine, index, batch=3) == 4
    assert _dump(engine) == before


def _rebuilds_at_backlog_3(monkeypatch) -> list[int]:
    """REINDEX_BACKLOG lowered to 3; the list grows by one per full rebuild of the index."""
    from publishing.search import sync as sync_mod

    monkeypatch.setattr(sync_mod, "REINDEX_BACKLOG", 3)
    rebuilt: list[int] = []
    original = EmbeddedSearch.rebuild_from_database
    monkeypatch.setattr(
        EmbeddedSearch,
        "rebuild_from_database",
        lambda self, workers=None: rebuilt.append(1) or original(self, workers),
    )
    return rebuilt


def test_a_large_backlog_is_applied_by_a_rebuild(engine, tmp_path, index, monkeypatch):
    run(engine, tmp_path, "a.csv", [penalty_row(i) for i in range(1, 6)])
    rebuilt = _rebuilds_at_backlog_3(monkeypatch)
    assert sync(engine, index) == 5 and rebuilt
    assert index.count() == 10 and sync(engine, index) == 0


def test_a_gap_in_the_seqs_is_not_a_backlog(engine, tmp_path, index, monkeypatch):
    """A dry run uses up PostgreSQL sequence values: the one event published after a large one
    must be applied, not taken for a backlog worth a full rebuild (seqs minus the cursor)."""
    from publishing.search import sync as sync_mod

    run(engine, tmp_path, "a.csv", [penalty_row(i) for i in range(1, 6)])
    assert sync(engine, index) == 5
    dry = write_csv(tmp_path / "dry.csv", [penalty_row(i) for i in range(10, 40)])
    publish([dry], engine=engine, show_progress=False, dry_run=True)
    run(engine, tmp_path, "b.csv", [penalty_row(6)])
    rebuilt = _rebuilds_at_backlog_3(monkeypatch)
    with engine.connect() as conn:
        assert sync_mod.backlog(conn, index).behind == 1
    assert sync(engine, index) == 1 and not rebuilt


# -- the index's format version (publishing.search.index_format) -----------------------------

DECISION_NO = "招市监罚〔2026〕9号"


def _decision_world(engine, tmp_path, name="d.csv") -> None:
    run(
        engine,
        tmp_path,
        name,
        [
            penalty_row(
                9,
                当事人名称="烟台甲乙商贸有限公司",
                行政处罚决定书文号=DECISION_NO,
                处罚决定日期="2026-03-01",
            ),
            penalty_row(
                27,
                当事人名称="烟台丙丁商贸有限公司",
                违法事实="案值9元",
                行政处罚决定书文号="招市监罚〔2026〕27号",
                处罚决定日期="2026-10-01",
            ),
        ],
    )


def old_format_index(engine, monkeypatch, stamped: bool = True) -> None:
    """The embedded index as the previous release left it: built without the decision-number
    tags and stamped with its format version (not stamped: as before versions were kept);
    then this release, whose format is one newer, is deployed."""
    real = embedded_mod.index_row

    def untagged(doc):
        row = real(doc)
        return row._replace(tags=[t for t in row.tags if not t.startswith("xn")])

    with monkeypatch.context() as m:
        m.setattr(embedded_mod, "index_row", untagged)
        reindex(engine, EmbeddedSearch(engine))
    if not stamped:
        with engine.begin() as conn:
            conn.execute(delete(SyncCursor.__table__).where(SyncCursor.__table__.c.name == STAMP))
    monkeypatch.setattr(index_format, "FORMAT_VERSION", FORMAT_VERSION + 1)


def index_generation(engine) -> str:
    """The suffix of the live index's index names: every rebuild gives it a new one."""
    if engine.dialect.name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE name LIKE :p"
    else:
        sql = "SELECT indexname FROM pg_indexes WHERE indexname LIKE :p"
    with engine.connect() as conn:
        (name,) = conn.execute(text(sql), {"p": "ix_search_docs_uscc_%"}).scalars().all()
    return name.rsplit("_", 1)[1]


def stamp(engine) -> int | None:
    return EmbeddedSearch(engine).format_version()


def _rebuilding(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "rebuilding" in r.getMessage()]


@pytest.mark.parametrize("stamped", [True, False])
def test_an_index_in_an_older_format_is_rebuilt_by_the_next_sync_and_only_then(
    engine, tmp_path, monkeypatch, caplog, stamped
):
    index = EmbeddedSearch(engine)
    _decision_world(engine, tmp_path)
    old_format_index(engine, monkeypatch, stamped)
    before = index_generation(engine)
    # the old index answers, without what its format lacks (the decision number's tier)
    assert search(index, "甲乙商贸").total == 2
    assert top(index, DECISION_NO).doc["decision_no"] != DECISION_NO
    with caplog.at_level("WARNING", logger="publishing.search.sync"):
        assert sync(engine, index) == 0  # no event to apply: a rebuild all the same
    (why,) = _rebuilding(caplog)  # logged once, with the reason
    assert (f"in format {FORMAT_VERSION}," if stamped else "no format version") in why
    assert index_generation(engine) != before and stamp(engine) == FORMAT_VERSION + 1
    assert top(index, DECISION_NO).doc["decision_no"] == DECISION_NO
    # a current index is left alone: events are applied to it, nothing is rebuilt
    caplog.clear()
    current = index_generation(engine)
    run(engine, tmp_path, "e.csv", [penalty_row(30, 当事人名称="烟台戊己商贸有限公司")])
    with caplog.at_level("WARNING", logger="publishing.search.sync"):
        assert sync(engine, index) == 1 and sync(engine, index) == 0
    assert _rebuilding(caplog) == [] and index_generation(engine) == current
    assert top(index, "戊己商贸").title == "烟台戊己商贸有限公司"


def test_an_empty_index_without_a_stamp_is_stamped_not_rebuilt(engine, tmp_path):
    """A new database (migration 0002 made empty tables): nothing to rebuild."""
    index = EmbeddedSearch(engine)
    assert stamp(engine) is None
    before = index_generation(engine)
    run(engine, tmp_path, "a.csv", [penalty_row(1)])
    assert sync(engine, index) == 1
    assert stamp(engine) == FORMAT_VERSION and index_generation(engine) == before


def test_a_sync_leaves_a_stale_index_to_the_process_rebuilding_it(engine, tmp_path, monkeypatch):
    index = EmbeddedSearch(engine)
    _decision_world(engine, tmp_path)
    old_format_index(engine, monkeypatch)
    before = index_generation(engine)
    with rebuild_lock(engine, wait=False) as mine:  # as another process rebuilding it holds it
        assert mine
        run(engine, tmp_path, "e.csv", [penalty_row(30, 当事人名称="烟台戊己商贸有限公司")])
        assert sync(engine, index) == 0  # neither a second rebuild nor writes into the old one
        assert index_generation(engine) == before and stamp(engine) == FORMAT_VERSION
        assert search(index, "甲乙商贸").total == 2  # the old index still answers
    assert sync(engine, index) == 1  # then: rebuilt, and the event is in it
    assert index_generation(engine) != before and stamp(engine) == FORMAT_VERSION + 1
    assert top(index, "戊己商贸").title == "烟台戊己商贸有限公司"
    assert top(index, DECISION_NO).doc["decision_no"] == DECISION_NO


def withdraw_and_rename(engine, tmp_path) -> None:
    """Penalty 2 withdrawn by the file's op column; entity 4 renamed by a newer record."""
    header = [*penalty_row(1), "操作"]
    publish(
        [write_csv(tmp_path / "w.csv", [penalty_row(2, 操作="撤销")], header=header)],
        engine=engine,
        today=TODAY,
        show_progress=False,
    )
    run(
        engine,
        tmp_path,
        "n.csv",
        [penalty_row(9, 统一社会信用代码=uscc(4), 当事人名称="烟台改名商店")],
    )


def test_rebuild_equals_incremental_sync(engine, tmp_path, index):
    run(engine, tmp_path, "a.csv", [penalty_row(i) for i in range(1, 6)])
    run(engine, tmp_path, "m.csv", [credit_mark_row(i, 分类结果="B") for i in range(3, 8)])
    run(engine, tmp_path, "b.csv", [credit_mark_row(3, 分类结果="D", 标注日期="2026-05-01")])
    withdraw_and_rename(engine, tmp_path)
    sync(engine, index, batch=4)
    synced = _dump(engine)
    queries = ["烟台", "测试", "改名", uscc(3)[:10], "ytcs"]
    before = {q: _ranked(search(index, q)) for q in queries}
    assert reindex(engine, index) == len(synced)
    assert _dump(engine) == synced
    assert {q: _ranked(search(index, q)) for q in queries} == before
    assert sync(engine, index) == 0  # the cursor was set to the end of the change log
    assert {h.type for h in search(index, "", grade="D").hits} == {"entity", "credit_mark"}


def test_parallel_rebuild_equals_sequential(engine, tmp_path, index, monkeypatch):
    run(engine, tmp_path, "a.csv", [penalty_row(i) for i in range(1, 30)])
    run(engine, tmp_path, "m.csv", [credit_mark_row(i) for i in range(20, 40)])
    assert index.rebuild_from_database(workers=1) == 29 + 20 + 39
    sequential = _dump(engine)
    monkeypatch.setattr(embedded_mod, "PARALLEL_MIN", 0)
    monkeypatch.setattr(documents_mod, "PAGE", 7)
    assert index.rebuild_from_database(workers=2) == len(sequential)
    assert _dump(engine) == sequential
    assert top(index, "测试25").doc["counts"] == {"credit_mark": 1, "penalty": 1}


def test_reindex_keeps_searching_and_can_run_twice(engine, tmp_path, index):
    run(engine, tmp_path, "a.csv", [penalty_row(1, 当事人名称=HAOYUNLAI)])
    assert reindex(engine, index) == 2
    assert reindex(engine, index) == 2
    assert top(index, "好运来").title == HAOYUNLAI


def test_reindex_applies_what_was_published_while_it_rebuilt(engine, tmp_path, index, monkeypatch):
    """A publish during a rebuild syncs its events into the index the rebuild then replaces,
    and the rebuild sets the cursor back to where it started: reindex applies them again at
    once (without a worker they waited for the next write, the health check showing a lag)."""
    run(engine, tmp_path, "a.csv", [penalty_row(1), penalty_row(2)])
    sync(engine, index)
    # the embedded index rebuilds from the database, Meilisearch from the documents it is given
    name = "rebuild_from_database" if hasattr(index, "rebuild_from_database") else "rebuild"
    rebuild = getattr(index, name)

    def published_meanwhile(*args, **kw):
        # after the rebuild read the change log's end, before it writes its cursor
        run(engine, tmp_path, "w.csv", [penalty_row(2, 操作="撤销")])
        assert sync(engine, index) == 1
        return rebuild(*args, **kw)

    monkeypatch.setattr(index, name, published_meanwhile)
    reindex(engine, index)
    with engine.connect() as conn:
        newest = conn.execute(text("SELECT max(seq) FROM changes")).scalar_one()
        assert read_cursor(conn, cursor_name(index)) == newest
    assert sync(engine, index) == 0


def test_get_backend(engine, monkeypatch):
    from publishing.settings import get_settings

    assert isinstance(get_backend(engine), EmbeddedSearch)
    monkeypatch.setenv("DISCLOSURE_MEILI_URL", "http://127.0.0.1:7700")
    get_settings.cache_clear()
    from publishing.search.meili import MeiliSearch

    assert get_backend(engine).name == "meilisearch"
    assert isinstance(get_backend(engine), MeiliSearch)
    get_settings.cache_clear()


# -- helpers ---------------------------------------------------------------------------------


def _ranked(result) -> tuple:
    """What a ranking must keep across a rebuild: the hits and their types in order (equal
    ones may swap: ties are broken by position in the index)."""
    return sorted(ids(result)), [h.type for h in result.hits], result.total, result.facets


def _dump(engine) -> dict[str, tuple]:
    return EmbeddedSearch(engine).dump()


def _cursor(engine) -> int:
    table = SyncCursor.__table__
    with engine.connect() as conn:
        return conn.execute(
            select(table.c.seq).where(table.c.name == "search:embedded")
        ).scalar_one()


def _set_cursor(engine, name, seq) -> None:
    table = SyncCursor.__table__
    with engine.begin() as conn:
        conn.execute(update(table).where(table.c.name == name).values(seq=seq))


def test_cursor_name():
    class B:
        name = "embedded"

    assert cursor_name(B()) == "search:embedded"


# -- PostgreSQL: the scan a query gets -------------------------------------------------------

COMMON_QUERIES = ("烟台", "有限公司", "芝罘", "烟台 食品", "ytzy", "yantai", "公司", "烟")


def answers(index, queries=COMMON_QUERIES):
    return [(r.total, sorted(ids(r))) for r in (search(index, q) for q in queries)]


def fresh_statistics(index) -> None:
    with index.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE search_docs")
        conn.commit()
    embedded_mod._shares.clear()


@pytest.mark.parametrize("world", ["postgresql"], indirect=True)
def test_query_shares_come_from_postgresql_statistics(world):
    fresh_statistics(world)

    def share(q):
        with world.engine.connect() as conn:
            query = SearchQuery(q=q)
            return embedded_mod.common_share(conn, embedded_mod._lexemes(parse_query(q), query))

    assert share("烟台") > 0.5  # nearly every document names 烟台
    assert share("烟台 不存在") == 0.0  # all terms must match: the rarest bounds the query
    assert share("烟") >= share("烟台")  # a prefix: at least its most common completion
    assert 0 < share("樟宇") < share("烟台")


@pytest.mark.parametrize("world", ["postgresql"], indirect=True)
def test_the_rid_order_scan_and_the_bitmap_plan_give_the_same_answers(world, monkeypatch):
    fresh_statistics(world)
    monkeypatch.setattr(embedded_mod, "SCAN_MIN_SHARE", 0.0)  # every query: rid-order scan
    scanned = answers(world)
    monkeypatch.setattr(embedded_mod, "SCAN_MIN_SHARE", 2.0)  # every query: bitmap plan
    assert answers(world) == scanned
    assert all(total > 0 for total, _ in scanned)


@pytest.mark.parametrize("world", ["postgresql"], indirect=True)
def test_a_scan_over_its_budget_gives_way_to_the_bitmap_plan(world, monkeypatch):
    fresh_statistics(world)
    expected = answers(world, ["烟台 食品"])
    real_raw = embedded_mod._raw
    scans = []

    def scan_that_runs_long(conn, sql, params):
        if conn.exec_driver_sql("SHOW enable_bitmapscan").scalar() == "off":
            scans.append(conn.exec_driver_sql("SHOW statement_timeout").scalar())
            real_raw(conn, "SELECT pg_sleep(5)", {})  # PostgreSQL cancels it after the budget
        return real_raw(conn, sql, params)

    monkeypatch.setattr(embedded_mod, "SCAN_MIN_SHARE", 0.0)
    monkeypatch.setattr(embedded_mod, "_raw", scan_that_runs_long)
    # the same answer, its documents read in the same transaction after the cancelled scan
    assert answers(world, ["烟台 食品"]) == expected
    assert scans == [f"{embedded_mod.SCAN_BUDGET_MS}ms"]


def test_a_sync_inside_a_request_leaves_a_stale_index_to_the_worker(
    engine, tmp_path, monkeypatch, caplog
):
    """A reviewer's decision syncs search in the web request: a rebuild (minutes at scale)
    must not run there."""
    index = EmbeddedSearch(engine)
    _decision_world(engine, tmp_path)
    old_format_index(engine, monkeypatch)
    before = index_generation(engine)
    run(engine, tmp_path, "e.csv", [penalty_row(30, 当事人名称="烟台戊己商贸有限公司")])
    with caplog.at_level("INFO", logger="publishing.search.sync"):
        assert sync(engine, index, rebuild=False) == 0
    assert index_generation(engine) == before and _rebuilding(caplog) == []
    assert "left to the worker" in caplog.text
    assert sync(engine, index) == 1 and index_generation(engine) != before  # the worker's run
    assert top(index, "戊己商贸").title == "烟台戊己商贸有限公司"
