"""search pending

Revision ID: 0010_search_pending
Revises: 0009_district_index_id
Create Date: 2026-11-30

search_pending (publishing.models.SearchPending): the records withdrawn without a change event
(a superseded or statistics-only mark withdrawn by a file or a snapshot, a decision on a record
already out of publication), written by the writer in the same transaction; the search sync
refreshes their records' and entities' documents, then deletes the rows. Created empty: records
so withdrawn before it are caught up by `disclosure reindex`.
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0010_search_pending"
down_revision = "0009_district_index_id"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_pending",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("record_id", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("entity_id", sqlmodel.sql.sqltypes.AutoString(length=18), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("search_pending")
