"""Intake of objections (异议) and credit-repair requests (信用修复).

`submit` checks everything first (fields, the entity's code and check digit, that every record
is published and belongs to that entity, repair eligibility from the rules, the attachments by
their content) and stores nothing when anything is wrong: IntakeError names each field at fault.
Otherwise the attachments are written and fsynced, then the request, its records, its first step
and its audit entry are committed in one transaction; only then does the caller say "received".

A tracking number (YX20261127-000123) and an access code (shown once; only a salted hash is
stored: publishing.request_codes) identify the request to the applicant. A submission repeated
with the same idempotency key (the web form's one-time token, or the API's Idempotency-Key)
creates nothing new and gets the first one's receipt back. Anyone may file about any record,
the same applicant again too: reviewers see the other requests on a request's records
(publishing.request_queries.related_requests). The applicant adds material asked for with
`supplement`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from publishing import attachments, audit, clock, read
from publishing.attachments import Upload
from publishing.codes import normalize_code, reg_no_is_valid, uscc_problem
from publishing.commit import durable_transaction
from publishing.contract import KIND_LABELS
from publishing.notices import status_url
from publishing.request_codes import (
    code_matches,
    hash_code,
    new_access_code,
    next_number,
    tracking_number,
)
from publishing.request_config import Config, load_config
from publishing.request_deadlines import deadlines, review_counted_weekdays, review_fallback
from publishing.request_models import (
    ATTACHMENTS,
    MORE_INFO,
    OPEN_STATUSES,
    RECEIVED,
    REPAIR,
    REQUEST_RECORDS,
    REQUESTS,
    TYPES,
    add_step,
    status_label,
)
from publishing.request_queries import find
from publishing.rules import Rules, load_rules
from publishing.safetext import unusable_problem, usable

_RECORD_ID = re.compile(r"^[a-z]{2}-[0-9a-f]{16}$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[A-Za-z0-9-]{2,}$")
TRUE_VALUES = {"true", "on", "1", "yes"}
# The applicant's text fields, by the name the form and the API give them.
FIELD_LABELS = {
    "type": "申请类型",
    "uscc": "统一社会信用代码",
    "record_ids": "记录编号",
    "contact_name": "联系人姓名",
    "mobile": "手机号码",
    "email": "电子邮箱",
    "reason": "申请理由",
    "commitment": "守信承诺",
}


# -- what the applicant sends ---------------------------------------------------------------


@dataclass
class Submission:
    type: str
    uscc: str
    record_ids: list[str]
    contact_name: str
    mobile: str
    email: str = ""
    reason: str = ""
    commitment: bool | str = False
    attachments: list[Upload] = field(default_factory=list)
    channel: str = "web"  # web | api
    idem_key: str | None = None  # namespaced by the caller: "form:<nonce>", "api:<key>"


class IntakeError(ValueError):
    """What is wrong, by field: {"uscc": "统一社会信用代码校验位错误", …}."""

    def __init__(
        self, errors: dict[str, str], records: dict[str, str] | None = None, status: int = 422
    ):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors
        self.records = records or {}  # record id -> its problem
        self.status = status


@dataclass(frozen=True)
class Receipt:
    tracking_no: str
    access_code: str | None  # None on a replay whose code cannot be given again
    type: str
    status: str
    submitted_at: datetime
    review_due: date
    decision_due: date
    calendar_fallback: bool  # a deadline was counted Monday–Friday: the decision's (see deadlines)
    replayed: bool = False
    review_fallback: bool = False  # the preliminary review's was too
    attachments: int = 0  # files stored with the submission (the receipt page says how many)

    def as_json(self) -> dict[str, Any]:
        return {
            "tracking_no": self.tracking_no,
            "access_code": self.access_code,
            "type": self.type,
            "status": self.status,
            "status_label": status_label(self.type, self.status),
            "submitted_at": self.submitted_at.isoformat(),
            "review_due": self.review_due.isoformat(),
            "decision_due": self.decision_due.isoformat(),
            "calendar_fallback": self.calendar_fallback,
            "review_fallback": self.review_fallback,
            "decision_fallback": self.calendar_fallback,
            "status_url": status_url(self.tracking_no),
        }


# -- checks ---------------------------------------------------------------------------------


def join_problems(problems: list[str]) -> str:
    """Several problems of one field as one text: "；" between them, not after a "。" that
    one of them ends with ("。；")."""
    return "；".join(p.rstrip("。；;") for p in problems)


def check_code(raw: str) -> tuple[str, str | None]:
    """(normalised code, problem or None): a USCC with its check digit, or a 15-digit 注册号."""
    code = normalize_code(raw or "")
    if not code:
        return code, "请填写统一社会信用代码"
    if reg_no_is_valid(code):
        return code, None
    return code, uscc_problem(code)


def normalize_mobile(raw: str) -> str:
    digits = re.sub(r"[\s\-()()]", "", raw or "")
    return re.sub(r"^(\+?86)(?=1\d{10}$)", "", digits)


def repair_problem(rec: dict[str, Any], today: date, rules: Rules, config: Config) -> str | None:
    """Why credit repair cannot be asked for this (public) record now, or None."""
    if rec["kind"] not in config.repair_kinds:
        return (
            f"{KIND_LABELS.get(rec['kind'], rec['kind'])}信息不适用在线信用修复；"
            "如认为信息有误，请提出异议。"
        )
    never = rules.never_repairable_in(rec.get("penalty_kinds"))
    if never:
        until = rec.get("publicity_until") or "公示期满"
        return (
            f"处罚种类含“{'、'.join(never)}”，依规定不得提前信用修复，"
            f"将于公示期满（{until}）后停止公示。"
        )
    if not rec.get("repairable_from"):
        return "该记录不可提前信用修复，将于公示期满后停止公示。"
    until = rec.get("publicity_until")
    # whatever today is: on a moot record's last day of publicity (today may be its stored
    # repairable_from) a request would be accepted for a record that stops being shown that
    # night, while the record's page says only that its publicity ends
    if repair_moot(rec):  # as the form and the record's page say of such a record
        return f"该记录将于 {until} 公示期满并自动停止公示，无需申请信用修复。"
    if date.fromisoformat(rec["repairable_from"]) > today:
        return (
            f"最短公示期未满：{rec['repairable_from']} 起方可申请信用修复"
            f"（公示截止 {until or '—'}）。"
        )
    return None


def repair_moot(rec: dict[str, Any]) -> bool:
    """Whether the earliest date to ask for credit repair is not before the end of publicity:
    the record stops being published first, so there is nothing to repair early."""
    start, end = rec.get("repairable_from"), rec.get("publicity_until")
    return bool(start and end) and str(start)[:10] >= str(end)[:10]


def open_requests_for(
    conn: Connection, record_ids: list[str], type_: str | None = None
) -> set[str]:
    """Those of the records that an open request (of the type) already concerns: the form
    tells anyone this, as the record's page tells an objection is being handled."""
    if not record_ids:
        return set()
    conds = [REQUEST_RECORDS.c.record_id.in_(record_ids), REQUESTS.c.status.in_(OPEN_STATUSES)]
    if type_:
        conds.append(REQUESTS.c.type == type_)
    rows = conn.execute(
        select(REQUEST_RECORDS.c.record_id)
        .join(REQUESTS, REQUESTS.c.id == REQUEST_RECORDS.c.request_id)
        .where(*conds)
    )
    return set(rows.scalars())


