"""The search test-suite and the search evaluation set through the Meilisearch backend, plus
what only Meilisearch has (settings, tasks, retries, swap-indexes rebuild, reconcile).

The shared tests are the functions of tests/test_search.py that use the backend (the `index` or
`world` fixture), collected here again with `index` bound to a MeiliSearch backend; the
evaluation reuses tests/test_search_eval.py's sample world and queries. They talk HTTP to a
fake Meilisearch (tests/fake_meili.py) on a localhost port, or to a real server when
DISCLOSURE_MEILI_URL is set (DISCLOSURE_MEILI_KEY: its key); tests that need the fake's failure
injection are skipped against a real server.
"""

from __future__ import annotations

import inspect
import os
import threading
import time
import uuid

import pytest
from sqlalchemy import select, update

from publishing.models import SyncCursor
from publishing.search import get_backend, meili_encoding
from publishing.search import meili as meili_mod
from publishing.search.base import SearchQuery, SearchUnavailable
from publishing.search.embedded import EmbeddedSearch
from publishing.search.meili import MeiliSearch, MeiliTaskFailed
from publishing.search.meili_encoding import (
    encode,
    index_doc,
    pinyin_tokens,
    query_string,
    settings_payload,
)
from publishing.search.sync import reindex, sync
from publishing.search.text import parse_query
from tests import test_search as suite
from tests import test_search_eval as eval_suite
from tests.factories import penalty_row, uscc
from tests.fake_meili import FakeMeilisearch
from tests.test_search import HAOYUNLAI, ZHANGYU, run
from tests.test_search_eval import run_eval

# tests/test_search_eval.py's fixtures: the sample world published (module scope)
sample_dir = eval_suite.sample_dir
eval_engine = eval_suite.eval_engine

LIVE_URL = os.environ.get("DISCLOSURE_MEILI_URL")
LIVE_KEY = os.environ.get("DISCLOSURE_MEILI_KEY")
FAKE_KEY = "fake-master-key"

# Tests of tests/test_search.py that are about the embedded index itself (its CAP, its
# transaction-bound writer, its tables, its PostgreSQL scans); their Meilisearch counterparts
# are below.
EMBEDDED_ONLY = {
    "test_paging_and_cap",
    "test_sync_is_idempotent_resumable_and_counts_events",
    "test_rebuild_equals_incremental_sync",
    "test_parallel_rebuild_equals_sequential",
    "test_a_large_backlog_is_applied_by_a_rebuild",
    "test_query_shares_come_from_postgresql_statistics",
    "test_the_rid_order_scan_and_the_bitmap_plan_give_the_same_answers",
    "test_a_scan_over_its_budget_gives_way_to_the_bitmap_plan",
}


def _shared_tests() -> dict[str, object]:
    out = {}
    for name, fn in vars(suite).items():
        if not name.startswith("test_") or name in EMBEDDED_ONLY or not callable(fn):
            continue
        params = inspect.signature(fn).parameters
        if "index" in params or "world" in params:
            out[name] = fn
    return out


SHARED = _shared_tests()
globals().update(SHARED)


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def meili():
    """(url, key, fake server or None)."""
    if LIVE_URL:
        yield LIVE_URL, LIVE_KEY, None
        return
    fake = FakeMeilisearch(master_key=FAKE_KEY).start()
    yield fake.url, FAKE_KEY, fake
    fake.stop()


@pytest.fixture
def fake(meili) -> FakeMeilisearch:
    if meili[2] is None:
        pytest.skip("needs the fake server's failure injection (DISCLOSURE_MEILI_URL is set)")
    return meili[2]


def _backend(meili, **kw) -> MeiliSearch:
    url, key, _ = meili
    kw.setdefault("backoff", 0.01)
    # the fake builds its word index in Python on the first search after a write: seconds
    kw.setdefault("search_timeout", (1.0, 60.0))
    return MeiliSearch(url, key, f"test_{uuid.uuid4().hex[:12]}", **kw)


