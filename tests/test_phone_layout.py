"""The public site on a phone, without JavaScript (the site has none), in a real browser (Debian's
chromium through Playwright, the server and sample data of tests/test_browser.py):

- at 375×667 the count and the first results are on the first screen, after a search from home
  and on each listing: the secondary filters are folded in a <details> (筛选条件);
- a filter set, that <details> comes back open with the value in view; on a wide screen the
  filters show without a tap;
- at 320 px no page scrolls sideways (a long latin query, a long code, a listing echoing long bad
  values, a record, a request's status page), and the header search's placeholder fits;
- stacked table cards label their values with a full-width colon;
- an applicant's status page carries no developer text (the API is in the OpenAPI document).
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from tests.requests_support import PDF
from tests.test_browser import browser, server  # noqa: F401 - the module's fixtures, reused

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

PHONE = {"width": 375, "height": 667}
NARROW = {"width": 320, "height": 640}
WIDE = {"width": 1280, "height": 800}
LISTINGS = ("/penalties", "/credit-marks", "/return-pledges")


def _page(browser, viewport: dict[str, int]):  # noqa: F811 - the fixture's value
    context = browser.new_context(viewport=viewport, locale="zh-CN", java_script_enabled=False)
    return context.new_page()


def _bottom(page, selector: str) -> float:
    """Where the first element matching `selector` ends, from the top of the page (not scrolled)."""
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return box["y"] + box["height"]


def _width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_results_on_the_first_screen_of_a_phone(server, browser):  # noqa: F811 - fixtures
    page = _page(browser, PHONE)
    page.goto(server["base"] + "/")
    page.get_by_label("企业名称、统一社会信用代码或行政处罚决定书文号").fill(server["name"][:4])
    page.get_by_role("button", name="查询").first.click()
    page.wait_for_url("**/search?**")
    assert page.locator(".hit").count() > 0
    # the count, and the first result's title with it
    assert _bottom(page, "#results-title") <= PHONE["height"]
    assert _bottom(page, ".hit__title") <= PHONE["height"]
    assert page.locator(".search-form details").get_attribute("open") is None
    assert page.get_by_role("combobox", name="区市").is_hidden()
    for path in LISTINGS:
        page.goto(server["base"] + path)
        assert page.locator(".stack tbody tr").count() > 0, path
        assert _bottom(page, "#list-caption") <= PHONE["height"], path
        assert _bottom(page, ".stack tbody tr th") <= PHONE["height"], path
    page.context.close()


def test_a_filter_set_comes_back_open_and_in_view(server, browser):  # noqa: F811 - fixtures
    page = _page(browser, PHONE)
    page.goto(f"{server['base']}/search?q={quote(server['name'][:4])}")
    page.locator(".search-form summary").click()  # the browser's own disclosure, no script
    page.get_by_role("combobox", name="排序").select_option("date")
    page.get_by_role("button", name="查询").click()
    page.wait_for_url("**sort=date**")
    assert page.locator(".search-form details").get_attribute("open") is not None
    sort = page.get_by_role("combobox", name="排序")
    assert sort.is_visible() and sort.input_value() == "date"
    page.goto(server["base"] + "/penalties")
    page.locator(".filter-panel summary").click()
    district = page.get_by_role("combobox", name="区市")
    label = district.locator("option").nth(1).inner_text()
    district.select_option(label=label)
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url("**district=**")
    assert page.locator(".filter-panel").get_attribute("open") is not None
    district = page.get_by_role("combobox", name="区市")
    assert district.is_visible()
    assert district.locator("option:checked").inner_text() == label
    page.context.close()


def test_filters_shown_on_a_wide_screen(server, browser):  # noqa: F811 - fixtures
    """No filter set, the <details> is closed, yet a desktop shows its fields and no summary."""
    page = _page(browser, WIDE)
    for url, field in (
        (f"{server['base']}/search?q={quote(server['name'][:4])}", "信息类别"),
        (server["base"] + "/penalties", "区市"),
    ):
        page.goto(url)
        assert page.locator(".filter-panel").get_attribute("open") is None, url
        assert page.get_by_role("combobox", name=field).is_visible(), url
        assert page.locator(".filter-panel summary").is_hidden(), url
    page.context.close()


@pytest.fixture(scope="module")
def receipt(server) -> dict[str, str]:  # noqa: F811 - the fixture's value
    """An objection filed through the API: its status page and access code."""
    filed = httpx.post(
        server["base"] + "/api/v1/requests",
        data={
            "type": "objection",
            "uscc": server["uscc"],
            "record_ids": server["record"],
            "contact_name": "王芳",
            "mobile": "13805351234",
            "reason": "罚款金额有误，应为 1200 元。",
        },
        files={"attachments": ("说明.pdf", PDF, "application/pdf")},  # sent as multipart
        timeout=30,
    )
    assert filed.is_success, filed.text
    return filed.json()


def _status_page(page, base: str, receipt: dict[str, str]) -> None:
    """The applicant's status page, opened with the access code (posted, as the form does)."""
    page.goto(base + receipt["status_url"])
    page.get_by_label("查询码").fill(receipt["access_code"])
    page.get_by_role("button", name="查看办理进度").click()
    page.wait_for_selector("#request-status")


def test_no_sideways_scrolling_at_320_px(server, browser, receipt):  # noqa: F811 - fixtures
    page = _page(browser, NARROW)
    base = server["base"]
    widths: dict[str, int] = {}
    for path in (
        "/search?q=tongbaixinyantaitiaoweipinyouxiangongsi",
        "/search?q=" + quote(server["uscc"] * 2),  # no such code: echoed in the heading
        "/search?q=" + quote(server["uscc"]),
        "/penalties?from=2026-13-01999999999999999&to=abcdefghijklmnopqrstuvwxyz0123456789",
        f"/records/{server['record']}",
    ):
        page.goto(base + path)
        widths[path] = _width(page)
    _status_page(page, base, receipt)
    widths[page.url] = _width(page)
    assert {p: w for p, w in widths.items() if w > NARROW["width"]} == {}
    # the header search's placeholder is read whole
    page.goto(base + "/penalties")
    fits = page.locator("#header-q").evaluate(
        """input => {
            const style = getComputedStyle(input);
            const ctx = document.createElement('canvas').getContext('2d');
            ctx.font = style.font;
            const room = input.clientWidth - parseFloat(style.paddingLeft)
                - parseFloat(style.paddingRight);
            return [ctx.measureText(input.placeholder).width, room];
        }"""
    )
    assert fits[0] <= fits[1], fits
    page.context.close()


def test_stacked_cards_use_a_full_width_colon(server, browser):  # noqa: F811 - fixtures
    page = _page(browser, PHONE)
    page.goto(server["base"] + "/penalties")
    label = page.locator('.stack td[data-label="统一社会信用代码"]').first.evaluate(
        "td => getComputedStyle(td, '::before').content"
    )
    assert label == '"统一社会信用代码："', label
    page.context.close()


def test_status_page_has_no_developer_text(server, browser, receipt):  # noqa: F811 - fixtures
    page = _page(browser, PHONE)
    _status_page(page, server["base"], receipt)
    text = page.locator("body").inner_text()
    assert "X-Access-Code" not in text and "/api/v1" not in text, text
    page.context.close()
