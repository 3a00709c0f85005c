"""Pinyin and initials of a name typed without its bracketed part (通百鑫（烟台）调味品有限公司 as
tongbaixintiaoweipin, tongbaixin tiaoweipin, tbxtwp): both backends of the embedded index
(SQLite, PostgreSQL) and Meilisearch (the fake server, at its HTTP boundary), on published
data; names without such a part index what they did before; an index of the previous format is
rebuilt by the next sync."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from publishing.search import embedded as embedded_mod
from publishing.search import index_format, meili_encoding
from publishing.search.base import SearchQuery
from publishing.search.embedded import EmbeddedSearch, _Postgres, index_row
from publishing.search.index_format import FORMAT_VERSION
from publishing.search.meili import MeiliSearch
from publishing.search.meili_encoding import INITIALS_MAX, PINYIN_MAX, doc_key, index_doc
from publishing.search.sync import reindex, sync
from publishing.search.text import (
    initial_grams,
    name_texts,
    normalize,
    pinyin_grams,
    pinyin_items,
    syllables,
)
from tests import test_search_meili as meili_suite
from tests.factories import penalty_row, uscc
from tests.test_search import ZHANGYU, fresh_engine, run

meili = meili_suite.meili  # the fake Meilisearch (session), or DISCLOSURE_MEILI_URL's server
fake = meili_suite.fake
_backend = meili_suite._backend

OLD_FORMAT = 2  # the format before this one: pinyin of the whole name only
TONG = "通百鑫（烟台）调味品有限公司"
BAIXING = "百姓家(烟台)超市有限公司"  # ASCII brackets
HAOYUNLAI = "芝罘区好运来批发部（个体工商户）"  # its bare form adds nothing (name_texts)
XINHUA_OLD = "鑫华（烟台）商贸有限公司"  # the 曾用名 of XINHUA: its bare form is in XINHUA
XINHUA = "烟台鑫华商贸有限公司"
PLAIN = (ZHANGYU, "龙口东兴水产品有限公司", "烟台 XYZ Tech 店")

# what people type, and the entity it must find
FOUND = {
    "tongbaixintiaoweipin": TONG,
    "tongbaixin tiaoweipin": TONG,
    "tong bai xin tiao wei pin": TONG,
    "tbxtwp": TONG,
    "tongbaixintiaow": TONG,  # still typing
    "baixingjiachaoshi": BAIXING,
    "bxjcs": BAIXING,
    # the whole name, as before
    "tongbaixinyantaitiaoweipin": TONG,
    "tongbaixin yantai tiaoweipin": TONG,
    "tbxyttwp": TONG,
    "baixingjiayantaichaoshi": BAIXING,
}
NOT_FOUND = ("tongbaixinchaoshi", "tbxcs")  # the bare form does not join unrelated syllables


def _world(engine, tmp_path) -> None:
    names = [TONG, BAIXING, HAOYUNLAI, XINHUA_OLD, *PLAIN]
    rows = [penalty_row(n, 当事人名称=name) for n, name in enumerate(names, start=1)]
    run(engine, tmp_path, "a.csv", rows)
    # renamed: the bracketed name becomes its 曾用名
    run(engine, tmp_path, "b.csv", [penalty_row(20, 统一社会信用代码=uscc(4), 当事人名称=XINHUA)])


@pytest.fixture(scope="module", params=("sqlite", "postgresql"))
def world(request, tmp_path_factory):
    """The names above published and synced into the embedded index (read-only, shared)."""
    tmp_path = tmp_path_factory.mktemp("pybr")
    with fresh_engine(request.param, tmp_path_factory, "pybr") as engine:
        _world(engine, tmp_path)
        index = EmbeddedSearch(engine)
        assert sync(engine, index) > 0
        yield index


def entity_titles(index, q: str) -> list[str]:
    hits = index.search(SearchQuery(q=q, limit=50)).hits
    return [h.title for h in hits if h.type == "entity"]


def entities(index) -> dict[str, dict]:
    """The published entity documents, by name."""
    return {d["names"][0]: d for d in index.documents() if d["type"] == "entity"}


# -- the previous format's tokens (format 2), as references ---------------------------------


def old_embedded_pinyin(names: list[str]) -> tuple[list[str], list[str]]:
    """embedded.index_row's py and pyi in format 2: every name's whole pinyin only."""
    items = [syllables(normalize(n)) for n in names]
    return [t for i in items for t in pinyin_grams(i)], [t for i in items for t in initial_grams(i)]


def old_meili_pinyin(names: list[str]) -> tuple[list[str], list[str]]:
    """meili_encoding.pinyin_tokens in format 2."""
    py: dict[str, None] = {}
    pyi: dict[str, None] = {}
    for name in names:
        items = syllables(normalize(name))
        initials = [s[0] for s in items if s]
        for i in range(len(items)):
            for k in range(1, PINYIN_MAX + 1):
                if i + k <= len(items):
                    py["".join(items[i : i + k])] = None
            for k in range(2, INITIALS_MAX + 1):
                if i + k <= len(initials):
                    pyi["".join(initials[i : i + k])] = None
    return list(py), list(pyi)


def old_embedded_row(doc: dict):
    py, pyi = old_embedded_pinyin(doc.get("names") or []) if doc["type"] == "entity" else ([], [])
    return index_row(doc)._replace(py=py, pyi=pyi)


def old_meili_doc(doc: dict) -> dict:
    out = index_doc(doc)
    if doc["type"] == "entity":
        out["py"], out["pyi"] = old_meili_pinyin(doc["names"])
    return out


# -- the embedded index ----------------------------------------------------------------------


@pytest.mark.parametrize("q", list(FOUND))
def test_pinyin_and_initials_find_the_name_with_and_without_its_brackets(world, q):
    titles = entity_titles(world, q)
    assert titles and titles[0] == FOUND[q], (q, titles)


@pytest.mark.parametrize("q", NOT_FOUND)
def test_the_bare_form_finds_nothing_else(world, q):
    assert entity_titles(world, q) == [], q


def test_names_without_a_bracketed_part_index_the_same_tokens_as_before(world):
    """Plain names, a bracketed end (个体工商户: name_texts adds nothing) and a 曾用名 whose bare
    form the current name holds: stored exactly as format 2 stored them."""
    docs = entities(world)
    dump = world.dump()
    for name in (*PLAIN, HAOYUNLAI, XINHUA):
        doc = docs[name]
        old = old_embedded_row(doc)
        if world.engine.dialect.name == "sqlite":
            stored = dump[doc["id"]][-4:-2]  # the py and pyi columns
            assert stored == (" ".join(old.py), " ".join(old.pyi)), name
        else:  # the tsvector as PostgreSQL keeps it
            with world.engine.connect() as conn:
                want = conn.execute(
                    text("SELECT CAST(:v AS tsvector)::text"), {"v": _Postgres.tsvector(old)}
                ).scalar_one()
            assert dump[doc["id"]][-1] == want, name
    # pinyin of a bare form exactly when name_texts has its Chinese
    for name in (*PLAIN, HAOYUNLAI, XINHUA_OLD, TONG, BAIXING):
        norm = normalize(name)
        assert len(pinyin_items(norm)) == len(name_texts(norm)), name
    assert len(pinyin_items(normalize(HAOYUNLAI))) == 1
    # the literal tokens of one plain name
    assert index_row(docs[ZHANGYU]).pyi == [
        "ytz", "tzy", "zys", "ysm", "smy", "myx", "yxg", "xgs",
        "yt", "tz", "zy", "ys", "sm", "my", "yx", "xg", "gs",
    ]  # fmt: skip


def test_a_bracketed_name_adds_its_bare_chains_and_only_new_single_tokens(world):
    doc = entities(world)[TONG]
    row = index_row(doc)
    old = old_embedded_row(doc)
    assert row.py[: len(old.py)] == old.py and row.pyi[: len(old.pyi)] == old.pyi
    assert row.py[len(old.py) :] == [
        "tongbai", "baixin", "xintiao", "tiaowei", "weipin", "pinyou", "youxian", "xiangong",
        "gongsi",
    ]  # fmt: skip
    assert row.pyi[len(old.pyi) :] == ["tbx", "bxt", "xtw", "twp", "wpy", "pyx", "yxg", "xgs", "xt"]


# -- Meilisearch, at its HTTP boundary --------------------------------------------------------


def _stored(backend: MeiliSearch, doc_id: str) -> dict:
    return backend.client.http.get(f"indexes/{backend.uid}/documents/{doc_key(doc_id)}")


def test_meilisearch_finds_the_name_and_stores_the_same_tokens_for_others(world, meili):
    url, key, _ = meili
    backend = MeiliSearch(
        url, key, f"test_{uuid.uuid4().hex[:12]}", backoff=0.01, search_timeout=(1.0, 60.0)
    )
    try:
        assert sync(world.engine, backend) > 0
        for q in [*FOUND, *NOT_FOUND]:
            got = backend.search(SearchQuery(q=q, limit=50))
            titles = [h.title for h in got.hits if h.type == "entity"]
            assert titles == entity_titles(world, q), q
            if q in FOUND:
                assert titles[0] == FOUND[q], (q, titles)
        docs = entities(world)
        for name in (*PLAIN, HAOYUNLAI, XINHUA):  # as format 2 stored them
            stored = _stored(backend, docs[name]["id"])
            assert (stored["py"], stored["pyi"]) == old_meili_pinyin(docs[name]["names"]), name
        stored = _stored(backend, docs[TONG]["id"])
        old_py, old_pyi = old_meili_pinyin([TONG])
        assert stored["py"][: len(old_py)] == old_py and stored["pyi"][: len(old_pyi)] == old_pyi
        added = stored["py"][len(old_py) :] + stored["pyi"][len(old_pyi) :]
        assert {"tongbaixintiao", "tongbaixintiaoweipin", "xintiao", "tbxtwp", "xt"} <= set(added)
        assert len(added) == len(set(added)) and not set(added) & {*old_py, *old_pyi}
    finally:
        backend.drop()


# -- an index of the previous format ---------------------------------------------------------


def test_format_version_is_newer_than_the_one_without_bare_pinyin():
    assert FORMAT_VERSION > OLD_FORMAT


def _old_release(monkeypatch, engine, backend, module, attr, old) -> None:
    """The index as the previous release built it: its tokens, its stamp."""
    with monkeypatch.context() as m:
        m.setattr(module, attr, old)
        m.setattr(index_format, "FORMAT_VERSION", OLD_FORMAT)
        reindex(engine, backend)
    assert backend.format_version() == OLD_FORMAT


def test_an_embedded_index_of_the_old_format_is_rebuilt_by_sync(engine, tmp_path, monkeypatch):
    run(engine, tmp_path, "a.csv", [penalty_row(1, 当事人名称=TONG)])
    index = EmbeddedSearch(engine)
    _old_release(monkeypatch, engine, index, embedded_mod, "index_row", old_embedded_row)
    assert entity_titles(index, "tbxtwp") == []  # the old index answers, without them
    assert sync(engine, index) == 0  # no event to apply: a rebuild all the same
    assert index.format_version() == FORMAT_VERSION
    for q in ("tongbaixintiaoweipin", "tongbaixin tiaoweipin", "tbxtwp"):
        assert entity_titles(index, q) == [TONG], q


def test_a_meilisearch_index_of_the_old_format_is_rebuilt_by_sync(
    fake, meili, engine, tmp_path, monkeypatch
):
    run(engine, tmp_path, "a.csv", [penalty_row(1, 当事人名称=TONG)])
    backend = _backend(meili)
    try:
        _old_release(monkeypatch, engine, backend, meili_encoding, "index_doc", old_meili_doc)
        assert entity_titles(backend, "tbxtwp") == []
        since = len(fake.requests)
        assert sync(engine, backend) == 0
        swaps = [p for m, p, _ in fake.requests[since:] if m == "POST" and p == "swap-indexes"]
        assert len(swaps) == 1 and backend.format_version() == FORMAT_VERSION
        for q in ("tongbaixintiaoweipin", "tongbaixin tiaoweipin", "tbxtwp"):
            assert entity_titles(backend, q) == [TONG], q
    finally:
        backend.drop()
