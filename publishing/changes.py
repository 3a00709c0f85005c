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

A restore to a point the client has passed but the head has since reached again is invisible
to a bare seq: the cursor this module hands out is therefore "SEQ.MARK", MARK a hash of the
immutable fields of the event at SEQ (event_mark, the same as open data's `seq_event`). When
the event at SEQ is not that one any more (or gone), CursorUnknown. A bare integer is still
accepted as a cursor (older clients), checked only for being ahead of the log.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, Text, cast, select

from publishing import clock
from publishing.commit import EVENTS, RECORDS
from publishing.models import ACTIVE, OP_ADD, OP_CHANGE
from publishing.read import last_change_seq
from publishing.shape import RECORD_COLUMNS, record_shape

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
BATCH = 2000
PAGE_BATCH = 500  # events of a change-log page encoded at once (page_json)
WITH_RECORD = frozenset({OP_ADD, OP_CHANGE})
MAX_SEQ = 2**62
MARK_LENGTH = 16
# "SEQ" (an old client's plain integer) or "SEQ.MARK"; lower-case hex, as event_mark writes it
CURSOR_PATTERN = rf"^[0-9]{{1,19}}(\.[0-9a-f]{{{MARK_LENGTH}}})?$"
_CURSOR = re.compile(CURSOR_PATTERN)

# The record columns public_record reads, labelled so they do not clash with the event's, in
# shape.RECORD_COLUMNS order: a row's slice of them goes to shape.record_shape as it is.
# `data` comes as its JSON text, decoded only for the items that carry a record (_with_data).
_RECORD_COLUMNS = tuple(
    (cast(RECORDS.c[name], Text) if name == "data" else RECORDS.c[name]).label("r_" + name)
    for name in RECORD_COLUMNS
)
_EVENT_COLUMNS = (
    EVENTS.c.seq,
    EVENTS.c.op,
    EVENTS.c.record_id,
    EVENTS.c.kind,
    EVENTS.c.version,
    EVENTS.c.at,
)
# Positions in a row of _query (event columns, then record columns), fixed once: building a
# page's items reads each row as a plain tuple (attribute access per field per row was most of
# the cost of a 10,000-event page).
_RECORD_START = len(_EVENT_COLUMNS)
_STATUS = RECORD_COLUMNS.index("status")
_UNTIL = RECORD_COLUMNS.index("publicity_until")
_DATA = RECORD_COLUMNS.index("data")
_DECODE = msgspec.json.Decoder()
_ENCODE = msgspec.json.Encoder().encode


def _with_data(rec: Sequence[Any]) -> list[Any]:
    """A record's columns with `data` decoded from its JSON text: msgspec, 2x faster than json,
    gives the same value wherever it accepts the text; json.loads takes what it rejects (NaN,
    a lone surrogate), so the value is always json.loads's."""
    values = list(rec)
    text = values[_DATA]
    if text is not None:
        try:
            values[_DATA] = _DECODE.decode(text)
        except msgspec.MsgspecError:
            values[_DATA] = json.loads(text)
    return values


@dataclass(frozen=True)
class Cursor:
    """A position in the change log: after event `seq`, which had `mark` (None: not checked)."""

    seq: int
    mark: str | None = None

    def __str__(self) -> str:
        return str(self.seq) if self.mark is None else f"{self.seq}.{self.mark}"


class BadCursor(ValueError):
    """Neither a plain seq nor a cursor this API hands out."""


class CursorAhead(Exception):
    """`since` is beyond the newest event: the log the client read is not this one."""

    def __init__(self, since: int, head: int, cursor: str | None = None) -> None:
        super().__init__(f"since={since} is beyond the newest change {head}")
        self.since = since
        self.head = head
        self.cursor = cursor


class CursorUnknown(Exception):
    """The event the cursor names is not at its seq any more: the log was restored and its seqs
    issued again to other events, so what the client read after that point is not this log."""

    def __init__(self, cursor: Cursor, head: int) -> None:
        super().__init__(f"cursor {cursor} names an event this change log does not have")
        self.since = cursor.seq
        self.head = head
        self.cursor = str(cursor)


def event_mark(seq: int, at: datetime, record_id: str, op: str, version: int) -> str:
    """What identifies change event `seq`: a hash of its immutable fields. `at` is taken in UTC
    with microseconds, as both backends store it, so SQLite and PostgreSQL agree."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    what = f"{seq}|{at.isoformat()}|{record_id}|{op}|{version}"
    return hashlib.sha256(what.encode()).hexdigest()[:MARK_LENGTH]


def cursor_of(row: Any) -> Cursor:
    """The cursor just after event row `row` (seq, at, record_id, op, version)."""
    seq = int(row.seq)
    return Cursor(seq, event_mark(seq, row.at, row.record_id, row.op, row.version))


def parse_cursor(value: int | str) -> Cursor:
    """`since` as sent: a plain seq (unchecked identity) or "SEQ.MARK". BadCursor otherwise."""
    text = str(value)
    if not _CURSOR.fullmatch(text):
        raise BadCursor(f"not a change-log cursor: {text[:40]!r}")
    seq_text, _, mark = text.partition(".")
    seq = int(seq_text)
    if seq > MAX_SEQ or (seq == 0 and mark):  # no event has seq 0: nothing to name
        raise BadCursor(f"not a change-log cursor: {text!r}")
    return Cursor(seq, mark or None)


def _event_at(conn: Connection, seq: int) -> Any:
    return conn.execute(select(*_EVENT_COLUMNS).where(EVENTS.c.seq == seq)).first()


def check_cursor(conn: Connection, cursor: Cursor) -> None:
    """CursorAhead / CursorUnknown unless the event `cursor` names is at its seq."""
    if cursor.mark is None or cursor.seq == 0:
        return
    row = _event_at(conn, cursor.seq)
    if row is not None and cursor_of(row) == cursor:
        return
    head = last_change_seq(conn)
    if cursor.seq > head:
        raise CursorAhead(cursor.seq, head, str(cursor))
    raise CursorUnknown(cursor, head)


def _resting_cursor(conn: Connection, cursor: Cursor) -> Cursor:
    """`next` of a page with no events: the cursor itself, named by its event where it has one
    (a plain seq becomes a full cursor). CursorAhead for a plain seq beyond the newest event."""
    if cursor.mark is not None or cursor.seq == 0:
        return cursor
    row = _event_at(conn, cursor.seq)
    if row is not None:
        return cursor_of(row)
    head = last_change_seq(conn)
    if cursor.seq > head:
        raise CursorAhead(cursor.seq, head)
    return cursor  # a seq no event took (a rolled-back insert): nothing to name


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
    """One event of the change log in its public form (row: a row of _query)."""
    values = tuple(row)
    seq, op, record_id, kind, version, at = values[:_RECORD_START]
    record = None
    if op in WITH_RECORD:
        rec = values[_RECORD_START:]
        if _published(rec[_STATUS], rec[_UNTIL], today or clock.today()):
            record = record_shape(_with_data(rec))
    return {
        "seq": int(seq),
        "op": op,
        "record_id": record_id,
        "kind": kind,
        "version": version,
        "at": at.isoformat() if at is not None else None,
        "record": record,
    }


def page(
    conn: Connection,
    since: int | str | Cursor = 0,
    limit: int = DEFAULT_LIMIT,
    kind: str | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """Events after `since`, oldest first: {"changes", "next", "has_more"}.

    `next` is the cursor (a string, "SEQ.MARK") to pass as `since` for the following page: the
    last event returned, or `since` itself when nothing new has happened. BadCursor for a
    malformed `since`, CursorAhead when it is beyond the newest event, CursorUnknown when the
    event it names is no longer at its seq."""
    items: list[dict[str, Any]] = []
    end = _read_page(conn, since, limit, kind, today, items.extend)
    return {"changes": items, **end}


def page_json(
    conn: Connection,
    since: int | str | Cursor = 0,
    limit: int = DEFAULT_LIMIT,
    kind: str | None = None,
    today: date | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """page() as the JSON the API answers (the bytes of page()'s dict), and {"next",
    "has_more"}. Built PAGE_BATCH events at a time, each batch's dicts encoded and dropped: a
    page of 10,000 events held 62 MB of rows and dicts for 14 MB of JSON (a portal went from
    210 to 420 MB under a few at once); this holds the JSON twice (batches, answer) and one
    batch: 31 MB."""
    chunks: list[bytes | memoryview] = [b'{"changes":[']

    def add(items: list[dict[str, Any]]) -> None:
        if len(chunks) > 1:
            chunks.append(b",")
        chunks.append(memoryview(_ENCODE(items))[1:-1])  # the items, without [ ] (no copy)

    end = _read_page(conn, since, limit, kind, today, add)
    chunks += [b"],", _ENCODE(end)[1:]]  # the object's other keys, after "changes"
    return b"".join(chunks), end


def _read_page(
    conn: Connection,
    since: int | str | Cursor,
    limit: int,
    kind: str | None,
    today: date | None,
    take: Callable[[list[dict[str, Any]]], None],
) -> dict[str, Any]:
    """Reads a page (page()'s rules) and hands its items to `take`, PAGE_BATCH at a time;
    returns {"next", "has_more"}. One statement (one snapshot), fetched as the batches are
    taken (PostgreSQL: a server-side cursor); the row past `limit` only says there are more."""
    cursor = since if isinstance(since, Cursor) else parse_cursor(since)
    check_cursor(conn, cursor)
    limit = max(1, min(limit, MAX_LIMIT))
    today = today or clock.today()
    # yield_per on the statement: Connection.execution_options would keep it for the request
    stmt = _query(cursor.seq, kind).limit(limit + 1).execution_options(yield_per=PAGE_BATCH)
    last, taken, has_more = None, 0, False
    for rows in conn.execute(stmt).partitions():
        mine = rows[: limit - taken]
        has_more = has_more or len(mine) < len(rows)
        if mine:
            take([change_item(r, today) for r in mine])
            taken, last = taken + len(mine), mine[-1]
    after = cursor_of(last) if last is not None else _resting_cursor(conn, cursor)
    return {"next": str(after), "has_more": has_more}


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
            if _published(row[_STATUS], row[_UNTIL], today):
                out[row.r_id] = record_shape(_with_data(row))
    return out