@pytest.fixture(scope="module", params=("sqlite", "postgresql"))
def world(request, tmp_path_factory, meili):
    """tests/test_search.py's world (the same database, built by its fixture function), synced
    from the change log into a Meilisearch index; `world.engine` is its database."""
    build = suite.world.__wrapped__(request, tmp_path_factory)
    embedded = next(build)
    backend = _backend(meili)
    assert sync(embedded.engine, backend) > 0
    backend.engine = embedded.engine
    yield backend
    backend.drop()
    next(build, None)


@pytest.fixture
def index(meili, engine):
    """An empty Meilisearch index of this test's own (the shared tests' `index`)."""
    backend = _backend(meili)
    backend.rebuild([])
    yield backend
    backend.drop()


def search(backend, q="", **kw):
    kw.setdefault("limit", 50)
    return backend.search(SearchQuery(q=q, **kw))


def ids(result):
    return [h.id for h in result.hits]


def _cursor(engine, name="search:meilisearch") -> int:
    table = SyncCursor.__table__
    with engine.connect() as conn:
        return conn.execute(select(table.c.seq).where(table.c.name == name)).scalar() or 0


def _dump(backend) -> dict[str, dict]:
    return {d["id"]: d for d in backend.documents()}


# -- tokens and queries (no server) ----------------------------------------------------------


def test_chinese_is_spelled_in_ascii_and_queries_are_bigram_phrases():
    assert encode("樟宇") == "c06a1f05b87" and encode("abc12") == "abc12"
    assert query_string(parse_query("好运来")) == f'"{encode("好运")} {encode("运来")}"'
    # a single character is a word of its own (indexed too), never a prefix
    assert query_string(parse_query("樟 yantai")) == f'"{encode("樟")}" yantai'
    # the parts of a code are whole words: a code prefix is a filter
    assert query_string(parse_query("9137 0602-ma3c")) == '"9137" "0602" "ma3c"'
    assert query_string(parse_query("！？")) == ""


def test_pinyin_and_initials_tokens():
    py, pyi = pinyin_tokens([ZHANGYU])
    assert {"yantai", "zhangyu", "yantaizhangyu", "yan", "yu"} <= set(py)
    assert {"ytzy", "zy", "yt", "ytzysmyxgs"} <= set(pyi)
    assert "y" not in pyi  # a single initial is a prefix of the others


def test_index_document_keeps_the_search_document():
    doc = {
        "id": "pn-0123456789abcdef",
        "type": "penalty",
        "title": f"{ZHANGYU} · 行政处罚",
        "url": "/records/pn-0123456789abcdef",
        "entity_id": uscc(2),
        "district": "370671",
        "date": "2026-03-01",
        "status": "active",
        "grade": None,
        "uscc": uscc(2),
        "reg_no": None,
        "names": [ZHANGYU],
        "text": [["违法事实", "销售过期月饼"]],
        "data": {"id": "pn-0123456789abcdef", "amount": 5000},
    }
    out = index_doc(doc)
    assert meili_encoding.stored_doc(out) == doc
    assert out["key"] == doc["id"] and out["codes"] == [uscc(2)] and out["type_rank"] == 1
    assert out["py"] == [] and out["day"] > 0
    assert any(encode("高新") in p for p in out["place"])


def test_settings_payload():
    s = settings_payload()
    assert s["searchableAttributes"][:3] == ["codes", "name", "former"]
    assert s["rankingRules"][0] == "sort" and "exactness" in s["rankingRules"]
    assert "codes" in s["typoTolerance"]["disableOnAttributes"]
    assert s["pagination"]["maxTotalHits"] == meili_encoding.MAX_TOTAL_HITS


# -- the index on the server -----------------------------------------------------------------


