"""Initial load: a publish into an empty database keeps its tables lean while it writes.

The secondary indexes nothing reads during a publish are dropped and built once at the end,
several times cheaper than keeping them up to date row by row; on PostgreSQL the foreign keys
are dropped too and checked once at the end with one join, instead of by a trigger per row.
All of it happens inside the publish transaction: a rollback or a crash brings everything back.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from sqlalchemy import Connection, Index, select
from sqlalchemy.exc import OperationalError

from publishing.commit import ENTITIES, EVENTS, RECORDS

log = logging.getLogger(__name__)

# The planner reads records by id, group_key and issue_id only.
UNREAD_WHILE_PUBLISHING = frozenset({
    "ix_records_entity_status", "ix_records_kind_status_date", "ix_records_kind_district_date",
    "ix_records_status_until", "ix_changes_kind_seq", "ix_changes_kind_district_seq",
    "ix_changes_entity_seq", "ix_changes_record", "ix_entities_district",
})  # fmt: skip
TABLES = (RECORDS, EVENTS, ENTITIES)
LOCK_ATTEMPTS = 40
LOCK_RETRY_SECONDS = 0.05


@dataclass
class Deferred:
    indexes: list[Index] = field(default_factory=list)
    foreign_keys: list[tuple[str, str, str]] = field(default_factory=list)  # table, name, definition


def defer_upkeep(conn: Connection) -> Deferred:
    """Drop what restore_upkeep rebuilds, when no record is published yet."""
    if conn.execute(select(RECORDS.c.id).limit(1)).first():
        return Deferred()
    postgres = conn.dialect.name == "postgresql"
    if postgres and not _lock_tables(conn):
        log.info("initial load: the tables are in use, indexes stay in place")
        return Deferred()
    deferred = Deferred(
        indexes=[ix for t in TABLES for ix in t.indexes if ix.name in UNREAD_WHILE_PUBLISHING],
        foreign_keys=_foreign_keys(conn) if postgres else [],
    )
    for ix in deferred.indexes:
        ix.drop(conn)
    for table, name, _ in deferred.foreign_keys:
        conn.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    return deferred


def restore_upkeep(conn: Connection, deferred: Deferred) -> None:
    for ix in deferred.indexes:
        ix.create(conn)
    for table, name, definition in deferred.foreign_keys:  # validates every row
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
