"""Entities: the latest name for a USCC wins; earlier names are kept as 曾用名 (former names)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection

from publishing import bulk
from publishing.models import Entity
from publishing.rows import EntityFields

ENTITIES = Entity.__table__
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


class InsertedIds:
    """The ids a publish has inserted, as a Bloom filter (2 MB): `id in inserted` is never
    False for an inserted id, and wrongly True for ~0.5 % of the others at a million ids.

    Into an empty table, an id the filter has not seen needs no lookup: the first load of a
    million entities skips a million index probes."""

    def __init__(self, bits: int = 1 << 24) -> None:
        self._bits = bytearray(bits >> 3)
        self._mask = bits - 1

    def add(self, key: str) -> None:
        bits = self._bits
        for p in self._positions(key):
            bits[p >> 3] |= 1 << (p & 7)

    def __contains__(self, key: str) -> bool:
        bits = self._bits
        for p in self._positions(key):  # noqa: SIM110 - all() of a generator is 2x slower here
            if not bits[p >> 3] >> (p & 7) & 1:
                return False
        return True

    def _positions(self, key: str) -> tuple[int, int, int]:
        h, m = hash(key), self._mask  # str hashes are stable within the process
        return h & m, (h >> 21) & m, (h >> 42) & m


def upsert(conn: Connection, seen: list[tuple[EntityFields, date]], at: datetime,
           inserted: InsertedIds | None = None) -> None:
    """Merge a chunk's entity sightings into the entities table in bulk.

    inserted: given when the table was empty before this publish; it learns the new ids."""
    ids = list({ef.id for ef, _ in seen})
    if not ids:
        return
    lookup = ids if inserted is None else [i for i in ids if i in inserted]
    rows = bulk.select_in(conn, ENTITIES, ("id", *_COLUMNS), "id", lookup)
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
    bulk.insert_many(conn, ENTITIES, (*_COLUMNS, "id", "created_at", "updated_at"), inserts)
    if inserted is not None:
        for ent in inserts:
            inserted.add(ent["id"])
    bulk.update_many(conn, ENTITIES, "id", (*_COLUMNS, "updated_at"), updates)
