"""Every PostgreSQL advisory lock id of the service, in one place: the ids share one space per
database, so two features picking the same number block each other (the worker holds its lock
for its whole life; with the audit log's id it once hung every audited write while it ran).
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine

WRITER = 7_261_127  # the one writer of published data (publishing.commit)
SEARCH_INDEX = 7_261_128  # the embedded index's writers and the search sync, together
AUDIT = 7_261_129  # appends to the audit log's hash chain
MIGRATION = 7_261_130  # one process migrates at a time (publishing.db)
WORKER = 7_261_131  # the active worker, held while it runs (was 7_261_129, the audit log's)
SEARCH_REBUILD = 7_261_132  # the one process rebuilding the search index (publishing.search)

SINGLE_KEY = (WRITER, SEARCH_INDEX, AUDIT, MIGRATION, WORKER, SEARCH_REBUILD)


@dataclass
class Lock:
    """A lock `holding` tried to take: true when it got it."""

    got: bool
    lock_id: int
    conn: Connection | None = None  # PostgreSQL: the session holding it

    def __bool__(self) -> bool:
        return self.got

    def still_held(self) -> bool:
        """Whether the lock is still this process's. A PostgreSQL session lock goes with its
        session (killed by pg_terminate_backend, a restart of the server, a broken network),
        silently: another process may hold it by now. A file lock lasts as long as the process."""
        if not self.got or self.conn is None:
            return self.got
        try:
            held = self.conn.exec_driver_sql(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = pg_backend_pid() AND classid = %s AND objid = %s AND objsubid = 1",
                (self.lock_id >> 32, self.lock_id & 0xFFFFFFFF),
            ).scalar()
            self.conn.commit()  # no transaction left open on a connection kept for hours
        except Exception:  # noqa: BLE001 - a dead session holds nothing
            return False
        return bool(held)


@contextlib.contextmanager
def held(engine: Engine, lock_id: int, name: str, wait: bool) -> Iterator[bool]:
    """A lock of this process while inside (yields False when not `wait` and another process
    holds it), released when the process dies: a PostgreSQL session advisory lock, or on SQLite
    a file lock next to the database (`<db>.<name>.lock`)."""
    with holding(engine, lock_id, name, wait) as lock:
        yield lock.got


@contextlib.contextmanager
def holding(engine: Engine, lock_id: int, name: str, wait: bool) -> Iterator[Lock]:
    """`held`, yielding the Lock: a process holding it for long (the worker) checks
    Lock.still_held now and then."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            fn = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
            got = conn.exec_driver_sql(f"SELECT {fn}({lock_id})").scalar() is not False
            conn.commit()
            try:
                yield Lock(got, lock_id, conn)
            finally:
                if got:  # a broken connection has released the lock already
                    with contextlib.suppress(Exception):
                        conn.exec_driver_sql(f"SELECT pg_advisory_unlock({lock_id})")
                        conn.commit()
        return
    from publishing.db import sqlite_file  # db imports this module

    # the database's file, also of a URI filename (file:x.db?mode=ro&uri=true); make_engine
    # refuses in-memory databases
    database = sqlite_file(engine.url.render_as_string(hide_password=False))
    path = Path(database or "disclosure.db").with_suffix(f".{name}.lock")
    with open(path, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            got = True
        except BlockingIOError:
            got = False
        try:
            yield Lock(got, lock_id)
        finally:
            if got:
                fcntl.flock(fh, fcntl.LOCK_UN)
