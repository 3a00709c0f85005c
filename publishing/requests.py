"""Intake of objections (异议) and credit-repair requests (信用修复).

`submit` checks everything first (fields, the entity's code and check digit, that every record
is published and belongs to that entity, repair eligibility from the rules, the attachments by
their content) and stores nothing when anything is wrong: IntakeError names each field at fault.
Otherwise the attachments are written and fsynced, then the request, its records, its first step
and its audit entry are committed in one transaction; only then does the caller say "received".

A tracking number (YX20261127-000123) and an access code (shown once; only a salted hash is
stored) identify the request to the applicant. A submission repeated with the same idempotency
key (the web form's one-time token, or the API's Idempotency-Key) creates nothing new and
gets the first one's receipt back. Anyone may file about any record, the same applicant again
too: reviewers see the other requests on a request's records (related_requests).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re
import secrets
import tomllib
import unicodedata
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, case, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from publishing import attachments, audit, clock, read, workdays
from publishing.attachments import Upload
from publishing.codes import normalize_code, reg_no_is_valid, uscc_problem
from publishing.contract import KIND_LABELS
from publishing.db import writer_connection
from publishing.request_models import (
    APPROVED,
    ATTACHMENTS,
    COUNTERS,
    DECIDED_STATUSES,
    MORE_INFO,
    OBJECTION,
    OPEN_STATUSES,
    RECEIVED,
    REJECTED,
    REPAIR,
    REQUEST_RECORDS,
    REQUESTS,
    STEPS,
    TYPES,
)
from publishing.rules import Rules, load_rules

DEFAULT_FILE = Path(__file__).parent / "data" / "requests.toml"
TYPE_LABELS = {OBJECTION: "异议", REPAIR: "信用修复"}
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
CODE_LENGTH = 10
_RECORD_ID = re.compile(r"^[a-z]{2}-[0-9a-f]{16}$")
_TRACKING = re.compile(r"^YX\d{8}-\d{6}$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[A-Za-z0-9-]{2,}$")
TRUE_VALUES = {"true", "on", "1", "yes"}
_DASHES = str.maketrans(dict.fromkeys("‐‑‒–—―−", "-"))
# What no stored text may hold: C0 controls but tab and line breaks (NUL among them, which
# PostgreSQL text cannot store), lone surrogates and U+FFFE/U+FFFF (XML 1.0, which the feeds
# are, cannot carry them). Tab and line breaks are left to each field: a reason keeps them, a
# name's are folded into spaces. portal.pages.common guards paths and queries with it too.
UNUSABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
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


# -- configuration ------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    review_days: int
    decision_days: dict[str, int]
    repair_kinds: tuple[str, ...]
    repair_requires_attachment: bool
    commitment: str
    max_files: int
    max_bytes: int
    max_records: int
    limits: dict[str, tuple[int, int]]
    lockout_failures: int  # wrong passwords in a row that lock one address out of a name
    lockout_minutes: int
    session_hours: int
    # wrong passwords from all addresses that lock the account for addresses its owner has not
    # used lately (publishing.users.login); [review] lockout_account_failures, default 10 × the above
    lockout_account_failures: int = 50


@lru_cache
def load_config(path: Path | None = None) -> Config:
    if path is None:
        from publishing.settings import get_settings

        path = get_settings().requests_file or DEFAULT_FILE
    with open(path, "rb") as fh:
        raw = tomllib.load(fh)
    dl, rp, at, lim, rv = (
        raw["deadlines"],
        raw["repair"],
        raw["attachments"],
        raw["limits"],
        raw["review"],
    )
    return Config(
        review_days=int(dl["preliminary_review"]),
        decision_days={t: int(dl["decision"][t]) for t in TYPES},
        repair_kinds=tuple(rp["kinds"]),
        repair_requires_attachment=bool(rp.get("requires_attachment", True)),
        commitment=" ".join(rp["commitment"].split()),
        max_files=int(at["max_files"]),
        max_bytes=int(at["max_bytes"]),
        max_records=int(lim.get("max_records", 20)),
        limits={k: (int(v[0]), int(v[1])) for k, v in lim.items() if isinstance(v, list)},
        lockout_failures=int(rv["lockout_failures"]),
        lockout_minutes=int(rv["lockout_minutes"]),
        session_hours=int(rv["session_hours"]),
        lockout_account_failures=int(
            rv.get("lockout_account_failures", 10 * int(rv["lockout_failures"]))
        ),
    )


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
            "status_url": f"/requests/{self.tracking_no}",
        }


def status_label(type_: str, status: str) -> str:
    if status == APPROVED:
        return "准予信用修复" if type_ == REPAIR else "异议成立，已更正或撤下"
    if status == REJECTED:
        return "不予信用修复" if type_ == REPAIR else "异议不成立"
    return {RECEIVED: "已接收，待初审", "accepted": "已受理，审核中", MORE_INFO: "需补正材料"}.get(
        status, status
    )


# -- checks ---------------------------------------------------------------------------------


def usable(value: Any) -> bool:
    """Whether a value sent as text (a string, or the strings of a parsed JSON value, keys
    too) is free of UNUSABLE characters. Walked without recursion: a deeply nested value is
    no crash either."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if UNUSABLE.search(item):
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return True


