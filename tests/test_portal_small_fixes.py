"""Four small gaps of the public site, each checked over real HTTP (and a real browser for the
layout ones):

- an entity's feed keeps answering once its last published record is withdrawn: an empty,
  valid Atom / RSS document, the same as for a code never on record (no tombstones, no name,
  no Last-Modified: nothing tells a once-listed entity from another); a malformed code, or an
  archive page of the empty feed, is still 404;
- the open-data dictionary labels a field as the pages do (监管领域, 法定代表人（负责人）,
  住所（经营场所）), its keys (the CSV header, the NDJSON names) unchanged;
- a penalty's decision number (烟市监罚〔2026〕32号) stays on one line in the desktop table,
  and still fits a phone's card at 320 px;
- the listing's date fields are as tall as its selects, so the filters' labels line up.
"""

from __future__ import annotations

import csv
import io

import pytest
from litestar.testing import TestClient
from lxml import html

from portal.app import create_app
from portal.templating import FIELD_LABELS, field_label
from publishing.contract import KINDS
from publishing.opendata_catalog import dictionary
from publishing.shape import KIND_FIELDS
from tests.factories import uscc, write_csv
from tests.test_browser import (  # noqa: F401 - the module's fixtures, reused
    ARTIFACTS,
    browser,
    server,
)
from tests.test_feeds import (
    NS,
    WITHDRAW_HEADER,
    get_atom,
    get_rss,
    pen,
    record_id_of,
    run,
    tombstones,
)

FORMATS = ("atom", "rss")
NEVER = uscc(777)  # a valid code never published


@pytest.fixture
def client(engine):
    with TestClient(create_app(engine)) as c:
        yield c


# -- 1. an entity's feed once its last record is withdrawn ----------------------------------


def _empty(client, code: str) -> dict[str, bytes]:
    """Both documents of the code's feed, checked valid (RELAX NG, feedparser) and empty."""
    root = get_atom(client, f"/entities/{code}/feed.atom")
    assert root.findall("a:entry", NS) == [] and tombstones(root) == []
    assert get_rss(client, f"/entities/{code}/feed.rss").findall("channel/item") == []
    return {fmt: client.get(f"/entities/{code}/feed.{fmt}").content for fmt in FORMATS}


def test_the_feed_answers_once_the_last_record_is_withdrawn(engine, client, tmp_path):
    run(engine, write_csv(tmp_path / "a.csv", [pen(1)]))
    name = "烟台市芝罘区测试1食品有限公司"
    before = get_atom(client, f"/entities/{uscc(1)}/feed.atom")
    assert len(before.findall("a:entry", NS)) == 1
    feed_id = before.findtext("a:id", namespaces=NS)
    run(engine, write_csv(tmp_path / "w.csv", [pen(1, 操作="撤销")], header=WITHDRAW_HEADER))
    assert client.get(f"/entities/{uscc(1)}").status_code == 404  # the profile is gone
    after = get_atom(client, f"/entities/{uscc(1)}/feed.atom")
    assert after.findtext("a:id", namespaces=NS) == feed_id  # the reader's subscription
    documents = _empty(client, uscc(1))
    # nothing of the entity nor of its record: the same documents as for a code never on record
    gone = record_id_of(engine, "烟芝市监罚〔2026〕1号")
    for fmt, body in documents.items():
        text = body.decode()
        assert name not in text and gone not in text
        assert text.replace(uscc(1), NEVER) == _empty(client, NEVER)[fmt].decode(), fmt
    # validated by its ETag alone: no Last-Modified (the day its last record left)
    for code in (uscc(1), NEVER):
        first = client.get(f"/entities/{code}/feed.atom")
        assert "last-modified" not in first.headers and first.headers["etag"]
        again = client.get(
            f"/entities/{code}/feed.atom", headers={"If-None-Match": first.headers["etag"]}
        )
        assert again.status_code == 304
        since = client.get(
            f"/entities/{code}/feed.atom",
            headers={"If-Modified-Since": "Sun, 01 Jan 2090 00:00:00 GMT"},
        )
        assert since.status_code == 200
    assert client.head(f"/entities/{uscc(1)}/feed.rss").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/entities/123/feed.atom",  # malformed
        f"/entities/{uscc(1)[:-1]}X/feed.rss",  # a wrong check character
        f"/entities/{NEVER}/feed.atom?before=5",  # an empty feed has no archives
    ],
)
def test_malformed_codes_and_archives_of_an_empty_feed_stay_404(client, path):
    assert client.get(path).status_code == 404


def test_an_archive_beyond_any_seq_is_a_bad_request_as_for_any_feed(client):
    assert client.get(f"/entities/{NEVER}/feed.atom?before={2**63}").status_code == 400


# -- 2. the data dictionary's labels are the pages' -----------------------------------------


def test_the_dictionary_labels_fields_as_the_pages_do():
    """Every field a page shows with a label: the record's own (KIND_FIELDS) and the shared
    ones (the entity's, the dates of its publicity)."""
    shared = {key for key in FIELD_LABELS if "." not in key}
    for kind in KINDS:
        shown = shared | set(KIND_FIELDS[kind])
        labels = {f["key"]: f["label"] for f in dictionary(kind) if f["key"] in shown}
        assert labels == {key: field_label(kind, key) for key in labels}, kind


def _dictionary_on_the_page(text: str, kind: str) -> dict[str, str]:
    rows = html.fromstring(text).xpath(f'//table[caption[@id="{kind}-dict-caption"]]/tbody/tr')
    return {row.xpath("string(th)").strip(): row.xpath("string(td[1])").strip() for row in rows}


