"""API hygiene: CORS, rate limits (in-process and shared through a real Redis), API keys, and
schemathesis over the OpenAPI schema at /schema (no 5xx, responses conform to the schema)."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from litestar.testing import TestClient
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from portal.app import create_app
from portal.ratelimit import (
    Limit,
    MemoryLimiter,
    RateLimitConfig,
    RateLimiter,
    RedisLimiter,
    decide,
)
from publishing import apikeys
from publishing.settings import get_settings
from tests.api_helpers import GENEROUS, api_client, publish_csv
from tests.factories import blacklist_row, credit_mark_row, penalty_row, uscc

REDIS_URL = "redis://127.0.0.1:6379/15"
TIGHT = RateLimitConfig(api=Limit(3, 60), bulk=Limit(5, 60), key_factor=10)


@pytest.fixture
def data(engine, tmp_path):
    publish_csv(engine, tmp_path, "p.csv", [penalty_row(i) for i in range(1, 4)])
    publish_csv(engine, tmp_path, "b.csv", [blacklist_row(1)])
    publish_csv(
        engine, tmp_path, "c.csv", [credit_mark_row(2, 标注类型="严重违法失信名单", 分类结果="")]
    )
    return engine


# -- CORS -----------------------------------------------------------------------------------


def test_cors_on_the_open_surface_only(data):
    with api_client(data) as client:
        for url in (
            "/api/v1/changes",
            "/api/v1/open-data",
            f"/api/v1/credit-check?uscc={uscc(1)}",
            "/open-data/penalty.csv",
            "/open-data/catalog.jsonld",
            "/feeds/penalty.atom",
            f"/entities/{uscc(1)}/feed.atom",
        ):
            r = client.get(url)
            assert r.status_code == 200, url
            assert r.headers["access-control-allow-origin"] == "*", url
            assert "RateLimit-Remaining" in r.headers["access-control-expose-headers"]
        assert (
            client.head("/open-data/penalty.ndjson").headers["access-control-allow-origin"] == "*"
        )
        assert "access-control-allow-origin" not in client.get("/penalties").headers
        pre = client.options(
            "/api/v1/credit-check",
            headers={
                "Origin": "https://example.org",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == "*"
        assert "POST" in pre.headers["access-control-allow-methods"]
        assert "X-API-Key" in pre.headers["access-control-allow-headers"]
        pre = client.options(
            "/api/v1/changes",
            headers={"Origin": "https://example.org", "Access-Control-Request-Method": "GET"},
        )
        assert pre.status_code == 204 and pre.headers["access-control-allow-methods"] == "GET, HEAD"


# -- rate limits ----------------------------------------------------------------------------


def _early_in_the_minute() -> None:
    """The counters' windows follow the clock (60 s): a test that counts exact remainders
    starts early in a window, so that no window ends while it runs (the previous window's
    weight then takes one off the count, and the exact figures no longer hold)."""
    if (into := time.time() % 60) > 45:
        time.sleep(60.2 - into)


def _hammer(client: TestClient, url: str, n: int, **kw) -> list:
    return [client.get(url, **kw) for _ in range(n)]


def _assert_limited(responses, limit: int) -> None:
    ok, refused = responses[:limit], responses[limit:]
    assert [r.status_code for r in ok] == [200] * limit
    assert [int(r.headers["ratelimit-remaining"]) for r in ok] == list(range(limit - 1, -1, -1))
    assert all(r.headers["ratelimit-limit"] == str(limit) for r in ok)
    for r in refused:
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 120
        assert r.headers["ratelimit-remaining"] == "0"
        assert r.headers["access-control-allow-origin"] == "*"
        assert "请求过于频繁" in r.json()["detail"]


def test_rate_limit_in_process(data):
    _early_in_the_minute()
    with api_client(data, limits=TIGHT) as client:
        assert isinstance(client.app.state.rate_limiter, MemoryLimiter)
        _assert_limited(_hammer(client, "/api/v1/changes", 5), 3)
        # the classes count apart; downloads and feeds get the gentler limit
        _assert_limited(_hammer(client, "/open-data/catalog.jsonld", 7), 5)
        # pages are not limited
        assert {r.status_code for r in _hammer(client, "/penalties", 8)} == {200}
        assert "ratelimit-limit" not in client.get("/penalties").headers


def test_an_api_key_raises_the_limit(data):
    _early_in_the_minute()
    key = apikeys.create_key(data, "烟台市发展和改革委员会")
    own = apikeys.create_key(data, "信用中国(山东)", per_minute=7)
    with api_client(data, limits=TIGHT) as client:
        responses = _hammer(client, "/api/v1/changes", 12, headers={"X-API-Key": key})
        assert [r.status_code for r in responses] == [200] * 12  # 10 × 3 allowed
        assert [int(r.headers["ratelimit-remaining"]) for r in responses] == list(range(29, 17, -1))
        assert {r.headers["ratelimit-limit"] for r in responses} == {"30"}
        _assert_limited(_hammer(client, "/api/v1/changes", 9, headers={"X-API-Key": own}), 7)
        _assert_limited(_hammer(client, "/api/v1/changes", 4), 3)  # anonymous: its own count
        bad = client.get("/api/v1/changes", headers={"X-API-Key": "dk_not-a-key"})
        assert bad.status_code == 429  # a bad key counts against the address, over its limit
        apikeys.revoke(data, "烟台市发展和改革委员会")
        client.app.state.api_key_cache.entries.clear()
        client.app.state.rate_limiter = MemoryLimiter()  # a new minute for the address
        revoked = client.get("/api/v1/changes", headers={"X-API-Key": key})
        assert revoked.status_code == 401 and "X-API-Key" in revoked.json()["detail"]


def test_a_burst_with_a_key_the_cache_does_not_know_yet_is_not_limited(data):
    """A forwarding system's burst right after a restart: the requests that arrive while its
    key is being looked up wait for that lookup instead of each counting as a new one against
    the address's limit (which answered most of them 429, as if they had no key)."""
    key = apikeys.create_key(data, "烟台市行政审批服务局")
    app = create_app(data)
    app.state.rate_limits = TIGHT  # 3 lookups a minute per address; 30 requests with a key

    async def burst() -> list:
        # httpx's ASGI transport runs the requests concurrently in this loop (the test
        # clients hand the app one request at a time)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            get = client.get
            return await asyncio.gather(
                *(get("/api/v1/changes", headers={"X-API-Key": key}) for _ in range(12))
            )

    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * 12
    assert {r.headers["ratelimit-limit"] for r in responses} == {"30"}


