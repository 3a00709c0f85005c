"""Entities: the latest name for a USCC wins; earlier names are kept as 曾用名 (former names)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Connection, and_, case, exists, func, insert, literal, or_, select

from publishing import bulk
from publishing.models import WITHDRAWN, Entity, Record
from publishing.rows import EntityFields

ENTITIES = Entity.__table__
RECORDS = Record.__table__
_COLUMNS = (
    "name",
    "former_names",
    "name_as_of",
    "legal_rep",
    "district",
    "address",
    "uscc",
    "reg_no",
)
_INSERT_COLUMNS = (*_COLUMNS, "id", "created_at", "updated_at")
# The entity's fields as every record stores them (plan.record_row).
RECORD_FIELDS = ("uscc", "reg_no", "entity_name", "legal_rep", "address")
_STORED = {key: RECORDS.c.data[key].as_string() for key in RECORD_FIELDS}  # as SQL text
_ENTITY_COLUMN = {"entity_name": "name"}  # where the entities table names them otherwise


def merge(current: dict[str, Any] | None, ef: EntityFields, as_of: date) -> dict[str, Any]:
    """The entity after seeing ef in a record dated as_of (pure; returns a new dict)."""
    if current is None:
        return {
            "id": ef.id,
            "uscc": ef.uscc,
            "reg_no": ef.reg_no,
            "name": ef.name,
            "former_names": [],
            "name_as_of": as_of,
            "legal_rep": ef.legal_rep,
            "district": ef.district,
            "address": ef.address,
        }
    ent = {**current, "former_names": list(current["former_names"] or [])}
    newer = ent["name_as_of"] is None or as_of >= ent["name_as_of"]
    if ef.name != ent["name"]:
        if newer:
            ent["former_names"] = [n for n in ent["former_names"] if n != ef.name]
            if ent["name"] not in ent["former_names"]:
                ent["former_names"].append(ent["name"])
            ent["name"] = ef.name
        elif ef.name not in ent["former_names"]:
            ent["former_names"].append(ef.name)
    if newer:
        ent["name_as_of"] = as_of
        ent["district"] = ef.district
        for key in ("legal_rep", "address"):
            if getattr(ef, key):
                ent[key] = getattr(ef, key)
    ent["uscc"] = ent["uscc"] or ef.uscc
    ent["reg_no"] = ent["reg_no"] or ef.reg_no
    return ent


def upsert(conn: Connection, seen: list[tuple[EntityFields, date]], at: datetime) -> None:
    """Merge a chunk's entity sightings into the entities table in bulk."""
    ids = list({ef.id for ef, _ in seen})
    if not ids:
        return
    rows = bulk.select_in(conn, ENTITIES, ("id", *_COLUMNS), "id", ids)
    stored: dict[str, dict[str, Any]] = {row.id: row._asdict() for row in rows}
    state = dict(stored)
    for ef, as_of in seen:
        state[ef.id] = merge(state.get(ef.id), ef, as_of)
    inserts, updates = [], []
    for eid, ent in state.items():
        before = stored.get(eid)
        if before is None:
            inserts.append({**ent, "created_at": at, "updated_at": at})
        elif any(before[c] != ent[c] for c in _COLUMNS):
            updates.append({**ent, "updated_at": at})
    bulk.insert_many(conn, ENTITIES, _INSERT_COLUMNS, inserts)
    bulk.update_many(conn, ENTITIES, "id", (*_COLUMNS, "updated_at"), updates)


def recompute(conn: Connection, ids: Iterable[str], at: datetime, chunk: int = 5000) -> None:
    """Merge the entities again from their records that are not withdrawn: a withdrawn record
    (by a file, an objection or a repair) is as if it was never published, so its name must not
    stay the entity's; expired and superseded records still tell the entity's history.

    The records are seen in the order they were first published, file by file, row by row (as
    build_from_records sees a load). An entity with no such record left keeps its row: it has
    no profile and no search document anyway (read.published_entity)."""
    ids = sorted(set(ids))
    for i in range(0, len(ids), chunk):
        _recompute(conn, ids[i:i + chunk], at)


def _recompute(conn: Connection, ids: list[str], at: datetime) -> None:
    r = RECORDS
    query = (select(r.c.entity_id, r.c.event_date, r.c.district, _fields_array(conn))
             .where(r.c.entity_id.in_(ids), r.c.status != WITHDRAWN)
             .order_by(r.c.entity_id, r.c.first_published_at, r.c.source_file, r.c.source_row, r.c.id))
    merged = {eid: _fold(eid, list(sightings))
              for eid, sightings in groupby(conn.execute(query), itemgetter(0))}
    stored = bulk.select_in(conn, ENTITIES, ("id", *_COLUMNS), "id", list(merged))
    updates = [{**merged[row.id], "updated_at": at} for row in stored
               if any(getattr(row, c) != merged[row.id][c] for c in _COLUMNS)]
    bulk.update_many(conn, ENTITIES, "id", (*_COLUMNS, "updated_at"), updates)


