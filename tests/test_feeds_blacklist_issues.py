"""The blacklist by issue (/feeds/blacklist/issues.atom|rss), on SQLite and PostgreSQL, with
issues published through the real pipeline: one item per issue (期次), newest issue first,
listing the issue's entries in publication as its page does; a withdrawn entry leaves the
item (its `updated` and the ETag move), an issue with none left leaves the feed without a
tombstone; the per-entry feed and the district feeds stay as they were; the blacklist pages
and /feeds advertise it. Parsed with lxml: Atom validated against RFC 4287's RELAX NG schema."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from litestar.testing import TestClient
from lxml import etree, html
from sqlalchemy import select

from portal.app import create_app
from publishing import clock
from publishing.commit import RECORDS
from publishing.feeds import day_start, read_issue_page
from publishing.publish import publish
from publishing.settings import get_settings
from tests.factories import blacklist_row, write_csv

TODAY = clock.today()
RNG = etree.RelaxNG(etree.parse(str(Path(__file__).parent / "data" / "atom.rng")))
NS = {"a": "http://www.w3.org/2005/Atom"}
ATOM_URL, RSS_URL = "/feeds/blacklist/issues.atom", "/feeds/blacklist/issues.rss"
PUBLISHER = "烟台市芝罘区市场监督管理局"
RAW_MOBILE = "13912345678"
WITHDRAW_HEADER = [*blacklist_row(1), "操作"]


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


def first_issue(n: int, **over) -> dict[str, str]:
    return blacklist_row(n, issue="2026年第1期", 发布日期=day(-40), **over)


def second_issue(n: int, **over) -> dict[str, str]:
    over = {"违法事实": f"销售不合格食品{n}，联系电话{RAW_MOBILE}", "处理结果": f"罚款{n}000元", **over}
    return blacklist_row(n, issue="2026年第2期", 发布日期=day(-10), **over)


def run(engine, path) -> None:
    result = publish([path], engine=engine, show_progress=False, today=TODAY)
    assert result.published, result.as_json()


def withdraw(engine, tmp_path, rows: list[dict[str, str]]) -> None:
    run(engine, write_csv(tmp_path / "w.csv", [{**r, "操作": "撤销"} for r in rows], WITHDRAW_HEADER))


def name(n: int) -> str:
    return blacklist_row(n)["主体名称"]


def local(url: str) -> str:
    base = get_settings().base_url.rstrip("/")
    assert url.startswith(base), url
    return url[len(base) :]


def get_atom(client, url: str = ATOM_URL) -> etree._Element:
    r = client.get(url)
    assert r.status_code == 200, (url, r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/atom+xml; charset=utf-8"
    root = etree.fromstring(r.content)
    assert RNG.validate(root), RNG.error_log
    return root


def get_rss(client) -> etree._Element:
    r = client.get(RSS_URL)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"] == "application/rss+xml; charset=utf-8"
    root = etree.fromstring(r.content)
    assert root.tag == "rss" and root.get("version") == "2.0"
    [channel] = root.findall("channel")
    for tag in ("title", "link", "description"):
        assert channel.findtext(tag), tag
    for item in channel.findall("item"):
        assert item.findtext("title") and item.findtext("link") and item.findtext("guid")
        parsedate_to_datetime(item.findtext("pubDate"))
    return root


def atom_entries(root) -> list[dict]:
    return [
        {
            "id": e.findtext("a:id", namespaces=NS),
            "title": e.findtext("a:title", namespaces=NS),
            "link": e.find("a:link", NS).get("href"),
            "published": datetime.fromisoformat(e.findtext("a:published", namespaces=NS)),
            "updated": datetime.fromisoformat(e.findtext("a:updated", namespaces=NS)),
            "content": e.findtext("a:content", namespaces=NS),
            "content_type": e.find("a:content", NS).get("type"),
        }
        for e in root.findall("a:entry", NS)
    ]


def text_of(fragment: str) -> str:
    """An item's HTML content as the words a reader shows."""
    return html.fragment_fromstring(fragment, create_parent="div").text_content()


def issue_id_of(engine, entity_name: str) -> str:
    with engine.connect() as conn:
        return conn.execute(
            select(RECORDS.c.issue_id).where(
                RECORDS.c.data["entity_name"].as_string() == entity_name
            )
        ).scalar_one()


@pytest.fixture
def client(engine):
    with TestClient(create_app(engine)) as c:
        yield c


@pytest.fixture
def issues(engine, client, tmp_path):
    """Issue 1 (two entries, 40 days ago) and issue 2 (three entries, 10 days ago), published
    in that order: the per-entry feed has five items, the issue feed two."""
    run(engine, write_csv(tmp_path / "one.csv", [first_issue(1), first_issue(2)]))
    run(engine, write_csv(tmp_path / "two.csv", [second_issue(n) for n in (3, 4, 5)]))
    return client


