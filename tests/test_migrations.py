"""Alembic migrations on SQLite and PostgreSQL: an empty database to head, and a database of the
previous schema ("0001", with data in it) upgraded in place with its data intact; at head the
schema is what the models say (autogenerate finds nothing to do, `alembic check` passes).
Processes starting together on a new database all come up; older code runs on a database that
a newer release migrated (rolling upgrades, rollback)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from litestar.testing import TestClient
from sqlalchemy import Engine, insert, inspect, select, text
from sqlmodel import SQLModel

import publishing.apikeys  # noqa: F401 (the tables: what migrations/env.py imports)
import publishing.models  # noqa: F401
import publishing.request_models  # noqa: F401
from portal.app import create_app
from publishing import read
from publishing.db import MIGRATIONS_DIR, in_models, make_engine, upgrade
from publishing.models import Batch, ChangeEvent, Entity, Record, SyncCursor
from publishing.search.base import SearchQuery
from publishing.search.embedded import EmbeddedSearch
from publishing.search.sync import reindex
from tests.api_helpers import GENEROUS, publish_csv
from tests.conftest import PG_ADMIN_URL, _worker
from tests.factories import penalty_row

ROOT = Path(__file__).resolve().parent.parent
USCC = "91370602MA3C4K2X1B"
AT = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def migrate(engine: Engine, revision: str) -> None:
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def head() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def empty_database(backend: str, tmp_path) -> Iterator[Engine]:
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'migrate.db'}")
        yield engine
        engine.dispose()
        return
    name = f"disclosure_migrate_{_worker()}"
    admin = make_engine(PG_ADMIN_URL)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=("sqlite", "postgresql"))
def fresh(request, tmp_path) -> Iterator[Engine]:
    with empty_database(request.param, tmp_path) as engine:
        yield engine


def _model_diffs(engine: Engine) -> list:
    """What autogenerate would change to make the database match the models, with the filter
    of migrations/env.py (only the embedded search tables, made by migrations, are left out: a
    table the models lack shows as its removal)."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"include_object": in_models, "compare_type": True}
        )
        return compare_metadata(ctx, SQLModel.metadata)


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_empty_database_to_head(fresh):
    assert current(fresh) is None
    migrate(fresh, "head")
    assert current(fresh) == head()
    tables = set(inspect(fresh).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    assert "search_docs" in tables
    assert _model_diffs(fresh) == []
    with fresh.begin() as conn:  # a table the models lack is found, not filtered out
        conn.exec_driver_sql("CREATE TABLE stray (id INTEGER PRIMARY KEY)")
    assert [(d[0], d[1].name) for d in _model_diffs(fresh)] == [("remove_table", "stray")]
    with fresh.begin() as conn:
        conn.exec_driver_sql("DROP TABLE stray")
    migrate(fresh, "head")  # again: nothing to do
    assert current(fresh) == head()
    if fresh.dialect.name == "sqlite":  # a new database gets 16 KB pages, in WAL mode
        with fresh.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 16384
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def _previous_schema_rows(conn) -> None:
    """A published record as the 0001 schema holds it."""
    conn.execute(
        insert(Batch.__table__).values(
            id=1,
            kind="penalty",
            mode="incremental",
            actor="cli",
            files=["p.csv"],
            counts={"added": 1},
            started_at=AT,
            finished_at=AT,
        )
    )
    conn.execute(
        insert(Entity.__table__).values(
            id=USCC,
            uscc=USCC,
            reg_no=None,
            name="烟台市芝罘区好运来食品有限公司",
            former_names=["烟台好运来食品厂"],
            name_as_of=date(2026, 6, 1),
            legal_rep="张*",
            district="370602",
            address="烟台市芝罘区南大街1号",
            created_at=AT,
            updated_at=AT,
        )
    )
    conn.execute(
        insert(Record.__table__).values(
            id="pn-0123456789abcdef",
            kind="penalty",
            entity_id=USCC,
            status="active",
            version=1,
            district="370602",
            event_date=date(2026, 6, 1),
            publicity_until=None,
            category="食品",
            data={
                "decision_no": "烟芝市监罚〔2026〕1号",
                "entity_name": "烟台市芝罘区好运来食品有限公司",
                "uscc": USCC,
                "facts": "超过保质期",
            },
            group_key="pn-0123456789abcdef",
            content_hash="0" * 32,
            batch_id=1,
            source_file="p.csv",
            source_row=2,
            first_published_at=AT,
            updated_at=AT,
        )
    )
    conn.execute(
        insert(ChangeEvent.__table__).values(
            seq=1,
            record_id="pn-0123456789abcdef",
            kind="penalty",
            district="370602",
            entity_id=USCC,
            op="add",
            version=1,
            at=AT,
            batch_id=1,
        )
    )
    conn.execute(insert(SyncCursor.__table__).values(name="feeds", seq=1, updated_at=AT))


def _snapshot(engine: Engine) -> dict:
    out = {}
    with engine.connect() as conn:
        for table in (Batch, Entity, Record, ChangeEvent, SyncCursor):
            t = table.__table__
            rows = conn.execute(select(t).order_by(*t.primary_key.columns)).mappings().all()
            out[t.name] = [dict(r) for r in rows]
    return out


def test_previous_schema_upgrades_in_place_with_its_data(fresh):
    migrate(fresh, "0001")
    assert current(fresh) == "0001"
    assert "search_docs" not in inspect(fresh).get_table_names()
    with fresh.begin() as conn:
        _previous_schema_rows(conn)
    before = _snapshot(fresh)
    migrate(fresh, "head")
    assert current(fresh) == head()
    assert _snapshot(fresh) == before
    assert _model_diffs(fresh) == []
    # the upgraded database serves the new code: pages read it, search is rebuilt from it
    with fresh.connect() as conn:
        records = read.entity_records(conn, USCC, today=date(2026, 11, 27))
        assert [r["decision_no"] for r in records] == ["烟芝市监罚〔2026〕1号"]
    index = EmbeddedSearch(fresh)
    assert reindex(fresh, index) == 2
    assert index.search(SearchQuery(q="好运来")).total == 2


def test_upgrade_knows_the_head_without_alembic_and_still_upgrades_an_old_schema(fresh):
    from publishing.db import current_revision, head_revision, upgrade

    assert head_revision() == head()
    assert current_revision(fresh) is None  # a new database
    migrate(fresh, "0001")
    upgrade(fresh)  # not at the head: Alembic runs
    assert current(fresh) == current_revision(fresh) == head()
    upgrade(fresh)  # at the head: nothing to do
    assert current(fresh) == head()


def test_alembic_check_finds_the_schema_at_head_complete(fresh):
    """`alembic check` as an operator runs it, in a process of its own (which imports only what
    migrations/env.py imports): no table missing from the models, the search tables left be."""
    migrate(fresh, "head")
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "check"],
        cwd=ROOT,
        env={**os.environ, "DISCLOSURE_DATABASE_URL": _url(fresh)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "No new upgrade operations detected" in done.stdout + done.stderr


TOGETHER = """
import sys, time
import alembic.command  # noqa: F401 (imported before the start, as the schema is not)
from publishing.db import make_engine, upgrade
engine = make_engine(sys.argv[1])
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
upgrade(engine)
"""


def test_processes_starting_together_on_a_new_database_all_come_up(fresh):
    """Three processes start at once on an empty database: one migrates, the others wait for
    it and find the schema at the head (before: two failed with a duplicate type / locked)."""
    start = f"{time.time() + 4:.3f}"  # each process imports first, then all begin at once
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TOGETHER, _url(fresh), start],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert [code for code, _ in results] == [0, 0, 0], [err[-2000:] for _, err in results]
    assert current(fresh) == head()
    assert _model_diffs(fresh) == []


