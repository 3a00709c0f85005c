"""deploy/nginx.conf in front of a real portal process, and the limits behind it: the client
address is the one nginx sees (a client naming its own in X-Forwarded-For neither escapes the
rate limits nor locks someone else out), /metrics is not served outside however it is spelled,
feeds carry the application's one Cache-Control, open-data downloads pass unchanged (strong
ETag, Content-Length), nginx follows restarted portal containers (resolve), its feed cache
holds public feeds only (never an answer that sets a cookie or is marked private / no-store, and
never a back-office or request-form path ending in .rss/.atom; and its feeds have the pages' flood
guard), and made-up API keys count against the client's address instead of costing a database
lookup each."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import event

from portal.ratelimit import Limit, RateLimitConfig
from publishing import apikeys, opendata
from publishing.db import make_engine, upgrade
from publishing.publish import publish
from publishing.users import add_user
from tests.api_helpers import api_client
from tests.factories import penalty_row, uscc, write_csv
from tests.requests_support import wait_for
from tests.servers import free_port, portal_server, self_signed_cert, stop
from tests.test_two_processes import NGINX, render_nginx_conf

ROOT = Path(__file__).resolve().parent.parent
CONF = (ROOT / "deploy" / "nginx.conf").read_text()
SECRET = "proxy-test-secret-key-of-more-than-32-characters"
REVIEWER, PASSWORD = "reviewer1", "correct horse battery staple"


# -- the configuration as written ------------------------------------------------------------


def _directives(block: str) -> list[str]:
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def _upstream() -> list[str]:
    return _directives(re.search(r"upstream portal \{(.*?)\}", CONF, re.S).group(1))


def test_the_client_address_passed_on_is_the_one_nginx_sees():
    lines = _directives(CONF)
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in lines
    assert "proxy_set_header X-Real-IP $remote_addr;" in lines
    assert "$proxy_add_x_forwarded_for" not in CONF  # would keep what the client wrote


def test_nginx_looks_the_portals_up_again():
    """`docker compose up -d portal1` gives the container a new address: nginx resolves the names
    again (Docker's DNS), which needs `zone` and nginx >= 1.27.3 (the image compose pins)."""
    assert re.search(r"^\s*resolver 127\.0\.0\.11 valid=\d+s", CONF, re.M)
    upstream = _upstream()
    servers = [d for d in upstream if d.startswith("server ")]
    assert len(servers) == 2 and all(d.rstrip(";").split()[-1] == "resolve" for d in servers)
    assert any(d.startswith("zone portal ") for d in upstream)
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    tag = compose["services"]["nginx"]["image"].split(":", 1)[1]
    version = tuple(int(x) for x in re.match(r"(\d+)\.(\d+)\.(\d+)", tag).groups())
    assert version >= (1, 27, 3), tag


# -- nginx in front of a portal --------------------------------------------------------------


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory) -> Path:
    """The folder of `site`: its database, and nginx/ with nginx's access.log."""
    return tmp_path_factory.mktemp("proxy")


@pytest.fixture(scope="module")
def site(site_dir):
    """A portal process on SQLite with published data and open-data files, and deploy/nginx.conf
    in front of it: (nginx's https base, the portal's own base)."""
    if NGINX is None:
        pytest.fail("nginx is not installed (apt-get install nginx-light)")
    tmp = site_dir
    url = f"sqlite:///{tmp / 'disclosure.db'}"
    engine = make_engine(url)
    upgrade(engine)
    rows = [penalty_row(i) for i in range(1, 30)]
    assert publish(
        [write_csv(tmp / "p.csv", rows)],
        engine=engine,
        today=date(2026, 11, 27),
        show_progress=False,
    ).published
    opendata.build(engine, tmp / "var" / "opendata")
    add_user(engine, REVIEWER, "reviewer", PASSWORD)
    engine.dispose()
    env = {
        "DISCLOSURE_DATABASE_URL": url,
        "DISCLOSURE_DATA_DIR": str(tmp / "var"),
        "DISCLOSURE_SECRET_KEY": SECRET,
    }
    with (
        portal_server(env) as (portal, _),
        _nginx(portal.removeprefix("http://"), tmp / "nginx") as https,
    ):
        yield https, portal