def record_choices(
    conn: Connection, entity_ids: str | list[str], today: date | None = None
) -> list[dict[str, Any]]:
    """The published records of the entity (or of the ids of its company: read.company_of),
    each with what repair and objection would say (the form shows this before anything is
    submitted)."""
    today = today or clock.today()
    rules, config = load_rules(), load_config()
    recs = read.entity_records(conn, entity_ids, today, limit=None)  # every record is choosable
    busy = {t: open_requests_for(conn, [r["id"] for r in recs], t) for t in TYPES}
    out = []
    for rec in recs:
        problem = repair_problem(rec, today, rules, config)
        out.append(
            {
                "record": rec,
                "repair_ok": problem is None,
                "repair_problem": problem,
                "open": {t: rec["id"] in busy[t] for t in TYPES},
            }
        )
    return out


@dataclass
class _Clean:
    type: str
    entity: dict[str, Any]
    records: list[dict[str, Any]]
    contact_name: str
    mobile: str
    email: str | None
    reason: str
    commitment: bool
    uploads: list[Upload]


def validate(
    conn: Connection,
    sub: Submission,
    today: date,
    config: Config | None = None,
    rules: Rules | None = None,
) -> _Clean:
    """Every check, every field: raises IntakeError listing all that is wrong."""
    config, rules = config or load_config(), rules or load_rules()
    # A field with an UNUSABLE character is checked no further (nor looked up): it is blanked
    # for the other checks, and its own problem replaces what they say of it at the end.
    unusable = {
        name: unusable_problem(label)
        for name, label in FIELD_LABELS.items()
        if not usable(getattr(sub, name))
    }
    if unusable:
        blank = {name: [] if name == "record_ids" else "" for name in unusable}
        sub = dataclasses.replace(sub, **blank)
    errors: dict[str, str] = {}
    record_problems: dict[str, str] = {}
    type_ = (sub.type or "").strip()
    if type_ not in TYPES:
        errors["type"] = "请选择申请类型：异议或信用修复"
    code, problem = check_code(sub.uscc)
    entity = None
    company_ids: list[str] = []
    if problem:
        errors["uscc"] = problem
    else:
        # Either code of a company published under two ids: its records under both are its own.
        company = read.company_of(conn, code, today)
        if company is None:
            errors["uscc"] = no_entity(code)
        else:
            entity, company_ids = company
    ids = list(dict.fromkeys(r.strip() for r in sub.record_ids if r and r.strip()))
    mobile = normalize_mobile(sub.mobile)
    email = (sub.email or "").strip() or None
    records: list[dict[str, Any]] = []
    if not ids:
        errors["record_ids"] = "请选择申请涉及的公示记录"
    elif len(ids) > config.max_records:
        errors["record_ids"] = f"一次申请最多涉及 {config.max_records} 条记录"
    else:
        records = _check_records(
            conn,
            ids,
            code if entity else None,
            company_ids,
            type_,
            today,
            rules,
            config,
            errors,
            record_problems,
        )
    name = " ".join((sub.contact_name or "").split())
    if not name:
        errors["contact_name"] = "请填写联系人姓名"
    elif len(name) > 50:
        errors["contact_name"] = "联系人姓名不超过50个字"
    if not mobile:
        errors["mobile"] = "请填写联系人手机号码"
    elif not _MOBILE.fullmatch(mobile):
        errors["mobile"] = "手机号码应为11位数字，以1开头（如 13912345678）"
    if email and (len(email) > 254 or not _EMAIL.fullmatch(email)):
        errors["email"] = "电子邮箱格式不正确（如 name@example.com）"
    reason = (sub.reason or "").strip()
    if len(reason) < 10:
        errors["reason"] = "请说明申请理由（至少10个字）"
    elif len(reason) > 5000:
        errors["reason"] = "申请理由不超过5000字"
    commitment = str(sub.commitment).strip().lower() in TRUE_VALUES
    if type_ == REPAIR and not commitment:
        errors["commitment"] = "申请信用修复须阅读并勾选守信承诺"
    uploads = [u for u in sub.attachments if u.filename or _has_content(u)]
    file_problems = []
    if len(uploads) > config.max_files:
        file_problems.append(f"最多上传 {config.max_files} 个文件，收到 {len(uploads)} 个")
    else:
        file_problems = [p for u in uploads if (p := attachments.inspect(u, config.max_bytes))]
    if not uploads and type_ == REPAIR and config.repair_requires_attachment:
        file_problems.append("申请信用修复须上传已纠正失信行为的证明材料（PDF、JPG 或 PNG）")
    if file_problems:
        errors["attachments"] = join_problems(file_problems)
    errors.update(unusable)
    if errors:
        raise IntakeError(errors, record_problems)
    assert entity is not None
    return _Clean(type_, entity, records, name, mobile, email, reason, commitment, uploads)