def test_one_item_per_issue_newest_first(engine, issues):
    client = issues
    base = get_settings().base_url.rstrip("/")
    root = get_atom(client)
    assert root.find("a:link[@rel='self']", NS).get("href") == base + ATOM_URL
    second, first = atom_entries(root)
    assert second["title"] == f"食品安全“黑榜”2026年第2期（3家）· {PUBLISHER}"
    assert first["title"] == f"食品安全“黑榜”2026年第1期（2家）· {PUBLISHER}"
    for entry, n in ((second, 3), (first, 1)):
        issue_id = issue_id_of(engine, name(n))
        assert entry["link"] == f"{base}/blacklist/{issue_id}"
        assert entry["id"].startswith("tag:") and entry["id"].endswith(f":blacklist/{issue_id}")
        assert client.get(local(entry["link"])).status_code == 200
    # published: the 发布日期 (its first instant, Beijing time)
    assert second["published"].astimezone(clock.BEIJING).isoformat() == day(-10) + "T00:00:00+08:00"
    assert first["published"].astimezone(clock.BEIJING).date().isoformat() == day(-40)
    assert second["updated"] >= first["updated"]
    # the content: the entries as the issue page shows them, masked as stored
    assert second["content_type"] == "html"
    words = text_of(second["content"])
    for n in (3, 4, 5):
        assert name(n) in words and f"销售不合格食品{n}" in words and f"罚款{n}000元" in words
    assert "涉案产品：韭菜" in words and name(1) not in words
    assert RAW_MOBILE not in etree.tostring(root, encoding="unicode")
    assert name(1) in text_of(first["content"]) and name(2) in text_of(first["content"])
    # RSS: the same items, dated by their issue
    rss_items = get_rss(client).findall("channel/item")
    assert [i.findtext("title") for i in rss_items] == [second["title"], first["title"]]
    assert [i.findtext("link") for i in rss_items] == [second["link"], first["link"]]
    assert parsedate_to_datetime(rss_items[0].findtext("pubDate")) == second["published"]
    assert name(4) in text_of(rss_items[0].findtext("description"))
    # the per-entry feed and the district feed are unchanged: one item per entry
    assert len(get_atom(client, "/feeds/blacklist.atom").findall("a:entry", NS)) == 5
    district = get_atom(client, "/feeds/blacklist/370602.atom")
    assert district.find("a:link[@rel='self']", NS).get("href").endswith("/blacklist/370602.atom")
    assert len(district.findall("a:entry", NS)) == 5


def test_a_withdrawn_entry_leaves_its_issue_and_an_empty_issue_leaves_the_feed(
    engine, issues, tmp_path
):
    client = issues
    before = client.get(ATOM_URL)
    etag = before.headers["etag"]
    assert client.get(ATOM_URL, headers={"If-None-Match": etag}).status_code == 304
    assert "max-age" in before.headers["cache-control"]
    [old_second, _] = atom_entries(etree.fromstring(before.content))

    withdraw(engine, tmp_path, [second_issue(4)])
    after = client.get(ATOM_URL)
    assert after.headers["etag"] != etag
    assert client.get(ATOM_URL, headers={"If-None-Match": etag}).status_code == 200
    new_etag = after.headers["etag"]
    assert client.get(ATOM_URL, headers={"If-None-Match": new_etag}).status_code == 304
    second, first = atom_entries(get_atom(client))
    assert second["id"] == old_second["id"]  # the same item, changed
    assert second["title"] == f"食品安全“黑榜”2026年第2期（2家）· {PUBLISHER}"
    assert second["updated"] > old_second["updated"]
    words = text_of(second["content"])
    assert name(4) not in words and name(3) in words and name(5) in words
    assert name(4) not in after.text and name(4) not in client.get(RSS_URL).text

    # every entry of issue 1 withdrawn: the issue leaves, with no trace of its enterprises
    withdraw(engine, tmp_path, [first_issue(1), first_issue(2)])
    for url in (ATOM_URL, RSS_URL):
        body = client.get(url).text
        assert "2026年第1期" not in body and name(1) not in body and name(2) not in body
    [only] = atom_entries(get_atom(client))
    assert only["id"] == second["id"]
    assert len(get_rss(client).findall("channel/item")) == 1


def test_the_blacklist_pages_and_the_help_page_advertise_it(engine, issues):
    client = issues
    issue_id = issue_id_of(engine, name(3))
    for path in ("/blacklist", f"/blacklist/{issue_id}"):
        page = html.fromstring(client.get(path).content)
        alternates = {
            (link.get("type"), link.get("href"))
            for link in page.xpath("//head/link[@rel='alternate']")
        }
        assert ("application/atom+xml", ATOM_URL) in alternates, path
        assert ("application/rss+xml", RSS_URL) in alternates, path
        visible = {a.get("href") for a in page.xpath("//main//a")}
        assert {ATOM_URL, RSS_URL} <= visible, path
    base = get_settings().base_url.rstrip("/")
    help_page = client.get("/feeds").text
    assert base + ATOM_URL in help_page and base + RSS_URL in help_page


def test_an_issue_whose_publicity_ended_leaves_before_the_nightly_expire(engine, issues):
    """Issue 1's entries end 12 months after its 发布日期, issue 2's 30 days later: on a day
    between, before `expire` ran, only issue 2 is listed (as on the pages), and the feed's
    Last-Modified is no earlier than the day issue 1 left."""
    base_url = get_settings().base_url
    with engine.connect() as conn:
        until = conn.execute(
            select(RECORDS.c.publicity_until).where(
                RECORDS.c.data["entity_name"].as_string() == name(1)
            )
        ).scalar_one()
        later = until + timedelta(days=1)
        page = read_issue_page(conn, base_url, today=later)
        assert [i.title for i in page.items] == [f"食品安全“黑榜”2026年第2期（3家）· {PUBLISHER}"]
        assert page.modified >= day_start(later)
        assert read_issue_page(conn, base_url, today=later + timedelta(days=400)).items == []
