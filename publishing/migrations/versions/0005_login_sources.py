"""login lockout per (name, client address)

Revision ID: 0005_login_sources
Revises: 0004_api_keys
Create Date: 2026-11-28

Wrong passwords lock the address they come from out of the name typed (publishing/users.py);
users.failed_logins and users.locked_until become the account-wide counter and lock, which
spare the addresses the account's owner has logged in from.
"""

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision = "0005_login_sources"
down_revision = "0004_api_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_sources",
        sa.Column("name", AutoString(length=80), nullable=False),
        sa.Column("source", AutoString(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("last_failure_at", UTCDateTime(), nullable=True),
        sa.Column("last_login_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", "source"),
    )
    # the old per-account counts and locks mean something else now: start afresh
    op.execute("UPDATE users SET failed_logins = 0, locked_until = NULL")


def downgrade() -> None:
    op.drop_table("login_sources")
