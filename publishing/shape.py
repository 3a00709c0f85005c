"""The one public shape of a record and of an entity.

Pages, the JSON API, CSV/NDJSON exports, feed items and search documents are all built from
these dicts. Masking happened before the data was stored, so nothing here can leak it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from publishing.contract import DISTRICTS, KIND_COLUMNS, KIND_LABELS

ENTITY_KEYS = ("uscc", "reg_no", "entity_name", "legal_rep", "address")
# Columns that only steer the pipeline and are not fields of the published record.
_NOT_PUBLISHED = {"publicity_until", "fine_wan", "op", "status"}  # a pledge's 状态 is the record status


def entity_url(entity_id: str) -> str:
    """An entity's profile page: the one place its URL is written (DESIGN.md fixes it)."""
    return f"/entities/{entity_id}"


KIND_FIELDS: dict[str, tuple[str, ...]] = {
    kind: tuple(c.key for c in cols if c.key not in _NOT_PUBLISHED)
    for kind, cols in KIND_COLUMNS.items()
}
# The stored columns public_record reads (never source file, row, hash or batch): readers
# select exactly these.
RECORD_COLUMNS = ("id", "kind", "status", "version", "entity_id", "district", "event_date",
                  "publicity_until", "repairable_from", "issue_id", "data", "first_published_at",
                  "updated_at")
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


def public_record(rec: Any) -> dict[str, Any]:
    """rec: a Record (or a row with the same attributes). Returns the flat public dict."""
    data = rec.data or {}
    out: dict[str, Any] = {
        "id": rec.id,
        "kind": rec.kind,
        "kind_label": KIND_LABELS.get(rec.kind, rec.kind),
        "status": rec.status,
        "version": rec.version,
        "url": f"/records/{rec.id}",
        "entity_id": rec.entity_id,
        "district_code": rec.district,
        "district": DISTRICTS.get(rec.district or "", None),
        "date": _iso(rec.event_date),
        "publicity_until": _iso(rec.publicity_until),
        "repairable_from": _iso(rec.repairable_from),
    }
    for key in ENTITY_KEYS:
        out[key] = data.get(key)
    for key in KIND_FIELDS.get(rec.kind, ()):
        out[key] = data.get(key)
    if rec.kind == "blacklist":
        out["issue_id"] = rec.issue_id
    out["first_published_at"] = _iso(rec.first_published_at)
    out["updated_at"] = _iso(rec.updated_at)
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
