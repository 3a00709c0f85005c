"""District moves in the district feeds: the old district's page finds each change that moved
a record out of it (feeds.moves_out) and reads back only those, whichever way it looks (the
page's own records, the log's window, or the district's own history), on SQLite and
PostgreSQL, with data published through the real pipeline."""

from __future__ import annotations

import pytest

from publishing import feeds
from publishing.feeds import MOVED_TITLE, Scope, moves_out, read_page
from publishing.settings import get_settings
from tests.factories import write_csv
from tests.test_feeds import get_atom, pen, record_id_of, run
from tests.test_feeds_updates import FUSHAN, LAISHAN, ZHIFU, stones

LAI = {"所属区市": "莱山区"}
FU = {"所属区市": "福山区"}
# (MOVE_WINDOW, MOVE_HISTORY) as if the log were big; None keeps the module's value
PATHS = {
    "window": (None, None),  # a short window: the kind's changes in it
    "history": (0, None),  # a long window: the changes of the district's own records
    "both-long": (0, 0),  # a long window and a long history: the window after all
}


def limits(monkeypatch, path: str) -> None:
    for name, value in zip(("MOVE_WINDOW", "MOVE_HISTORY"), PATHS[path], strict=True):
        if value is not None:
            monkeypatch.setattr(feeds, name, value)


def publish(engine, tmp_path, *rows: dict[str, str]) -> None:
    """One file, one batch: its events follow the earlier ones in the change log."""
    name = f"f{len(list(tmp_path.glob('f*.csv')))}.csv"
    run(engine, write_csv(tmp_path / name, list(rows)))


def moved_items(engine, scope: Scope, limit: int) -> list[tuple[str, list[str]]]:
    """(guid, versions its refs remove) of every move deletion on the scope's pages of `limit`
    events, newest page first, walking the archives down."""
    out: list[tuple[str, list[str]]] = []
    before = None
    base = get_settings().base_url
    with engine.connect() as conn:
        while True:
            page = read_page(conn, scope, base, before=before, limit=limit)
            for item in page.items:
                if item.title == MOVED_TITLE:
                    out.append((item.guid, [r.rsplit("/", 1)[1] for r in item.refs]))
            if page.older is None:
                return out
            before = page.older


@pytest.mark.parametrize("path", PATHS)
def test_a_record_moving_back_and_forth_is_deleted_from_each_district_it_leaves(
    engine, client, tmp_path, monkeypatch, path
):
    """芝罘区 → 莱山区 → 芝罘区 → 莱山区, between other records' events (one changing inside
    莱山区): each move out is one deletion of the versions the old district showed, on the one
    page (of 2 events, so of many windows) whose window holds the change."""
    limits(monkeypatch, path)
    publish(engine, tmp_path, pen(1), pen(2), pen(3))
    rid = record_id_of(engine, "烟芝市监罚〔2026〕1号")
    publish(engine, tmp_path, pen(1, **LAI))  # v2: leaves 芝罘区
    publish(engine, tmp_path, pen(4), pen(5), pen(20, **LAI))
    publish(engine, tmp_path, pen(1))  # v3: back, leaves 莱山区
    publish(engine, tmp_path, pen(6), pen(20, **LAI, **{"罚款金额(元)": "9000"}))
    publish(engine, tmp_path, pen(1, **LAI, **{"罚款金额(元)": "8000"}))  # v4: leaves again
    publish(engine, tmp_path, pen(7), pen(8))
    tag = f"records/{rid}"
    zhifu = moved_items(engine, Scope(kind="penalty", district=ZHIFU), limit=2)
    assert [(g.split(tag)[1], refs) for g, refs in zhifu] == [
        ("/v4/moved", ["v3"]),
        ("/v2/moved", ["v1"]),
    ]
    laishan = moved_items(engine, Scope(kind="penalty", district=LAISHAN), limit=2)
    assert [(g.split(tag)[1], refs) for g, refs in laishan] == [("/v3/moved", ["v2"])]
    for kind in ("penalty", "all"):  # every kind in the district: the same deletions
        assert len(moved_items(engine, Scope(kind=kind, district=ZHIFU), limit=3)) == 2
    # the documents the public reads (one page: every move out of each district)
    assert stones(get_atom(client, f"/feeds/penalty/{ZHIFU}.atom"), rid) == {
        "v1": "已改属其他区市",
        "v3": "已改属其他区市",
    }
    assert stones(get_atom(client, f"/feeds/penalty/{LAISHAN}.atom"), rid) == {
        "v2": "已改属其他区市"
    }
    assert stones(get_atom(client, f"/feeds/penalty/{FUSHAN}.atom"), rid) == {}


def test_a_move_behind_a_long_district_history_is_found(engine, tmp_path, monkeypatch):
    """The history way reads the district's add/change events newest first and gives up past
    MOVE_HISTORY of them. It counted the records those events named instead, so a page whose
    window is past MOVE_WINDOW missed the move of a record whose events in the district were
    all older than the cut (here: one other record updated four times after it)."""
    monkeypatch.setattr(feeds, "MOVE_WINDOW", 0)  # every window is "long"
    monkeypatch.setattr(feeds, "MOVE_HISTORY", 3)  # and 4 events are a long history
    publish(engine, tmp_path, pen(1), pen(2))
    rid = record_id_of(engine, "烟芝市监罚〔2026〕1号")
    for fine in ("6000", "7000", "8000", "9000"):
        publish(engine, tmp_path, pen(2, **{"罚款金额(元)": fine}))
    publish(engine, tmp_path, pen(1, **LAI))
    guids = [g for g, _ in moved_items(engine, Scope(kind="penalty", district=ZHIFU), limit=2)]
    assert [g.rsplit("records/", 1)[1] for g in guids] == [f"{rid}/v2/moved"]


@pytest.mark.parametrize("path", PATHS)
def test_only_real_moves_are_read_back(engine, tmp_path, monkeypatch, path):
    """moves_out returns the changes that moved a record out of the district and nothing else:
    not the changes of records that never were in it (inside 莱山区, or 福山区 → 莱山区), nor a
    moved record's later changes elsewhere. Before, it returned them all, for Python to sort
    out after reading every one's history."""
    limits(monkeypatch, path)
    publish(engine, tmp_path, pen(1), pen(2, **LAI), pen(3, **LAI), pen(4, **FU))
    rid = record_id_of(engine, "烟芝市监罚〔2026〕1号")
    noise = {"罚款金额(元)": "7000"}
    publish(engine, tmp_path, pen(2, **LAI, **noise), pen(3, **LAI, **noise), pen(4, **LAI))
    publish(engine, tmp_path, pen(1, **LAI))  # the one real move out of 芝罘区
    publish(engine, tmp_path, pen(1, **LAI, **noise), pen(5))  # later, inside 莱山区
    with engine.connect() as conn:
        for kind in ("penalty", "all"):
            scope = Scope(kind=kind, district=ZHIFU)
            moves = moves_out(conn, scope, lo=1, hi=None, page_records=set())
            assert [(m.record_id, m.ev_version) for m in moves] == [(rid, 2)], (kind, moves)
            # the page held the district's whole history (lo == 0): its own records
            moves = moves_out(conn, scope, lo=0, hi=None, page_records={rid})
            assert [(m.record_id, m.ev_version) for m in moves] == [(rid, 2)], (kind, moves)
        assert moves_out(conn, Scope(kind="penalty", district=FUSHAN), 1, None, set())
        assert not moves_out(conn, Scope(kind="penalty", district=LAISHAN), 1, None, set())
