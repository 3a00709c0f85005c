"""An entity's feed has items exactly while its profile exists: while one of its records is
visible (with the tombstones of the others). Once its records are all withdrawn, or when its
only record arrived already past its publicity, the feed answers as for a code never on record:
empty, nothing of the entity (tests/test_portal_small_fixes.py has the details)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from litestar.testing import TestClient

from portal.app import create_app
from tests.factories import penalty_row, uscc, write_csv
from tests.test_feeds import (
    NS,
    TODAY,
    WITHDRAW_HEADER,
    get_atom,
    get_rss,
    pen,
    record_id_of,
    run,
    tombstones,
)

FORMATS = ("atom", "rss")


@pytest.fixture
def client(engine):
    with TestClient(create_app(engine)) as c:
        yield c


def assert_no_feed(client, code: str) -> None:
    """No profile; the feed a subscriber's reader still reads is empty and names nothing."""
    assert client.get(f"/api/v1/entities/{code}").status_code == 404  # the profile
    root = get_atom(client, f"/entities/{code}/feed.atom")
    assert root.findall("a:entry", NS) == [] and tombstones(root) == []
    assert get_rss(client, f"/entities/{code}/feed.rss").findall("channel/item") == []
    for fmt in FORMATS:
        body = client.get(f"/entities/{code}/feed.{fmt}").text
        assert "测试" not in body  # nothing of the entity: not its name


def test_an_empty_feed_once_every_record_is_withdrawn(engine, client, tmp_path):
    run(engine, write_csv(tmp_path / "a.csv", [pen(1), pen(2)]))
    for fmt in FORMATS:
        assert client.get(f"/entities/{uscc(1)}/feed.{fmt}").status_code == 200
    run(engine, write_csv(tmp_path / "w.csv", [pen(1, 操作="撤销")], header=WITHDRAW_HEADER))
    assert_no_feed(client, uscc(1))
    # the HEAD request says the same, and a sloppy code too
    assert client.head(f"/entities/{uscc(1)}/feed.atom").status_code == 200
    sloppy = client.get(f"/entities/{uscc(1).lower()}/feed.atom")
    assert sloppy.content == client.get(f"/entities/{uscc(1)}/feed.atom").content


def test_an_empty_feed_for_a_record_never_visible(engine, client, tmp_path):
    old = (TODAY - timedelta(days=3 * 365)).isoformat()
    run(engine, write_csv(tmp_path / "a.csv", [penalty_row(3, 处罚决定日期=old)]))
    assert_no_feed(client, uscc(3))


def test_the_feed_stays_with_its_tombstones_while_a_record_is_visible(engine, client, tmp_path):
    run(engine, write_csv(tmp_path / "a.csv", [pen(1), pen(5, 统一社会信用代码=uscc(1))]))
    gone = record_id_of(engine, "烟芝市监罚〔2026〕1号")
    run(engine, write_csv(tmp_path / "w.csv", [pen(1, 操作="撤销")], header=WITHDRAW_HEADER))
    assert client.get(f"/api/v1/entities/{uscc(1)}").status_code == 200
    root = get_atom(client, f"/entities/{uscc(1)}/feed.atom")
    assert [t.get("ref").rsplit("/", 2)[1] for t in tombstones(root)] == [gone]
    get_rss(client, f"/entities/{uscc(1)}/feed.rss")
