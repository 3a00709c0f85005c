"""district index id

Revision ID: 0009_district_index_id
Revises: 0008_listing_filter_indexes
Create Date: 2026-11-29

ix_records_kind_district_date gains the record id after the date: listings page by (event_date,
id) keyset (publishing.read.list_records), so a district listing now reads the index in that
order and stops at the page's end, where it sorted each page's dates (PostgreSQL: an
incremental sort; SQLite: a temporary B-tree). The statistics' grouped counts read it as before.

Rebuilt in place, under the same name. A plain CREATE INDEX, as 0008: upgrades run in one
transaction (publishing.db.upgrade), where PostgreSQL cannot build CONCURRENTLY (at a million
records ~30 s; writers wait, readers do not). On PostgreSQL the new index is built under a
temporary name before the old one is dropped: DROP INDEX locks the table against readers too,
until the commit, which then follows at once. SQLite cannot rename an index: it drops and
builds (readers keep their snapshot in WAL mode), then analyzes the new index, which would
otherwise have no statistics (the drop removed the old ones).
"""

from alembic import op

revision = "0009_district_index_id"
down_revision = "0008_listing_filter_indexes"
branch_labels = None
depends_on = None

NAME = "ix_records_kind_district_date"
BUILDING = NAME + "_0009"  # PostgreSQL: the new index until the old one is gone
COLUMNS = ["kind", "district", "status", "event_date"]


def _rebuild(columns: list[str]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index(NAME, table_name="records")
        op.create_index(NAME, "records", columns, unique=False)
        op.execute(f"ANALYZE {NAME}")
        return
    op.create_index(BUILDING, "records", columns, unique=False)
    op.drop_index(NAME, table_name="records")
    op.execute(f"ALTER INDEX {BUILDING} RENAME TO {NAME}")


def upgrade() -> None:
    _rebuild([*COLUMNS, "id"])


def downgrade() -> None:
    _rebuild(COLUMNS)
