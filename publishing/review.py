"""Decisions on requests: accept, ask for more material, approve, reject, each with a reason.

An approval changes what the public sees, so it goes through the one writer (publishing.commit)
in the same transaction as the request's new status, its step and its audit entry:

- an approved credit repair withdraws the records (status withdrawn, reason "repair");
- an upheld objection withdraws them (reason "objection"; a withdrawn credit mark gives way to
  the newest mark it had superseded: _with_restored) or corrects them (a new version with
  the corrected fields, op change; op expire when the corrected dates end its publicity). Any
  field of the record's public shape may be corrected but its identity and a blacklist
  entry's issue's fields (correctable_fields), named by key or Chinese header, and cleaned and
  masked as a file's cell of that column. A corrected credit mark takes the place among its
  scheme's marks that the planner gives a file's mark (_settle_mark): its corrected date,
  scheme or domain may supersede it, supersede or restore another mark, or hold it back as
  statistics.

Both withdrawal reasons are held: later files do not bring such a record back, nor undo a
correction; so is a decision on a record that left publication before it (_hold_unpublished).
After the commit the search index is brought up to date (best-effort: `disclosure reindex` and
the next sync catch up if it fails), also for the entities of records withdrawn without a
change event (the writer notes them for the sync), and the applicant is told by e-mail when an
address was given.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from publishing import audit, clock, entities, mail, workdays
from publishing.clean import KINDS, Cleaner
from publishing.commit import (
    CORRECTED,
    ENTITIES,
    HELD_REASONS,
    RECORDS,
    Writer,
    finish_batch,
    kept_reason,
    lock_writer,
    start_batch,
)
from publishing.contract import (
    EVENT_DATE,
    columns_for,
    header_index,
    normalize_header,
)
from publishing.models import (
    ACTIVE,
    EXPIRED,
    OP_ADD,
    OP_CHANGE,
    OP_EXPIRE,
    OP_WITHDRAW,
    SUPERSEDED,
    WITHDRAWN,
)
from publishing.plan import (
    CURRENT,
    LEAVE_REASONS,
    load_groups,
    next_version,
    older_rivals,
    record_row,
    restorable,
    superseded_by_newer,
    target_status,
)
from publishing.request_models import (
    ACCEPTED,
    APPROVED,
    MORE_INFO,
    RECEIVED,
    REJECTED,
    REPAIR,
    REQUESTS,
    STEPS,
)
from publishing.requests import (
    TYPE_LABELS,
    durable_transaction,
    find,
    public_view,
    status_label,
)
from publishing.rows import SourceRow
from publishing.rules import load_rules
from publishing.shape import ENTITY_KEYS, KIND_FIELDS
from publishing.users import Principal

log = logging.getLogger("publishing.review")
ACTIONS = ("accept", "more_info", "approve", "reject")
ACTION_LABELS = {"accept": "受理", "more_info": "要求补正材料", "approve": "批准", "reject": "驳回"}
OUTCOMES = ("withdraw", "correct")
# Which statuses each action may start from, and the status it leads to.
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "accept": ((RECEIVED,), ACCEPTED),
    "more_info": ((RECEIVED, ACCEPTED), MORE_INFO),
    "approve": ((RECEIVED, ACCEPTED), APPROVED),
    "reject": ((RECEIVED, ACCEPTED, MORE_INFO), REJECTED),
}
_CATEGORY_FIELD = {"penalty": "domain", "credit_mark": "scheme", "return_pledge": "category"}
_RULE_INPUTS = {"severity", "domain", "penalty_kinds"}  # what publishing/rules.py reads


class ReviewError(ValueError):
    def __init__(self, errors: dict[str, str], status: int = 422):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors
        self.status = status


@dataclass(frozen=True)
class Correction:
    """A record's cleaned corrections, and the dates its corrected row is published with."""

    values: dict[str, Any]  # the corrected fields, cleaned and masked as a file's are
    publicity_until: date | None
    repairable_from: date | None
    group_key: str | None  # a credit mark's group after the correction (scheme and domain)


