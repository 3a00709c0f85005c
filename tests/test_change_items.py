"""The items of /api/v1/changes are exactly the documented shape, whichever way they are read.

changes.page builds a page's items from plain row tuples (column positions fixed once, `data`
decoded from its JSON text), for speed. These tests hold it to a straightforward reference: for
each event, the record row read on its own, shown when publishing.read.is_visible says so, and
shaped field by field in the order publishing.shape.public_fields gives. Compared as JSON text,
so key order counts too: adds, changes, withdrawals, expiries, records that left publication
since (or whose publicity ended without an expire run), every kind, stored values that the
fast JSON decoder would get wrong or refuse, pages of any size, one kind, and the HTTP body.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update

from publishing import changes, clock, read
from publishing.commit import EVENTS, RECORDS
from publishing.contract import DISTRICTS, KIND_LABELS, KINDS
from publishing.shape import public_fields
from tests.api_helpers import api_client
from tests.test_changes_api import _steps

# Dates to look from: publication day, the expire run's day (some records past their period),
# and years later (most publicity periods ended, no expire run for them yet).
TODAYS = (date(2026, 11, 27), date(2027, 7, 1), date(2030, 1, 1))


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def reference_record(row: Any) -> dict[str, Any]:
    """The public shape of a full records row, spelled out: meta columns, then `data` fields."""
    columns = {
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "version": row.version,
        "url": f"/records/{row.id}",
        "entity_id": row.entity_id,
        "district_code": row.district,
        "date": _iso(row.event_date),
        "publicity_until": _iso(row.publicity_until),
        "repairable_from": _iso(row.repairable_from),
        "issue_id": row.issue_id,
        "first_published_at": _iso(row.first_published_at),
        "updated_at": _iso(row.updated_at),
    }
    columns["kind_label"] = KIND_LABELS[row.kind]
    columns["district"] = DISTRICTS.get(row.district or "")
    data = row.data or {}
    return {
        key: columns[key] if key in columns else data.get(key) for key in public_fields(row.kind)
    }


def reference_items(conn, today: date, kind: str | None = None) -> list[dict[str, Any]]:
    """Every event, one query per event for its record: slow and obvious."""
    stmt = select(EVENTS).order_by(EVENTS.c.seq)
    if kind:
        stmt = stmt.where(EVENTS.c.kind == kind)
    items = []
    for ev in conn.execute(stmt).all():
        row = conn.execute(select(RECORDS).where(RECORDS.c.id == ev.record_id)).first()
        record = reference_record(row) if row is not None else None
        shown = ev.op in ("add", "change") and record and read.is_visible(record, today)
        items.append(
            {
                "seq": ev.seq,
                "op": ev.op,
                "record_id": ev.record_id,
                "kind": ev.kind,
                "version": ev.version,
                "at": ev.at.isoformat(),
                "record": record if shown else None,
            }
        )
    return items


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _pages(conn, today: date, limit: int, kind: str | None = None) -> list[dict[str, Any]]:
    items, since = [], "0"
    while True:
        body = changes.page(conn, since=since, limit=limit, kind=kind, today=today)
        items += body["changes"]
        since = body["next"]
        if not body["has_more"]:
            return items


def _assert_items_as_reference(engine) -> list[dict[str, Any]]:
    """Every way of reading the items equals the reference, on each of TODAYS; returns the
    reference items of each day."""
    seen = []
    with engine.connect() as conn:
        for today in TODAYS:
            seen += reference_items(conn, today)
            expected = as_json(reference_items(conn, today))
            assert as_json(changes.page(conn, limit=10_000, today=today)["changes"]) == expected
            assert as_json(_pages(conn, today, limit=3)) == expected
            streamed = list(changes.iter_changes(engine, today=today))
            assert as_json(streamed) == expected
            for kind in KINDS:
                assert as_json(_pages(conn, today, 1000, kind)) == as_json(
                    reference_items(conn, today, kind)
                )
    return seen


def test_change_items_equal_the_reference_at_every_step(engine, tmp_path):
    seen: list[dict[str, Any]] = []
    for _step in _steps(engine, tmp_path):
        seen += _assert_items_as_reference(engine)
    # what the comparisons covered: each op, with and without the record, and every kind
    assert {(i["op"], i["record"] is not None) for i in seen} == {
        ("add", True),
        ("add", False),  # withdrawn, expired or past its period since
        ("change", True),
        ("change", False),
        ("withdraw", False),
        ("expire", False),
    }
    assert {i["record"]["kind"] for i in seen if i["record"]} == set(KINDS)


def test_stored_json_the_fast_decoder_would_get_wrong_is_read_as_json_reads_it(
    engine, tmp_path, backend
):
    """An integer beyond 64 bits (a float to some decoders), and on SQLite a NaN (refused by
    the fast decoder, which JSON text in SQLite can hold): each item still says what the
    stored JSON says, as json.loads reads it."""
    steps = _steps(engine, tmp_path)
    next(steps)
    with engine.begin() as conn:
        rid = (
            conn.execute(
                select(RECORDS.c.id).where(
                    RECORDS.c.kind == "penalty", RECORDS.c.status == "active"
                )
            )
            .scalars()
            .first()
        )
        data = conn.execute(select(RECORDS.c.data).where(RECORDS.c.id == rid)).scalar_one()
        odd = {"fine_yuan": 10**20, "confiscated_yuan": 0.1 + 0.2, "facts": "含\u00a0“引号”\n"}
        if backend == "sqlite":
            odd["basis"] = float("nan")
        # planted directly: no pipeline writes such values, the reader must still be faithful
        conn.execute(update(RECORDS).where(RECORDS.c.id == rid).values(data={**data, **odd}))
    _assert_items_as_reference(engine)
    with engine.connect() as conn:
        page = changes.page(conn, limit=10_000, today=TODAYS[0])["changes"]
        now = changes.current_records(conn, [rid, "no-such-record"], TODAYS[0])
    record = next(i["record"] for i in page if i["record_id"] == rid and i["record"])
    assert record["fine_yuan"] == 10**20 and isinstance(record["fine_yuan"], int)
    assert record["confiscated_yuan"] == 0.1 + 0.2
    assert as_json(now) == as_json({rid: record, "no-such-record": None})


def test_the_http_body_carries_the_reference_items(engine, tmp_path):
    for _ in _steps(engine, tmp_path):
        pass
    with engine.connect() as conn:
        record_ids = [r for r in conn.execute(select(RECORDS.c.id)).scalars()]
        today = clock.today()
        expected = reference_items(conn, today)
        now = changes.current_records(conn, [*record_ids, "no-such-record"], today)
    with api_client(engine) as client:
        body = client.get("/api/v1/changes", params={"limit": 10_000}).json()
    assert as_json(body["changes"]) == as_json(expected)
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(RECORDS)).all()}
    assert now.pop("no-such-record") is None
    assert as_json(now) == as_json(
        {
            rid: (rec if read.is_visible(rec, today) else None)
            for rid, rec in ((rid, reference_record(rows[rid])) for rid in record_ids)
        }
    )
