"""deploy/restore.sh rebuilds the open-data files: they describe the change log that the restore
replaced, whose seqs the restored database will issue again for other events (PostgreSQL); and
a snapshot URL never names other content after the files were lost with the database."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from publishing import opendata
from publishing.db import make_engine, upgrade
from publishing.publish import publish
from tests.conftest import BACKENDS, PG_ADMIN_URL, _worker
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


@pytest.fixture(params=BACKENDS)
def restorable(request, tmp_path) -> str:
    """An empty database that can be backed up and restored (a file copy, pg_dump)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'disclosure.db'}"
    return request.getfixturevalue("pg_database")


def _back_up(url: str, to: Path) -> None:
    if url.startswith("sqlite"):
        shutil.copy(url.removeprefix("sqlite:///"), to)
        return
    libpq = url.replace("+psycopg", "")
    subprocess.run(["pg_dump", "-Fc", "-f", str(to), libpq], check=True)


def _restore(url: str, source: Path) -> None:
    if url.startswith("sqlite"):
        shutil.copy(source, url.removeprefix("sqlite:///"))
        return
    libpq = url.replace("+psycopg", "")
    wipe = "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"
    subprocess.run(["psql", libpq, "-Xqv", "ON_ERROR_STOP=1", "-c", wipe], check=True)
    subprocess.run(["pg_restore", "--no-owner", "--dbname", libpq, str(source)], check=True)


def test_losing_the_open_data_files_never_gives_a_snapshot_url_other_content(
    restorable, tmp_path
):
    """The drill: the database and the data folder lost, the backup restored, then as many
    publishes as before the loss. The same seq then holds other records, and its snapshot URL
    (cached an hour) must not be the one the lost index.json listed: the versions of a history
    begun without index.json name their build, counted from a random point."""
    out = tmp_path / "var" / "opendata"
    listed: dict[str, str] = {}  # every snapshot URL ever listed -> its sha256

    def publish_and_build(engine, rows: list[dict], name: str) -> dict:
        assert publish(
            [write_csv(tmp_path / name, rows)],
            engine=engine,
            today=date(2026, 11, 27),
            show_progress=False,
        ).published
        index = opendata.build(engine, out)
        for f in opendata.snapshot_files(index).values():
            assert listed.setdefault(f["url"], f["sha256"]) == f["sha256"], f["url"]
        return index

    engine = make_engine(restorable)
    try:
        upgrade(engine)
        publish_and_build(engine, [penalty_row(1), penalty_row(2)], "p.csv")
        engine.dispose()
        _back_up(restorable, tmp_path / "backup")
        lost = publish_and_build(engine, [penalty_row(50)], "more.csv")
        engine.dispose()
        shutil.rmtree(tmp_path / "var")  # the data folder, open-data files and all
        _restore(restorable, tmp_path / "backup")
        opendata.build(engine, out)
        again = publish_and_build(engine, [penalty_row(60)], "other.csv")
    finally:
        engine.dispose()
    assert again["seq"] == lost["seq"] and again["version"] != lost["version"]
    assert again["lineage"] != lost["lineage"]


def test_an_index_from_before_keeps_its_versions(restorable, tmp_path):
    """An index.json that is there goes on as before: a seq no build reached is the version."""
    out = tmp_path / "opendata"
    engine = make_engine(restorable)
    try:
        upgrade(engine)
        for name, rows in (("p.csv", [penalty_row(1)]), ("more.csv", [penalty_row(2)])):
            assert publish(
                [write_csv(tmp_path / name, rows)], engine=engine, show_progress=False
            ).published
            if name == "p.csv":
                first = opendata.build(engine, out)
                assert first["version"] == f"{first['seq']}-{first['build']}"
                # as written before the versions of a history begun without it named the build
                del first["versions"]
                (out / opendata.INDEX_NAME).write_text(json.dumps(first), encoding="utf-8")
        second = opendata.build(engine, out)
    finally:
        engine.dispose()
    assert second["version"] == str(second["seq"]) and second["build"] == first["build"] + 1
    assert "versions" not in second
