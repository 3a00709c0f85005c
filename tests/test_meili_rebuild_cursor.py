"""A Meilisearch rebuild that does not finish after its swap: the sync cursors come back.

Meilisearch's swap cannot commit with the sync cursors (the embedded index's does:
tests/test_search_failures.py). A publish synced during the rebuild moves the cursor on the
index being replaced; once the rebuilt index is swapped in, the cursor must go back to where
the rebuild started, or what was published meanwhile never reaches the new index. The rebuild
commits its start first: the next sync finds it (the rebuild lock free) and moves the cursors
back. Through the fake Meilisearch (tests/fake_meili.py), on SQLite and PostgreSQL: a
`disclosure reindex` killed (SIGKILL) at the first request after its swap, Meilisearch going
away right after the swap, and a withdrawal without a change event (search_pending) applied to
the old index during a rebuild that found the queue empty.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from publishing.commit import PENDING
from publishing.models import ChangeEvent
from publishing.publish import publish
from publishing.search.documents import iter_all_docs
from publishing.search.index_format import rebuild_lock
from publishing.search.meili import MeilisearchCommunicationError
from publishing.search.sync import reindex, sync
from tests import test_search_meili as meili_suite
from tests.factories import credit_mark_row, penalty_row, uscc, write_csv
from tests.test_search import TODAY

meili = meili_suite.meili
fake = meili_suite.fake
_cursor = meili_suite._cursor
ROOT = Path(__file__).resolve().parent.parent
# the child's and the test's Meilisearch clients wait for the publish in `during` (seconds)
TIMEOUT = 60.0

# `disclosure reindex` of a Meilisearch index in a process of its own (killed by the test).
REINDEX = textwrap.dedent(
    """
    import sys
    from publishing.db import make_engine
    from publishing.search.meili import MeiliSearch
    from publishing.search.sync import reindex

    database, url, key, uid = sys.argv[1:]
    index = MeiliSearch(url, key, uid, backoff=0.01, timeout=60.0)
    reindex(make_engine(database), index)
    """
)


@pytest.fixture
def index(meili, fake):
    backend = meili_suite._backend(meili, timeout=TIMEOUT)
    yield backend
    fake.clear_failures()
    backend.drop()


def _publish(engine, path: Path) -> None:
    result = publish([path], engine=engine, today=TODAY, show_progress=False)
    assert result.published, result.as_json()


def _top(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.max(ChangeEvent.__table__.c.seq))).scalar() or 0


def _database_ids(engine) -> set[str]:
    return {doc["id"] for doc in iter_all_docs(engine)}


def _index_ids(index) -> set[str]:
    return {doc["id"] for doc in index.documents()}


def _build_index(index) -> str:
    """The path of a request on a rebuild's new index (`<index>_v<ms>`)."""
    return rf"^indexes/{index.uid}_v\d+$"


def _penalties_then_changes(engine, tmp_path, index) -> Path:
    """Three penalties in the index; returns a file that withdraws two and adds a fourth."""
    _publish(engine, write_csv(tmp_path / "a.csv", [penalty_row(n) for n in (1, 2, 3)]))
    reindex(engine, index)
    rows = [penalty_row(2, 操作="撤销"), penalty_row(3, 操作="撤销"), penalty_row(4, 操作="新增")]
    return write_csv(tmp_path / "b.csv", rows, header=[*penalty_row(1), "操作"])


def _published_meanwhile(engine, index, path: Path, done: list[str]) -> Callable[[], None]:
    """Called by the fake when the rebuild sends its swap, every document read: a publish
    commits and its sync applies it to the index being replaced (moving the cursor on)."""

    def publish_and_sync() -> None:
        _publish(engine, path)
        assert sync(engine, index) > 0
        done.append("synced")

    return publish_and_sync


def _rebuild_lock_freed(engine) -> None:
    """Wait for PostgreSQL to end a killed process's session (and its advisory lock)."""
    for _ in range(100):
        with rebuild_lock(engine, wait=False) as free:
            if free:
                return
        time.sleep(0.1)
    raise AssertionError("the killed rebuild's lock was never released")


