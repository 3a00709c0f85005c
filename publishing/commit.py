"""The one writer of published data.

Every change the public can see (a publish, an expiry, an approved repair, an upheld
objection) goes through a Writer, which stores the record and its change event in the caller's
transaction. Writes are buffered and flushed in bulk: publishing a million rows must not pay
one round trip per row.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from publishing import bulk, clock, entities, locks
from publishing.db import writer_connection
from publishing.models import (
    ACTIVE,
    WITHDRAWN,
    Batch,
    BlacklistIssue,
    ChangeEvent,
    Entity,
    Record,
    SearchPending,
)

RECORDS = Record.__table__
EVENTS = ChangeEvent.__table__
ENTITIES = Entity.__table__
ISSUES = BlacklistIssue.__table__
BATCHES = Batch.__table__
PENDING = SearchPending.__table__

# Withdrawals decided by the bureau on a request: a later file must not bring the record back.
HELD_REASONS = frozenset({"repair", "objection"})
# An active record whose content the bureau corrected on an upheld objection: a later file
# must not put the uncorrected content back (it may still withdraw the record).
CORRECTED = "corrected"
_CONTENT_COLUMNS = (
    "status",
    "status_reason",
    "version",
    "district",
    "event_date",
    "publicity_until",
    "repairable_from",
    "issue_id",
    "category",
    "grade",
    "data",
    "content_hash",
    "batch_id",
    "source_file",
    "source_row",
    "entity_id",
    "updated_at",
)
_STATUS_COLUMNS = ("status", "status_reason", "version", "updated_at", "batch_id")
_INSERT_COLUMNS = (*_CONTENT_COLUMNS, "id", "kind", "group_key", "first_published_at")
_EVENT_COLUMNS = ("record_id", "kind", "district", "entity_id", "op", "version", "reason", "at",
                  "batch_id")
_PENDING_COLUMNS = ("record_id", "entity_id")
WRITER_LOCK_ID = locks.WRITER


def lock_writer(conn: Connection) -> None:
    """One writer at a time, so the change log's sequence follows commit order.

    SQLite serialises writers itself (the publish transaction begins IMMEDIATE)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITER_LOCK_ID})")


@contextmanager
def durable_transaction(engine: Engine) -> Iterator[Connection]:
    """The one writer's connection in a transaction whose commit is on disk when it returns.

    PostgreSQL commits are synchronous already. SQLite runs in WAL mode with synchronous=NORMAL
    (a commit reaches the disk at the next checkpoint); a request we say we received, and a
    decision, must survive a power cut, so this transaction runs with synchronous=FULL."""
    with writer_connection(engine) as conn:
        raw = conn.connection.driver_connection if conn.dialect.name == "sqlite" else None
        if raw is not None:
            raw.execute("PRAGMA synchronous=FULL")
        try:
            with conn.begin():
                yield conn
        finally:
            if raw is not None:
                raw.execute("PRAGMA synchronous=NORMAL")


def start_batch(
    conn: Connection, *, kind: str | None, mode: str, actor: str, files: list[str]
) -> int:
    result = conn.execute(
        insert(BATCHES).values(
            kind=kind, mode=mode, actor=actor, files=files, counts={}, started_at=clock.now()
        )
    )
    return int(result.inserted_primary_key[0])


def finish_batch(conn: Connection, batch_id: int, counts: dict[str, Any]) -> None:
    conn.execute(
        update(BATCHES)
        .where(BATCHES.c.id == batch_id)
        .values(counts=counts, finished_at=clock.now())
    )


def kept_reason(row: Any) -> str | None:
    """The status reason a record keeps whatever status it moves to: CORRECTED, so that a file
    bringing it back later publishes the correction, not the platform's uncorrected export."""
    return CORRECTED if row.status_reason == CORRECTED else None