def unusable_problem(label: str) -> str:
    """What a field with an UNUSABLE character is told (nothing is stored)."""
    return f"{label}含有不允许的控制字符，请删除后重新填写"


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
    never = [k for k in rec.get("penalty_kinds") or () if k in set(rules.never_repairable_kinds())]
    if never:
        until = rec.get("publicity_until") or "公示期满"
        return (
            f"处罚种类含“{'、'.join(never)}”，依规定不得提前信用修复，"
            f"将于公示期满（{until}）后停止公示。"
        )
    if not rec.get("repairable_from"):
        return "该记录不可提前信用修复，将于公示期满后停止公示。"
    if date.fromisoformat(rec["repairable_from"]) > today:
        return (
            f"最短公示期未满：{rec['repairable_from']} 起方可申请信用修复"
            f"（公示截止 {rec.get('publicity_until') or '—'}）。"
        )
    return None


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
    conn: Connection, entity_id: str, today: date | None = None
) -> list[dict[str, Any]]:
    """The entity's published records, each with what repair and objection would say (the form
    shows this before anything is submitted)."""
    today = today or clock.today()
    rules, config = load_rules(), load_config()
    recs = read.entity_records(conn, entity_id, today, limit=None)  # every record is choosable
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
    if problem:
        errors["uscc"] = problem
    else:
        entity = read.published_entity(conn, code, today)
        if entity is None:
            errors["uscc"] = no_entity(code)
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
        errors["attachments"] = "；".join(file_problems)
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


def _check_records(conn, ids, code, type_, today, rules, config, errors, problems):
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
        elif code and rec["entity_id"] != code:
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
        errors.setdefault("record_ids", "；".join(problems.values()))
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


def _secret() -> bytes:
    from publishing.settings import get_settings

    return get_settings().secret_key.encode()


def new_access_code(idem_key: str | None = None) -> str:
    """Random; or, with an idempotency key, derived from it and the secret, so that a repeated
    submission can show the same receipt again (the code itself is never stored)."""
    if idem_key is None:
        return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    digest = hmac.new(_secret(), ("access-code:" + idem_key).encode(), hashlib.sha256).digest()
    return "".join(CODE_ALPHABET[b % len(CODE_ALPHABET)] for b in digest[:CODE_LENGTH])


def format_code(code: str) -> str:
    return f"{code[:5]}-{code[5:]}"


def normalize_tracking_no(raw: str | None) -> str:
    """A tracking number as people type it: full-width forms (Chinese input methods) and other
    dashes made ASCII, spaces dropped, letters upper-case. The lookup compares it exactly."""
    text = unicodedata.normalize("NFKC", raw or "").translate(_DASHES)
    return "".join(text.split()).upper()


