"""Observability on SQLite and PostgreSQL: /healthz/live and /healthz/ready (database, search
backend, change-log lag), Prometheus metrics at /metrics with route templates as labels,
request ids, and JSON log lines."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from datetime import date
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from portal import observability
from portal.app import create_app
from publishing.db import make_engine
from publishing.publish import publish
from publishing.search.embedded import EmbeddedSearch
from publishing.search.meili import MeiliSearch
from publishing.search.sync import sync
from tests.factories import penalty_row, uscc, write_csv
from tests.servers import ROOT, free_port, stop, wait_up

TODAY = date(2026, 11, 27)


def _publish(engine, tmp_path, rows, name="p.csv"):
    result = publish(
        [write_csv(tmp_path / name, rows)], engine=engine, today=TODAY, show_progress=False
    )
    assert result.published
    return result


@pytest.fixture
def client(engine, tmp_path):
    _publish(engine, tmp_path, [penalty_row(1), penalty_row(2)])
    EmbeddedSearch(engine).rebuild([])
    sync(engine, EmbeddedSearch(engine))
    with TestClient(app=create_app(engine)) as c:
        yield c


def test_liveness_does_no_io(client):
    r = client.get("/healthz/live")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert r.headers["cache-control"] == "no-store"


def test_readiness_reports_database_search_and_lag(client, engine, tmp_path, monkeypatch):
    r = client.get("/healthz/ready")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok",
        "database": "ok",
        "search": {"backend": "embedded", "status": "ok", "lag": 0},
    }
    _publish(engine, tmp_path, [penalty_row(3)], "q.csv")  # not synced yet
    assert client.get("/healthz/ready").json()["search"]["lag"] == 1
    monkeypatch.setattr(observability, "LAG_DEGRADED", 0)
    r = client.get("/healthz/ready")
    assert r.status_code == 200 and r.json()["status"] == "degraded"
    assert client.get("/healthz/ready?strict=1").status_code == 503
    sync(engine)
    assert client.get("/healthz/ready?strict=1").json()["status"] == "ok"


def test_readiness_with_search_unreachable(client):
    client.app.state.search_backend = MeiliSearch("http://127.0.0.1:9", None, "nope", retries=0)
    r = client.get("/healthz/ready")
    assert r.status_code == 200  # pages still work without search
    body = r.json()
    assert body["status"] == "degraded"
    assert body["search"]["backend"] == "meilisearch" and body["search"]["status"] == "unreachable"
    assert client.get("/healthz/ready?strict=true").status_code == 503


def test_readiness_with_the_database_down():
    down = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    with TestClient(app=create_app(down)) as c:
        r = c.get("/healthz/ready")
        assert r.status_code == 503 and r.json()["database"] == "unreachable"
        assert c.get("/healthz/live").status_code == 200
    down.dispose()


def test_metrics_use_route_templates(client):
    client.get(f"/entities/{uscc(1)}")
    client.get(f"/api/v1/entities/{uscc(2)}")
    client.get("/no/such/page")
    text = client.get("/metrics").text
    assert re.search(
        r'disclosure_http_requests_total\{method="GET",route="/entities/\{uscc(:str)?\}",status="200"\} \d',
        text,
    )
    assert 'route="unmatched",status="404"' in text
    assert uscc(1) not in text  # no raw paths as labels
    assert re.search(r'disclosure_search_lag_events\{backend="embedded"\} 0\.0', text)
    assert re.search(r"disclosure_changes_seq \d", text)
    assert "disclosure_http_request_duration_seconds_bucket" in text


def test_request_id_is_kept_or_made(client):
    assert (
        client.get("/healthz/live", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    made = client.get("/healthz/live").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)


def test_access_lines_are_json_with_the_request(client):
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(self.format(record))

    handler = Keep()
    handler.setFormatter(observability.JsonFormatter())
    logger = logging.getLogger("portal.access")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        client.get("/api/v1/changes?since=0", headers={"X-Request-ID": "req-42"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    line = json.loads(lines[-1])
    assert line["request_id"] == "req-42" and line["status"] == 200
    assert line["path"] == "/api/v1/changes" and line["route"] == "/api/v1/changes"
    assert line["method"] == "GET" and line["level"] == "info" and line["logger"] == "portal.access"
    assert isinstance(line["duration_ms"], float) and line["time"].endswith("+00:00")


def _serve_and_log(database_url: str, tmp_path, paths: list[str]) -> str:
    """Everything `disclosure serve` (text logs: no DISCLOSURE_LOG_FORMAT) writes while it
    answers GET `paths`, each with X-Request-ID req-<index>."""
    env = {**os.environ, "DISCLOSURE_DATABASE_URL": database_url,
           "DISCLOSURE_DATA_DIR": str(tmp_path / "var"),
           "DISCLOSURE_SECRET_KEY": "observability-test-secret-key-of-more-than-32-chars"}
    env.pop("DISCLOSURE_LOG_FORMAT", None)
    port, out = free_port(), tmp_path / "serve.log"
    base = f"http://127.0.0.1:{port}"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "portal.cli", "serve", "--port", str(port)],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
        )
        try:
            wait_up(base + "/healthz/live", 60, proc)
            with httpx.Client(base_url=base, timeout=30) as c:
                for i, path in enumerate(paths):
                    assert c.get(path, headers={"X-Request-ID": f"req-{i}"}).status_code < 500
        finally:
            stop(proc, 15)
    return out.read_text(encoding="utf-8", errors="replace")


def test_text_logs_of_disclosure_serve_leave_the_query_string_out(database_url, tmp_path):
    """uvicorn's own access line had `GET /search?q=<ID number> HTTP/1.1` and `?code=` access
    codes; in text mode as in JSON mode only the portal's access line is written, without it."""
    id_number, code = "370602198001181233", "ZX7Q-K4P9-SECRET"
    logged = _serve_and_log(
        database_url, tmp_path, [f"/search?q={id_number}", f"/requests/YT20261127A1?code={code}"]
    )
    assert id_number not in logged and code not in logged, logged
    lines = logged.splitlines()
    search = next(line for line in lines if "portal.access: GET /search 200 " in line)
    assert re.search(r" \d+(\.\d+)?ms request_id=req-0$", search), search
    assert any(
        "portal.access: GET /requests/YT20261127A1 200 " in line and line.endswith("req-1")
        for line in lines
    ), logged


