"""Test fixtures: real SQLite and real PostgreSQL, migrated by Alembic, emptied per test.

Database tests run once per backend (`engine` is parametrised). PostgreSQL must be reachable:
when it is not, its tests error out, they are never skipped. At the end the run prints how many
tests ran per backend and fails if the PostgreSQL ones did not run.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from publishing.db import make_engine, upgrade
from tests.requests_support import cases, client  # noqa: F401 - fixtures for every test module

PG_ADMIN_URL = os.environ.get("DISCLOSURE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


def _worker() -> str:
    """A name unique to this test process: concurrent pytest runs must not share a database."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return f"{os.getppid()}_{worker}" if worker else str(os.getpid())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@contextmanager
def migrated_pg_database(name: str) -> Iterator[str]:
    """A new PostgreSQL database `name` on the running server, migrated; its URL. Dropped
    on the way out."""

    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'

    def admin(*statements: str) -> None:
        engine = make_engine(PG_ADMIN_URL)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for sql in statements:
                conn.execute(text(sql))
        engine.dispose()

    admin(drop, f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        admin(drop)


@pytest.fixture(scope="session")
def pg_url():
    """A database of this test worker's own on the running PostgreSQL, migrated once."""
    with migrated_pg_database(f"disclosure_test_{_worker()}") as url:
        yield url


def _empty_pg(engine: Engine) -> None:
    with engine.begin() as conn:
        tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                   "AND tablename <> 'alembic_version'")).scalars().all()
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def database_url(backend, request, tmp_path) -> str:
    if backend == "sqlite":
        path = tmp_path / "disclosure.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_url")
    engine = make_engine(url)
    _empty_pg(engine)
    engine.dispose()
    return url


@pytest.fixture
def engine(database_url, backend, monkeypatch, tmp_path) -> Engine:
    """An empty, migrated database on the test's backend; the settings point at it too."""
    from publishing.db import get_engine
    from publishing.settings import get_settings

    monkeypatch.setenv("DISCLOSURE_DATABASE_URL", database_url)
    monkeypatch.setenv("DISCLOSURE_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    get_engine.cache_clear()
    eng = get_engine()
    yield eng
    eng.dispose()
    get_engine.cache_clear()
    get_settings.cache_clear()


def _per_backend(config) -> Counter:
    """Database tests that ran (passed or failed) per backend, by their parameter ids: the
    terminal reporter of the controller sees every worker's reports under xdist."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    counts: Counter = Counter()
    if reporter is None:
        return counts
    for report in reporter.stats.get("passed", []) + reporter.stats.get("failed", []):
        for b in BACKENDS:
            if f"[{b}" in report.nodeid or f"-{b}]" in report.nodeid or f"-{b}-" in report.nodeid:
                counts[b] += 1
    return counts


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    counts = _per_backend(config)
    terminalreporter.write_line(
        "database tests per backend: " + ", ".join(f"{b}={counts[b]}" for b in BACKENDS))


def pytest_sessionfinish(session, exitstatus):
    # Checked where every report arrives: the controller under xdist (a worker's own share may
    # hold SQLite tests only, and its exit status never reaches the run's), the one process else.
    if hasattr(session.config, "workerinput"):
        return
    counts = _per_backend(session.config)
    if counts["sqlite"] and not counts["postgresql"] and exitstatus == 0:
        session.exitstatus = 1
        print("\nERROR: SQLite database tests ran but no PostgreSQL test did.")
