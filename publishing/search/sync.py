"""Keep the search index in step with the change log, and rebuild it from the database.

`sync` applies the change events after the backend's cursor (table sync_cursors, name
"search:<backend>") in seq order, a batch per transaction: every touched record is read again
(active → its document is upserted, otherwise deleted) and so is its entity (counts, grade and
names change with its records). The cursor is written in the same transaction as the embedded
index, so a crash loses nothing and repeats nothing; applying an event twice is harmless anyway.

Then it applies the records withdrawn without a change event (table search_pending, written by
the writer) the same way, from a cursor of the backend's own over the rows' ids
("search-pending:<backend>"), committed with the embedded index as the change log's is. Two
indexes may be kept against one database (switching from the embedded index to Meilisearch: one
is rebuilt and synced while the portal still serves the other), so the first to apply a row must
not delete it. Every writer holds the writer lock (publishing.commit.lock_writer) from its insert to
its commit, so ids are issued in commit order, as change events' seqs are: a cursor never skips
a row that commits later with a smaller id (and ids are never issued again: the table is
AUTOINCREMENT on SQLite). A rebuild moves its backend's two cursors to what it read before
reading the database (possibly back: what a sync applied to the old index meanwhile is applied
again to the new one); the embedded index moves them in the transaction that swaps its new
tables in, so that a rebuild killed after its swap cannot leave them past events the new tables
lack (where a sync during the rebuild had put them). Meilisearch's swap cannot share a
transaction with them: its rebuild first commits where it starts ("search-rebuild:<backend>"
and "search-rebuild-pending:<backend>"), and deletes that record when it moves the cursors
there. A record found with the rebuild lock free is of a rebuild that died or failed, before
or after its swap: the next sync (or rebuild) moves the cursors back to it, never forward, which
suits either index (the old one is at its cursor, the new one at the record), and the events
after it are applied again: harmless, each one re-reads its record and entity and writes them
as they are now (an upsert replaces the whole document, deleting an absent id is no error).

Rows no index needs are deleted (collect_pending, after a sync's and a rebuild's work): those at
or below every index's pending cursor (the indexes: the backends with a cursor; one with none yet
starts from the change log's beginning or a rebuild, which covers every withdrawal), and, so
that an index nobody syncs any more (the embedded one after the switch) cannot keep rows
forever, those older than PENDING_KEPT: an index that had not applied them is forgotten (its
cursors deleted), and if it is ever synced again it starts over from the change log's first
event (or rebuilds, when far behind), which reads every record and entity again. Nothing is
collected while a rebuild runs: it will move its cursor back to where it started.

Before applying anything, `sync` rebuilds an index stamped with an older format version
(publishing.search.index_format) or none, and one far behind: the rebuild lock lets one process
do it (the worker, or a publish's sync after its commit; another one that finds the lock taken
applies nothing meanwhile), and searches are answered by the old index until the swap.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Connection, Engine, delete, func, insert, or_, select, update

from publishing import clock, locks
from publishing.db import get_engine, writer_connection
from publishing.models import ChangeEvent, SearchPending, SyncCursor
from publishing.read import last_change_seq
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
# How long a search_pending row waits for an index that has not applied it: far beyond any pause
# of a live index's sync (the worker syncs every few seconds), so only an abandoned one is
# forgotten, and it costs that index a replay of the change log, not a wrong answer.
PENDING_KEPT = timedelta(days=30)
CURSOR_PREFIX, PENDING_PREFIX = "search:", "search-pending:"
# where an unfinished rebuild started (its change-log seq, its search_pending id)
REBUILD_PREFIX, REBUILD_PENDING_PREFIX = "search-rebuild:", "search-rebuild-pending:"
_NEWER_SEEN: set[str] = set()  # backends whose newer format was logged (once per process)


def cursor_name(backend: SearchBackend) -> str:
    return f"{CURSOR_PREFIX}{backend.name}"


def pending_cursor_name(backend: SearchBackend) -> str:
    """The cursor over search_pending's ids of one backend."""
    return f"{PENDING_PREFIX}{backend.name}"


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