def test_index_settings_on_the_server(index):
    current = index.client.http.get(f"indexes/{index.uid}/settings")
    want = settings_payload()
    for key in ("searchableAttributes", "rankingRules"):
        assert current[key] == want[key], key
    assert sorted(current["filterableAttributes"]) == sorted(want["filterableAttributes"])
    assert sorted(current["typoTolerance"]["disableOnAttributes"]) == sorted(
        want["typoTolerance"]["disableOnAttributes"]
    )
    assert current["pagination"]["maxTotalHits"] == meili_encoding.MAX_TOTAL_HITS
    assert not meili_mod._differs(want, current)
    # Meilisearch returns set-like settings sorted: that is not a difference
    shuffled = {**current, "typoTolerance": {**current["typoTolerance"]}}
    shuffled["typoTolerance"]["disableOnAttributes"] = sorted(
        current["typoTolerance"]["disableOnAttributes"]
    )
    shuffled["filterableAttributes"] = sorted(current["filterableAttributes"], reverse=True)
    assert not meili_mod._differs(want, shuffled)
    assert meili_mod._differs(want, {**current, "rankingRules": current["rankingRules"][::-1]})


def test_a_restart_does_not_touch_unchanged_settings(fake, meili, index):
    fresh = MeiliSearch(index.url, index.key, index.uid)  # another process, same index
    before = len(fake.requests)
    fresh.upsert([])
    assert ("PATCH", f"indexes/{index.uid}/settings") not in [
        (m, p) for m, p, _ in fake.requests[before:]
    ]


def test_missing_index_searches_empty_and_counts_zero(meili):
    backend = _backend(meili)
    result = search(backend, "烟台")
    assert (result.total, result.hits) == (0, [])
    assert backend.count() == 0 and list(backend.documents()) == []


def test_district_aliases_match_their_district(engine, tmp_path, index):
    run(engine, tmp_path, "g.csv", [penalty_row(1, 所属区市="烟台高新技术产业开发区")])
    sync(engine, index)
    assert {h.type for h in search(index, "高新区").hits} == {"entity", "penalty"}
    assert {h.type for h in search(index, "烟台高新区").hits} == {"entity", "penalty"}
    assert search(index, "经济开发区").total == 0


def test_paging_and_cap_meilisearch(world, meili, monkeypatch):
    everything = search(world, "烟台", limit=100)
    pages = [h.id for off in (0, 3, 6) for h in search(world, "烟台", limit=3, offset=off).hits]
    assert ids(everything)[:9] == pages
    assert not everything.capped and everything.total == len(everything.hits)
    # exact hits first, then the ranked ones, across page boundaries
    exact = search(world, HAOYUNLAI, limit=100)
    pages = [
        h.id for off in range(0, 8, 2) for h in search(world, HAOYUNLAI, limit=2, offset=off).hits
    ]
    assert ids(exact)[:8] == pages
    odd = search(world, HAOYUNLAI, limit=3, offset=1)
    assert ids(odd) == ids(exact)[1:4] and odd.total == exact.total
    monkeypatch.setattr(meili_encoding, "MAX_TOTAL_HITS", 4)
    small = _backend(meili)
    try:
        reindex(world.engine, small)
        capped = search(small, "烟台")
        assert capped.capped and capped.total == 4 and len(capped.hits) == 4
    finally:
        small.drop()


def test_sync_cursor_is_per_backend(engine, tmp_path, index):
    run(engine, tmp_path, "a.csv", [penalty_row(i) for i in range(1, 4)])
    embedded = EmbeddedSearch(engine)
    embedded.rebuild([])
    assert sync(engine, embedded) == 3
    assert sync(engine, index) == 3
    assert _cursor(engine, "search:embedded") == _cursor(engine, "search:meilisearch") == 3
    assert sync(engine, index) == 0


