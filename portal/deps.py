"""Request dependencies (Provide): a read connection per request, the search backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar.concurrency import sync_to_thread
from litestar.datastructures import State
from sqlalchemy import Connection, Engine


async def provide_conn(state: State) -> AsyncIterator[Connection]:
    """A pooled connection for this request, returned to the pool after the response.

    Checkout (PostgreSQL's pre-ping) and return (its rollback) do I/O, so both run in a worker
    thread like the sync handlers that use the connection; the event loop never blocks on the DB."""
    engine: Engine = state.engine
    conn = await sync_to_thread(engine.connect)
    try:
        yield conn
    finally:
        await sync_to_thread(conn.close)


def provide_search(state: State) -> Any:
    """The search backend (publishing.search), built on first use and kept for the app."""
    backend = state.get("search_backend")
    if backend is None:
        from publishing.search import get_backend

        backend = state.search_backend = get_backend(state.engine)
    return backend
