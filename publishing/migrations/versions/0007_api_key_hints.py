"""api key hints

Revision ID: 0007_api_key_hints
Revises: 0006_audit_keyed
Create Date: 2026-11-28

Each API key's first characters (publishing/apikeys.py HINT_LENGTH), so that `disclosure apikeys
list` can show them and `apikeys revoke NAME --prefix P` can revoke one key of a holder. Keys
made before this have none (only their hash is kept): they are listed as such and can be revoked
by the whole key or with all of the holder's keys.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_api_key_hints"
down_revision = "0006_audit_keyed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("hint", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("hint")
