"""key the audit log's hash chain

Revision ID: 0006_audit_keyed
Revises: 0005_login_sources
Create Date: 2026-11-29

Audit entries were hashed with plain SHA-256, which anyone with the database can compute again;
from now on they are HMAC-SHA256 with a key derived from DISCLOSURE_AUDIT_KEY (default:
DISCLOSURE_SECRET_KEY), see publishing/audit.py. No schema change: one keyed entry
(`audit.keyed`) is appended after the unkeyed ones, which then verify as the chain's beginning.
"""

from alembic import op

revision = "0006_audit_keyed"
down_revision = "0005_login_sources"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from publishing import audit

    audit.seal_unkeyed(op.get_bind())


def downgrade() -> None:
    pass  # the audit log is append-only: the keyed entry stays (older code cannot verify it)
