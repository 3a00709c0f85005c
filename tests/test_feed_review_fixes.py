"""Fixes from a review from a feed subscriber's seat, each over real HTTP on both databases:

- a character XML 1.0 cannot carry (U+FFFE/U+FFFF, the other noncharacters, C0 controls) is
  rejected by the import's check, whose set is the one publishing.safetext defines; and a feed
  drops such characters from what it shows, so a value stored before cannot make it a 500;
- a feed summary says a unit once, after the figure, and an amount with thousands separators
  (罚款金额：1,234,567.50元, not 罚款金额(元)：1234567.50元);
- the feed a search page advertises carries the page's filters (kind, district), also
  without a q; none when the page filters in a way the feed cannot;
- a feed sends no Last-Modified while the second of its newest change is not over: a client
  validating with If-Modified-Since alone missed a second change within that second (304).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import openpyxl
import pytest
from litestar.testing import TestClient
from sqlalchemy import select, update

from portal.app import create_app
from publishing import clock
from publishing.commit import RECORDS
from publishing.models import Entity
from publishing.publish import publish
from publishing.rows import BadValue
from publishing.safetext import UNUSABLE
from publishing.search.sync import reindex
from publishing.sources.headers import checked_value
from tests.factories import PENALTY_HEADER, pledge_row, uscc, write_csv, write_ndjson
from tests.test_feeds import NS, TODAY, entries, get_atom, get_rss, pen, record_id_of, run

ENTITIES = Entity.__table__
NOT_XML = ["\ufffe", "\uffff", "\ufdd0", "\ufdef", "\U0001fffe", "\U0010ffff", "\x00", "\x0b"]


@pytest.fixture
def client(engine):
    with TestClient(create_app(engine)) as c:
        yield c


# -- 1. characters XML cannot carry ----------------------------------------------------------


@pytest.mark.parametrize("char", NOT_XML)
def test_the_import_rejects_a_value_holding_a_character_xml_cannot_carry(char):
    value = checked_value(f"烟台某某商贸有限公司{char}")
    assert isinstance(value, BadValue)
    assert value.reason == (
        f"含控制字符 U+{ord(char):04X}（不可见字符），不是有效文本，请删除后重新导出"
    )


@pytest.mark.parametrize("char", ["\t", "\n", "\ufffd", "\ufdcf", "\ufdf0", "\U0010fffd", "中"])
def test_text_around_the_noncharacters_is_kept(char):
    assert checked_value(f"烟台{char}公司") == f"烟台{char}公司"


def test_the_import_check_and_stored_text_share_one_set():
    """Every code point the import rejects but DEL is one no stored text may hold, and the
    other way round but lone surrogates (which no UTF-8 file holds): one definition."""
    for point in range(0x110000):
        char = chr(point)
        if char == "\x7f" or 0xD800 <= point <= 0xDFFF:
            continue
        assert isinstance(checked_value(char), BadValue) == bool(UNUSABLE.search(char)), hex(point)


def test_a_sheet_with_a_noncharacter_has_that_row_rejected(engine, tmp_path):
    """A spreadsheet can hold U+FDD0 (XML-legal, a noncharacter): the row is rejected, the
    others published."""
    bad = pen(1, 当事人名称="烟台某某商贸有限公司\ufdd0")
    workbook = openpyxl.Workbook()
    workbook.active.append(PENALTY_HEADER)
    for row in (bad, pen(2)):
        workbook.active.append([row[h] for h in PENALTY_HEADER])
    workbook.save(tmp_path / "p.xlsx")
    result = publish([tmp_path / "p.xlsx"], engine=engine, show_progress=False, today=TODAY,
                     accept_partial=True)
    report = result.reports[0]
    assert report.accepted == 1
    assert [(r.row, r.reason) for r in report.rejected] == [
        (2, "含控制字符 U+FDD0（不可见字符），不是有效文本，请删除后重新导出")
    ]


def _store_behind_the_import(engine, record_id: str, entity_id: str) -> str:
    """A record's and its entity's name as a publication before the fix could store it (the
    CSV reader let U+FFFF through); the name as a feed must show it."""
    name = "烟台某某商贸有限公司"
    with engine.begin() as conn:
        data = conn.execute(select(RECORDS.c.data).where(RECORDS.c.id == record_id)).scalar_one()
        data = {**data, "entity_name": name + "\uffff", "violation_type": "销售\ufffe不合格产品"}
        conn.execute(update(RECORDS).where(RECORDS.c.id == record_id).values(data=data))
        conn.execute(update(ENTITIES).where(ENTITIES.c.id == entity_id).values(name=name + "\uffff"))
    return name


def test_a_value_stored_before_the_fix_cannot_break_a_feed(engine, client, tmp_path):
    run(engine, write_csv(tmp_path / "p.csv", [pen(1, 当事人名称="烟台某某商贸有限公司")]))
    rid = record_id_of(engine, "烟芝市监罚〔2026〕1号")
    name = _store_behind_the_import(engine, rid, uscc(1))
    reindex(engine)
    for url in (
        "/feeds/penalty.atom",
        "/feeds/penalty/370602.atom",
        f"/entities/{uscc(1)}/feed.atom",
        "/search/feed.atom?q=商贸",
    ):
        root = get_atom(client, url)  # 200, RELAX NG valid, feedparser without complaint
        [entry] = entries(root)
        assert entry.findtext("a:title", namespaces=NS).endswith(f" · {name}"), url
        assert "销售不合格产品" in entry.findtext("a:summary", namespaces=NS), url
    assert get_atom(client, f"/entities/{uscc(1)}/feed.atom").findtext(
        "a:title", namespaces=NS
    ).startswith(f"{name} 信用信息变更")
    for url in ("/feeds/all.rss", "/feeds/penalty/370602.rss", f"/entities/{uscc(1)}/feed.rss",
                "/search/feed.rss?q=商贸"):
        [item] = get_rss(client, url).findall("channel/item")
        assert item.findtext("title").endswith(f" · {name}"), url


# -- 5. units said once, amounts as the pages show them --------------------------------------


def test_a_summary_says_the_unit_once_and_groups_thousands(engine, client, tmp_path):
    run(engine, write_csv(tmp_path / "p.csv", [pen(1, **{"罚款金额(元)": "1234567.5"})]))
    run(engine, write_ndjson(tmp_path / "r.ndjson", [pledge_row(30, return_days=15,
                                                                 refund_days=3)]))
    penalty = get_atom(client, "/feeds/penalty.atom").findtext("a:entry/a:summary", namespaces=NS)
    assert "罚款金额：1,234,567.50元" in penalty, penalty
    pledge = get_rss(client, "/feeds/return_pledge.rss").findtext("channel/item/description")
    assert "退货期限：15天" in pledge and "退款期限：3天" in pledge, pledge
    for text in (penalty, pledge):
        assert not re.search(r"\((元|天)\)", text), text


# -- 3. the search page's feed carries its filters -------------------------------------------


def _advertised_feed(client, url: str) -> str | None:
    """The Atom feed the page's head links to (base.html), if any."""
    page = client.get(url)
    assert page.status_code == 200, page.text[:300]
    found = re.search(r'<link rel="alternate" type="application/atom\+xml" href="([^"]+)"',
                      page.text)
    return found and html.unescape(found.group(1))


