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

from publishing.models import ChangeEvent
from publishing.search import meili as meili_mod
from publishing.search.base import SearchQuery
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
    old_filterable = tuple(a for a in meili_mod.FILTERABLE if a != "code_prefix")
    old_doc = meili_mod.index_doc
    with monkeypatch.context() as m:
        m.setattr(meili_mod, "FILTERABLE", old_filterable)
        m.setattr(meili_mod, "index_doc", lambda d: {**old_doc(d), "code_prefix": None})
        reindex(engine, index)
        assert not index.outdated()
    assert index.outdated()
    code = penalty_row(1)["统一社会信用代码"]
    with pytest.raises(meili_mod.SearchUnavailable):  # code_prefix is not filterable there
        index.search(SearchQuery(q=code[:17]))
    since = len(fake.requests)
    assert sync(engine, index) == 0  # no event to apply, but a rebuild
    assert _requests(fake, "POST", "swap-indexes", since) == 1
    assert not index.outdated()
    assert [h.id for h in index.search(SearchQuery(q=code[:17])).hits] == [code]
