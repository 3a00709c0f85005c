"""Keyset pages of a listing deep inside one date: many records share a date (230,000 credit
marks of one day in the review's database), so the position (event_date, id) must be one range
of the listing's index, seeked to the position itself, not a range on the date with the id
tested on every record of the date up to it (publishing.read._older_than / _newer_than).

On SQLite and PostgreSQL: the pages across a block of one date list what a plain sort lists,
forward and back, with every filter; and the plan of each page's statement seeks the row
value (event_date, id) in the index (SQLite: `(event_date,id)<(?,?)` in the SEARCH;
PostgreSQL: `ROW(event_date, id)` in the Index Cond). The OR form seeks the date alone.

The same review's other finding, the change log's big pages (/api/v1/changes): without an API
key a page is clamped to ANONYMOUS_MAX_LIMIT events (the rest by `next`), and a page is built
in batches as JSON, not held as every event's dicts (publishing.changes.page_json)."""

from __future__ import annotations

import json
import re
import tracemalloc
from datetime import date, timedelta
from typing import Any

import pytest
from litestar.serialization import encode_json
from sqlalchemy import select

from portal.api.changes import ANONYMOUS_MAX_LIMIT
from publishing import apikeys, changes, read
from publishing.commit import RECORDS
from publishing.db import analyze
from tests.api_helpers import TODAY, api_client, publish_csv
from tests.factories import credit_mark_row, uscc
from tests.test_query_plans import captured

DAY = date(2026, 9, 30)  # the one date of the block
BLOCK = 1500  # credit marks on DAY; a page is PAGE of them
PAGE = 37
DISTRICTS = ("芝罘区", "莱山区", "福山区")
GRADES = ("A", "B", "C")


