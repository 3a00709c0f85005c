"""Initial load: a publish into an empty database keeps its tables lean while it writes.

The secondary indexes nothing reads during a publish are dropped and built once at the end,
several times cheaper than keeping them up to date row by row; on PostgreSQL the foreign keys
are dropped too and checked once at the end with one join, instead of by a trigger per row.
The entities are merged once at the end from the stored records (entities.build_from_records)
instead of chunk by chunk, so the records refer to entities that do not exist yet: PostgreSQL
checks the references when it adds the foreign keys back; SQLite, which can only switch them
off outside a transaction, leaves them off for the load (the entities are built from the very
records that refer to them; tests run its foreign-key check).
All of it happens inside the publish transaction: a rollback or a crash brings everything back."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Index, select
from sqlalchemy.exc import OperationalError

from publishing.commit import ENTITIES, EVENTS, RECORDS

log = logging.getLogger(__name__)

# Indexes whose keys arrive in random order: kept up to date row by row, each insert lands on
# a page of its own (a million-record load: 16.6 s to store the records with the group and
# issue indexes, 7.0 s without them + 2.6 s to build them after). Those whose keys arrive in
# order (kind and district, then the growing seq or rowid) only ever append, which costs less
# than building them at the end. The planner reads records by group key (rival credit marks)
# only for a kind already stored: a second file of a kind brings the indexes back first
# (Planner.apply_chunk); the issue counts are taken after the indexes are back.
DEFERRED_INDEXES = frozenset({
    "ix_records_entity_status", "ix_records_kind_status_date", "ix_records_kind_district_date",
    "ix_records_status_until", "ix_records_group", "ix_records_issue_id",
    "ix_records_kind_category_date", "ix_records_kind_grade_date",
    "ix_changes_entity_seq", "ix_changes_record",
})  # fmt: skip
TABLES = (RECORDS, EVENTS, ENTITIES)
LOCK_ATTEMPTS = 40
LOCK_RETRY_SECONDS = 0.05


@dataclass
class Deferred:
    indexes: list[Index] = field(default_factory=list)
    # table, name, definition
    foreign_keys: list[tuple[str, str, str]] = field(default_factory=list)
    entities: bool = False  # built from the records (before the indexes and the constraints)


def defer_upkeep(conn: Connection) -> Deferred:
    """Drop what Planner.restore_upkeep rebuilds, when no record is published yet."""
    if conn.execute(select(RECORDS.c.id).limit(1)).first():
        return Deferred()
    postgres = conn.dialect.name == "postgresql"
    if postgres and not _lock_tables(conn):
        log.info("initial load: the tables are in use, indexes stay in place")
        return Deferred()
    deferred = Deferred(
        indexes=[ix for t in TABLES for ix in t.indexes if ix.name in DEFERRED_INDEXES],
        foreign_keys=_foreign_keys(conn) if postgres else [],
        entities=_no_entities(conn) and (postgres or not _references_checked(conn)),
    )
    for ix in deferred.indexes:
        ix.drop(conn)
    for table, name, _ in deferred.foreign_keys:
        conn.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    return deferred


@contextmanager
def sqlite_initial_load(conn: Connection) -> Iterator[None]:
    """SQLite, around the publish transaction, when nothing is published yet.

    Foreign keys off: the records come before the entities they refer to (built at the end).
    A rollback journal instead of the WAL, when no other connection has the database open:
    the new pages are written once, into the database file, instead of into the WAL and again
    at the checkpoint (a million records: 2.4 GB; the commit took 12 s); a crash leaves a
    journal that the next connection rolls back, down to the empty database. Both can change
    only outside a transaction, so this decides before the publish begins; defer_upkeep looks
    again under the write lock, and a publish that finds records keeps to the usual order."""
    driver = conn.connection.driver_connection
    if conn.dialect.name != "sqlite" or driver.execute("SELECT 1 FROM records LIMIT 1").fetchone():
        yield
        return
    driver.execute("PRAGMA foreign_keys=OFF")
    journal = _rollback_journal(driver)
    try:
        yield
    finally:
        if not conn.invalidated:
            driver.execute("PRAGMA foreign_keys=ON")
            if journal:
                _back_to_wal(driver)


def _rollback_journal(driver: Any) -> bool:
    """Leave WAL mode if no other connection is open (an idle one holds the WAL open too);
    never wait for one: a running portal keeps its WAL, and the load its usual journal."""
    timeout = driver.execute("PRAGMA busy_timeout").fetchone()[0]
    driver.execute("PRAGMA busy_timeout=0")
    try:
        left = driver.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
    except sqlite3.OperationalError:
        left = False
    finally:
        driver.execute(f"PRAGMA busy_timeout={int(timeout)}")
    if left:  # NORMAL is power-safe with the WAL only; FULL syncs the journal before the pages
        driver.execute("PRAGMA synchronous=FULL")
    return left


def _back_to_wal(driver: Any) -> None:
    try:
        driver.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError as err:
        # readers that waited for the load: the next connection switches
        log.warning("initial load: the database stays in rollback-journal mode for now (%s)", err)
        return
    driver.execute("PRAGMA synchronous=NORMAL")


def _no_entities(conn: Connection) -> bool:
    return conn.execute(select(ENTITIES.c.id).limit(1)).first() is None


def _references_checked(conn: Connection) -> bool:
    return bool(conn.exec_driver_sql("PRAGMA foreign_keys").scalar())


def restore_indexes(conn: Connection, deferred: Deferred) -> None:
    while deferred.indexes:
        deferred.indexes.pop(0).create(conn)


def restore_constraints(conn: Connection, deferred: Deferred) -> None:
    while deferred.foreign_keys:  # validates every row
        table, name, definition = deferred.foreign_keys.pop(0)
        conn.exec_driver_sql(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def _lock_tables(conn: Connection) -> bool:
    """PostgreSQL: take the three tables exclusively, all at once or not at all.

    Dropping an index takes an exclusive lock; taken table by table while a portal reader
    holds one table and waits for another, it deadlocks. NOWAIT never waits, so it never
    deadlocks; a few retries let short reads finish. Readers arriving later wait for the
    commit (an empty site has nothing to show meanwhile)."""
    names = ", ".join(t.name for t in TABLES)
    for _ in range(LOCK_ATTEMPTS):
        try:
            with conn.begin_nested():
                conn.exec_driver_sql(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE NOWAIT")
            return True
        except OperationalError:
            time.sleep(LOCK_RETRY_SECONDS)
    return False


def _foreign_keys(conn: Connection) -> list[tuple[str, str, str]]:
    rows = conn.exec_driver_sql(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND conrelid = ANY(%s::regclass[]) ORDER BY 1, 2",
        ([t.name for t in TABLES],),
    ).all()
    return [(r[0], r[1], r[2]) for r in rows]
