"""Engines and sessions for SQLite (default) and PostgreSQL, and schema upgrades via Alembic."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Connection, Engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, create_engine

from publishing import locks
from publishing.settings import get_settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
MIGRATION_LOCK_ID = locks.MIGRATION  # PostgreSQL advisory lock: one process migrates at a time
log = logging.getLogger("publishing.db")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


READER_CACHE = "PRAGMA cache_size=-4096"
POOL = {"sqlite": (5, 10), "postgresql": (10, 20)}  # connections kept open, more under load


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # Takes effect in a new database only, before its first page is written (an existing one
    # keeps its page size). With 16 KB pages a million-record load stored its records in 17 %
    # less time than with the default 4 KB; searches and profiles read as fast.
    cur.execute("PRAGMA page_size=16384")
    # WAL lets the portal read while a publish is committing; NORMAL is durable at checkpoints
    # and still atomic per transaction, which is what crash safety needs.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    # 4 MB a connection: the pool keeps one per concurrent request and the OS caches the file
    # anyway. Sorts and facet counts spill to temporary files (also in the OS cache) rather
    # than to the heap: at 8 concurrent searches over a million entities, 16 MB caches and
    # in-memory temp storage took a portal worker from 280 MB to 570 MB, for no speed.
    cur.execute(READER_CACHE)
    cur.close()


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (also a URI filename: sqlite:///file:x.db?mode=ro&uri=true);
    None for another database or an in-memory one (sqlite://, sqlite:///:memory:, the URI
    filenames file::memory: and file:NAME?mode=memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    path = parsed.database
    if parsed.query.get("mode") == "memory":  # SQLAlchemy takes any mode=memory as in memory
        return None
    if parsed.query.get("uri") == "true" and path.startswith("file:"):
        path = path.removeprefix("file:")
    return None if path == ":memory:" else Path(path)


# An in-memory database lives in one connection of one process. Everything here relies on
# several: the portal's pool serves requests side by side while the one writer commits (WAL),
# a reindex reads pages on other connections while it writes, and publish, the worker and the
# portal are separate processes. One shared connection (StaticPool) mixes the threads'
# transactions (tried: "cannot start a transaction within a transaction", and a reader handing
# the connection back rolled back a writer's open transaction); a pool of one connection made
# the reindex wait for itself (its reads need a second connection while it writes).
R_MEMORY = ("数据库地址 {url} 是 SQLite 内存数据库，不受支持：发布、门户和后台任务在各自的进程和连接上"
            "读写同一个数据库，内存数据库只存在于一个连接中。请使用数据库文件，如 "
            "sqlite:///var/disclosure.db")


class UnsupportedDatabase(ValueError):
    """A database URL this service cannot run on (the CLI says so in one line)."""


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        if (path := sqlite_file(url)) is None:
            raise UnsupportedDatabase(R_MEMORY.format(url=url))
        path.parent.mkdir(parents=True, exist_ok=True)
        # LIFO: a quiet portal reuses one warm connection instead of cycling every cache.
        size, overflow = POOL["sqlite"]
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False},
            pool_use_lifo=True,
            pool_size=size,
            max_overflow=overflow,
        )
        event.listen(engine, "connect", _sqlite_pragmas)

        # Let SQLAlchemy's BEGIN reach SQLite, so writers take the lock at BEGIN (IMMEDIATE).
        @event.listens_for(engine, "connect")
        def _no_pysqlite_tx(dbapi_conn, _record):
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn):
            options = conn.get_execution_options()
            if options.get("isolation_level") == "AUTOCOMMIT":
                return  # each statement commits by itself (a BEGIN here was rolled back unseen)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("sqlite_immediate") else "BEGIN")

        return engine
    size, overflow = POOL["postgresql"]
    return create_engine(url, pool_size=size, max_overflow=overflow, pool_pre_ping=True)


def connection_limit(engine: Engine) -> int:
    """How many connections the engine's pool hands out at most."""
    size, overflow = POOL.get(engine.dialect.name, POOL["sqlite"])
    return size + overflow


@lru_cache
def get_engine(url: str | None = None) -> Engine:
    return make_engine(url or get_settings().effective_database_url)


# Set in a writer connection's info by a caller that runs analyze() right after it: the
# PRAGMA optimize on leaving would analyze the grown tables once more (seconds at 1M records).
ANALYZE_NEXT = "disclosure_analyze_next"