def test_sync_is_idempotent_and_resumes_after_a_crash(engine, tmp_path, index):
    run(engine, tmp_path, "a.csv", [penalty_row(i) for i in range(1, 8)])
    assert sync(engine, index, batch=3) == 7
    before = _dump(index)
    assert len(before) == 14  # 7 entities, 7 penalties

    class Crash(Exception):
        pass

    class Flaky(MeiliSearch):
        calls = 0

        def upsert(self, docs):
            Flaky.calls += 1
            if Flaky.calls == 2:
                raise Crash
            super().upsert(docs)

    with engine.begin() as conn:
        conn.execute(update(SyncCursor.__table__).values(seq=0))
    flaky = Flaky(index.url, index.key, index.uid)
    with pytest.raises(Crash):
        sync(engine, flaky, batch=3)
    assert _cursor(engine) == 3  # the first batch was applied and its cursor committed
    assert sync(engine, index, batch=3) == 4
    assert _dump(index) == before


def test_rebuild_equals_incremental_sync_meilisearch(engine, tmp_path, index):
    run(engine, tmp_path, "a.csv", [penalty_row(i) for i in range(1, 6)])
    suite.withdraw_and_rename(engine, tmp_path)
    sync(engine, index, batch=4)
    synced = _dump(index)
    queries = ["烟台", "测试", "改名", uscc(3)[:10], "ytcs", "gaiming"]
    before = {q: ids(search(index, q)) for q in queries}
    assert reindex(engine, index) == len(synced) == index.count()
    assert _dump(index) == synced
    assert {q: ids(search(index, q)) for q in queries} == before
    assert sync(engine, index) == 0
    # the same documents as the embedded index
    embedded = EmbeddedSearch(engine)
    reindex(engine, embedded)
    assert {d["id"]: d for d in embedded.documents()} == synced


def test_reconcile(engine, tmp_path, index):
    run(engine, tmp_path, "a.csv", [penalty_row(i) for i in range(1, 13)])
    sync(engine, index)
    report = index.reconcile(engine, sample=50, seed=1)
    assert report.ok, report.as_dict()
    assert (report.database, report.index, report.pending) == (24, 24, 0)
    assert report.sampled >= 12
    # a document lost from the index, another one stale, an event not synced yet
    victim, stale = sorted(d["id"] for d in index.documents() if d["type"] == "penalty")[:2]
    index.delete([victim])
    doc = index.get(stale)
    index.upsert([{**doc, "title": "过时的标题"}])
    run(engine, tmp_path, "b.csv", [penalty_row(20)])
    report = index.reconcile(engine, sample=500, seed=2)
    assert not report.ok
    assert (report.database, report.index, report.pending) == (26, 23, 1)
    assert victim in report.missing and stale in report.different
    sync(engine, index)
    reindex(engine, index)
    assert index.reconcile(engine, sample=500).ok


def test_get_backend_meilisearch(engine, meili, monkeypatch):
    from publishing.settings import get_settings

    url, key, _ = meili
    monkeypatch.setenv("DISCLOSURE_MEILI_URL", url)
    monkeypatch.setenv("DISCLOSURE_MEILI_KEY", key or "")
    monkeypatch.setenv("DISCLOSURE_MEILI_INDEX", "portal_test")
    get_settings.cache_clear()
    try:
        backend = get_backend(engine)
        assert isinstance(backend, MeiliSearch)
        assert (backend.url, backend.uid, backend.name) == (url, "portal_test", "meilisearch")
    finally:
        get_settings.cache_clear()


# -- tasks, retries, rebuild without downtime (the fake's failure injection) -----------------


def test_retries_with_backoff_on_5xx_and_dropped_connections(fake, meili, engine, tmp_path):
    backend = _backend(meili, retries=3)
    run(engine, tmp_path, "a.csv", [penalty_row(1, 当事人名称=HAOYUNLAI)])
    fake.fail(2, status=503, path="documents")
    fake.fail(1, drop=True, path="tasks")
    try:
        assert reindex(engine, backend) == 2
        fake.fail(1, status=502, path="multi-search")
        assert search(backend, "好运来").total == 2
        fake.fail(3, status=500, path="multi-search")  # a search is retried twice
        with pytest.raises(SearchUnavailable):
            search(backend, "好运来")
        fake.fail(1, status=400, path="multi-search")  # a client error is not retried
        with pytest.raises(meili_mod.MeilisearchApiError):
            search(backend, "好运来")
        assert search(backend, "好运来").total == 2
        searches = [p for p in fake.paths("POST") if p == "multi-search"]
        assert len(searches) >= 1 + 2 + 3 + 1 + 1
    finally:
        fake.clear_failures()
        backend.drop()


