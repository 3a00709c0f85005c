"""The embedded search index when things go wrong: a `disclosure reindex` killed right after
its swap (the sync cursors commit with the swap, so the next sync brings the index up to date),
and a corrupted index (searches answer as when Meilisearch is down, readiness says so)."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

from sqlalchemy import text

from publishing.publish import publish
from publishing.search.documents import iter_all_docs
from publishing.search.embedded import EmbeddedSearch
from publishing.search.sync import sync
from tests.factories import penalty_row, write_csv

TODAY = date(2026, 11, 27)
ROOT = Path(__file__).resolve().parent.parent

# `disclosure reindex` in a process of its own: once the rebuild has read the documents, a
# publish of withdrawals commits and its sync applies them to the index being replaced (moving
# the cursor on); the process is killed with SIGKILL at the first statement after the swap
# committed (dropping the old tables), as by kill -9 during its final checkpoint.
REINDEX_KILLED_AFTER_SWAP = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import date
    from pathlib import Path
    from sqlalchemy import event
    from publishing.db import make_engine
    from publishing.publish import publish
    from publishing.search import documents
    from publishing.search.embedded import EmbeddedSearch
    from publishing.search.sync import reindex, sync

    engine = make_engine(sys.argv[1])
    index = EmbeddedSearch(engine)
    read_all = documents.iter_all_docs

    def published_meanwhile(engine_):
        yield from read_all(engine_)
        # every document read: what commits now is missing from the new tables
        publish([Path(sys.argv[2])], engine=engine, today=date(2026, 11, 27), show_progress=False)
        assert sync(engine, index) > 0

    documents.iter_all_docs = published_meanwhile
    swapped = False

    @event.listens_for(engine, "before_cursor_execute")
    def kill_after_swap(conn, cursor, statement, *args):
        global swapped
        if statement.startswith("ALTER TABLE search_docs_new RENAME"):
            swapped = True
        elif swapped and statement.startswith("DROP TABLE IF EXISTS search_docs_old"):
            os.kill(os.getpid(), signal.SIGKILL)

    reindex(engine, index)
    """
)


def _publish(engine, path: Path) -> None:
    result = publish([path], engine=engine, today=TODAY, show_progress=False)
    assert result.published, result.as_json()


def _database_ids(engine) -> set[str]:
    return {doc["id"] for doc in iter_all_docs(engine)}


def test_reindex_killed_after_its_swap_leaves_the_index_for_the_next_sync(
    engine, database_url, tmp_path
):
    index = EmbeddedSearch(engine)
    index.rebuild([])
    _publish(engine, write_csv(tmp_path / "a.csv", [penalty_row(n) for n in (1, 2, 3)]))
    assert sync(engine, index) > 0
    header = [*penalty_row(1), "操作"]
    withdrawals = write_csv(
        tmp_path / "w.csv", [penalty_row(n, 操作="撤销") for n in (2, 3)], header=header
    )
    before = set(index.dump())

    script = tmp_path / "reindex_killed.py"
    script.write_text(REINDEX_KILLED_AFTER_SWAP, encoding="utf-8")
    child = subprocess.run(
        [sys.executable, str(script), database_url, str(withdrawals)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    with engine.connect() as conn:  # the rebuilt index is live: its old tables never dropped
        assert conn.execute(text("SELECT count(*) FROM search_docs_old")).scalar_one() >= 0
    withdrawn = before - _database_ids(engine)
    assert len(withdrawn) == 4  # the two records, and their entities (they had no other)
    # the rebuild read the documents before the withdrawals committed: it holds them again
    assert withdrawn <= set(index.dump())

    sync(engine, index)  # the worker's next round
    assert set(index.dump()) == _database_ids(engine)


UNAVAILABLE = "搜索暂时不可用，请稍后再试。"


def _break_index(engine) -> None:
    """What a damaged disk or an interrupted copy leaves: SQLite loses the FTS index's leaves
    (a search reads "database disk image is malformed"); PostgreSQL, short of corrupting pages,
    loses the index's table."""
    sql = (
        "DELETE FROM search_fts_data WHERE id > 10"
        if engine.dialect.name == "sqlite"
        else "ALTER TABLE search_docs RENAME TO search_docs_lost"
    )
    with engine.begin() as conn:
        conn.execute(text(sql))


def test_a_broken_index_answers_as_an_unavailable_search_and_fails_readiness(
    engine, tmp_path, caplog
):
    from litestar.testing import TestClient

    from portal.app import create_app
    from publishing.search.sync import reindex
    from tests.factories import uscc

    rows = [penalty_row(n, 当事人名称=f"烟台东山{n}号商店") for n in range(1, 30)]
    _publish(engine, write_csv(tmp_path / "p.csv", rows))
    reindex(engine)
    with TestClient(app=create_app(engine)) as client:
        # (the app's logging configuration replaced the root handlers, caplog's too)
        logging.getLogger("publishing.search.embedded").addHandler(caplog.handler)
        assert client.get("/api/v1/search", params={"q": "东山"}).json()["total"] > 0
        assert client.get("/healthz/ready").json()["search"]["status"] == "ok"
        _break_index(engine)
        try:
            page = client.get("/search", params={"q": "东山"})
            assert page.status_code == 503 and page.headers["retry-after"] == "30"
            assert UNAVAILABLE in page.text
            api = client.get("/api/v1/search", params={"q": "东山"})
            assert api.status_code == 503 and api.json()["detail"] == UNAVAILABLE
            # an exact code still answers, from the database
            data = client.get("/api/v1/search", params={"q": uscc(1)}).json()
            assert data["search_unavailable"]
            assert data["exact_match"]["url"] == f"/entities/{uscc(1)}"
            html = client.get("/search", params={"q": uscc(1)})
            assert html.status_code == 200 and f'href="/entities/{uscc(1)}"' in html.text
            assert "disclosure reindex" in caplog.text  # what the operator is told to do
            ready = client.get("/healthz/ready")
            assert ready.status_code == 200 and ready.json()["status"] == "degraded"
            assert ready.json()["search"]["status"] == "unreachable"
            assert client.get("/healthz/ready?strict=1").status_code == 503
        finally:
            logging.getLogger("publishing.search.embedded").removeHandler(caplog.handler)
            reindex(engine)  # the remedy the log names (and PostgreSQL's shared database back)
        assert client.get("/api/v1/search", params={"q": "东山"}).json()["total"] > 0
        assert client.get("/healthz/ready").json()["status"] == "ok"
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE search_docs_lost"))