def normalize_access_code(raw: str | None) -> str:
    return re.sub(r"[^0-9A-Z]", "", (raw or "").upper())


def hash_code(code: str) -> str:
    salt = secrets.token_hex(8)
    return f"sha256${salt}${hashlib.sha256((salt + code).encode()).hexdigest()}"


def code_matches(stored: str, raw: str | None) -> bool:
    code = normalize_access_code(raw)
    try:
        _, salt, digest = stored.split("$")
    except ValueError:
        return False
    return hmac.compare_digest(hashlib.sha256((salt + code).encode()).hexdigest(), digest)


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


@contextmanager
def durable_transaction(engine: Engine) -> Iterator[Connection]:
    """The one writer's connection in a transaction whose commit is on disk when it returns.

    PostgreSQL commits are synchronous already. SQLite runs in WAL mode with synchronous=NORMAL
    (a commit reaches the disk at the next checkpoint); a request we say we received, and a
    decision, must survive a power cut, so this transaction runs with synchronous=FULL."""
    with writer_connection(engine) as conn:
        raw = conn.connection.driver_connection if conn.dialect.name == "sqlite" else None
        if raw is not None:
            raw.execute("PRAGMA synchronous=FULL")
        try:
            with conn.begin():
                yield conn
        finally:
            if raw is not None:
                raw.execute("PRAGMA synchronous=NORMAL")


def _next_number(conn: Connection, day: date) -> int:
    key = day.strftime("%Y%m%d")
    ins = pg_insert(COUNTERS) if conn.dialect.name == "postgresql" else sqlite_insert(COUNTERS)
    stmt = (
        ins.values(day=key, n=1)
        .on_conflict_do_update(index_elements=[COUNTERS.c.day], set_={"n": COUNTERS.c.n + 1})
        .returning(COUNTERS.c.n)
    )
    return int(conn.execute(stmt).scalar_one())


def tracking_number(day: date, n: int) -> str:
    return f"YX{day:%Y%m%d}-{n:06d}"


def deadlines(type_: str, on: date, config: Config | None = None) -> tuple[date, date, bool]:
    """(review due, decision due, calendar_fallback). The decision's count runs through the
    review's (more working days from the same day), so the flag, "a deadline was counted
    Monday–Friday", is the decision's own; the review's is told by review_fallback."""
    config = config or load_config()
    review = workdays.add_workdays(on, config.review_days)
    decision = workdays.add_workdays(on, config.decision_days[type_])
    return review.due, decision.due, review.fallback or decision.fallback


def _review_counted_weekdays(req: Mapping[str, Any], start: date) -> bool:
    """The preliminary review's deadline was counted Monday–Friday: a deadline was (the stored
    flag), and the review's few days from `start` still reach a day without holiday data."""
    return bool(req["calendar_fallback"]) and workdays.workdays_between(start, req["review_due"])[1]


def review_fallback(conn: Connection, req: Mapping[str, Any]) -> bool:
    """Whether a request's preliminary-review deadline was counted Monday–Friday (the decision's:
    req["calendar_fallback"]). Reads the day they count from only for a flagged request."""
    if not req["calendar_fallback"]:
        return False
    return _review_counted_weekdays(req, _count_starts(conn, [req])[req["id"]])


def _count_starts(conn: Connection, reqs: Sequence[Mapping[str, Any]]) -> dict[int, date]:
    """The day each request's deadlines count from: that of its last supplement (they were
    counted again then), else that of its submission."""
    supplemented = dict(
        conn.execute(
            select(STEPS.c.request_id, func.max(STEPS.c.at))
            .where(
                STEPS.c.request_id.in_([r["id"] for r in reqs]),
                STEPS.c.action == "supplemented",
            )
            .group_by(STEPS.c.request_id)
        ).all()
    )
    return {
        r["id"]: clock.beijing_date(supplemented[r["id"]])
        if r["id"] in supplemented
        else r["submitted_on"]
        for r in reqs
    }