@dataclass(frozen=True)
class Outcome:
    tracking_no: str
    status: str
    records: list[dict[str, Any]]  # {id, before, after, version}
    search_synced: bool | None
    notified: bool


def act(
    engine: Engine,
    tracking_no: str,
    user: Principal,
    action: str,
    reason: str,
    *,
    outcome: str | None = None,
    corrections: dict[str, Any] | None = None,
    now: datetime | None = None,
    sync_search: bool = True,
) -> Outcome:
    now = now or clock.now()
    _check_types(reason, corrections)
    reason = (reason or "").strip()
    _check_input(user, action, reason, outcome)
    with durable_transaction(engine) as conn:
        lock_writer(conn)
        req = find(conn, tracking_no)
        if req is None:
            raise ReviewError({"tracking_no": f"没有受理编号为 {tracking_no} 的申请"}, status=404)
        starts, target = TRANSITIONS[action]
        if req["status"] not in starts:
            raise ReviewError(
                {
                    "status": f"该申请当前状态为“{status_label(req['type'], req['status'])}”，"
                    f"不能{ACTION_LABELS[action]}"
                },
                status=409,
            )
        changed: list[dict[str, Any]] = []
        if action == "approve":
            outcome = _outcome(req, outcome, corrections)
            changed = _apply(conn, req, user, outcome, corrections or {}, now)
        values = _request_values(req, action, target, reason, outcome, user, now)
        conn.execute(update(REQUESTS).where(REQUESTS.c.id == req["id"]).values(values))
        conn.execute(
            insert(STEPS).values(
                request_id=req["id"], at=now, action=_step(action), status=target, note=reason
            )
        )
        audit.append(
            conn,
            actor=user.name,
            action=f"request.{action}",
            target_type="request",
            target_id=tracking_no,
            at=now,
            before={"status": req["status"], "records": {c["id"]: c["before"] for c in changed}},
            after={
                **{k: v for k, v in values.items() if k != "updated_at"},
                "records": {c["id"]: c["after"] for c in changed},
                "role": user.role,
            },
        )
    synced = _sync_search(engine) if changed and sync_search else None
    notified = _notify(engine, tracking_no) if action != "accept" else False
    return Outcome(tracking_no, target, changed, synced, notified)


def _check_types(reason: Any, corrections: Any) -> None:
    """A decision's text and corrections as the API and form give them: a wrong type is the
    caller's error (422), never a crash nor a value stored in another form."""
    errors = {}
    if reason is not None and not isinstance(reason, str):
        errors["reason"] = "理由应为文字"
    if corrections is not None and not isinstance(corrections, dict):
        errors["corrections"] = '更正内容应为对象，如 {"fine_yuan": "3000"}'
    if errors:
        raise ReviewError(errors)


def _check_input(user: Principal, action: str, reason: str, outcome: str | None) -> None:
    if action not in ACTIONS:
        raise ReviewError({"decision": f"操作应为 {' | '.join(ACTIONS)} 之一"})
    if not user.can(action):
        raise ReviewError({"decision": f"角色 {user.role} 无权{ACTION_LABELS[action]}"}, status=403)
    errors = {}
    if len(reason) < 2:
        errors["reason"] = "请填写理由"
    elif len(reason) > 5000:
        errors["reason"] = "理由不超过5000字"
    if outcome is not None and outcome not in OUTCOMES:
        errors["outcome"] = "处理结果应为 withdraw（撤下公示）或 correct（更正）"
    if errors:
        raise ReviewError(errors)


def _outcome(req: dict[str, Any], outcome: str | None, corrections: dict[str, Any] | None) -> str:
    if req["type"] == REPAIR:
        if outcome not in (None, "withdraw"):
            raise ReviewError({"outcome": "信用修复获准的结果是撤下公示（withdraw）"})
        return "withdraw"
    if outcome is None:
        raise ReviewError(
            {"outcome": "异议成立时须选择处理结果：withdraw（撤下公示）或 correct（更正）"}
        )
    if outcome == "correct" and not corrections:
        raise ReviewError({"corrections": '更正须给出更正后的字段，如 {"fine_yuan": "3000"}'})
    return outcome


