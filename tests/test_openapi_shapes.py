"""The OpenAPI document (/schema/openapi.json) describes the JSON the API really returns.

Real responses of every JSON endpoint (published records of every kind, the open-data index
after a build, the change log's 409, the requests API and the decision endpoint), on SQLite and
PostgreSQL, are validated against the schema the document gives for their status code, closed:
a property the document does not list fails as much as a missing or mistyped one. No JSON
response is documented as the empty schema {}, and the document's own examples fit their
schemas. And a listing's JSON links to its JSON pages (next_url, prev_url, first_url).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest
from litestar.testing import TestClient

from portal.api.schemas import EXAMPLE_RECORDS
from portal.app import create_app
from publishing import opendata, users
from publishing.contract import KINDS
from publishing.search.sync import reindex
from tests.api_helpers import GENEROUS, bulk_penalties, publish_csv, publish_ndjson
from tests.factories import blacklist_row, credit_mark_row, pledge_row, uscc
from tests.requests_support import PDF, Published, fields, files, publish_cases

JSON = "application/json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _closed(node: Any) -> Any:
    """The schema with `additionalProperties: false` on every object schema that lists its
    properties and says nothing else: what the document does not name, the API must not send."""
    if isinstance(node, list):
        return [_closed(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _closed(v) for k, v in node.items()}
    if isinstance(node.get("properties"), dict) and "additionalProperties" not in node:
        out["additionalProperties"] = False
    return out


class Spec:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.components = _closed(doc["components"])
        self.checked: set[tuple[str, str, int]] = set()

    def schema(self, method: str, path: str, status: int) -> dict[str, Any]:
        responses = self.doc["paths"][path][method.lower()]["responses"]
        assert str(status) in responses, f"{method} {path}: {status} is not documented"
        content = responses[str(status)].get("content") or {}
        assert JSON in content, f"{method} {path} {status}: documented as {list(content)}"
        return content[JSON]["schema"]

    def errors(self, schema: dict[str, Any], value: Any) -> list[str]:
        root = {"$schema": DRAFT, **_closed(schema), "components": self.components}
        validator = jsonschema_rs.validator_for(root)
        return [
            f"{'/'.join(map(str, e.instance_path))}: {e.message}"
            for e in validator.iter_errors(value)
        ]

    def check(self, method: str, path: str, response: Any, status: int = 200) -> Any:
        """The response's JSON, after checking it against the documented schema."""
        assert response.status_code == status, (path, response.status_code, response.text[:500])
        assert response.headers["content-type"].startswith(JSON), response.headers["content-type"]
        schema = self.schema(method, path, status)
        assert schema != {}, f"{method} {path} {status}: empty schema"
        body = response.json()
        problems = self.errors(schema, body)
        assert not problems, f"{method} {path} {status}:\n" + "\n".join(problems[:20])
        self.checked.add((method, path, status))
        return body


def _app(engine, opendata_dir=None):
    app = create_app(engine)
    app.state.rate_limits = GENEROUS
    if opendata_dir is not None:
        app.state.opendata_dir = str(opendata_dir)
    return app


@pytest.fixture
def site(engine, tmp_path) -> Iterator[tuple[TestClient, Spec, Published]]:
    """Every kind published, the search index built; the portal with its OpenAPI document."""
    cases = publish_cases(engine, tmp_path)  # penalties, one of them repairable now
    publish_csv(engine, tmp_path, "b.csv", [blacklist_row(5)])
    publish_csv(
        engine, tmp_path, "c.csv", [credit_mark_row(6, 标注类型="严重违法失信名单", 分类结果="")]
    )
    publish_csv(engine, tmp_path, "r.csv", [credit_mark_row(7)])  # 信用风险分类: figures only
    publish_ndjson(engine, tmp_path, "p.ndjson", [pledge_row(8, model_unit=True, refund_days=3)])
    reindex(engine)
    app = _app(engine, tmp_path / "open-data")
    with TestClient(app, base_url="https://testserver.local") as client:
        client.follow_redirects = False
        spec = Spec(client.get("/schema/openapi.json").json())
        yield client, spec, cases


