"""SQLite file locks (locks.held: the search rebuild, the worker's leadership) lie next to the
database also when the URL is a URI filename; the lock path was made of the URL's `file:…`
text, a folder named "file:" that does not exist."""

from __future__ import annotations

from publishing import locks
from publishing.db import make_engine


def test_lock_beside_uri_filename_database(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # a relative "file:" folder would be looked for here
    engine = make_engine(f"sqlite:///file:{tmp_path}/data/d.db?uri=true")
    try:
        with locks.held(engine, 1, "search-rebuild", wait=False) as got:
            assert got
            assert (tmp_path / "data" / "d.search-rebuild.lock").exists()
    finally:
        engine.dispose()
    assert not (tmp_path / "file:").exists()