def _step(action: str) -> str:
    return {"accept": "accepted", "approve": "approved", "reject": "rejected"}.get(action, action)


def _request_values(req, action, target, reason, outcome, user, now) -> dict[str, Any]:
    values: dict[str, Any] = {"status": target, "updated_at": now}
    if action == "accept":
        values["accepted_at"] = now
    elif action in ("approve", "reject"):
        today = clock.beijing_date(now)
        days, _ = workdays.workdays_between(req["submitted_on"], today)
        values.update(
            decided_at=now,
            decision=action,
            outcome=outcome if action == "approve" else None,
            decision_reason=reason,
            decided_by=user.name,
            decision_workdays=days,
        )
    else:
        values["decision_reason"] = reason  # what material is missing, shown to the applicant
    return values


# -- changing the published records (through the one writer) ---------------------------------


def _apply(
    conn: Connection,
    req: dict[str, Any],
    user: Principal,
    outcome: str,
    corrections: dict[str, Any],
    now: datetime,
) -> list[dict[str, Any]]:
    """The decision applied to the request's records: what changed on each."""
    record_ids = list(req["record_ids"] or [])
    rows = {r.id: r for r in conn.execute(select(RECORDS).where(RECORDS.c.id.in_(record_ids)))}
    per_record = _per_record(corrections, record_ids) if outcome == "correct" else {}
    # Checked before anything is written: an invalid correction changes nothing.
    cleaned = _clean_corrections(conn, rows, per_record, req["tracking_no"], now)
    batch_id = start_batch(
        conn, kind=None, mode=req["type"], actor=f"review:{user.name}", files=[req["tracking_no"]]
    )
    writer = Writer(conn, batch_id, at=now)
    reason = "repair" if req["type"] == REPAIR else "objection"
    today = clock.beijing_date(now)
    changed = []
    for rid in record_ids:
        # Read again: a mark corrected before it may have superseded or restored this one.
        row = _reread(writer, rid) if rid in rows else None
        changed.append(_apply_one(writer, rid, row, outcome, reason, cleaned.get(rid), today))
    writer.finish()
    # A corrected name, address … is the entity's too, merged from its records as a file's is.
    moved = {rows[rid].entity_id for rid, c in cleaned.items() if _ENTITY_SIDE & set(c.values)}
    entities.recompute(conn, moved, now)
    key = "withdrawn" if outcome == "withdraw" else "changed"
    counts = Counter({key: 0})
    for c in changed:
        if c["after"].get("version"):  # a new version, public or (corrected) out of publication
            counts[LEAVE_REASONS.get(c["after"]["status"], key)] += 1
    finish_batch(conn, batch_id, dict(counts))
    return changed


def _reread(writer: Writer, rid: str) -> Any:
    writer.flush()
    return writer.conn.execute(select(RECORDS).where(RECORDS.c.id == rid)).first()


# What the reviewer is told about a record the decision had nothing (public) to do with.
NOTE_MISSING = "记录不存在，无需处理"
NOTE_HELD = "记录此前已依申请撤下公示，无需再处理"
NOTE_HOLD_WITHDRAWN = "记录已停止公示；已标记为依申请撤下，此后的数据文件不会使其恢复公示"
NOTE_HOLD_CORRECTED = "记录已停止公示；更正已保存，如此后的数据文件使其恢复公示，将公示更正后的内容"


