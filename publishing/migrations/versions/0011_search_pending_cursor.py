"""search pending cursor

Revision ID: 0011_search_pending_cursor
Revises: 0010_search_pending
Create Date: 2026-12-01

search_pending is read by every search index from a cursor of its own (sync_cursors
"search-pending:<backend>") instead of being deleted by the first one to apply it; a row goes
once every index has it, or when older than an index can lag (publishing.search.sync). Hence:
- created_at, set by the database (the rows already there get the time of the upgrade, and an
  older release's writer, which leaves it out, still writes);
- on SQLite the table becomes AUTOINCREMENT, so that an id is never issued again after the
  newest rows were deleted (a cursor past it would skip the new row); PostgreSQL's identity
  never reuses one.
The rows already there are read by every index (no cursor yet: from the start).
"""

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import UTCDateTime

revision = "0011_search_pending_cursor"
down_revision = "0010_search_pending"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite: one copy of the table, AUTOINCREMENT and the new column together (its ALTER TABLE
    # can add neither); PostgreSQL: a plain ALTER (a copy would leave the identity behind).
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table(
        "search_pending",
        recreate="always" if sqlite else "never",
        table_kwargs={"sqlite_autoincrement": True},
    ) as batch:
        batch.add_column(
            sa.Column(
                "created_at",
                UTCDateTime(),
                nullable=False,
                server_default=sa.text("CURRENT_TIMESTAMP"),
            )
        )


def downgrade() -> None:
    # 0010's code deletes the rows it applied, and its SQLite table may issue an id again:
    # cursors over ids left behind would skip rows after an upgrade back to this revision.
    op.execute("DELETE FROM sync_cursors WHERE name LIKE 'search-pending:%'")
    with op.batch_alter_table("search_pending") as batch:
        batch.drop_column("created_at")
