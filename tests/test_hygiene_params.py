"""Bad parameters are bad requests (400: a page, or the API's error object), never a server
error: characters no XML document or PostgreSQL text can hold (NUL, other C0 controls,
U+FFFE …) in any path or query, in a paging token, an empty paging token's parts, and an
archive `before` beyond any seq."""

from __future__ import annotations

import pytest

from portal.pages.common import UNUSABLE_DETAIL, encode_token, reject_unusable_characters
from tests.api_helpers import api_client, publish_csv
from tests.factories import blacklist_row, credit_mark_row, penalty_row, uscc

HUGE = "99999999999999999999999"
NUL_TOKEN = encode_token("2026-06-01", "pe-\u0000")
EMPTY_TOKEN = encode_token("", "")  # an empty date parsed as None, which reached the query
CODE = uscc(1)
BAD_URLS = [
    f"/feeds/penalty.atom?before={HUGE}",
    f"/feeds/penalty.rss?before={HUGE}",
    f"/feeds/penalty/370602.atom?before={HUGE}",
    f"/entities/{CODE}/feed.atom?before={HUGE}",
    "/search/feed.atom?q=%01",
    "/search/feed.atom?q=%EF%BF%BE",
    "/search/feed.atom?q=a%00b",
    "/search/feed.rss?q=a%00b",
    "/search/feed.atom?district=%00",
    "/api/v1/penalties?category=%00",
    "/api/v1/credit-marks?category=%00",
    "/penalties?category=%00",
    "/api/v1/blacklist/%00",
    "/blacklist/%00",
    "/entities/%00/feed.atom",
    "/api/v1/entities/%00",
    "/records/%00",
    "/api/v1/search?q=%00",
    "/api/v1/changes?kind=%00",
    f"/api/v1/credit-check?uscc={CODE}%00",
    "/open-data/penalty.csv?x=%1F",
    f"/api/v1/penalties?next={NUL_TOKEN}",
    f"/api/v1/penalties?before={NUL_TOKEN}",
    f"/credit-marks?next={NUL_TOKEN}",
    f"/api/v1/entities/{CODE}?next={NUL_TOKEN}",
    f"/penalties?next={EMPTY_TOKEN}",
    f"/penalties?before={EMPTY_TOKEN}",
    f"/api/v1/credit-marks?next={EMPTY_TOKEN}",
    f"/entities/{CODE}?next={EMPTY_TOKEN}",
]


@pytest.fixture
def data(engine, tmp_path):
    publish_csv(engine, tmp_path, "p.csv", [penalty_row(1), penalty_row(2)])
    publish_csv(engine, tmp_path, "b.csv", [blacklist_row(3)])
    publish_csv(engine, tmp_path, "c.csv", [credit_mark_row(4)])
    return engine


def test_bad_parameters_are_400(data):
    with api_client(data) as client:
        for url in BAD_URLS:
            r = client.get(url)
            assert r.status_code == 400, (url, r.status_code, r.text[:300])
            if url.startswith("/api/"):
                body = r.json()
                assert set(body) == {"status_code", "detail"} and body["status_code"] == 400, url
            else:
                assert r.headers["content-type"].startswith("text/html"), url
                assert "请求有误" in r.text, url
        r = client.get("/api/v1/blacklist/%00")
        assert r.json()["detail"] == UNUSABLE_DETAIL
        assert r.headers["access-control-allow-origin"] == "*"  # errors are readable too


def test_what_xml_allows_is_still_searched(data):
    with api_client(data) as client:
        for q in ("a%09b", "%E6%B5%8B%E8%AF%95%0A", "%C2%85", "%EF%BF%BD"):  # tab, LF, NEL, U+FFFD
            assert client.get(f"/search/feed.atom?q={q}").status_code == 200, q
            assert client.get(f"/api/v1/search?q={q}").status_code == 200, q
        assert client.get("/feeds/penalty.atom?before=9223372036854775807").status_code == 200


def test_every_handler_runs_the_guard(data):
    """The guard is the app's before_request: a layer with its own would replace it."""
    with api_client(data) as client:
        handlers = [
            handler
            for route in client.app.routes
            for handler in getattr(route, "route_handlers", ())
        ]
        assert len(handlers) > 40
        assert {h.resolve_before_request() for h in handlers} == {reject_unusable_characters}