def test_client_errors_are_not_logged_with_their_url_or_values(database_url, tmp_path):
    """Litestar logged every 4xx with a traceback whose message named the URL, query string and
    all (`Validation failed for GET /api/v1/search?q=<ID number>`) or the bad filter value."""
    id_number = "370602198001181233"
    logged = _serve_and_log(database_url, tmp_path, [
        f"/api/v1/search?q={id_number}&page=x", f"/penalties?category={id_number}",
        f"/api/v1/penalties?district={id_number}", f"/nope?q={id_number}"])
    assert id_number not in logged and "Traceback" not in logged, logged
    assert "portal.access: GET /api/v1/search 400 " in logged  # the access line still counts it


def test_server_errors_are_still_logged_with_their_traceback(caplog):
    from litestar.exceptions import HTTPException

    logger = logging.getLogger("test.exceptions")
    for error in (RuntimeError("boom"), HTTPException(status_code=503), HTTPException(status_code=404)):
        try:
            raise error
        except Exception:  # noqa: BLE001 - as Litestar's middleware calls it
            observability._log_server_errors(logger, {"type": "http", "path": "/a\nb"}, [])
    assert [r.exc_info[0].__name__ for r in caplog.records] == ["RuntimeError", "HTTPException"]
    assert "\n" not in caplog.records[0].getMessage()  # the path is escaped like the access line


def test_logging_config_is_json():
    cfg = observability.logging_config("json")
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    out = json.loads(observability.JsonFormatter().format(record))
    assert out["message"] == "hello world" and out["level"] == "warning"
    assert cfg["loggers"]["uvicorn.access"]["handlers"] == []


def test_log_settings_are_read_from_dot_env_too(tmp_path, monkeypatch):
    """README: settings come from the environment or .env; the log format and level were read
    from the environment only, so DISCLOSURE_LOG_FORMAT=json in .env left logs as text."""
    from publishing.settings import get_settings

    for name in ("DISCLOSURE_LOG_FORMAT", "DISCLOSURE_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("DISCLOSURE_LOG_FORMAT=json\nDISCLOSURE_LOG_LEVEL=warning\n")
    get_settings.cache_clear()
    try:
        assert observability.json_logs_wanted()
        cfg = observability.litestar_logging_config("json")
        assert cfg.root["level"] == "WARNING"
    finally:
        get_settings.cache_clear()


def _access_lines(client, *args, **kwargs) -> tuple[str, str, Any]:
    """The access line of one request, formatted as plain text and as JSON; the response."""
    plain = observability.TextFormatter()
    lines: dict[str, str] = {}

    class Keep(logging.Handler):
        def emit(self, record):
            lines["plain"] = plain.format(record)
            lines["json"] = observability.JsonFormatter().format(record)

    logger = logging.getLogger("portal.access")
    handler, old = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        response = client.get(*args, **kwargs)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    return lines["plain"], lines["json"], response


RAW_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def test_access_lines_escape_what_the_client_sent(client):
    forged = "%0A2026-11-28 INFO portal.access: GET /review 200%1B[31m%E2%80%A8"
    plain, line, response = _access_lines(
        client,
        f"/entities/烟台{forged}?q={forged}&code=secret",
        headers={
            "User-Agent": "爬虫/1.0\r\x1b[2J\x85".encode(),
            "X-Request-ID": "请求\x1b".encode(),
        },
    )
    for text in (plain, line):
        assert not RAW_CONTROL.search(text), repr(text)  # one line, no escape sequences
        assert "secret" not in text  # the query string (access codes) is not logged
    path = "/entities/烟台\\x0a2026-11-28 INFO portal.access: GET /review 200\\x1b[31m\\u2028"
    assert f"GET {path} 404" in plain  # Chinese stays readable
    logged = json.loads(line)
    assert logged["path"] == path and logged["message"] == f"GET {path} 404"
    assert logged["user_agent"] == "爬虫/1.0\\x0d\\x1b[2J\\x85"
    # the request id goes back in a header: ASCII, escaped alike
    assert logged["request_id"] == response.headers["x-request-id"] == "\\u8bf7\\u6c42\\x1b"
