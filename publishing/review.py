"""Decisions on requests: accept, ask for more material, approve, reject, each with a reason.

An approval changes what the public sees, so it goes through the one writer (publishing.commit)
in the same transaction as the request's new status, its step and its audit entry:

- an approved credit repair withdraws the records (status withdrawn, reason "repair");
- an upheld objection withdraws them (reason "objection"; a withdrawn credit mark gives way to
  the newest mark it had superseded: _with_restored) or corrects them (a new version with
  the corrected fields, op change; op expire when the corrected dates end its publicity). Any
  field of the record's public shape may be corrected but its identity and a blacklist
  entry's issue's fields, named by key or Chinese header, and cleaned and masked as a file's
  cell of that column (publishing.corrections). A corrected credit mark takes the place among its
  scheme's marks that the planner gives a file's mark (_settle_mark): its corrected date,
  scheme or domain may supersede it, supersede or restore another mark, or hold it back as
  statistics.

Both withdrawal reasons are held: later files do not bring such a record back, nor undo a
correction; so is a decision on a record that left publication before it (_hold_unpublished).
After the commit the search index is brought up to date (best-effort: `disclosure reindex` and
the next sync catch up if it fails), also for the entities of records withdrawn without a
change event (the writer notes them for the sync), and the applicant is told by e-mail when an
address was given (publishing.notices).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from publishing import audit, clock, entities, notices, workdays
from publishing.commit import (
    CORRECTED,
    HELD_REASONS,
    RECORDS,
    Writer,
    durable_transaction,
    finish_batch,
    kept_reason,
    lock_writer,
    start_batch,
)
from publishing.corrections import (
    ENTITY_SIDE,
    Correction,
    InvalidCorrections,
    clean_corrections,
    corrected_version,
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
    SUPERSEDING,
    load_groups,
    older_rivals,
    restorable,
    superseded_by_newer,
    supersedes,
    target_status,
)
from publishing.request_models import (
    ACCEPTED,
    APPROVED,
    DECIDED_STATUSES,
    MORE_INFO,
    OPEN_STATUSES,
    RECEIVED,
    REJECTED,
    REPAIR,
    REQUESTS,
    STEPS,
    add_step,
    status_label,
)
from publishing.request_queries import find, public_view, steps
from publishing.rules import load_rules
from publishing.search.sync import sync
from publishing.users import Principal

log = logging.getLogger("publishing.review")
ACTIONS = ("accept", "more_info", "approve", "reject")
ACTION_LABELS = {"accept": "受理", "more_info": "要求补正材料", "approve": "批准", "reject": "驳回"}
OUTCOMES = ("withdraw", "correct")
STATUSES = (*OPEN_STATUSES, *DECIDED_STATUSES)
# Which statuses each action may start from, and the status it leads to.
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "accept": ((RECEIVED,), ACCEPTED),
    "more_info": ((RECEIVED, ACCEPTED), MORE_INFO),
    "approve": ((RECEIVED, ACCEPTED), APPROVED),
    "reject": ((RECEIVED, ACCEPTED, MORE_INFO), REJECTED),
}


class ReviewError(ValueError):
    def __init__(self, errors: dict[str, str], status: int = 422):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors
        self.status = status


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
    expected_status: Any = None,
    expected_version: Any = None,
) -> Outcome:
    """Decide on a request. expected_status / expected_version: the request as the decision's
    maker saw it (the review page's form carries both; the API may send either): when it has
    changed since, nothing is done (409), so that no decision is made on an out-of-date page."""
    now = now or clock.now()
    _check_types(reason, corrections)
    seen = expected(expected_status, expected_version)
    reason = (reason or "").strip()
    _check_input(user, action, reason, outcome)
    with durable_transaction(engine) as conn:
        lock_writer(conn)
        # The request's row stays locked to the commit: an applicant's supplement at the same
        # moment (publishing.requests.supplement locks it too) waits, or came first and is seen.
        conn.execute(
            select(REQUESTS.c.id).where(REQUESTS.c.tracking_no == tracking_no).with_for_update()
        )
        req = find(conn, tracking_no)
        if req is None:
            raise ReviewError({"tracking_no": f"没有受理编号为 {tracking_no} 的申请"}, status=404)
        _check_seen(conn, req, seen)
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
        # Only from the status read above (the lock makes it so; this says it where it counts).
        done = conn.execute(
            update(REQUESTS)
            .where(REQUESTS.c.id == req["id"], REQUESTS.c.status == req["status"])
            .values(values)
        ).rowcount
        if done != 1:
            raise ReviewError({"status": CHANGED.format(what="")}, status=409)
        add_step(conn, req["id"], at=now, action=_step(action), status=target, note=reason)
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
    notified = notices.send_decision(engine, tracking_no) if action != "accept" else False
    return Outcome(tracking_no, target, changed, synced, notified)


# -- the request as the decision's maker saw it ------------------------------------------------

CHANGED = "该申请在您打开页面后已有变化{what}，请刷新页面查看后再办理。"
# What each later step did, as the refusal of an out-of-date decision tells it.
STEP_NEWS = {
    "accepted": "已受理",
    "more_info": "已要求补正材料",
    "supplemented": "申请人已补正材料",
    "approved": "已批准",
    "rejected": "已驳回",
}


@dataclass(frozen=True)
class Seen:
    """The request as the decision's maker saw it: its status, its version (request_version)."""

    status: str | None
    version: int | None


def request_version(conn: Connection, request_id: int) -> int:
    """The request's version as the review page's form carries it: the number of its steps.
    Every change a decision's maker must have seen (a decision, a request for material, the
    applicant's supplement, even one leading back to the same status) adds a step."""
    query = select(func.count()).select_from(STEPS).where(STEPS.c.request_id == request_id)
    return int(conn.execute(query).scalar_one())


def expected(status: Any, stamp: Any) -> Seen | None:
    """The precondition as the form (text) or the API (JSON) gives it; None when neither is.
    A value of another shape is the caller's error (422)."""
    status = None if status in (None, "") else status
    stamp = None if stamp in (None, "") else stamp
    if isinstance(stamp, str) and stamp.isascii() and stamp.isdigit() and len(stamp) <= 18:
        stamp = int(stamp)  # the form's hidden field (longer: not a count of steps, 422)
    errors = {}
    if status is not None and status not in STATUSES:
        errors["expected_status"] = f"expected_status 应为 {' | '.join(STATUSES)} 之一"
    if stamp is not None and (isinstance(stamp, bool) or not isinstance(stamp, int) or stamp < 0):
        errors["expected_version"] = "expected_version 应为非负整数"
    if errors:
        raise ReviewError(errors)
    return None if status is None and stamp is None else Seen(status, stamp)


def _check_seen(conn: Connection, req: dict[str, Any], seen: Seen | None) -> None:
    """Refuse (409) a decision made on the request as it no longer is, saying what changed."""
    if seen is None:
        return
    actions = [s["action"] for s in steps(conn, req["id"])]
    moved = seen.version is not None and seen.version != len(actions)
    if not moved and seen.status in (None, req["status"]):
        return
    later = actions[seen.version :] if moved and seen.version is not None else []
    news = [STEP_NEWS.get(a, a) for a in later]
    now = f"当前状态：“{status_label(req['type'], req['status'])}”"
    what = f"（{'、'.join([*news, now])}）"
    raise ReviewError({"status": CHANGED.format(what=what)}, status=409)


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
    try:
        cleaned = clean_corrections(conn, rows, per_record, req["tracking_no"], now)
    except InvalidCorrections as err:
        raise ReviewError({"corrections": str(err)}) from None
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
    moved = {rows[rid].entity_id for rid, c in cleaned.items() if ENTITY_SIDE & set(c.values)}
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
    new, before, after = corrected_version(row, correction)
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
    group = _regroup(writer, row, correction)
    rules = load_rules()
    stored = {m.id: m for ms in load_groups(writer.conn, {row.group_key, group}).values()
              for m in ms if m.id != row.id}
    marks = dict(stored)
    if row.status in SUPERSEDING:  # it may have superseded its group's older marks (restorable
        # decides what comes back)
        back = restorable([m for m in marks.values() if m.group_key == row.group_key])
        if back is not None:
            marks[back.id] = back._replace(status=target_status(back._asdict(), rules, today))
    status = target_status(new, rules, today)
    rivals = [m for m in marks.values() if m.group_key == group]
    if status in CURRENT and superseded_by_newer(new, rivals):
        status = SUPERSEDED
    elif supersedes(status, new["event_date"], new["publicity_until"]):  # statistics count an
        # entity's current mark only, too; an ended mark still replaced the older ones, as when
        # a file brings it ended (unless it ended before its own date: plan.supersedes)
        marks.update((o.id, o._replace(status=SUPERSEDED)) for o in older_rivals(new, rivals))
    for mark_id, mark in marks.items():
        was = stored[mark_id]
        if mark.status != was.status:
            op, why = _event_of(was.status == ACTIVE, mark.status)
            writer.set_status(was, mark.status, op, why, kept_reason=kept_reason(was))
    return status


def _regroup(writer: Writer, row: Any, correction: Correction | None) -> str:
    """A credit mark's group after its correction (plan.record_row's key of its scheme and
    domain), stored at once (Writer.set_group_key)."""
    group = (correction.group_key if correction else None) or row.group_key
    if group != row.group_key:
        writer.set_group_key(row.id, group)
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
    new, old_values, new_values = corrected_version(row, correction)
    new.update(status=row.status, version=row.version)  # status_reason: CORRECTED
    if row.kind == "credit_mark":
        _regroup(writer, row, correction)  # out of supersession: its group only follows
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


# -- after the commit ------------------------------------------------------------------------


def _sync_search(engine: Engine) -> bool:
    try:
        sync(engine, rebuild=False)  # in a reviewer's request: a rebuild is the worker's
        return True
    except Exception:  # noqa: BLE001 - the decision is committed; the next sync catches up
        log.exception("search sync after a review decision failed")
        return False


def reviewer_view(conn: Connection, tracking_no: str) -> dict[str, Any] | None:
    """A request as the decision API's clients read it: the applicant's view (no contact
    details) and its version, the count of steps that expected_version names."""
    req = find(conn, tracking_no)
    if req is None:
        return None
    view = public_view(conn, req)
    return {**view, "version": len(view["steps"])}


def decision_json(conn: Connection, tracking_no: str) -> dict[str, Any]:
    view = reviewer_view(conn, tracking_no)
    assert view is not None
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
            "version",
        )
    }
