"""The model of what is published: entities, records, blacklist issues, batches, change log.

Works unchanged on SQLite and PostgreSQL; Alembic migrations (publishing/migrations) are made
from this metadata.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel
from sqlmodel.sql.sqltypes import UTCDateTime

JSONType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
SeqType = BigInteger().with_variant(Integer(), "sqlite")

ACTIVE = "active"
WITHDRAWN = "withdrawn"
EXPIRED = "expired"
SUPERSEDED = "superseded"
AGGREGATE = "aggregate"  # held back: its scheme is published only as statistics
STATUSES = (ACTIVE, WITHDRAWN, EXPIRED, SUPERSEDED, AGGREGATE)

OP_ADD = "add"
OP_CHANGE = "change"
OP_WITHDRAW = "withdraw"
OP_EXPIRE = "expire"


# The 注册号 carried by entities with a USCC, looked up by reads that put one company's two
# entity ids together (publishing.read, publishing.creditcheck; migration 0012). Partial: few
# entities have one, and over all of them SQLite's statistics count the NULLs as one value
# (99 rows a key at 20,000 entities), so that its planner read every entity instead.
REG_NO_PRESENT = text("reg_no IS NOT NULL")


class Entity(SQLModel, table=True):
    __tablename__ = "entities"
    __table_args__ = (
        Index(
            "ix_entities_reg_no",
            "reg_no",
            sqlite_where=REG_NO_PRESENT,
            postgresql_where=REG_NO_PRESENT,
        ),
    )

    id: str = Field(primary_key=True, max_length=18)  # the USCC, or the reg_no when it has none
    uscc: str | None = Field(default=None, max_length=18)
    reg_no: str | None = Field(default=None, max_length=15)
    name: str
    former_names: list[str] = Field(default_factory=list, sa_column=Column(JSONType))
    name_as_of: date | None = None  # date of the record that gave the current name
    legal_rep: str | None = None
    district: str | None = Field(default=None, max_length=6, index=True)
    address: str | None = None
    created_at: datetime
    updated_at: datetime


class Record(SQLModel, table=True):
    __tablename__ = "records"
    __table_args__ = (
        Index("ix_records_entity_status", "entity_id", "status"),
        Index("ix_records_kind_status_date", "kind", "status", "event_date", "id"),
        # district listings: read in their (event_date, id) order, without a sort (0009)
        Index("ix_records_kind_district_date", "kind", "district", "status", "event_date", "id"),
        Index("ix_records_group", "group_key", "status"),
        Index("ix_records_status_until", "status", "publicity_until"),
        # Listings filtered by category or grade (and the categories in use, read by seeks):
        # the other filter and the district trail, so that they are checked in the index
        # rather than on each row (migration 0008).
        Index(
            "ix_records_kind_category_date",
            "kind",
            "category",
            "status",
            "event_date",
            "id",
            "grade",
            "district",
        ),
        Index(
            "ix_records_kind_grade_date",
            "kind",
            "grade",
            "status",
            "event_date",
            "id",
            "category",
            "district",
        ),
    )

    id: str = Field(primary_key=True, max_length=24)
    kind: str = Field(max_length=16)
    entity_id: str | None = Field(default=None, foreign_key="entities.id", max_length=18)
    status: str = Field(default=ACTIVE, max_length=12)
    # why it left publication (file, snapshot, repair, objection …); "corrected" while active
    status_reason: str | None = None
    version: int = 1
    district: str | None = Field(default=None, max_length=6)
    event_date: date | None = None
    publicity_until: date | None = None
    repairable_from: date | None = None
    issue_id: str | None = Field(default=None, max_length=24, index=True)
    category: str | None = None  # penalty: domain; credit_mark: scheme; return_pledge: category
    grade: str | None = Field(default=None, max_length=2)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType))
    group_key: str = Field(max_length=24)  # natural key without version parts (supersession)
    content_hash: str = Field(max_length=32)
    batch_id: int | None = Field(default=None, foreign_key="batches.id")
    source_file: str | None = None
    source_row: int | None = None
    first_published_at: datetime
    updated_at: datetime


class BlacklistIssue(SQLModel, table=True):
    __tablename__ = "blacklist_issues"

    id: str = Field(primary_key=True, max_length=24)
    issue_no: str
    publisher: str
    district: str | None = Field(default=None, max_length=6)
    issued_on: date = Field(index=True)
    entry_count: int = 0  # active entries


class Batch(SQLModel, table=True):
    __tablename__ = "batches"

    id: int | None = Field(default=None, primary_key=True)
    kind: str | None = None
    mode: str = "incremental"
    actor: str = "cli"
    files: list[str] = Field(default_factory=list, sa_column=Column(JSONType))
    counts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType))
    started_at: datetime
    finished_at: datetime | None = None


class ChangeEvent(SQLModel, table=True):
    """The change log: one row per public change of a record, in commit order."""

    __tablename__ = "changes"
    __table_args__ = (
        Index("ix_changes_kind_seq", "kind", "seq"),
        Index("ix_changes_kind_district_seq", "kind", "district", "seq"),
        Index("ix_changes_entity_seq", "entity_id", "seq"),
        Index("ix_changes_record", "record_id", "seq"),
    )

    seq: int | None = Field(
        default=None, sa_column=Column(SeqType, primary_key=True, autoincrement=True)
    )
    record_id: str = Field(max_length=24)
    kind: str = Field(max_length=16)
    district: str | None = Field(default=None, max_length=6)
    entity_id: str | None = Field(default=None, max_length=18)
    op: str = Field(max_length=8)
    version: int
    reason: str | None = None
    at: datetime
    batch_id: int | None = Field(default=None, foreign_key="batches.id")


class SyncCursor(SQLModel, table=True):
    """How far each derived output (search index …) has applied the change log."""

    __tablename__ = "sync_cursors"

    name: str = Field(primary_key=True, max_length=64)
    seq: int = Field(default=0, sa_column=Column(SeqType, nullable=False, default=0))
    updated_at: datetime | None = None


class SearchPending(SQLModel, table=True):
    """Records withdrawn without a change event (nothing public changed about them), whose
    entities were merged again without them (Writer.finish): each search index refreshes their
    documents as it does an event's, from a cursor over `id` of its own; a row is deleted once
    every index has it, or when it is older than an index can lag (publishing.search.sync)."""

    __tablename__ = "search_pending"
    # ids must never be issued again (a cursor past a deleted id would skip its reuse): SQLite
    # reuses the largest rowid after a delete unless the table is AUTOINCREMENT (0011).
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(
        default=None, sa_column=Column(SeqType, primary_key=True, autoincrement=True)
    )
    record_id: str = Field(max_length=24)
    entity_id: str | None = Field(default=None, max_length=18)
    # Set by the database: the writer (and an older release's) leaves it out.
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(UTCDateTime(), nullable=False, server_default=text("CURRENT_TIMESTAMP")),
    )
