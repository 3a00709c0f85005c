"""A feed's Last-Modified moves whenever its document can have changed, so that a reader that
revalidates with If-Modified-Since only never gets a 304 for a document that lost an item: a
record withdrawn from a search feed (before and after the search index applied it), a record
whose publicity passed today (it leaves at read time, before the nightly expire writes its
event), an archive page whose next-archive link appeared. Real HTTP through Litestar's test
client, on SQLite and PostgreSQL; the documents parsed as the other feed tests do.

Last-Modified has a resolution of one second: the steps that must date a document later sleep
past the second of the one before (the index's sync cursor is stamped with the real time), and
a feed gives its Last-Modified only once the second of its newest change is over
(portal.feeds.settled): `validators` waits for it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import TestClient

from portal.app import create_app
from publishing import clock
from publishing.search.sync import sync
from tests.factories import blacklist_row, write_csv
from tests.test_feeds import (
    TODAY,
    WITHDRAW_HEADER,
    day,
    entry_for,
    entry_ids,
    get_atom,
    get_rss,
    link,
    local,
    pen,
    record_id_of,
    run,
)

SEARCH = "/search/feed.{fmt}?kind=penalty&district=370602"


@pytest.fixture
def client(engine):
    with TestClient(create_app(engine)) as c:
        yield c


def next_second() -> None:
    time.sleep(1.05)


def validators(client, url: str) -> tuple[str, str]:
    r = client.get(url)
    if "last-modified" not in r.headers:  # the second of its newest change is not over
        next_second()
        r = client.get(url)
    assert r.status_code == 200, (url, r.status_code, r.text[:300])
    return r.headers["last-modified"], r.headers["etag"]


def since(client, url: str, modified: str) -> int:
    """The status of a revalidation that sends If-Modified-Since only."""
    return client.get(url, headers={"If-Modified-Since": modified}).status_code


def numbers(root) -> list[int]:
    """The decision numbers (烟芝市监罚〔2026〕N号 → N) of a search feed's entries."""
    titles = [e.findtext("{http://www.w3.org/2005/Atom}title") for e in root]
    return [int(t.split("〕")[1].split("号")[0]) for t in titles if t and "〕" in t]


def entries_of(root) -> list:
    return root.findall("{http://www.w3.org/2005/Atom}entry")


def publish_51(engine, tmp_path) -> None:
    """51 penalties in 芝罘区, decided on 51 successive days (n = 51 the newest): one more
    than a feed page, so a search feed shows 2..51 and the kind feed has one archive page."""
    rows = [pen(n, 处罚决定日期=day(-100 + n)) for n in range(1, 52)]
    run(engine, write_csv(tmp_path / "p.csv", rows))
    sync(engine)


def test_a_search_feed_is_modified_by_a_withdrawal_before_and_after_the_index_has_it(
    engine, client, tmp_path
):
    publish_51(engine, tmp_path)
    url = SEARCH.format(fmt="atom")
    assert numbers(entries_of(get_atom(client, url))) == list(range(51, 1, -1))
    first, first_tag = validators(client, url)
    rss_first, _ = validators(client, SEARCH.format(fmt="rss"))
    gone = record_id_of(engine, "烟芝市监罚〔2026〕51号")

    next_second()
    run(engine, write_csv(tmp_path / "w.csv", [pen(51, 操作="撤销")], header=WITHDRAW_HEADER))
    # the index still finds it: the page drops it (the records table says it is withdrawn)
    assert since(client, url, first) == 200
    root = get_atom(client, url)
    assert not entry_for(root, gone) and numbers(entries_of(root)) == list(range(50, 1, -1))
    before_sync, tag = validators(client, url)
    assert tag != first_tag and before_sync != first
    assert since(client, SEARCH.format(fmt="rss"), rss_first) == 200
    assert gone not in get_rss(client, SEARCH.format(fmt="rss")).findtext("channel/item/guid")
    assert since(client, url, before_sync) == 304  # nothing changed since

    next_second()
    sync(engine)  # the index drops it: the 51st found record (n = 1) comes onto the page
    assert since(client, url, before_sync) == 200
    assert numbers(entries_of(get_atom(client, url))) == list(range(50, 0, -1))
    after_sync, tag = validators(client, url)
    assert since(client, url, after_sync) == 304
    # If-None-Match still decides when both are sent
    both = {"If-Modified-Since": after_sync, "If-None-Match": first_tag}
    assert client.get(url, headers=both).status_code == 200
    assert client.get(url, headers={**both, "If-None-Match": tag}).status_code == 304
    older = {"If-Modified-Since": first, "If-None-Match": tag}  # an old date, the current tag
    assert client.get(url, headers=older).status_code == 304


def test_a_record_past_its_publicity_leaves_with_a_new_last_modified(
    engine, client, tmp_path, monkeypatch
):
    rows = [
        blacklist_row(1, 发布日期=day(-20), 公示截止日期=day(0)),  # its last day is today
        blacklist_row(2, 发布日期=day(-20)),
    ]
    run(engine, write_csv(tmp_path / "b.csv", rows))
    sync(engine)
    urls = ["/feeds/blacklist.atom", "/feeds/blacklist/370602.rss", "/feeds/all.atom",
            "/search/feed.atom?kind=blacklist"]
    seen = {url: validators(client, url) for url in urls}
    assert len(entry_ids(get_atom(client, "/feeds/blacklist.atom"))) == 2

    monkeypatch.setattr(clock, "today", lambda: TODAY + timedelta(days=1))  # the next day
    # ... by the clock too: a Last-Modified is given once its second is over (portal.feeds.settled)
    monkeypatch.setattr(clock, "now", lambda: datetime.now(UTC) + timedelta(days=1))
    for url, (modified, etag) in seen.items():
        assert since(client, url, modified) == 200, url
        now_modified, now_tag = validators(client, url)
        assert now_tag != etag, url
        assert since(client, url, now_modified) == 304, url  # and unchanged after that
        if url.endswith(".atom"):
            assert len(entries_of(get_atom(client, url))) == 1, url

    # an unchanged feed still answers 304 the day after, to its own Last-Modified
    monkeypatch.setattr(clock, "today", lambda: TODAY + timedelta(days=2))
    monkeypatch.setattr(clock, "now", lambda: datetime.now(UTC) + timedelta(days=2))
    for url in urls:
        modified, _ = validators(client, url)
        assert since(client, url, modified) == 304, url


def test_an_archive_page_is_modified_when_its_next_archive_link_appears(
    engine, client, tmp_path
):
    publish_51(engine, tmp_path)
    archive = local(link(get_atom(client, "/feeds/penalty.atom"), "prev-archive"))
    assert link(get_atom(client, archive), "next-archive") is None
    modified, _ = validators(client, archive)

    next_second()
    run(engine, write_csv(tmp_path / "n.csv", [pen(52, 处罚决定日期=day(-1))]))
    assert since(client, archive, modified) == 200
    assert link(get_atom(client, archive), "next-archive") is not None