def _apply_one(
    writer: Writer,
    rid: str,
    row: Any,
    outcome: str,
    reason: str,
    correction: Correction | None,
    today: date,
) -> dict[str, Any]:
    """Apply the decision to one record; {id, before, after} for the audit log and the API."""
    if row is None:
        return {"id": rid, "before": {"status": None}, "after": {"status": None,
                                                                "note": NOTE_MISSING}}
    if row.status == WITHDRAWN and row.status_reason in HELD_REASONS:
        state = {"status": row.status, "status_reason": row.status_reason}
        return {"id": rid, "before": state, "after": {**state, "note": NOTE_HELD}}
    settles = outcome == "correct" and row.kind == "credit_mark" and row.status in _MARK_STATES
    if row.status != ACTIVE and not settles:
        held = _hold_unpublished(writer, row, outcome, reason, correction)
        return _with_restored(writer, row, today, held)
    if outcome == "withdraw":
        writer.set_status(row, WITHDRAWN, OP_WITHDRAW, reason)
        after = {"status": WITHDRAWN, "status_reason": reason, "version": row.version + 1}
        return _with_restored(writer, row, today, {
            "id": rid, "before": {"status": row.status, "version": row.version}, "after": after})
    new, before, after = _corrected(row, correction)
    # The corrected dates may end its publicity: it leaves publication now, not at the next
    # `disclosure expire`, and still corrected (expire.py keeps the reason so too).
    new["status"] = (_settle_mark(writer, row, new, correction, today) if settles
                     else target_status(new, load_rules(), today))
    was_public = row.status == ACTIVE
    if not was_public and new["status"] != ACTIVE:  # still out of publication: kept quietly
        new["version"] = row.version
        writer.update(new, None)
        return _held_correction(row, before, after)
    writer.update(new, *_event_of(was_public, new["status"]))
    return {
        "id": rid,
        "before": {"status": row.status, "version": row.version, **before},
        "after": {"status": new["status"], "version": new["version"], **after},
    }


NOTE_RESTORED = "此前被本信用标识取代的信用标识（{id}）恢复为现行标识"


def _with_restored(writer: Writer, row: Any, today: date, change: dict[str, Any]) -> dict[str, Any]:
    """After an upheld objection withdrew a group's current credit mark (credit marks are not
    repaired online, publishing.requests): the newest mark it had superseded is current again,
    as when a file withdraws it (plan.Planner._restore_superseded), for the withdrawn mark was
    wrong and never should have superseded it."""
    if (row.kind != "credit_mark" or row.status not in CURRENT
            or change["after"].get("status") != WITHDRAWN):
        return change
    writer.flush()
    back = restorable(load_groups(writer.conn, [row.group_key]).get(row.group_key, []))
    if back is None:
        return change
    status = target_status(back._asdict(), load_rules(), today)
    writer.set_status(back, status, *_event_of(False, status), kept_reason=kept_reason(back))
    note = NOTE_RESTORED.format(id=back.id)
    if change["after"].get("note"):
        note = f"{change['after']['note']}；{note}"
    change["after"].update(restored=back.id, note=note)
    return change


_MARK_STATES = (*CURRENT, SUPERSEDED)  # a credit mark's states that take part in supersession


def _event_of(was_public: bool, status: str) -> tuple[str | None, str | None]:
    """The change event (op, reason) of a record taking `status`, as the planner writes it
    (plan.Planner._upsert, _supersede, _restore_superseded); a correction of a published record
    that stays published is a change for the objection."""
    if status == ACTIVE:
        return (OP_CHANGE, "objection") if was_public else (OP_ADD, None)
    reason = LEAVE_REASONS.get(status)
    if not was_public:
        return None, reason  # quiet: it was not published one by one
    return (OP_EXPIRE if status == EXPIRED else OP_WITHDRAW), reason


