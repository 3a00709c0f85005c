"""The public site's content and layout as a citizen reads it on a desktop (1366 and 1920 px):

- an entity's profile says at the top that it has penalties in publicity (行政处罚公示中 N 条),
  and only an entity with nothing listed is 无列入名单信息;
- a whole valid code with nothing published says so, not how to type a code;
- a repair date not before the end of publicity is not offered: the publicity's end is said;
- one word per thing (结束日期, 分类结果, 监管领域, one open-ended publicity), spaced figures, no
  command or raw audit action in the text; a single-valued search facet is left out and an
  entity hit's date and grade are labelled;
- /feeds explains the feeds (no script needed);
- in a real browser: codes, dates and amounts in tables stay on one line, figures are right
  aligned, a field in error is red, prose keeps its measure, the timeline prints whole.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from litestar.testing import TestClient

from portal.app import create_app
from portal.templating import OPEN_ENDED_PUBLICITY, OPEN_ENDED_VALIDITY
from publishing import clock, read, users
from publishing.publish import publish
from publishing.search.sync import reindex
from tests.factories import blacklist_row, credit_mark_row, penalty_row, uscc, write_csv
from tests.requests_support import submit_request
from tests.test_browser import browser, server  # noqa: F401 - the module's fixtures, reused

TODAY = clock.today()
PENALISED, MARKED, LISTED, UNKNOWN = uscc(71), uscc(73), uscc(74), uscc(987654)


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


def _publish(engine, path) -> None:
    result = publish([path], engine=engine, show_progress=False, today=TODAY)
    assert result.published, result.as_json()


@pytest.fixture
def site(engine, tmp_path):
    """An entity with two penalties only (食品: repairable when its publicity ends; 价格 轻微:
    repairable at once), one with a credit-risk grade only, one on a blacklist."""
    _publish(engine, write_csv(tmp_path / "p.csv", [
        penalty_row(71, 处罚决定日期=day(-30), 领域="食品"),
        penalty_row(72, 统一社会信用代码=PENALISED, 处罚决定日期=day(-20), 领域="价格",
                    失信程度="轻微"),
    ]))
    _publish(engine, write_csv(tmp_path / "c.csv", [credit_mark_row(73, 标注日期=day(-10))]))
    _publish(engine, write_csv(tmp_path / "b.csv", [blacklist_row(74, 发布日期=day(-5))]))
    reindex(engine)
    with TestClient(app=create_app(engine)) as client:
        yield client


def _penalties(site) -> dict[str, str]:
    """The penalised entity's penalty record ids by domain."""
    records = site.get(f"/api/v1/entities/{PENALISED}").json()["records"]["penalty"]
    return {r["domain"]: r["id"] for r in records}


def _badges(html: str) -> list[str]:
    block = re.search(r'<ul class="badges" aria-label="信用状态">(.*?)</ul>', html, re.S)
    assert block, html[:500]
    return re.findall(r'<span class="badge[^"]*">([^<]+)</span>', block.group(1))


def test_a_profile_with_penalties_says_so_at_the_top(site, monkeypatch):
    assert _badges(site.get(f"/entities/{PENALISED}").text) == ["行政处罚公示中 2 条"]
    assert _badges(site.get(f"/entities/{MARKED}").text) == ["无列入名单信息"]
    assert _badges(site.get(f"/entities/{LISTED}").text) == ["列入食品安全黑榜 1 条"]
    # the JSON twin's badges are as they were (the count is the page's)
    assert set(site.get(f"/api/v1/entities/{PENALISED}").json()["badges"]) == {
        "on_blacklist", "serious_dishonest", "lists", "objection_pending", "return_pledge"}
    # a profile longer than a page counts every penalty, not the page's
    monkeypatch.setattr(read, "PROFILE_LIMIT", 1)
    first = site.get(f"/entities/{PENALISED}").text
    assert "下一页" in first and _badges(first) == ["行政处罚公示中 2 条"]


def test_a_valid_code_with_nothing_published_is_said_plainly(site):
    page = site.get(f"/search?q={UNKNOWN}")
    assert page.status_code == 200
    assert f"未查询到该代码（<span class=\"code\">{UNKNOWN}</span>）的公示信息" in page.text
    assert "请输入完整的 18 位代码" not in page.text
    assert site.get(f"/api/v1/search?q={UNKNOWN}").json()["code_hint"] is False
    # the start of a code still gets the hint
    assert "请输入完整的 18 位代码" in site.get("/search?q=9137069999").text


