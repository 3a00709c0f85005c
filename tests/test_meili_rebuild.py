"""Rebuilding a Meilisearch index when replies get lost (the fake's `lose_reply`: the request
is carried out, its answer never arrives).

Index creation, deletion and swap-indexes enqueue tasks that must not run twice: they are sent
once, and a lost reply is made up for from the task list. A retried swap used to swap the old
index back in; the new one (now the old one's name) was then dropped and the cursor said the
index was current. Also: an index built by an older version is rebuilt by the next sync.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from publishing.models import ChangeEvent, Record
from publishing.search import index_format, meili_encoding
from publishing.search import meili as meili_mod
from publishing.search.base import SearchQuery
from publishing.search.index_format import FORMAT_VERSION
from publishing.search.sync import reindex, sync
from tests import test_search_meili as meili_suite
from tests.factories import penalty_row
from tests.test_search import HAOYUNLAI, run

meili = meili_suite.meili
fake = meili_suite.fake
_backend = meili_suite._backend
_cursor = meili_suite._cursor


@pytest.fixture
def index(meili):
    """A Meilisearch index of this test's own (writes in batches of 2 documents)."""
    b = _backend(meili, batch=2)
    yield b
    b.drop()


def _top(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.max(ChangeEvent.__table__.c.seq))).scalar() or 0


def _builds(index) -> list[str]:
    found = index.client.http.get("indexes?limit=1000")["results"]
    return [i["uid"] for i in found if i["uid"].startswith(f"{index.uid}_v")]


def _requests(fake, method: str, pattern: str, since: int) -> int:
    return sum(1 for m, p, _ in fake.requests[since:] if m == method and re.fullmatch(pattern, p))


def _world(engine, tmp_path, index) -> None:
    """Two entities with a penalty each in the index, four more penalties published since."""
    run(engine, tmp_path, "a.csv", [penalty_row(1, 当事人名称=HAOYUNLAI), penalty_row(2)])
    reindex(engine, index)
    run(engine, tmp_path, "b.csv", [penalty_row(i) for i in range(3, 7)])


def test_a_lost_swap_reply_does_not_swap_twice(fake, engine, tmp_path, index):
    _world(engine, tmp_path, index)
    since = len(fake.requests)
    fake.fail(1, lose_reply=True, path="^swap-indexes$")
    assert reindex(engine, index) == 12
    assert _requests(fake, "POST", "swap-indexes", since) == 1
    assert index.count() == 12  # the new documents are live …
    assert index.search(SearchQuery(q="", limit=50)).total == 12
    assert _builds(index) == []  # … and the old ones gone
    assert _cursor(engine) == _top(engine) and sync(engine, index) == 0


def test_lost_replies_to_index_creation_and_deletion(fake, engine, tmp_path, index):
    _world(engine, tmp_path, index)
    since = len(fake.requests)
    fake.fail(1, lose_reply=True, path="^indexes$", method="POST")
    fake.fail(1, lose_reply=True, path=r"^indexes/[^/]+_v\d+$", method="DELETE")
    assert reindex(engine, index) == 12
    assert _requests(fake, "POST", "indexes", since) == 1
    assert _requests(fake, "DELETE", r"indexes/[^/]+_v\d+", since) == 1
    assert index.count() == 12 and _builds(index) == []
    failed = [t for t in fake.tasks.values() if t["status"] == "failed"]
    assert failed == []  # nothing was enqueued twice


def test_a_swap_that_never_arrived_fails_the_rebuild_and_keeps_the_index(
    fake, engine, tmp_path, index
):
    _world(engine, tmp_path, index)
    cursor = _cursor(engine)
    fake.fail(1, drop=True, path="^swap-indexes$")  # closed before it was read: no task
    with pytest.raises(meili_mod.MeilisearchCommunicationError):
        reindex(engine, index)
    assert index.count() == 4 and _builds(index) == []  # the old index, as it was
    assert _cursor(engine) == cursor  # and its cursor
    assert sync(engine, index) == _top(engine) - cursor
    assert index.count() == 12


def test_a_second_swap_is_noticed_before_anything_is_dropped(fake, engine, tmp_path, index):
    """Should the swap run twice all the same (a proxy that repeats a POST), the rebuild
    fails and the cursor stays: the live index holds the old documents again."""
    _world(engine, tmp_path, index)
    cursor = _cursor(engine)
    fake.fail(1, repeat=True, path="^swap-indexes$")
    with pytest.raises(meili_mod.MeiliTaskFailed, match="swap"):
        reindex(engine, index)
    assert index.count() == 4 and _builds(index) == []
    assert _cursor(engine) == cursor
    assert sync(engine, index) > 0 and index.count() == 12