def _settle_mark(
    writer: Writer, row: Any, new: dict[str, Any], correction: Correction | None, today: date
) -> str:
    """The status of a corrected credit mark, with the supersession around it that the planner
    would have made had the files carried the corrected values (plan.Planner._supersede,
    _restore_superseded): the mark leaves its group (when it was the current mark, the newest
    one it superseded is current again) and arrives in the group of its corrected scheme and
    domain (expired, or statistics only, or superseded by a newer current mark, or superseding
    the older ones). Worked out on the groups' marks before anything is written, so that only
    the net changes are: a mark restored and superseded again is neither announced nor touched.
    """
    group = _regroup(writer.conn, row, correction)
    rules = load_rules()
    stored = {m.id: m for ms in load_groups(writer.conn, {row.group_key, group}).values()
              for m in ms if m.id != row.id}
    marks = dict(stored)
    if row.status in CURRENT:
        back = restorable([m for m in marks.values() if m.group_key == row.group_key])
        if back is not None:
            marks[back.id] = back._replace(status=target_status(back._asdict(), rules, today))
    status = target_status(new, rules, today)
    rivals = [m for m in marks.values() if m.group_key == group]
    if status in CURRENT and superseded_by_newer(new, rivals):
        status = SUPERSEDED
    elif status in CURRENT:  # statistics count an entity's current mark only, too
        marks.update((o.id, o._replace(status=SUPERSEDED)) for o in older_rivals(new, rivals))
    for mark_id, mark in marks.items():
        was = stored[mark_id]
        if mark.status != was.status:
            op, why = _event_of(was.status == ACTIVE, mark.status)
            writer.set_status(was, mark.status, op, why, kept_reason=kept_reason(was))
    return status


def _regroup(conn: Connection, row: Any, correction: Correction | None) -> str:
    """A credit mark's group after its correction (plan.record_row's key of its scheme and
    domain), stored at once: the Writer writes no group key, the planner sets it at insert."""
    group = (correction.group_key if correction else None) or row.group_key
    if group != row.group_key:
        conn.execute(update(RECORDS).where(RECORDS.c.id == row.id).values(group_key=group))
    return group


def _hold_unpublished(
    writer: Writer, row: Any, outcome: str, reason: str, correction: Correction | None
) -> dict[str, Any]:
    """The decision on a record that left publication after the request was filed (a file
    withdrew it, it expired or was superseded): nothing public changes, so no change event and
    no new version, but the decision is kept on the record, so that a later file cannot undo it
    (plan.Planner._upsert):

    - a withdrawal (repair, objection) makes it withdrawn with the held reason. The entity is
      merged again without it (Writer.finish), and its search document refreshed by the
      sync after the commit (the writer notes the record in search_pending);
    - a correction is stored as its content, marked corrected: a file that brings the record
      back publishes the corrected content (plan.Planner._republish_corrected), never the
      uncorrected one. Stored rather than refused, so the reviewer need not wait for the record
      to return, and the applicant's decision is never lost. (A superseded or statistics-only
      credit mark is not held but settled again: _settle_mark.)"""
    before = {"status": row.status, "status_reason": row.status_reason}
    if outcome == "withdraw":
        writer.set_status(row, WITHDRAWN, None, reason, bump=False)
        after = {"status": WITHDRAWN, "status_reason": reason, "note": NOTE_HOLD_WITHDRAWN}
        return {"id": row.id, "before": before, "after": after}
    new, old_values, new_values = _corrected(row, correction)
    new.update(status=row.status, version=row.version)  # status_reason: CORRECTED
    if row.kind == "credit_mark":
        _regroup(writer.conn, row, correction)  # out of supersession: its group only follows
    writer.update(new, None)
    return _held_correction(row, old_values, new_values)


def _held_correction(row: Any, old_values: dict, new_values: dict) -> dict[str, Any]:
    return {
        "id": row.id,
        "before": {"status": row.status, "status_reason": row.status_reason, **old_values},
        "after": {"status": row.status, "status_reason": CORRECTED, **new_values,
                  "note": NOTE_HOLD_CORRECTED},
    }


def _per_record(corrections: dict[str, Any], record_ids: list[str]) -> dict[str, dict[str, Any]]:
    """{field: value} for every record, or {record_id: {field: value}} per record."""
    if corrections and all(k in record_ids for k in corrections):
        wrong = [k for k, v in corrections.items() if v is not None and not isinstance(v, dict)]
        if wrong:
            raise ReviewError(
                {"corrections": f"记录 {'、'.join(wrong)} 的更正内容应为对象，如 "
                 '{"fine_yuan": "3000"}'}
            )
        return {k: dict(v or {}) for k, v in corrections.items()}
    return dict.fromkeys(record_ids, dict(corrections))


