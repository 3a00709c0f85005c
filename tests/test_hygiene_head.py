"""HEAD wherever GET is (as the CORS preflight advertises): the same status and headers, no
body. And the OpenAPI document: readable by any site (CORS), with the error responses of the
records and entities (404, 410, 429) documented as they are sent."""

from __future__ import annotations

import pytest
from litestar.routes import HTTPRoute

from portal.pages.entities import NOT_PUBLISHED
from portal.pages.records import GONE_DETAIL
from tests.api_helpers import api_client, publish_csv
from tests.factories import PENALTY_HEADER, blacklist_row, credit_mark_row, penalty_row, uscc

# Headers whose values may differ between two requests (time, rate-limit counters, a new
# form's client cookie, the request id): only their presence is compared.
VOLATILE = {"date", "ratelimit-remaining", "ratelimit-reset", "set-cookie", "x-request-id"}


@pytest.fixture
def data(engine, tmp_path):
    publish_csv(engine, tmp_path, "p.csv", [penalty_row(1), penalty_row(2)])
    publish_csv(engine, tmp_path, "b.csv", [blacklist_row(3)])
    publish_csv(engine, tmp_path, "c.csv", [credit_mark_row(4)])
    publish_csv(
        engine, tmp_path, "w.csv", [penalty_row(2, 操作="撤销")], header=[*PENALTY_HEADER, "操作"]
    )
    return engine


def _record_ids(client) -> tuple[str, str]:
    penalties = client.get("/api/v1/penalties").json()["records"]
    changes = client.get("/api/v1/changes").json()["changes"]
    withdrawn = next(c["record_id"] for c in changes if c["op"] == "withdraw")
    return penalties[0]["id"], withdrawn


def test_head_answers_like_get(data):
    with api_client(data) as client:
        live, withdrawn = _record_ids(client)
        urls = [
            "/", "/search?q=测试", "/penalties", "/credit-marks", "/return-pledges", "/blacklist",
            f"/entities/{uscc(1)}", f"/records/{live}", f"/records/{withdrawn}",
            f"/entities/{uscc(1).lower()}",  # the redirect to the canonical URL
            "/api/v1", "/api/v1/search?q=测试", "/api/v1/penalties", "/api/v1/blacklist",
            f"/api/v1/entities/{uscc(1)}", f"/api/v1/records/{live}",
            f"/api/v1/records/{withdrawn}", f"/api/v1/entities/{uscc(999)}",
            "/api/v1/changes", f"/api/v1/credit-check?uscc={uscc(1)}", "/api/v1/open-data",
            "/healthz", "/healthz/live", "/healthz/ready", "/robots.txt", "/requests/new",
            "/feeds/penalty.atom", "/open-data/penalty.csv",
        ]
        for url in urls:
            get = client.get(url, follow_redirects=False)
            head = client.head(url, follow_redirects=False)
            assert head.status_code == get.status_code, (url, head.status_code, get.status_code)
            assert head.content == b"", url
            assert set(head.headers) == set(get.headers), url
            same = {k: v for k, v in get.headers.items() if k not in VOLATILE}
            assert {k: v for k, v in head.headers.items() if k not in VOLATILE} == same, url


def test_every_get_route_has_head(data):
    with api_client(data) as client:
        missing = [
            route.path
            for route in client.app.routes
            if isinstance(route, HTTPRoute)
            and "GET" in route.methods
            and "HEAD" not in route.methods
            and not route.path.startswith("/schema")  # Litestar's own, added after our plugins
        ]
        assert not missing


def test_openapi_document_is_open_and_documents_the_errors(data):
    with api_client(data) as client:
        r = client.get("/schema/openapi.json")
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
        preflight = client.options("/schema/openapi.json", headers={
            "Origin": "https://example.org", "Access-Control-Request-Method": "GET"})
        assert preflight.headers.get("access-control-allow-origin") == "*", preflight.headers
        paths = r.json()["paths"]
        record = paths["/api/v1/records/{record_id}"]["get"]["responses"]
        assert {"200", "400", "404", "410", "429"} <= set(record)
        gone = record["410"]["content"]["application/json"]
        assert {"id", "status", "status_code", "detail"} <= set(
            r.json()["components"]["schemas"][gone["schema"]["$ref"].rsplit("/", 1)[1]][
                "properties"
            ]
        )
        entity = paths["/api/v1/entities/{uscc}"]["get"]["responses"]
        assert {"200", "400", "404", "429"} <= set(entity)
        assert "本系统只收录有公示记录的主体" in str(entity["404"])
        issue = paths["/api/v1/blacklist/{issue_id}"]["get"]["responses"]
        assert {"404", "410"} <= set(issue)
        assert "429" in paths["/api/v1/penalties"]["get"]["responses"]


def test_gone_and_not_found_bodies_have_the_error_shape(data):
    with api_client(data) as client:
        _, withdrawn = _record_ids(client)
        r = client.get(f"/api/v1/records/{withdrawn}")
        assert r.status_code == 410
        assert r.json() == {
            "id": withdrawn,
            "status": "gone",
            "status_code": 410,
            "detail": GONE_DETAIL,
        }
        r = client.get(f"/api/v1/entities/{uscc(999)}")
        assert r.json() == {"status_code": 404, "detail": NOT_PUBLISHED.format(code=uscc(999))}