def _has_content(upload: Upload) -> bool:
    upload.stream.seek(0, 2)
    size = upload.stream.tell()
    upload.stream.seek(0)
    return size > 0


def _check_records(conn, ids, code, company_ids, type_, today, rules, config, errors, problems):
    # No open request blocks a record, not even the same applicant's: anyone may file about any
    # record, so a stranger's (perhaps bogus) request must not shut the enterprise out, and a
    # refusal of "your own duplicate" told anyone whether a guessed mobile had filed about the
    # record (and let them pre-file with it to block its owner). Reviewers see the other
    # requests on the same records, those with the same contact marked (related_requests); a
    # form sent twice is one request (its idempotency key).
    records = []
    for rid in ids:
        rec = read.record(conn, rid) if _RECORD_ID.fullmatch(rid) else None
        if rec is None or not read.is_visible(rec, today):
            problems[rid] = no_record(rid)
        elif code and rec["entity_id"] not in company_ids:
            errors["uscc"] = (
                f"统一社会信用代码 {code} 与所选记录的当事主体不一致："
                f"记录 {rid} 属于{rec.get('entity_name') or '其他主体'}"
            )
            problems[rid] = "该记录不属于所填统一社会信用代码的主体"
        elif type_ == REPAIR and (why := repair_problem(rec, today, rules, config)):
            problems[rid] = why
        else:
            records.append(rec)
    if problems:
        errors.setdefault("record_ids", join_problems(list(problems.values())))
    return records


