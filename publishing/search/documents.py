"""Search documents, built only from the one public shape (publishing.shape).

One document per entity with an active record and one per ACTIVE record. A document is a plain dict that every
backend indexes in its own way:

    id, type ("entity" or the record kind), title, url, entity_id,
    district (code), date (ISO; an entity's: of its latest record), status (records: "active";
    entities: None), grade (risk class of a 信用风险分类 mark, and an entity's current one),
    uscc, reg_no                                                -- filters, facets, sorting
    names  -- searched as names (entity: name + 曾用名; record: the entity name it was published under)
    text   -- [label, value] pairs searched as text
    data   -- the public shape (entities: plus counts of active records per kind and grade)

The fields that name people (legal_rep, 责任人员) are shown in `data` but not indexed: the portal
finds businesses by their names, not people by theirs. Published free text is searchable as it
stands, though (BODY_FIELDS): a person named in a penalty's 违法事实 (facts) is found by that
name, a product decision: it is text the page publishes. A record's address and district are
searchable on its entity's document (and the district is a filter), not repeated on each
record's.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any

from sqlalchemy import Connection, Engine, func, select, tuple_

from publishing.contract import KIND_COLUMNS
from publishing.models import ACTIVE, Entity, Record
from publishing.shape import public_entity, public_record

RECORDS = Record.__table__
ENTITIES = Entity.__table__
RISK_SCHEME = "信用风险分类"  # the credit mark whose grade an entity document carries
PAGE = 5000

# Fields of each kind searched as text, in the order snippets prefer them: published text, so
# the names of people that a field's text holds (facts) are found too; none is a field of names.
BODY_FIELDS: dict[str, tuple[str, ...]] = {
    "penalty": (
        "decision_no",
        "violation_type",
        "facts",
        "penalty_kinds",
        "basis",
        "authority",
        "domain",
        "severity",
    ),
    "blacklist": ("issue_no", "products", "violation", "action", "decision_no", "publisher"),
    "credit_mark": ("scheme", "domain", "reason"),
    "return_pledge": ("category", "conditions", "exclusions"),
}
_LABELS = {c.key: c.label for cols in KIND_COLUMNS.values() for c in cols}
_LABELS.update(address="住所", district="所属区市", kind_label="类别")
_TITLE_DETAIL = {
    "penalty": ("decision_no",),
    "blacklist": ("issue_no",),
    "credit_mark": ("scheme", "grade"),
    "return_pledge": ("category",),
}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "、".join(str(v) for v in value if v not in (None, ""))
    return str(value)


def _pairs(pub: dict[str, Any], keys: Iterable[str]) -> list[list[str]]:
    return [[_LABELS.get(k, k), _text(pub.get(k))] for k in keys if _text(pub.get(k))]


def record_title(pub: dict[str, Any]) -> str:
    detail = " ".join(_text(pub.get(k)) for k in _TITLE_DETAIL.get(pub["kind"], ()) if pub.get(k))
    head = f"{pub.get('entity_name') or ''} · {pub['kind_label']}"
    return f"{head} {detail}" if detail else head


def record_doc(pub: dict[str, Any]) -> dict[str, Any]:
    """The document of an active record, from shape.public_record."""
    kind = pub["kind"]
    return {
        "id": pub["id"],
        "type": kind,
        "title": record_title(pub),
        "url": pub["url"],
        "entity_id": pub.get("entity_id"),
        "district": pub.get("district_code"),
        "date": pub.get("date"),
        "status": pub.get("status"),
        "grade": pub.get("grade") if kind == "credit_mark" else None,
        "uscc": pub.get("uscc"),
        "reg_no": pub.get("reg_no"),
        "names": [pub["entity_name"]] if pub.get("entity_name") else [],
        "text": _pairs(pub, (*BODY_FIELDS.get(kind, ()), "kind_label")),
        "data": pub,
    }


def entity_doc(
    pub: dict[str, Any], counts: dict[str, int], grade: str | None, date: str | None
) -> dict[str, Any]:
    """The document of an entity, from shape.public_entity and its active records' summary."""
    data = {**pub, "counts": dict(sorted(counts.items())), "grade": grade}
    return {
        "id": pub["id"],
        "type": "entity",
        "title": pub["name"],
        "url": pub["url"],
        "entity_id": pub["id"],
        "district": pub.get("district_code"),
        "date": date,
        "status": None,
        "grade": grade,
        "uscc": pub.get("uscc"),
        "reg_no": pub.get("reg_no"),
        "names": [pub["name"], *pub.get("former_names", [])],
        "text": _pairs(pub, ("district", "address")),
        "data": data,
    }


# -- from the database -----------------------------------------------------------------------


