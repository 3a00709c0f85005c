"""Keep the search index in step with the change log, and rebuild it from the database.

`sync` applies the change events after the backend's cursor (table sync_cursors, name
"search:<backend>") in seq order, a batch per transaction: every touched record is read again
(active → its document is upserted, otherwise deleted) and so is its entity (counts, grade and
names change with its records). The cursor is written in the same transaction as the embedded
index, so a crash loses nothing and repeats nothing; applying an event twice is harmless anyway.
Then it applies the records withdrawn without a change event (table search_pending, written by
the writer) the same way, and deletes those rows in the same transaction; a rebuild clears them.

Before applying anything, `sync` rebuilds an index stamped with an older format version
(publishing.search.index_format) or none, and one far behind: the rebuild lock lets one process
do it (the worker, or a publish's sync after its commit; another one that finds the lock taken
applies nothing meanwhile), and searches are answered by the old index until the swap.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from publishing import locks
from publishing.db import get_engine, writer_connection
from publishing.models import ChangeEvent, SearchPending, SyncCursor
from publishing.search import get_backend, index_format
from publishing.search.base import SearchBackend
from publishing.search.documents import iter_all_docs, load_entity_docs, load_record_docs
from publishing.search.index_format import rebuild_lock

log = logging.getLogger("publishing.search.sync")

EVENTS = ChangeEvent.__table__
CURSORS = SyncCursor.__table__
PENDING = SearchPending.__table__
BATCH = 2000  # change events per transaction
REINDEX_BACKLOG = 100_000  # events behind (and more than half the index): rebuild instead
SYNC_LOCK_ID = locks.SEARCH_INDEX  # advisory lock shared with the embedded index's writers
_NEWER_SEEN: set[str] = set()  # backends whose newer format was logged (once per process)


def cursor_name(backend: SearchBackend) -> str:
    return f"search:{backend.name}"


def read_cursor(conn: Connection, name: str) -> int:
    return conn.execute(select(CURSORS.c.seq).where(CURSORS.c.name == name)).scalar() or 0


def write_cursor(conn: Connection, name: str, seq: int) -> None:
    values = {"seq": seq, "updated_at": datetime.now(UTC)}
    if not conn.execute(update(CURSORS).where(CURSORS.c.name == name).values(values)).rowcount:
        conn.execute(insert(CURSORS).values(name=name, **values))


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SYNC_LOCK_ID})")


def _writing_to(conn: Connection, backend: SearchBackend) -> SearchBackend:
    """The backend writing in the sync's transaction (the embedded index), so that its
    documents commit together with the sync's own bookkeeping."""
    bound = getattr(backend, "bound", None)
    return bound(conn) if bound else backend


def apply_events(conn: Connection, backend: SearchBackend, events: list) -> None:
    """Bring the documents of the events' records and entities up to date (events: anything
    with record_id and entity_id, such as search_pending rows)."""
    records = load_record_docs(conn, [e.record_id for e in events])
    entity_ids = {e.entity_id for e in events} | {d["entity_id"] for d in records.values() if d}
    entities = load_entity_docs(conn, [i for i in entity_ids if i])
    docs = {**records, **entities}
    gone = [doc_id for doc_id, doc in docs.items() if doc is None]
    if gone:
        backend.delete(gone)
    backend.upsert([doc for doc in docs.values() if doc is not None])


def _backlog(engine: Engine, backend: SearchBackend) -> tuple[int, int]:
    """(the cursor, how many events are after it)."""
    with engine.connect() as conn:
        top = conn.execute(select(func.max(EVENTS.c.seq))).scalar() or 0
        cursor = read_cursor(conn, cursor_name(backend))
    return cursor, top - cursor


def _far_behind(backend: SearchBackend, backlog: int) -> bool:
    # A first publish of a whole city, or an index far behind: a rebuild is much faster.
    return backlog > REINDEX_BACKLOG and backlog > backend.count() // 2


CURRENT, EMPTY = "current", "empty"  # index_state's answers besides a reason to rebuild


def index_state(backend: SearchBackend, cursor: int) -> str:
    """CURRENT; EMPTY (no format stamp, and nothing was ever indexed: any format is ours);
    else why the index must be rebuilt before anything is applied to it (it was built by an
    older version of this code, and its documents lack what searches use)."""
    version_of = getattr(backend, "format_version", None)
    if version_of is None:  # a backend that keeps no stamp
        return CURRENT
    version, current = version_of(), index_format.FORMAT_VERSION
    if version is None:
        if cursor == 0 and backend.count() == 0:
            return EMPTY
        return "it carries no format version (built before versions were kept)"
    if version < current:
        return f"it is in format {version}, this version of the code writes format {current}"
    if version > current:
        if backend.name not in _NEWER_SEEN:  # a rollback, or a newer release beside this one
            _NEWER_SEEN.add(backend.name)
            log.warning(
                "search: the %s index is in format %d, newer than this code's %d: left as it "
                "is (after a rollback, run disclosure reindex)",
                backend.name,
                version,
                current,
            )
        return CURRENT
    outdated = getattr(backend, "outdated", None)  # Meilisearch: settings of another version
    if outdated and outdated():
        return "its settings differ from this code's (changed without a new format version)"
    return CURRENT