class Writer:
    def __init__(self, conn: Connection, batch_id: int | None, at: datetime | None = None):
        self.conn = conn
        self.batch_id = batch_id
        self.at = at or clock.now()
        self._inserts: list[dict[str, Any]] = []
        self._content_updates: list[dict[str, Any]] = []
        self._status_updates: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []
        # Withdrawn without an event: the search sync still refreshes their entities' documents.
        self._pending: list[dict[str, Any]] = []
        self._issue_meta: dict[str, dict[str, Any]] = {}
        self.touched_issues: set[str] = set()
        # Entities that lost a record to a withdrawal: merged again at finish() (the name of a
        # withdrawn record must not stay theirs).
        self.withdrawn_entities: set[str] = set()
        self.events_written = 0

    # -- records -------------------------------------------------------------------------
    def insert(self, row: dict[str, Any], op: str | None, reason: str | None = None) -> None:
        """A record seen for the first time; op None stores it without publishing (expired …)."""
        row = {
            **row,
            "batch_id": self.batch_id,
            "first_published_at": self.at,
            "updated_at": self.at,
        }
        self._inserts.append(row)
        self._note_issue(row)
        if op:
            self._event(row, op, reason)

    def update(self, row: dict[str, Any], op: str | None, reason: str | None = None) -> None:
        """New content (and status) for a known record; row holds every content column."""
        row = {**row, "batch_id": self.batch_id, "updated_at": self.at}
        self._content_updates.append(row)
        self._note_issue(row)
        if op:
            self._event(row, op, reason)

    def set_status(
        self,
        current: Any,
        status: str,
        op: str | None,
        reason: str | None,
        bump: bool = True,
        kept_reason: str | None = None,
    ) -> None:
        """Change only the status of a known record (withdraw, expire, supersede …).

        current: the record's row as stored (needs id, kind, district, entity_id, version).
        kept_reason: stored instead of `reason` (the event still says `reason`): a
        correction's mark, which must outlive the record's leaving publication.
        A withdrawal without an event (op None: nothing public changed) is noted in
        search_pending: the entity is merged again without the record (finish), and the
        search sync has no event to follow to its document."""
        version = current.version + (1 if bump else 0)
        self._status_updates.append(
            {
                "id": current.id,
                "status": status,
                "status_reason": kept_reason or reason,
                "version": version,
                "updated_at": self.at,
                "batch_id": self.batch_id,
            }
        )
        if current.issue_id:
            self.touched_issues.add(current.issue_id)
        if status == WITHDRAWN and current.entity_id:
            self.withdrawn_entities.add(current.entity_id)
        if status == WITHDRAWN and not op:
            self._pending.append({"record_id": current.id, "entity_id": current.entity_id})
        if op:
            self._event(
                {
                    "id": current.id,
                    "kind": current.kind,
                    "district": current.district,
                    "entity_id": current.entity_id,
                    "version": version,
                },
                op,
                reason,
            )

    def set_group_key(self, record_id: str, group_key: str) -> None:
        """Move a known record to another supersession group (a credit mark whose scheme or
        domain an upheld objection corrected). Written at once, not buffered: the other writes
        leave group_key alone (the planner sets it at insert), and the caller reads the groups
        back right after. No event: the group is not part of the public record."""
        self.conn.execute(
            update(RECORDS).where(RECORDS.c.id == record_id).values(group_key=group_key)
        )

    def _event(self, row: dict[str, Any], op: str, reason: str | None) -> None:
        self._events.append(
            {
                "record_id": row["id"],
                "kind": row["kind"],
                "district": row.get("district"),
                "entity_id": row.get("entity_id"),
                "op": op,
                "version": row["version"],
                "reason": reason,
                "at": self.at,
                "batch_id": self.batch_id,
            }
        )

    def _note_issue(self, row: dict[str, Any]) -> None:
        if row.get("issue_id"):
            self.touched_issues.add(row["issue_id"])
            data = row["data"]
            if isinstance(data, str | bytes):  # serialised by the planner; issues are rare
                data = json.loads(data)
            self._issue_meta[row["issue_id"]] = {
                "issue_no": data["issue_no"],
                "publisher": data["publisher"],
                "issued_on": row["event_date"],
            }

    # -- flushing ------------------------------------------------------------------------
    def flush(self) -> None:
        conn = self.conn
        bulk.insert_many(conn, RECORDS, _INSERT_COLUMNS, self._inserts)
        bulk.update_many(conn, RECORDS, "id", _CONTENT_COLUMNS, self._content_updates)
        bulk.update_many(conn, RECORDS, "id", _STATUS_COLUMNS, self._status_updates)
        bulk.insert_many(conn, EVENTS, _EVENT_COLUMNS, self._events)
        bulk.insert_many(conn, PENDING, _PENDING_COLUMNS, self._pending)
        self.events_written += len(self._events)
        self._inserts, self._content_updates, self._status_updates, self._events = [], [], [], []
        self._pending = []

    def finish(self) -> None:
        """Flush, then bring the entities that lost records to a withdrawal and the touched
        blacklist issues' entry counts up to date."""
        self.flush()
        entities.recompute(self.conn, self.withdrawn_entities, self.at)
        refresh_issues(self.conn, self.touched_issues, self._issue_meta)


def refresh_issues(
    conn: Connection, issue_ids: Iterable[str], meta: dict[str, dict[str, Any]]
) -> None:
    ids = sorted(issue_ids)
    if not ids:
        return
    # Count in Python over the issues' own rows: a status condition in SQL lets the planner
    # prefer a status index and scan every active record (seconds at a million records).
    counts: Counter = Counter()
    districts: dict[str, set[str | None]] = {iid: set() for iid in ids}
    for issue, status, district in conn.execute(
        select(RECORDS.c.issue_id, RECORDS.c.status, RECORDS.c.district).where(RECORDS.c.issue_id.in_(ids))
    ):
        if status == ACTIVE:
            counts[issue] += 1
            districts[issue].add(district)
    known = set(conn.execute(select(ISSUES.c.id).where(ISSUES.c.id.in_(ids))).scalars())
    for iid in ids:
        # An issue's district is the one its entries in publication share; none when they span
        # several (a city-level issue names firms all over Yantai).
        values = {"entry_count": counts.get(iid, 0), "district": _only(districts[iid]), **meta.get(iid, {})}
        if iid in known:
            conn.execute(update(ISSUES).where(ISSUES.c.id == iid).values(values))
        elif iid in meta:
            conn.execute(insert(ISSUES).values(id=iid, **values))


def _only(values: set[str | None]) -> str | None:
    return next(iter(values)) if len(values) == 1 else None


def expired(publicity_until: date | None, today: date) -> bool:
    return publicity_until is not None and publicity_until < today