def build_from_records(conn: Connection, batch_id: int | None, files: list[str], at: datetime,
                       chunk: int = 5000) -> None:
    """An initial load merges each entity once, from the records it stored, seeing them in the
    order it published them (file by file, row by row), exactly as upsert() would have.

    In entity-id order the inserts append to the primary key; chunk by chunk, a million
    entities cost a million lookups and inserts all over an index larger than any cache."""
    if not files:  # no file could be read: nothing was stored
        return
    r = RECORDS
    ours = and_(r.c.batch_id == batch_id, r.c.entity_id.is_not(None))
    if conn.dialect.name == "postgresql":
        _insert_agreeing(conn, ours, at)
        # Statistics of the new rows: without them the planner takes a million records for ten
        # thousand and looks each up in the entities' index (8 s instead of 3).
        conn.exec_driver_sql("ANALYZE records, entities")
        ours = and_(ours, ~exists().where(ENTITIES.c.id == r.c.entity_id))
    file_order = case({f: i for i, f in enumerate(files)}, value=r.c.source_file, else_=len(files))
    query = (select(r.c.entity_id, r.c.event_date, r.c.district, _fields_array(conn))
             .where(ours).order_by(r.c.entity_id, file_order, r.c.source_row))
    batch: list[dict[str, Any]] = []
    for eid, sightings in groupby(conn.execute(query.execution_options(yield_per=chunk)), itemgetter(0)):
        batch.append({**_fold(eid, list(sightings)), "created_at": at, "updated_at": at})
        if len(batch) >= chunk:
            bulk.insert_many(conn, ENTITIES, _INSERT_COLUMNS, batch)
            batch = []
    bulk.insert_many(conn, ENTITIES, _INSERT_COLUMNS, batch)


def _fields_array(conn: Connection) -> Any:
    """A record's entity fields (RECORD_FIELDS) as one JSON array. SQLite parses the JSON once
    for all of them, where one extraction per field parsed it five times (a million-record
    load: 3 s); two sightings with the same array text agree on every field."""
    data = RECORDS.c.data
    if conn.dialect.name == "sqlite":
        return func.json_extract(data, *(f"$.{key}" for key in RECORD_FIELDS))
    return func.json_build_array(*_STORED.values())


def _fold(eid: str, sightings: list[Any]) -> dict[str, Any]:
    """merge() over an entity's sightings (entity id, date, district, fields array), in order.

    Sightings that agree on every field fold into the first one, dated by the latest (what
    merge() makes of them); each field array is decoded only when needed."""
    _, as_of, district, fields = sightings[0]
    first = _entity_fields(eid, district, fields)
    if as_of is not None and all(
            s[3] == fields and s[2] == district and s[1] is not None for s in sightings[1:]):
        return merge(None, first, max(s[1] for s in sightings))
    ent = merge(None, first, as_of)
    for _, as_of, district, fields in sightings[1:]:
        ent = merge(ent, _entity_fields(eid, district, fields), as_of)
    return ent


def _entity_fields(eid: str, district: str | None, fields: str | list[str | None]) -> EntityFields:
    uscc, reg_no, name, legal_rep, address = orjson.loads(fields) if isinstance(fields, str) else fields
    return EntityFields(eid, uscc, reg_no, name, legal_rep, district, address)


def _insert_agreeing(conn: Connection, ours: Any, at: datetime) -> None:
    """PostgreSQL: in one statement, the entities whose records all agree on every entity field
    (most: 99 % of a sample million); merge() makes any run of equal sightings the first one,
    dated by the latest. build_from_records merges the rest. A million-record load: 12.5 ->
    10.6 s for all the entities (the server groups them in 6.8 s, where fetching, merging and
    sending them back cost the client 9 s). SQLite groups them no faster than it sorts them
    for build_from_records.

    The sightings are projected before they are grouped (OFFSET 0): otherwise PostgreSQL sorts
    the records whole, JSON and all."""
    r = RECORDS
    fields = {_ENTITY_COLUMN.get(key, key): value for key, value in _STORED.items()}
    fields["district"] = r.c.district  # a record column of its own
    s = (select(r.c.entity_id, r.c.event_date, *(v.label(k) for k, v in fields.items()))
         .where(ours).offset(0).subquery())
    n = func.count()
    agree = [or_(func.count(s.c[k]) == 0, and_(func.count(s.c[k]) == n, func.min(s.c[k]) == func.max(s.c[k])))
             for k in fields]
    rows = (select(s.c.entity_id, *(func.min(s.c[k]) for k in fields), func.max(s.c.event_date),
                   literal([], ENTITIES.c.former_names.type), literal(at, ENTITIES.c.created_at.type),
                   literal(at, ENTITIES.c.updated_at.type))
            .group_by(s.c.entity_id).having(and_(func.count(s.c.event_date) == n, *agree))
            .order_by(s.c.entity_id))
    conn.execute(insert(ENTITIES).from_select(
        ["id", *fields, "name_as_of", "former_names", "created_at", "updated_at"], rows))
