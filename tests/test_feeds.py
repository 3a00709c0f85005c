"""Atom and RSS feeds over the change log, on SQLite and PostgreSQL, with data published
through the real pipeline: every document parses (feedparser, bozo 0), every Atom document
validates against RFC 4287's RELAX NG schema, withdrawals and expiries are RFC 6721 deletions,
RFC 5005 archives reach every older item, conditional GETs answer 304."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from types import SimpleNamespace

import feedparser
import pytest
from litestar.testing import TestClient
from lxml import etree
from sqlalchemy import select, text

from portal import routes
from portal.app import create_app
from portal.feeds import ARCHIVE_MAX_AGE
from publishing import clock
from publishing.commit import RECORDS
from publishing.contract import KINDS
from publishing.expire import expire
from publishing.feeds import Scope, deletion_item, scope_seqs
from publishing.publish import publish
from publishing.search.sync import reindex
from publishing.settings import get_settings
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
RNG = etree.RelaxNG(etree.parse(str(Path(__file__).parent / "data" / "atom.rng")))
NS = {
    "a": "http://www.w3.org/2005/Atom",
    "at": "http://purl.org/atompub/tombstones/1.0",
    "fh": "http://purl.org/syndication/history/1.0",
}
RAW_ID = resident_id("19850312", "457")
RAW_MOBILE = "13912345678"
WITHDRAW_HEADER = [*penalty_row(1), "操作"]


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


def run(engine, path, today=TODAY, **kw):
    result = publish([path], engine=engine, show_progress=False, today=today, **kw)
    assert result.published, result.as_json()
    return result


def pen(n: int, **over) -> dict[str, str]:
    """A penalty decided recently (public for a year from the test's today)."""
    return penalty_row(n, **{"处罚决定日期": day(-30), **over})


@pytest.fixture
def client(engine):
    with TestClient(create_app(engine)) as c:
        yield c


def local(url: str) -> str:
    """An absolute feed URL (settings.base_url) as the path the test client requests."""
    base = get_settings().base_url.rstrip("/")
    assert url.startswith(base), url
    return url[len(base) :]


def get_atom(client, url: str, **headers) -> etree._Element:
    r = client.get(url, headers=headers)
    assert r.status_code == 200, (url, r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/atom+xml; charset=utf-8"
    parsed = feedparser.parse(r.content)
    assert parsed.bozo == 0, (url, parsed.get("bozo_exception"))
    root = etree.fromstring(r.content)
    assert RNG.validate(root), (url, RNG.error_log)
    return root


def get_rss(client, url: str) -> etree._Element:
    r = client.get(url)
    assert r.status_code == 200, (url, r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/rss+xml; charset=utf-8"
    parsed = feedparser.parse(r.content)
    assert parsed.bozo == 0, (url, parsed.get("bozo_exception"))
    assert parsed.version == "rss20"
    return etree.fromstring(r.content)


def entries(root) -> list[etree._Element]:
    return root.findall("a:entry", NS)


def entry_ids(root) -> list[str]:
    return [e.findtext("a:id", namespaces=NS) for e in entries(root)]


def entry_for(root, record_id: str) -> list[etree._Element]:
    return [
        e for e in entries(root) if f"records/{record_id}/" in e.findtext("a:id", namespaces=NS)
    ]


def tombstones(root) -> list[etree._Element]:
    return root.findall("at:deleted-entry", NS)


def assert_bare_deletion(item, record_id: str, version: int) -> None:
    """An RSS deletion: guid (stable: the withdrawing event's version), neutral title, the
    record's link and the date; no description, no categories, nothing of the record."""
    assert [c.tag for c in item] == ["title", "link", "guid", "pubDate"], [c.tag for c in item]
    assert item.findtext("title") == "【已撤下】公示信息"
    assert item.findtext("guid").endswith(f"records/{record_id}/v{version}")
    assert item.findtext("link").endswith(f"/records/{record_id}")
    parsedate_to_datetime(item.findtext("pubDate"))


def link(root, rel: str) -> str | None:
    el = root.find(f"a:link[@rel='{rel}']", NS)
    return el.get("href") if el is not None else None


def record_id_of(engine, decision_no: str) -> str:
    with engine.connect() as conn:
        return conn.execute(
            select(RECORDS.c.id).where(RECORDS.c.data["decision_no"].as_string() == decision_no)
        ).scalar_one()


@pytest.fixture
def site(engine, client, tmp_path):
    """Four kinds in three districts; penalty 2's facts hold an ID number and a mobile."""
    facts = f"当事人联系人身份证号{RAW_ID},手机{RAW_MOBILE},经营超过保质期的食品。"
    run(
        engine,
        write_csv(tmp_path / "p.csv", [pen(1), pen(2, 违法事实=facts), pen(3, 所属区市="福山区")]),
    )
    run(engine, write_csv(tmp_path / "b.csv", [blacklist_row(10, 发布日期=day(-20))]))
    run(engine, write_csv(tmp_path / "c.csv", [credit_mark_row(20, 标注日期=day(-10))]))
    run(engine, write_ndjson(tmp_path / "r.ndjson", [pledge_row(30, pledged_on=day(-5))]))
    return client


def feed_urls(entity: str) -> list[str]:
    urls = []
    for fmt in ("atom", "rss"):
        urls += [f"/feeds/{k}.{fmt}" for k in (*KINDS, "all")]
        urls += [
            f"/feeds/penalty/370602.{fmt}",
            f"/feeds/penalty/芝罘区.{fmt}",
            f"/feeds/all/370613.{fmt}",
            f"/feeds/blacklist/370602.{fmt}",
            f"/entities/{entity}/feed.{fmt}",
            f"/search/feed.{fmt}?q=测试",
            f"/search/feed.{fmt}?kind=penalty&district=370602",
        ]
    return urls


def test_every_feed_parses_and_every_atom_feed_validates(engine, site, tmp_path):
    # a withdrawal too, so the documents carry deletions
    run(engine, write_csv(tmp_path / "w.csv", [pen(1, 操作="撤销")], header=WITHDRAW_HEADER))
    reindex(engine)
    for url in feed_urls(uscc(2)):
        if ".atom" in url:
            root = get_atom(site, url)
            assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "zh-CN"
            assert link(root, "self").startswith(get_settings().base_url)
        else:
            get_rss(site, url)
    penalties = get_atom(site, "/feeds/penalty.atom")
    assert len(entries(penalties)) == 2 and len(tombstones(penalties)) == 1
    search = get_atom(site, "/search/feed.atom?q=测试")
    assert entries(search)


def test_item_format(engine, site):
    rid = record_id_of(engine, "烟芝市监罚〔2026〕1号")
    root = get_atom(site, "/feeds/penalty.atom")
    [entry] = entry_for(root, rid)
    base = get_settings().base_url.rstrip("/")
    assert (
        entry.findtext("a:title", namespaces=NS)
        == "【行政处罚】烟芝市监罚〔2026〕1号 · 芝罘区 · 烟台市芝罘区测试1食品有限公司"
    )
    assert entry.find("a:link", NS).get("href") == f"{base}/records/{rid}"
    assert entry.findtext("a:id", namespaces=NS).endswith(f":records/{rid}/v1")
    assert entry.findtext("a:id", namespaces=NS).startswith("tag:")
    assert {c.get("term") for c in entry.findall("a:category", NS)} == {
        "行政处罚",
        "芝罘区",
        "食品",
        "一般失信",
    }
    summary = entry.findtext("a:summary", namespaces=NS)
    assert "经营超过保质期的食品" in summary and "罚款金额：5,000.00元" in summary
    assert entry.findtext("a:published", namespaces=NS)
    assert entry.findtext("a:updated", namespaces=NS)
    [bl] = entries(get_atom(site, "/feeds/blacklist.atom"))
    assert (
        bl.findtext("a:title", namespaces=NS) == "【黑榜】2026年第9期 · 芝罘区 · 烟台黑榜测试10超市"
    )
    # the district feed only has its district; by name or by code, the same document
    fushan = get_atom(site, "/feeds/penalty/福山区.atom")
    assert [e.findtext("a:title", namespaces=NS).split(" · ")[1] for e in entries(fushan)] == [
        "福山区"
    ]
    assert link(fushan, "self").endswith("/feeds/penalty/370611.atom")
    assert (
        site.get("/feeds/penalty/福山区.atom").content
        == site.get("/feeds/penalty/370611.atom").content
    )
    everything = get_atom(site, "/feeds/all.atom")
    assert len(entries(everything)) == 6
    # an entity's feed under a sloppy code is the canonical one
    sloppy = get_atom(site, f"/entities/{uscc(1).lower()}/feed.atom")
    assert link(sloppy, "self").endswith(f"/entities/{uscc(1)}/feed.atom")
    assert [e.findtext("a:id", namespaces=NS) for e in entries(sloppy)] == [
        entry.findtext("a:id", namespaces=NS)
    ]


def test_withdrawal_is_a_deletion_in_its_kind_district_and_entity_feeds(engine, site, tmp_path):
    # a second record keeps the entity in publication: its feed stays (portal.feeds)
    run(engine, write_csv(tmp_path / "keep.csv", [pen(9, 统一社会信用代码=uscc(1))]))
    rid = record_id_of(engine, "烟芝市监罚〔2026〕1号")
    urls = [
        "/feeds/penalty.atom",
        "/feeds/penalty/370602.atom",
        "/feeds/all.atom",
        f"/entities/{uscc(1)}/feed.atom",
    ]
    before = {url: entry_ids(get_atom(site, url)) for url in urls}
    published_id = next(i for i in before[urls[0]] if f"records/{rid}/" in i)
    run(
        engine,
        write_csv(
            tmp_path / "w.csv",
            [pen(1, 操作="撤销", 违法行为类型="特别标记的违法行为")],
            header=WITHDRAW_HEADER,
        ),
    )
    for url in urls:
        assert published_id in before[url]
        root = get_atom(site, url)
        assert not entry_for(root, rid), url  # no details left
        [stone] = [t for t in tombstones(root) if rid in t.get("ref")]
        assert stone.get("ref") == published_id
        when = datetime.fromisoformat(stone.get("when"))
        assert all(
            when > datetime.fromisoformat(e.findtext("a:updated", namespaces=NS))
            for e in entries(root)
        )
        assert stone.findtext("at:comment", namespaces=NS) == "已撤回"
        assert [c.tag for c in stone] == [f"{{{NS['at']}}}comment"]
    # the other district's feed never had it
    assert not tombstones(get_atom(site, "/feeds/penalty/370611.atom"))
    # RSS announces it with a neutral title, a new guid, the date and nothing of the record
    for url in ("/feeds/penalty.rss", "/feeds/penalty/370602.rss", f"/entities/{uscc(1)}/feed.rss"):
        channel = get_rss(site, url).find("channel")
        [item] = [i for i in channel.findall("item") if rid in i.findtext("link")]
        assert_bare_deletion(item, rid, version=2)
        # (the entity feed's own title names its entity: portal/feeds.py, see items only)
        body = "".join(etree.tostring(i, encoding="unicode") for i in channel.findall("item"))
        for detail in ("特别标记的违法行为", "烟芝市监罚〔2026〕1号", "芝罘区测试1食品"):
            assert detail not in body, (url, detail)
    # the record page says gone, and so does its API twin
    assert site.get(f"/records/{rid}").status_code == 410


def test_expiry_is_a_deletion(engine, client, tmp_path):
    earlier = TODAY - timedelta(days=60)
    rows = [
        penalty_row(1, 处罚决定日期=day(-120), 失信程度="轻微", 领域="价格"),  # 3 months
        penalty_row(2, 处罚决定日期=day(-90), 统一社会信用代码=uscc(1)),  # keeps the entity
    ]
    run(engine, write_csv(tmp_path / "a.csv", rows), today=earlier)
    rid = record_id_of(engine, "烟芝市监罚〔2026〕1号")
    assert entry_for(get_atom(client, "/feeds/penalty.atom"), rid) == []  # already past its end
    assert expire(engine, today=TODAY)["expired"] == 1
    for url in (
        "/feeds/penalty.atom",
        "/feeds/penalty/370602.atom",
        f"/entities/{uscc(1)}/feed.atom",
    ):
        root = get_atom(client, url)
        [stone] = [t for t in tombstones(root) if rid in t.get("ref")]
        assert stone.get("ref").endswith(f"records/{rid}/v1")
        assert stone.findtext("at:comment", namespaces=NS) == "公示期满"
        assert not entry_for(root, rid)
    channel = get_rss(client, "/feeds/penalty.rss").find("channel")
    [item] = [i for i in channel.findall("item") if rid in i.findtext("link")]
    assert_bare_deletion(item, rid, version=2)
    assert "测试1食品" not in etree.tostring(channel, encoding="unicode")


def test_newest_first_at_most_50_and_archives_reach_every_older_item(engine, client, tmp_path):
    run(engine, write_csv(tmp_path / "a.csv", [pen(n) for n in range(1, 61)]))
    run(engine, write_csv(tmp_path / "b.csv", [pen(n) for n in range(61, 121)]))

    def numbers(root) -> list[int]:
        return [
            int(e.findtext("a:title", namespaces=NS).split("〕")[1].split("号")[0])
            for e in entries(root)
        ]

    current = get_atom(client, "/feeds/penalty.atom")
    assert numbers(current) == list(range(120, 70, -1))
    stamps = [e.findtext("a:updated", namespaces=NS) for e in entries(current)]
    assert stamps == sorted(stamps, reverse=True)
    assert current.find("fh:archive", NS) is None
    assert link(current, "next-archive") is None
    r = client.get("/feeds/penalty.atom")
    assert r.headers["cache-control"] == "public, max-age=60"

    archive1_url = local(link(current, "prev-archive"))
    assert "?before=" in archive1_url
    archive1 = get_atom(client, archive1_url)
    assert numbers(archive1) == list(range(70, 20, -1))
    assert archive1.find("fh:archive", NS) is not None
    assert local(link(archive1, "current")) == "/feeds/penalty.atom"
    assert link(archive1, "next-archive") is None  # the next newer document is the current one

    archive2_url = local(link(archive1, "prev-archive"))
    archive2 = get_atom(client, archive2_url)
    assert numbers(archive2) == list(range(20, 0, -1))
    assert link(archive2, "prev-archive") is None
    assert local(link(archive2, "next-archive")) == archive1_url
    assert client.get(archive2_url).headers["cache-control"] == f"public, max-age={ARCHIVE_MAX_AGE}"

    # the same chain in RSS, through atom:link
    channel = get_rss(client, "/feeds/penalty.rss").find("channel")
    assert len(channel.findall("item")) == 50
    prev = channel.find("a:link[@rel='prev-archive']", NS).get("href")
    older = get_rss(client, local(prev)).find("channel")
    assert len(older.findall("item")) == 50
    # more events later: the archive pages already handed out do not change
    run(engine, write_csv(tmp_path / "c.csv", [pen(n) for n in range(121, 131)]))
    assert numbers(get_atom(client, archive1_url)) == list(range(70, 20, -1))
    assert numbers(get_atom(client, "/feeds/penalty.atom"))[0] == 130


def test_conditional_get(engine, site, tmp_path, monkeypatch):
    # the second of the site's publication is over: the feeds give their Last-Modified
    # (portal.feeds.settled)
    monkeypatch.setattr(clock, "now", lambda: datetime.now(UTC) + timedelta(seconds=1))
    for url in (
        "/feeds/penalty.atom",
        "/feeds/all.rss",
        f"/entities/{uscc(1)}/feed.atom",
        "/feeds/penalty/370602.atom",
        "/search/feed.atom?q=测试",
    ):
        first = site.get(url)
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        assert first.headers["cache-control"] == "public, max-age=60"
        again = site.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
        assert site.get(url, headers={"If-Modified-Since": modified}).status_code == 304
        earlier = format_datetime(parsedate_to_datetime(modified) - timedelta(hours=1), usegmt=True)
        assert site.get(url, headers={"If-Modified-Since": earlier}).status_code == 200
        # If-None-Match wins over If-Modified-Since
        assert (
            site.get(
                url, headers={"If-None-Match": '"other"', "If-Modified-Since": modified}
            ).status_code
            == 200
        )
        assert site.get(url).content == first.content  # the same document, from the cache
        head = site.head(url)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["etag"] == etag
        assert head.headers["content-type"] == first.headers["content-type"]
    old = site.get("/feeds/penalty.atom").headers["etag"]
    run(engine, write_csv(tmp_path / "more.csv", [pen(7)]))
    fresh = site.get("/feeds/penalty.atom", headers={"If-None-Match": old})
    assert fresh.status_code == 200 and fresh.headers["etag"] != old


def test_guid_changes_with_the_version(engine, site, tmp_path):
    rid = record_id_of(engine, "烟芝市监罚〔2026〕1号")
    [v1] = entry_for(get_atom(site, "/feeds/penalty.atom"), rid)
    rss1 = [
        i.findtext("guid")
        for i in get_rss(site, "/feeds/penalty.rss").iter("item")
        if rid in i.findtext("link")
    ]
    run(engine, write_csv(tmp_path / "b.csv", [pen(1, **{"罚款金额(元)": "8000"})]))
    root = get_atom(site, "/feeds/penalty.atom")
    [v2] = entry_for(root, rid)  # the older version's entry is gone from the feed
    assert v1.findtext("a:id", namespaces=NS).endswith("/v1")
    assert v2.findtext("a:id", namespaces=NS).endswith("/v2")
    assert v2.findtext("a:title", namespaces=NS).endswith("（更新）")
    assert "8,000.00元" in v2.findtext("a:summary", namespaces=NS)
    assert v2.findtext("a:updated", namespaces=NS) > v1.findtext("a:updated", namespaces=NS)
    assert v2.findtext("a:published", namespaces=NS) == v1.findtext("a:published", namespaces=NS)
    assert entries(root)[0] is not None and entry_ids(root)[0] == v2.findtext("a:id", namespaces=NS)
    rss2 = [
        i.findtext("guid")
        for i in get_rss(site, "/feeds/penalty.rss").iter("item")
        if rid in i.findtext("link")
    ]
    assert rss1 != rss2 and rss2[0].endswith("/v2")


def test_no_personal_data_in_feeds(engine, site, tmp_path):
    run(engine, write_csv(tmp_path / "w.csv", [pen(2, 操作="撤销")], header=WITHDRAW_HEADER))
    reindex(engine)
    for url in feed_urls(uscc(2)):
        body = site.get(url).content.decode()
        for raw in (RAW_ID, RAW_MOBILE, RAW_ID[6:14], RAW_MOBILE[3:7]):
            assert raw not in body, (url, raw)
        assert "张三" not in body  # a person's name is not feed material


@pytest.mark.parametrize(
    "url",
    [
        "/feeds/nope.atom",
        "/feeds/penalty.json",
        "/feeds/penalty",
        "/feeds/penalty/999999.atom",
        "/feeds/penalty/火星区.atom",
        "/feeds/nope/370602.atom",
        "/feeds/penalty.atom?before=0",
        # a malformed code (a well-formed one never on record has an empty feed:
        # tests/test_portal_small_fixes.py)
        f"/entities/{uscc(999)[:-1]}X/feed.atom",
        "/entities/370602/feed.rss",
        "/search/feed.atom?kind=nope",
        "/search/feed.rss?district=火星区",
    ],
)
def test_unknown_feeds_are_404(engine, client, url):
    assert client.get(url).status_code == 404


def test_search_feed_lists_matching_records(engine, site, tmp_path):
    reindex(engine)
    root = get_atom(site, "/search/feed.atom?q=测试1食品")
    titles = [e.findtext("a:title", namespaces=NS) for e in entries(root)]
    assert titles == ["【行政处罚】烟芝市监罚〔2026〕1号 · 芝罘区 · 烟台市芝罘区测试1食品有限公司"]
    assert "测试1食品" in root.findtext("a:title", namespaces=NS)
    kinds = get_atom(site, "/search/feed.atom?kind=blacklist")
    assert [e.findtext("a:title", namespaces=NS)[:4] for e in entries(kinds)] == ["【黑榜】"]
    district = get_atom(site, "/search/feed.atom?kind=penalty&district=福山区")
    assert len(entries(district)) == 1
    assert link(district, "alternate").endswith("/search?kind=penalty&district=370611")
    # a withdrawn record leaves the search feed once the index has seen the change
    run(engine, write_csv(tmp_path / "w.csv", [pen(1, 操作="撤销")], header=WITHDRAW_HEADER))
    reindex(engine)
    assert entries(get_atom(site, "/search/feed.atom?q=测试1食品")) == []


def test_autodiscovery_urls_resolve(engine, site):
    for kind in KINDS:
        get_atom(site, routes.feed_url(kind))
        get_atom(site, routes.feed_url(kind, "370602"))
    get_atom(site, routes.entity_feed_url(uscc(1)))
    home = site.get("/").text
    hrefs = [h for h in etree.HTML(home).xpath("//link[@rel='alternate']/@href") if ".atom" in h]
    assert hrefs
    for href in hrefs:
        get_atom(site, href)


@pytest.mark.parametrize(
    "scope,index",
    [
        (Scope(kind="penalty"), "ix_changes_kind_seq"),
        (Scope(kind="penalty", district="370602"), "ix_changes_kind_district_seq"),
        (Scope(kind="all", district="370602"), "ix_changes_kind_district_seq"),
        (Scope(entity_id="91370602000000001K"), "ix_changes_entity_seq"),
    ],
)
def test_feed_queries_use_the_change_log_indexes(engine, scope, index):
    """Every feed page is index range scans stopped by LIMIT, in seq order: never a full scan
    or a sort of the change log. (PostgreSQL picks among the indexes by its statistics: the
    (kind, …) ones, or, once autovacuum has analyzed a log this small, the primary key in seq
    order with the kind as a filter; so there only the absence of scans and sorts is asserted.)"""
    stmt = scope_seqs(scope, 51, before=1000)
    with engine.connect() as conn:
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET enable_seqscan = off"))
            plan = "\n".join(conn.execute(text(f"EXPLAIN {sql}")).scalars())
            assert " Scan " in plan and "Seq Scan" not in plan and "Sort  " not in plan, plan
            return
        plan = "\n".join(str(r[-1]) for r in conn.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
    assert index in plan, plan
    if scope.kind != "all":  # one range scan in seq order: nothing to sort
        assert "TEMP B-TREE" not in plan, plan


def test_a_repeated_feed_is_answered_without_reading_its_page_until_the_log_moves(
        engine, site, tmp_path, monkeypatch):
    import portal.feeds as feeds_module

    reads = []
    real_read_page = feeds_module.read_page

    def counting_read_page(*args, **kwargs):
        reads.append(1)
        return real_read_page(*args, **kwargs)

    monkeypatch.setattr(feeds_module, "read_page", counting_read_page)
    first = site.get("/feeds/penalty.atom")
    again = site.get("/feeds/penalty.atom")
    revalidated = site.get("/feeds/penalty.atom", headers={"If-None-Match": first.headers["ETag"]})
    assert (first.content, first.headers["ETag"]) == (again.content, again.headers["ETag"])
    assert revalidated.status_code == 304
    assert len(reads) == 1
    run(engine, write_csv(tmp_path / "n.csv", [pen(4)]))  # the change log moves on
    changed = site.get("/feeds/penalty.atom")
    assert len(reads) == 2 and changed.headers["ETag"] != first.headers["ETag"]
    assert "烟芝市监罚〔2026〕4号" in changed.text


def test_a_repaired_record_leaves_as_a_plain_withdrawal():
    """A tombstone in the entity's own feed must not tell that the entity had a record repaired."""
    row = SimpleNamespace(seq=9, id="P-1", ev_version=2, at=datetime(2026, 11, 27, 10, 0), op="withdraw")
    repaired = deletion_item(SimpleNamespace(**vars(row), reason="repair"), "https://example.org", [])
    by_file = deletion_item(SimpleNamespace(**vars(row), reason="file"), "https://example.org", [])
    assert repaired.comment == by_file.comment == "已撤回"
