"""The change log as a feed of public changes (`/api/v1/changes`, open-data deltas).

Each event is given with the record's *current* public shape when the event is an add or a
change and the record is published now, and with `record: None` otherwise (withdraw, expire,
or an add/change of a record that has left publication since). Published now means what the
pages mean (publishing.read.is_visible): active, and its publicity period not ended — a record
whose end date has passed is null at once, not only after the nightly expire run. Every entry into and exit from
publication, and every change of a published record's content, is a change event (publishing.
commit), so the last event of a record always agrees with its current state: a copy that applies
the events in `seq` order (add/change with a record → put it, anything else → delete the id)
ends up with exactly the published records, whatever page boundaries it read them in.

Event and record are read in one statement (one snapshot of the database), and the writer lock
(publishing.commit.lock_writer) makes sequence order commit order, so a cursor never skips an
event that commits later with a smaller seq.

A cursor beyond the newest seq (a database restored from a backup that is older than what the
client has read) raises CursorAhead: the client's copy may hold records the log no longer has,
so it must start again instead of waiting for seqs that will be issued again for other events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from publishing import clock
from publishing.commit import EVENTS, RECORDS
from publishing.models import ACTIVE, OP_ADD, OP_CHANGE
from publishing.shape import public_record

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
BATCH = 2000
WITH_RECORD = frozenset({OP_ADD, OP_CHANGE})

# The record columns public_record reads, labelled so they do not clash with the event's.
_RECORD_COLUMNS = (
    RECORDS.c.id.label("r_id"),
    RECORDS.c.kind.label("r_kind"),
    RECORDS.c.status.label("r_status"),
    RECORDS.c.version.label("r_version"),
    RECORDS.c.entity_id.label("r_entity_id"),
    RECORDS.c.district.label("r_district"),
    RECORDS.c.event_date.label("r_event_date"),
    RECORDS.c.publicity_until.label("r_publicity_until"),
    RECORDS.c.repairable_from.label("r_repairable_from"),
    RECORDS.c.issue_id.label("r_issue_id"),
    RECORDS.c.data.label("r_data"),
    RECORDS.c.first_published_at.label("r_first_published_at"),
    RECORDS.c.updated_at.label("r_updated_at"),
)
_EVENT_COLUMNS = (
    EVENTS.c.seq,
    EVENTS.c.op,
    EVENTS.c.record_id,
    EVENTS.c.kind,
    EVENTS.c.version,
    EVENTS.c.at,
)


class CursorAhead(Exception):
    """`since` is beyond the newest event: the log the client read is not this one."""

    def __init__(self, since: int, head: int) -> None:
        super().__init__(f"since={since} is beyond the newest change {head}")
        self.since = since
        self.head = head


class _RecordView:
    """The r_* columns of a joined row under the names public_record reads."""

    __slots__ = ("_row",)

    def __init__(self, row: Any) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, "r_" + name)


def _query(since: int, kind: str | None):
    stmt = (
        select(*_EVENT_COLUMNS, *_RECORD_COLUMNS)
        .select_from(EVENTS.outerjoin(RECORDS, RECORDS.c.id == EVENTS.c.record_id))
        .where(EVENTS.c.seq > since)
        .order_by(EVENTS.c.seq)
    )
    if kind:
        stmt = stmt.where(EVENTS.c.kind == kind)
    return stmt


def _published(status: str | None, until: date | None, today: date) -> bool:
    """publishing.read's visibility rule on a record's stored columns."""
    return status == ACTIVE and (until is None or until >= today)


def change_item(row: Any, today: date | None = None) -> dict[str, Any]:
    """One event of the change log in its public form."""
    record = None
    if row.op in WITH_RECORD and _published(
        row.r_status, row.r_publicity_until, today or clock.today()
    ):
        record = public_record(_RecordView(row))
    at = row.at
    return {
        "seq": int(row.seq),
        "op": row.op,
        "record_id": row.record_id,
        "kind": row.kind,
        "version": row.version,
        "at": at.isoformat() if at is not None else None,
        "record": record,
    }


def page(
    conn: Connection,
    since: int = 0,
    limit: int = DEFAULT_LIMIT,
    kind: str | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """Events after `since`, oldest first: {"changes", "next", "has_more"}.

    `next` is the cursor to pass as `since` for the following page (the last seq returned, or
    `since` itself when nothing new has happened). CursorAhead when `since` is beyond the
    newest event."""
    limit = max(1, min(limit, MAX_LIMIT))
    rows = conn.execute(_query(since, kind).limit(limit + 1)).all()
    if not rows:
        head = int(conn.execute(select(func.max(EVENTS.c.seq))).scalar() or 0)
        if since > head:
            raise CursorAhead(since, head)
    has_more = len(rows) > limit
    today = today or clock.today()
    items = [change_item(r, today) for r in rows[:limit]]
    return {"changes": items, "next": items[-1]["seq"] if items else since, "has_more": has_more}


def iter_changes(
    engine: Engine,
    since: int = 0,
    until: int | None = None,
    kind: str | None = None,
    today: date | None = None,
) -> Iterator[dict[str, Any]]:
    """Every event after `since` (up to `until` inclusive), paged by seq: memory stays flat."""
    last = since
    today = today or clock.today()
    while True:
        stmt = _query(last, kind).limit(BATCH)
        if until is not None:
            stmt = stmt.where(EVENTS.c.seq <= until)
        with engine.connect() as conn:
            rows = conn.execute(stmt).all()
        if not rows:
            return
        for row in rows:
            yield change_item(row, today)
        last = int(rows[-1].seq)


def current_records(
    conn: Connection, record_ids: Iterable[str], today: date | None = None
) -> dict[str, dict[str, Any] | None]:
    """record id -> the `record` a change item of it carries now (None unless published)."""
    today = today or clock.today()
    ids = list(dict.fromkeys(record_ids))
    out: dict[str, dict[str, Any] | None] = dict.fromkeys(ids)
    for start in range(0, len(ids), BATCH):
        rows = conn.execute(
            select(*_RECORD_COLUMNS).where(RECORDS.c.id.in_(ids[start : start + BATCH]))
        ).all()
        for row in rows:
            if _published(row.r_status, row.r_publicity_until, today):
                out[row.r_id] = public_record(_RecordView(row))
    return out