def test_the_open_data_page_names_fields_as_the_record_page(engine, client, tmp_path):
    run(engine, write_csv(tmp_path / "a.csv", [pen(1)]))
    record = client.get(f"/records/{record_id_of(engine, '烟芝市监罚〔2026〕1号')}")
    shown = {dt.text_content().strip() for dt in html.fromstring(record.text).xpath("//dl/div/dt")}
    labels = _dictionary_on_the_page(client.get("/open-data").text, "penalty")
    api = {f["key"]: f["label"] for f in dictionary("penalty")}
    assert labels == api
    assert (labels["domain"], labels["legal_rep"], labels["address"]) == (
        "监管领域",
        "法定代表人（负责人）",
        "住所（经营场所）",
    )
    assert {labels[k] for k in ("domain", "legal_rep", "address", "decision_no")} <= shown
    # the machine-readable names stay: the CSV header is the keys
    header = next(
        csv.reader(io.StringIO(client.get("/open-data/penalty.csv").text.lstrip("\ufeff")))
    )
    assert {"domain", "legal_rep", "address"} <= set(header)


# -- 3 and 4: in a browser ------------------------------------------------------------------

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 667}
NARROW = {"width": 320, "height": 640}
LINES = """td => {
    const range = document.createRange();
    range.selectNodeContents(td);
    return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
}"""


def _page(browser, viewport):  # noqa: F811 - the fixture's value
    context = browser.new_context(viewport=viewport, locale="zh-CN", java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(5_000)  # an element missing fails soon
    return page


@pytest.mark.browser
@pytest.mark.xdist_group("browser")
@pytest.mark.parametrize("viewport", [DESKTOP, {"width": 1024, "height": 768}])
def test_a_decision_number_on_one_line_on_a_desktop(server, browser, viewport):  # noqa: F811
    page = _page(browser, viewport)
    page.goto(server["base"] + "/penalties")
    cells = page.locator('td[data-label="决定书文号"]')
    assert cells.count() > 0
    lines = {c.inner_text(): c.evaluate(LINES) for c in cells.all()}
    assert {no: n for no, n in lines.items() if n != 1} == {}
    page.context.close()


@pytest.mark.browser
@pytest.mark.xdist_group("browser")
def test_a_decision_number_fits_a_phone_card(server, browser):  # noqa: F811 - fixtures
    page = _page(browser, NARROW)
    page.goto(server["base"] + "/penalties")
    cells = page.locator('td[data-label="决定书文号"]')
    assert cells.count() > 0
    for cell in cells.all():
        number = cell.locator(".doc-no")
        box, card = number.bounding_box(), cell.bounding_box()
        assert box["x"] + box["width"] <= card["x"] + card["width"] + 0.5, cell.inner_text()
        # whole, on the line after its label when both do not fit on one
        assert number.evaluate(LINES) == 1, cell.inner_text()
    # one longer than the card wraps inside it rather than widen the page
    long_no = "烟台经济技术开发区市场监督管理局烟开市监罚〔2026〕12345号"
    cells.first.locator(".doc-no").evaluate(f"el => {{ el.textContent = '{long_no}'; }}")
    box, card = cells.first.locator(".doc-no").bounding_box(), cells.first.bounding_box()
    assert box["x"] + box["width"] <= card["x"] + card["width"] + 0.5
    assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]
    page.screenshot(path=ARTIFACTS / "penalties-320.png")
    page.context.close()


def _filter_boxes(page) -> dict[str, tuple[dict, dict]]:
    """Each filter's label and control boxes, by label text."""
    out = {}
    for field in page.locator("form.filters .field").all():
        if field.locator("label").count() and field.locator("input, select").count():
            label = field.locator("label").first
            out[label.inner_text()] = (
                label.bounding_box(),
                field.locator("input, select").first.bounding_box(),
            )
    return out


@pytest.mark.browser
@pytest.mark.xdist_group("browser")
def test_the_date_filters_line_up_with_the_others(server, browser):  # noqa: F811 - fixtures
    # side by side on a desktop: one row, every label and every control at the same height
    page = _page(browser, DESKTOP)
    page.goto(server["base"] + "/penalties")
    boxes = _filter_boxes(page)
    assert {"区市", "起始日期", "结束日期"} <= set(boxes)
    for key in ("y", "height"):
        assert max(b[0][key] for b in boxes.values()) - min(b[0][key] for b in boxes.values()) < 1
        assert max(b[1][key] for b in boxes.values()) - min(b[1][key] for b in boxes.values()) < 1
    page.context.close()
    # stacked on a phone: each label the same distance above its control, controls as tall
    page = _page(browser, PHONE)
    page.goto(server["base"] + "/penalties?from=2026-01-01")
    page.locator("form.filters").screenshot(path=ARTIFACTS / "filters-375.png")
    boxes = _filter_boxes(page)
    gaps = {t: c["y"] - (lab["y"] + lab["height"]) for t, (lab, c) in boxes.items()}
    heights = {t: c["height"] for t, (_, c) in boxes.items()}
    for name in ("起始日期", "结束日期"):
        assert abs(gaps[name] - gaps["区市"]) < 1, gaps
        assert abs(heights[name] - heights["区市"]) < 1, heights
        label, control = boxes[name]
        assert abs(label["x"] - control["x"]) < 1  # right above it, not beside
    page.context.close()