def test_no_repair_date_when_the_publicity_ends_first(site):
    ids = _penalties(site)
    food = site.get(f"/records/{ids['食品']}").text  # repairable after 12 months = its publicity
    assert "公示期满，停止公示" in food and "起可申请信用修复" not in food
    price = site.get(f"/records/{ids['价格']}").text
    assert "起可申请信用修复" in price and "公示期满，停止公示" not in price
    profile = site.get(f"/entities/{PENALISED}").text
    assert "公示期满，停止公示" in profile and "起可申请信用修复" in profile


def test_the_request_form_says_the_publicity_ends_first(client, cases):
    page = client.get(f"/requests/new?uscc={cases.too_early_uscc}").text
    assert "公示期满，停止公示" in page and "最短公示期未满" not in page
    first_step = client.get("/requests/new").text
    assert "18 位，由数字和大写字母组成" in first_step and "15 位注册号" in first_step
    assert "10 位查询码" in client.get("/requests/lookup").text


def test_one_word_for_each_thing(site):
    listing = site.get("/penalties").text
    assert '<label for="f-to">结束日期</label>' in listing and "截止日期</label>" not in listing
    assert '<label for="f-category">监管领域</label>' in listing
    assert '<td data-label="罚款金额" class="num">' in listing
    search = site.get("/search?q=烟台").text
    assert '<label for="s-grade">分类结果</label>' in search
    marked = site.get(f"/entities/{MARKED}").text
    assert OPEN_ENDED_VALIDITY in marked and OPEN_ENDED_PUBLICITY in marked
    assert "长期（至撤销）" not in marked and ">长期<" not in marked
    with_penalty = site.get(f"/records/{_penalties(site)['价格']}").text
    assert "<dt>监管领域</dt>" in with_penalty and "<dt>领域</dt>" not in with_penalty
    assert "信用风险分类 B类 · 通用" in marked  # the grade is the scheme's result


def test_search_facets_and_entity_hits_explain_themselves(site):
    page = site.get("/search?q=" + quote("烟台测试73"))
    assert "公示状态" not in page.text  # its one value (公示中) would drop the entity
    assert site.get("/api/v1/search?q=" + quote("烟台测试73")).json()["facets"]["status"]
    assert re.search(r"<span>最近记录 <time", page.text), page.text
    assert "<span>分类结果 B类</span>" in page.text


def test_the_feeds_page_lists_what_can_be_subscribed(site):
    page = site.get("/feeds")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text
    for kind in ("blacklist", "penalty", "credit_mark", "return_pledge", "all"):
        for fmt in ("atom", "rss"):
            assert re.search(rf'href="[^"]*/feeds/{kind}\.{fmt}"', page.text), (kind, fmt)
    assert "/entities/统一社会信用代码/feed.atom" in page.text
    assert "/search/feed.atom?q=" in page.text and "订阅阅读器" in page.text
    home = site.get("/").text
    assert '<a href="/feeds">' in home
    assert "开放接口说明（OpenAPI，JSON）" in home and ">接口说明（OpenAPI）<" not in home


def test_the_back_office_speaks_chinese(engine, client, cases):
    login_page = client.get("/review/login").text
    assert "disclosure users add" not in login_page and "系统管理员" in login_page
    assert re.search(r"连续 \d+ 次输入错误，该地址将暂停登录 \d+ 分钟", login_page)
    tracking = submit_request(engine, "objection", cases.repairable, cases.repairable_uscc)
    users.add_user(engine, "wang", "approver", "correct horse battery staple")
    form = client.get("/review/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    client.post("/review/login", data={"name": "wang", "password": "correct horse battery staple",
                                       "csrf": csrf})
    page = client.get(f"/review/requests/{tracking}")
    assert page.status_code == 200, page.text[:300]
    history = page.text.split('id="history-title"', 1)[1]
    assert "<strong>申请人（网上提交）</strong> 提交申请" in history
    assert "request.submit" not in history and "applicant:web" not in history


# -- in a real browser ----------------------------------------------------------------------

DESKTOPS = ({"width": 1366, "height": 768}, {"width": 1920, "height": 1080})
PHONE = {"width": 375, "height": 667}
DANGER = "rgb(163, 25, 28)"

