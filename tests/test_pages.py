"""The public site: every page and its JSON twin, on SQLite and PostgreSQL, over data published
through the real pipeline (tests.factories → publishing.publish)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import timedelta

import pytest
from litestar.testing import TestClient
from sqlalchemy import select

from portal import stats
from portal.app import create_app
from portal.pages.entities import profile_data
from portal.pages.home import home_data
from portal.pages.listings import PER_PAGE, listing_data
from portal.pages.records import record_data
from portal.pages.search import search_data
from portal.stats import PublishedCache
from publishing import clock, read
from publishing.commit import ISSUES, RECORDS
from publishing.publish import publish
from publishing.search import get_backend
from publishing.search.sync import reindex
from tests.factories import (
    blacklist_row,
    credit_mark_row,
    penalty_row,
    pledge_row,
    resident_id,
    uscc,
    write_csv,
    write_ndjson,
)

TODAY = clock.today()
RAW_ID = resident_id("19850312", "457")
RAW_MOBILE = "13912345678"
RAW_CARD = "6222021234567890123"


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


def run(engine, path, **kw):
    result = publish([path], engine=engine, show_progress=False, today=TODAY, **kw)
    assert result.published, result.as_json()
    return result


@dataclass
class Site:
    client: TestClient
    engine: object
    entity: str  # on the blacklist, the serious list, a pledge; has penalties
    plain: str  # only a credit-risk grade
    record: str  # an active penalty of `entity`
    withdrawn: str
    superseded: str
    expired: str
    issue: str

    def get(self, url, **kw):
        return self.client.get(url, **kw)


def ids_where(engine, *conds) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(select(RECORDS.c.id).where(*conds).order_by(RECORDS.c.id)).scalars()
        )


@pytest.fixture
def site(engine, tmp_path):
    e1, e2 = uscc(1), uscc(2)
    pen = [
        penalty_row(1, 处罚决定日期=day(-40)),
        penalty_row(
            2,
            处罚决定日期=day(-30),
            统一社会信用代码=e1,
            处罚种类="罚款;吊销营业执照",
            违法事实=f"当事人负责人身份证号{RAW_ID},手机{RAW_MOBILE},收款账户{RAW_CARD}。",
        ),
        penalty_row(3, 处罚决定日期=day(-20), 所属区市="莱山区", 领域="价格", 失信程度="轻微"),
        penalty_row(4, 处罚决定日期=day(-20)),
    ]
    run(engine, write_csv(tmp_path / "p.csv", pen))
    run(
        engine,
        write_csv(
            tmp_path / "w.csv",
            [penalty_row(4, 处罚决定日期=day(-20), 操作="撤销")],
            header=[*penalty_row(4), "操作"],
        ),
    )
    run(
        engine,
        write_csv(
            tmp_path / "x.csv",
            [penalty_row(5, 处罚决定日期=day(-400), 公示截止日期=day(-10))],
            header=[*penalty_row(5), "公示截止日期"],
        ),
    )
    run(
        engine,
        write_csv(
            tmp_path / "b.csv",
            [blacklist_row(1, 发布日期=day(-60)), blacklist_row(6, 发布日期=day(-60))],
        ),
    )
    run(
        engine,
        write_csv(tmp_path / "c1.csv", [credit_mark_row(2, 分类结果="C", 标注日期=day(-300))]),
    )
    run(
        engine,
        write_csv(
            tmp_path / "c2.csv",
            [
                credit_mark_row(2, 分类结果="B", 标注日期=day(-100)),
                credit_mark_row(1, 标注类型="严重违法失信名单", 分类结果="", 标注日期=day(-50)),
            ],
        ),
    )
    run(engine, write_ndjson(tmp_path / "r.ndjson", [pledge_row(1, pledged_on=day(-500))]))
    reindex(engine)  # the search index, rebuilt from what is published
    with engine.connect() as conn:
        issue = conn.execute(select(ISSUES.c.id)).scalar_one()
    record = ids_where(
        engine, RECORDS.c.kind == "penalty", RECORDS.c.entity_id == e1, RECORDS.c.status == "active"
    )[0]
    withdrawn = ids_where(engine, RECORDS.c.status == "withdrawn")[0]
    superseded = ids_where(engine, RECORDS.c.status == "superseded")[0]
    expired = ids_where(engine, RECORDS.c.status == "expired")[0]
    with TestClient(app=create_app(engine)) as client:
        yield Site(client, engine, e1, e2, record, withdrawn, superseded, expired, issue)


PAGES = ["/", "/blacklist", "/penalties", "/credit-marks", "/return-pledges"]


def urls(site: Site) -> list[str]:
    return [
        *PAGES,
        f"/blacklist/{site.issue}",
        f"/entities/{site.entity}",
        f"/entities/{site.plain}",
        f"/records/{site.record}",
    ]


def test_every_page_and_its_json_twin(site):
    for url in urls(site):
        page = site.get(url)
        assert page.status_code == 200, url
        assert page.headers["content-type"].startswith("text/html")
        assert '<html lang="zh-CN">' in page.text
        twin = "/api/v1" if url == "/" else "/api/v1" + url
        assert page.headers["link"] == f'<{twin}>; rel="alternate"; type="application/json"'
        api = site.get(twin)
        assert api.status_code == 200, twin
        assert api.headers["content-type"] == "application/json"
        assert api.headers["link"] == f'<{url}>; rel="alternate"; type="text/html"'
        assert f'<link rel="alternate" type="application/json" href="{twin}"' in page.text


def test_json_twins_equal_the_page_dicts(site):
    with site.engine.connect() as conn:
        assert site.get(f"/api/v1/entities/{site.entity}").json() == profile_data(conn, site.entity)
        assert site.get(f"/api/v1/records/{site.record}").json() == record_data(conn, site.record)
        cache = PublishedCache(site.engine)
        assert site.get("/api/v1").json() == home_data(conn, cache)
        filters = dict(district="莱山区", date_from=None, date_to=None, category=None, grade=None)
        assert site.get("/api/v1/penalties?district=莱山区").json() == listing_data(
            conn, cache, "penalty", "/penalties", **filters, token=None
        )


def test_profile(site):
    data = site.get(f"/api/v1/entities/{site.entity}").json()
    assert data["entity"]["uscc"] == site.entity
    assert data["entity"]["former_names"]  # named differently by the blacklist and pledge files
    assert data["badges"] == {
        "on_blacklist": True,
        "serious_dishonest": True,
        "lists": ["严重违法失信名单"],
        "objection_pending": False,
        "return_pledge": True,
    }
    assert list(data["records"]) == ["blacklist", "penalty", "credit_mark", "return_pledge"]
    penalties = data["records"]["penalty"]
    assert [p["date"] for p in penalties] == [day(-30), day(-40)]  # newest first
    assert penalties[0]["repairable_from"] is None  # 吊销营业执照: never repaired early
    assert penalties[1]["repairable_from"] is not None
    html = site.get(f"/entities/{site.entity}").text
    for text in (
        "列入食品安全黑榜",
        "列入严重违法失信名单",
        "线下无理由退货承诺单位",
        "不可提前修复",
        "公示期满，停止公示",  # 食品: repairable after 12 months, the publicity's own length
        "曾用名",
        f'href="/entities/{site.entity}/feed.atom"',
        'type="application/atom+xml"',
    ):
        assert text in html, text
    assert "异议处理中" not in html
    plain = site.get(f"/api/v1/entities/{site.plain}").json()
    assert [m["grade"] for m in plain["credit_marks"]] == ["B"]  # the superseded C is gone
    assert plain["badges"]["lists"] == [] and not plain["badges"]["on_blacklist"]


def test_a_profile_longer_than_a_page_pages_on_and_keeps_its_badges(site, monkeypatch):
    """An entity with more records than a page holds: the timeline pages on (keyset, newest
    first), the count is the whole count, and the badges and credit marks come from every
    record, not from the page (the blacklist entry and the serious-list mark are on page 2)."""
    monkeypatch.setattr(read, "PROFILE_LIMIT", 2)
    pages, url = [], f"/api/v1/entities/{site.entity}"
    while url:
        data = site.get(url).json()
        pages.append(data)
        url = data["next_url"]  # the JSON twin's links are the API's own
        assert url is None or url.startswith("/api/v1/entities/")
    timeline = [sorted((r["date"] for recs in p["records"].values() for r in recs), reverse=True)
                for p in pages]  # each page grouped by kind
    assert timeline == [[day(-30), day(-40)], [day(-50), day(-60)], [day(-500)]]
    ids = [r["id"] for p in pages for recs in p["records"].values() for r in recs]
    assert len(set(ids)) == 5
    for p in pages:
        assert p["record_count"] == 5
        assert p["badges"]["on_blacklist"] and p["badges"]["serious_dishonest"]
        assert p["badges"]["return_pledge"]
        assert [m["scheme"] for m in p["credit_marks"]] == ["严重违法失信名单"]
    assert [p["first_url"] is None for p in pages] == [True, False, False]
    html = site.get(f"/entities/{site.entity}").text
    assert "（共 5 条，本页 2 条）" in html and "列入食品安全黑榜" in html
    (next_href,) = re.findall(r'href="([^"]+)" rel="next"', html)
    second = site.get(next_href.replace("&amp;", "&"))
    assert second.status_code == 200 and "回到第一页" in second.text
    assert site.get(f"/entities/{site.entity}?next=garbage").status_code == 400
    moved = site.get(f"/entities/{site.entity.lower()}?next={pages[0]['next']}", follow_redirects=False)
    # the canonical URL keeps the page
    assert "/api/v1" + moved.headers["location"] == pages[0]["next_url"]


def test_an_entity_with_more_records_than_a_profile_page(engine, tmp_path):
    """One record past a page: the profile's second page holds it, and the request form
    offers every record."""
    n = read.PROFILE_LIMIT + 1
    rows = [penalty_row(1, 行政处罚决定书文号=f"烟芝市监罚〔2026〕{i}号", 处罚决定日期=day(-1 - i // 3))
            for i in range(n)]
    run(engine, write_csv(tmp_path / "p.csv", rows))
    with TestClient(app=create_app(engine)) as client:
        first = client.get(f"/api/v1/entities/{uscc(1)}").json()
        assert (first["record_count"], first["page_count"]) == (n, read.PROFILE_LIMIT)
        second = client.get(first["next_url"]).json()
        assert second["next_url"] is None and second["page_count"] == 1
        ids = [r["id"] for page in (first, second) for r in page["records"]["penalty"]]
        assert len(set(ids)) == n  # ties on the date are broken by the id: none lost or repeated
        form = client.get(f"/requests/new?uscc={uscc(1)}").text
    assert len(set(re.findall(r'name="record_ids" value="([^"]+)"', form))) == n


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("91370602000000001X", "校验位"),
        ("9137060200000001", "应为18位"),
        ("91370602OOOOOOOO1K", "非法字符"),
    ],
)
def test_bad_credit_code_says_what_is_wrong(site, code, message):
    page = site.get(f"/entities/{code}")
    assert page.status_code == 400
    assert message in page.text and "统一社会信用代码" in page.text
    api = site.get(f"/api/v1/entities/{code}")
    assert api.status_code == 400 and message in api.json()["detail"]


def test_unknown_entity_and_normalised_codes(site):
    unknown = uscc(99)
    page = site.get(f"/entities/{unknown}")
    assert page.status_code == 404 and "未查询到" in page.text
    messy = site.entity[:6] + "-" + site.entity[6:].lower()
    for prefix in ("", "/api/v1"):
        resp = site.get(f"{prefix}/entities/{messy}", follow_redirects=False)
        assert resp.status_code == 301
        assert resp.headers["location"] == f"{prefix}/entities/{site.entity}"
    full_width = site.entity.translate(str.maketrans("0123456789K", "０１２３４５６７８９Ｋ"))
    assert site.get(f"/entities/{full_width}").status_code == 200


def test_unknown_and_gone_records(site):
    assert site.get("/records/pn-0000000000000000").status_code == 404
    assert site.get("/records/nonsense").status_code == 404
    assert site.get("/api/v1/records/pn-0000000000000000").status_code == 404
    for rid in (site.withdrawn, site.superseded, site.expired):
        page = site.get(f"/records/{rid}")
        assert page.status_code == 410, rid
        assert "停止公示" in page.text
        assert "烟台" not in page.text.split("<main", 1)[1].split("</main>", 1)[0].replace(
            "烟台市市场监管", ""
        )  # no details of the record: no name, no address
        assert "public" in page.headers["cache-control"]
        api = site.get(f"/api/v1/records/{rid}")
        assert api.status_code == 410
        assert {k: api.json()[k] for k in ("id", "status", "status_code")} == {
            "id": rid, "status": "gone", "status_code": 410}
    with site.engine.connect() as conn:
        gone_entity = conn.execute(
            select(RECORDS.c.entity_id).where(RECORDS.c.id == site.withdrawn)
        ).scalar()
    # Its only record withdrawn, the entity has no profile either (as if never published).
    for prefix in ("", "/api/v1"):
        gone = site.get(f"{prefix}/entities/{gone_entity}")
        assert gone.status_code == 404 and site.withdrawn not in gone.text
        assert "本系统只收录有公示记录的主体" in gone.text
    # ... and a search for its code does not show it as the exact match either
    assert site.get("/api/v1/search", params={"q": gone_entity}).json()["exact_match"] is None
    assert f'href="/entities/{gone_entity}"' not in site.get("/search", params={"q": gone_entity}).text


def test_unknown_urls_are_404_pages(site):
    page = site.get("/no/such/page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html") and "页面不存在" in page.text
    api = site.get("/api/v1/no-such")
    assert api.status_code == 404 and api.json()["status_code"] == 404
    assert site.get("/blacklist/bi-000000000000").status_code == 404


def test_blacklist_pages(site):
    issues = site.get("/api/v1/blacklist").json()["issues"]
    assert [i["id"] for i in issues] == [site.issue] and issues[0]["entry_count"] == 2
    issue = site.get(f"/api/v1/blacklist/{site.issue}").json()
    assert issue["issue"]["issue_no"] == "2026年第9期"
    assert sorted(e["uscc"] for e in issue["entries"]) == sorted([site.entity, uscc(6)])
    html = site.get(f"/blacklist/{site.issue}").text
    assert "<caption" in html and 'scope="col"' in html and "韭菜" in html


def test_home_counts(site):
    data = site.get("/api/v1").json()
    counts = {k["kind"]: k["count"] for k in data["kinds"]}
    assert counts == {"blacklist": 2, "penalty": 3, "credit_mark": 2, "return_pledge": 1}
    laishan = next(d for d in data["districts"] if d["name"] == "莱山区")
    assert laishan["counts"]["penalty"] == 1 and laishan["counts"]["credit_mark"] == 2
    assert [i["id"] for i in data["latest_issues"]] == [site.issue]


def test_listing_filters(site):
    def ids(query):
        return [r["id"] for r in site.get(f"/api/v1/penalties{query}").json()["records"]]

    everything = ids("")
    assert len(everything) == 3
    assert len(ids("?district=莱山区")) == 1 and ids("?district=370613") == ids("?district=莱山区")
    assert len(ids(f"?from={day(-25)}")) == 1
    assert len(ids(f"?to={day(-35)}")) == 1
    assert len(ids("?category=价格")) == 1
    marks = site.get("/api/v1/credit-marks?grade=B").json()
    assert [r["grade"] for r in marks["records"]] == ["B"]
    assert (
        site.get("/api/v1/credit-marks?category=严重违法失信名单").json()["records"][0]["entity_id"]
        == site.entity
    )
    pledges = site.get("/api/v1/return-pledges?category=商场&district=开发区").json()["records"]
    assert len(pledges) == 1
    assert site.get("/penalties?from=2026-13-01").status_code == 400
    assert site.get("/penalties?district=火星").status_code == 400
    assert site.get("/penalties?next=garbage").status_code == 400
    assert site.get("/api/v1/credit-marks?grade=Z").status_code == 400
    html = site.get("/penalties?district=370613").text
    assert '<option value="370613" selected>' in html
    assert 'href="/feeds/penalty/370613.atom"' in html


def test_keyset_pagination_walks_every_row_once(engine, tmp_path):
    n = PER_PAGE * 2 + 7
    # few distinct dates, so pages break inside runs of equal dates (the id tie-break)
    rows = [penalty_row(100 + i, 处罚决定日期=day(-(i % 4) - 1)) for i in range(n)]
    run(engine, write_csv(tmp_path / "many.csv", rows))
    with TestClient(app=create_app(engine)) as client:
        seen, url, pages = [], "/api/v1/penalties", 0
        while url:
            resp = client.get(url)
            assert resp.status_code == 200
            body = resp.json()
            seen += [(r["date"], r["id"]) for r in body["records"]]
            pages += 1
            next_url = body["next_url"]
            if next_url:  # the JSON twin's links are the API's own
                assert next_url.startswith("/api/v1/penalties?")
                assert f'<{next_url}>; rel="next"' in resp.headers["link"]
            url = next_url
        assert pages == 3
        assert len(seen) == n == len(set(seen))
        assert seen == sorted(seen, reverse=True)
        html = client.get("/penalties").text
        assert 'rel="next"' in html and "下一页" in html and "上一页" not in html
        # and back: prev links walk the same pages in reverse, ending on the first page
        back, body = [], client.get(client.get("/api/v1/penalties").json()["next_url"]).json()
        body = client.get(body["next_url"]).json()  # the last page
        while True:
            back.insert(0, [(r["date"], r["id"]) for r in body["records"]])
            if not body["prev_url"]:
                break
            assert "before=" in body["prev_url"]
            body = client.get(body["prev_url"]).json()
        assert [row for page in back for row in page] == seen
        assert [len(page) for page in back] == [PER_PAGE, PER_PAGE, 7]
        assert body["first_url"] is None  # back on the first page
        middle = client.get(f"/penalties?next={client.get('/api/v1/penalties').json()['next']}").text
        assert 'rel="prev"' in middle and "上一页" in middle and "回到第一页" in middle


def test_security_headers_everywhere(site):
    for url in [
        *urls(site),
        "/api/v1",
        "/static/site.css",
        "/nope",
        f"/records/{site.withdrawn}",
        "/healthz",
        "/schema",
    ]:
        headers = site.get(url).headers
        csp = headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp, url
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert headers["x-frame-options"] == "DENY"
        assert "camera=()" in headers["permissions-policy"]


def test_no_inline_script_or_style(site):
    for url in urls(site):
        html = site.get(url).text
        assert "<style" not in html and " style=" not in html, url
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), url


def test_caching_headers(site):
    page = site.get(f"/entities/{site.entity}")
    assert page.headers["cache-control"] == "public, max-age=60"
    etag = page.headers["etag"]
    again = site.get(f"/entities/{site.entity}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    api = site.get(f"/api/v1/entities/{site.entity}")
    assert api.headers["etag"] != etag
    assert (
        site.get(
            f"/api/v1/entities/{site.entity}", headers={"If-None-Match": api.headers["etag"]}
        ).status_code
        == 304
    )
    css = re.search(r'href="(/static/site\.css\?v=[0-9a-f]+)"', page.text).group(1)
    static = site.get(css)
    assert static.status_code == 200
    assert "max-age=31536000" in static.headers["cache-control"]
    assert "immutable" in static.headers["cache-control"]
    assert site.get("/nope").headers["cache-control"] == "public, max-age=60"
    assert site.get(f"/records/{site.withdrawn}").headers["cache-control"] == "public, max-age=60"
    assert site.get("/healthz").headers["cache-control"] == "no-store"


def test_no_personal_data_in_any_output(site):
    digits = [RAW_ID, RAW_MOBILE, RAW_CARD]
    pages = [*urls(site), *(f"/records/{rid}" for rid in ids_where(site.engine))]
    with site.engine.connect() as conn:
        facts_id = conn.execute(
            select(RECORDS.c.id).where(RECORDS.c.data["facts"].as_string().like("%身份证号%"))
        ).scalar_one()
    pages.append(f"/records/{facts_id}")
    for url in pages:
        for variant in (url, "/api/v1" if url == "/" else "/api/v1" + url):
            body = site.get(variant).text
            for raw in digits:
                assert raw not in body, (variant, raw)
    masked = site.get(f"/records/{facts_id}").text
    assert RAW_ID[:6] + "********" + RAW_ID[-4:] in masked
    assert RAW_MOBILE[:3] + "****" + RAW_MOBILE[-4:] in masked


def test_healthz_and_schema(site):
    assert site.get("/healthz").json() == {"status": "ok", "database": "ok"}
    schema = site.get("/schema").json()
    paths = schema["paths"]
    for path in (
        "/api/v1/entities/{uscc}",
        "/api/v1/records/{record_id}",
        "/api/v1/search",
        "/api/v1/penalties",
        "/api/v1/credit-marks",
        "/api/v1/return-pledges",
        "/api/v1/blacklist",
        "/api/v1/blacklist/{issue_id}",
        "/healthz",
    ):
        assert path in paths, path
    assert not any(p in paths for p in ("/entities/{uscc}", "/penalties", "/"))
    params = {p["name"] for p in paths["/api/v1/penalties"]["get"]["parameters"]}
    assert {"district", "from", "to", "category", "grade", "next"} <= params


def test_accessibility_basics_in_markup(site):
    for url in urls(site):
        html = site.get(url).text
        assert 'href="#main"' in html and 'id="main"' in html
        assert html.count("<h1") == 1, url
        assert '<meta name="viewport"' in html and "<title>" in html
        for input_id in re.findall(r'<(?:input|select)[^>]*\bid="([^"]+)"', html):
            assert f'for="{input_id}"' in html, (url, input_id)


def test_search(site):
    page = site.get("/search?q=黑榜测试1")
    assert page.status_code == 200
    assert f'href="/entities/{site.entity}"' in page.text
    assert "<mark>" in page.text
    data = site.get("/api/v1/search?q=黑榜测试1").json()
    assert data["total"] >= 1 and data["hits"][0]["url"] == f"/entities/{site.entity}"
    assert {f["value"] for f in data["facets"]["type"]} >= {"entity"}
    with site.engine.connect() as conn:
        direct = search_data(
            conn,
            get_backend(site.engine),
            q="黑榜测试1",
            kinds=[],
            district=None,
            status=None,
            grade=None,
            sort="relevance",
            page=1,
        )
    assert data == direct
    assert page.headers["link"] == (
        '</api/v1/search?q=%E9%BB%91%E6%A6%9C%E6%B5%8B%E8%AF%951>; rel="alternate"; type="application/json"'
    )


def test_search_filters_and_pages(site):
    penalties = site.get("/api/v1/search?q=烟台&kind=penalty").json()
    assert penalties["total"] >= 1 and {h["type"] for h in penalties["hits"]} == {"penalty"}
    laishan = site.get("/api/v1/search?q=烟台&district=莱山区").json()
    assert laishan["query"]["district"] == "370613"
    assert {h["district_code"] for h in laishan["hits"]} == {"370613"}
    by_date = site.get("/api/v1/search?q=烟台&sort=date").json()
    dates = [h["date"] for h in by_date["hits"] if h["date"]]
    assert dates == sorted(dates, reverse=True)
    facet_url = penalties["facets"]["type"][0]["url"]
    assert site.get(facet_url).status_code == 200
    assert site.get("/search?q=烟台&page=abc").status_code == 400
    assert site.get("/search?q=烟台&page=0").status_code == 400
    assert site.get("/search?q=烟台&sort=nonsense").status_code == 400
    assert site.get("/search?q=烟台&kind=nonsense").status_code == 400
    empty = site.get("/search")
    assert empty.status_code == 200 and "请输入" in empty.text


def test_search_for_a_bad_credit_code_says_so(site):
    bad = site.entity[:-1] + ("X" if site.entity[-1] != "X" else "Y")
    page = site.get(f"/search?q={bad}")
    assert page.status_code == 200
    assert "校验位" in page.text and "没有找到" not in page.text
    data = site.get(f"/api/v1/search?q={bad}").json()
    assert "校验位" in data["code_problem"] and data["hits"] == []
    # a character missing inside the code: nothing starts so, and the page says what is wrong
    short = site.get(f"/api/v1/search?q={site.entity[:5] + site.entity[6:]}").json()
    assert "18位" in short["code_problem"] and short["hits"] == []
    # the first 15-17 characters: the start of a code, searched for as one
    for n in (15, 17):
        start = site.get(f"/api/v1/search?q={site.entity[:n]}").json()
        assert start["code_problem"] is None
        assert f"/entities/{site.entity}" in [h["url"] for h in start["hits"]]
    assert "前 8 位" in site.get("/search?q=Z9Z9Z9").text  # a code part that matches nothing
    # a whole code inside a longer query: the query is that code
    for q in (f"统一社会信用代码：{site.entity}", f"{site.entity}，", f"（{site.entity.lower()}） 烟台"):
        within = site.get("/api/v1/search", params={"q": q}).json()
        assert within["exact_match"]["uscc"] == site.entity, q
    good = site.get(f"/api/v1/search?q={site.entity.lower()}").json()
    assert good["code_problem"] is None and good["exact_match"]["uscc"] == site.entity
    assert f'href="/entities/{site.entity}"' in site.get(f"/search?q={site.entity}").text


def test_a_record_past_its_end_is_gone_before_expire_runs(engine, tmp_path):
    row = penalty_row(7, 处罚决定日期=day(-400), 公示截止日期=day(-1))
    path = write_csv(tmp_path / "late.csv", [row], header=[*row])
    result = publish([path], engine=engine, show_progress=False, today=TODAY - timedelta(days=30))
    assert result.published
    (rid,) = ids_where(engine, RECORDS.c.status == "active")
    with TestClient(app=create_app(engine)) as client:
        assert client.get(f"/records/{rid}").status_code == 410
        assert client.get("/api/v1/penalties").json()["records"] == []
        assert client.get(f"/api/v1/entities/{uscc(7)}").status_code == 404


def test_counts_are_served_stale_while_they_are_recomputed(engine, tmp_path):
    run(engine, write_csv(tmp_path / "a.csv", [penalty_row(1, 处罚决定日期=day(-5))]))
    cache = PublishedCache(engine)
    with engine.connect() as conn:
        assert stats.counts(cache, conn)["by_kind"]["penalty"] == 1
    run(engine, write_csv(tmp_path / "b.csv", [penalty_row(2, 处罚决定日期=day(-5))]))
    with engine.connect() as conn:
        assert stats.counts(cache, conn)["by_kind"]["penalty"] == 1  # at once, from the cache
        for _ in range(100):  # … while one thread recomputes it
            if stats.counts(cache, conn)["by_kind"]["penalty"] == 2:
                break
            time.sleep(0.05)
        assert stats.counts(cache, conn)["by_kind"]["penalty"] == 2
        assert cache.get(conn, "fresh", lambda c: read.last_change_seq(c)) == read.last_change_seq(
            conn
        )


def test_counts_not_seen_current_lately_are_recomputed_at_once(engine, tmp_path, monkeypatch):
    """A process that has not looked for a while must not serve a count from before any number
    of publishes (it showed 0 records beside the 50 listed, on its first request after them)."""
    run(engine, write_csv(tmp_path / "a.csv", [penalty_row(1, 处罚决定日期=day(-5))]))
    cache = PublishedCache(engine)
    with engine.connect() as conn:
        assert stats.counts(cache, conn)["by_kind"]["penalty"] == 1
    run(engine, write_csv(tmp_path / "b.csv", [penalty_row(2, 处罚决定日期=day(-5))]))
    monkeypatch.setattr(stats, "STALE_FOR", 0.0)  # last seen current longer ago than that
    with engine.connect() as conn:
        assert stats.counts(cache, conn)["by_kind"]["penalty"] == 2


def test_blacklist_issue_district_is_the_one_its_entries_share(engine, tmp_path):
    """A city-level issue names firms of several districts: the listing says none, not the
    last row's; once only one district's entries are left in publication, that one."""
    rows = [blacklist_row(1, 所属区市="福山区"), blacklist_row(2, 所属区市="龙口市")]
    run(engine, write_csv(tmp_path / "a.csv", rows))
    with engine.connect() as conn:
        assert conn.execute(select(ISSUES.c.district)).scalar_one() is None
        assert read.blacklist_issues(conn)[0]["district"] is None
    run(engine, write_csv(tmp_path / "b.csv", rows[:1]), mode="snapshot")
    with engine.connect() as conn:
        assert read.blacklist_issues(conn)[0]["district"] == "福山区"


def test_search_says_when_it_stopped_counting_or_paging(site, monkeypatch):
    from portal.pages import search as search_page
    from publishing.search import embedded

    full = site.get("/api/v1/search?q=烟台").json()
    assert full["total"] > 3 and not full["capped"] and not full["truncated"]
    assert not full["facets_capped"] and "条结果统计" not in site.get("/search?q=烟台").text
    monkeypatch.setattr(embedded, "CAP", 3)
    monkeypatch.setattr(search_page, "PER_PAGE", 1)
    monkeypatch.setattr(search_page, "MAX_PAGE", 2)
    capped = site.get("/api/v1/search?q=烟台").json()
    assert capped["capped"] and capped["truncated"] and capped["pages"] == 2
    html = site.get("/search?q=烟台&page=2").text
    assert "超过 3 条" in html and "仅显示前 2 页" in html and 'rel="next"' not in html
    assert capped["facets_capped"] and "按最新的 3 条结果统计" in html  # the counts say so too


def test_a_query_of_punctuation_alone_is_no_query(site):
    for q in ("-", "%", "（）", "·"):
        data = site.get("/api/v1/search", params={"q": q}).json()
        assert (data["query"]["q"], data["total"], data["hits"]) == ("", 0, [])
    assert "请输入" in site.get("/search", params={"q": "-"}).text


def test_a_money_field_names_its_unit_once(site):
    with site.engine.connect() as conn:
        rec_id = conn.execute(select(RECORDS.c.id).where(RECORDS.c.kind == "penalty")).scalars().first()
    html = site.get(f"/records/{rec_id}").text
    amount = re.search(r"<dt>罚款金额\(元\)</dt>\s*<dd>([^<]*)</dd>", html)
    assert amount and amount.group(1) == "5,000.00"


def test_the_json_link_is_offered_only_where_the_page_has_a_json_twin(site):
    listing = site.get("/penalties?district=370602").text
    assert 'href="/api/v1/penalties?district=370602" type="application/json"' in listing
    for url in ("/nonexistent", "/requests/new", "/penalties?from=x"):
        page = site.get(url)
        assert "本页数据（JSON）" not in page.text and 'rel="alternate" type="application/json"' not in page.text
