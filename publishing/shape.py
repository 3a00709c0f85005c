"""The one public shape of a record and of an entity.

Pages, the JSON API, CSV/NDJSON exports, feed items and search documents are all built from
these dicts. Masking happened before the data was stored, so nothing here can leak it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from publishing.contract import DISTRICTS, KIND_COLUMNS, KIND_LABELS

ENTITY_KEYS = ("uscc", "reg_no", "entity_name", "legal_rep", "address")
# Columns that only steer the pipeline and are not fields of the published record (a pledge's
# 状态 is the record status).
_NOT_PUBLISHED = {"publicity_until", "fine_wan", "op", "status"}


def entity_url(entity_id: str) -> str:
    """An entity's profile page: the one place its URL is written (DESIGN.md fixes it)."""
    return f"/entities/{entity_id}"


KIND_FIELDS: dict[str, tuple[str, ...]] = {
    kind: tuple(c.key for c in cols if c.key not in _NOT_PUBLISHED)
    for kind, cols in KIND_COLUMNS.items()
}
# The stored columns public_record reads (never source file, row, hash or batch): readers
# select exactly these.
RECORD_COLUMNS = (
    "id",
    "kind",
    "status",
    "version",
    "entity_id",
    "district",
    "event_date",
    "publicity_until",
    "repairable_from",
    "issue_id",
    "data",
    "first_published_at",
    "updated_at",
)
RECORD_META = (
    "id",
    "kind",
    "kind_label",
    "status",
    "version",
    "url",
    "entity_id",
    "district_code",
    "district",
    "date",
    "publicity_until",
    "repairable_from",
)


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# What a record's public dict takes from its `data`, by kind and in output order: the entity's
# fields, then the kind's own.
_DATA_KEYS: dict[str, tuple[str, ...]] = {
    kind: ENTITY_KEYS + fields for kind, fields in KIND_FIELDS.items()
}


def public_record(rec: Any) -> dict[str, Any]:
    """rec: a Record (or a row with the same attributes). Returns the flat public dict."""
    kind = rec.kind
    return record_shape(
        (
            rec.id,
            kind,
            rec.status,
            rec.version,
            rec.entity_id,
            rec.district,
            rec.event_date,
            rec.publicity_until,
            rec.repairable_from,
            rec.issue_id if kind == "blacklist" else None,  # only a blacklist entry has one
            rec.data,
            rec.first_published_at,
            rec.updated_at,
        )
    )


def record_shape(values: Sequence[Any]) -> dict[str, Any]:
    """public_record of a record given as its RECORD_COLUMNS values, in that order (a row that
    selects them): no attribute lookups, for callers that shape thousands of rows a request."""
    (
        id_,
        kind,
        status,
        version,
        entity_id,
        district,
        event_date,
        publicity_until,
        repairable_from,
        issue_id,
        data,
        first_published_at,
        updated_at,
    ) = values
    out: dict[str, Any] = {
        "id": id_,
        "kind": kind,
        "kind_label": KIND_LABELS.get(kind, kind),
        "status": status,
        "version": version,
        "url": f"/records/{id_}",
        "entity_id": entity_id,
        "district_code": district,
        "district": DISTRICTS.get(district or "", None),
        "date": _iso(event_date),
        "publicity_until": _iso(publicity_until),
        "repairable_from": _iso(repairable_from),
    }
    keys = _DATA_KEYS.get(kind, ENTITY_KEYS)
    out.update(zip(keys, map((data or {}).get, keys), strict=True))
    if kind == "blacklist":
        out["issue_id"] = issue_id
    out["first_published_at"] = _iso(first_published_at)
    out["updated_at"] = _iso(updated_at)
    return out


def public_fields(kind: str) -> list[str]:
    """The keys of public_record for a kind, in order (CSV header, data dictionary)."""
    keys = [*RECORD_META, *ENTITY_KEYS, *KIND_FIELDS.get(kind, ())]
    if kind == "blacklist":
        keys.append("issue_id")
    return [*keys, "first_published_at", "updated_at"]


def public_entity(ent: Any) -> dict[str, Any]:
    return {
        "id": ent.id,
        "uscc": ent.uscc,
        "reg_no": ent.reg_no,
        "name": ent.name,
        "former_names": list(ent.former_names or []),
        "legal_rep": ent.legal_rep,
        "district_code": ent.district,
        "district": DISTRICTS.get(ent.district or "", None),
        "address": ent.address,
        "url": entity_url(ent.id),
        "updated_at": _iso(ent.updated_at),
    }
