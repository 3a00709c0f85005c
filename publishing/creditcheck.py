"""Credit check: is an entity on a published list now? One code or a batch of up to 1,000.

For each code: the input, the normalised code, whether it is a valid USCC (check character)
or 注册号, whether the entity is known (has a record of any kind in publication now), and what
stands against it in publication now: active blacklist entries, list marks (credit-mark schemes with `list = true` in the publicity rules:
严重违法失信名单, 经营异常名录 …) and active penalties. `as_of` is the change-log sequence
number the answer is as of.

Cost: one IN query over entities joined to records through ix_records_entity_status, whatever
the batch size (and one more on that index for the entities with nothing listed), framed by two reads of the newest change seq (an index lookup each). On
PostgreSQL (read committed) the frame detects a publish landing between the statements and the
check is repeated, so `as_of` is exact; on SQLite the read transaction is one snapshot anyway.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from publishing import clock
from publishing.codes import normalize_code, reg_no_is_valid, uscc_problem
from publishing.commit import ENTITIES, RECORDS
from publishing.read import in_publication, last_change_seq
from publishing.rules import Rules, load_rules
from publishing.shape import entity_url

MAX_BATCH = 1000
MAX_PENALTY_IDS = 100  # the count is exact; the list of ids stops here
_ATTEMPTS = 3


def classify(raw: str) -> dict[str, Any]:
    """The code part of a result: input, normalised code, valid, type, problem."""
    code = normalize_code(raw) if isinstance(raw, str) else ""
    problem = uscc_problem(code) if code else "代码为空"
    if problem is None:
        code_type = "uscc"
    elif reg_no_is_valid(code):
        code_type, problem = "reg_no", None
    else:
        code_type = None
    return {
        "input": raw,
        "code": code,
        "valid": problem is None,
        "code_type": code_type,
        "problem": problem,
    }


def _lookup(conn: Connection, ids: list[str], schemes: list[str], today: date) -> tuple[dict, dict]:
    """entity id -> name, and entity id -> its listed records (one statement). An entity is
    known only while one of its records (of any kind) is published: once all are repaired,
    withdrawn or expired, the check says no more than for a code never published."""
    listed = and_(
        RECORDS.c.entity_id == ENTITIES.c.id,
        in_publication(today),
        or_(
            RECORDS.c.kind.in_(("blacklist", "penalty")),
            and_(RECORDS.c.kind == "credit_mark", RECORDS.c.category.in_(schemes or [""])),
        ),
    )
    stmt = (
        select(
            ENTITIES.c.id.label("entity_id"),
            ENTITIES.c.name,
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
        .select_from(ENTITIES.outerjoin(RECORDS, listed))
        .where(ENTITIES.c.id.in_(ids))
        .order_by(ENTITIES.c.id, RECORDS.c.event_date.desc(), RECORDS.c.id)
    )
    names: dict[str, str] = {}
    records: dict[str, list[Any]] = defaultdict(list)
    for row in conn.execute(stmt):
        names[row.entity_id] = row.name
        if row.id is not None:
            records[row.entity_id].append(row)
    unlisted = [i for i in names if i not in records]
    if unlisted:  # known only with a record of another kind, or with none left at all
        published = set(conn.execute(
            select(RECORDS.c.entity_id).distinct().where(
                RECORDS.c.entity_id.in_(unlisted), in_publication(today))).scalars())
        names = {i: n for i, n in names.items() if i in records or i in published}
    return names, records


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
    as_of, names, records = 0, {}, {}
    for _ in range(_ATTEMPTS):
        as_of = last_change_seq(conn)
        names, records = _lookup(conn, ids, schemes, today) if ids else ({}, {})
        if last_change_seq(conn) == as_of:
            break
    for res in results:
        name = names.get(res["code"]) if res["valid"] else None
        res["known"] = name is not None
        res["entity"] = (
            {"id": res["code"], "name": name, "url": entity_url(res["code"])}
            if name is not None
            else None
        )
        res.update(_standing(records[res["code"]]) if res["code"] in records else _copy_empty())
    return {"as_of": as_of, "count": len(results), "results": results}


def _copy_empty() -> dict[str, Any]:
    return {"listed": False, "blacklist": [], "lists": [], "penalties": {"count": 0, "records": []}}