class _nginx:
    """nginx with deploy/nginx.conf (this machine's ports and paths) in front of `upstream`."""

    def __init__(self, upstream: str, tmp: Path) -> None:
        self.upstream, self.tmp = upstream, tmp

    def __enter__(self) -> str:
        tmp = self.tmp
        self_signed_cert(tmp / "tls")
        (tmp / "cache").mkdir()
        https = free_port()
        conf = tmp / "nginx.conf"
        conf.write_text(render_nginx_conf([self.upstream], free_port(), https, tmp))
        check = subprocess.run(
            [NGINX, "-t", "-c", str(conf), "-p", str(tmp)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"])
        base = f"https://127.0.0.1:{https}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(base + "/healthz/live", verify=False, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        return base

    def __exit__(self, *exc) -> None:
        stop(self.proc, 10)


def test_a_client_cannot_name_its_own_address(site):
    """Each request claims another address in X-Forwarded-For: all count as the one client
    nginx sees (before: each claimed address had a fresh allowance, and could be a reviewer's
    office address to lock out)."""
    https, _ = site
    with httpx.Client(base_url=https, verify=False, timeout=10) as c:
        left = [
            int(
                c.get(
                    "/api/v1/changes?since=0&limit=1",
                    headers={"X-Forwarded-For": f"203.0.113.{i}", "X-Real-IP": f"203.0.113.{i}"},
                ).headers["ratelimit-remaining"]
            )
            for i in range(1, 5)
        ]
    # one count going down (at a minute's boundary it may pause once)
    assert left == sorted(left, reverse=True) and left[0] - left[-1] >= 2, left


def test_metrics_are_not_served_outside_in_any_spelling(site):
    https, portal = site
    assert "disclosure_http" in httpx.get(portal + "/metrics/").text  # what is at stake
    with httpx.Client(base_url=https, verify=False, timeout=10) as c:
        for path in ("/metrics", "/metrics/", "/metrics/?x=1", "/%6Detrics/", "/metrics/x.atom"):
            r = c.get(path)
            assert r.status_code == 404 and "disclosure_" not in r.text, path


def test_feeds_carry_the_applications_one_cache_control(site):
    https, portal = site
    own = httpx.get(portal + "/feeds/penalty.atom").headers.get_list("cache-control")
    with httpx.Client(base_url=https, verify=False, timeout=10) as c:
        for _ in range(2):  # filled from the portal, then from nginx's cache
            r = c.get("/feeds/penalty.atom")
            assert r.status_code == 200
            assert r.headers.get_list("cache-control") == own == [own[0]]


# -- the feed cache holds public feeds only --------------------------------------------------


def _login(c: httpx.Client) -> None:
    page = c.get("/review/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = c.post("/review/login", data={"name": REVIEWER, "password": PASSWORD, "csrf": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/review", r.text


def test_a_reviewers_answer_is_not_replayed_to_anyone_else(site):
    """The feed location was a regex (`\\.rss$`), which wins over prefixes, and ignored
    Set-Cookie: a reviewer's 404 for /review/....rss was cached with his session cookie and
    served to the next anonymous client, whose cookie then opened the back office."""
    https, _ = site
    path = "/review/requests/YT20261127-000099.rss"
    with (
        httpx.Client(base_url=https, verify=False, timeout=10) as anonymous,
        httpx.Client(base_url=https, verify=False, timeout=10) as reviewer,
    ):
        assert anonymous.get(path).status_code == 303  # to the login form
        _login(reviewer)
        own = reviewer.get(path)
        assert own.status_code == 404 and "review_session=" in own.headers["set-cookie"]
        again = anonymous.get(path)
        assert again.status_code == 303 and "set-cookie" not in again.headers
        assert "x-cache" not in own.headers and "x-cache" not in again.headers  # not the cache's
        assert anonymous.get("/review").status_code == 303


def test_request_form_answers_are_not_cached(site):
    """/requests/abc.atom is a request-form page (no-store, the client's own rq_client cookie
    and form token), not a feed: every visitor within 60 s got the first one's."""
    https, _ = site
    answers = []
    for path in ("/requests/abc.atom", "/requests/abc.atom", "/api/v1/requests/abc.rss"):
        with httpx.Client(base_url=https, verify=False, timeout=10) as c:
            answers.append(c.get(path))
    assert all("x-cache" not in r.headers for r in answers), [r.headers for r in answers]
    first, second = (r.headers.get_list("set-cookie") for r in answers[:2])
    assert first and second and first != second  # each visitor's own cookie


def test_public_feeds_are_cached(site):
    """Each feed path of portal/feeds.py still goes through the 60 s cache."""
    https, _ = site
    paths = (
        "/feeds/penalty.rss",
        "/feeds/penalty/370602.atom",
        f"/entities/{uscc(1)}/feed.rss",
        "/search/feed.atom?q=%E9%A3%9F%E5%93%81",
        "/feeds/no-such-kind.atom",  # a 404, cached 10 s
    )
    with httpx.Client(base_url=https, verify=False, timeout=10) as c:
        for path in paths:
            first, second = c.get(path), c.get(path)
            assert "set-cookie" not in first.headers, path
            assert first.headers["x-cache"] in {"MISS", "EXPIRED", "HIT"}, path
            assert second.headers["x-cache"] == "HIT" and second.text == first.text, path


class _FeedOrigin(BaseHTTPRequestHandler):
    """Feed URLs answered with this test's headers: the portal's public feeds set no cookie and
    are public, so what the cache does with the others is seen on a stand-in."""

    protocol_version = "HTTP/1.1"
    HEADERS = {
        "/feeds/cookie.atom": {"Set-Cookie": "who=them; Path=/; Secure"},
        "/feeds/private.atom": {"Cache-Control": "private, max-age=60"},
        "/feeds/no-store.atom": {"Cache-Control": "no-store"},
        "/feeds/public.atom": {"Cache-Control": "public, max-age=60"},
    }
    served = 0

    def do_GET(self) -> None:
        _FeedOrigin.served += 1
        body = f"<feed>{_FeedOrigin.served}</feed>".encode()
        self.send_response(200)
        for name, value in self.HEADERS.get(self.path, {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/atom+xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@contextmanager
def _nginx_before_feed_origin(tmp: Path) -> Iterator[httpx.Client]:
    """A client of deploy/nginx.conf in front of _FeedOrigin."""
    origin = ThreadingHTTPServer(("127.0.0.1", 0), _FeedOrigin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    try:
        with (
            _nginx(f"127.0.0.1:{origin.server_port}", tmp) as https,
            httpx.Client(base_url=https, verify=False, timeout=10) as c,
        ):
            yield c
    finally:
        origin.shutdown()
        origin.server_close()


def test_the_feed_cache_never_stores_private_answers(tmp_path):
    """Whatever a feed URL answers: one that sets a cookie, or that the application marks
    private / no-store, is each client's own, from the upstream every time."""
    with _nginx_before_feed_origin(tmp_path) as c:
        for path in ("/feeds/cookie.atom", "/feeds/private.atom", "/feeds/no-store.atom"):
            first, second = c.get(path), c.get(path)
            assert second.headers["x-cache"] != "HIT" and second.text != first.text, path
        first, second = c.get("/feeds/public.atom"), c.get("/feeds/public.atom")
        assert second.headers["x-cache"] == "HIT" and second.text == first.text


def test_feeds_have_the_pages_flood_guard(tmp_path):
    """Every search's feed is a URL of its own (`/search/feed.atom?q=…`), so the cache does not
    stand between a flood and the application: the feed location had no limit_req at all."""
    with _nginx_before_feed_origin(tmp_path) as c:
        first = c.get("/search/feed.atom?q=q0")
        with ThreadPoolExecutor(8) as pool:  # a flood, not one polite client
            answers = list(pool.map(lambda i: c.get(f"/search/feed.atom?q=q{i}"), range(1, 160)))
    refused = [r for r in answers if r.status_code == 429]
    assert refused and all("nginx" in r.text for r in refused)
    assert first.status_code == 200


def test_open_data_downloads_pass_unchanged(site):
    """Not compressed on the way: the ETag stays strong, Content-Length and Repr-Digest describe
    the bytes the client gets."""
    https, portal = site
    own = httpx.get(portal + "/open-data/penalty.csv")
    assert own.status_code == 200 and len(own.content) > 1024  # gzip would apply to its size
    with httpx.Client(base_url=https, verify=False, timeout=10) as c:
        r = c.get("/open-data/penalty.csv", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and "content-encoding" not in r.headers
    assert r.headers["etag"] == own.headers["etag"] and not r.headers["etag"].startswith("W/")
    assert int(r.headers["content-length"]) == len(r.content) == len(own.content)
    digest = base64.b64encode(hashlib.sha256(r.content).digest()).decode()
    assert r.headers["repr-digest"] == f"sha-256=:{digest}:"


def test_nginx_access_log_leaves_the_query_string_out(site, site_dir):
    """A query may carry an ID number searched for or a `?code=` access code: nginx logs the
    path only (it logged $request_uri, query string and all)."""
    https, _ = site
    id_number, code = "370602198001181233", "ZX7Q-K4P9-SECRET"
    with httpx.Client(base_url=https, verify=False, timeout=10) as c:
        assert c.get(f"/search?q={id_number}").status_code == 200
        assert c.get(f"/requests/YT20261127A1?code={code}").status_code == 200
    log = site_dir / "nginx" / "access.log"

    def uris() -> set[str]:
        return {json.loads(line)["uri"] for line in log.read_text(encoding="utf-8").splitlines()}

    # nginx writes a request's line after sending its response: wait for it
    assert wait_for(lambda: {"/search", "/requests/YT20261127A1"} <= uris(), 10.0), uris()
    logged = log.read_text(encoding="utf-8")
    assert id_number not in logged and code not in logged, logged
    # nginx's flood guard (burst 10 on /requests) rejects: its error log names the request line
    with httpx.Client(base_url=https, verify=False, timeout=10) as c:
        answers = [c.get(f"/requests/YT20261127A1?code={code}") for _ in range(14)]
    assert any(r.status_code == 429 and "nginx" in r.text for r in answers)
    errors = site_dir / "nginx" / "error.log"
    assert code not in (errors.read_text(encoding="utf-8") if errors.exists() else "")


# -- the application's side: made-up API keys -----------------------------------------------

TIGHT = RateLimitConfig(api=Limit(3, 60), bulk=Limit(5, 60), key_factor=10)


def test_made_up_api_keys_count_against_the_address(engine):
    """A bad key used to get 401 before any limit (nginx's flood guard leaves keyed requests to
    the application): random keys cost a database lookup each, without end. Now a bad key's
    request counts against the address, and lookups of keys not in the cache are limited per
    address; a real key in the cache is not held back by either."""
    real = apikeys.create_key(engine, "烟台市发展和改革委员会")
    lookups: list[str] = []

    def count(conn, cursor, statement, *_):
        if "api_keys" in statement and "key_hash" in statement:  # not the generation read
            lookups.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with api_client(engine, limits=TIGHT) as client:
            assert client.get("/api/v1/changes", headers={"X-API-Key": real}).status_code == 200
            same = [
                client.get("/api/v1/changes", headers={"X-API-Key": "dk_not-a-key"})
                for _ in range(4)
            ]
            assert [r.status_code for r in same] == [401, 401, 401, 429]
            assert [r.headers["ratelimit-remaining"] for r in same] == ["2", "1", "0", "0"]
            assert "X-API-Key" in same[0].json()["detail"] and same[3].headers["retry-after"]
            # the address's allowance went on them
            assert client.get("/api/v1/changes").status_code == 429
            assert len(lookups) == 2  # the real key once, the bad key once (then cached)
            made_up = [
                client.get("/api/v1/changes", headers={"X-API-Key": f"dk_made-up-{i}"})
                for i in range(10)
            ]
            assert {r.status_code for r in made_up} == {429}
            assert len(lookups) == 3  # of 3 a minute for this address
            assert client.get("/api/v1/changes", headers={"X-API-Key": real}).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