def test_an_index_built_by_an_older_version_is_rebuilt_by_the_next_sync(
    fake, engine, tmp_path, index, monkeypatch
):
    """The settings differ (here: a filterable attribute it lacks): its documents lack the
    field too, so new settings alone would not do. The next sync rebuilds it."""
    run(engine, tmp_path, "a.csv", [penalty_row(1, 当事人名称=HAOYUNLAI), penalty_row(2)])
    old_filterable = tuple(a for a in meili_encoding.FILTERABLE if a != "code_prefix")
    old_doc = meili_encoding.index_doc
    with monkeypatch.context() as m:
        m.setattr(meili_encoding, "FILTERABLE", old_filterable)
        m.setattr(meili_encoding, "index_doc", lambda d: {**old_doc(d), "code_prefix": None})
        reindex(engine, index)
        assert not index.outdated()
    assert index.outdated()
    code = penalty_row(1)["统一社会信用代码"]
    # code_prefix is not filterable there: a code prefix is searched for as it was before
    # (a prefix word of the codes), not answered with 503 until the rebuild
    since = len(fake.requests)
    assert [h.id for h in index.search(SearchQuery(q=code[:17])).hits] == [code]
    assert [h.id for h in index.search(SearchQuery(q=code)).hits] == [
        code,
        _penalty_of(engine, code),
    ]
    assert _requests(fake, "POST", "multi-search", since) == 4  # each: refused, then the old way
    since = len(fake.requests)
    assert sync(engine, index) == 0  # no event to apply, but a rebuild
    assert _requests(fake, "POST", "swap-indexes", since) == 1
    assert not index.outdated()
    assert [h.id for h in index.search(SearchQuery(q=code[:17])).hits] == [code]


def _penalty_of(engine, code: str) -> str:
    records = Record.__table__
    with engine.connect() as conn:
        return conn.execute(select(records.c.id).where(records.c.entity_id == code)).scalar_one()


@pytest.mark.parametrize("stamped", [True, False])
def test_an_index_in_an_older_format_is_rebuilt_by_one_worker_run(
    fake, meili, engine, tmp_path, index, monkeypatch, caplog, stamped
):
    """The previous release's documents lacked code_prefix values (its settings were the
    same: only the format version tells). One worker run rebuilds it; the next one leaves it."""
    from publishing import worker
    from publishing.settings import get_settings

    run(engine, tmp_path, "a.csv", [penalty_row(1, 当事人名称=HAOYUNLAI), penalty_row(2)])
    old_doc = meili_encoding.index_doc
    with monkeypatch.context() as m:
        m.setattr(meili_encoding, "index_doc", lambda d: {**old_doc(d), "code_prefix": []})
        reindex(engine, index)
    if not stamped:  # built before versions were kept
        index._drop(index.meta_uid)
    monkeypatch.setattr(index_format, "FORMAT_VERSION", FORMAT_VERSION + 1)  # this release
    url, key, _ = meili
    for name, value in (("URL", url), ("KEY", key or ""), ("INDEX", index.uid)):
        monkeypatch.setenv(f"DISCLOSURE_MEILI_{name}", value)
    get_settings.cache_clear()
    code = penalty_row(1)["统一社会信用代码"]
    assert not index.outdated()  # the settings cannot tell
    assert index.search(SearchQuery(q=code[:17])).total == 0  # answered, from the old documents
    since = len(fake.requests)
    sync_only = [j for j in worker.default_jobs() if j.name == "search-sync"]
    with caplog.at_level("WARNING", logger="publishing.search.sync"):
        assert worker.run_worker(engine, once=True, jobs=sync_only) == {"search-sync": 0}
        assert _requests(fake, "POST", "swap-indexes", since) == 1
        (why,) = [r.getMessage() for r in caplog.records if "rebuilding" in r.getMessage()]
        assert (f"in format {FORMAT_VERSION}," if stamped else "no format version") in why
        assert index.format_version() == FORMAT_VERSION + 1
        assert [h.id for h in index.search(SearchQuery(q=code[:17])).hits] == [code]
        # current now: the next run applies what is new, and rebuilds nothing
        run(engine, tmp_path, "b.csv", [penalty_row(3)])
        since = len(fake.requests)
        sync_only = [j for j in worker.default_jobs() if j.name == "search-sync"]
        assert worker.run_worker(engine, once=True, jobs=sync_only) == {"search-sync": 1}
        assert _requests(fake, "POST", "swap-indexes", since) == 0
        assert len([r for r in caplog.records if "rebuilding" in r.getMessage()]) == 1
    assert index.count() == 6
    get_settings.cache_clear()


def test_a_new_index_is_stamped_without_a_rebuild(fake, meili, engine, tmp_path):
    backend = _backend(meili)
    try:
        run(engine, tmp_path, "a.csv", [penalty_row(1)])
        assert backend.format_version() is None
        since = len(fake.requests)
        assert sync(engine, backend) == 1  # one event
        assert _requests(fake, "POST", "swap-indexes", since) == 0
        assert backend.format_version() == FORMAT_VERSION and backend.count() == 2
    finally:
        backend.drop()