@pytest.mark.parametrize(
    ("page", "feed"),
    [
        ("/search?q=食品&kind=penalty&district=370602",
         "/search/feed.atom?q=%E9%A3%9F%E5%93%81&kind=penalty&district=370602"),
        ("/search?kind=penalty&district=芝罘区", "/search/feed.atom?kind=penalty&district=370602"),
        ("/search?district=370602", "/search/feed.atom?district=370602"),
        ("/search?q=食品&kind=entity&kind=penalty", "/search/feed.atom?q=%E9%A3%9F%E5%93%81&kind=penalty"),
        ("/search?q=食品&status=active", "/search/feed.atom?q=%E9%A3%9F%E5%93%81"),
        ("/search?q=食品", "/search/feed.atom?q=%E9%A3%9F%E5%93%81"),
        # filters a feed cannot carry: no feed rather than one of other records
        ("/search?q=食品&kind=penalty&kind=blacklist", None),
        ("/search?q=食品&kind=entity", None),
        ("/search?q=食品&grade=B", None),
        ("/search?q=食品&status=expired", None),
        ("/search?q=。", None),  # nothing asked
        ("/search", None),
    ],
)
def test_the_advertised_search_feed_carries_the_page_filters(client, page, feed):
    assert _advertised_feed(client, page) == feed


def test_the_advertised_feed_holds_what_the_page_finds(engine, client, tmp_path):
    run(engine, write_csv(tmp_path / "p.csv", [pen(1), pen(2, 所属区市="福山区")]))
    reindex(engine)
    url = _advertised_feed(client, "/search?kind=penalty&district=370602")
    titles = [e.findtext("a:title", namespaces=NS) for e in entries(get_atom(client, url))]
    assert titles == ["【行政处罚】烟芝市监罚〔2026〕1号 · 芝罘区 · 烟台市芝罘区测试1食品有限公司"]


# -- 4. If-Modified-Since alone never misses a change ---------------------------------------


def _http_date(at: datetime) -> str:
    return format_datetime(at.replace(microsecond=0), usegmt=True)


def test_no_last_modified_until_the_second_of_the_change_is_over(
    engine, client, tmp_path, monkeypatch
):
    """The review's race, with the clock set: two corrections within one second and a GET
    between them. That GET gave Last-Modified 10:10:36; after the second correction an
    If-Modified-Since-only request got 304 for a document whose ETag had changed."""
    second = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    now = second

    def at(offset: float) -> None:
        nonlocal now
        now = second + timedelta(seconds=offset)

    monkeypatch.setattr(clock, "now", lambda: now)
    url = "/feeds/penalty.atom"
    at(0.2)
    run(engine, write_csv(tmp_path / "a.csv", [pen(1)]))  # the first change
    at(0.5)
    between = client.get(url)
    at(0.8)
    run(engine, write_csv(tmp_path / "b.csv", [pen(1, **{"罚款金额(元)": "2222"})]))  # the second
    at(0.9)
    # the date the GET between them gave before the fix: the document changed since
    ims_only = client.get(url, headers={"If-Modified-Since": _http_date(second)})
    assert ims_only.status_code == 200 and "2,222.00元" in ims_only.text
    assert ims_only.headers["etag"] != between.headers["etag"]
    # ... now it gives none while the second is not over
    assert "last-modified" not in between.headers and "last-modified" not in ims_only.headers
    # once the second is over: Last-Modified, and If-Modified-Since validates as before
    at(1.0)
    settled = client.get(url)
    assert settled.headers["last-modified"] == _http_date(second)
    again = client.get(url, headers={"If-Modified-Since": settled.headers["last-modified"]})
    assert again.status_code == 304
    # the ETag validates all along
    at(0.9)
    assert client.get(url, headers={"If-None-Match": settled.headers["etag"]}).status_code == 304
