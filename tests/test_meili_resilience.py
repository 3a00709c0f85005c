"""Meilisearch that does not answer: searches fail fast (SearchUnavailable), indexing waits.

A hung server is a real socket in this process that accepts connections and never replies; a
refusing one is a localhost port nobody listens on. Searches have short timeouts, are not
retried after a timeout, and a circuit breaker makes them fail at once after a few failures;
writes keep their long timeouts and retries. A portal worker pointed at a hung server answers
its searches with 503 within seconds and its other pages meanwhile (they used to wait a
minute: every search held a pooled connection for 30–60 s).
"""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import httpx
import pytest

from publishing.publish import publish
from publishing.search import meili as meili_mod
from publishing.search.base import SearchQuery, SearchUnavailable
from publishing.search.meili import CircuitBreaker, MeiliSearch
from tests import test_search_meili as meili_suite
from tests.factories import penalty_row, uscc, write_csv
from tests.servers import free_port, portal_server

# tests/test_search_meili.py's fixtures: the fake server (or a live one), and its backends
meili = meili_suite.meili
fake = meili_suite.fake
_backend = meili_suite._backend

CONCURRENT = 12


class HungServer:
    """Accepts connections, reads what comes, never answers; counts the connections."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._conns.append(conn)  # kept open, never answered

    def close(self) -> None:
        self._stop.set()
        for conn in self._conns:
            conn.close()
        self.sock.close()


@pytest.fixture
def hung():
    server = HungServer()
    yield server
    server.close()


def _search(backend: MeiliSearch, q: str = "好运来") -> None:
    backend.search(SearchQuery(q=q))


def _timed(fn, *args) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        fn(*args)
    except BaseException as err:  # noqa: BLE001 - returned for the test to look at
        return time.monotonic() - started, err
    return time.monotonic() - started, None


def test_a_search_on_a_hung_server_times_out_once_then_fails_at_once(hung):
    backend = MeiliSearch(hung.url, None, "x")  # the portal's defaults
    took, err = _timed(_search, backend)
    assert isinstance(err, SearchUnavailable)
    assert meili_mod.SEARCH_TIMEOUT[1] <= took < meili_mod.SEARCH_TIMEOUT[1] + 1.0
    assert hung.accepted == 1  # a timed-out search is not retried
    for _ in range(meili_mod.BREAKER_FAILURES - 1):
        assert isinstance(_timed(_search, backend)[1], SearchUnavailable)
    # the breaker is open: no request, no wait
    took, err = _timed(_search, backend)
    assert isinstance(err, SearchUnavailable) and took < 0.2
    assert hung.accepted == meili_mod.BREAKER_FAILURES


def test_concurrent_searches_on_a_hung_server_all_fail_within_the_timeout(hung):
    backend = MeiliSearch(hung.url, None, "x")
    started = time.monotonic()
    with ThreadPoolExecutor(CONCURRENT) as pool:
        results = list(pool.map(lambda _: _timed(_search, backend), range(CONCURRENT)))
    assert all(isinstance(err, SearchUnavailable) for _, err in results)
    assert time.monotonic() - started < meili_mod.SEARCH_TIMEOUT[1] + 1.5


def test_a_search_on_a_refusing_server_is_unavailable_quickly():
    backend = MeiliSearch(f"http://127.0.0.1:{free_port()}", None, "x", backoff=0.01)
    took, err = _timed(_search, backend)
    assert isinstance(err, SearchUnavailable) and took < 1.0
    assert not backend.ping()


def test_the_breaker_lets_one_search_try_after_its_cooldown():
    breaker = CircuitBreaker(failures=2, cooldown=0.2)
    breaker.enter()
    breaker.failed()
    breaker.enter()  # one failure: still closed
    breaker.failed()
    with pytest.raises(SearchUnavailable):
        breaker.enter()
    time.sleep(0.25)
    breaker.enter()  # this one tries …
    with pytest.raises(SearchUnavailable):
        breaker.enter()  # … the others still fail at once
    breaker.failed()
    with pytest.raises(SearchUnavailable):
        breaker.enter()
    time.sleep(0.25)
    breaker.enter()
    breaker.succeeded()
    breaker.enter()
    breaker.enter()  # closed again


def test_searches_fail_fast_while_writes_wait_and_retry(fake, meili, engine, tmp_path):
    """On the fake: a slow reply times a search out (once, no retry) and opens the breaker
    after repeated failures; a write waits for a slow reply and is retried after a 503."""
    backend = _backend(meili, search_timeout=(1.0, 0.3), breaker=CircuitBreaker(2, 0.3))
    try:
        backend.upsert([])
        fake.fail(1, delay=0.6, path="^indexes/[^/]+/documents$")  # slower than a search may be
        fake.fail(1, status=503, path="^indexes/[^/]+/documents$")
        backend.upsert([_doc(1)])
        assert backend.count() == 1
        assert backend.search(SearchQuery(q="好运来")).total == 1  # (the fake's word index)
        before = len(fake.paths("POST"))
        fake.fail(2, delay=0.6, path="^multi-search$")
        for _ in range(2):
            with pytest.raises(SearchUnavailable):
                backend.search(SearchQuery(q="好运来"))
        with pytest.raises(SearchUnavailable):  # open: not even sent
            backend.search(SearchQuery(q="好运来"))
        assert fake.paths("POST")[before:].count("multi-search") == 2
        time.sleep(0.35)
        assert backend.search(SearchQuery(q="好运来")).total == 1  # tried again, and closed
    finally:
        fake.clear_failures()
        backend.drop()


def _doc(n: int) -> dict:
    return {
        "id": f"E{n}",
        "type": "entity",
        "title": "烟台好运来超市",
        "url": f"/entities/E{n}",
        "date": "2026-06-01",
        "status": "active",
        "names": ["烟台好运来超市"],
        "text": [],
        "data": {},
    }


# -- a portal worker -------------------------------------------------------------------------


def _portal_env(engine, tmp_path, meili_url: str) -> dict[str, str]:
    f = write_csv(tmp_path / "p.csv", [penalty_row(i) for i in range(1, 4)])
    assert publish([f], engine=engine, today=date(2026, 11, 27), show_progress=False).published
    return {
        "DISCLOSURE_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "DISCLOSURE_DATA_DIR": str(tmp_path),
        "DISCLOSURE_MEILI_URL": meili_url,
    }


def test_a_portal_on_a_hung_meilisearch_answers_503_and_serves_its_other_pages(
    engine, tmp_path, hung
):
    env = _portal_env(engine, tmp_path, hung.url)
    with (
        portal_server(env, access_log=False) as (base, _),
        httpx.Client(
            base_url=base, timeout=30, limits=httpx.Limits(max_connections=CONCURRENT + 2)
        ) as client,
        ThreadPoolExecutor(CONCURRENT + 1) as pool,
    ):
        searches = [pool.submit(_get, client, f"/search?q=a{i}") for i in range(CONCURRENT)]
        time.sleep(0.3)  # the searches wait for Meilisearch now
        page = pool.submit(_get, client, f"/entities/{uscc(1)}").result()
        answered = [s.result() for s in searches]
        # The worker's few threads (6 on 2 cores) are all taken by searches for one timeout;
        # a search that starts before the breaker opens takes a second one. It used to be a
        # minute (10 s timeouts, retried, for every search).
        wait = meili_mod.SEARCH_TIMEOUT[1]
        assert page[0] == 200 and page[1] < 2 * wait, page
        assert {status for status, _ in answered} == {503}, answered
        assert max(took for _, took in answered) < 2 * wait + 1.5, answered
        status, took = _get(client, "/search?q=b")  # the breaker is open now
        assert status == 503 and took < 0.5


def test_a_portal_on_a_refusing_meilisearch_answers_503(engine, tmp_path):
    env = _portal_env(engine, tmp_path, f"http://127.0.0.1:{free_port()}")
    with (
        portal_server(env, access_log=False) as (base, _),
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        status, took = _get(client, "/api/v1/search?q=a")
        assert status == 503 and took < 1.5
        assert _get(client, f"/entities/{uscc(1)}")[0] == 200


def _get(client: httpx.Client, path: str) -> tuple[int, float]:
    started = time.monotonic()
    status = client.get(path).status_code
    return status, time.monotonic() - started
