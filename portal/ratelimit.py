"""Rate limiting of the API (/api/) and, more gently, of feeds and open-data downloads.

Algorithm: a sliding-window counter per client and class — the count of the current fixed
window plus the previous window's count weighted by how much of it still overlaps the sliding
window. Requests that are refused are not counted, so a client that backs off as Retry-After
says gets through again.

Backends: with settings.redis_url (DISCLOSURE_REDIS_URL) the counters live in Redis, read and
incremented atomically by one Lua script (one round trip), so several portal processes share
them; otherwise in the process. If Redis fails, the process falls back to its own counters for a
few seconds and tries again (the API stays up; limits are then per process).

Clients are told their standing on every limited response (RateLimit-Limit, RateLimit-Remaining,
RateLimit-Reset, RateLimit-Policy) and, when refused, get 429 with Retry-After (seconds).

An API key (header X-API-Key, see publishing.apikeys) raises the limits: the key's own
requests-per-minute when it has one (for feeds and downloads never less than the default for
keys), otherwise `key_factor` × the anonymous limit.
An unknown or revoked key is refused with 401 rather than silently treated as anonymous; such a
request counts against the client address's limit like an anonymous one, and the database
lookups of keys not in the cache are limited per address too (made-up keys cannot flood it).
Keys are cached per process, but a revocation reaches every process within GENERATION_SECONDS
(KeyCache checks the keys' generation in the database once a second).

Pages are not limited.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from litestar.concurrency import sync_to_thread
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from publishing import apikeys

log = logging.getLogger("portal.ratelimit")

API_KEY_HEADER = "x-api-key"
KEY_CACHE_SECONDS = 60.0
GENERATION_SECONDS = 1.0  # how stale a process's view of revocations may be
REDIS_RETRY_SECONDS = 10.0


@dataclass(frozen=True)
class Limit:
    requests: int
    window: int = 60  # seconds

    def scaled(self, factor: int) -> Limit:
        return Limit(self.requests * factor, self.window)


@dataclass(frozen=True)
class RateLimitConfig:
    api: Limit = Limit(120, 60)  # /api/ per client
    bulk: Limit = Limit(600, 60)  # feeds and /open-data/ files: gentler
    key_factor: int = 10  # a key without a limit of its own gets this many times the limits

    def limit_for(self, cls: str, key: apikeys.ApiKey | None) -> Limit:
        base = self.api if cls == "api" else self.bulk
        if key is None:
            return base
        scaled = base.scaled(self.key_factor)
        if key.per_minute is None:
            return scaled
        if cls == "api":
            return Limit(key.per_minute, 60)
        return Limit(max(key.per_minute, scaled.requests), scaled.window)  # never below scaled


def classify(path: str) -> str | None:
    """The limit class of a path: "api", "bulk" (feeds, open-data files) or None (pages)."""
    if path.startswith("/api/"):
        return "api"
    if path.startswith(("/feeds/", "/open-data/")) or path.endswith((".atom", ".rss")):
        return "bulk"
    return None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the current window ends
    retry_after: int  # seconds until a request would be allowed (0 when allowed)


def decide(cur: int, prev: int, limit: Limit, now: float, counted: bool) -> Decision:
    """The decision for a window state. cur includes this request when counted (allowed)."""
    w = limit.window
    elapsed = now - (now // w) * w
    weight = 1.0 - elapsed / w
    reset = max(1, math.ceil(w - elapsed))
    used = math.floor(prev * weight) + cur
    if counted:
        return Decision(True, limit.requests, max(0, limit.requests - used), reset, 0)
    n = limit.requests
    if cur >= n:
        # wait for this window to end, then for its weight (as the previous one) to fall
        wait = (w - elapsed) + w * (1 - n / cur) if cur else w - elapsed
    else:
        # the previous window's weight must fall until floor(prev·weight) + cur < n
        target = (n - cur) / prev if prev else 1.0
        wait = max(0.0, w * (1 - target) - elapsed)
    # the smallest whole number of seconds strictly after the boundary
    return Decision(False, n, 0, reset, max(1, math.floor(wait) + 1))


def retry_in(seconds: int) -> str:
    """When to try again, as people say it, to follow "请" ("在 30 秒后", "约 53 分钟后",
    "约 3 小时后"): a count of seconds past a minute is hard to read."""
    if seconds <= 60:
        return f"在 {seconds} 秒后"
    minutes = math.ceil(seconds / 60)
    return f"约 {minutes} 分钟后" if minutes < 120 else f"约 {math.ceil(minutes / 60)} 小时后"


def per_window(window: int) -> str:
    """A limit's window in words: "每小时", "每 10 分钟", "每分钟", "每天"."""
    for unit, name in ((86400, "天"), (3600, "小时"), (60, "分钟")):
        if window % unit == 0:
            n = window // unit
            return f"每{name}" if n == 1 else f"每 {n} {name}"
    return f"每 {window} 秒"


