"""SQLite in-memory URLs: make_engine refuses them with a clear error (they crashed on the file
pool's arguments, or silently gave each pooled connection its own empty database), and
sqlite_file names no file for them. SQLite only: PostgreSQL has no in-memory database."""

from __future__ import annotations

from pathlib import Path

import pytest

from publishing.db import make_engine, sqlite_file

# ids not starting "sqlite": conftest counts test ids with "[sqlite" as the backend's tests
MEMORY_URLS = {
    "bare": "sqlite://",
    "memory": "sqlite:///:memory:",
    "driver": "sqlite+pysqlite:///:memory:",
    "uri": "sqlite:///file::memory:?uri=true",
    "uri-named": "sqlite:///file:scratch?mode=memory&cache=shared&uri=true",
    # SQLAlchemy's own reading: mode=memory makes any of these a memory database
    "mode-no-uri": "sqlite:///file:x?mode=memory",
    "mode-plain-name": "sqlite:///x.db?mode=memory&uri=true",
}


@pytest.mark.parametrize("url", MEMORY_URLS.values(), ids=MEMORY_URLS.keys())
def test_make_engine_refuses_an_in_memory_database_saying_why(url):
    assert sqlite_file(url) is None
    with pytest.raises(ValueError, match="内存数据库，不受支持") as refused:
        make_engine(url)
    message = str(refused.value)
    assert url in message and "请使用数据库文件" in message


def test_sqlite_file_names_the_file_of_a_file_url_only(tmp_path):
    # a URI filename in mode=memory is no file (it was taken for the file "scratch")
    assert sqlite_file("sqlite:///file:scratch?mode=memory&uri=true") is None
    assert sqlite_file(f"sqlite:///{tmp_path}/a.db") == tmp_path / "a.db"
    assert sqlite_file(f"sqlite:///file:{tmp_path}/b.db?mode=ro&uri=true") == tmp_path / "b.db"
    assert sqlite_file("sqlite:///relative.db") == Path("relative.db")
    assert sqlite_file("postgresql+psycopg://postgres@127.0.0.1:5432/x") is None
    # a file URL still makes a working engine (and the file's directory)
    engine = make_engine(f"sqlite:///{tmp_path}/new/c.db")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()
    assert (tmp_path / "new" / "c.db").exists()


def test_cli_refuses_memory_database_in_one_line(monkeypatch, capsys) -> None:
    """Any verb given an in-memory URL ends with one line and the database exit code."""
    from portal import cli
    from publishing.settings import get_settings

    monkeypatch.setenv("DISCLOSURE_DATABASE_URL", "sqlite://")
    get_settings.cache_clear()
    try:
        code = cli.main(["expire"])
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert code == cli.EXIT_DATABASE
    assert err.startswith("错误：数据库地址 sqlite:// 是 SQLite 内存数据库") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
