"""Observability for production: structured JSON logs, Prometheus metrics at /metrics, and
liveness / readiness checks next to /healthz.

Logs. With DISCLOSURE_LOG_FORMAT=json (deploy/ sets it) every log line is one JSON object:
time, level, logger, message, and for a request's lines request_id, method, path; the access
line of each request adds status, duration_ms, route and client. The request id is the
X-Request-ID header (nginx sets it) or a new one, and is sent back in X-Request-ID.
What the client sent (path, user agent, request id) is logged with control characters escaped
(log_safe: C0, DEL, C1, U+2028/U+2029 and bidi controls become \\xNN / \\uNNNN, a backslash
\\x5c), so a URL with %0A or %1B cannot forge a line or colour a terminal; Chinese stays as is.
Without it, lines are text: time, level, logger, message, then the request's duration and id.
The query string is not logged in either format: it may carry secrets (ID numbers searched
for, the deprecated `?code=` access codes); uvicorn's own access line, which has it, is off in
both, whoever starts uvicorn.

Metrics (prometheus-client; with PROMETHEUS_MULTIPROC_DIR set, the processes' metrics are
merged):
  disclosure_http_requests_total{method, route, status}
  disclosure_http_request_duration_seconds{method, route}   (histogram)
  disclosure_http_requests_in_progress
  disclosure_changes_seq                   the newest change-log sequence number
  disclosure_search_lag_events{backend}    change events the search index has not applied
  disclosure_search_up{backend}            the search backend answers
`route` is the route's path template (/entities/{uscc:str}), never the raw path, so a million
entities do not make a million series. /metrics is for the monitoring network: nginx refuses
it from outside.

Health. /healthz (portal.pages.meta) stays the combined check the portal had. Added here:
  /healthz/live   the process answers (no I/O): the liveness probe; restart when it fails;
  /healthz/ready  database reachable (else 503), search backend reachable and its lag behind
                  the change log: "degraded" (still 200: pages work without search) when
                  search is down or more than LAG_DEGRADED events behind; ?strict=1 makes
                  degraded a 503 too (for alerting rather than load balancing).
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
import os
import re
import sys
import time
import traceback
import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, get
from litestar.config.app import AppConfig
from litestar.datastructures import MutableScopeHeaders
from litestar.params import FromQuery
from litestar.plugins import InitPluginProtocol
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from portal.errors import undecodable

log = logging.getLogger("portal.access")
REQUEST_ID = contextvars.ContextVar[dict[str, Any] | None]("request_context", default=None)
NO_STORE = {"Cache-Control": "no-store"}
LAG_DEGRADED = 10_000  # events behind before readiness says "degraded"

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUESTS = Counter("disclosure_http_requests", "HTTP requests", ("method", "route", "status"))
DURATION = Histogram(
    "disclosure_http_request_duration_seconds",
    "Time to the end of the response",
    ("method", "route"),
    buckets=_BUCKETS,
)
IN_PROGRESS = Gauge(
    "disclosure_http_requests_in_progress", "Requests being served", multiprocess_mode="livesum"
)
CHANGES_SEQ = Gauge(
    "disclosure_changes_seq", "Newest change-log sequence number", multiprocess_mode="max"
)
SEARCH_LAG = Gauge(
    "disclosure_search_lag_events",
    "Change events the search index has not applied",
    ("backend",),
    multiprocess_mode="max",
)
SEARCH_UP = Gauge(
    "disclosure_search_up", "The search backend answers", ("backend",), multiprocess_mode="min"
)


# -- logs ------------------------------------------------------------------------------------

# Characters that end a line, move the cursor, colour a terminal or reorder text on screen; a
# backslash too, so that an escape in the log cannot be told apart from one the client sent.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\\\\\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\udc80-\udcff]"
)
# What json.dumps(ensure_ascii=False) leaves raw but log viewers may take as a line break.
_JSON_RAW = re.compile("[\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def log_safe(text: str | None) -> str | None:
    """`text` from a request, fit for a log line: control characters escaped, the rest kept."""
    return None if text is None else _UNSAFE.sub(_escape, text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        ctx = record.__dict__.get("request_ctx") or REQUEST_ID.get()
        if ctx:
            out.update(ctx)
        for key in ("status", "duration_ms", "route", "client", "bytes", "user_agent"):
            value = record.__dict__.get(key)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        line = json.dumps(out, ensure_ascii=False, default=str)
        # \u escapes are the same JSON, on one line for every reader
        return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", line)


class TextFormatter(logging.Formatter):
    """`time level logger: message`, then the duration (access lines) and the request id."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        # here rather than in format(): before a traceback, on the record's own line
        line = super().formatMessage(record)
        duration = record.__dict__.get("duration_ms")
        if duration is not None:
            line += f" {duration}ms"
        ctx = record.__dict__.get("request_ctx") or REQUEST_ID.get()
        return f"{line} request_id={ctx['request_id']}" if ctx else line


