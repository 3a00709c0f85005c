"""Feeds and newer versions: an update tombstones (RFC 6721) the earlier versions each feed
showed, and a change that moves a record to another district deletes it from the old
district's feeds, current documents and archives alike, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient
from lxml import etree

from portal.app import create_app
from publishing import feeds
from publishing.feeds import Scope, read_page
from publishing.search.sync import reindex
from publishing.settings import get_settings
from tests.factories import penalty_row, uscc, write_csv
from tests.test_feeds import (
    NS,
    WITHDRAW_HEADER,
    entry_for,
    get_atom,
    get_rss,
    link,
    local,
    pen,
    record_id_of,
    run,
    tombstones,
)

ZHIFU, LAISHAN, FUSHAN = "370602", "370613", "370611"
DECISION = "烟芝市监罚〔2026〕50号"


@pytest.fixture
def client(engine):
    with TestClient(create_app(engine)) as c:
        yield c


def stones(root, record_id: str) -> dict[str, str]:
    """ref suffix (v1, v2 …) → at:comment of the record's tombstones in a document."""
    return {
        t.get("ref").rsplit("/", 1)[1]: t.findtext("at:comment", namespaces=NS)
        for t in tombstones(root)
        if f"records/{record_id}/" in t.get("ref")
    }


def versions(root, record_id: str) -> list[str]:
    return [e.findtext("a:id", namespaces=NS).rsplit("/", 1)[1] for e in entry_for(root, record_id)]


def rss_items(client, url: str, record_id: str) -> list[etree._Element]:
    channel = get_rss(client, url).find("channel")
    return [i for i in channel.findall("item") if record_id in i.findtext("link")]


def test_an_update_tombstones_the_version_each_feed_showed(engine, client, tmp_path):
    run(engine, write_csv(tmp_path / "a.csv", [pen(1), pen(2)]))
    rid = record_id_of(engine, "烟芝市监罚〔2026〕1号")
    run(engine, write_csv(tmp_path / "b.csv", [pen(1, **{"罚款金额(元)": "8000"})]))
    for url in (
        "/feeds/penalty.atom",
        f"/feeds/penalty/{ZHIFU}.atom",
        f"/feeds/all/{ZHIFU}.atom",
        "/feeds/all.atom",
        f"/entities/{uscc(1)}/feed.atom",
    ):
        root = get_atom(client, url)
        assert versions(root, rid) == ["v2"], url
        assert stones(root, rid) == {"v1": "已更新，以新版本为准"}, url
        [stone] = [t for t in tombstones(root) if rid in t.get("ref")]
        [entry] = entry_for(root, rid)
        assert stone.get("when") == entry.findtext("a:updated", namespaces=NS)
    # RSS cannot delete: the new version's item is the announcement, no deletion beside it
    [item] = rss_items(client, "/feeds/penalty.rss", rid)
    assert item.findtext("guid").endswith(f"records/{rid}/v2")
    assert "8,000.00元" in item.findtext("description")
    # a second update replaces both earlier versions, which the feed may have shown
    run(engine, write_csv(tmp_path / "c.csv", [pen(1, **{"罚款金额(元)": "9000"})]))
    root = get_atom(client, "/feeds/penalty.atom")
    assert versions(root, rid) == ["v3"]
    assert set(stones(root, rid)) == {"v1", "v2"}


def test_a_record_brought_back_replaces_nothing_its_withdrawal_removed(engine, client, tmp_path):
    run(engine, write_csv(tmp_path / "a.csv", [pen(1)]))
    rid = record_id_of(engine, "烟芝市监罚〔2026〕1号")
    run(engine, write_csv(tmp_path / "w.csv", [pen(1, 操作="撤销")], header=WITHDRAW_HEADER))
    run(engine, write_csv(tmp_path / "b.csv", [pen(1)]))
    root = get_atom(client, "/feeds/penalty.atom")
    assert versions(root, rid) == ["v3"]
    # only the withdrawal's tombstone of v1: the new entry has nothing left to replace
    refs = [t.get("ref") for t in tombstones(root) if rid in t.get("ref")]
    assert [r.rsplit("/", 1)[1] for r in refs] == ["v1"]