@runtime_checkable
class RateLimiter(Protocol):
    async def hit(self, key: str, limit: Limit, now: float | None = None) -> Decision: ...

    async def aclose(self) -> None: ...


class MemoryLimiter:
    """Counters in this process (one event loop: no lock needed)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int, int], int] = {}
        self._pruned = 0.0

    async def hit(self, key: str, limit: Limit, now: float | None = None) -> Decision:
        now = time.time() if now is None else now
        w = limit.window
        idx = int(now // w)
        cur = self._counts.get((key, w, idx), 0)
        prev = self._counts.get((key, w, idx - 1), 0)
        weight = 1.0 - (now - idx * w) / w
        if math.floor(prev * weight) + cur >= limit.requests:
            return decide(cur, prev, limit, now, counted=False)
        self._counts[(key, w, idx)] = cur + 1
        if now - self._pruned > 60:
            self._prune(now)
        return decide(cur + 1, prev, limit, now, counted=True)

    def _prune(self, now: float) -> None:
        self._pruned = now
        for k in [k for k in self._counts if k[2] < int(now // k[1]) - 1]:
            del self._counts[k]

    async def aclose(self) -> None:
        self._counts.clear()


# KEYS[1] current window, KEYS[2] previous window; ARGV limit, weight of prev, ttl.
# Returns {allowed (0/1), current count (after the increment when allowed), previous count}.
LUA = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local prev = tonumber(redis.call('GET', KEYS[2]) or '0')
if math.floor(prev * tonumber(ARGV[2])) + cur >= tonumber(ARGV[1]) then
  return {0, cur, prev}
end
cur = redis.call('INCR', KEYS[1])
if cur == 1 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3])) end
return {1, cur, prev}
"""