def logging_config(fmt: str = "json", level: str = "INFO") -> dict[str, Any]:
    """A dictConfig for the portal and the worker (uvicorn's own access log is off: its line
    has the query string; the portal's access lines carry the request id and the route)."""
    formatter = {"()": f"{__name__}.{'JsonFormatter' if fmt == 'json' else 'TextFormatter'}"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": ["stdout"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["stdout"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


def _capture_request_context() -> None:
    """Log records remember the request they were made in (a handler may format them in
    another thread, where the context variable is not set)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_request_ctx", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_ctx = REQUEST_ID.get()
        return record

    factory._request_ctx = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def _log_level() -> str:
    from publishing.settings import get_settings

    return get_settings().log_level.upper()


def json_logs_wanted(fmt: str | None = None) -> bool:
    from publishing.settings import get_settings

    return (fmt or get_settings().log_format) == "json"


def configure_logging(fmt: str | None = None, *, text: bool = False) -> bool:
    """Apply logging_config when DISCLOSURE_LOG_FORMAT (or fmt) is "json", and in text too when
    `text` (a process the app's own logging does not cover: the worker, whose INFO lines were
    otherwise dropped); True if applied. The portal's app configures itself through Litestar."""
    json_lines = json_logs_wanted(fmt)
    if not (json_lines or text):
        return False
    _capture_request_context()
    logging.config.dictConfig(logging_config("json" if json_lines else "text", _log_level()))
    return True


def litestar_logging_config(fmt: str = "json") -> Any:
    """Litestar's logging configuration with JSON or text lines on stdout (Litestar applies it
    when the app is made, after uvicorn configured its own loggers: so uvicorn's access log is
    off however uvicorn was started)."""
    from litestar.logging.config import LoggingConfig

    _capture_request_context()
    cfg = logging_config(fmt, _log_level())
    stdout = cfg["handlers"]["stdout"] | {"formatter": "standard"}
    return LoggingConfig(
        formatters={"standard": cfg["formatters"]["default"]},
        handlers={"console": stdout, "queue_listener": stdout},
        root={"handlers": ["console"], "level": cfg["root"]["level"]},
        loggers={
            "litestar": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "uvicorn": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
        log_exceptions="always",
        exception_logging_handler=_log_server_errors,
    )


def _log_server_errors(logger: Any, scope: Any, tb: list[str]) -> None:
    """Litestar's exception logging: server errors only, by path. A client error (4xx) is in
    the access line already; its message names the URL, query string and all ("Validation
    failed for GET /api/v1/search?q=<ID number>"), or the value of a bad filter."""
    exc = sys.exc_info()[1]
    status = getattr(exc, "status_code", 500)
    if isinstance(status, int) and status < 500:
        return
    if exc is not None and undecodable(exc) is not None:  # a body not in UTF-8: answered 400
        return
    logger.exception("Uncaught exception (path=%s):", log_safe(scope.get("path", "")))


# -- the ASGI wrapper: request id, access log, metrics ----------------------------------------


def _header(scope: Scope, name: bytes) -> str | None:
    """A header as sent (UTF-8, so Chinese reads as such; other bytes kept), for the log."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return log_safe(value.decode("utf-8", "surrogateescape"))
    return None


class Observed:
    """Wraps the application's whole ASGI handler (routing included), so unknown URLs, 405s and
    rate-limited requests are logged and counted too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # ASCII: it goes back in a response header too
        rid = (
            (_header(scope, b"x-request-id") or uuid.uuid4().hex)
            .encode("ascii", "backslashreplace")[:64]
            .decode()
        )
        method, path = log_safe(scope["method"]), log_safe(scope["path"])
        token = REQUEST_ID.set({"request_id": rid, "method": method, "path": path})
        state = {"status": 500, "bytes": 0}

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                MutableScopeHeaders.from_message(message)["X-Request-ID"] = rid
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, observed_send)
        finally:
            IN_PROGRESS.dec()
            elapsed = time.perf_counter() - started
            route = scope.get("path_template") or "unmatched"
            REQUESTS.labels(scope["method"], route, str(state["status"])).inc()
            DURATION.labels(scope["method"], route).observe(elapsed)
            client = scope.get("client")
            log.info(
                "%s %s %s",
                method,
                path,
                state["status"],
                extra={
                    "status": state["status"],
                    "duration_ms": round(elapsed * 1000, 2),
                    "route": route,
                    "client": log_safe(client[0]) if client else None,
                    "bytes": state["bytes"],
                    "user_agent": _header(scope, b"user-agent"),
                },
            )
            REQUEST_ID.reset(token)


async def _wrap(app: Any) -> None:
    if not isinstance(app.asgi_handler, Observed):
        app.asgi_handler = Observed(app.asgi_handler)


# -- health and metrics ----------------------------------------------------------------------


def _search_state(state: Any) -> tuple[str, bool, int | None]:
    """(backend name, reachable, lag in change events) of the app's search backend."""
    from publishing.search.sync import backlog

    backend = state.get("search_backend")
    if backend is None:
        from publishing.search import get_backend

        backend = state.search_backend = get_backend(state.engine)
    ping = getattr(backend, "ping", None)
    try:
        up = bool(ping()) if ping else backend.count() >= 0
    except Exception:  # noqa: BLE001 - an unreachable backend is the answer
        up = False
    with state.engine.connect() as conn:
        _, lag, newest = backlog(conn, backend, LAG_DEGRADED)
    CHANGES_SEQ.set(newest)
    return backend.name, up, max(0, lag)


@get("/healthz/live", sync_to_thread=False, include_in_schema=False)
def live() -> Response[dict[str, str]]:
    return Response({"status": "ok"}, headers=NO_STORE)


@get(
    "/healthz/ready",
    sync_to_thread=True,
    summary="就绪检查（数据库、搜索与同步延迟）",
    description="数据库不可用时返回 503；搜索不可用或同步落后较多时为 degraded"
    "（仍返回 200，strict=1 时返回 503）。",
    tags=["运维"],
)
def ready(request: Request, strict: FromQuery[bool] = False) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"status": "ok"}
    try:
        with request.app.state.engine.connect() as conn:
            from publishing import read

            read.database_ready(conn)
        body["database"] = "ok"
    except Exception as err:  # noqa: BLE001 - reported
        logging.getLogger("portal").warning("readiness: database: %s", err)
        return Response(
            {"status": "unavailable", "database": "unreachable"}, status_code=503, headers=NO_STORE
        )
    try:
        name, up, lag = _search_state(request.app.state)
        body["search"] = {"backend": name, "status": "ok" if up else "unreachable", "lag": lag}
        if not up or (lag or 0) > LAG_DEGRADED:
            body["status"] = "degraded"
    except Exception as err:  # noqa: BLE001 - reported
        body["search"] = {"status": "error", "error": str(err)[:200]}
        body["status"] = "degraded"
    code = 503 if strict and body["status"] != "ok" else 200
    return Response(body, status_code=code, headers=NO_STORE)


@get("/metrics", sync_to_thread=True, include_in_schema=False)
def metrics(request: Request) -> Response[bytes]:
    try:
        name, up, lag = _search_state(request.app.state)
        SEARCH_UP.labels(name).set(1 if up else 0)
        SEARCH_LAG.labels(name).set(lag or 0)
    except Exception as err:  # noqa: BLE001 - the HTTP metrics are still worth serving
        logging.getLogger("portal").warning("metrics: search state: %s", err)
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return Response(
        generate_latest(registry),
        media_type=CONTENT_TYPE_LATEST,
        headers={"Cache-Control": "no-store"},
    )


class ObservabilityPlugin(InitPluginProtocol):
    """Registers /metrics, /healthz/live, /healthz/ready, the request-id / access-log / metrics
    wrapper, and the logs: JSON when DISCLOSURE_LOG_FORMAT=json, else text."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.logging_config = litestar_logging_config(
            "json" if json_logs_wanted() else "text"
        )
        app_config.route_handlers.extend([live, ready, metrics])
        app_config.on_startup.append(_wrap)
        return app_config


__all__ = [
    "JsonFormatter",
    "ObservabilityPlugin",
    "Observed",
    "TextFormatter",
    "configure_logging",
    "log_safe",
    "logging_config",
]
