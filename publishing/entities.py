"""Entities: the latest name for a USCC wins; earlier names are kept as 曾用名 (former names)."""

from __future__ import annotations

from datetime import date, datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, case, select

from publishing import bulk
from publishing.models import Entity, Record
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


def build_from_records(conn: Connection, batch_id: int | None, files: list[str], at: datetime,
                       chunk: int = 5000) -> None:
    """An initial load merges each entity once, from the records it stored, seeing them in the
    order it published them (file by file, row by row), exactly as upsert() would have.

    In entity-id order the inserts append to the primary key; chunk by chunk, a million
    entities cost a million lookups and inserts all over an index larger than any cache."""
    if not files:  # no file could be read: nothing was stored
        return
    r = RECORDS
    file_order = case({f: i for i, f in enumerate(files)}, value=r.c.source_file, else_=len(files))
    query = (select(r.c.entity_id, r.c.event_date, r.c.district,
                    *(r.c.data[key].as_string() for key in RECORD_FIELDS))
             .where(r.c.batch_id == batch_id, r.c.entity_id.is_not(None))
             .order_by(r.c.entity_id, file_order, r.c.source_row))
    batch: list[dict[str, Any]] = []
    for eid, sightings in groupby(conn.execute(query.execution_options(yield_per=chunk)), itemgetter(0)):
        ent = None
        for _, as_of, district, uscc, reg_no, name, legal_rep, address in sightings:
            ent = merge(ent, EntityFields(eid, uscc, reg_no, name, legal_rep, district, address), as_of)
        batch.append({**ent, "created_at": at, "updated_at": at})
        if len(batch) >= chunk:
            bulk.insert_many(conn, ENTITIES, _INSERT_COLUMNS, batch)
            batch = []
    bulk.insert_many(conn, ENTITIES, _INSERT_COLUMNS, batch)
