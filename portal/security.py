"""Security headers on every response (pages, API, static files, errors): a before_send hook
at the application level, so even a 404 for an unknown URL carries them."""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

# No inline script or style anywhere: every page's CSS and JS are static files.
CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
API_HEADERS = {"Access-Control-Allow-Origin": "*"}  # open data: any site may read the JSON


async def add_security_headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in HEADERS.items():
        if name not in headers:
            headers[name] = value
    if scope.get("path", "").startswith("/api/"):
        for name, value in API_HEADERS.items():
            headers[name] = value
    if scope.get("scheme") == "https" and "Strict-Transport-Security" not in headers:
        headers["Strict-Transport-Security"] = "max-age=31536000"