def test_a_district_move_deletes_the_record_from_the_old_districts_feeds(engine, client, tmp_path):
    run(engine, write_csv(tmp_path / "a.csv", [penalty_row(50)]))
    rid = record_id_of(engine, DECISION)
    run(engine, write_csv(tmp_path / "b.csv", [penalty_row(50, 所属区市="莱山区")]))
    for url in (f"/feeds/penalty/{ZHIFU}.atom", f"/feeds/all/{ZHIFU}.atom"):
        root = get_atom(client, url)
        assert versions(root, rid) == [], url
        assert stones(root, rid) == {"v1": "已改属其他区市"}, url
    for url in (f"/feeds/penalty/{LAISHAN}.atom", f"/feeds/all/{LAISHAN}.atom"):
        root = get_atom(client, url)
        assert versions(root, rid) == ["v2"], url
        assert stones(root, rid) == {}, url  # this district never showed v1
        [entry] = entry_for(root, rid)
        assert entry.findtext("a:title", namespaces=NS).endswith("（更新）")
    for url in ("/feeds/penalty.atom", f"/entities/{uscc(50)}/feed.atom"):
        root = get_atom(client, url)
        assert versions(root, rid) == ["v2"] and stones(root, rid) == {"v1": "已更新，以新版本为准"}
    assert stones(get_atom(client, f"/feeds/penalty/{FUSHAN}.atom"), rid) == {}
    # RSS: a bare item with a neutral title in the district it left, like a withdrawal
    [item] = rss_items(client, f"/feeds/penalty/{ZHIFU}.rss", rid)
    assert [c.tag for c in item] == ["title", "link", "guid", "pubDate"]
    assert item.findtext("title") == "【已改属其他区市】公示信息"
    assert item.findtext("guid").endswith(f"records/{rid}/v2/moved")
    body = etree.tostring(item, encoding="unicode")
    assert "50号" not in body and "测试50" not in body
    [item] = rss_items(client, f"/feeds/penalty/{LAISHAN}.rss", rid)
    assert item.findtext("guid").endswith(f"records/{rid}/v2")
    # and back: the old district shows the new version, the other one deletes it in turn
    run(engine, write_csv(tmp_path / "c.csv", [penalty_row(50)]))
    root = get_atom(client, f"/feeds/penalty/{ZHIFU}.atom")
    assert versions(root, rid) == ["v3"] and stones(root, rid) == {"v1": "已改属其他区市"}
    assert stones(get_atom(client, f"/feeds/penalty/{LAISHAN}.atom"), rid) == {
        "v2": "已改属其他区市"
    }


def test_a_withdrawal_after_a_move_still_deletes_every_version(engine, client, tmp_path):
    run(engine, write_csv(tmp_path / "a.csv", [penalty_row(50)]))
    rid = record_id_of(engine, DECISION)
    run(engine, write_csv(tmp_path / "b.csv", [penalty_row(50, 所属区市="莱山区")]))
    run(
        engine,
        write_csv(tmp_path / "w.csv", [penalty_row(50, 操作="撤销")], header=WITHDRAW_HEADER),
    )
    root = get_atom(client, f"/feeds/penalty/{LAISHAN}.atom")
    assert versions(root, rid) == []
    refs = sorted(t.get("ref").rsplit("/", 1)[1] for t in tombstones(root) if rid in t.get("ref"))
    assert refs == ["v1", "v2"]
    assert stones(get_atom(client, f"/feeds/penalty/{ZHIFU}.atom"), rid) == {"v1": "已改属其他区市"}


@pytest.mark.parametrize(
    "window,history",
    [
        (None, None),  # a short window: the log's events in it
        (0, None),  # a long window: the district's own records
        (0, 0),  # both long: the window after all
    ],
)
def test_a_move_is_found_on_full_pages_and_archives(
    engine, client, tmp_path, monkeypatch, window, history
):
    """60 penalties in 芝罘区 (more than a page), the first one moves, 60 more follow: the
    move's deletion is on the archive page whose window holds the change, whichever way the
    page finds it, and on no other page."""
    for name, value in (("MOVE_WINDOW", window), ("MOVE_HISTORY", history)):
        if value is not None:  # the limits, as if the log were big
            monkeypatch.setattr(feeds, name, value, raising=False)
    run(engine, write_csv(tmp_path / "a.csv", [pen(n) for n in range(1, 61)]))
    rid = record_id_of(engine, "烟芝市监罚〔2026〕1号")
    run(engine, write_csv(tmp_path / "b.csv", [pen(1, 所属区市="莱山区")]))
    url = f"/feeds/penalty/{ZHIFU}.atom"
    assert stones(get_atom(client, url), rid) == {"v1": "已改属其他区市"}
    run(engine, write_csv(tmp_path / "c.csv", [pen(n) for n in range(61, 121)]))
    pages = []
    while url:
        root = get_atom(client, url)
        pages.append(stones(root, rid))
        older = link(root, "prev-archive")
        url = local(older) if older else None
    assert pages == [{}, {"v1": "已改属其他区市"}, {}]
    with engine.connect() as conn:  # the data side agrees, page by page
        page = read_page(conn, Scope(kind="penalty", district=ZHIFU), get_settings().base_url)
        assert not [i for i in page.items if i.record_id == rid]


def test_the_search_feed_tombstones_earlier_versions(engine, client, tmp_path):
    run(engine, write_csv(tmp_path / "a.csv", [pen(1)]))
    rid = record_id_of(engine, "烟芝市监罚〔2026〕1号")
    run(engine, write_csv(tmp_path / "b.csv", [pen(1, **{"罚款金额(元)": "8000"})]))
    reindex(engine)
    root = get_atom(client, "/search/feed.atom?q=测试1食品")
    assert versions(root, rid) == ["v2"]
    assert stones(root, rid) == {"v1": "已更新，以新版本为准"}
