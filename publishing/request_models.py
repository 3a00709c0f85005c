"""Tables of objections (异议) and credit repair (信用修复): requests, the records they concern,
their attachments and steps, the back office's users and API tokens, and the audit log; with the
request types' and statuses' names and labels, and add_step, the one way a step is recorded.

None of these is public data: the portal shows a request only to whoever holds its access code,
and the public figures (publishing.request_queries.public_figures) are counts.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, Connection, ForeignKey, Index, Integer, String, Text, insert
from sqlmodel import Field, SQLModel

from publishing.models import JSONType, SeqType

# Request types and statuses.
OBJECTION, REPAIR = "objection", "repair"
TYPES = (OBJECTION, REPAIR)
RECEIVED, ACCEPTED, MORE_INFO, APPROVED, REJECTED = (
    "received",
    "accepted",
    "more_info",
    "approved",
    "rejected",
)
OPEN_STATUSES = (RECEIVED, ACCEPTED, MORE_INFO)
DECIDED_STATUSES = (APPROVED, REJECTED)
TYPE_LABELS = {OBJECTION: "异议", REPAIR: "信用修复"}


def status_label(type_: str, status: str) -> str:
    if status == APPROVED:
        return "准予信用修复" if type_ == REPAIR else "异议成立，已更正或撤下"
    if status == REJECTED:
        return "不予信用修复" if type_ == REPAIR else "异议不成立"
    return {RECEIVED: "已接收，待初审", "accepted": "已受理，审核中", MORE_INFO: "需补正材料"}.get(
        status, status
    )


class ReviewRequest(SQLModel, table=True):
    __tablename__ = "requests"
    __table_args__ = (
        Index("ix_requests_status_due", "status", "decision_due"),
        Index("ix_requests_entity_open", "entity_id", "type", "status"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(SeqType, primary_key=True, autoincrement=True)
    )
    tracking_no: str = Field(max_length=24, unique=True)
    type: str = Field(max_length=12)
    status: str = Field(max_length=12)
    entity_id: str = Field(max_length=18)
    entity_name: str
    record_ids: list[str] = Field(default_factory=list, sa_column=Column(JSONType))
    contact_name: str
    mobile: str = Field(max_length=20)
    email: str | None = None
    reason: str = Field(sa_column=Column(Text, nullable=False))
    commitment: bool = False
    channel: str = Field(max_length=8)  # web | api
    access_hash: str = Field(max_length=100)
    idem_key: str | None = Field(default=None, max_length=64, unique=True)
    payload_hash: str = Field(max_length=64)
    submitted_at: datetime
    submitted_on: date  # Beijing date: the working-day deadlines count from it
    review_due: date
    decision_due: date
    calendar_fallback: bool = False  # a deadline was counted Monday–Friday (no holiday data)
    accepted_at: datetime | None = None
    decided_at: datetime | None = None
    decision: str | None = Field(default=None, max_length=8)  # approve | reject
    outcome: str | None = Field(default=None, max_length=8)  # withdraw | correct
    decision_reason: str | None = Field(default=None, sa_column=Column(Text))
    decided_by: str | None = None
    decision_workdays: int | None = None
    updated_at: datetime


class RequestRecord(SQLModel, table=True):
    __tablename__ = "request_records"
    __table_args__ = (Index("ix_request_records_record", "record_id"),)

    request_id: int = Field(sa_column=Column(SeqType, ForeignKey("requests.id"), primary_key=True))
    record_id: str = Field(primary_key=True, max_length=24)
    kind: str = Field(max_length=16)
    entity_id: str = Field(max_length=18)


class RequestAttachment(SQLModel, table=True):
    __tablename__ = "request_attachments"

    id: int | None = Field(
        default=None, sa_column=Column(SeqType, primary_key=True, autoincrement=True)
    )
    request_id: int = Field(
        sa_column=Column(SeqType, ForeignKey("requests.id"), nullable=False, index=True)
    )
    file_name: str  # as the applicant named it (shown to reviewers only)
    stored_name: str = Field(max_length=80, unique=True)  # random, under settings.attachments_dir
    media_type: str = Field(max_length=40)
    size: int
    sha256: str = Field(max_length=64)
    stage: str = Field(default="submission", max_length=12)  # submission | supplement
    uploaded_at: datetime


class RequestStep(SQLModel, table=True):
    """What happened to a request, as the applicant sees it (who did it is in the audit log)."""

    __tablename__ = "request_steps"

    id: int | None = Field(
        default=None, sa_column=Column(SeqType, primary_key=True, autoincrement=True)
    )
    request_id: int = Field(
        sa_column=Column(SeqType, ForeignKey("requests.id"), nullable=False, index=True)
    )
    at: datetime
    action: str = Field(
        max_length=16
    )  # submitted accepted more_info supplemented approved rejected
    status: str = Field(max_length=12)  # status after the step
    note: str | None = Field(default=None, sa_column=Column(Text))


class RequestCounter(SQLModel, table=True):
    """Tracking numbers: one counter per Beijing day (YX20261127-000123)."""

    __tablename__ = "request_counters"

    day: str = Field(primary_key=True, max_length=8)
    n: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    password_hash: str
    role: str = Field(max_length=12)
    active: bool = True
    failed_logins: int = 0  # wrong passwords from any address since the last good login
    locked_until: datetime | None = None  # locked for addresses not used by the owner lately
    session_epoch: int = 0  # bumped on logout and password change: older sessions end
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None = None


class LoginSource(SQLModel, table=True):
    """Logins by (name as typed, client address; the name as a keyed hash, users.login_key:
    a password typed into the name field is not kept): wrong passwords in a row from one address lock
    that address out of that name only, and a good login marks an address its owner uses
    (publishing.users.login). Kept for unknown names too, so that a lock says nothing about
    which names exist; the worker forgets old rows."""

    __tablename__ = "login_sources"

    name: str = Field(primary_key=True, max_length=80)
    source: str = Field(primary_key=True, max_length=64)  # an IPv4 address, or an IPv6 /64
    failures: int = 0  # wrong passwords in a row; while locked: attempts the lock refused
    locked_until: datetime | None = None
    last_failure_at: datetime | None = None
    last_login_at: datetime | None = None


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)  # sha256 of the token (never stored)
    hint: str = Field(max_length=12)  # the token's first characters, to tell tokens apart
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class AuditEntry(SQLModel, table=True):
    """Append-only and hash-chained: hash = sha256(prev_hash + canonical JSON of the entry)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_target", "target_type", "target_id"),)

    n: int = Field(sa_column=Column(SeqType, primary_key=True, autoincrement=False))
    at: datetime
    actor: str = Field(max_length=80)
    action: str = Field(max_length=40)
    target_type: str = Field(max_length=20)
    target_id: str | None = Field(default=None, max_length=40)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType))
    prev_hash: str = Field(sa_column=Column(String(64), nullable=False))
    hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))


REQUESTS = ReviewRequest.__table__
REQUEST_RECORDS = RequestRecord.__table__
ATTACHMENTS = RequestAttachment.__table__
STEPS = RequestStep.__table__
COUNTERS = RequestCounter.__table__
USERS = User.__table__
LOGIN_SOURCES = LoginSource.__table__
TOKENS = ApiToken.__table__
AUDIT = AuditEntry.__table__


def add_step(
    conn: Connection,
    request_id: int,
    *,
    at: datetime,
    action: str,
    status: str,
    note: str | None = None,
) -> None:
    """Append a step to a request's history (RequestStep), in the caller's transaction."""
    conn.execute(
        insert(STEPS).values(request_id=request_id, at=at, action=action, status=status, note=note)
    )