def test_a_reindex_killed_after_its_swap_leaves_the_index_to_the_next_sync(
    fake, meili, engine, database_url, tmp_path, index
):
    changes = _penalties_then_changes(engine, tmp_path, index)
    before = _index_ids(index)
    script = tmp_path / "reindex.py"
    script.write_text(REINDEX, encoding="utf-8")
    url, key, _ = meili
    child = subprocess.Popen(
        [sys.executable, str(script), database_url, url, key, index.uid],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    done: list[str] = []
    meanwhile = _published_meanwhile(engine, index, changes, done)
    fake.fail(1, path="^swap-indexes$", delay=0.01, during=meanwhile)  # answered after it
    # the first request after the swap: the new index's former self (now the old documents)
    kill = lambda: os.kill(child.pid, signal.SIGKILL)  # noqa: E731
    fake.fail(1, path=_build_index(index), method="DELETE", during=kill)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, stderr
    assert done == ["synced"]
    # the rebuilt index is live: the rebuild read the documents before the publish
    assert _index_ids(index) == before != _database_ids(engine)
    assert _cursor(engine) == _top(engine)  # where the sync meanwhile put it

    _rebuild_lock_freed(engine)
    sync(engine, index)  # the worker's next round
    assert _index_ids(index) == _database_ids(engine)
    assert sync(engine, index) == 0


@pytest.mark.parametrize("then", ["sync", "reindex failing before its swap"])
def test_meilisearch_failing_right_after_the_swap_leaves_the_index_to_the_next_sync(
    fake, engine, tmp_path, index, then
):
    """Also when another rebuild starts first and fails before its swap: it must not replace
    the first one's start by its own (the live index is still the first one's)."""
    changes = _penalties_then_changes(engine, tmp_path, index)
    before = _index_ids(index)
    done: list[str] = []
    fake.fail(
        1,
        path="^swap-indexes$",
        delay=0.01,
        during=_published_meanwhile(engine, index, changes, done),
    )

    def goes_away() -> None:
        fake.fail(10_000, drop=True)  # every request from now on

    fake.fail(1, path=_build_index(index), method="DELETE", during=goes_away)
    with pytest.raises(MeilisearchCommunicationError):
        reindex(engine, index)
    fake.clear_failures()  # back
    assert done == ["synced"]
    assert _index_ids(index) == before != _database_ids(engine)  # the rebuilt index is live

    if then != "sync":
        fake.fail(1, drop=True, path="^swap-indexes$")  # lost before it arrived: no swap
        with pytest.raises(MeilisearchCommunicationError):
            reindex(engine, index)
        assert _index_ids(index) == before  # still the first rebuild's index
    sync(engine, index)
    assert _index_ids(index) == _database_ids(engine)


def test_a_withdrawal_without_an_event_during_a_rebuild_reaches_the_new_index(
    fake, engine, tmp_path, index
):
    """The queue (search_pending) was empty when the rebuild started; a quiet withdrawal
    (a superseded mark's 撤销: no change event, the entity loses a former name) applied to
    the old index during the rebuild moved the pending cursor past it."""
    older = credit_mark_row(90, 主体名称="烟台旧名九十有限公司", 标注日期="2025-01-10")
    newer = credit_mark_row(
        90, 主体名称="烟台新名九十有限公司", 分类结果="C", 标注日期="2026-01-10"
    )
    for name, row in (("older.csv", older), ("newer.csv", newer)):
        _publish(engine, write_csv(tmp_path / name, [row], header=list(row)))
    reindex(engine, index)
    assert "烟台旧名九十有限公司" in index.get(uscc(90))["names"]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(PENDING)).scalar_one() == 0
    withdrawal = {**older, "操作": "撤销"}
    path = write_csv(tmp_path / "wd.csv", [withdrawal], header=list(withdrawal))
    done: list[str] = []

    def withdrawn_and_synced() -> None:
        _publish(engine, path)
        sync(engine, index)
        assert "烟台旧名九十有限公司" not in index.get(uscc(90))["names"]  # the old index
        done.append("synced")

    fake.fail(1, path="^swap-indexes$", delay=0.01, during=withdrawn_and_synced)
    reindex(engine, index)
    assert done == ["synced"]
    assert "烟台旧名九十有限公司" not in index.get(uscc(90))["names"]
    assert index.get(uscc(90))["names"] and _index_ids(index) == _database_ids(engine)
