"""A superseded credit mark withdrawn by a file's 撤销 row or left out of a snapshot writes no
change event (nothing public changed), yet its entity is merged again without it: the writer
notes the record in search_pending, the search sync refreshes the entity's document, and the
note is deleted once every index has it (or when older than an index can lag: that index is
forgotten and starts over); a rebuild covers the notes before it. Through the embedded index
and the public search API, and with a second index (the fake Meilisearch) kept against the same
database, as while switching from one to the other; on SQLite and PostgreSQL. Migration 0011
upgrades a database with notes in it."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import func, insert, inspect, select, update

from publishing import clock
from publishing.commit import EVENTS, PENDING
from publishing.models import SyncCursor
from publishing.publish import publish
from publishing.search.base import SearchQuery
from publishing.search.embedded import EmbeddedSearch
from publishing.search.index_format import rebuild_lock
from publishing.search.meili import MeiliSearch
from publishing.search.sync import (
    PENDING_KEPT,
    collect_pending,
    cursor_name,
    pending_cursor_name,
    reindex,
    sync,
)
from tests import test_migrations as migrations
from tests.factories import credit_mark_row, uscc, write_csv
from tests.fake_meili import FakeMeilisearch
from tests.test_cli import cli

CURSORS = SyncCursor.__table__
MEILI_KEY = "fake-master-key"
fresh = migrations.fresh  # an empty database on each backend (a fixture)
FORMER, CURRENT = "烟台旧名九十有限公司", "烟台新名九十有限公司"
ENTITY = uscc(90)
OLDER = credit_mark_row(90, 主体名称=FORMER, 标注日期="2025-01-10")
NEWER = credit_mark_row(90, 主体名称=CURRENT, 分类结果="C", 标注日期="2026-01-10")


def _publish(engine, tmp_path, name: str, row: dict[str, str], mode: str = "incremental") -> dict:
    path = write_csv(tmp_path / name, [row], header=list(row))
    result = publish([path], engine=engine, mode=mode, show_progress=False)
    assert result.published, result.as_json()
    return result.reports[0].counts


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _found(client, name: str) -> bool:
    hits = client.get("/api/v1/search", params={"q": name}).json()["hits"]
    return f"/entities/{ENTITY}" in {h["url"] for h in hits}


def _superseded_then_withdrawn(engine, tmp_path, client, how: str) -> None:
    """The entity found by the name only its older, superseded mark gave it; then that mark
    withdrawn quietly, by a file's 撤销 row or by a snapshot holding only the newer mark."""
    _publish(engine, tmp_path, "a.csv", OLDER)
    assert _publish(engine, tmp_path, "b.csv", NEWER)["superseded"] == 1
    sync(engine)
    assert _found(client, FORMER) and _count(engine, PENDING) == 0
    events = _count(engine, EVENTS)
    if how == "file":
        counts = _publish(engine, tmp_path, "a_wd.csv", {**OLDER, "操作": "撤销"})
    else:
        counts = _publish(engine, tmp_path, "s.csv", NEWER, mode="snapshot")
    assert (counts["withdrawn_quietly"], counts["withdrawn"]) == (1, 0)
    assert _count(engine, EVENTS) == events  # nothing public changed: no event
    assert _count(engine, PENDING) == 1  # noted in the publish's transaction


@pytest.mark.parametrize("how", ["file", "snapshot"])
def test_sync_refreshes_the_entity_of_a_mark_withdrawn_without_an_event(
    engine, client, tmp_path, how
):
    _superseded_then_withdrawn(engine, tmp_path, client, how)
    assert sync(engine) == 0  # no event to apply, yet the note is
    assert not _found(client, FORMER)
    assert _found(client, CURRENT)
    assert _count(engine, PENDING) == 0
    sync(engine)  # nothing left to apply again
    assert not _found(client, FORMER) and _found(client, CURRENT)


def test_a_rebuild_clears_the_notes_it_covers(engine, client, tmp_path):
    _superseded_then_withdrawn(engine, tmp_path, client, "file")
    reindex(engine)
    assert _count(engine, PENDING) == 0
    assert not _found(client, FORMER) and _found(client, CURRENT)