def recompute_provisional(engine: Engine, *, now: datetime | None = None) -> int:
    """Count again the deadlines of open requests that were counted Monday–Friday (their year's
    holiday arrangement not yet known), as the holiday data says now; returns how many changed.

    Run by the worker: once the bureau adds a year to workdays.toml (or chinese-calendar is
    upgraded), such deadlines become definitive without anyone touching the requests. Only the
    open, provisional ones are read (usually none); a deadline counts from the day of
    submission, or of the last supplement (when the deadlines were counted again)."""
    now = now or clock.now()
    config = load_config()
    with engine.connect() as conn:
        rows = (
            conn.execute(
                select(
                    REQUESTS.c.id,
                    REQUESTS.c.tracking_no,
                    REQUESTS.c.type,
                    REQUESTS.c.submitted_on,
                    REQUESTS.c.review_due,
                    REQUESTS.c.decision_due,
                ).where(
                    REQUESTS.c.status.in_(OPEN_STATUSES), REQUESTS.c.calendar_fallback.is_(True)
                )
            )
            .mappings()
            .all()
        )
        if not rows:
            return 0
        starts = _count_starts(conn, rows)
    changes = []
    for r in rows:
        review_due, decision_due, fallback = deadlines(r["type"], starts[r["id"]], config)
        if (review_due, decision_due, fallback) != (r["review_due"], r["decision_due"], True):
            changes.append((r, review_due, decision_due, fallback))
    if not changes:
        return 0
    changed = 0
    with durable_transaction(engine) as conn:
        for r, review_due, decision_due, fallback in changes:
            # only if nothing else changed the deadlines meanwhile (a supplement, a decision)
            done = conn.execute(
                update(REQUESTS)
                .where(
                    REQUESTS.c.id == r["id"],
                    REQUESTS.c.status.in_(OPEN_STATUSES),
                    REQUESTS.c.calendar_fallback.is_(True),
                    REQUESTS.c.review_due == r["review_due"],
                    REQUESTS.c.decision_due == r["decision_due"],
                )
                .values(
                    review_due=review_due,
                    decision_due=decision_due,
                    calendar_fallback=fallback,
                    updated_at=now,
                )
            ).rowcount
            if not done:
                continue
            changed += 1
            audit.append(
                conn,
                actor="worker",
                action="request.deadlines",
                target_type="request",
                target_id=r["tracking_no"],
                at=now,
                before={
                    "review_due": r["review_due"],
                    "decision_due": r["decision_due"],
                    "calendar_fallback": True,
                },
                after={
                    "review_due": review_due,
                    "decision_due": decision_due,
                    "calendar_fallback": fallback,
                },
            )
    return changed


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
    )


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
        files = [
            {
                "request_id": request_id,
                "file_name": attachments.display_name(u.filename),
                "stored_name": name,
                "media_type": u.media_type,
                "size": u.size,
                "sha256": u.sha256,
                "stage": "submission",
                "uploaded_at": now,
            }
            for u, name in zip(clean.uploads, stored, strict=True)
        ]
        if files:
            conn.execute(insert(ATTACHMENTS), files)
        conn.execute(
            insert(STEPS).values(
                request_id=request_id, at=now, action="submitted", status=RECEIVED, note=None
            )
        )
        tracking = tracking_number(today, _next_number(conn, today))
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
                "contact_name": clean.contact_name,
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
        review_fallback=_review_counted_weekdays(row, today),
    )  # fmt: skip


