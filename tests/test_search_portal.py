"""/search and /api/v1/search on SQLite and PostgreSQL: a 注册号 inside a longer query, a page past
the last one, a search backend that cannot answer (503, but an exact code still answers from
the database), and a pinyin-like query that once took seconds."""

from __future__ import annotations

import time
from datetime import date

import pytest
from litestar.testing import TestClient

from portal.app import create_app
from portal.pages import search as search_page
from publishing.publish import publish
from publishing.search.base import SearchUnavailable
from publishing.search.embedded import EmbeddedSearch
from publishing.search.sync import reindex
from tests.factories import penalty_row, uscc, write_csv

TODAY = date(2026, 11, 27)
REG_NO = "370671717761544"
SHOP = "烟台高新区钟姐超市"
UNAVAILABLE = "搜索暂时不可用，请稍后再试。"


class DownSearch(EmbeddedSearch):
    """The embedded backend as if its server were down (what the Meilisearch backend raises)."""

    def bound(self, conn):
        return DownSearch(self.engine, conn)

    def search(self, query):
        raise SearchUnavailable("connection refused")


@pytest.fixture
def client(engine, tmp_path):
    rows = [penalty_row(n, 当事人名称=f"烟台东山{n}号商店") for n in (1, 2, 3)]
    rows.append(penalty_row(4, 统一社会信用代码="", 注册号=REG_NO, 当事人名称=SHOP))
    path = write_csv(tmp_path / "p.csv", rows, header=[*rows[0], "注册号"])
    result = publish([path], engine=engine, today=TODAY, show_progress=False)
    assert result.published, result.as_json()
    reindex(engine)
    with TestClient(app=create_app(engine)) as client:
        yield client


def test_a_reg_no_inside_a_longer_query_is_that_code(client):
    for q in (REG_NO, f"注册号：{REG_NO}", f"{REG_NO},", f"{SHOP} {REG_NO}", f"（{REG_NO}）"):
        data = client.get("/api/v1/search", params={"q": q}).json()
        assert data["exact_match"]["reg_no"] == REG_NO, q
        assert f"/entities/{REG_NO}" in [h["url"] for h in data["hits"]], q
    # 15 digits inside a longer run of letters and digits are no 注册号
    data = client.get("/api/v1/search", params={"q": f"注册号：9{REG_NO}"}).json()
    assert data["exact_match"] is None


def test_a_page_past_the_last_one_says_so(client, monkeypatch):
    monkeypatch.setattr(search_page, "PER_PAGE", 2)
    last = client.get("/api/v1/search", params={"q": "东山", "page": 3}).json()
    assert (last["total"], last["pages"], len(last["hits"])) == (6, 3, 2)
    assert not last["beyond_last_page"] and last["last_page_url"] is None
    past = client.get("/api/v1/search", params={"q": "东山", "page": 5})
    assert past.status_code == 200  # the search is there; the page only runs past its end
    data = past.json()
    assert (data["total"], data["hits"], data["beyond_last_page"]) == (6, [], True)
    assert data["last_page_url"] == "/search?q=%E4%B8%9C%E5%B1%B1&page=3"
    html = client.get("/search", params={"q": "东山", "page": 5}).text
    assert "已超出最后一页" in html and "没有找到" not in html
    assert 'href="/search?q=%E4%B8%9C%E5%B1%B1&amp;page=3"' in html
    assert 'href="/search?q=%E4%B8%9C%E5%B1%B1">回到第 1 页' in html
    nothing = client.get("/api/v1/search", params={"q": "西山", "page": 2}).json()
    assert nothing["total"] == 0 and not nothing["beyond_last_page"]


def test_an_unavailable_search_answers_503_but_an_exact_code_still_answers(client, engine):
    client.app.state.search_backend = DownSearch(engine)
    page = client.get("/search", params={"q": "东山"})
    assert page.status_code == 503 and page.headers["retry-after"] == "30"
    assert UNAVAILABLE in page.text and 'value="东山"' in page.text
    assert page.headers["cache-control"] == "no-store"
    api = client.get("/api/v1/search", params={"q": "东山"})
    assert api.status_code == 503 and api.headers["retry-after"] == "30"
    assert api.json() == {"status_code": 503, "detail": UNAVAILABLE}
    # an exact code: its profile is read from the database, not the index
    for code in (uscc(1), REG_NO, f"注册号：{REG_NO}"):
        data = client.get("/api/v1/search", params={"q": code}).json()
        assert data["search_unavailable"] and data["exact_match"]["url"].endswith(
            code[-15:]
        ), code
    html = client.get("/search", params={"q": uscc(1)})
    assert html.status_code == 200 and f'href="/entities/{uscc(1)}"' in html.text
    assert UNAVAILABLE in html.text and "没有找到" not in html.text
    # a valid code of no published entity: the search cannot say "not found"
    assert client.get("/api/v1/search", params={"q": uscc(99)}).status_code == 503
    # a search feed: a reader is told to come back, not served an error page
    for url in ("/search/feed.atom", "/search/feed.rss"):
        feed = client.get(url, params={"q": "东山"})
        assert feed.status_code == 503 and feed.headers["retry-after"] == "30", url
        assert feed.text == UNAVAILABLE


def test_a_pinyin_like_query_answers_at_once(client):
    started = time.perf_counter()
    page = client.get("/search", params={"q": "xian" * 21 + "q"})
    assert page.status_code == 200
    assert time.perf_counter() - started < 1.0  # 10 s before the fix
