"""Guards of the request forms and the back office: signed one-time form tokens (CSRF), the
honeypot, and per-client rate limits (through portal.ratelimit's limiter: Redis when
DISCLOSURE_REDIS_URL is set, else in-process).

Form tokens are a signed double submit: the token in the form is an HMAC (with the secret key)
over a random nonce, the time it was issued, what it is for, and a random client id kept in an
HttpOnly, SameSite=Strict cookie. A cross-site page can neither read the cookie nor forge the
token. The nonce is also the idempotency key of the submission: sending the same form twice
never creates two requests (publishing.requests.submit answers the repeat with the first receipt).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any

from litestar import Request
from litestar.concurrency import sync_to_thread
from litestar.datastructures import Cookie

from portal.ratelimit import Limit, make_limiter

CLIENT_COOKIE = "rq_client"
TOKEN_FIELD = "form_token"
HONEYPOT_FIELD = "website"  # a field people never see; bots fill it in
TOKEN_TTL = 4 * 3600


def _secret() -> bytes:
    from publishing.settings import get_settings

    return hashlib.sha256(("form-token:" + get_settings().secret_key).encode()).digest()


def _sign(*parts: str) -> str:
    return hmac.new(_secret(), "|".join(parts).encode(), hashlib.sha256).hexdigest()[:32]


def new_client_id() -> str:
    return secrets.token_urlsafe(18)


def client_cookie(value: str, path: str = "/") -> Cookie:
    return Cookie(
        key=CLIENT_COOKIE,
        value=value,
        path=path,
        secure=True,
        httponly=True,
        samesite="strict",
        max_age=TOKEN_TTL * 2,
    )


def issue_token(client_id: str, purpose: str, now: float | None = None) -> str:
    nonce = secrets.token_urlsafe(16)
    issued = str(int(now if now is not None else time.time()))
    return f"{nonce}.{issued}.{_sign(purpose, client_id, nonce, issued)}"


def check_token(
    token: str | None, client_id: str | None, purpose: str, now: float | None = None
) -> tuple[str | None, str | None]:
    """(nonce, None) for a good token; (None, what is wrong) otherwise."""
    if not token:
        return None, "表单缺少安全令牌（可能是页面来自其他网站或已过期）。请刷新本页后重新提交。"
    if not client_id:
        return (
            None,
            "浏览器未保存本站的安全 Cookie，无法确认表单来源。请允许 Cookie 后刷新本页重新提交。",
        )
    try:
        nonce, issued, sig = token.split(".")
        age = (now if now is not None else time.time()) - int(issued)
    except ValueError:
        return None, "表单安全令牌无效。请刷新本页后重新提交。"
    if not hmac.compare_digest(sig, _sign(purpose, client_id, nonce, issued)):
        return None, "表单安全令牌与本浏览器不匹配（可能来自其他网站）。请刷新本页后重新提交。"
    if not 0 <= age <= TOKEN_TTL:
        return None, "表单已过期（超过4小时）。请刷新本页后重新填写提交。"
    return nonce, None


def honeypot_filled(form: Any) -> bool:
    return bool((form.get(HONEYPOT_FIELD) or "").strip())


def client_ip(request: Request) -> str:
    """The client's address as the server sees it (uvicorn applies the X-Forwarded-For of the
    proxies in FORWARDED_ALLOW_IPS: nginx, which sets it to the address it sees), the same key
    portal.ratelimit uses."""
    return request.client.host if request.client else "unknown"


def _limiter(request: Request) -> Any:
    """The API's limiter (portal.ratelimit: Redis when configured, else in-process), or one of
    the same kind for these pages when the API plugin is not installed."""
    state = request.app.state
    found = state.get("rate_limiter") or state.get("request_rate_limiter")
    if found is None:
        from publishing.settings import get_settings

        found = state.request_rate_limiter = make_limiter(get_settings().redis_url)
    return found


def limit_key(request: Request) -> str:
    """Whom a limit counts: the client's source as the login lockout has it (users.source_key:
    the address, an IPv6 /64 whole), or new addresses in one /64, which a single subscriber
    holds, would each start afresh."""
    from publishing.users import source_key

    return source_key(client_ip(request))


async def over_limit(request: Request, name: str) -> int | None:
    """Count this request against the per-client limit `name` of requests.toml (limit_key);
    the seconds to wait when it is over the limit, else None."""
    from publishing.request_config import load_config

    requests, window = load_config().limits[name]
    decision = await _limiter(request).hit(
        f"requests-{name}:ip:{limit_key(request)}", Limit(requests, window)
    )
    return None if decision.allowed else decision.retry_after


async def api_key_holder(request: Request) -> bool:
    """The request carries a valid API key (forwarding systems get one: `portal.ratelimit`
    applies the key's own, higher limit to it)."""
    raw = request.headers.get("x-api-key")
    if not raw:
        return False
    cache = request.app.state.get("api_key_cache")
    if cache is not None:
        return await cache.get(request.app.state.engine, raw) is not None
    from publishing import apikeys

    return await sync_to_thread(apikeys.lookup, request.app.state.engine, raw) is not None


def threaded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """An async handler that runs the sync `fn` in a worker thread.

    Used instead of `sync_to_thread=True`: Litestar 2.25 wraps a sync handler in its thread
    wrapper a second time when another method is registered on the same path (GET and POST of
    one form), and the doubly wrapped handler returns an un-awaited coroutine."""

    @functools.wraps(fn)
    async def handler(*args: Any, **kwargs: Any) -> Any:
        return await sync_to_thread(fn, *args, **kwargs)

    return handler
