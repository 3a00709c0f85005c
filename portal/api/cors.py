"""CORS for the open-data surface: any site may read /api/, /feeds/ (and every *.atom/*.rss)
and /open-data/ with GET or HEAD (and POST the credit check); preflights are answered here."""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

PREFIXES = ("/api/", "/feeds/", "/open-data/")
POST_PATHS = frozenset({"/api/v1/credit-check"})
EXPOSE = (
    "ETag, Link, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, "
    "RateLimit-Policy, Content-Disposition, Repr-Digest, X-Snapshot-Version"
)
ALLOW_HEADERS = "Content-Type, X-API-Key, If-None-Match"
MAX_AGE = "86400"


def is_open(path: str) -> bool:
    return path.startswith(PREFIXES) or path.endswith((".atom", ".rss"))


def _methods(path: str) -> str:
    return "GET, HEAD, POST" if path in POST_PATHS else "GET, HEAD"


class CorsMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        path = scope["path"]
        method = scope.get("method", "GET")
        if not is_open(path):
            await next_app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        if method == "OPTIONS" and b"access-control-request-method" in headers:
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [
                        (b"access-control-allow-origin", b"*"),
                        (b"access-control-allow-methods", _methods(path).encode()),
                        (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                        (b"access-control-max-age", MAX_AGE.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        if method not in ("GET", "HEAD") and not (method == "POST" and path in POST_PATHS):
            await next_app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                h = MutableScopeHeaders.from_message(message)
                h["Access-Control-Allow-Origin"] = "*"
                h["Access-Control-Expose-Headers"] = EXPOSE
            await send(message)

        await next_app(scope, receive, send_with_cors)
