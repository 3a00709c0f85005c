"""entities reg_no index

Revision ID: 0012_entities_reg_no_index
Revises: 0011_search_pending_cursor
Create Date: 2026-11-29

ix_entities_reg_no: an entity published first with only its 注册号 (entity id = the 注册号) and
later with its USCC too (id = the USCC, reg_no = the 注册号) is one company under two ids; the
reads put them together (publishing.creditcheck, publishing.read.uscc_entity_of), looking the
注册号 up in entities.reg_no: without the index, every such lookup reads all the entities.

Partial (reg_no IS NOT NULL): few entities have a 注册号 beside a USCC or as their id, and over
all of them SQLite's statistics would count the NULLs as one value (at 20,000 entities: 99 rows
a key), so that its planner read every entity instead. A plain CREATE INDEX, as 0008 (upgrades
run in one transaction, where PostgreSQL cannot build CONCURRENTLY): it reads the entities once.
SQLite analyzes the new index, which would otherwise have no statistics.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_entities_reg_no_index"
down_revision = "0011_search_pending_cursor"
branch_labels = None
depends_on = None

NAME = "ix_entities_reg_no"
PRESENT = sa.text("reg_no IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("entities", schema=None) as batch_op:
        batch_op.create_index(
            NAME, ["reg_no"], unique=False, sqlite_where=PRESENT, postgresql_where=PRESENT
        )
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"ANALYZE {NAME}")


def downgrade() -> None:
    with op.batch_alter_table("entities", schema=None) as batch_op:
        batch_op.drop_index(NAME)