def _bring_up_to_date(engine: Engine, backend: SearchBackend, rebuild: bool) -> int | None:
    """Rebuild the index when it is stale or far behind, holding the rebuild lock so that one
    process rebuilds; returns the events the rebuild covered (0: none), or None while another
    process rebuilds it (its old self keeps answering searches meanwhile) or when a rebuild is
    needed but not `rebuild` (left to the worker)."""
    cursor, backlog = _backlog(engine, backend)
    state, behind = index_state(backend, cursor), _far_behind(backend, backlog)
    if state == CURRENT and not behind:
        return 0
    if not rebuild and (state != EMPTY or behind):
        log.info("search: the %s index needs a rebuild; left to the worker", backend.name)
        return None
    with rebuild_lock(engine, wait=False) as mine:
        if not mine:
            log.debug("search: another process is rebuilding the %s index", backend.name)
            return None
        cursor, backlog = _backlog(engine, backend)  # again: a rebuild may have just ended
        state = index_state(backend, cursor)
        if state == EMPTY:
            backend.stamp_format()  # type: ignore[attr-defined]
            state = CURRENT
        if state == CURRENT and not _far_behind(backend, backlog):
            return 0
        if state != CURRENT:  # logged by the one process that rebuilds, once per rebuild
            log.warning(
                "search: rebuilding the %s index: %s; searches use the current index until "
                "the new one is swapped in",
                backend.name,
                state,
            )
        _rebuild(engine, backend)
        return backlog


def sync(
    engine: Engine | None = None,
    backend: SearchBackend | None = None,
    batch: int = BATCH,
    rebuild: bool = True,
) -> int:
    """Apply the change events the index has not seen yet, then the records withdrawn
    without one (search_pending); returns how many events were applied.
    An index in an older format (index_format) is rebuilt first, and so is one far behind
    (REINDEX_BACKLOG); while another process rebuilds it, nothing is applied (0). With
    `rebuild=False` (a sync inside a web request: a rebuild takes minutes at scale) such an
    index is left to the worker, and nothing is applied either."""
    engine = engine or get_engine()
    backend = backend or get_backend(engine)
    name = cursor_name(backend)
    applied = _bring_up_to_date(engine, backend, rebuild)
    if applied is None:
        return 0
    while True:
        with writer_connection(engine) as conn, conn.begin():
            _lock(conn)
            seq = read_cursor(conn, name)
            events = conn.execute(
                select(EVENTS.c.seq, EVENTS.c.record_id, EVENTS.c.entity_id)
                .where(EVENTS.c.seq > seq)
                .order_by(EVENTS.c.seq)
                .limit(batch)
            ).all()
            if not events:
                break
            apply_events(conn, _writing_to(conn, backend), events)
            write_cursor(conn, name, events[-1].seq)
        applied += len(events)
    _apply_pending(engine, backend, batch)
    return applied


def _apply_pending(engine: Engine, backend: SearchBackend, batch: int) -> None:
    """The records withdrawn without a change event, applied as events are and deleted in the
    same transaction: the embedded index commits with the deletion; a crash after Meilisearch
    took them applies them again, which is harmless."""
    while True:
        with writer_connection(engine) as conn, conn.begin():
            _lock(conn)
            rows = conn.execute(
                select(PENDING.c.id, PENDING.c.record_id, PENDING.c.entity_id)
                .order_by(PENDING.c.id)
                .limit(batch)
            ).all()
            if not rows:
                return
            apply_events(conn, _writing_to(conn, backend), rows)
            _forget_pending(conn, [r.id for r in rows])


def _forget_pending(conn: Connection, ids: list[int]) -> None:
    for i in range(0, len(ids), BATCH):
        conn.execute(delete(PENDING).where(PENDING.c.id.in_(ids[i : i + BATCH])))


def reindex(engine: Engine | None = None, backend: SearchBackend | None = None) -> int:
    """Rebuild the whole index from the database (swapped in when complete); returns the
    number of documents. Events committed meanwhile are applied by the next sync. Waits for
    a rebuild by another process to end first (two would drop each other's new tables)."""
    engine = engine or get_engine()
    backend = backend or get_backend(engine)
    with rebuild_lock(engine, wait=True):
        return _rebuild(engine, backend)


def _rebuild(engine: Engine, backend: SearchBackend) -> int:
    with engine.connect() as conn:
        top = conn.execute(select(func.max(EVENTS.c.seq))).scalar() or 0
        # Those committed before the rebuild reads the database: it covers them. (Not `id <=
        # max`: on PostgreSQL a smaller id may commit later.)
        pending = list(conn.execute(select(PENDING.c.id)).scalars())
    from_database = getattr(backend, "rebuild_from_database", None)  # the embedded index
    count = from_database() if from_database else backend.rebuild(iter_all_docs(engine))
    with writer_connection(engine) as conn, conn.begin():
        _lock(conn)
        write_cursor(conn, cursor_name(backend), top)
        _forget_pending(conn, pending)
    return count