def test_the_publish_command_syncs_a_withdrawal_without_an_event(
    engine, database_url, client, tmp_path
):
    """`disclosure publish` brings search up to date after it, also when the publication
    wrote no change event but withdrew a record quietly."""
    _publish(engine, tmp_path, "a.csv", OLDER)
    _publish(engine, tmp_path, "b.csv", NEWER)
    sync(engine)
    assert _found(client, FORMER)
    row = {**OLDER, "操作": "撤销"}
    run = cli(
        database_url,
        "publish",
        str(write_csv(tmp_path / "a_wd.csv", [row], header=list(row))),
        tmp_path=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert "撤回 0" in run.stdout and "撤回（未公示的记录） 1" in run.stdout, run.stdout
    assert _count(engine, PENDING) == 0
    assert not _found(client, FORMER) and _found(client, CURRENT)


# -- two indexes against one database --------------------------------------------------------
# The second entity: quietly withdrawn after the notes of the first were collected.
FORMER_2, CURRENT_2 = "烟台旧名九十一有限公司", "烟台新名九十一有限公司"
OLDER_2 = credit_mark_row(91, 主体名称=FORMER_2, 标注日期="2025-01-10")
NEWER_2 = credit_mark_row(91, 主体名称=CURRENT_2, 分类结果="C", 标注日期="2026-01-10")


@pytest.fixture(scope="module")
def meili_server():
    fake = FakeMeilisearch(master_key=MEILI_KEY).start()
    yield fake
    fake.stop()


@pytest.fixture
def indexes(engine, meili_server) -> dict:
    """{name: backend}: the embedded index and a Meilisearch index of this test's own."""
    meili = MeiliSearch(meili_server.url, MEILI_KEY, f"test_{uuid.uuid4().hex[:12]}", backoff=0.01)
    meili.rebuild([])
    yield {"embedded": EmbeddedSearch(engine), "meilisearch": meili}
    meili.drop()


def _finds(backend, name: str, entity: str = ENTITY) -> bool:
    """Whether the backend's index finds the entity by the name (Meilisearch: its document has
    the name; the fake builds a word index per search, seconds)."""
    if isinstance(backend, MeiliSearch):
        doc = backend.get(entity)
        return doc is not None and name in doc["names"]
    return entity in {h.id for h in backend.search(SearchQuery(q=name, limit=50)).hits}


def _cursors(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(CURSORS.c.name, CURSORS.c.seq)).all())


def _withdraw_quietly(engine, tmp_path, indexes, older=OLDER, newer=NEWER, former=FORMER):
    """The entity found by its former name in both indexes; then that mark withdrawn quietly."""
    _publish(engine, tmp_path, f"{former}_a.csv", older)
    _publish(engine, tmp_path, f"{former}_b.csv", newer)
    for backend in indexes.values():
        sync(engine, backend)
        assert _finds(backend, former, newer["统一社会信用代码"])
    assert _publish(engine, tmp_path, f"{former}_wd.csv", {**older, "操作": "撤销"})["withdrawn_quietly"]
    assert _count(engine, PENDING) == 1


@pytest.mark.parametrize("first", ["embedded", "meilisearch"])
def test_each_index_applies_a_quiet_withdrawal_whichever_syncs_first(
    engine, tmp_path, indexes, first
):
    """Switching backends keeps two indexes against one database: the first to sync must not
    take the note from the other (before: the other kept the former name for good)."""
    _withdraw_quietly(engine, tmp_path, indexes)
    second = "meilisearch" if first == "embedded" else "embedded"
    sync(engine, indexes[first])
    assert not _finds(indexes[first], FORMER) and _finds(indexes[first], CURRENT)
    assert _count(engine, PENDING) == 1  # the other index has not applied it yet
    assert _finds(indexes[second], FORMER)
    sync(engine, indexes[second])
    assert not _finds(indexes[second], FORMER) and _finds(indexes[second], CURRENT)
    assert _count(engine, PENDING) == 0  # every index has it: collected
    # Another quiet withdrawal after the queue was emptied: its id is a new one (SQLite would
    # issue the deleted ids again without AUTOINCREMENT, and the cursors would skip it).
    _withdraw_quietly(engine, tmp_path, indexes, OLDER_2, NEWER_2, FORMER_2)
    for backend in indexes.values():
        sync(engine, backend)
        assert not _finds(backend, FORMER_2, uscc(91)) and _finds(backend, CURRENT_2, uscc(91))
    assert _count(engine, PENDING) == 0


@pytest.mark.parametrize("rebuilt", ["embedded", "meilisearch"])
def test_a_rebuild_of_one_index_leaves_the_notes_the_other_needs(
    engine, tmp_path, indexes, rebuilt
):
    _withdraw_quietly(engine, tmp_path, indexes)
    other = "meilisearch" if rebuilt == "embedded" else "embedded"
    reindex(engine, indexes[rebuilt])
    assert not _finds(indexes[rebuilt], FORMER) and _finds(indexes[rebuilt], CURRENT)
    assert _count(engine, PENDING) == 1
    with engine.connect() as conn:
        queued = conn.execute(select(func.max(PENDING.c.id))).scalar()
    assert _cursors(engine)[pending_cursor_name(indexes[rebuilt])] == queued  # covered
    sync(engine, indexes[other])
    assert not _finds(indexes[other], FORMER) and _finds(indexes[other], CURRENT)
    assert _count(engine, PENDING) == 0
    assert sync(engine, indexes[rebuilt]) == 0  # the rebuild covered the note: nothing to do
    assert not _finds(indexes[rebuilt], FORMER)


