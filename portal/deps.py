"""Request dependencies (Provide): a read connection per request, the search backend."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.concurrency import sync_to_thread
from litestar.datastructures import State
from sqlalchemy import Connection, Engine

from publishing.db import connection_limit

_HOLDER = "request_connection"  # the key of a request's RequestConnection in request.state
_BUILDING = threading.Lock()


class RequestConnection:
    """A request's one pooled connection: checked out when first needed, returned to the pool
    after the response.

    open() (on the event loop) queues for a slot (without a thread) before it checks out, and
    checks out and returns in a worker thread (PostgreSQL's pre-ping, its rollback): the event
    loop never blocks on the database. At most half the pool is held this way, so one that
    needs a second connection gets it, and a checkout never waits. Without the slots, 24
    concurrent searches stopped a worker: its 40 threads all waited in checkouts for
    connections held by requests that waited for a thread.

    get() (in a handler's worker thread) returns that connection or checks one out there,
    without a slot: for a handler that needs the database only after a remote search (a slow
    Meilisearch must not hold connections while it makes requests wait), and briefly. It
    cannot deadlock the slots' way: it holds a thread already, and requests with slots hold
    half the pool at most."""

    def __init__(self, engine: Engine, slots: asyncio.Semaphore):
        self._engine = engine
        self._slots = slots
        self._conn: Connection | None = None
        self._slot = False
        self._lock = asyncio.Lock()

    async def open(self) -> Connection:
        async with self._lock:
            if self._conn is None:
                await self._slots.acquire()
                self._slot = True
                self._conn = await sync_to_thread(self._engine.connect)
            return self._conn

    def get(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect()
        return self._conn

    async def close(self) -> None:
        async with self._lock:
            conn, self._conn = self._conn, None
            try:
                if conn is not None:
                    await sync_to_thread(conn.close)
            finally:
                if self._slot:
                    self._slot = False
                    self._slots.release()


def request_connection(state: State, request: Request) -> RequestConnection:
    """The request's RequestConnection (one per request, shared by its dependencies)."""
    holder = request.state.get(_HOLDER)
    if holder is None:
        holder = RequestConnection(state.engine, state.connection_slots)
        request.state[_HOLDER] = holder
    return holder


def connection(request: Request) -> Connection:
    """The request's connection, from a sync handler's worker thread: for a handler that asks
    for `search_backend` (which provides it) instead of `conn`, and reads the database after
    searching."""
    holder: RequestConnection | None = request.state.get(_HOLDER)
    if holder is None:
        raise RuntimeError("connection(request) needs the search_backend dependency")
    return holder.get()


async def provide_conn(state: State, request: Request) -> AsyncIterator[Connection]:
    """A pooled connection for this request (RequestConnection.open), returned to the pool
    after the response."""
    holder = request_connection(state, request)
    try:
        yield await holder.open()
    finally:
        await holder.close()


def connection_slots(engine: Engine) -> asyncio.Semaphore:
    return asyncio.Semaphore(max(1, connection_limit(engine) // 2))


def search_backend(state: State) -> Any:
    """The app's search backend (publishing.search), built on first use and kept: one per
    app, also when the first requests come at once (Meilisearch's circuit breaker is the
    backend's, and would not open for requests that each built their own)."""
    with _BUILDING:
        backend = state.get("search_backend")
        if backend is None:
            from publishing.search import get_backend

            backend = state.search_backend = get_backend(state.engine)
    return backend


async def provide_search(state: State, request: Request) -> AsyncIterator[Any]:
    """The search backend. The embedded one searches on the request's connection (the same
    one as `conn`: a request holds one pooled connection at most; when each of a pool's worth
    of concurrent searches held one and waited for a second, the worker stopped answering,
    wrk, 60 connections: 0 requests in 20 s). Meilisearch needs none: a request that asks for
    `search_backend` and not `conn` holds no connection while it waits for Meilisearch, and
    takes one afterwards if it needs one (connection(request))."""
    backend = state.get("search_backend") or await sync_to_thread(search_backend, state)
    bound = getattr(backend, "bound", None)
    holder = request_connection(state, request)
    try:
        yield bound(await holder.open()) if bound is not None else backend
    finally:
        await holder.close()
