"""/search, /api/v1/search and /search/feed.atom on a slow Meilisearch hold no pooled database
connection while they wait for it, on SQLite and PostgreSQL: the portal runs on a pool of one
connection, and the fake Meilisearch withholds its answer to a search until the test, meanwhile,
has looked at the pool and been served another page (or HOLD seconds have passed). Before, each
waiting search held a connection (and its request slot), so a burst of them stalled every
other page: here the other page would wait for the search, and the search for the other page.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from datetime import date

import httpx
import pytest

from portal.app import create_app
from publishing import db
from publishing.publish import publish
from publishing.search.meili import MeiliSearch
from publishing.search.sync import reindex
from tests import test_search_meili as meili_suite
from tests.factories import penalty_row, uscc, write_csv

meili = meili_suite.meili
fake = meili_suite.fake
HOLD = 10.0  # seconds the fake Meilisearch waits at most for the other page to be served


@pytest.fixture
def portal(engine, database_url, backend, tmp_path, fake, meili, monkeypatch):
    """(the app on its own engine with a pool of one connection, that engine)."""
    rows = [penalty_row(n, 当事人名称=f"烟台东山{n}号商店") for n in (1, 2, 3)]
    result = publish(
        [write_csv(tmp_path / "p.csv", rows)],
        engine=engine,
        today=date(2026, 11, 27),
        show_progress=False,
    )
    assert result.published
    url, key, _ = meili
    search = MeiliSearch(url, key, f"pool_{uuid.uuid4().hex[:12]}", search_timeout=(1.0, 30.0))
    reindex(engine, search)
    monkeypatch.setitem(db.POOL, backend, (1, 0))
    small = db.make_engine(database_url)
    app = create_app(small)
    app.state.search_backend = search
    yield app, small
    small.dispose()
    search.drop()
    fake.clear_failures()


async def _get(client: httpx.AsyncClient, path: str) -> tuple[float, httpx.Response]:
    started = time.monotonic()
    response = await client.get(path)
    return time.monotonic() - started, response


def _while_waiting(app, fake, search_path: str, other_path: str) -> dict:
    """Ask for `search_path`; while the fake Meilisearch holds its answer, note the pool's
    checked-out connections and ask for `other_path`. seen["released"]: the answer was
    released by the other page being served (not by HOLD running out)."""
    seen: dict = {}
    arrived, served = threading.Event(), threading.Event()

    def during() -> None:  # in the fake's thread, while the portal waits for the answer
        seen["checked_out"] = app.state.engine.pool.checkedout()
        arrived.set()
        seen["released"] = served.wait(HOLD)

    fake.fail(1, path="^multi-search$", during=during)

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            searching = asyncio.create_task(_get(client, search_path))
            assert await asyncio.to_thread(arrived.wait, 10), "the search never reached Meilisearch"
            seen["other"] = await _get(client, other_path)
            served.set()
            seen["search"] = await searching
        seen["slots_free"] = not app.state.connection_slots.locked()

    asyncio.run(scenario())
    return seen


@pytest.mark.parametrize("path", ["/search", "/api/v1/search", "/search/feed.atom"])
def test_a_search_waiting_for_meilisearch_holds_no_connection(portal, fake, path):
    app, small = portal
    q = uscc(1) if path != "/search/feed.atom" else "东山"
    seen = _while_waiting(app, fake, f"{path}?q={q}", f"/entities/{uscc(2)}")
    assert seen["checked_out"] == 0  # one connection held per waiting search, before
    _, other = seen["other"]
    # served while the search waited: before, it waited for the search (which waited HOLD s)
    assert other.status_code == 200 and seen["released"]
    _, found = seen["search"]
    assert found.status_code == 200
    if path == "/api/v1/search":  # the exact code's profile, read after Meilisearch answered
        data = found.json()
        assert data["exact_match"]["url"] == f"/entities/{uscc(1)}"
        assert f"/entities/{uscc(1)}" in [h["url"] for h in data["hits"]]
    elif path == "/search":
        assert f'href="/entities/{uscc(1)}"' in found.text
    else:  # the feed's records, read after Meilisearch answered
        assert found.text.count("<entry>") == 3 and "烟台东山1号商店" in found.text
    assert seen["slots_free"] and small.pool.checkedout() == 0


def test_an_exact_code_answers_from_the_database_while_meilisearch_fails(portal, fake):
    app, small = portal
    checked_out: list[int] = []
    # every attempt of one search (it is retried twice on a 503)
    fake.fail(
        3,
        status=503,
        path="^multi-search$",
        during=lambda: checked_out.append(small.pool.checkedout()),
    )

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            code = await client.get("/api/v1/search", params={"q": uscc(1)})
            fake.fail(3, status=503, path="^multi-search$")
            words = await client.get("/api/v1/search", params={"q": "东山"})
            return code, words

    code, words = asyncio.run(scenario())
    assert checked_out == [0, 0, 0]
    data = code.json()
    assert code.status_code == 200 and data["search_unavailable"]
    assert data["exact_match"]["url"] == f"/entities/{uscc(1)}"
    assert words.status_code == 503 and words.headers["retry-after"] == "30"
    assert small.pool.checkedout() == 0
