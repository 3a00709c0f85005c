"""portal.deps with a remote search backend: a handler that asks for `search_backend` and not
`conn` holds no pooled connection while Meilisearch makes it wait, and gets one afterwards
(connection(request)); with the embedded backend a request still holds one connection, shared
by `conn` and the search. A small app on portal.deps' providers, a real database, and a real
socket that never answers."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from litestar import Litestar, Request, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from sqlalchemy import Connection, text

from portal.deps import connection, provide_conn, provide_search
from publishing.search.base import SearchQuery, SearchUnavailable
from publishing.search.embedded import EmbeddedSearch
from publishing.search.meili import MeiliSearch
from tests.test_meili_resilience import hung  # noqa: F401 - fixture


@get("/remote", sync_to_thread=True)
def remote(request: Request, search_backend: NamedDependency[Any]) -> dict[str, Any]:
    try:
        search_backend.search(SearchQuery(q="好运来"))
        searched = "ok"
    except SearchUnavailable:
        searched = "unavailable"
    return {"searched": searched, "one": connection(request).execute(text("SELECT 1")).scalar()}


@get("/page", sync_to_thread=True)
def page(conn: NamedDependency[Connection]) -> int:
    return conn.execute(text("SELECT 1")).scalar()


@get("/both", sync_to_thread=True)
def both(
    request: Request, conn: NamedDependency[Connection], search_backend: NamedDependency[Any]
) -> dict[str, bool]:
    return {
        "shared": search_backend._conn is conn,
        "same": connection(request) is conn,
        "found": search_backend.search(SearchQuery(q="好运来")).total == 0,
    }


def _app(engine, backend) -> tuple[Litestar, asyncio.Semaphore]:
    slots = asyncio.Semaphore(1)  # one request at a time may hold a pooled connection
    state = State({"engine": engine, "connection_slots": slots, "search_backend": backend})
    app = Litestar(
        [remote, page, both],
        dependencies={"conn": Provide(provide_conn), "search_backend": Provide(provide_search)},
        state=state,
    )
    return app, slots


async def _timed(client: httpx.AsyncClient, path: str) -> tuple[float, Any]:
    started = time.monotonic()
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return time.monotonic() - started, response.json()


def test_a_remote_search_holds_no_connection_while_it_waits(engine, hung):  # noqa: F811
    backend = MeiliSearch(hung.url, None, "x", search_timeout=(0.5, 1.0))
    app, slots = _app(engine, backend)

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            searching = asyncio.create_task(_timed(client, "/remote"))
            await asyncio.sleep(0.2)  # the search waits for Meilisearch now
            took, one = await _timed(client, "/page")
            assert one == 1 and took < 0.5  # the only slot was free
            took, body = await searching
            assert body == {"searched": "unavailable", "one": 1} and took >= 1.0
        assert not slots.locked()  # every connection went back

    asyncio.run(scenario())


def test_the_embedded_search_uses_the_requests_one_connection(engine):
    app, slots = _app(engine, EmbeddedSearch(engine))

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            took, body = await asyncio.wait_for(_timed(client, "/both"), 10)
            assert body == {"shared": True, "same": True, "found": True}
        assert not slots.locked()

    asyncio.run(scenario())