def test_no_response_is_documented_as_an_empty_schema(site):
    _, spec, _ = site
    empty = [
        f"{method.upper()} {path} {status} {media}"
        for path, item in spec.doc["paths"].items()
        for method, op in item.items()
        for status, response in op.get("responses", {}).items()
        for media, content in (response.get("content") or {}).items()
        if content.get("schema") in ({}, None)
    ]
    assert not empty, empty
    listed = spec.doc["paths"]["/api/v1/changes"]["get"]["responses"]["409"]["content"][JSON]
    assert listed["schema"] == {"$ref": "#/components/schemas/CursorConflict"}


def test_the_decision_endpoint_declares_its_bearer_token(site):
    _, spec, _ = site
    op = spec.doc["paths"]["/api/v1/review/requests/{tracking_no}/decision"]["post"]
    assert op["security"] == [{"ReviewToken": []}]
    scheme = spec.doc["components"]["securitySchemes"]["ReviewToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


def test_the_documents_examples_fit_their_schemas(site):
    _, spec, _ = site
    for kind, example in EXAMPLE_RECORDS.items():
        ref = {"$ref": f"#/components/schemas/{spec_name(kind)}Record"}
        assert not spec.errors(ref, example), (kind, spec.errors(ref, example))
    seen = 0
    for path, item in spec.doc["paths"].items():
        for method, op in item.items():
            for status, response in op.get("responses", {}).items():
                content = (response.get("content") or {}).get(JSON) or {}
                for name, example in (content.get("examples") or {}).items():
                    problems = spec.errors(content["schema"], example["value"])
                    assert not problems, (method, path, status, name, problems)
                    seen += 1
    assert seen >= 20
    filler = [text for text in _example_strings(spec.doc) if FILLER.fullmatch(text)]
    assert not filler, filler


FILLER = re.compile(r"[A-Za-z]{20}")  # what Litestar makes up for an example when asked to


def _example_strings(node: Any, inside: bool = False) -> Iterator[str]:
    """Every string within an `examples` of the document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _example_strings(value, inside or key == "examples")
    elif isinstance(node, list):
        for value in node:
            yield from _example_strings(value, inside)
    elif isinstance(node, str) and inside:
        yield node


def spec_name(kind: str) -> str:
    return "".join(part.title() for part in kind.split("_"))


def test_the_pages_json_twins_as_documented(site):
    client, spec, cases = site
    get = client.get
    spec.check("GET", "/api/v1", get("/api/v1"))
    listings = {
        "penalty": spec.check("GET", "/api/v1/penalties", get("/api/v1/penalties")),
        "credit_mark": spec.check("GET", "/api/v1/credit-marks", get("/api/v1/credit-marks")),
        "return_pledge": spec.check(
            "GET",
            "/api/v1/return-pledges",
            get("/api/v1/return-pledges?district=开发区&from=2025-01-01"),
        ),
    }
    assert all(body["records"] for body in listings.values())
    spec.check("GET", "/api/v1/penalties", get("/api/v1/penalties?from=2026-13-01"), 400)
    spec.check("GET", "/api/v1/credit-marks/statistics", get("/api/v1/credit-marks/statistics"))
    issues = spec.check("GET", "/api/v1/blacklist", get("/api/v1/blacklist"))["issues"]
    issue = issues[0]["id"]
    entries = spec.check("GET", "/api/v1/blacklist/{issue_id}", get(f"/api/v1/blacklist/{issue}"))[
        "entries"
    ]
    spec.check("GET", "/api/v1/blacklist/{issue_id}", get("/api/v1/blacklist/bi-000000000000"), 404)
    # a record of every kind, each with its kind's own fields
    ids = {"blacklist": entries[0]["id"]}
    ids.update({kind: body["records"][0]["id"] for kind, body in listings.items()})
    for kind in KINDS:
        body = spec.check("GET", "/api/v1/records/{record_id}", get(f"/api/v1/records/{ids[kind]}"))
        assert body["record"]["kind"] == kind
    penalty = get(f"/api/v1/records/{ids['penalty']}").json()["record"]
    assert penalty["decision_no"] and penalty["fine_yuan"] == "5000.00"
    spec.check(
        "GET", "/api/v1/records/{record_id}", get("/api/v1/records/pn-0000000000000000"), 404
    )
    for code in (uscc(1), uscc(5), uscc(6), uscc(8)):
        profile = spec.check("GET", "/api/v1/entities/{uscc}", get(f"/api/v1/entities/{code}"))
        assert profile["records"]
    spec.check("GET", "/api/v1/entities/{uscc}", get("/api/v1/entities/913706020000000011"), 400)
    spec.check("GET", "/api/v1/entities/{uscc}", get(f"/api/v1/entities/{uscc(99)}"), 404)
    found = spec.check("GET", "/api/v1/search", get("/api/v1/search", params={"q": "烟台"}))
    assert found["hits"] and found["facets"]
    exact = spec.check("GET", "/api/v1/search", get("/api/v1/search", params={"q": uscc(1)}))
    assert exact["exact_match"]["id"] == uscc(1)
    wrong = spec.check("GET", "/api/v1/search", get("/api/v1/search?q=913706020000000011"))
    assert wrong["code_problem"]
    spec.check("GET", "/api/v1/search", get("/api/v1/search?sort=nope"), 400)


def test_the_open_data_api_as_documented(site, engine, tmp_path):
    client, spec, _ = site
    get = client.get
    page = spec.check("GET", "/api/v1/open-data", get("/api/v1/open-data"))
    assert page["index_url"] is None  # no build yet
    opendata.build(engine, out_dir=tmp_path / "open-data")
    spec.check("GET", "/api/v1/open-data", get("/api/v1/open-data"))
    index = spec.check("GET", "/open-data/index.json", get("/open-data/index.json"))
    types = {f["type"] for f in index["files"]}
    assert types == {"snapshot", "delta"}
    snapshot = next(f for f in index["files"] if f["type"] == "snapshot" and f["rows"])
    assert {"kind", "format", "rows", "content_bytes", "content_sha256"} <= set(snapshot)
    delta = next(f for f in index["files"] if f["type"] == "delta")
    assert delta["events"] and delta["from_seq"] <= delta["to_seq"]
    codes = [uscc(1), uscc(5), uscc(6), "913706020000000011"]
    spec.check("GET", "/api/v1/credit-check", get(f"/api/v1/credit-check?uscc={codes[1]}"))
    spec.check(
        "POST", "/api/v1/credit-check", client.post("/api/v1/credit-check", json={"uscc": codes})
    )
    spec.check("GET", "/api/v1/credit-check", get("/api/v1/credit-check"), 400)


def test_the_change_log_and_its_conflicts_as_documented(site):
    client, spec, _ = site
    get = client.get
    page = spec.check("GET", "/api/v1/changes", get("/api/v1/changes?since=0"))
    assert {c["record"]["kind"] for c in page["changes"] if c["record"]} == set(KINDS)
    head = int(page["next"].split(".")[0])
    ahead = spec.check("GET", "/api/v1/changes", get(f"/api/v1/changes?since={head + 5}"), 409)
    assert ahead["status"] == "cursor_ahead" and ahead["head"] == head
    unknown = spec.check(
        "GET", "/api/v1/changes", get("/api/v1/changes?since=1.0000000000000000"), 409
    )
    assert unknown["status"] == "cursor_unknown" and unknown["cursor"] == "1.0000000000000000"
    spec.check("GET", "/api/v1/changes", get("/api/v1/changes?since=next"), 400)


def test_requests_and_decisions_as_documented(site, engine):
    client, spec, cases = site
    submit = "/api/v1/requests"
    data = fields(uscc=cases.repairable_uscc, record_ids=[cases.repairable])
    upload = files(("proof.pdf", PDF, "application/pdf"))
    receipt = spec.check("POST", submit, client.post(submit, data=data, files=upload), 201)
    wrong = {**data, "uscc": "913706020000000011", "reason": "短"}
    spec.check("POST", submit, client.post(submit, data=wrong, files=upload), 422)
    spec.check("POST", submit, client.post(submit, json=data), 415)
    status = "/api/v1/requests/{tracking_no}"
    number = receipt["tracking_no"]
    code = {"X-Access-Code": receipt["access_code"]}
    view = spec.check("GET", status, client.get(f"{submit}/{number}", headers=code))
    assert view["steps"]
    spec.check("GET", status, client.get(f"{submit}/{number}", headers={"X-Access-Code": "X"}), 404)

    path = "/api/v1/review/requests/{tracking_no}/decision"
    url = f"/api/v1/review/requests/{number}/decision"
    body = {
        "decision": "approve",
        "outcome": "withdraw",
        "reason": "已履行处罚决定，准予信用修复。",
    }
    spec.check("POST", path, client.post(url, json=body), 401)
    users.add_user(engine, "li", "reviewer", "correct horse battery staple")
    users.add_user(engine, "wang", "approver", "correct horse battery staple")
    reviewer = {"Authorization": f"Bearer {users.new_token(engine, 'li')}"}
    approver = {"Authorization": f"Bearer {users.new_token(engine, 'wang')}"}
    spec.check("POST", path, client.post(url, json=body, headers=reviewer), 403)
    spec.check("POST", path, client.post(url, json=[body], headers=approver), 400)
    spec.check(
        "POST", path, client.post(url, json={**body, "decision": "maybe"}, headers=approver), 422
    )
    spec.check("POST", path, client.post(url, json={**body, "reason": ""}, headers=approver), 422)
    missing = "/api/v1/review/requests/YX20990101-000001/decision"
    spec.check("POST", path, client.post(missing, json=body, headers=approver), 404)
    done = spec.check("POST", path, client.post(url, json=body, headers=approver))
    assert done["status"] == "approved" and done["records"][0]["id"] == cases.repairable
    spec.check("POST", path, client.post(url, json=body, headers=approver), 409)
    spec.check("GET", status, client.get(f"{submit}/{number}", headers=code))  # decided

    # the repaired record is gone: 410 on its page, null in the change log
    gone = "/api/v1/records/{record_id}"
    spec.check("GET", gone, client.get(f"/api/v1/records/{cases.repairable}"), 410)
    log = spec.check("GET", "/api/v1/changes", client.get("/api/v1/changes?since=0"))
    assert any(c["record"] is None for c in log["changes"])


def test_a_listings_json_links_to_its_json_pages(engine):
    """next_url, prev_url and first_url of a listing's JSON twin are JSON twin URLs, as its
    Link rel=next is; the HTML page still links to HTML pages."""
    bulk_penalties(engine, 120)
    with TestClient(_app(engine)) as client:
        spec = Spec(client.get("/schema/openapi.json").json())
        first = client.get("/api/v1/penalties?district=370602")
        body = spec.check("GET", "/api/v1/penalties", first)
        assert body["next_url"] == f"/api/v1/penalties?district=370602&next={body['next']}"
        assert f'<{body["next_url"]}>; rel="next"' in first.headers["link"]
        second = spec.check("GET", "/api/v1/penalties", client.get(body["next_url"]))
        assert second["prev_url"] == f"/api/v1/penalties?district=370602&before={second['prev']}"
        assert second["first_url"] == "/api/v1/penalties?district=370602"
        back = client.get(second["prev_url"]).json()
        assert [r["id"] for r in back["records"]] == [r["id"] for r in body["records"]]
        assert client.get(second["first_url"]).json()["records"] == body["records"]
        html = client.get("/penalties?district=370602")
        assert f'href="/penalties?district=370602&amp;next={body["next"]}" rel="next"' in html.text
        assert (
            f'</penalties?district=370602&next={body["next"]}>; rel="next"' in html.headers["link"]
        )
        page2 = client.get(f"/penalties?district=370602&next={body['next']}").text
        assert f'href="/penalties?district=370602&amp;before={second["prev"]}" rel="prev"' in page2


def test_the_document_lists_the_json_a_request_body_takes(site):
    """The endpoints that read their bodies themselves document them all the same."""
    _, spec, _ = site
    intake = spec.doc["paths"]["/api/v1/requests"]["post"]["requestBody"]["content"]
    assert "record_ids" in intake["multipart/form-data"]["schema"]["properties"]
    decision = spec.doc["paths"]["/api/v1/review/requests/{tracking_no}/decision"]["post"]
    body = decision["requestBody"]["content"][JSON]
    example = next(iter(body["examples"].values()))["value"]
    assert not spec.errors(body["schema"], example)
    assert {"401", "403", "404", "409", "422"} <= set(decision["responses"])