class RedisLimiter:
    """Counters in Redis shared by every portal process; falls back to memory on errors."""

    def __init__(self, url: str, prefix: str = "disclosure:rl:") -> None:
        self.url = url
        self.prefix = prefix
        self.fallback = MemoryLimiter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._script: Any = None
        self._down_until = 0.0

    def _bind(self) -> Any:
        """A client for the running event loop (a redis.asyncio client is bound to one)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            import redis.asyncio as redis

            # Bounded, but generous enough that a busy host's scheduling hiccup does not split
            # the shared count into per-process fallbacks.
            self._client = redis.Redis.from_url(
                self.url, socket_timeout=1.0, socket_connect_timeout=1.0
            )
            self._script = self._client.register_script(LUA)
            self._loop = loop
        return self._script

    async def hit(self, key: str, limit: Limit, now: float | None = None) -> Decision:
        now = time.time() if now is None else now
        if now < self._down_until:
            return await self.fallback.hit(key, limit, now)
        w = limit.window
        idx = int(now // w)
        weight = 1.0 - (now - idx * w) / w
        base = f"{self.prefix}{{{key}:{w}}}:"  # one hash slot per client (Redis Cluster)
        try:
            script = self._bind()
            allowed, cur, prev = await script(
                keys=[f"{base}{idx}", f"{base}{idx - 1}"],
                args=[limit.requests, repr(weight), 2 * w + 1],
            )
        except Exception as err:  # noqa: BLE001 - any Redis trouble: keep serving
            log.warning("rate limiter: Redis unavailable (%s); using in-process counters", err)
            self._down_until = now + REDIS_RETRY_SECONDS
            return await self.fallback.hit(key, limit, now)
        return decide(int(cur), int(prev), limit, now, counted=bool(allowed))

    async def aclose(self) -> None:
        if self._client is not None:
            with contextlib.suppress(RuntimeError, OSError):  # its loop may be gone already
                await self._client.aclose()
            self._client = None


def make_limiter(redis_url: str | None) -> MemoryLimiter | RedisLimiter:
    return RedisLimiter(redis_url) if redis_url else MemoryLimiter()


@dataclass
class KeyCache:
    """key hash -> (expiry, generation, ApiKey or None): a key costs one query a minute, not one
    a request.

    An entry holds only while the keys' generation (publishing.apikeys.generation: it changes
    with every key added or revoked) is the one read before the entry was looked up. The
    generation is read at most once every GENERATION_SECONDS per process, so a revocation, made
    by any process (the CLI), is refused by every portal process within that time plus one
    query's duration, at the cost of one tiny query a second per process."""

    entries: dict[str, tuple[float, Any, apikeys.ApiKey | None]] = field(default_factory=dict)
    generation_seconds: float = GENERATION_SECONDS
    _generation: Any = None
    _read_started: float = -math.inf  # when the query of the generation in use began
    _due: float = -math.inf
    _lookups: dict[str, asyncio.Future] = field(default_factory=dict)  # key hash -> its lookup

    async def generation(self, engine: Any) -> Any:
        now = time.monotonic()
        if self._generation is None or now >= self._due:
            # One refresh at a time: requests meanwhile use the generation still in hand.
            self._due = now + self.generation_seconds
            try:
                found = await sync_to_thread(apikeys.generation, engine)
            except BaseException:
                self._due = -math.inf  # the next request tries again
                raise
            if now >= self._read_started:  # a slow, older read never replaces a newer one
                if found != self._generation:
                    self.entries.clear()
                self._generation, self._read_started = found, now
        return self._generation

    async def peek(self, engine: Any, key: str) -> tuple[bool, apikeys.ApiKey | None]:
        """(True, the key or None) when the cache knows `key`; (False, None) when only a
        database lookup can tell."""
        generation = await self.generation(engine)
        hit = self.entries.get(apikeys.hash_key(key))
        if hit and hit[0] > time.monotonic() and hit[1] == generation:
            return True, hit[2]
        return False, None

    def looking_up(self, key: str) -> bool:
        """A database lookup of `key` is under way: a request for it waits for that one."""
        return apikeys.hash_key(key) in self._lookups

    async def get(self, engine: Any, key: str) -> apikeys.ApiKey | None:
        known, found = await self.peek(engine, key)
        if known:
            return found
        # One lookup per key at a time: a burst with a key the cache does not know yet (a
        # forwarding system right after a restart) makes one query, not one per request.
        digest = apikeys.hash_key(key)
        lookup = self._lookups.get(digest)
        if lookup is None:
            lookup = asyncio.ensure_future(self._lookup(engine, key, digest))
            self._lookups[digest] = lookup
            lookup.add_done_callback(lambda done: self._forget(digest, done))
        # shielded: a client that disconnects does not cancel the others' lookup
        return await asyncio.shield(lookup)

    async def _lookup(self, engine: Any, key: str, digest: str) -> apikeys.ApiKey | None:
        # the generation read before the lookup: a revocation after it makes the entry stale
        now, generation = time.monotonic(), self._generation
        found = await sync_to_thread(apikeys.lookup, engine, key)
        if len(self.entries) > 10_000:
            self.entries.clear()
        self.entries[digest] = (now + KEY_CACHE_SECONDS, generation, found)
        return found

    def _forget(self, digest: str, done: asyncio.Future) -> None:
        if self._lookups.get(digest) is done:
            del self._lookups[digest]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter got it already, or none is left


