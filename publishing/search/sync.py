"""Keep the search index in step with the change log, and rebuild it from the database.

`sync` applies the change events after the backend's cursor (table sync_cursors, name
"search:<backend>") in seq order, a batch per transaction: every touched record is read again
(active → its document is upserted, otherwise deleted) and so is its entity (counts, grade and
names change with its records). The cursor is written in the same transaction as the embedded
index, so a crash loses nothing and repeats nothing; applying an event twice is harmless anyway.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, func, insert, select, update

from publishing import locks
from publishing.db import get_engine, writer_connection
from publishing.models import ChangeEvent, SyncCursor
from publishing.search import get_backend
from publishing.search.base import SearchBackend
from publishing.search.documents import iter_all_docs, load_entity_docs, load_record_docs

EVENTS = ChangeEvent.__table__
CURSORS = SyncCursor.__table__
BATCH = 2000  # change events per transaction
REINDEX_BACKLOG = 100_000  # events behind (and more than half the index): rebuild instead
SYNC_LOCK_ID = locks.SEARCH_INDEX  # PostgreSQL advisory lock shared with the embedded index's writers


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


def apply_events(conn: Connection, backend: SearchBackend, events: list) -> None:
    """Bring the documents of the events' records and entities up to date."""
    records = load_record_docs(conn, [e.record_id for e in events])
    entity_ids = {e.entity_id for e in events} | {d["entity_id"] for d in records.values() if d}
    entities = load_entity_docs(conn, [i for i in entity_ids if i])
    docs = {**records, **entities}
    gone = [doc_id for doc_id, doc in docs.items() if doc is None]
    if gone:
        backend.delete(gone)
    backend.upsert([doc for doc in docs.values() if doc is not None])


def sync(
    engine: Engine | None = None, backend: SearchBackend | None = None, batch: int = BATCH
) -> int:
    """Apply the change events the index has not seen yet; returns how many were applied
    (a large backlog is applied by a rebuild, see REINDEX_BACKLOG)."""
    engine = engine or get_engine()
    backend = backend or get_backend(engine)
    name = cursor_name(backend)
    applied = 0
    with engine.connect() as conn:
        backlog = (conn.execute(select(func.max(EVENTS.c.seq))).scalar() or 0) - read_cursor(
            conn, name
        )
    outdated = getattr(backend, "outdated", None)  # Meilisearch: built by another version
    if (backlog > REINDEX_BACKLOG and backlog > backend.count() // 2) or (outdated and outdated()):
        # A first publish of a whole city, or an index far behind: a rebuild is much faster.
        # An outdated index lacks what searches use: rebuilt before anything is applied to it.
        reindex(engine, backend)
        applied = backlog
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
                return applied
            # The embedded index writes in this transaction, together with the cursor.
            bound = getattr(backend, "bound", None)
            apply_events(conn, bound(conn) if bound else backend, events)
            write_cursor(conn, name, events[-1].seq)
        applied += len(events)


def reindex(engine: Engine | None = None, backend: SearchBackend | None = None) -> int:
    """Rebuild the whole index from the database (swapped in when complete); returns the
    number of documents. Events committed meanwhile are applied by the next sync."""
    engine = engine or get_engine()
    backend = backend or get_backend(engine)
    with engine.connect() as conn:
        top = conn.execute(select(func.max(EVENTS.c.seq))).scalar() or 0
    from_database = getattr(backend, "rebuild_from_database", None)  # the embedded index
    count = from_database() if from_database else backend.rebuild(iter_all_docs(engine))
    with writer_connection(engine) as conn, conn.begin():
        _lock(conn)
        write_cursor(conn, cursor_name(backend), top)
    return count