@contextmanager
def writer_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for the one writer: on SQLite its transactions take the write lock at BEGIN."""
    with engine.connect().execution_options(sqlite_immediate=True) as conn:
        if not is_sqlite(engine):
            try:
                yield conn
            finally:
                conn.info.pop(ANALYZE_NEXT, None)  # PRAGMA optimize is SQLite's
            return
        # 32 MB: a million-record load ran no faster with 64 or 256 MB (its index pages are
        # spread over far more than any of these). Set on the driver connection so that no
        # SQLAlchemy transaction begins before the caller's (IMMEDIATE) one; back to the
        # readers' cache before the connection returns to the pool.
        driver = conn.connection.driver_connection
        driver.execute("PRAGMA cache_size=-32768")
        driver.execute("PRAGMA threads=2")  # sorts for index builds on a second core
        try:
            yield conn
        finally:
            if not conn.invalidated:
                driver.execute(READER_CACHE)
                driver.execute("PRAGMA threads=0")
                if not conn.info.pop(ANALYZE_NEXT, False):
                    _optimize(driver)


def _optimize(driver: sqlite3.Connection) -> None:
    """SQLite's advice for a connection that changed the database: PRAGMA optimize analyzes
    the tables this connection read whose statistics are missing (a database grown by publishes
    too small for analyze(), an index a migration added) or outgrown (25 times the rows);
    otherwise it costs microseconds. In full (3-5 s for a million records, rarely): a sampled
    ANALYZE (analysis_limit=400) counted 401 records per status where there were 834,185, and
    plans chose by that. Needs no transaction of the caller's: call it after theirs."""
    if driver.in_transaction:
        return
    try:
        driver.execute("PRAGMA optimize").fetchall()
    except sqlite3.OperationalError as err:  # busy past the timeout: statistics can wait
        log.warning("PRAGMA optimize skipped: %s", err)


def session(engine: Engine | None = None) -> Session:
    return Session(engine or get_engine(), expire_on_commit=False)


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (a deployed database upgrades in place).

    Every CLI command calls this: when the database is at the head already, one query
    answers, without loading Alembic (0.2 s of a 20-row publish). A database at a revision this
    code does not know was migrated by a newer release (a rolling upgrade, or a rollback to the
    previous image): migrations are additive, so this code runs on it as it is.
    Processes starting together on a new database migrate one after the other (PostgreSQL: an
    advisory lock; SQLite: the write lock taken at BEGIN IMMEDIATE); the others find it done."""
    current, head = current_revision(engine), head_revision()
    if current == head or _newer(current):
        return
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect().execution_options(sqlite_immediate=True) as conn, conn.begin():
        if not is_sqlite(engine):
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
        current = _revision_on(conn)  # again, under the lock: another process may have migrated
        if current == head or _newer(current):
            return
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _newer(revision: str | None) -> bool:
    """The database is at a revision of a newer release (warned about: it is not upgraded)."""
    if revision is None or revision in _revisions()[0]:
        return False
    log.warning(
        "database schema is at revision %s, which this release does not know (its newest is "
        "%s): a newer release migrated it; running on it without upgrading",
        revision,
        head_revision(),
    )
    return True


def _revisions() -> tuple[frozenset[str], frozenset[str]]:
    """(revisions, their parents) of the migration files."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revisions.update(re.findall(r'^revision = "([^"]+)"', text, re.MULTILINE))
        parents.update(re.findall(r'^down_revision = "([^"]+)"', text, re.MULTILINE))
    return frozenset(revisions), frozenset(parents)


def head_revision() -> str:
    """The newest migration, read from the migration files (tests compare it with Alembic's)."""
    revisions, parents = _revisions()
    (head,) = revisions - parents
    return head


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    except DBAPIError:  # no alembic_version table: a new database
        return None


def _revision_on(conn: Connection) -> str | None:
    """current_revision inside a transaction (a failed query would abort it on PostgreSQL)."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


# Tables that migrations and `disclosure reindex` make, not the models: the embedded search
# index (publishing/search/schema.py: search_docs, search_fts and its FTS5 shadow tables, of any
# generation, _new and _old).
MIGRATION_ONLY_TABLES = ("search_docs", "search_fts")


def in_models(obj, name: str | None, type_: str, reflected: bool, compare_to) -> bool:
    """Autogenerate's include_object: compare everything but the migration-only tables (a table
    the models lack otherwise shows, as the removal autogenerate would write)."""
    only_in_db = type_ == "table" and reflected and compare_to is None
    return not (only_in_db and (name or "").startswith(MIGRATION_ONLY_TABLES))


def analyze(engine: Engine, since: datetime | None = None) -> None:
    """Refresh the planner's statistics (after a large publish the old ones mislead it).

    Outside a transaction: PostgreSQL analyzes each table in a transaction of its own, SQLite
    commits sqlite_stat1 with the statement (the full ANALYZE: 5 s at a million records).
    PostgreSQL, `since` given: only the tables not analyzed since then (an initial load has
    analyzed its records and entities for its own queries: 0.4 of 0.5 s at 100k records)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if since is None or conn.dialect.name != "postgresql":
            conn.exec_driver_sql("ANALYZE")
            return
        stale = conn.exec_driver_sql(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(relname) FROM pg_stat_user_tables"
            " WHERE coalesce(greatest(last_analyze, last_autoanalyze), '-infinity') < %s"
            " ORDER BY 1", (since,)).scalars().all()
        if stale:
            conn.exec_driver_sql("ANALYZE " + ", ".join(stale))
