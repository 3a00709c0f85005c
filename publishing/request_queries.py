"""Reading requests: one by its tracking number (find), its steps and attachments, what its
applicant (applicant_view) and a reviewer see, the reviewers' queue, the other requests on the
same records (related_requests), whether an objection about an entity or record is being
handled (objection_pending), and the counts the home page shows (public_figures).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import Connection, case, func, select

from publishing import clock
from publishing.request_codes import code_matches, valid_tracking_no
from publishing.request_deadlines import (
    count_starts,
    due_date,
    review_counted_weekdays,
    review_fallback,
)
from publishing.request_models import (
    APPROVED,
    ATTACHMENTS,
    DECIDED_STATUSES,
    OBJECTION,
    OPEN_STATUSES,
    RECEIVED,
    REPAIR,
    REQUEST_RECORDS,
    REQUESTS,
    STEPS,
    TYPE_LABELS,
    status_label,
)


def find(conn: Connection, tracking_no: str) -> dict[str, Any] | None:
    if not valid_tracking_no(tracking_no):
        return None
    row = (
        conn.execute(select(REQUESTS).where(REQUESTS.c.tracking_no == tracking_no))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def steps(conn: Connection, request_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(STEPS).where(STEPS.c.request_id == request_id).order_by(STEPS.c.id))
    return [dict(r) for r in rows.mappings()]


def files(conn: Connection, request_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(ATTACHMENTS).where(ATTACHMENTS.c.request_id == request_id).order_by(ATTACHMENTS.c.id)
    )
    return [dict(r) for r in rows.mappings()]


def attachment(conn: Connection, attachment_id: int) -> dict[str, Any] | None:
    """An attachment's row, with the tracking number of its request."""
    row = (
        conn.execute(
            select(ATTACHMENTS, REQUESTS.c.tracking_no)
            .join(REQUESTS, REQUESTS.c.id == ATTACHMENTS.c.request_id)
            .where(ATTACHMENTS.c.id == attachment_id)
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def applicant_view(
    conn: Connection, tracking_no: str, access_code: str | None, today: date | None = None
) -> dict[str, Any] | None:
    """What the holder of the access code sees; None when number or code do not match."""
    req = find(conn, tracking_no)
    if req is None or not code_matches(req["access_hash"], access_code):
        return None
    return public_view(conn, req, today)


def public_view(conn: Connection, req: dict[str, Any], today: date | None = None) -> dict[str, Any]:
    today = today or clock.today()
    open_ = req["status"] in OPEN_STATUSES
    return {
        "tracking_no": req["tracking_no"],
        "type": req["type"],
        "type_label": TYPE_LABELS[req["type"]],
        "status": req["status"],
        "status_label": status_label(req["type"], req["status"]),
        "entity_id": req["entity_id"],
        "entity_name": req["entity_name"],
        "record_ids": list(req["record_ids"] or []),
        "submitted_at": req["submitted_at"].isoformat(),
        "review_due": req["review_due"].isoformat(),
        "decision_due": req["decision_due"].isoformat(),
        "calendar_fallback": req["calendar_fallback"],
        "review_fallback": review_fallback(conn, req),
        "decision_fallback": req["calendar_fallback"],
        "overdue": open_ and req["decision_due"] < today,
        "decision": req["decision"],
        "outcome": req["outcome"],
        "decision_reason": req["decision_reason"],
        "decided_at": req["decided_at"].isoformat() if req["decided_at"] else None,
        "steps": [
            {
                "at": s["at"].isoformat(),
                "action": s["action"],
                "status": s["status"],
                "note": s["note"],
            }
            for s in steps(conn, req["id"])
        ],
        "attachments": len(files(conn, req["id"])),
    }


def queue(
    conn: Connection,
    statuses: tuple[str, ...] = OPEN_STATUSES,
    today: date | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Requests in the given statuses, overdue ones flagged, ordered in SQL (so that a page of
    them is the right page): decided ones the newest decision first, the others the most
    urgent deadline first (see due_date)."""
    today = today or clock.today()
    query = (
        select(REQUESTS)
        .where(REQUESTS.c.status.in_(statuses))
        .order_by(*_queue_order(statuses))
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    rows = [dict(r) for r in conn.execute(query).mappings()]
    flagged = [r for r in rows if r["calendar_fallback"]]  # usually none
    starts = count_starts(conn, flagged) if flagged else {}
    out = []
    for req in rows:
        due = due_date(req)
        req.update(
            due=due,
            review_fallback=req["id"] in starts
            and review_counted_weekdays(req, starts[req["id"]]),
            decision_fallback=req["calendar_fallback"],
            overdue=req["status"] in OPEN_STATUSES and due < today,
            # the preliminary review's deadline binds only until the review is done
            review_overdue=req["status"] == RECEIVED and req["review_due"] < today,
            decision_overdue=req["status"] in OPEN_STATUSES and req["decision_due"] < today,
            status_label=status_label(req["type"], req["status"]),
            type_label=TYPE_LABELS[req["type"]],
        )
        out.append(req)
    return out


def _queue_order(statuses: tuple[str, ...]) -> tuple[Any, ...]:
    if set(statuses) <= set(DECIDED_STATUSES):
        decided = func.coalesce(REQUESTS.c.decided_at, REQUESTS.c.updated_at)
        return decided.desc(), REQUESTS.c.id.desc()
    due = case((REQUESTS.c.status == RECEIVED, REQUESTS.c.review_due), else_=REQUESTS.c.decision_due)
    return due, REQUESTS.c.decision_due, REQUESTS.c.id


def queue_count(conn: Connection, statuses: tuple[str, ...] = OPEN_STATUSES) -> int:
    query = select(func.count()).select_from(REQUESTS).where(REQUESTS.c.status.in_(statuses))
    return int(conn.execute(query).scalar_one())


def same_contact(req: Mapping[str, Any], other: Mapping[str, Any]) -> list[str]:
    """What of the contact two requests share: "手机号码" and/or "电子邮箱" (none: another
    applicant, as far as the contact tells). Stored mobiles are normalised; e-mail is compared
    without case."""
    shared = []
    if req["mobile"] and req["mobile"] == other["mobile"]:
        shared.append("手机号码")
    if req["email"] and other["email"] and req["email"].lower() == other["email"].lower():
        shared.append("电子邮箱")
    return shared


def related_requests(conn: Connection, req: dict[str, Any]) -> list[dict[str, Any]]:
    """The other requests about any of this request's records, open ones first (for reviewers:
    anyone may file about a record, the same applicant again too, so several requests may
    concern one; `same_contact` says which share this one's mobile or e-mail)."""
    ids = list(req["record_ids"] or [])
    if not ids:
        return []
    rows = conn.execute(
        select(REQUESTS, REQUEST_RECORDS.c.record_id.label("shared_record"))
        .join(REQUEST_RECORDS, REQUEST_RECORDS.c.request_id == REQUESTS.c.id)
        .where(REQUEST_RECORDS.c.record_id.in_(ids), REQUESTS.c.id != req["id"])
        .order_by(REQUESTS.c.submitted_at, REQUESTS.c.id, REQUEST_RECORDS.c.record_id)
    ).mappings()
    found: dict[int, dict[str, Any]] = {}
    for r in rows:
        other = found.setdefault(
            r["id"],
            {
                "tracking_no": r["tracking_no"],
                "type": r["type"],
                "type_label": TYPE_LABELS[r["type"]],
                "status": r["status"],
                "status_label": status_label(r["type"], r["status"]),
                "open": r["status"] in OPEN_STATUSES,
                "contact_name": r["contact_name"],
                "mobile": r["mobile"],
                "email": r["email"],
                "submitted_at": r["submitted_at"],
                "record_ids": [],
                "same_contact": same_contact(req, r),
            },
        )
        other["record_ids"].append(r["shared_record"])
    return sorted(found.values(), key=lambda o: not o["open"])


def objection_pending(
    conn: Connection, entity_id: str | None = None, record_id: str | None = None
) -> bool:
    """An objection about the entity (or the record) is being handled (异议处理中)."""
    if record_id:
        stmt = (
            select(REQUEST_RECORDS.c.record_id)
            .join(REQUESTS, REQUESTS.c.id == REQUEST_RECORDS.c.request_id)
            .where(
                REQUEST_RECORDS.c.record_id == record_id,
                REQUESTS.c.type == OBJECTION,
                REQUESTS.c.status.in_(OPEN_STATUSES),
            )
        )
    else:
        stmt = select(REQUESTS.c.id).where(
            REQUESTS.c.entity_id == entity_id,
            REQUESTS.c.type == OBJECTION,
            REQUESTS.c.status.in_(OPEN_STATUSES),
        )
    return conn.execute(stmt.limit(1)).first() is not None


def public_figures(conn: Connection) -> dict[str, Any]:
    """For the home page: requests received, records repaired, objections upheld, and the median
    number of working days from submission to decision. Aggregated in SQL, so that a few rows
    come back (one per type and status, one per distinct number of working days) however many
    requests there are."""
    received: Counter[str] = Counter()
    approved: Counter[str] = Counter()
    for type_, status, n in conn.execute(
        select(REQUESTS.c.type, REQUESTS.c.status, func.count()).group_by(
            REQUESTS.c.type, REQUESTS.c.status
        )
    ):
        received[type_] += n
        if status == APPROVED:
            approved[type_] += n
    repaired = conn.execute(
        select(func.count())
        .select_from(REQUEST_RECORDS)
        .join(REQUESTS, REQUESTS.c.id == REQUEST_RECORDS.c.request_id)
        .where(REQUESTS.c.type == REPAIR, REQUESTS.c.status == APPROVED)
    ).scalar_one()
    days = conn.execute(
        select(REQUESTS.c.decision_workdays, func.count())
        .where(
            REQUESTS.c.status.in_(DECIDED_STATUSES),
            REQUESTS.c.decision_workdays.is_not(None),
        )
        .group_by(REQUESTS.c.decision_workdays)
    ).all()
    return {
        "received": int(sum(received.values())),
        "received_repair": int(received[REPAIR]),
        "received_objection": int(received[OBJECTION]),
        "repaired": int(approved[REPAIR]),
        "repaired_records": int(repaired),
        "objections_upheld": int(approved[OBJECTION]),
        "decided": int(sum(n for _, n in days)),
        "median_workdays_to_decide": _median(days),
    }


def _median(counts: list[Any]) -> int | float | None:
    """statistics.median of values given as (value, how many times) pairs: the middle value of
    an odd number of them, else the mean of the two middle ones (a float); None for none."""
    ordered = sorted((value, int(n)) for value, n in counts)
    total = sum(n for _, n in ordered)
    if not total:
        return None

    def nth(i: int) -> int:  # the i-th value (0-based) in sorted order
        for value, n in ordered:
            if i < n:
                return value
            i -= n
        raise IndexError(i)

    middle = total // 2
    if total % 2:
        return nth(middle)
    return (nth(middle - 1) + nth(middle)) / 2
