"""Alembic migrations on SQLite and PostgreSQL: an empty database to head, and a database of the
previous schema ("0001", with data in it) upgraded in place with its data intact; at head the
schema is what the models say (autogenerate finds nothing to do)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, insert, inspect, select, text
from sqlmodel import SQLModel

import publishing.models  # noqa: F401 (the tables)
import publishing.request_models  # noqa: F401
from publishing import read
from publishing.db import MIGRATIONS_DIR, make_engine
from publishing.models import Batch, ChangeEvent, Entity, Record, SyncCursor
from publishing.search.base import SearchQuery
from publishing.search.embedded import EmbeddedSearch
from publishing.search.sync import reindex
from tests.conftest import PG_ADMIN_URL, _worker

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
    """What autogenerate would change to make the database match the models (tables that only
    a migration knows, such as the embedded search index, are left out)."""
    known = set(SQLModel.metadata.tables)

    def include(obj, name, type_, reflected, compare_to):
        return not (type_ == "table" and name not in known)

    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"include_object": include, "compare_type": True}
        )
        return compare_metadata(ctx, SQLModel.metadata)


def test_empty_database_to_head(fresh):
    assert current(fresh) is None
    migrate(fresh, "head")
    assert current(fresh) == head()
    tables = set(inspect(fresh).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    assert "search_docs" in tables
    assert _model_diffs(fresh) == []
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