class Backlog(NamedTuple):
    cursor: int  # the backend's
    behind: int  # events after the cursor (up to the count asked for); negative: see backlog
    newest: int  # the change log's newest seq


def backlog(conn: Connection, backend: SearchBackend, up_to: int | None = None) -> Backlog:
    """Where the backend's index stands: its cursor, how many events are after it (counted up
    to up_to + 1), and the newest seq. Counted, not the newest seq minus the cursor: seqs have
    gaps (a dry run or a rolled-back publish uses some up), and a gap of a large dry run made
    one new event look like a backlog worth a full rebuild. up_to: REINDEX_BACKLOG by default.
    Negative (the newest seq minus the
    cursor) when the cursor is beyond the log, as after a restore from an older backup."""
    top = last_change_seq(conn)
    cursor = read_cursor(conn, cursor_name(backend))
    if top <= cursor:
        return Backlog(cursor, top - cursor, top)
    limit = (REINDEX_BACKLOG if up_to is None else up_to) + 1
    after = select(ChangeEvent.seq).where(ChangeEvent.seq > cursor).limit(limit).subquery()
    return Backlog(cursor, conn.execute(select(func.count()).select_from(after)).scalar_one(), top)


def _far_behind(backend: SearchBackend, lag: int) -> bool:
    # A first publish of a whole city, or an index far behind: a rebuild is much faster.
    return lag > REINDEX_BACKLOG and lag > backend.count() // 2