# -- which fields a correction may change ------------------------------------------------------

# The entity's fields every record stores (plan.record_row), and its district (a record column):
# public fields of every kind. The pipeline's steering columns (公示截止日期, 罚款金额(万元), 操作, a
# pledge's 状态) are not fields of the published record (shape.KIND_FIELDS) and not corrected.
_ENTITY_SIDE = frozenset({*ENTITY_KEYS, "district"}) - {"uscc", "reg_no"}
# A credit mark's scheme and domain (and date) are in its id, yet correctable: the correction
# moves the mark among its groups' marks (_regroup, _settle_mark; test_review_supersession).
# A later file carrying the corrected values (another id, same group and date) is held against
# the corrected mark (plan._corrected_twin), not added as a second current mark beside it.
_REGROUPED = {"credit_mark": frozenset({"scheme", "domain"})}
R_IDENTITY = ("字段 {names} 是记录的标识，不能更正：记录编号由它得出，更正后报送正确值的数据文件会"
              "另行公示一条记录；如有误，请选择“撤下公示”，由数据文件报送正确的记录")
# A blacklist issue's own fields (黑榜期次: the blacklist_issues row, which the writer sets from
# each entry it writes, commit.Writer._note_issue). Its 期次 and 发布单位 are the entries' identity
# too; its 发布日期 is not, and corrected on one entry it rewrote the issue's date while the
# issue's other entries kept the old one. A file sends the issue again, every entry at once.
_ISSUE_WIDE = {"blacklist": frozenset({"issue_no", "publisher", "issued_on"})}
R_ISSUE_WIDE = ("字段 {names} 属于整期黑榜（同一期次的各条记录共用），不能只更正一条记录；"
                "如有误，请由数据文件重新报送该期")


def identity_fields(kind: str) -> frozenset[str]:
    """The fields a record's id is made of, which no correction changes: the entity's USCC or
    注册号 and the kind's natural key (clean.KINDS: a penalty's 决定书文号; a blacklist entry's
    发布单位, 期次 and 涉案产品; a pledge's 住所). A corrected record keeps its id, so a later file
    with the corrected key would publish the record a second time beside it, and a corrected
    USCC would move the record to another entity; such a record is withdrawn and sent again."""
    if kind not in KINDS:  # a kind no file cleans (district boards): nothing is corrected
        return frozenset()
    keys = {k for k in KINDS[kind].key_columns if k != "entity"}
    return frozenset({"uscc", "reg_no", *keys} - _REGROUPED.get(kind, frozenset()))


def issue_fields(kind: str) -> frozenset[str]:
    """The fields of a blacklist entry that are its whole issue's and not its identity (发布日期):
    no correction of one entry changes them."""
    return _ISSUE_WIDE.get(kind, frozenset()) - identity_fields(kind)


def correctable_fields(kind: str) -> tuple[str, ...]:
    """The fields of a record of `kind` a correction may change, in the contract's column order:
    every field of its public shape but its identity and its blacklist issue's fields."""
    if kind not in KINDS:
        return ()
    public = {*_ENTITY_SIDE, *KIND_FIELDS.get(kind, ())}
    fixed = identity_fields(kind) | issue_fields(kind)
    return tuple(c.key for c in columns_for(kind) if c.key in public and c.key not in fixed)


def correction_label(kind: str, key: str) -> str:
    """A field's Chinese name: its column's header in the data contract."""
    return next((c.label for c in columns_for(kind) if c.key == key), key)