def send_confirmation(engine: Engine, tracking_no: str) -> bool:
    """E-mail the applicant that the request was received (when SMTP and an address exist)."""
    from publishing import mail
    from publishing.settings import get_settings

    settings = get_settings()
    if not settings.smtp_url:
        return False
    with engine.connect() as conn:
        req = find(conn, tracking_no)
        review_weekdays = bool(req) and review_fallback(conn, req)
    if not req or not req.get("email"):
        return False
    url = f"{settings.base_url.rstrip('/')}/requests/{tracking_no}"
    note = "（按周一至周五推算，以实际节假日安排为准）"
    review_note = note if review_weekdays else ""
    decision_note = note if req["calendar_fallback"] else ""
    # A fixed greeting: nothing the applicant typed goes into the bureau's mail (else anyone
    # could have it send their text to any address).
    body = (
        f"您好：\n\n我们已收到{req['entity_name']}的{TYPE_LABELS[req['type']]}申请。\n"
        f"受理编号：{tracking_no}\n初审期限：{req['review_due']}{review_note}\n"
        f"办理期限：{req['decision_due']}{decision_note}"
        f"\n\n凭受理编号和提交时显示的查询码查看进度：{url}\n"
        "（为安全起见，本邮件不含查询码。）\n\n烟台市市场监督管理局"
    )
    return mail.send(req["email"], f"【信用信息公示】已收到您的申请 {tracking_no}", body)


# -- supplementing material (status more_info) ------------------------------------------------


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
        errors["attachments"] = ";".join(problems)
    with engine.connect() as conn:
        req = find(conn, tracking_no)
    if req is None or not code_matches(req["access_hash"], access_code):
        raise IntakeError({"code": "受理编号或查询码不正确"}, status=403)
    if req["status"] != MORE_INFO:
        raise IntakeError({"status": "该申请当前不需要补正材料"}, status=409)
    if errors:
        raise IntakeError(errors)
    stored = [attachments.store(u, folder) for u in uploads]
    try:
        review_due, decision_due, fallback = deadlines(req["type"], today, config)
        with durable_transaction(engine) as conn:
            current = conn.execute(
                select(REQUESTS.c.status).where(REQUESTS.c.id == req["id"])
            ).scalar()
            if current != MORE_INFO:
                raise IntakeError({"status": "该申请当前不需要补正材料"}, status=409)
            values = {
                "status": RECEIVED,
                "review_due": review_due,
                "decision_due": decision_due,
                "calendar_fallback": fallback,
                "updated_at": now,
            }
            conn.execute(REQUESTS.update().where(REQUESTS.c.id == req["id"]).values(values))
            if stored:
                conn.execute(
                    insert(ATTACHMENTS),
                    [
                        {
                            "request_id": req["id"],
                            "file_name": attachments.display_name(u.filename),
                            "stored_name": name,
                            "media_type": u.media_type,
                            "size": u.size,
                            "sha256": u.sha256,
                            "stage": "supplement",
                            "uploaded_at": now,
                        }
                        for u, name in zip(uploads, stored, strict=True)
                    ],
                )
            conn.execute(
                insert(STEPS).values(
                    request_id=req["id"],
                    at=now,
                    action="supplemented",
                    status=RECEIVED,
                    note=note or None,
                )
            )
            audit.append(
                conn,
                actor="applicant",
                action="request.supplement",
                target_type="request",
                target_id=tracking_no,
                at=now,
                before={"status": MORE_INFO},
                after={**values, "note": note, "attachments": [u.sha256 for u in uploads]},
            )
    except BaseException:
        attachments.remove(folder, stored)
        raise
    return {"status": RECEIVED, "review_due": review_due, "decision_due": decision_due}


# -- reading ------------------------------------------------------------------------------------


def valid_tracking_no(value: str) -> bool:
    return bool(_TRACKING.fullmatch(value or ""))


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


def due_date(req: dict[str, Any]) -> date:
    """The next deadline: preliminary review while received, else the decision."""
    return req["review_due"] if req["status"] == RECEIVED else req["decision_due"]


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
    starts = _count_starts(conn, flagged) if flagged else {}
    out = []
    for req in rows:
        due = due_date(req)
        req.update(
            due=due,
            review_fallback=req["id"] in starts
            and _review_counted_weekdays(req, starts[req["id"]]),
            decision_fallback=req["calendar_fallback"],
            overdue=req["status"] in OPEN_STATUSES and due < today,
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
