"""What an API consumer or a feed subscriber reads: error details in Chinese that name what is
wrong (malformed JSON with its byte, 405 with the allowed methods, a missing parameter by name)
in the documented {status_code, detail} shape, the credit check's own documented 400 examples;
feed archive pages cached for minutes and free of a record withdrawn on a credit repair; the
/feeds help page telling subscribers about withdrawals, archives and conditional GETs."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from lxml import etree

from portal.feeds import ARCHIVE_MAX_AGE, CURRENT_MAX_AGE
from publishing import review, users
from publishing.feeds import DELETED_TITLE, MOVED_TITLE, PAGE_SIZE
from publishing.publish import publish
from tests.api_helpers import api_client
from tests.factories import penalty_row, write_csv
from tests.requests_support import months_ago, publish_cases, submit_request

JSON = {"content-type": "application/json"}
NS = {
    "a": "http://www.w3.org/2005/Atom",
    "at": "http://purl.org/atompub/tombstones/1.0",
    "fh": "http://purl.org/syndication/history/1.0",
}
# Names a detail may carry: standards, HTTP methods, and the parameters it names.
METHODS = {"GET", "HEAD", "OPTIONS", "POST", "DELETE", "PUT"}
NAMES = {"JSON", "UTF", *METHODS, "uscc", "limit", "kind", "since"}


def english(detail: str) -> list[str]:
    """Latin words in a detail other than names: English text left for the person."""
    return [w for w in re.findall(r"[A-Za-z]+", detail) if w not in NAMES]


def problem(r, status: int) -> str:
    """The documented error shape (portal.api.schemas.Problem); its detail."""
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"status_code", "detail"} and body["status_code"] == status, body
    assert not english(body["detail"]), body["detail"]
    return body["detail"]


# -- error details ----------------------------------------------------------------------------


def test_a_malformed_json_body_is_said_in_chinese_with_where_it_breaks(
    engine, caplog, monkeypatch
):
    url = "/api/v1/credit-check"
    with api_client(engine) as client:
        # set up by the app: Litestar's logger does not propagate to the root, where caplog is
        monkeypatch.setattr(logging.getLogger("litestar"), "handlers", [caplog.handler])
        detail = problem(client.post(url, content=b"not json", headers=JSON), 400)
        assert detail == "请求体不是有效的 JSON：第 5 个字节处有误。"
        detail = problem(client.post(url, content=b'{"uscc": [', headers=JSON), 400)
        assert detail.startswith("请求体不是有效的 JSON：") and "不完整" in detail
        # bytes that are not UTF-8: the client's error, not a server error (was a 500)
        detail = problem(client.post(url, content=b'{"uscc": ["\xff"]}', headers=JSON), 400)
        assert detail == "请求体不是有效的 JSON：含有不是 UTF-8 编码的字节。"
        # and not logged as an uncaught server error (anyone could fill the log with them)
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        # valid JSON of the wrong shape: the field named
        assert problem(client.post(url, content=b"{}", headers=JSON), 400) == (
            "请求体缺少必填字段：uscc"
        )
        assert problem(client.post(url, content=b'{"uscc": ["a", 3]}', headers=JSON), 400) == (
            "请求体字段格式不正确：uscc[1]"
        )
        assert problem(client.post(url, content=b"", headers=JSON), 400) == "缺少请求体"


def test_a_missing_or_malformed_parameter_is_named(engine):
    with api_client(engine) as client:
        assert problem(client.get("/api/v1/credit-check"), 400) == "缺少必填参数：uscc"
        too_long = client.get("/api/v1/credit-check", params={"uscc": "9" * 65})
        assert problem(too_long, 400) == "请求参数格式不正确：uscc"
        both = client.get("/api/v1/changes", params={"limit": "x", "kind": "zzz"})
        assert problem(both, 400) == "请求参数格式不正确：limit、kind"
        # what the changes API has always said (tests/test_changes_cursor.py)
        assert problem(client.get("/api/v1/changes?since=abc"), 400) == "请求参数格式不正确：since"


def test_a_method_not_allowed_says_which_are(engine):
    with api_client(engine) as client:
        r = client.delete("/api/v1/changes")
        assert problem(r, 405) == "不支持该请求方法：DELETE。此地址支持：GET、HEAD、OPTIONS。"
        assert {m.strip() for m in r.headers["allow"].split(",")} == {"GET", "HEAD", "OPTIONS"}
        r = client.put("/api/v1/credit-check")
        assert problem(r, 405) == "不支持该请求方法：PUT。此地址支持：GET、HEAD、OPTIONS、POST。"
        page = client.delete("/penalties")  # a page: the same words, as HTML
        assert page.status_code == 405 and page.headers["allow"]
        assert "不支持该请求方法：DELETE。" in page.text and "Method Not Allowed" not in page.text


def test_litestar_english_never_reaches_a_page(engine):
    """A form Litestar's multipart parser rejects (its detail is English) on a page."""
    with api_client(engine) as client:
        r = client.post(
            "/requests/new", content=b"x", headers={"content-type": "multipart/form-data"}
        )
        assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
        assert "multipart" not in r.text and "请求格式不正确" in r.text


