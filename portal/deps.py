"""Request dependencies (Provide): a read connection per request, the search backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from litestar.concurrency import sync_to_thread
from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlalchemy import Connection, Engine

from publishing.db import connection_limit


async def provide_conn(state: State) -> AsyncIterator[Connection]:
    """A pooled connection for this request, returned to the pool after the response.

    Checkout (PostgreSQL's pre-ping) and return (its rollback) do I/O, so both run in a worker
    thread like the sync handlers that use the connection; the event loop never blocks on the DB.

    Requests queue for a slot (without a thread) before they check out: at most half the pool
    is held by requests, so one that needs a second connection gets it, and a checkout never
    waits. Without the slots, 24 concurrent searches stopped a worker: its 40 threads all
    waited in checkouts for connections held by requests that waited for a thread."""
    engine: Engine = state.engine
    async with state.connection_slots:
        conn = await sync_to_thread(engine.connect)
        try:
            yield conn
        finally:
            await sync_to_thread(conn.close)


def connection_slots(engine: Engine) -> asyncio.Semaphore:
    return asyncio.Semaphore(max(1, connection_limit(engine) // 2))


def provide_search(state: State, conn: NamedDependency[Connection]) -> Any:
    """The search backend (publishing.search), built on first use and kept for the app; the
    embedded one searches on the request's connection. A request holds one pooled connection
    at most: when each of a pool's worth of concurrent searches held one and waited for a
    second, the worker stopped answering (wrk, 60 connections: 0 requests in 20 s)."""
    backend = state.get("search_backend")
    if backend is None:
        from publishing.search import get_backend

        backend = state.search_backend = get_backend(state.engine)
    bound = getattr(backend, "bound", None)
    return bound(conn) if bound is not None else backend