def no_entity(code: str) -> str:
    """What an unknown entity is told, and one that is no longer published (the same words)."""
    return f"本系统没有统一社会信用代码为 {code} 的主体的公示信息"


def no_record(record_id: str) -> str:
    """What an unknown record id is told, and a record no longer published: the same words, so
    the answer never shows that a record existed (nothing about it is public any more)."""
    return f"没有编号为 {record_id} 的公示中的记录（已停止公示的记录无需申请）"


# -- storing ----------------------------------------------------------------------------------


def _key_hash(idem_key: str) -> str:
    return hashlib.sha256(("idem:" + idem_key).encode()).hexdigest()


def _payload_hash(sub: Submission, config: Config) -> str:
    """A fingerprint of what was sent (normalised), to tell a repeat from a different request."""
    shas = []
    for upload in sub.attachments:
        if upload.filename or _has_content(upload):
            if not upload.sha256:
                attachments.inspect(upload, config.max_bytes)
            shas.append(upload.sha256 or "?")
    body = {
        "type": (sub.type or "").strip(),
        "entity": check_code(sub.uscc)[0],
        "records": sorted({r.strip() for r in sub.record_ids if r and r.strip()}),
        "name": " ".join((sub.contact_name or "").split()),
        "mobile": normalize_mobile(sub.mobile),
        "email": (sub.email or "").strip() or None,
        "reason": (sub.reason or "").strip(),
        "commitment": str(sub.commitment).strip().lower() in TRUE_VALUES,
        "files": sorted(shas),
    }
    text = json.dumps(body, ensure_ascii=False, sort_keys=True)
    # surrogatepass: a lone surrogate is refused by validate (UNUSABLE), not a crash here first
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def mask_mobile(mobile: str) -> str:
    return mobile[:3] + "****" + mobile[-4:] if len(mobile) == 11 else "****"


def submit(
    engine: Engine,
    sub: Submission,
    *,
    now: datetime | None = None,
    attachments_dir: Path | None = None,
) -> Receipt:
    """Check, store durably, and return the receipt (IntakeError when anything is wrong)."""
    from publishing.settings import get_settings

    now = now or clock.now()
    today = clock.beijing_date(now)
    folder = attachments_dir or get_settings().attachments_dir
    config = load_config()
    with engine.connect() as conn:
        payload = None
        if sub.idem_key:  # a repeat of a stored submission is answered before any other check
            payload = _payload_hash(sub, config)
            earlier = _replay(conn, sub.idem_key, payload)
            if earlier:
                return earlier
        clean = validate(conn, sub, today, config)
        payload = payload or _payload_hash(sub, config)
    stored: list[str] = []
    try:
        for upload in clean.uploads:
            stored.append(attachments.store(upload, folder))
        receipt = _commit(engine, sub, clean, payload, stored, now, today)
        if receipt.replayed:  # a twin with the same key committed first: ours are not needed
            attachments.remove(folder, stored)
        return receipt
    except IntegrityError:
        attachments.remove(folder, stored)
        if sub.idem_key:  # the same submission, committed a moment ago by a twin request
            with engine.connect() as conn:
                earlier = _replay(conn, sub.idem_key, payload)
            if earlier:
                return earlier
        raise
    except BaseException:
        attachments.remove(folder, stored)
        raise