def correction_keys(kind: str, fields: dict[str, Any]) -> dict[str, Any] | str:
    """The corrections keyed by column: a field is named by its key, its Chinese header or one
    of the header's aliases (contract.header_index, which the file readers match headers by);
    why they are refused when a name is unknown, an identity field, its issue's or given twice."""
    index = header_index(kind) if kind in KINDS else {}
    fixed, whole_issue = identity_fields(kind), issue_fields(kind)
    allowed = set(correctable_fields(kind))
    keyed: dict[str, Any] = {}
    names: dict[str, str] = {}  # key -> the name it was given by
    refused, identity, issue, twice = [], [], [], []
    for name, value in fields.items():
        key = index.get(normalize_header(name)) if isinstance(name, str) else None
        if key in fixed:
            identity.append(str(name))
        elif key in whole_issue:
            issue.append(str(name))
        elif key not in allowed:
            refused.append(str(name))
        elif key in keyed:
            twice.append(f"{correction_label(kind, key)}（{names[key]}、{name}）")
        else:
            keyed[key], names[key] = value, name
    problems = []
    if identity:
        problems.append(R_IDENTITY.format(names="、".join(identity)))
    if issue:
        problems.append(R_ISSUE_WIDE.format(names="、".join(issue)))
    if refused:
        labels = "、".join(correction_label(kind, k) for k in correctable_fields(kind))
        problems.append(f"字段 {'、'.join(refused)} 不能更正（可更正：{labels or '无'}）")
    if twice:
        problems.append(f"字段重复给出：{'；'.join(twice)}")
    return "；".join(problems) if problems else keyed


def _clean_corrections(
    conn: Connection,
    rows: dict[str, Any],
    per_record: dict[str, dict[str, Any]],
    tracking_no: str,
    now: datetime,
) -> dict[str, Correction]:
    """Each record's corrected fields, cleaned exactly as a file row of its kind would be
    (publishing.clean: formats, enumerations, 简易 refused, no future event date, masking),
    by cleaning the stored row with the corrections applied. ReviewError (422) listing every
    problem when any correction is invalid."""
    today = clock.beijing_date(now)
    names = _entity_names(conn, {rows[rid].entity_id for rid in per_record if rid in rows})
    cleaned: dict[str, Correction] = {}
    problems: list[str] = []
    for rid, fields in per_record.items():
        row = rows.get(rid)
        if row is None or (row.status == WITHDRAWN and row.status_reason in HELD_REASONS):
            continue  # nothing to correct: it left publication for good on a request
        result = _clean_one(row, fields, names.get(row.entity_id), tracking_no, today)
        if isinstance(result, str):
            problems.append(f"{rid}：{result}" if len(per_record) > 1 else result)
        else:
            cleaned[rid] = result
    if problems:
        raise ReviewError({"corrections": "；".join(problems)})
    return cleaned


