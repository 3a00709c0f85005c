"""api keys

Revision ID: 0004_api_keys
Revises: 0003_requests
Create Date: 2026-11-27

Optional API keys (publishing/apikeys.py): only the SHA-256 of a key is stored.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_api_keys"
down_revision = "0003_requests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("per_minute", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