def test_nothing_is_collected_while_a_rebuild_runs(engine, tmp_path, indexes):
    """A rebuild moves its pending cursor back to where it started (what a sync applied to the
    old index meanwhile is applied again to the new one): the notes must outlive it."""
    _withdraw_quietly(engine, tmp_path, indexes)
    with rebuild_lock(engine, wait=True):  # another process rebuilding
        for backend in indexes.values():
            sync(engine, backend)
        assert _count(engine, PENDING) == 1
    sync(engine, indexes["embedded"])
    assert _count(engine, PENDING) == 0


def test_an_index_nobody_syncs_is_forgotten_after_the_age_limit(engine, tmp_path, indexes):
    """The embedded index after the switch to Meilisearch: its cursor would keep the notes for
    good. Past PENDING_KEPT they are deleted and the index forgotten (its cursors deleted): if
    it is ever synced again, it starts over from the change log, without the withdrawn name."""
    _withdraw_quietly(engine, tmp_path, indexes)
    embedded, meili = indexes["embedded"], indexes["meilisearch"]
    sync(engine, meili)
    assert _count(engine, PENDING) == 1  # the embedded index lags: kept
    with engine.begin() as conn:
        assert collect_pending(conn, now=clock.now() + PENDING_KEPT - timedelta(hours=1)) == 0
    with engine.begin() as conn:
        conn.execute(update(PENDING).values(created_at=clock.now() - PENDING_KEPT - timedelta(1)))
    sync(engine, meili)
    assert _count(engine, PENDING) == 0
    cursors = _cursors(engine)
    assert cursor_name(meili) in cursors and pending_cursor_name(meili) in cursors
    assert cursor_name(embedded) not in cursors and pending_cursor_name(embedded) not in cursors
    assert _finds(embedded, FORMER)  # stale until it is synced again
    assert sync(engine, embedded) == _count(engine, EVENTS)  # from the first event
    assert not _finds(embedded, FORMER) and _finds(embedded, CURRENT)


# -- migration 0011 ---------------------------------------------------------------------------


def test_the_queue_gets_cursors_on_a_database_with_notes_in_it(fresh):
    """0011 on a database at 0010 with notes not applied yet: kept, given the time of the
    upgrade, read by every index from the start; on SQLite ids are not issued again after the
    newest rows are deleted; the downgrade drops the column and the pending cursors."""
    migrations.migrate(fresh, "0010_search_pending")
    with fresh.begin() as conn:
        for n in (1, 2, 3):
            conn.execute(insert(PENDING).values(record_id=f"cm-{n}", entity_id=uscc(n)))
        conn.execute(insert(CURSORS).values(name="search:embedded", seq=7, updated_at=clock.now()))
    migrations.migrate(fresh, "0011_search_pending_cursor")
    migrations.migrate(fresh, "head")  # the schema the models describe (later ones add indexes)
    assert migrations._model_diffs(fresh) == []
    with fresh.begin() as conn:
        rows = conn.execute(select(PENDING).order_by(PENDING.c.id)).all()
        assert [(r.id, r.record_id) for r in rows] == [(1, "cm-1"), (2, "cm-2"), (3, "cm-3")]
        assert all(abs(r.created_at - clock.now()) < timedelta(minutes=5) for r in rows)
        assert collect_pending(conn) == 0  # the embedded index has not read them yet
        conn.execute(PENDING.delete().where(PENDING.c.id == 3))
        conn.execute(insert(PENDING).values(record_id="cm-4", entity_id=None))
        assert conn.execute(select(func.max(PENDING.c.id))).scalar() == 4
        conn.execute(
            insert(CURSORS).values(name="search-pending:embedded", seq=4, updated_at=clock.now())
        )
        assert collect_pending(conn) == 3  # every index has them
    _migrate_down(fresh, "0010_search_pending")
    assert "created_at" not in {c["name"] for c in inspect(fresh).get_columns("search_pending")}
    assert set(_cursors(fresh)) == {"search:embedded"}


def _migrate_down(engine, revision: str) -> None:
    cfg = migrations._config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
