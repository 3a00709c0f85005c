"""Credit check: is an entity on a published list now? One code or a batch of up to 1,000.

For each code: the input, the normalised code, whether it is a valid USCC (check character)
or 注册号 (15 digits; `problem` warns of one that reads as a resident ID number or fails its
GS 15 check digit, and it is looked up all the same), whether the entity is known (has a record
of any kind in publication now), and what stands against it in publication now: active
blacklist entries, list marks (credit-mark schemes with `list = true` in the publicity rules:
严重违法失信名单, 经营异常名录 …) and active penalties. `as_of` is the change-log sequence
number the answer is as of.

A company published first under its 注册号 alone and later with its USCC too has two entity
ids (publishing.read): the answer for either code is that of both (`matched` names them, the
one with the USCC first: `entity`), listed if either is, the penalties counted together.

Cost: one statement whatever the batch size: the entities by id, by the 注册号 they carry and
by reg_no (ix_entities_reg_no), a UNION of index seeks, joined to their listed records through
ix_records_entity_status (with one more seek on it for an entity with nothing listed: is
anything of it published?); framed by two reads of the newest change seq (an index lookup
each). On PostgreSQL (read committed) the frame detects a publish landing between the
statements and the check is repeated, so `as_of` is exact; on SQLite the read transaction is
one snapshot anyway.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Select, Subquery, and_, bindparam, case, or_, select, true, union
from sqlalchemy.sql.util import ClauseAdapter

from publishing import clock
from publishing.codes import normalize_code, reg_no_is_valid, reg_no_problem, uscc_problem
from publishing.commit import ENTITIES, RECORDS
from publishing.read import in_publication, last_change_seq
from publishing.rules import Rules, load_rules
from publishing.shape import entity_url

ANY_RECORD = RECORDS.alias("any_record")
MAX_BATCH = 1000
MAX_PENALTY_IDS = 100  # the count is exact; the list of ids stops here
_ATTEMPTS = 3


def classify(raw: str) -> dict[str, Any]:
    """The code part of a result: input, normalised code, valid, type, problem."""
    code = normalize_code(raw) if isinstance(raw, str) else ""
    problem = uscc_problem(code) if code else "代码为空"
    if problem is None:
        code_type = "uscc"
    elif reg_no_is_valid(code):  # looked up whatever its problem: publishing may hold it
        code_type, problem = "reg_no", reg_no_problem(code)
    else:
        code_type = None
    return {
        "input": raw,
        "code": code,
        "valid": code_type is not None,
        "code_type": code_type,
        "problem": problem,
    }


def _lookup(
    conn: Connection, codes: list[str], schemes: list[str], today: date
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """entity id -> (name, reg_no) of each published entity the codes may stand for, and entity
    id -> its listed records, in one statement (_statement).

    An entity is known only while one of its records (of any kind) is published: once all are
    repaired, withdrawn or expired, the check says no more than for a code never published."""
    regs = [c for c in codes if reg_no_is_valid(c)]
    stmt = _statement(bool(regs), tuple(schemes), today)
    entities: dict[str, tuple[str, str | None]] = {}
    records: dict[str, list[Any]] = defaultdict(list)
    for row in conn.execute(stmt, {"codes": codes, "regs": regs}):
        if row.published:
            entities[row.entity_id] = (row.name, row.entity_reg_no)
        if row.id is not None:
            records[row.entity_id].append(row)
    return entities, records


@lru_cache(maxsize=16)
def _statement(regs: bool, schemes: tuple[str, ...], today: date) -> Select:
    """The lookup, the codes bound at execution (built once a day: building it cost more than
    running it for one code). Rows: each entity of _wanted, joined to its listed records
    (ix_records_entity_status), and whether anything of it is published."""
    wanted = _wanted(regs)
    listed = and_(
        RECORDS.c.entity_id == wanted.c.id,
        in_publication(today),
        or_(
            RECORDS.c.kind.in_(("blacklist", "penalty")),
            and_(RECORDS.c.kind == "credit_mark", RECORDS.c.category.in_(schemes or ("",))),
        ),
    )
    # A record of any kind published (another name: the statement joins the records too). One
    # seek: with LIMIT, PostgreSQL cannot swap it for a hash of every record published.
    published = (
        select(ANY_RECORD.c.id)
        .where(
            ANY_RECORD.c.entity_id == wanted.c.id,
            ClauseAdapter(ANY_RECORD).traverse(in_publication(today)),
        )
        .limit(1)
        .scalar_subquery()
        .is_not(None)
    )
    return (
        select(
            wanted.c.id.label("entity_id"),
            wanted.c.name,
            wanted.c.reg_no.label("entity_reg_no"),
            # asked only of an entity with nothing listed (a listed record is published)
            case((RECORDS.c.id.is_(None), published), else_=true()).label("published"),
            RECORDS.c.id,
            RECORDS.c.kind,
            RECORDS.c.event_date,
            RECORDS.c.publicity_until,
            RECORDS.c.issue_id,
            RECORDS.c.category,
            RECORDS.c.data["decision_no"].as_string().label("decision_no"),
            RECORDS.c.data["issue_no"].as_string().label("issue_no"),
            RECORDS.c.data["valid_until"].as_string().label("valid_until"),
        )
        .select_from(wanted.outerjoin(RECORDS, listed))
        .order_by(wanted.c.id, RECORDS.c.event_date.desc(), RECORDS.c.id)
    )


def _wanted(regs: bool) -> Subquery:
    """(id, name, reg_no) of the entities the codes may stand for (publishing.read: one company
    under two ids): those with the code as id; for a USCC, the entity whose id is its reg_no
    (published under the 注册号 alone before); for a 注册号 (`regs`: some are), those with it as
    reg_no (with a USCC too). A UNION of index seeks, the codes bound once: an OR of them made
    PostgreSQL read every entity."""
    e = ENTITIES
    columns = (e.c.id, e.c.name, e.c.reg_no)
    # Inlined where read (NOT MATERIALIZED): a materialised CTE has no statistics, and PostgreSQL
    # took every code for one carrying a 注册号, reading all the entities to join them.
    asked = (
        select(*columns)
        .where(e.c.id.in_(bindparam("codes", expanding=True)))
        .cte("asked")
        .prefix_with("NOT MATERIALIZED")
    )
    parts = [
        select(asked),
        select(*columns).join_from(asked, e, e.c.id == asked.c.reg_no),  # (or itself again)
    ]
    if regs:  # ix_entities_reg_no
        parts.append(select(*columns).where(e.c.reg_no.in_(bindparam("regs", expanding=True))))
    return union(*parts).subquery("wanted")


def _members(code: str, entities: dict[str, tuple[str, str | None]],
             carriers: dict[str, list[str]]) -> list[str]:
    """The published entities a code stands for, the one with a USCC first (read's rule: a link
    counts only while the entity with the USCC is published)."""
    if reg_no_is_valid(code):
        return [*carriers.get(code, []), *([code] if code in entities else [])]
    if code not in entities:
        return []
    reg_no = entities[code][1]
    return [code, *([reg_no] if reg_no and reg_no != code and reg_no in entities else [])]


def _carriers(entities: dict[str, tuple[str, str | None]]) -> dict[str, list[str]]:
    """注册号 -> the published USCC entities carrying it, by id."""
    found: dict[str, list[str]] = defaultdict(list)
    for eid in sorted(entities):
        reg_no = entities[eid][1]
        if reg_no and reg_no != eid:
            found[reg_no].append(eid)
    return found


def _newest_first(rows: list[Any]) -> list[Any]:
    """The listed records of several entities in one entity's order: newest first, then by id."""
    by_id = sorted(rows, key=lambda r: r.id)
    return sorted(by_id, key=lambda r: r.event_date or date.min, reverse=True)  # stable


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _standing(rows: list[Any]) -> dict[str, Any]:
    blacklist, lists, penalties = [], [], []
    for r in rows:
        if r.kind == "blacklist":
            blacklist.append(
                {
                    "record_id": r.id,
                    "issue_id": r.issue_id,
                    "issue_no": r.issue_no,
                    "date": _iso(r.event_date),
                    "url": f"/records/{r.id}",
                }
            )
        elif r.kind == "credit_mark":
            lists.append(
                {
                    "record_id": r.id,
                    "scheme": r.category,
                    "date": _iso(r.event_date),
                    "valid_until": r.valid_until or None,
                    "url": f"/records/{r.id}",
                }
            )
        else:
            penalties.append(
                {
                    "record_id": r.id,
                    "decision_no": r.decision_no,
                    "date": _iso(r.event_date),
                    "url": f"/records/{r.id}",
                }
            )
    return {
        "listed": bool(blacklist or lists),
        "blacklist": blacklist,
        "lists": lists,
        "penalties": {"count": len(penalties), "records": penalties[:MAX_PENALTY_IDS]},
    }