def _lag(conn: Connection, backend: SearchBackend) -> tuple[int, int]:
    """(cursor, events behind) counted far enough for _far_behind to judge."""
    cursor, behind, _ = backlog(conn, backend)
    if behind > REINDEX_BACKLOG:  # counted on only when the index's size may matter
        cursor, behind, _ = backlog(conn, backend, max(REINDEX_BACKLOG, backend.count() // 2))
    return cursor, behind


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
    with engine.connect() as conn:
        cursor, lag = _lag(conn, backend)
    state, behind = index_state(backend, cursor), _far_behind(backend, lag)
    if state == CURRENT and not behind:
        return 0
    if not rebuild and (state != EMPTY or behind):
        log.info("search: the %s index needs a rebuild; left to the worker", backend.name)
        return None
    with rebuild_lock(engine, wait=False) as mine:
        if not mine:
            log.debug("search: another process is rebuilding the %s index", backend.name)
            return None
        with engine.connect() as conn:  # again: a rebuild may have just ended
            cursor, lag = _lag(conn, backend)
        state = index_state(backend, cursor)
        if state == EMPTY:
            backend.stamp_format()  # type: ignore[attr-defined]
            state = CURRENT
        if state == CURRENT and not _far_behind(backend, lag):
            return 0
        if state != CURRENT:  # logged by the one process that rebuilds, once per rebuild
            log.warning(
                "search: rebuilding the %s index: %s; searches use the current index until "
                "the new one is swapped in",
                backend.name,
                state,
            )
        with engine.connect() as conn:  # the events it covers, all counted (it is rare)
            lag = backlog(conn, backend, up_to=last_change_seq(conn)).behind
        _rebuild(engine, backend)
        return lag


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
    _recover_interrupted_rebuild(engine, backend)
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
    """The records withdrawn without a change event after the backend's pending cursor,
    applied as events are, the cursor written in the same transaction (the embedded index
    commits with it; a crash after Meilisearch took them applies them again, which is
    harmless); then the rows every index has are collected."""
    name = pending_cursor_name(backend)
    while True:
        with writer_connection(engine) as conn, conn.begin():
            _lock(conn)
            rows = conn.execute(
                select(PENDING.c.id, PENDING.c.record_id, PENDING.c.entity_id)
                .where(PENDING.c.id > read_cursor(conn, name))
                .order_by(PENDING.c.id)
                .limit(batch)
            ).all()
            if not rows:
                _collect_unless_rebuilding(engine, conn)
                return
            apply_events(conn, _writing_to(conn, backend), rows)
            write_cursor(conn, name, rows[-1].id)


def _collect_unless_rebuilding(engine: Engine, conn: Connection) -> None:
    # A rebuild moves its pending cursor back to where it started: the rows after it must stay.
    with rebuild_lock(engine, wait=False) as free:
        if free:
            collect_pending(conn)


def collect_pending(conn: Connection, now: datetime | None = None) -> int:
    """Delete the search_pending rows no index needs any more (see the module docstring);
    returns how many. In the caller's transaction, which holds the sync lock and sees no
    rebuild running."""
    seen = _pending_cursors(conn)
    aged = _aged_top(conn, (now or clock.now()) - PENDING_KEPT)
    for backend in [b for b, cursor in seen.items() if cursor < aged]:
        log.warning(
            "search: the %s index has not applied withdrawals queued more than %d days ago: "
            "forgotten (if it is synced again, it starts over from the change log)",
            backend,
            PENDING_KEPT.days,
        )
        conn.execute(delete(CURSORS).where(CURSORS.c.name.in_(_cursor_names(backend))))
        del seen[backend]
    if seen:
        up_to = max(min(seen.values()), aged)
    else:  # no index: one that comes starts from the change log's beginning or a rebuild
        up_to = conn.execute(select(func.max(PENDING.c.id))).scalar() or 0
    if not up_to:
        return 0
    return conn.execute(delete(PENDING).where(PENDING.c.id <= up_to)).rowcount


def _cursor_names(backend: str) -> list[str]:
    return [f"{CURSOR_PREFIX}{backend}", f"{PENDING_PREFIX}{backend}"]


def _pending_cursors(conn: Connection) -> dict[str, int]:
    """{backend: its pending cursor} of every backend with a cursor (0: none over the queue
    yet, such as an index last synced by a release before the queue had cursors)."""
    rows = conn.execute(
        select(CURSORS.c.name, CURSORS.c.seq).where(
            or_(CURSORS.c.name.startswith(CURSOR_PREFIX), CURSORS.c.name.startswith(PENDING_PREFIX))
        )
    ).all()
    cursors = dict(rows)
    backends = {name.split(":", 1)[1] for name in cursors}
    return {b: cursors.get(f"{PENDING_PREFIX}{b}") or 0 for b in backends}


def _aged_top(conn: Connection, before: datetime) -> int:
    """The largest id of the rows created before `before` (0: none). The oldest row is looked
    at first (ids follow time): the table is scanned only when something is due."""
    oldest = conn.execute(select(PENDING.c.created_at).order_by(PENDING.c.id).limit(1)).scalar()
    if oldest is None or oldest >= before:
        return 0
    return (
        conn.execute(select(func.max(PENDING.c.id)).where(PENDING.c.created_at < before)).scalar()
        or 0
    )


def reindex(engine: Engine | None = None, backend: SearchBackend | None = None) -> int:
    """Rebuild the whole index from the database (swapped in when complete); returns the
    number of documents. Waits for a rebuild by another process to end first (two would drop
    each other's new tables). Then the events committed during the rebuild are applied: a
    publish meanwhile synced them into the index the rebuild replaced (and said so), and
    without a worker they would wait for the next write."""
    engine = engine or get_engine()
    backend = backend or get_backend(engine)
    with rebuild_lock(engine, wait=True):
        count = _rebuild(engine, backend)
    sync(engine, backend, rebuild=False)
    return count


class RebuildStart(NamedTuple):
    """Where a rebuild starts, read before it reads the database: the change log's newest seq
    and search_pending's largest id (None: no row)."""

    seq: int
    pending: int | None


def rebuild_start(engine: Engine) -> RebuildStart:
    with engine.connect() as conn:
        # Ids are issued in commit order (the writer lock): every row up to the largest one
        # committed before the rebuild reads the database is covered by it.
        pending_top = conn.execute(select(func.max(PENDING.c.id))).scalar()
        return RebuildStart(last_change_seq(conn), pending_top)


def rebuilt(conn: Connection, backend: SearchBackend, start: RebuildStart) -> None:
    """Move the backend's cursors to where its rebuild started (possibly back: what a sync
    applied to the replaced index meanwhile is applied again to the new one), forget the
    rebuild's start record, then collect search_pending. The embedded index calls it in the
    transaction that swaps its new tables in: a process killed after the swap cannot leave the
    cursors ahead of the index. The caller holds the rebuild lock and the sync lock."""
    write_cursor(conn, cursor_name(backend), start.seq)
    # no row at the start: 0, as a sync during the rebuild may have applied later rows to the
    # replaced index (ids are never issued again: 0 re-applies only those)
    write_cursor(conn, pending_cursor_name(backend), start.pending or 0)
    conn.execute(delete(CURSORS).where(CURSORS.c.name.in_(_rebuild_names(backend))))
    collect_pending(conn)


def _rebuild_names(backend: SearchBackend) -> tuple[str, str]:
    """The sync_cursors rows of an unfinished rebuild's start: its seq, its pending id."""
    return f"{REBUILD_PREFIX}{backend.name}", f"{REBUILD_PENDING_PREFIX}{backend.name}"


def _note_rebuild_start(conn: Connection, backend: SearchBackend, start: RebuildStart) -> None:
    """Commit where a rebuild starts before it swaps anything in (see the module docstring)."""
    _rewind(conn, backend)  # an older one's first: the live index may be its new one
    seq_name, pending_name = _rebuild_names(backend)
    write_cursor(conn, seq_name, start.seq)
    write_cursor(conn, pending_name, start.pending or 0)


def _rewind(conn: Connection, backend: SearchBackend) -> bool:
    """Move the cursors back to an unfinished rebuild's start (never forward: the old index,
    still live when it died before its swap, is at its cursor) and forget it; False when there
    is none. The caller holds the sync lock and the rebuild lock (no rebuild is running)."""
    names = _rebuild_names(backend)
    marks = dict(
        conn.execute(select(CURSORS.c.name, CURSORS.c.seq).where(CURSORS.c.name.in_(names))).all()
    )
    if not marks:
        return False
    for cursor, mark in zip(
        (cursor_name(backend), pending_cursor_name(backend)), names, strict=True
    ):
        if mark in marks and marks[mark] < read_cursor(conn, cursor):
            write_cursor(conn, cursor, marks[mark])
    conn.execute(delete(CURSORS).where(CURSORS.c.name.in_(names)))
    return True


def _recover_interrupted_rebuild(engine: Engine, backend: SearchBackend) -> None:
    """A rebuild that died or failed (its start record left, the rebuild lock free): the
    cursors go back to its start, so that this sync applies what it may lack."""
    with engine.connect() as conn:
        found = conn.execute(
            select(CURSORS.c.name).where(CURSORS.c.name == _rebuild_names(backend)[0])
        ).first()
    if found is None:  # the usual case: one cheap read per sync
        return
    with rebuild_lock(engine, wait=False) as free:
        if not free:  # it is running: its end moves the cursors
            return
        with writer_connection(engine) as conn, conn.begin():
            _lock(conn)
            if _rewind(conn, backend):
                log.warning(
                    "search: a rebuild of the %s index did not finish: its cursors are moved "
                    "back to where it started, and what was published since is applied again",
                    backend.name,
                )


def _rebuild(engine: Engine, backend: SearchBackend) -> int:
    """The caller holds the rebuild lock."""
    from_database = getattr(backend, "rebuild_from_database", None)  # the embedded index
    if from_database:  # its swap's transaction moves the cursors (rebuilt)
        return from_database()
    # Meilisearch: the cursors move after its swap, in a transaction of their own; the start
    # committed first lets the next sync move them back if this process dies in between
    start = rebuild_start(engine)
    with writer_connection(engine) as conn, conn.begin():
        _lock(conn)
        _note_rebuild_start(conn, backend, start)
    count = backend.rebuild(iter_all_docs(engine))
    with writer_connection(engine) as conn, conn.begin():
        _lock(conn)
        rebuilt(conn, backend, start)
    return count