def _replay(conn: Connection, idem_key: str, payload: str) -> Receipt | None:
    row = conn.execute(select(REQUESTS).where(REQUESTS.c.idem_key == _key_hash(idem_key))).first()
    if row is None:
        return None
    if row.payload_hash != payload:
        raise IntakeError(
            {
                "idempotency_key": "该表单（或 Idempotency-Key）已用于提交另一份申请；"
                "如需提交新的申请，请重新打开申请页面（或使用新的 Idempotency-Key）"
            },
            status=409,
        )
    code = new_access_code(idem_key)
    return Receipt(
        row.tracking_no,
        code if code_matches(row.access_hash, code) else None,
        row.type,
        row.status,
        row.submitted_at,
        row.review_due,
        row.decision_due,
        row.calendar_fallback,
        replayed=True,
        review_fallback=review_fallback(conn, row._mapping),
        attachments=_submitted_files(conn, row.id),
    )


def _submitted_files(conn: Connection, request_id: int) -> int:
    query = select(func.count()).where(
        ATTACHMENTS.c.request_id == request_id, ATTACHMENTS.c.stage == "submission"
    )
    return int(conn.execute(query).scalar_one())


def _commit(engine, sub, clean: _Clean, payload, stored, now, today) -> Receipt:
    review_due, decision_due, fallback = deadlines(clean.type, today)
    code = new_access_code(sub.idem_key)
    with durable_transaction(engine) as conn:
        # A twin with the same key committed while we validated: its receipt. One still
        # committing now is stopped by the key's unique index (IntegrityError, see submit).
        if sub.idem_key:
            earlier = _replay(conn, sub.idem_key, payload)
            if earlier:
                return earlier
        # The day's counter and the audit chain serialise submissions: both come last, so the
        # locks are held only for the few statements before the commit.
        row = {
            "tracking_no": "pending-" + secrets.token_hex(8),
            "type": clean.type,
            "status": RECEIVED,
            "entity_id": clean.entity["id"],
            "entity_name": clean.entity["name"],
            "record_ids": [r["id"] for r in clean.records],
            "contact_name": clean.contact_name,
            "mobile": clean.mobile,
            "email": clean.email,
            "reason": clean.reason,
            "commitment": clean.commitment,
            "channel": sub.channel,
            "access_hash": hash_code(code),
            "idem_key": _key_hash(sub.idem_key) if sub.idem_key else None,
            "payload_hash": payload,
            "submitted_at": now,
            "submitted_on": today,
            "review_due": review_due,
            "decision_due": decision_due,
            "calendar_fallback": fallback,
            "updated_at": now,
        }
        request_id = conn.execute(insert(REQUESTS).values(**row)).inserted_primary_key[0]
        conn.execute(
            insert(REQUEST_RECORDS),
            [
                {
                    "request_id": request_id,
                    "record_id": r["id"],
                    "kind": r["kind"],
                    "entity_id": r["entity_id"],
                }
                for r in clean.records
            ],
        )
        files = _attachment_rows(request_id, clean.uploads, stored, "submission", now)
        if files:
            conn.execute(insert(ATTACHMENTS), files)
        add_step(conn, request_id, at=now, action="submitted", status=RECEIVED)
        tracking = tracking_number(today, next_number(conn, today))
        conn.execute(
            update(REQUESTS).where(REQUESTS.c.id == request_id).values(tracking_no=tracking)
        )
        audit.append(
            conn,
            actor=f"applicant:{sub.channel}",
            action="request.submit",
            target_type="request",
            target_id=tracking,
            at=now,
            after={
                "type": clean.type,
                "entity_id": clean.entity["id"],
                "record_ids": row["record_ids"],
                # no name, no free text: the audit log can never be pruned, the request row is
                # (request_retention); the masked mobile ties the entry to the applicant
                "mobile": mask_mobile(clean.mobile),
                "commitment": clean.commitment,
                "attachments": [
                    {"sha256": f["sha256"], "size": f["size"], "media_type": f["media_type"]}
                    for f in files
                ],
                "review_due": review_due,
                "decision_due": decision_due,
            },
        )
    return Receipt(
        tracking, code, clean.type, RECEIVED, now, review_due, decision_due, fallback,
        review_fallback=review_counted_weekdays(row, today), attachments=len(files),
    )  # fmt: skip


def _attachment_rows(
    request_id: int, uploads: list[Upload], stored: list[str], stage: str, at: datetime
) -> list[dict[str, Any]]:
    """The ATTACHMENTS rows of uploads stored under the names `stored` (attachments.store)."""
    return [
        {
            "request_id": request_id,
            "file_name": attachments.display_name(u.filename),
            "stored_name": name,
            "media_type": u.media_type,
            "size": u.size,
            "sha256": u.sha256,
            "stage": stage,
            "uploaded_at": at,
        }
        for u, name in zip(uploads, stored, strict=True)
    ]