def check(
    conn: Connection, codes: list[str], today: date | None = None, rules: Rules | None = None
) -> dict[str, Any]:
    """{"as_of": seq, "count": n, "results": [one per input code, in input order]}."""
    if len(codes) > MAX_BATCH:
        raise ValueError(f"一次最多查询 {MAX_BATCH} 个代码,收到 {len(codes)} 个")
    today = today or clock.today()
    schemes = (rules or load_rules()).list_schemes()
    results = [classify(c) for c in codes]
    ids = sorted({r["code"] for r in results if r["valid"]})
    as_of, entities, records = 0, {}, {}
    for _ in range(_ATTEMPTS):
        as_of = last_change_seq(conn)
        entities, records = _lookup(conn, ids, schemes, today) if ids else ({}, {})
        if last_change_seq(conn) == as_of:
            break
    carriers = _carriers(entities)
    for res in results:
        members = _members(res["code"], entities, carriers) if res["valid"] else []
        refs = [{"id": m, "name": entities[m][0], "url": entity_url(m)} for m in members]
        res["known"] = bool(members)
        res["entity"] = refs[0] if refs else None
        res["matched"] = refs
        rows = [r for m in members for r in records.get(m, [])]
        res.update(_standing(_newest_first(rows) if len(members) > 1 else rows))
    return {"as_of": as_of, "count": len(results), "results": results}

