"""deploy/restore.sh rebuilds the open-data files: they describe the change log that the restore
replaced, whose seqs the restored database will issue again for other events (PostgreSQL)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from publishing import opendata
from publishing.db import make_engine, upgrade
from publishing.publish import publish
from tests.conftest import PG_ADMIN_URL, _worker
from tests.factories import penalty_row, write_csv

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def pg_database():
    name = f"disclosure_odrestore_{_worker()}"
    admin = make_engine(PG_ADMIN_URL)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _gz_ids(path: Path) -> set[str]:
    return {json.loads(x)["id"] for x in gzip.decompress(path.read_bytes()).splitlines()}


def test_restore_rebuilds_the_open_data_files(pg_database, tmp_path):
    engine = make_engine(pg_database)
    data_dir = tmp_path / "var"
    out = data_dir / "opendata"
    backup = tmp_path / "backup"
    backup.mkdir()
    try:
        upgrade(engine)
        rows = [penalty_row(i) for i in range(1, 3)]
        for name, batch in (("p.csv", rows), ("more.csv", [penalty_row(50)])):
            assert publish(
                [write_csv(tmp_path / name, batch)],
                engine=engine,
                today=date(2026, 11, 27),
                show_progress=False,
            ).published
            if name == "p.csv":  # the backup: before the last publish
                subprocess.run(
                    ["pg_dump", "-Fc", "-f", str(backup / "disclosure.pgdump"),
                     pg_database.replace("+psycopg", "")],
                    check=True,
                )
        old = opendata.build(engine, out)
        added = _gz_ids(out / opendata.snapshot_files(old)[("penalty", "ndjson")]["path"])
    finally:
        engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISCLOSURE_MEILI")}
    done = subprocess.run(
        [str(ROOT / "deploy" / "restore.sh"), str(backup), "--yes"],
        env={
            **env,
            "DISCLOSURE_DATABASE_URL": pg_database,
            "DISCLOSURE_DATA_DIR": str(data_dir),
            "DISCLOSURE_BIN": str(ROOT / ".venv" / "bin" / "disclosure"),
        },
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    engine = make_engine(pg_database)
    try:
        new = opendata.load_index(out)
        assert new["seq"] == old["seq"] - 1 and not opendata.needs_build(engine, out)
        with engine.connect() as conn:
            assert opendata.index_matches(conn, new)
        assert new["version"] not in (old["version"], str(new["seq"]))  # never served before
        assert [p.name for p in (out / "snapshots").iterdir()] == [new["version"]]
        ids = _gz_ids(out / opendata.snapshot_files(new)[("penalty", "ndjson")]["path"])
        assert len(ids) == 2 and len(added - ids) == 1  # the record published after the backup
        assert sum(f["events"] for f in new["files"] if f["type"] == "delta") == new["seq"]
    finally:
        engine.dispose()
