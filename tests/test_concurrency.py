"""A real portal worker under a burst of concurrent requests, on SQLite and PostgreSQL.

Requests used to check out a pooled connection in a worker thread before they had a thread
to run in: past ~20 concurrent searches every thread waited for a connection held by a
request that waited for a thread, and the worker answered nothing until the pool timed out
(30 s). Now requests queue for a slot first, and a search uses its request's connection."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date

import httpx

from publishing.publish import publish
from publishing.search.embedded import EmbeddedSearch
from publishing.search.sync import sync
from tests.factories import penalty_row, write_csv
from tests.servers import portal_server

BURST = 120
CLIENTS = 60


def test_a_burst_of_concurrent_searches_and_pages_is_answered(engine, tmp_path):
    f = write_csv(tmp_path / "p.csv", [penalty_row(i) for i in range(1, 31)])
    assert publish([f], engine=engine, today=date(2026, 11, 27), show_progress=False).published
    sync(engine, EmbeddedSearch(engine))
    url = engine.url.render_as_string(hide_password=False)
    env = {"DISCLOSURE_DATABASE_URL": url, "DISCLOSURE_DATA_DIR": str(tmp_path)}
    paths = ["/search?q=烟台", "/api/v1/search?q=有限公司", "/penalties", "/"]
    with portal_server(env, access_log=False) as (base, _), httpx.Client(
        base_url=base, timeout=20, limits=httpx.Limits(max_connections=CLIENTS)
    ) as client, ThreadPoolExecutor(CLIENTS) as pool:
        statuses = list(pool.map(lambda i: client.get(paths[i % len(paths)]).status_code,
                                 range(BURST)))
    # a 429 would be the rate limit doing its job; anything else (or a timeout) is the bug
    assert set(statuses) <= {200, 429} and statuses.count(200) >= BURST // 2, statuses