# The codes, dates and amounts of every table that run onto a second line.
BROKEN = """() => [...document.querySelectorAll(
    '.data-table .code--id, .data-table time, .data-table td.num')].filter(el => {
      const range = document.createRange(); range.selectNodeContents(el);
      const style = getComputedStyle(el);
      const line = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.65;
      return range.getBoundingClientRect().height > line * 1.5;
    }).map(el => el.textContent.trim())"""


def _page(browser, viewport):  # noqa: F811 - the fixture's value
    context = browser.new_context(viewport=viewport, locale="zh-CN", java_script_enabled=False)
    return context.new_page()


@pytest.mark.browser
@pytest.mark.xdist_group("browser")
def test_codes_dates_and_amounts_stay_whole_on_a_desktop(server, browser):  # noqa: F811
    for viewport in DESKTOPS:
        page = _page(browser, viewport)
        page.goto(server["base"] + "/blacklist")
        issue = page.locator(".data-table tbody a").first.get_attribute("href")
        for path in ("/penalties", "/credit-marks", "/blacklist", issue, "/open-data"):
            page.goto(server["base"] + path)
            page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
            assert page.locator(".data-table .code--id, .data-table time").count(), path
            assert page.evaluate(BROKEN) == [], (viewport, path)
            assert page.evaluate("document.documentElement.scrollWidth") == viewport["width"]
        if viewport["width"] >= 1600:  # a wide screen gives the tables more than 72rem
            page.goto(server["base"] + "/penalties")
            assert page.locator(".table-wrap").first.bounding_box()["width"] > 72 * 16
        page.context.close()


@pytest.mark.browser
@pytest.mark.xdist_group("browser")
def test_figures_are_right_aligned_with_their_heads(server, browser):  # noqa: F811
    page = _page(browser, DESKTOPS[0])
    page.goto(server["base"] + "/")
    head = page.locator(".numbers thead th").nth(1)
    assert head.evaluate("th => getComputedStyle(th).textAlign") == "right"
    page.goto(server["base"] + "/penalties")
    for selector in ('th.num', 'td[data-label="罚款金额"]'):
        cell = page.locator(selector).first
        assert cell.evaluate("c => getComputedStyle(c).textAlign") == "right", selector
    fine = page.locator('td[data-label="罚款金额"]').first
    assert fine.evaluate("c => getComputedStyle(c).fontVariantNumeric") == "tabular-nums"
    page.context.close()
    phone = _page(browser, PHONE)  # a card reads label, then value: left
    phone.goto(server["base"] + "/penalties")
    fine = phone.locator('td[data-label="罚款金额"]').first
    assert fine.evaluate("c => getComputedStyle(c).textAlign") in ("left", "start")
    phone.context.close()


@pytest.mark.browser
@pytest.mark.xdist_group("browser")
def test_a_text_field_in_error_is_red(server, browser):  # noqa: F811
    page = _page(browser, DESKTOPS[0])
    page.goto(server["base"] + "/requests/new")
    page.locator("#f-uscc").fill("12345")
    page.get_by_role("button", name="下一步：选择涉及的公示记录").click()
    field = page.locator("#f-uscc")
    assert field.get_attribute("aria-invalid") == "true"
    assert field.evaluate("i => getComputedStyle(i).borderTopColor") == DANGER
    page.context.close()


@pytest.mark.browser
@pytest.mark.xdist_group("browser")
def test_prose_keeps_its_measure_and_the_timeline_prints(server, browser):  # noqa: F811
    page = _page(browser, DESKTOPS[1])
    page.goto(server["base"] + "/open-data")
    for p in page.locator("main p").all()[:6]:
        width, em = p.evaluate("p => [p.getBoundingClientRect().width, "
                               "parseFloat(getComputedStyle(p).fontSize)]")
        assert width <= 40 * em + 1, (width, em)
    assert page.locator(".table-wrap").first.bounding_box()["width"] > 60 * 16
    page.goto(server["base"] + f"/entities/{server['uscc']}")
    page.emulate_media(media="print")
    ring = page.locator(".timeline__item").first.evaluate(
        "li => getComputedStyle(li, '::before').borderTopColor")
    assert ring == "rgb(0, 0, 0)", ring
    page.context.close()