# -- supplementing material (status more_info) ------------------------------------------------


def changed_meanwhile(type_: str, status: str | None) -> IntakeError:
    """The answer (409) to a supplement for a request no longer waiting for one: it was decided
    or otherwise handled after the applicant's page was shown. Nothing of it is kept."""
    now = f"（当前状态：“{status_label(type_, status)}”）" if status else ""
    return IntakeError(
        {
            "status": f"该申请在您打开本页后已有变化{now}，本次补正材料未保存；"
            "请以本页显示的最新办理进度为准，如需补正请重新查询办理进度后再提交。"
        },
        status=409,
    )


def supplement(
    engine: Engine,
    tracking_no: str,
    access_code: str,
    note: str,
    uploads: list[Upload],
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The applicant adds material asked for; the deadlines count again from today."""
    from publishing.settings import get_settings

    now = now or clock.now()
    today = clock.beijing_date(now)
    config = load_config()
    folder = get_settings().attachments_dir
    errors: dict[str, str] = {}
    uploads = [u for u in uploads if u.filename or _has_content(u)]
    note = (note or "").strip()
    if not uploads and not note:
        errors["attachments"] = "请上传补正材料或填写说明"
    if not usable(note):
        errors["note"] = unusable_problem("说明")
    elif len(note) > 5000:
        errors["note"] = "说明不超过5000字"
    if len(uploads) > config.max_files:
        errors["attachments"] = f"最多上传 {config.max_files} 个文件"
    elif problems := [p for u in uploads if (p := attachments.inspect(u, config.max_bytes))]:
        errors["attachments"] = join_problems(problems)
    with engine.connect() as conn:
        req = find(conn, tracking_no)
    if req is None or not code_matches(req["access_hash"], access_code):
        raise IntakeError({"code": "受理编号或查询码不正确"}, status=403)
    if req["status"] != MORE_INFO:
        raise changed_meanwhile(req["type"], req["status"])
    if errors:
        raise IntakeError(errors)
    stored: list[str] = []
    try:  # a file that fails to store (disk full) takes those stored before it with it
        for upload in uploads:
            stored.append(attachments.store(upload, folder))
        review_due, decision_due, fallback = deadlines(req["type"], today, config)
        with durable_transaction(engine) as conn:
            # The row stays locked to the commit: a decision (review.act locks it too) made
            # at the same moment waits and then sees the supplement, or comes first and the
            # supplement sees the decision here. (SQLite: the transaction is IMMEDIATE.)
            current = conn.execute(
                select(REQUESTS.c.status).where(REQUESTS.c.id == req["id"]).with_for_update()
            ).scalar()
            if current != MORE_INFO:
                raise changed_meanwhile(req["type"], current)
            values = {
                "status": RECEIVED,
                # what was asked for is answered: it stays in the steps, no longer the status's
                "decision_reason": None,
                "review_due": review_due,
                "decision_due": decision_due,
                "calendar_fallback": fallback,
                "updated_at": now,
            }
            # Only from the status read above: never over a decision made in between.
            done = conn.execute(
                update(REQUESTS)
                .where(REQUESTS.c.id == req["id"], REQUESTS.c.status == MORE_INFO)
                .values(values)
            ).rowcount
            if done != 1:
                raise changed_meanwhile(req["type"], None)
            if stored:
                conn.execute(
                    insert(ATTACHMENTS),
                    _attachment_rows(req["id"], uploads, stored, "supplement", now),
                )
            add_step(
                conn, req["id"], at=now, action="supplemented", status=RECEIVED, note=note or None
            )
            audit.append(
                conn,
                actor="applicant",
                action="request.supplement",
                target_type="request",
                target_id=tracking_no,
                at=now,
                before={"status": MORE_INFO},
                # the note is the step's (pruned with the request after its retention period):
                # the log, which is never pruned, keeps its length only
                after={**values, "note_chars": len(note or ""),
                       "attachments": [u.sha256 for u in uploads]},
            )
    except BaseException:
        attachments.remove(folder, stored)
        raise
    return {"status": RECEIVED, "review_due": review_due, "decision_due": decision_due}