def _entity_names(conn: Connection, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    query = select(ENTITIES.c.id, ENTITIES.c.name).where(ENTITIES.c.id.in_(sorted(ids)))
    return {i: n for i, n in conn.execute(query)}


def _clean_one(
    row: Any, fields: dict[str, Any], entity_name: str | None, tracking_no: str, today: date
) -> Correction | str:
    """The cleaned, masked values of the corrected fields, or why they are refused."""
    keyed = correction_keys(row.kind, fields)
    if isinstance(keyed, str):
        return keyed
    # The stored row with the corrections applied, as a source row: the whole row is cleaned,
    # so cross-field rules (a 信用风险分类 needs its grade, 期次 takes its year) hold too.
    raw = {
        **(row.data or {}),
        "uscc": row.entity_id,
        "entity_name": entity_name or row.entity_id,
        "district": row.district,
        **keyed,
    }
    result = Cleaner(row.kind, today, tracking_no).clean(SourceRow(tracking_no, 1, raw))
    if isinstance(result, list):
        return "；".join(
            f"{correction_label(row.kind, r.column)}（{r.column}）：{r.reason}"
            if r.column
            else r.reason
            for r in result
        )
    # The dates a file row with this content is published with: its own end date (公示截止日期,
    # 有效期至) when it gives one, else the publicity rules (one rule: plan.record_row's).
    dates = record_row(result, load_rules())
    # The entity's columns are cleaned into result.entity, the kind's into its fields.
    ent = result.entity
    side = {"entity_name": ent.name, "legal_rep": ent.legal_rep, "address": ent.address,
            "district": ent.district}
    return Correction(
        # masked by the cleaner, as a file's are
        {k: side[k] if k in side else result.fields.get(k) for k in keyed},
        dates["publicity_until"],
        dates["repairable_from"],
        # Only marks are grouped (supersession); other kinds' key is their id, never changed.
        dates["group_key"] if row.kind == "credit_mark" else None,
    )


def _publicity_inputs(kind: str) -> set[str]:
    """The fields a record's end of publicity and repair date are computed from."""
    return {EVENT_DATE[kind], *KINDS[kind].publicity, *_RULE_INPUTS}


def _corrected(row: Any, correction: Correction | None) -> tuple[dict[str, Any], dict, dict]:
    """The record's next version with the cleaned corrections (see _clean_corrections)."""
    new_values = correction.values if correction else {}
    district = new_values.get("district", row.district)  # a column of its own, not in data
    in_data = {k: v for k, v in new_values.items() if k != "district"}
    data = {**(row.data or {}), **in_data}
    before = {k: row.district if k == "district" else (row.data or {}).get(k)
              for k in new_values}
    event_date = row.event_date
    date_key = EVENT_DATE.get(row.kind)
    if date_key in new_values and new_values[date_key]:
        event_date = date.fromisoformat(new_values[date_key])
    publicity_until, repairable_from = row.publicity_until, row.repairable_from
    if correction and _publicity_inputs(row.kind) & set(new_values):
        publicity_until, repairable_from = correction.publicity_until, correction.repairable_from
    category_key = _CATEGORY_FIELD.get(row.kind, "")
    # The planner's hash: a later file with the corrected content is unchanged, not held.
    new = next_version(
        row, data, district=district, event_date=event_date, publicity_until=publicity_until,
        repairable_from=repairable_from, status=ACTIVE,
        status_reason=CORRECTED,  # files no longer change its content (plan.Planner._upsert)
        version=row.version + 1,
        category=data.get(category_key, row.category),
        grade=data.get("grade") if row.kind == "credit_mark" else row.grade,
    )
    return new, before, new_values


# -- after the commit ------------------------------------------------------------------------


def _sync_search(engine: Engine) -> bool:
    try:
        from publishing.search.sync import sync
    except ImportError:
        return False
    try:
        sync(engine, rebuild=False)  # in a reviewer's request: a rebuild is the worker's
        return True
    except Exception:  # noqa: BLE001 - the decision is committed; the next sync catches up
        log.exception("search sync after a review decision failed")
        return False


def _notify(engine: Engine, tracking_no: str) -> bool:
    from publishing.settings import get_settings

    if not get_settings().smtp_url:
        return False
    with engine.connect() as conn:
        req = find(conn, tracking_no)
    if not req or not req.get("email"):
        return False
    view_url = f"{get_settings().base_url.rstrip('/')}/requests/{tracking_no}"
    label = status_label(req["type"], req["status"])
    reason_title = "需补正的材料" if req["status"] == MORE_INFO else "理由"
    # A fixed greeting: nothing the applicant typed goes into the bureau's mail (else anyone
    # could have it send their text to any address).
    body = (
        f"您好：\n\n您提交的{TYPE_LABELS[req['type']]}申请（受理编号 {tracking_no}，"
        f"主体：{req['entity_name']}）处理结果：{label}。\n\n{reason_title}：{req['decision_reason']}\n\n"
        f"凭受理编号和查询码查看详情：{view_url}\n\n烟台市市场监督管理局"
    )
    return mail.send(req["email"], f"【信用信息公示】申请 {tracking_no}：{label}", body)


def decision_json(conn: Connection, tracking_no: str) -> dict[str, Any]:
    req = find(conn, tracking_no)
    assert req is not None
    view = public_view(conn, req)
    return {
        k: view[k]
        for k in (
            "tracking_no",
            "type",
            "status",
            "status_label",
            "decision",
            "outcome",
            "decision_reason",
            "decided_at",
        )
    }
