"""objections and credit repair: requests, users, API tokens, audit log

Revision ID: 0003_requests
Revises: 0002
Create Date: 2026-11-27

The audit log is append-only in the database too: triggers refuse UPDATE and DELETE on it
(tampering then needs the triggers dropped first, and the hash chain still shows it).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision = "0003_requests"
down_revision = "0002"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _id() -> sa.Column:
    return sa.Column("id", SEQ, autoincrement=True, nullable=False)


def _request_fk() -> sa.Column:
    return sa.Column("request_id", SEQ, sa.ForeignKey("requests.id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "requests",
        _id(),
        sa.Column("tracking_no", AutoString(length=24), nullable=False),
        sa.Column("type", AutoString(length=12), nullable=False),
        sa.Column("status", AutoString(length=12), nullable=False),
        sa.Column("entity_id", AutoString(length=18), nullable=False),
        sa.Column("entity_name", AutoString(), nullable=False),
        sa.Column("record_ids", JSONT, nullable=True),
        sa.Column("contact_name", AutoString(), nullable=False),
        sa.Column("mobile", AutoString(length=20), nullable=False),
        sa.Column("email", AutoString(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("commitment", sa.Boolean(), nullable=False),
        sa.Column("channel", AutoString(length=8), nullable=False),
        sa.Column("access_hash", AutoString(length=100), nullable=False),
        sa.Column("idem_key", AutoString(length=64), nullable=True),
        sa.Column("payload_hash", AutoString(length=64), nullable=False),
        sa.Column("submitted_at", UTCDateTime(), nullable=False),
        sa.Column("submitted_on", sa.Date(), nullable=False),
        sa.Column("review_due", sa.Date(), nullable=False),
        sa.Column("decision_due", sa.Date(), nullable=False),
        sa.Column("calendar_fallback", sa.Boolean(), nullable=False),
        sa.Column("accepted_at", UTCDateTime(), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decision", AutoString(length=8), nullable=True),
        sa.Column("outcome", AutoString(length=8), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("decided_by", AutoString(), nullable=True),
        sa.Column("decision_workdays", sa.Integer(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idem_key"),
        sa.UniqueConstraint("tracking_no"),
    )
    op.create_index("ix_requests_entity_open", "requests", ["entity_id", "type", "status"])
    op.create_index("ix_requests_status_due", "requests", ["status", "decision_due"])

    op.create_table(
        "request_records",
        sa.Column("request_id", SEQ, sa.ForeignKey("requests.id"), nullable=False),
        sa.Column("record_id", AutoString(length=24), nullable=False),
        sa.Column("kind", AutoString(length=16), nullable=False),
        sa.Column("entity_id", AutoString(length=18), nullable=False),
        sa.PrimaryKeyConstraint("request_id", "record_id"),
    )
    op.create_index("ix_request_records_record", "request_records", ["record_id"])

    op.create_table(
        "request_attachments",
        _id(),
        _request_fk(),
        sa.Column("file_name", AutoString(), nullable=False),
        sa.Column("stored_name", AutoString(length=80), nullable=False),
        sa.Column("media_type", AutoString(length=40), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", AutoString(length=64), nullable=False),
        sa.Column("stage", AutoString(length=12), nullable=False),
        sa.Column("uploaded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stored_name"),
    )
    op.create_index("ix_request_attachments_request_id", "request_attachments", ["request_id"])

    op.create_table(
        "request_steps",
        _id(),
        _request_fk(),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("action", AutoString(length=16), nullable=False),
        sa.Column("status", AutoString(length=12), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_request_steps_request_id", "request_steps", ["request_id"])

    op.create_table(
        "request_counters",
        sa.Column("day", AutoString(length=8), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", AutoString(length=64), nullable=False),
        sa.Column("password_hash", AutoString(), nullable=False),
        sa.Column("role", AutoString(length=12), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("session_epoch", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("last_login_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("token_hash", AutoString(length=64), nullable=False),
        sa.Column("hint", AutoString(length=12), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])

    op.create_table(
        "audit_log",
        sa.Column("n", SEQ, autoincrement=False, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", AutoString(length=80), nullable=False),
        sa.Column("action", AutoString(length=40), nullable=False),
        sa.Column("target_type", AutoString(length=20), nullable=False),
        sa.Column("target_id", AutoString(length=40), nullable=True),
        sa.Column("before", JSONT, nullable=True),
        sa.Column("after", JSONT, nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("n"),
        sa.UniqueConstraint("hash"),
    )
    op.create_index("ix_audit_target", "audit_log", ["target_type", "target_id"])
    if op.get_bind().dialect.name == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )
    else:
        op.execute(
            "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    for table in (
        "audit_log",
        "api_tokens",
        "users",
        "request_counters",
        "request_steps",
        "request_attachments",
        "request_records",
        "requests",
    ):
        op.drop_table(table)