@pytest.fixture
def redis_url(monkeypatch):
    """The real Redis (database 15). Fails, never skips, when it is not running."""
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    prefix = f"disclosure-test:{uuid.uuid4().hex}:"
    monkeypatch.setenv("DISCLOSURE_REDIS_URL", REDIS_URL)
    get_settings.cache_clear()
    yield prefix
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()
    get_settings.cache_clear()


def test_rate_limit_shared_through_redis(data, redis_url):
    _early_in_the_minute()
    apps = []
    for _ in range(2):  # two portal processes
        app = create_app(data)
        app.state.rate_limits = TIGHT
        assert isinstance(app.state.rate_limiter, RedisLimiter)
        app.state.rate_limiter.prefix = redis_url
        apps.append(app)
    with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        first = _hammer(one, "/api/v1/changes", 2)
        second = _hammer(two, "/api/v1/changes", 3)
        _assert_limited(first + second, 3)
        assert apps[0].state.rate_limiter._down_until == 0  # Redis answered every time
        assert apps[1].state.rate_limiter._down_until == 0
    keys = list(redis.Redis.from_url(REDIS_URL).scan_iter(match=redis_url + "*"))
    assert keys and all(b"api:ip:" in k for k in keys)


def test_redis_outage_falls_back_to_in_process_counters():
    limiter = RedisLimiter("redis://127.0.0.1:1/0")  # nothing listens there
    limit = Limit(2, 60)

    async def run():
        return [await limiter.hit("api:ip:x", limit, now=1000.0) for _ in range(3)]

    decisions = asyncio.run(run())
    assert [d.allowed for d in decisions] == [True, True, False]
    assert limiter._down_until > 0


def test_retry_after_is_when_a_request_gets_through_again():
    limit = Limit(10, 60)
    for spread in (0.0, 30.0, 59.0):  # requests bunched at the start, middle or end of a window
        limiter = MemoryLimiter()
        t = 6000.0 + spread

        async def until_refused(now, lim=limiter):
            d = await lim.hit("k", limit, now=now)
            while d.allowed:
                d = await lim.hit("k", limit, now=now)
            return d

        refused = asyncio.run(until_refused(t))
        assert refused.retry_after >= 1
        later = asyncio.run(limiter.hit("k", limit, now=t + refused.retry_after))
        assert later.allowed, (spread, refused)
        if refused.retry_after > 1:  # and not much before
            early = asyncio.run(limiter.hit("k", limit, now=t + refused.retry_after - 1.5))
            assert not early.allowed, (spread, refused)
    assert decide(3, 0, limit, 6000.0, counted=True).remaining == 7
    assert isinstance(MemoryLimiter(), RateLimiter)


# -- schemathesis ---------------------------------------------------------------------------


def _reads(ctx) -> bool:
    """Every GET operation, and the credit check's POST (it reads too)."""
    op = ctx.operation
    return op.method.upper() == "GET" or (
        op.method.upper() == "POST" and op.path == "/api/v1/credit-check"
    )


def test_openapi_conformance(data):
    """Each operation: 25 generated requests, valid and invalid; no 5xx, responses as declared.

    schemathesis' pytest plugin does not run under pytest 9, so its Python API drives
    Hypothesis directly here."""
    app = create_app(data)
    app.state.rate_limits = GENEROUS
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app).include(_reads)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {
        "GET /api/v1/changes",
        "GET /api/v1/credit-check",
        "POST /api/v1/credit-check",
        "GET /api/v1/open-data",
        "GET /open-data/{filename}",
        "GET /open-data/index.json",
        "GET /open-data/catalog.jsonld",
    }
    failures = {}
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=op.as_strategy(generation_mode=mode))
            @settings(
                max_examples=25,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def check(case):
                case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

            try:
                check()
            except Unsatisfiable:
                pass  # nothing to make invalid (no parameters, or only a path segment)
            except Exception as err:  # noqa: BLE001 - collect them all, then report
                failures[f"{op.label} ({mode.value})"] = str(err)[:2000]
    assert not failures, "\n\n".join(f"{k}: {v}" for k, v in failures.items())