@pytest.fixture
def block(engine, tmp_path):
    """BLOCK credit marks on DAY (three districts, three grades), and a few on the days around
    it so that pages cross into the block and out of it; analyzed, as after a publish."""
    rows = [
        credit_mark_row(n, 所属区市=DISTRICTS[n % 3], 分类结果=GRADES[n // 3 % 3],
                        标注日期=DAY.isoformat())
        for n in range(1, BLOCK + 1)
    ]  # fmt: skip
    for n in range(BLOCK + 1, BLOCK + 41):
        day = DAY + timedelta(days=(n % 4) - 2 or 3)  # two days before, after
        rows.append(credit_mark_row(n, 所属区市=DISTRICTS[n % 3], 标注日期=day.isoformat()))
    rows.append(credit_mark_row(BLOCK + 99, 统一社会信用代码=uscc(7, area="370613"),
                                标注类型="诚信示范单位", 标注日期=DAY.isoformat()))  # fmt: skip
    publish_csv(engine, tmp_path, "marks.csv", rows)
    analyze(engine)
    return engine


FILTERS = [
    read.ListFilter("credit_mark"),
    read.ListFilter("credit_mark", district="370602"),
    read.ListFilter("credit_mark", grade="B"),
    read.ListFilter("credit_mark", category="信用风险分类"),
    read.ListFilter("credit_mark", category="信用风险分类", grade="A", district="370613"),
    read.ListFilter("credit_mark", date_to=DAY),
    read.ListFilter("credit_mark", date_from=DAY),
    read.ListFilter("credit_mark", date_from=DAY, date_to=DAY, district="370611"),
    read.ListFilter("credit_mark", date_from=DAY - timedelta(days=1), grade="C"),
]


def _expected(conn, flt: read.ListFilter) -> list[str]:
    """The listing by brute force: every credit mark tested, newest first."""
    cols = (RECORDS.c.id, RECORDS.c.event_date, RECORDS.c.district, RECORDS.c.category,
            RECORDS.c.grade, RECORDS.c.status, RECORDS.c.kind)  # fmt: skip
    hits = [
        r for r in conn.execute(select(*cols))
        if r.kind == flt.kind and r.status == "active"
        and all(getattr(r, f) == getattr(flt, f) for f in ("district", "category", "grade")
                if getattr(flt, f) is not None)
        and (flt.date_from is None or r.event_date >= flt.date_from)
        and (flt.date_to is None or r.event_date <= flt.date_to)
    ]  # fmt: skip
    hits.sort(key=lambda r: (r.event_date, r.id), reverse=True)
    return [r.id for r in hits]


def _position(rec: dict[str, Any]) -> tuple[date, str]:
    return date.fromisoformat(rec["date"]), rec["id"]


def _forward(conn, flt: read.ListFilter) -> list[list[str]]:
    """Every page from the first, each after the last record of the one before."""
    pages, after = [], None
    while page := read.list_records(conn, flt, after=after, limit=PAGE, today=TODAY):
        pages.append([r["id"] for r in page])
        assert after is None or _position(page[-1]) < after, "the pages do not move on"
        after = _position(page[-1])
    return pages


def _backward(conn, flt: read.ListFilter, last: dict[str, Any]) -> list[list[str]]:
    """Every page before the `last` record, from the one just before it back to the first,
    each read before the first record of the page after it (the previous-page link)."""
    pages, before = [], _position(last)
    while page := read.list_records(conn, flt, before=before, limit=PAGE, today=TODAY):
        pages.insert(0, [r["id"] for r in page])
        assert _position(page[0]) > before, "the pages do not move back"
        before = _position(page[0])
    return pages


def test_pages_across_a_date_block_list_what_a_plain_sort_lists(block):
    with block.connect() as conn:
        for flt in FILTERS:
            expected = _expected(conn, flt)
            assert len(expected) > 3 * PAGE, flt  # the pages cross the block
            forward = _forward(conn, flt)
            assert [i for p in forward for i in p] == expected, flt
            assert all(len(p) == PAGE for p in forward[:-1]), flt
            back = _backward(conn, flt, read.record(conn, expected[-1]))
            assert [i for p in back for i in p] == expected[:-1], flt
            assert all(len(p) == PAGE for p in back[1:]), flt


def test_a_position_outside_the_date_filter_pages_as_before(block):
    """A position past the filter's date bound (a page link of another filter): the keyset
    bound the date filter implies is dropped, and the page is the range's first (after) or
    last (before), as it was."""
    with block.connect() as conn:
        flt = read.ListFilter("credit_mark", date_to=DAY)
        expected = _expected(conn, flt)
        later = (DAY + timedelta(days=5), "zz")
        page = read.list_records(conn, flt, after=later, limit=PAGE, today=TODAY)
        assert [r["id"] for r in page] == expected[:PAGE]
        flt = read.ListFilter("credit_mark", date_from=DAY)
        expected = _expected(conn, flt)
        earlier = (DAY - timedelta(days=5), "")
        page = read.list_records(conn, flt, before=earlier, limit=PAGE, today=TODAY)
        assert [r["id"] for r in page] == expected[-PAGE:]


def _record_seeks(engine, statement: str, parameters: Any) -> list[str]:
    """How the plan reads the records: SQLite's SEARCH/SCAN lines; PostgreSQL's scans of
    records as "<Node Type> <Index Name> <Index Cond>"."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            return [r[-1] for r in rows if re.match(r"^(SEARCH|SCAN) records\b", r[-1])]
        raw = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar()
        doc = raw if isinstance(raw, list) else json.loads(raw)
        found: list[str] = []

        def walk(node: dict) -> None:
            if node.get("Relation Name") == "records" or node.get("Index Name", "").startswith(
                "ix_records"
            ):
                found.append(f"{node['Node Type']} {node.get('Index Name')} {node.get('Index Cond')}")
            for child in node.get("Plans", ()):
                walk(child)

        walk(doc[0]["Plan"])
        return found


def _seeks_the_position(engine, seeks: list[str], way: str) -> bool:
    """The one read of the records is an index range on (event_date, id) from the position."""
    if len(seeks) != 1:
        return False
    if engine.dialect.name == "sqlite":
        return f"(event_date,id){'<' if way == 'after' else '>'}(?,?)" in seeks[0]
    op = "<" if way == "after" else ">"
    return re.search(rf"ROW\(event_date, \(?id\)?(::text)?\) {op} ROW\(", seeks[0]) is not None


@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: "-".join(
    f"{k}={v}" for k, v in vars(f).items() if v and k != "kind") or "kind")
def test_a_deep_page_seeks_its_position_in_the_index(block, flt):
    with block.connect() as conn:
        ids = _expected(conn, flt)
        middle = read.record(conn, ids[len(ids) // 2])
        position = (date.fromisoformat(middle["date"]), middle["id"])
        for way in ("after", "before"):
            with captured(block) as seen:
                page = read.list_records(conn, flt, limit=20, today=TODAY, **{way: position})
            assert page
            [(statement, parameters)] = [(s, p) for s, p in seen if "records" in s]
            seeks = _record_seeks(block, statement, parameters)
            assert _seeks_the_position(block, seeks, way), (way, seeks)


# -- the change log's page size and memory (/api/v1/changes) --------------------------------

EVENTS = 2500  # several anonymous pages (ANONYMOUS_MAX_LIMIT), many batches (PAGE_BATCH)


@pytest.fixture
def log(engine, tmp_path):
    """EVENTS add events (one publish of EVENTS credit marks)."""
    rows = [credit_mark_row(n, 所属区市=DISTRICTS[n % 3]) for n in range(1, EVENTS + 1)]
    publish_csv(engine, tmp_path, "log.csv", rows)
    return engine


def _changes(client, headers: dict[str, str] | None = None, **params: Any) -> Any:
    r = client.get("/api/v1/changes", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r


def test_an_anonymous_page_is_clamped_and_pages_on(log):
    """Without an API key a limit above ANONYMOUS_MAX_LIMIT is applied as that (not a 400):
    the answer says so in its Link (limit=) and has_more/next, and paging on by next gives
    every event once, as one page of a key holder does."""
    assert ANONYMOUS_MAX_LIMIT < EVENTS
    key = apikeys.create_key(log, "烟台市大数据局")
    with api_client(log) as client:
        whole = _changes(client, limit=5000, headers={"X-API-Key": key}).json()
        assert len(whole["changes"]) == EVENTS and not whole["has_more"]
        r = _changes(client, limit=5000)
        first = r.json()
        assert len(first["changes"]) == ANONYMOUS_MAX_LIMIT and first["has_more"]
        assert first["next"].startswith(f"{first['changes'][-1]['seq']}.")
        assert f"&limit={ANONYMOUS_MAX_LIMIT}>" in r.headers["link"]
        assert "X-API-Key" in r.headers["vary"]
        pages = [first]
        while pages[-1]["has_more"]:
            pages.append(_changes(client, since=pages[-1]["next"], limit=5000).json())
        assert {len(p["changes"]) for p in pages[:-1]} == {ANONYMOUS_MAX_LIMIT}
        assert [e for p in pages for e in p["changes"]] == whole["changes"]
        assert pages[-1]["next"] == whole["next"]
        assert _changes(client, limit=ANONYMOUS_MAX_LIMIT).json() == first
        assert client.get("/api/v1/changes", params={"limit": 10_001}).status_code == 400


@pytest.mark.parametrize("limit", [1, 499, 500, 501, 1000, 2499, 2500, 5000])
def test_the_api_answers_the_bytes_of_the_page(log, limit):
    """page_json (built PAGE_BATCH events at a time) is page()'s dict encoded, whatever the
    page's bounds against the batches; the API answers those bytes."""
    key = apikeys.create_key(log, "烟台市大数据局")
    with log.connect() as conn:
        for since in (0, 7):
            expected = encode_json(changes.page(conn, since=since, limit=limit))
            body, end = changes.page_json(conn, since=since, limit=limit)
            assert body == expected, (since, limit)
            assert end == {k: v for k, v in json.loads(body).items() if k != "changes"}
    with api_client(log) as client:
        r = _changes(client, limit=limit, headers={"X-API-Key": key})
        with log.connect() as conn:
            assert r.content == encode_json(changes.page(conn, limit=limit))


def test_a_page_is_built_without_holding_its_events_as_dicts(log):
    """The memory a page takes is about its JSON (the batches', then the answer's), not the
    rows and dicts of all its events: those were 4.5 times the JSON."""
    with log.connect() as conn:
        body, _ = changes.page_json(conn, limit=EVENTS)  # warm: statements compiled
        tracemalloc.start()
        try:
            body, _ = changes.page_json(conn, limit=EVENTS)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 3 * len(body), (peak, len(body))  # measured 2.4 (the dicts' way 4.3)