def test_the_credit_checks_documented_400s_are_its_own_and_true(engine):
    with api_client(engine) as client:
        paths = client.get("/schema/openapi.json").json()["paths"]["/api/v1/credit-check"]
        examples = {
            method: paths[method]["responses"]["400"]["content"]["application/json"]["examples"]
            for method in ("get", "post")
        }
        for method, found in examples.items():
            assert "since" not in str(found), (method, found)
        [get_example] = [e["value"] for e in examples["get"].values()]
        [post_example] = [e["value"] for e in examples["post"].values()]
        assert client.get("/api/v1/credit-check").json() == get_example
        bad = client.post("/api/v1/credit-check", content=b"not json", headers=JSON)
        assert bad.json() == post_example


# -- feed archives and a credit repair --------------------------------------------------------


def local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def atom(client, url: str) -> tuple[etree._Element, dict[str, str]]:
    r = client.get(url)
    assert r.status_code == 200, (url, r.status_code, r.text[:300])
    return etree.fromstring(r.content), dict(r.headers)


def href(root, rel: str) -> str | None:
    el = root.find(f"a:link[@rel='{rel}']", NS)
    return local(el.get("href")) if el is not None else None


def entry_titles(root, record_id: str) -> list[str]:
    return [
        e.findtext("a:title", namespaces=NS)
        for e in root.findall("a:entry", NS)
        if f"records/{record_id}/" in e.findtext("a:id", namespaces=NS)
    ]


def stones(root, record_id: str) -> list[etree._Element]:
    return [
        t for t in root.findall("at:deleted-entry", NS) if f"records/{record_id}/" in t.get("ref")
    ]


def chain(client, url: str) -> list[tuple[str, etree._Element]]:
    """The current document and every archive page behind it, newest first."""
    pages = []
    while url:
        root, _ = atom(client, url)
        pages.append((url, root))
        url = href(root, "prev-archive")
    return pages


def publish_penalties(engine, tmp_path, name: str, numbers: range) -> None:
    rows = [penalty_row(n, 处罚决定日期=months_ago(1)) for n in numbers]
    result = publish([write_csv(tmp_path / name, rows)], engine=engine, show_progress=False)
    assert result.published, result.as_json()


def test_archive_pages_are_cached_for_minutes_and_lose_a_repaired_record(engine, tmp_path):
    cases = publish_cases(engine, tmp_path)  # 4 adds: the oldest page
    publish_penalties(engine, tmp_path, "more.csv", range(100, 100 + 2 * PAGE_SIZE + 10))
    rid = cases.repairable
    with api_client(engine) as client:
        pages = chain(client, "/feeds/penalty.atom")
        assert len(pages) == 3
        archive_url, archive = pages[-1]
        assert archive.find("fh:archive", NS) is not None
        [title] = entry_titles(archive, rid)
        r = client.get(archive_url)
        assert r.headers["cache-control"] == f"public, max-age={ARCHIVE_MAX_AGE}"
        assert ARCHIVE_MAX_AGE == 5 * CURRENT_MAX_AGE == 300  # minutes, not a day
        etag = r.headers["etag"]

        approver, _ = users.add_user(engine, "wang", "approver", "correct horse battery staple")
        tracking = submit_request(engine, "repair", rid, cases.repairable_uscc)
        review.act(engine, tracking, approver, "approve", "准予信用修复。", sync_search=False)

        # the archive page handed out before: the same URL, now without the record, and a new
        # validator, so a cache revalidating with the old ETag gets the new document
        again = client.get(archive_url, headers={"If-None-Match": etag})
        assert again.status_code == 200 and again.headers["etag"] != etag
        assert not entry_titles(etree.fromstring(again.content), rid)
        assert title not in again.text
        # its withdrawal is a tombstone of the version readers hold, in the current document
        current, _ = atom(client, "/feeds/penalty.atom")
        [stone] = stones(current, rid)
        assert stone.get("ref").endswith(f"records/{rid}/v1")
        assert stone.findtext("at:comment", namespaces=NS) == "已撤回"  # no word of a repair
        rss = client.get("/feeds/penalty.rss").text
        assert DELETED_TITLE in rss and title not in rss

        # later events push the withdrawal into an archive page: the tombstone is there, and
        # no page of the chain shows the record
        publish_penalties(engine, tmp_path, "later.csv", range(300, 300 + PAGE_SIZE + 10))
        pages = chain(client, "/feeds/penalty.atom")
        holding = [(url, root) for url, root in pages if stones(root, rid)]
        assert len(holding) == 1
        url, root = holding[0]
        assert "?before=" in url and root.find("fh:archive", NS) is not None
        assert stones(root, rid)[0].get("ref").endswith(f"records/{rid}/v1")
        for url, root in pages:
            assert not entry_titles(root, rid), url
            assert title not in etree.tostring(root, encoding="unicode"), url


# -- the /feeds help page ---------------------------------------------------------------------


def test_the_feeds_page_tells_subscribers_about_withdrawals_archives_and_revalidation(engine):
    with api_client(engine) as client:
        text = client.get("/feeds").text
        for said in (
            "RFC 6721",
            "at:deleted-entry",
            DELETED_TITLE,  # as publishing.feeds renders it
            MOVED_TITLE,
            "RFC 5005",
            "prev-archive",
            f"最近的 {PAGE_SIZE} 条",
            "ETag",
            "If-None-Match",
            "Last-Modified",
            "304",
        ):
            assert said in text, said
        # what it says is so: a current feed revalidates with its ETag
        first = client.get("/feeds/penalty.atom")
        again = client.get("/feeds/penalty.atom", headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and first.headers["last-modified"]