def test_a_failed_task_fails_the_sync_and_keeps_the_cursor(engine, tmp_path, index, monkeypatch):
    run(engine, tmp_path, "a.csv", [penalty_row(1)])
    sync(engine, index)
    run(engine, tmp_path, "b.csv", [penalty_row(2)])
    real = meili_encoding.index_doc
    with monkeypatch.context() as m:
        m.setattr(meili_encoding, "index_doc", lambda d: {**real(d), "key": "not a valid id!"})
        with pytest.raises(MeiliTaskFailed, match="invalid_document_id"):
            sync(engine, index)
    assert _cursor(engine) == 1
    assert sync(engine, index) == 1 and index.count() == 4


def test_rebuild_swaps_in_a_new_index_without_downtime(fake, meili, engine, tmp_path):
    backend = _backend(meili, batch=2)
    run(engine, tmp_path, "a.csv", [penalty_row(1, 当事人名称=HAOYUNLAI)])
    reindex(engine, backend)
    run(engine, tmp_path, "b.csv", [penalty_row(i) for i in range(2, 8)])
    # a stale build left by a rebuild that died before its swap
    backend._create(f"{backend.uid}_v1")
    seen: list[int] = []
    stop = threading.Event()

    def searcher():
        while not stop.is_set():
            seen.append(search(backend, "").total)
            time.sleep(0.005)

    fake.task_delay = 0.02
    thread = threading.Thread(target=searcher)
    thread.start()
    try:
        assert reindex(engine, backend) == 14
    finally:
        stop.set()
        thread.join()
        fake.task_delay = 0.0
    assert set(seen) <= {2, 14} and seen[0] == 2 and seen[-1] == 14  # old, then all of new
    swaps = [b for m, p, b in fake.requests if p == "swap-indexes"]
    new = swaps[-1][0]["indexes"][1]
    assert swaps[-1][0]["indexes"][0] == backend.uid and new.startswith(f"{backend.uid}_v")
    left = {i["uid"] for i in backend.client.http.get("indexes?limit=1000")["results"]}
    assert backend.uid in left and not any(u.startswith(f"{backend.uid}_v") for u in left)
    adds = [p for m, p, b in fake.requests if p == f"indexes/{new}/documents"]
    assert len(adds) == 7  # 14 documents in batches of 2
    backend.drop()


def test_requests_carry_the_key(fake, meili):
    url, _, _ = meili
    backend = MeiliSearch(url, "wrong-key", "nope", retries=0)
    with pytest.raises(meili_mod.MeilisearchApiError) as err:
        backend.count()
    assert err.value.code == "invalid_api_key"
    assert not MeiliSearch("http://127.0.0.1:9", None, "x").ping()
    assert _backend(meili).ping()


# -- the search evaluation set ---------------------------------------------------------------


@pytest.fixture(scope="module")
def eval_meili(meili, eval_engine):
    backend = _backend(meili)
    count = reindex(eval_engine, backend)
    assert count == backend.count() > 0
    yield backend
    backend.drop()


@pytest.mark.parametrize("eval_engine", ["postgresql"], indirect=True)
def test_search_eval_meilisearch(eval_meili, eval_engine, capsys):
    where = "live" if LIVE_URL else "fake HTTP"
    run_eval(eval_meili, eval_engine, f"meilisearch ({where}) on {eval_engine.dialect.name}",
             capsys)
