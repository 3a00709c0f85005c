"""listing filter indexes

Revision ID: 0008_listing_filter_indexes
Revises: 0007_api_key_hints
Create Date: 2026-11-28

Listings filtered by category or grade (/penalties, /credit-marks, /return-pledges and their API
twins) read ix_records_kind_category_date or ix_records_kind_grade_date in date order instead of
testing every record of the kind (a million records: 4 s → a few ms); the categories in use are
read by one seek per category. The other filter and the district trail each index, so a
combination is checked in the index, not on each row.

A plain CREATE INDEX: upgrades run in one transaction (publishing.db.upgrade), where PostgreSQL
cannot build CONCURRENTLY. At a million records it takes ~30 s on PostgreSQL (writers wait,
readers do not) and ~15 s on SQLite.

SQLite then analyzes the records (5 s at a million): the new indexes need statistics, and
databases published before this release have none at all (db.analyze's ANALYZE was rolled
back), which made the planner read every active record for a blacklist issue. PostgreSQL keeps
statistics per column (and its ANALYZE did commit): nothing to do.
"""

from alembic import op

revision = "0008_listing_filter_indexes"
down_revision = "0007_api_key_hints"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_records_kind_category_date": [
        "kind", "category", "status", "event_date", "id", "grade", "district",
    ],
    "ix_records_kind_grade_date": [
        "kind", "grade", "status", "event_date", "id", "category", "district",
    ],
}  # fmt: skip


def upgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        for name, columns in INDEXES.items():
            batch_op.create_index(name, columns, unique=False)
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ANALYZE records")


def downgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        for name in INDEXES:
            batch_op.drop_index(name)