def _client_ip(scope: Scope) -> str:
    # uvicorn puts here the X-Forwarded-For of a proxy it trusts (FORWARDED_ALLOW_IPS: nginx,
    # which sets that header to the address it sees, never to what the client sent)
    client = scope.get("client")
    return client[0] if client else "unknown"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _headers(decision: Decision, limit: Limit) -> list[tuple[bytes, bytes]]:
    out = [
        (b"ratelimit-limit", str(decision.limit).encode()),
        (b"ratelimit-remaining", str(decision.remaining).encode()),
        (b"ratelimit-reset", str(decision.reset).encode()),
        (b"ratelimit-policy", f"{limit.requests};w={limit.window}".encode()),
    ]
    if not decision.allowed:
        out.append((b"retry-after", str(decision.retry_after).encode()))
    return out


async def _send_json(
    send: Send, status: int, payload: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    body = json.dumps(payload, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RateLimitMiddleware(ASGIMiddleware):
    """Reads its configuration from app.state: rate_limits (RateLimitConfig), rate_limiter
    (MemoryLimiter | RedisLimiter), api_key_cache (KeyCache), engine."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        cls = classify(scope["path"])
        if cls is None or scope.get("method") == "OPTIONS":
            await next_app(scope, receive, send)
            return
        state = scope["app"].state
        config: RateLimitConfig = state.get("rate_limits") or RateLimitConfig()
        key = None
        raw_key = _header(scope, API_KEY_HEADER.encode())
        if raw_key:
            key = await self._check_key(scope, send, state, config, cls, raw_key)
            if key is None:
                return
        limit = config.limit_for(cls, key)
        who = f"key:{key.id}" if key else f"ip:{_client_ip(scope)}"
        decision = await state.rate_limiter.hit(f"{cls}:{who}", limit)
        extra = _headers(decision, limit)
        if not decision.allowed:
            await _too_many(send, decision, extra, keyed=key is not None)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                for name, value in extra:
                    headers[name.decode()] = value.decode()
            await send(message)

        await next_app(scope, receive, send_with_headers)

    async def _check_key(
        self, scope: Scope, send: Send, state: Any, config: RateLimitConfig, cls: str, raw: str
    ) -> apikeys.ApiKey | None:
        """The valid key of X-API-Key; None once the request is answered (401, or 429).

        A key the cache does not know costs a database query: those lookups are limited per
        client address (a real key needs one a minute per process, and one after a key is
        added or revoked anywhere). A bad key's request counts against the address's limit
        like an anonymous one. So made-up keys neither flood the database nor get past the
        address's limit."""
        ip = _client_ip(scope)
        known, key = await state.api_key_cache.peek(state.engine, raw)
        if not known and not state.api_key_cache.looking_up(raw):
            decision = await state.rate_limiter.hit(f"key-lookup:ip:{ip}", config.api)
            if not decision.allowed:
                await _too_many(send, decision, _headers(decision, config.api), keyed=False)
                return None
        if not known:
            key = await state.api_key_cache.get(state.engine, raw)
        if key is not None:
            return key
        limit = config.limit_for(cls, None)
        decision = await state.rate_limiter.hit(f"{cls}:ip:{ip}", limit)
        extra = _headers(decision, limit)
        if not decision.allowed:
            await _too_many(send, decision, extra, keyed=False)
        else:
            await _send_json(
                send, 401, {"status_code": 401, "detail": "X-API-Key 无效或已停用。"}, extra
            )
        return None


async def _too_many(
    send: Send, decision: Decision, extra: list[tuple[bytes, bytes]], keyed: bool
) -> None:
    detail = f"请求过于频繁，请{retry_in(decision.retry_after)}重试。" + (
        "" if keyed else "需要更高频率的单位可申请 API 密钥（请求头 X-API-Key）。"
    )
    await _send_json(send, 429, {"status_code": 429, "detail": detail}, extra)
