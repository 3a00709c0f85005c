"""Stateless portal processes: two real `disclosure serve` processes (uvicorn, two localhost
ports) on one PostgreSQL database and one Redis give the same answers after a publish + sync,
share the API rate limit (Redis), and accept each other's back-office session cookies (signed
with the shared secret key)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import text

from portal.ratelimit import REDIS_RETRY_SECONDS
from publishing.db import make_engine, upgrade
from publishing.publish import publish
from publishing.search.embedded import EmbeddedSearch
from publishing.search.sync import sync
from publishing.users import add_user
from tests.conftest import PG_ADMIN_URL, _worker
from tests.factories import credit_mark_row, penalty_row, uscc, write_csv
from tests.servers import free_port, self_signed_cert, stop, wait_up

REDIS_URL = "redis://127.0.0.1:6379/14"
# Every test here counts requests in Redis database 14 from 127.0.0.1: keep them on one xdist
# worker, or two workers' portals would add to each other's rate-limit counts.
pytestmark = pytest.mark.xdist_group("redis-db-14")
ROOT = Path(__file__).resolve().parent.parent
HAOYUNLAI = "烟台市芝罘区好运来食品有限公司"
API_LIMIT = 120  # portal.ratelimit.RateLimitConfig.api (per client per minute)


def _admin(*sql: str) -> None:
    admin = make_engine(PG_ADMIN_URL)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for s in sql:
            conn.execute(text(s))
    admin.dispose()


@pytest.fixture(scope="module", params=["postgresql"])  # the id counts it as a PostgreSQL test
def database():
    name = f"disclosure_two_{_worker()}"
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    upgrade(engine)
    yield url, engine
    engine.dispose()
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _publish(engine, tmp_path: Path, name: str, rows) -> None:
    path = write_csv(tmp_path / name, rows)
    result = publish([path], engine=engine, today=date(2026, 11, 27), show_progress=False)
    assert result.published, result.as_json()
    sync(engine, EmbeddedSearch(engine))


@pytest.fixture(scope="module")
def portals(database, tmp_path_factory):
    """Two `disclosure serve` processes on one database and one Redis: [base URL, base URL]."""
    url, engine = database
    tmp = tmp_path_factory.mktemp("two")
    # A clean count: the other backend's run of this module used up the address's limit.
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()
    _publish(engine, tmp, "p.csv", [penalty_row(1, 当事人名称=HAOYUNLAI), penalty_row(2)])
    add_user(engine, "reviewer1", "reviewer", "correct horse battery staple")
    env = {
        **os.environ,
        "DISCLOSURE_DATABASE_URL": url,
        "DISCLOSURE_REDIS_URL": REDIS_URL,
        "DISCLOSURE_SECRET_KEY": "two-processes-shared-secret-of-32-characters-or-more",
        "DISCLOSURE_DATA_DIR": str(tmp / "var"),
        "DISCLOSURE_LOG_FORMAT": "json",
    }
    env.pop("DISCLOSURE_MEILI_URL", None)
    procs, bases = [], []
    for i in range(2):
        port = free_port()
        log = open(tmp / f"portal{i}.log", "w")  # noqa: SIM115 - closed with the process
        procs.append(
            (
                subprocess.Popen(
                    [sys.executable, "-m", "portal.cli", "serve", "--port", str(port)],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                ),
                log,
            )
        )
        bases.append(f"http://127.0.0.1:{port}")
    try:
        for (proc, _), base in zip(procs, bases, strict=True):
            _wait_ready(proc, base, tmp)
        yield bases, engine, tmp
    finally:
        for proc, log in procs:
            stop(proc, 10)
            log.close()


def _wait_ready(proc: subprocess.Popen, base: str, tmp: Path) -> None:
    try:
        wait_up(base + "/healthz/ready", 60, proc, interval=0.2)
    except RuntimeError as err:
        logs = "\n".join(p.read_text() for p in tmp.glob("portal*.log"))
        raise AssertionError(f"{err}:\n{logs[-4000:]}") from None


def _json(base: str, path: str, **kw) -> dict:
    method = kw.pop("method", "GET")
    r = httpx.request(method, base + path, timeout=10, **kw)
    assert r.status_code == 200, (base, path, r.status_code, r.text[:300])
    data = r.json()
    if isinstance(data, dict):
        data.pop("took_ms", None)
        data.get("search", {}).pop("took_ms", None) if isinstance(
            data.get("search"), dict
        ) else None
    return data


def _same_everywhere(bases: list[str]) -> dict:
    paths = [
        "/api/v1/search?q=好运来",
        "/api/v1/search?q=" + uscc(2),
        f"/api/v1/entities/{uscc(1)}",
        f"/api/v1/credit-check?uscc={uscc(1)}",
        "/api/v1/changes?since=0",
        "/api/v1/penalties",
    ]
    answers = {}
    for path in paths:
        a, b = (_json(base, path) for base in bases)
        assert a == b, path
        answers[path] = a
    batch = {"json": {"uscc": [uscc(1), uscc(2), uscc(9)]}, "method": "POST"}
    a, b = (_json(base, "/api/v1/credit-check", **batch) for base in bases)
    assert a == b
    answers["batch"] = a
    return answers


def test_both_processes_answer_the_same_before_and_after_a_publish(portals):
    bases, engine, tmp = portals
    before = _same_everywhere(bases)
    assert before["/api/v1/search?q=好运来"]["total"] >= 2
    # a publish while both are running, then a sync: both see it, nothing stale in a process
    _publish(engine, tmp, "m.csv", [credit_mark_row(1, 主体名称=HAOYUNLAI, 分类结果="D")])
    _publish(engine, tmp, "q.csv", [penalty_row(3, 当事人名称="烟台新来商贸有限公司")])
    after = _same_everywhere(bases)
    assert after != before
    assert after["/api/v1/search?q=好运来"]["total"] > before["/api/v1/search?q=好运来"]["total"]
    assert len(after["/api/v1/changes?since=0"]["changes"]) == 4


def _hit_the_limit(bases: list[str]) -> tuple[list[int], list[int], bool]:
    """API_LIMIT + 4 requests alternating between the processes, from a clean count; whether
    they all fell into one rate-limit window (60 s)."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()  # this test's own Redis database (14)
    client.close()
    window = int(time.time() // 60)
    statuses, remaining = [], []
    for i in range(API_LIMIT + 4):
        r = httpx.get(bases[i % 2] + "/api/v1/changes?since=0&limit=1", timeout=10)
        statuses.append(r.status_code)
        remaining.append(int(r.headers["ratelimit-remaining"]))
    return statuses, remaining, int(time.time() // 60) == window


def test_the_rate_limit_is_shared(portals):
    bases, _, _ = portals
    # The sliding window carries a count over a minute boundary with a weight (floor(prev × w)
    # + cur), which may let one more through; the exact arithmetic below needs one window.
    # A Redis call slower than the limiter's timeout (a saturated CI machine) makes a process
    # count in memory for a while, by design: such an attempt is repeated, not a failure.
    shared = list(range(API_LIMIT - 1, -1, -1))
    expected = [200] * API_LIMIT + [429] * 4
    for _ in range(3):
        if time.time() % 60 > 45:
            time.sleep(61 - time.time() % 60)
        statuses, remaining, one_window = _hit_the_limit(bases)
        if one_window and remaining[:API_LIMIT] == shared and statuses == expected:
            break  # (a fallback may also begin after the limit was reached: then again)
        if one_window:  # a fallback: wait until the processes try Redis again
            time.sleep(REDIS_RETRY_SECONDS + 1)
    assert one_window
    assert statuses[:API_LIMIT] == [200] * API_LIMIT
    assert statuses[API_LIMIT:] == [429] * 4  # on both processes: the count is shared
    assert remaining[:API_LIMIT] == list(range(API_LIMIT - 1, -1, -1))
    r = httpx.get(bases[0] + "/api/v1/changes?since=0", timeout=10)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_a_session_cookie_from_one_process_works_on_the_other(portals):
    bases, _, _ = portals
    a, b = bases
    page = httpx.get(a + "/review/login", timeout=10)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    cookie = page.cookies.get("review_session") or _cookie(page)
    r = httpx.post(
        a + "/review/login",
        data={"name": "reviewer1", "password": "correct horse battery staple", "csrf": csrf},
        headers={"Cookie": f"review_session={cookie}"},
        timeout=10,
    )
    assert r.status_code == 303 and r.headers["location"] == "/review"
    session = _cookie(r)
    # the cookie is marked Secure (production is HTTPS): send it by hand over plain HTTP here
    queue = httpx.get(b + "/review", headers={"Cookie": f"review_session={session}"}, timeout=10)
    assert queue.status_code == 200 and "reviewer1" in queue.text
    assert httpx.get(b + "/review", timeout=10).status_code == 303  # no cookie: login


def _cookie(response: httpx.Response) -> str:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() == "review_session":
            return rest.split(";", 1)[0]
    raise AssertionError(f"no review_session cookie in {response.headers}")


def test_logs_are_json_lines_with_request_ids(portals):
    bases, _, tmp = portals
    httpx.get(bases[1] + "/healthz/live", headers={"X-Request-ID": "two-proc-test"}, timeout=10)
    time.sleep(0.3)
    import json

    lines = [
        json.loads(x) for x in (tmp / "portal1.log").read_text().splitlines() if x.startswith("{")
    ]
    access = [x for x in lines if x.get("request_id") == "two-proc-test"]
    assert access and access[0]["status"] == 200 and access[0]["path"] == "/healthz/live"
    assert {"time", "level", "logger", "message", "duration_ms"} <= set(access[0])


# -- nginx in front of the two processes (deploy/nginx.conf) ---------------------------------

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def render_nginx_conf(upstreams: list[str], http_port: int, https_port: int, tmp: Path) -> str:
    """deploy/nginx.conf with this machine's ports, paths and a self-signed certificate."""
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    servers = "".join(f"        server {u} max_fails=3 fail_timeout=10s;\n" for u in upstreams)
    conf = re.sub(r"(    upstream portal \{\n)(?:        server .*\n)+", r"\g<1>" + servers, conf)
    conf = conf.replace(
        "listen 80 default_server;", f"listen 127.0.0.1:{http_port} default_server;"
    )
    conf = conf.replace(
        "listen 443 ssl http2 default_server;",
        f"listen 127.0.0.1:{https_port} ssl http2 default_server;",
    )
    conf = re.sub(r"\n\s*listen \[::\]:\d+.*;", "", conf)
    conf = conf.replace("/var/cache/nginx", str(tmp / "cache"))
    conf = conf.replace("/var/run/nginx.pid", str(tmp / "nginx.pid"))
    conf = conf.replace("/etc/nginx/tls", str(tmp / "tls"))
    conf = conf.replace("access_log /dev/stdout json;", f"access_log {tmp / 'access.log'} json;")
    conf = conf.replace("error_log /dev/stderr warn;", f"error_log {tmp / 'error.log'} warn;")
    if os.geteuid() == 0:  # workers would drop to nobody, who cannot write into pytest's tmp
        conf = "user root;\n" + conf
    return conf


@pytest.fixture(scope="module")
def nginx(portals):
    if NGINX is None:
        pytest.fail("nginx is not installed (apt-get install nginx-light)")
    bases, _, tmp = portals
    tmp = tmp / "nginx"
    self_signed_cert(tmp / "tls")
    (tmp / "cache").mkdir()
    http_port, https_port = free_port(), free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(
        render_nginx_conf([b.removeprefix("http://") for b in bases], http_port, https_port, tmp)
    )
    check = subprocess.run(
        [NGINX, "-t", "-c", str(conf), "-p", str(tmp)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"])
    base = f"https://127.0.0.1:{https_port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(base + "/healthz/live", verify=False, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    try:
        yield base, f"http://127.0.0.1:{http_port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_nginx_config_serves_caches_compresses_and_limits(nginx):
    https, http = nginx
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()
    with httpx.Client(base_url=https, verify=False, timeout=10) as c:
        # plain HTTP redirects to HTTPS
        r = httpx.get(http + "/search?q=x", timeout=10)
        assert r.status_code == 301 and r.headers["location"].startswith("https://")
        # pages: the application's security headers pass through, gzip, a request id
        r = c.get("/", headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["strict-transport-security"]  # the app saw X-Forwarded-Proto: https
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
        # feeds: cached 60 s, headers kept, no per-client rate-limit headers from the cache
        first = c.get("/feeds/penalty.atom")
        second = c.get("/feeds/penalty.atom")
        assert first.status_code == second.status_code == 200
        assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
        assert second.content == first.content
        assert (
            "content-security-policy" in second.headers and "ratelimit-limit" not in second.headers
        )
        # static files: cached for long
        css = c.get("/static/site.css")
        assert css.status_code == 200 and c.get("/static/site.css").headers["x-cache"] == "HIT"
        # body size: 1 MB by default, 55 MB for the request forms and their API
        big = b"x" * (2 * 1024 * 1024)
        assert c.post("/api/v1/credit-check", content=big).status_code == 413
        assert c.post("/requests/new", content=big).status_code != 413
        # metrics are not served to the outside
        assert c.get("/metrics").status_code == 404
        # the API flood guard: bursts beyond 50 get nginx's 429 (no RateLimit headers)
        statuses = [c.get("/api/v1/changes?since=0&limit=1") for _ in range(80)]
        nginx_429 = [
            r for r in statuses if r.status_code == 429 and "ratelimit-limit" not in r.headers
        ]
        assert nginx_429