def test_older_code_runs_on_a_database_a_newer_release_migrated(fresh, tmp_path, caplog):
    """A rolling upgrade or a rollback: the database is at a revision this code does not know,
    with what an additive migration adds (a nullable column, a table). Starting does not try to
    migrate it (Alembic would fail: "Can't locate revision"), and the app serves and publishes."""
    migrate(fresh, "head")
    with fresh.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE records ADD COLUMN next_release_note TEXT")
        conn.exec_driver_sql("CREATE TABLE next_release_things (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_next_release'")
    with caplog.at_level(logging.WARNING, logger="publishing.db"):
        upgrade(fresh)
        upgrade(fresh)  # every command of the old release starts so
    assert current(fresh) == "9999_next_release"
    assert "9999_next_release" in caplog.text and head() in caplog.text
    publish_csv(fresh, tmp_path, "p.csv", [penalty_row(1), penalty_row(2)])
    app = create_app(fresh)
    app.state.rate_limits = GENEROUS
    with TestClient(app) as client:
        assert client.get("/healthz/ready").status_code == 200
        changes = client.get("/api/v1/changes?since=0")
        assert changes.status_code == 200 and len(changes.json()["changes"]) == 2
        assert client.get("/penalties").status_code == 200


def test_listing_filter_indexes_are_added_and_the_records_analyzed(fresh):
    """0008 adds the category and grade indexes to a database with records in it; SQLite also
    gets the statistics that databases of earlier releases never had (their ANALYZE was rolled
    back), so that the planner uses the new indexes and the issue index."""
    names = {"ix_records_kind_category_date", "ix_records_kind_grade_date"}
    migrate(fresh, "0007_api_key_hints")
    with fresh.begin() as conn:
        _previous_schema_rows(conn)
    before = _snapshot(fresh)
    migrate(fresh, "0008_listing_filter_indexes")
    assert names <= {ix["name"] for ix in inspect(fresh).get_indexes("records")}
    assert _snapshot(fresh) == before
    if fresh.dialect.name == "sqlite":
        with fresh.connect() as conn:
            stats = dict(conn.exec_driver_sql("SELECT idx, stat FROM sqlite_stat1").all())
        assert {"ix_records_issue_id", *names} <= set(stats)
    cfg = _config()
    with fresh.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007_api_key_hints")
    assert not names & {ix["name"] for ix in inspect(fresh).get_indexes("records")}


def test_district_index_is_rebuilt_with_the_id(fresh):
    """0009 rebuilds ix_records_kind_district_date with the id after the date, in place and
    under its name, on a database with records in it (SQLite: analyzed again, the drop took
    its statistics); the downgrade rebuilds it as it was."""
    name = "ix_records_kind_district_date"

    def columns() -> dict[str, list[str]]:
        found = inspect(fresh).get_indexes("records")
        return {ix["name"]: ix["column_names"] for ix in found if "district_date" in ix["name"]}

    migrate(fresh, "0008_listing_filter_indexes")
    with fresh.begin() as conn:
        _previous_schema_rows(conn)
    before = _snapshot(fresh)
    migrate(fresh, "0009_district_index_id")
    assert columns() == {name: ["kind", "district", "status", "event_date", "id"]}
    assert _snapshot(fresh) == before
    if fresh.dialect.name == "sqlite":
        with fresh.connect() as conn:
            stats = dict(conn.exec_driver_sql("SELECT idx, stat FROM sqlite_stat1").all())
        assert stats[name] == "1 1 1 1 1 1"
    cfg = _config()
    with fresh.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0008_listing_filter_indexes")
    assert columns() == {name: ["kind", "district", "status", "event_date"]}