def load_record_docs(conn: Connection, ids: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    """Each record id → its document, or None when it is not (or no longer) active."""
    ids = list(set(ids))
    out: dict[str, dict[str, Any] | None] = dict.fromkeys(ids)
    for i in range(0, len(ids), PAGE):
        for rec in conn.execute(select(RECORDS).where(RECORDS.c.id.in_(ids[i : i + PAGE]))):
            if rec.status == ACTIVE:
                out[rec.id] = record_doc(public_record(rec))
    return out


def _summaries(conn: Connection, ids: list[str]) -> tuple[dict, dict]:
    """Counts per kind and risk grade of the entities' active records.

    One query on (entity_id, status): a query that also filters on kind lets the planner pick
    the kind index and read every credit mark of the city."""
    counts: dict[str, dict[str, int]] = {}
    best: dict[str, tuple] = {}
    rows = conn.execute(
        select(
            RECORDS.c.entity_id,
            RECORDS.c.kind,
            RECORDS.c.event_date,
            RECORDS.c.id,
            RECORDS.c.category,
            RECORDS.c.grade,
            RECORDS.c.data["domain"].as_string(),
        ).where(RECORDS.c.entity_id.in_(ids), RECORDS.c.status == ACTIVE)
    )
    for eid, kind, day, rid, category, grade, domain in rows:
        per = counts.setdefault(eid, {})
        per[kind] = per.get(kind, 0) + 1
        if kind == "credit_mark" and category == RISK_SCHEME and grade:
            # the general (通用) classification wins over a field's, then the latest
            key = (domain in (None, "", "通用"), str(day), rid)
            if eid not in best or key > best[eid][0]:
                best[eid] = (key, grade)
    return counts, {eid: g for eid, (_, g) in best.items()}


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else (str(value) if value else None)


def load_entity_docs(conn: Connection, ids: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    """Each entity id → its document; None when there is no such entity or none of its
    records is active (a repaired entity must not stay findable by name). An entity's date is
    that of its latest record (entities.name_as_of)."""
    ids = [i for i in set(ids) if i]
    out: dict[str, dict[str, Any] | None] = dict.fromkeys(ids)
    for i in range(0, len(ids), PAGE):
        page = ids[i : i + PAGE]
        counts, grades = _summaries(conn, page)
        for ent in conn.execute(select(ENTITIES).where(ENTITIES.c.id.in_(list(counts)))):
            out[ent.id] = entity_doc(
                public_entity(ent), counts.get(ent.id, {}), grades.get(ent.id), _iso(ent.name_as_of)
            )
    return out


def load_docs(
    conn: Connection, keys: Iterable[tuple[str, str]]
) -> dict[str, dict[str, Any] | None]:
    """(type, id) pairs → id → document (None when no longer published)."""
    keys = list(keys)
    out = load_entity_docs(conn, [i for t, i in keys if t == "entity"])
    out.update(load_record_docs(conn, [i for t, i in keys if t != "entity"]))
    return out


def count_docs(conn: Connection) -> int:
    """How many documents the database makes (entities with an active record, active records)."""
    entities = conn.execute(
        select(func.count(RECORDS.c.entity_id.distinct())).where(RECORDS.c.status == ACTIVE)
    ).scalar_one()
    records = conn.execute(
        select(func.count()).select_from(RECORDS).where(RECORDS.c.status == ACTIVE)
    ).scalar_one()
    return entities + records


def page_ids(engine: Engine, page: int | None = None) -> Iterator[tuple[str, list[str]]]:
    """All document ids in pages, newest first: ("entity", ids) … by date of the latest
    record, then ("record", ids) … of active records by date. Date order lets a rebuild append
    to its index instead of inserting all over it (the index is ordered by date)."""
    page = page or PAGE
    with engine.connect() as conn:  # one sort of the entity ids (there is no index on the date)
        ids = list(
            conn.execute(
                select(ENTITIES.c.id).order_by(
                    ENTITIES.c.name_as_of.desc().nulls_last(), ENTITIES.c.id
                )
            ).scalars()
        )
    for i in range(0, len(ids), page):
        yield "entity", ids[i : i + page]
    del ids
    with engine.connect() as conn:
        kinds = list(conn.execute(select(RECORDS.c.kind).distinct()).scalars())
    streams = [_records_by_date(engine, kind, page) for kind in kinds]
    undated = select(RECORDS.c.id).where(RECORDS.c.status == ACTIVE, RECORDS.c.event_date.is_(None))
    with engine.connect() as conn:
        last_ids = list(conn.execute(undated).scalars())
    chunk: list[str] = []
    for record_id in chain((i for _, i in heapq.merge(*streams, reverse=True)), last_ids):
        chunk.append(record_id)
        if len(chunk) >= page:
            yield "record", chunk
            chunk = []
    if chunk:
        yield "record", chunk


def _records_by_date(engine: Engine, kind: str, page: int) -> Iterator[tuple[Any, str]]:
    """(event_date, id) of a kind's active records, newest first, on the index
    (kind, status, event_date, id); keyset pages in short transactions."""
    base = (
        select(RECORDS.c.event_date, RECORDS.c.id)
        .where(
            RECORDS.c.kind == kind, RECORDS.c.status == ACTIVE, RECORDS.c.event_date.is_not(None)
        )
        .order_by(RECORDS.c.event_date.desc(), RECORDS.c.id.desc())
        .limit(page)
    )
    last = None
    while True:
        stmt = (
            base
            if last is None
            else base.where(tuple_(RECORDS.c.event_date, RECORDS.c.id) < tuple_(*last))
        )
        with engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(stmt)]
        yield from rows
        if len(rows) < page:
            return
        last = rows[-1]


def load_page(conn: Connection, kind: str, ids: list[str]) -> list[dict[str, Any]]:
    """The documents of one page of page_ids, in its order."""
    docs = (load_entity_docs if kind == "entity" else load_record_docs)(conn, ids)
    return [docs[i] for i in ids if docs.get(i) is not None]


def iter_all_docs(engine: Engine, page: int | None = None) -> Iterator[dict[str, Any]]:
    """Every document, page by page."""
    for kind, ids in page_ids(engine, page):
        with engine.connect() as conn:
            docs = load_page(conn, kind, ids)
        yield from docs
