"""Feeds are queries over the change log (the data side: no HTTP), and their Atom / RSS text.

A feed page is the newest PAGE_SIZE change events of a scope (a kind or all kinds, maybe one
district; or one entity) older than an optional `before` seq, read in ONE indexed query
(ix_changes_kind_seq, ix_changes_kind_district_seq, ix_changes_entity_seq, or the primary key)
joined to the records by id; the earlier events of the records that need them (for the entry
ids an item removes) come from ix_changes_record. Each event becomes an item:

- add / change: an entry built from the one public shape (publishing.shape.public_record), id
  `tag:<host>,2026:records/<id>/v<version>` (a new version is a new entry). Only the record's
  current version is shown and only while the record is visible: an older version's event, or
  any event of a record that has since left publication, shows nothing (no stale content, no
  details of withdrawn records, even in archives). A newer version's entry comes with an
  at:deleted-entry for each earlier version that this feed showed (since the record last left
  it), so that readers drop the outdated one.
- withdraw / expire: a deletion. In Atom an RFC 6721 at:deleted-entry whose ref is the entry id
  of every version published before (when = event time, at:comment = why, in Chinese); in RSS
  an item with the neutral title DELETED_TITLE, its own guid, the record's link and the date,
  and nothing else: a record that left publication is never named again (no entity name,
  decision number or reason), current documents and archives alike.
- a change that moves a record to another district: in the old district's feeds a deletion of
  the versions they showed (Atom: at:deleted-entry; RSS: an item with the neutral MOVED_TITLE),
  at the change's place in the log. The change event is the new district's (publishing.commit),
  so the old district's page looks for such changes in its own window of the log (moves_out).

Atom tombstones are placed after the feed's metadata and before the entries: RFC 4287's schema
allows foreign elements there and only there (tests/data/atom.rng).

The blacklist's issue feed (read_issue_page) is not a change-log feed: one item per issue (期次)
with entries in publication, newest issue first, its content the entries as the issue page lists
them; an entry withdrawn leaves the item's content (its `updated` moves), an issue with none
left leaves the feed, with no tombstone (which would name the issue's enterprises).

Every text a document shows goes through safetext.xml_safe: a value stored before the import
rejected U+FFFE/U+FFFF (which lxml refuses) shows without them rather than fail the feed.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from feedgen.feed import FeedGenerator
from lxml import etree
from sqlalchemy import Connection, Select, func, select, union_all

from publishing import clock, read
from publishing.commit import EVENTS, RECORDS
from publishing.contract import DISTRICT_SHORT, KIND_COLUMNS, KIND_LABELS, KINDS
from publishing.models import ACTIVE, OP_ADD, OP_CHANGE, OP_EXPIRE
from publishing.read import last_change_seq
from publishing.safetext import xml_safe
from publishing.search.base import SearchBackend
from publishing.search.sync import CURSORS, cursor_name, pending_cursor_name
from publishing.shape import RECORD_COLUMNS, entity_url, public_record
from publishing.site import AUTHORITY

ALL = "all"
FEED_KINDS = (*KINDS, ALL)
PAGE_SIZE = 50
ATOM_NS = "http://www.w3.org/2005/Atom"
AT_NS = "http://purl.org/atompub/tombstones/1.0"  # RFC 6721
FH_NS = "http://purl.org/syndication/history/1.0"  # RFC 5005
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
LANG = "zh-CN"
TAG_YEAR = "2026"  # the tag URIs' date: keep it, or every id changes
RENDER_VERSION = "3"  # bump when the documents change shape, so ETags change too
EMPTY_UPDATED = datetime(2026, 1, 1, tzinfo=UTC)  # a feed with no items yet
DELETED_TITLE = "【已撤下】公示信息"  # an RSS deletion: says that something left, never what
MOVED_TITLE = "【已改属其他区市】公示信息"  # an RSS deletion from a district the record left
UPDATED_COMMENT = "已更新，以新版本为准"  # at:comment of the versions a newer entry replaces
MOVED_COMMENT = "已改属其他区市"
CONTENT_OPS = (OP_ADD, OP_CHANGE)
# Where a district page looks for changes that moved records out (moves_out): the log's changes
# in the page's window when it spans at most MOVE_WINDOW seqs, else those of the records of the
# district's own add/change events when there are at most MOVE_HISTORY of them, else the window.
# Only a cost choice (every way finds every move): each change tested costs an index probe, and
# at 200k events 2,000 seqs of window cost about what 2,000 records of history do (~10-20 ms).
MOVE_WINDOW = 2_000
MOVE_HISTORY = 2_000
_IN_BATCH = 5_000  # record ids per IN list

KIND_TAGS = {
    "blacklist": "黑榜",
    "penalty": "行政处罚",
    "credit_mark": "信用标注",
    "return_pledge": "无理由退货承诺",
    "district_board": "蓝黄红榜",
}
# Why a record left publication (change event reason → at:comment). A credit repair is said
# as a plain withdrawal: a repaired record leaves every output, with no trace that it was repaired.
# So is a scheme switched to statistics only: saying so would tell that the entity had a mark of
# a scheme that is no longer published per entity (the change log keeps the reason).
REASON_COMMENTS = {
    "file": "已撤回",
    "snapshot": "已撤回",
    "objection": "异议成立，已撤回",
    "repair": "已撤回",
    "expired": "公示期满",
    "superseded": "已被更新的记录取代",
    "aggregate": "已撤回",
    "correction": "已更正撤回",
}
# What a summary says per kind, in order (keys of the public shape; labels from the contract).
SUMMARY_FIELDS: dict[str, tuple[str, ...]] = {
    "penalty": (
        "violation_type",
        "penalty_kinds",
        "fine_yuan",
        "confiscated_yuan",
        "authority",
        "decided_on",
    ),
    "blacklist": ("violation", "products", "action", "publisher", "issued_on"),
    "credit_mark": ("scheme", "grade", "domain", "marked_on", "valid_until", "reason"),
    "return_pledge": ("category", "return_days", "refund_days", "pledged_on"),
}
SUMMARY_VALUE_MAX = 80
# The unit a summary writes after a figure (its label's "(元)" / "(天)" is then left out).
SUMMARY_UNITS = {"fine_yuan": "元", "confiscated_yuan": "元", "return_days": "天", "refund_days": "天"}
_LABELS = {c.key: c.label for cols in KIND_COLUMNS.values() for c in cols}
_LABELS["publicity_until"] = "公示截止日期"

_RECORD_COLUMNS = tuple(RECORDS.c[name] for name in RECORD_COLUMNS)
_EVENT_COLUMNS = (
    EVENTS.c.seq,
    EVENTS.c.op,
    EVENTS.c.version.label("ev_version"),
    EVENTS.c.reason,
    EVENTS.c.at,
)


# -- scopes and their index-backed queries ---------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What a feed follows: a kind (or ALL), maybe one district; or one entity (with the
    other ids of its company)."""

    kind: str = ALL
    district: str | None = None  # district code
    entity_id: str | None = None
    # The other ids of the entity's company (publishing.read.company_of): its feed is the
    # company's, as its profile is.
    linked: tuple[str, ...] = ()

    @property
    def entity_ids(self) -> tuple[str, ...]:
        return (self.entity_id, *self.linked) if self.entity_id else ()

    def _parts(self) -> list[list[Any]]:
        """Conditions of one or more index range scans whose union is the scope."""
        if self.entity_id:  # ix_changes_entity_seq, one range per id
            return [[EVENTS.c.entity_id == entity_id] for entity_id in self.entity_ids]
        if self.kind != ALL:
            conds = [EVENTS.c.kind == self.kind]
            if self.district:
                conds.append(EVENTS.c.district == self.district)
            return [conds]  # ix_changes_kind_seq / ix_changes_kind_district_seq
        if self.district:  # no (district, seq) index: one kind_district scan per kind
            return [[EVENTS.c.kind == k, EVENTS.c.district == self.district] for k in KINDS]
        return [[]]  # the primary key

    def holds(self, event: Any) -> bool:
        """Whether a change event (its kind, district and entity_id) is in the scope."""
        if self.entity_id:
            return event.entity_id in self.entity_ids
        return self.kind in (ALL, event.kind) and self.district in (None, event.district)


EVERYWHERE = Scope()  # every kind and district: what a search feed may have shown


def scope_seqs(
    scope: Scope,
    limit: int,
    before: int | None = None,
    since: int | None = None,
    ascending: bool = False,
) -> Select:
    """The seqs of the scope's events below `before` / from `since` on, newest (or oldest)
    first, at most `limit`: every part is an index range scan stopped by its LIMIT."""

    def order(col):
        return col.asc() if ascending else col.desc()

    bounds = []
    if before is not None:
        bounds.append(EVENTS.c.seq < before)
    if since is not None:
        bounds.append(EVENTS.c.seq >= since)
    parts = [
        select(EVENTS.c.seq).where(*conds, *bounds).order_by(order(EVENTS.c.seq)).limit(limit)
        for conds in scope._parts()
    ]
    if len(parts) == 1:
        return parts[0]
    union = union_all(*[select(p.subquery().c.seq) for p in parts]).subquery()
    return select(union.c.seq).order_by(order(union.c.seq)).limit(limit)


# -- items --------------------------------------------------------------------------------


@dataclass
class Item:
    """One feed item: an entry (a published version) or a deletion (a tombstone)."""

    seq: int
    record_id: str
    guid: str  # the entry id; for a deletion the guid of its RSS announcement
    title: str
    link: str
    updated: datetime  # the event time
    published: datetime | None = None  # first published
    summary: str = ""
    categories: list[str] = field(default_factory=list)
    deleted: bool = False
    # deletion: the entry ids it removes; entry: the earlier versions it replaces (Atom only)
    refs: list[str] = field(default_factory=list)
    comment: str = ""  # why the refs are removed, in Chinese
    content: str = ""  # HTML (an issue's entries); Atom content, and the RSS description
    rss_date: datetime | None = None  # RSS pubDate if not `updated` (an issue: its 发布日期)


@dataclass
class Page:
    items: list[Item]
    newest_seq: int  # 0: no events
    updated: datetime  # the newest event (or record change) behind the items
    # HTTP Last-Modified, never before `updated`: the newest instant at which the document can
    # have changed, also by losing an item (see last_change). Not in the digest: it moves
    # on changes that leave some documents as they were.
    modified: datetime = EMPTY_UPDATED
    older: int | None = None  # `before` of the next older page (prev-archive)
    newer: int | None = None  # archive page: `before` of the next newer archive page
    key: str = ""  # digest of everything the documents are made from (ETag, cache key)


def utc(value: datetime | None) -> datetime | None:
    """Instants are stored in UTC; a naive value from the database is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def tag_authority(base_url: str) -> str:
    return urlsplit(base_url).hostname or "localhost"


def entry_id(base_url: str, record_id: str, version: int) -> str:
    """The Atom entry id / RSS guid of one version of a record (RFC 4151 tag URI)."""
    return f"tag:{tag_authority(base_url)},{TAG_YEAR}:records/{record_id}/v{version}"


def record_url(base_url: str, record_id: str) -> str:
    return f"{base_url.rstrip('/')}/records/{record_id}"


def visible(row: Any, today: date) -> bool:
    """Published now: active and within its publicity (same rule as the pages)."""
    return row.status == ACTIVE and (row.publicity_until is None or row.publicity_until >= today)


def day_start(day: date) -> datetime:
    """The first instant of a Beijing date, in UTC."""
    return datetime.combine(day, time(), tzinfo=clock.BEIJING).astimezone(UTC)


def ended_by_date(rows: Any, today: date) -> list[datetime]:
    """When records among `rows` that are still active left publication by their date alone
    (publicity_until passed): the start of the Beijing day after their last one. They leave
    every page at read time that day; the nightly expire writes their event only later."""
    return [
        day_start(r.publicity_until + timedelta(days=1))
        for r in rows
        if r.status == ACTIVE and r.publicity_until is not None and r.publicity_until < today
    ]


def _newest_event(scope: Scope) -> Select:
    """The time of the newest change event that can change a page of the scope (one index
    probe): an entity's own events; else its kind's, not only its district's (a change that
    moves a record out of a district is the district moved to's event); for all kinds, the log's."""
    touching = scope if scope.entity_id else Scope(kind=scope.kind)
    return select(EVENTS.c.at).where(EVENTS.c.seq.in_(scope_seqs(touching, 1)))


def newest_event_at(conn: Connection, scope: Scope) -> datetime | None:
    return utc(conn.execute(_newest_event(scope)).scalar())


def search_changed(conn: Connection, backend: SearchBackend, kind: str) -> datetime | None:
    """When the answer of a search of the kind (or ALL) last changed, but for its records'
    own stamps (search_page): the newest change event of the kind (the embedded index leaves
    out a record withdrawn a moment ago at once, so the next one comes onto a full page), and
    the index's last sync write (every sync batch and rebuild writes its cursors once the
    documents are in: a record added is found only then, after its event's time, so the event
    alone would date the page before it changed). Read BEFORE the search, as RFC 9110 §8.8.2.1
    asks: read after it, a change committed in between would date the old answer as the new."""
    names = [cursor_name(backend), pending_cursor_name(backend)]
    synced = select(func.max(CURSORS.c.updated_at)).where(CURSORS.c.name.in_(names))
    row = conn.execute(
        select(_newest_event(Scope(kind=kind)).scalar_subquery(), synced.scalar_subquery())
    ).one()  # one round trip
    return last_change(EMPTY_UPDATED, utc(row[0]), utc(row[1]))


def last_change(updated: datetime, *more: datetime | None) -> datetime:
    return max([updated, *(m for m in more if m is not None)])


def _text(value: Any) -> str:
    if value is None or value == "" or value is False:
        return ""
    if value is True:
        return "是"
    if isinstance(value, list | tuple):
        return "、".join(str(v) for v in value if v not in (None, ""))
    return str(value)


def _clip(text: str, size: int = SUMMARY_VALUE_MAX) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 1] + "…"


def title(pub: dict[str, Any]) -> str:
    """【行政处罚】烟芝市监罚〔2026〕12号 · 芝罘区 · 烟台某某食品有限公司"""
    kind = pub["kind"]
    detail = {
        "blacklist": _text(pub.get("issue_no")),
        "penalty": _text(pub.get("decision_no")),
        "credit_mark": " ".join(
            p
            for p in (_text(pub.get("scheme")), f"{pub['grade']}类" if pub.get("grade") else "")
            if p
        ),
        "return_pledge": _text(pub.get("category")),
    }.get(kind, "")
    district = DISTRICT_SHORT.get(pub.get("district_code") or "", "")
    parts = [p for p in (detail, district, _text(pub.get("entity_name"))) if p]
    return f"【{KIND_TAGS.get(kind, pub.get('kind_label') or kind)}】" + " · ".join(parts)


def summary(pub: dict[str, Any]) -> str:
    """A short plain-text summary (personal names and long free text left out), the unit said
    once, after the figure: 罚款金额：1,234,567.50元, not 罚款金额(元)：1234567.50元."""
    parts = []
    for key in (*SUMMARY_FIELDS.get(pub["kind"], ()), "publicity_until"):
        value = _text(pub.get(key))
        if not value:
            continue
        label = _LABELS.get(key, key)
        unit = SUMMARY_UNITS.get(key)
        if unit:
            label = label.removesuffix(f"({unit})")
            value = (_money(value) if unit == "元" else value) + unit
        parts.append(f"{label}：{_clip(value)}")
    return "；".join(parts) + ("。" if parts else "")


def _money(value: str) -> str:
    """An amount with thousands separators and two decimals, as the pages show it
    (portal.templating.money): 1,234,567.50."""
    try:
        return f"{Decimal(value):,.2f}"
    except InvalidOperation:
        return value


def categories(pub: dict[str, Any]) -> list[str]:
    cats = [pub.get("kind_label") or pub["kind"]]
    if pub.get("district"):
        cats.append(pub["district"])
    if pub["kind"] == "penalty":
        if pub.get("domain"):
            cats.append(pub["domain"])
        if pub.get("severity"):
            cats.append(f"{pub['severity']}失信")
    return cats


def entry_item(
    row: Any,
    base_url: str,
    seq: int,
    at: datetime,
    changed: bool = False,
    replaces: tuple[int, ...] = (),
) -> Item:
    """The entry of a record's current version; `replaces`: earlier versions to tombstone."""
    pub = public_record(row)
    return Item(
        seq=seq,
        record_id=row.id,
        guid=entry_id(base_url, row.id, row.version),
        title=title(pub) + ("（更新）" if changed else ""),
        link=record_url(base_url, row.id),
        updated=at,
        published=utc(row.first_published_at),
        summary=summary(pub),
        categories=categories(pub),
        refs=[entry_id(base_url, row.id, v) for v in replaces],
        comment=UPDATED_COMMENT if replaces else "",
    )


def deletion_item(row: Any, base_url: str, refs: list[str]) -> Item:
    """A withdrawal or expiry: only references to the record (guid, link, Atom refs), the date
    and, for Atom's at:comment, why. Nothing of its content: not even its title."""
    default = REASON_COMMENTS["expired"] if row.op == OP_EXPIRE else REASON_COMMENTS["file"]
    comment = REASON_COMMENTS.get(row.reason or "", default)
    return Item(
        seq=row.seq,
        record_id=row.id,
        guid=entry_id(base_url, row.id, row.ev_version),
        title=DELETED_TITLE,
        link=record_url(base_url, row.id),
        updated=utc(row.at),
        deleted=True,
        comment=comment,
        refs=refs or [entry_id(base_url, row.id, max(row.ev_version - 1, 1))],
    )


def moved_item(event: Any, base_url: str, versions: list[int]) -> Item:
    """A change that put the record into another district, in a feed of the district it left:
    like a withdrawal, only references to the record and the date."""
    return Item(
        seq=event.seq,
        record_id=event.record_id,
        guid=entry_id(base_url, event.record_id, event.ev_version) + "/moved",
        title=MOVED_TITLE,
        link=record_url(base_url, event.record_id),
        updated=utc(event.at),
        deleted=True,
        comment=MOVED_COMMENT,
        refs=[entry_id(base_url, event.record_id, v) for v in versions],
    )


def _histories(conn: Connection, record_ids: set[str]) -> dict[str, list[Any]]:
    """Every change event of these records, oldest first (index ix_changes_record)."""
    ids = sorted(record_ids)
    rows: list[Any] = []
    for i in range(0, len(ids), _IN_BATCH):  # SQLite takes at most 32,766 parameters
        rows += conn.execute(
            select(
                EVENTS.c.record_id,
                EVENTS.c.seq,
                EVENTS.c.op,
                EVENTS.c.version,
                EVENTS.c.kind,
                EVENTS.c.district,
                EVENTS.c.entity_id,
            ).where(EVENTS.c.record_id.in_(ids[i : i + _IN_BATCH]))
        ).all()
    out: dict[str, list[Any]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r.seq):
        out[row.record_id].append(row)
    return out


def _shown(events: list[Any], scope: Scope, seq: float) -> tuple[int, ...]:
    """The versions of a record that a reader of the scope may still hold just before `seq`:
    those its add/change events in the scope showed since the record last left the scope (a
    withdrawal or expiry, or a change that put it out of the scope)."""
    held: list[int] = []
    for event in events:
        if event.seq >= seq:
            break
        if event.op in CONTENT_OPS and scope.holds(event):
            held.append(event.version)
        else:
            held = []
    return tuple(held)


def _published(events: list[Any], seq: int) -> list[int]:
    """Every version of a record published before `seq` (what a deletion removes)."""
    versions = [e.version for e in events if e.seq < seq and e.op in CONTENT_OPS]
    return list(dict.fromkeys(versions))


def moves_out(
    conn: Connection, scope: Scope, lo: int, hi: int | None, page_records: set[str]
) -> list:
    """The changes with a seq in [lo, hi) that moved a record out of the scope's district: a
    change into another district right after an event in this one (kind and entity cannot
    change while a record is published: they are part of its id). Only those rows are read
    back; each is tested by one probe of ix_changes_record (the record's previous event).

    Which of the log's changes are tested depends on what is cheap and complete. When the
    page holds the scope's whole history below `hi` (lo == 0), the changes of its own records
    (`page_records`). When the window is short (a busy district: PAGE_SIZE of its events and
    the other districts' in between), the kind's changes in the window. When it is long (a
    quiet district's page may span most of the log), the changes of the records of the
    district's own add/change events if there are at most MOVE_HISTORY of them; else the window."""
    if not scope.district or scope.entity_id:
        return []
    if lo == 0:
        ids: set[str] | None = page_records
    elif (hi or last_change_seq(conn) + 1) - lo <= MOVE_WINDOW:
        ids = None
    else:
        ids = _scope_records(conn, scope, hi)
    query = _moves_query(scope, lo, hi)
    if ids is None:  # the window: an index range scan of the kind (or the primary key)
        return conn.execute(query).all()
    ordered = sorted(ids)
    rows: list[Any] = []
    for i in range(0, len(ordered), _IN_BATCH):
        rows += conn.execute(query.where(EVENTS.c.record_id.in_(ordered[i : i + _IN_BATCH]))).all()
    return sorted(rows, key=lambda r: r.seq)


def _moves_query(scope: Scope, lo: int, hi: int | None) -> Select:
    """Changes in [lo, hi) into another district whose record's previous event (found by a
    backward probe of ix_changes_record) was in the scope's district."""
    previous = EVENTS.alias("previous")
    previous_district = (
        select(previous.c.district)
        .where(previous.c.record_id == EVENTS.c.record_id, previous.c.seq < EVENTS.c.seq)
        .order_by(previous.c.seq.desc())
        .limit(1)
        .scalar_subquery()
    )
    conds = [
        EVENTS.c.op == OP_CHANGE,
        EVENTS.c.seq >= lo,
        EVENTS.c.district.is_distinct_from(scope.district),
        previous_district == scope.district,
    ]
    if hi is not None:
        conds.append(EVENTS.c.seq < hi)
    if scope.kind != ALL:
        conds.append(EVENTS.c.kind == scope.kind)
    columns = (EVENTS.c.seq, EVENTS.c.record_id, EVENTS.c.version.label("ev_version"), EVENTS.c.at)
    return select(*columns).where(*conds)


def _scope_records(conn: Connection, scope: Scope, hi: int | None) -> set[str] | None:
    """The records of all the scope's add/change events below `hi`; None if there are more
    than MOVE_HISTORY such events (events, not records: a cut list of events would miss the
    records whose events in the scope are all older than the cut)."""
    ids: set[str] = set()
    left = MOVE_HISTORY + 1  # one more than allowed: reading it means "too many"
    below = [EVENTS.c.seq < hi] if hi is not None else []
    for conds in scope._parts():
        query = (
            select(EVENTS.c.record_id)
            .where(*conds, EVENTS.c.op.in_(CONTENT_OPS), *below)
            .order_by(EVENTS.c.seq.desc())
            .limit(left)
        )
        found = conn.execute(query).scalars().all()
        left -= len(found)
        if left <= 0:
            return None
        ids.update(found)
    return ids


def read_page(
    conn: Connection,
    scope: Scope,
    base_url: str,
    before: int | None = None,
    limit: int = PAGE_SIZE,
    today: date | None = None,
) -> Page:
    """The items of one feed page, newest first: `before` None is the current document."""
    today = today or clock.today()
    # Last-Modified moves on any event that can change the page without showing on it (a
    # record of an archive page withdrawn, a next-archive link appearing, a move out of a
    # district), read before the page (search_changed says why); and when an entry leaves at
    # read time (its publicity passed: ended_by_date).
    event_at = newest_event_at(conn, scope)
    rows = conn.execute(
        select(*_RECORD_COLUMNS, *_EVENT_COLUMNS)
        .select_from(EVENTS.join(RECORDS, RECORDS.c.id == EVENTS.c.record_id))
        .where(EVENTS.c.seq.in_(scope_seqs(scope, limit + 1, before=before)))
        .order_by(EVENTS.c.seq.desc())
    ).all()
    older = rows[limit - 1].seq if len(rows) > limit else None
    rows = rows[:limit]
    content = {r.id for r in rows if r.op in CONTENT_OPS}
    moves = moves_out(conn, scope, older or 0, before, content)
    history = _histories(
        conn, {r.id for r in rows if r.op != OP_ADD} | {m.record_id for m in moves}
    )
    items: list[Item] = []
    for row in rows:
        events = history.get(row.id, [])
        if row.op not in CONTENT_OPS:
            refs = [entry_id(base_url, row.id, v) for v in _published(events, row.seq)]
            items.append(deletion_item(row, base_url, refs))
        elif row.ev_version == row.version and visible(row, today):
            changed = row.op == OP_CHANGE
            replaces = _shown(events, scope, row.seq)
            items.append(entry_item(row, base_url, row.seq, utc(row.at), changed, replaces))
    moved = [(m, _shown(history[m.record_id], scope, m.seq)) for m in moves]
    moved = [(m, versions) for m, versions in moved if versions]
    items += [moved_item(m, base_url, list(versions)) for m, versions in moved]
    items.sort(key=lambda i: i.seq, reverse=True)
    newer = None
    if before is not None:
        ahead = list(
            conn.execute(scope_seqs(scope, limit + 1, since=before, ascending=True)).scalars()
        )
        newer = ahead[limit] if len(ahead) > limit else None
    stamps = [utc(r.at) for r in rows] + [utc(r.updated_at) for r in rows]
    stamps += [utc(m.at) for m, _ in moved]
    updated = max(stamps) if stamps else EMPTY_UPDATED
    page = Page(
        items=items,
        newest_seq=rows[0].seq if rows else 0,
        updated=updated,
        modified=last_change(updated, event_at, *ended_by_date(rows, today)),
        older=older,
        newer=newer,
    )
    page.key = digest(scope, before, base_url, today, page)
    return page


def search_page(
    conn: Connection,
    record_ids: list[str],
    base_url: str,
    today: date | None = None,
    changed: datetime | None = None,
) -> Page:
    """Records found by a search, in the given order, as entries (their current version).
    changed: search_changed(), read before the search; the page's Last-Modified is also no
    earlier than the day a found record left by its date (ended_by_date)."""
    today = today or clock.today()
    found: dict[str, Any] = {}
    if record_ids:
        query = select(*_RECORD_COLUMNS).where(RECORDS.c.id.in_(record_ids))
        found = {r.id: r for r in conn.execute(query).all()}
    rows = [found[rid] for rid in record_ids if rid in found and visible(found[rid], today)]
    # a newer version replaces the earlier ones a reader may hold (since it last left publication)
    history = _histories(conn, {r.id for r in rows if r.version > 1})
    items = []
    for r in rows:
        shown = _shown(history.get(r.id, []), EVERYWHERE, math.inf)
        replaces = tuple(v for v in shown if v < r.version)
        items.append(entry_item(r, base_url, 0, utc(r.updated_at), replaces=replaces))
    stamps = [utc(r.updated_at) for r in rows]
    updated = max(stamps) if stamps else EMPTY_UPDATED
    page = Page(
        items=items,
        newest_seq=0,
        updated=updated,
        modified=last_change(updated, changed, *ended_by_date(found.values(), today)),
    )
    page.key = digest(tuple(record_ids), None, base_url, today, page)
    return page


def digest(scope: Any, before: int | None, base_url: str, today: date, page: Page) -> str:
    """What the documents of a page are made of: equal digests, equal documents."""
    payload = json.dumps(
        [
            RENDER_VERSION,
            repr(scope),
            before,
            base_url,
            today.isoformat(),
            page.older,
            page.newer,
            page.updated.isoformat(),
            [asdict(i) for i in page.items],
        ],
        ensure_ascii=False,
        default=str,
        sort_keys=True,
    )
    return hashlib.blake2b(payload.encode(), digest_size=12).hexdigest()


# -- blacklist issues: one item per issue ---------------------------------------------------

ISSUE_FEED = "blacklist/issues"  # the issue feed's scope in its digest and its tag URI
ISSUE_LIMIT = 50  # issues in the feed (no archives: /blacklist lists every issue)
ISSUE_VALUE_MAX = 300  # characters of an entry's field in an item: the issue page has the rest
BLACKLIST_NAME = "食品安全“黑榜”"
# An entry's fields an item lists after its name, code and district: the issue page's columns
# (templates/blacklist_issue.html), nothing else of the public shape (no 责任人员).
ISSUE_ENTRY_FIELDS = ("products", "violation", "action")


def issue_entry_id(base_url: str, issue_id: str) -> str:
    """An issue item's Atom id / RSS guid: one per issue, whatever its entries become."""
    return f"tag:{tag_authority(base_url)},{TAG_YEAR}:blacklist/{issue_id}"


def issue_title(issue: dict[str, Any], count: int) -> str:
    """食品安全“黑榜”2026年第2期（4家）· 烟台市芝罘区市场监督管理局: several publishers number
    their issues alike, so the publisher is said too."""
    return f"{BLACKLIST_NAME}{issue['issue_no']}（{count}家）· {issue['publisher']}"


def issue_summary(issue: dict[str, Any], entries: list[dict[str, Any]]) -> str:
    names = "、".join(_text(e.get("entity_name")) for e in entries)
    return f"{issue['publisher']}于{issue['issued_on']}发布，公示中 {len(entries)} 家：{names}。"


def issue_content(entries: list[dict[str, Any]], base_url: str) -> str:
    """The entries as the issue page lists them, as an HTML list (every value escaped)."""
    base = base_url.rstrip("/")
    return "<ol>" + "".join(_issue_entry_html(e, base) for e in entries) + "</ol>"


def _issue_entry_html(pub: dict[str, Any], base: str) -> str:
    def esc(value: Any) -> str:
        return html.escape(_clip(_text(value), ISSUE_VALUE_MAX))

    name = esc(pub.get("entity_name") or pub.get("entity_id"))
    if pub.get("entity_id"):
        name = f'<a href="{esc(base + entity_url(pub["entity_id"]))}">{name}</a>'
    code = pub.get("uscc") or pub.get("reg_no")
    about = [f"统一社会信用代码：{esc(code)}"] if code else []
    about.append(f"区市：{esc(pub.get('district') or '—')}")
    lines = [f"{name}（{'；'.join(about)}）"]
    lines += [
        f"{_LABELS[key]}：{esc(pub.get(key))}" for key in ISSUE_ENTRY_FIELDS if _text(pub.get(key))
    ]
    lines.append(f'<a href="{esc(base + pub["url"])}">详情</a>')
    return "<li>" + "<br>".join(lines) + "</li>"


def _issue_rows(conn: Connection, issue_ids: list[str]) -> dict[str, list[Any]]:
    """Every record of these issues, in publication or not (a withdrawn entry's change dates
    its issue's item), by issue, each in the issue page's order (read.issue_entries): one
    query through ix_records_issue_id."""
    out: dict[str, list[Any]] = defaultdict(list)
    if not issue_ids:
        return out
    rows = conn.execute(
        select(*_RECORD_COLUMNS)
        .where(RECORDS.c.issue_id.in_(issue_ids))
        .order_by(RECORDS.c.issue_id, RECORDS.c.district, RECORDS.c.id)
    ).all()
    for row in rows:
        out[row.issue_id].append(row)
    return out


def issue_item(issue: dict[str, Any], rows: list[Any], base_url: str, today: date) -> Item | None:
    """An issue's item, listing its entries in publication; None when it has none."""
    entries = [public_record(r) for r in rows if visible(r, today)]
    if not entries:
        return None
    published = day_start(date.fromisoformat(issue["issued_on"]))
    # the latest change to any entry: published, corrected, withdrawn, or ended by its date
    changed = [utc(r.updated_at) for r in rows] + ended_by_date(rows, today)
    return Item(
        seq=0,
        record_id=issue["id"],  # an issue item: the issue's id
        guid=issue_entry_id(base_url, issue["id"]),
        title=issue_title(issue, len(entries)),
        link=base_url.rstrip("/") + issue["url"],
        updated=max([published, *changed]),
        published=published,
        summary=issue_summary(issue, entries),
        content=issue_content(entries, base_url),
        categories=[KIND_LABELS["blacklist"], *([issue["district"]] if issue["district"] else [])],
        rss_date=published,  # an RSS reader sorts by it: an old issue changed stays in place
    )


def read_issue_page(
    conn: Connection, base_url: str, limit: int = ISSUE_LIMIT, today: date | None = None
) -> Page:
    """The issue feed: the newest `limit` issues with entries in publication (read.blacklist_issues'
    order: 发布日期, newest first), one item each. An issue still counted but whose entries all
    passed their publicity (before the nightly expire) is left out, as its page is."""
    today = today or clock.today()
    # Last-Modified also moves when an issue leaves the feed (its last entry withdrawn): the
    # newest blacklist event, read before the issues (search_changed says why).
    event_at = newest_event_at(conn, Scope(kind="blacklist"))
    issues = read.blacklist_issues(conn)
    items: list[Item] = []
    ended: list[datetime] = []
    for start in range(0, len(issues), limit):
        if len(items) >= limit:
            break
        chunk = issues[start : start + limit]
        rows = _issue_rows(conn, [issue["id"] for issue in chunk])
        for issue in chunk:
            if len(items) >= limit:
                break
            item = issue_item(issue, rows[issue["id"]], base_url, today)
            ended += ended_by_date(rows[issue["id"]], today)  # also of an issue that left
            if item is not None:
                items.append(item)
    updated = max((i.updated for i in items), default=EMPTY_UPDATED)
    page = Page(
        items=items,
        newest_seq=0,
        updated=updated,
        modified=last_change(updated, event_at, *ended),
    )
    page.key = digest(ISSUE_FEED, None, base_url, today, page)
    return page


# -- documents ----------------------------------------------------------------------------


@dataclass
class FeedMeta:
    """A feed document's own data (the portal knows its URLs and titles)."""

    id: str
    title: str
    subtitle: str
    self_url: str  # this document (absolute)
    html_url: str  # the page the feed follows (absolute)
    site_url: str  # the portal's home page (the publisher's uri)
    current_url: str | None = None  # archives: the subscription document
    prev_archive: str | None = None
    next_archive: str | None = None
    archive: bool = False  # RFC 5005 fh:archive


def _generator(meta: FeedMeta, page: Page, self_type: str) -> FeedGenerator:
    fg = FeedGenerator()
    fg.id(meta.id)
    fg.title(xml_safe(meta.title))  # an entity's name, a search's words: stored text
    fg.subtitle(xml_safe(meta.subtitle))
    fg.description(xml_safe(meta.subtitle))
    fg.author({"name": AUTHORITY, "uri": meta.site_url})
    fg.language(LANG)
    fg.generator("disclosure")
    fg.updated(page.updated)  # also RSS lastBuildDate: never "now", or no two renders agree
    fg.link(href=meta.self_url, rel="self", type=self_type)
    fg.link(href=meta.html_url, rel="alternate", type="text/html")  # last: RSS <link>
    return fg


def _archive_links(meta: FeedMeta) -> list[tuple[str, str]]:
    links = [
        ("current", meta.current_url),
        ("prev-archive", meta.prev_archive),
        ("next-archive", meta.next_archive),
    ]
    return [(rel, href) for rel, href in links if href]


def render_atom(meta: FeedMeta, page: Page) -> bytes:
    fg = _generator(meta, page, "application/atom+xml")
    for item in page.items:
        if item.deleted:
            continue
        fe = fg.add_entry(order="append")
        fe.id(item.guid)
        fe.title(xml_safe(item.title))
        fe.link(href=item.link, rel="alternate", type="text/html")
        fe.published(item.published)
        fe.updated(item.updated)
        fe.summary(xml_safe(item.summary))
        if item.content:
            fe.content(xml_safe(item.content), type="html")
        fe.category(_categories(item))
    root = etree.fromstring(fg.atom_str())
    first_entry = root.find(f"{{{ATOM_NS}}}entry")
    at = root.index(first_entry) if first_entry is not None else len(root)
    extra: list[etree._Element] = []
    for rel, href in _archive_links(meta):
        extra.append(
            etree.Element(f"{{{ATOM_NS}}}link", href=href, rel=rel, type="application/atom+xml")
        )
    if meta.archive:
        extra.append(etree.Element(f"{{{FH_NS}}}archive"))
    for item in page.items:
        extra.extend(_tombstones(item))  # a deletion's, or the versions an entry replaces
    for offset, el in enumerate(extra):
        root.insert(at + offset, el)
    etree.cleanup_namespaces(root, top_nsmap={"at": AT_NS, "fh": FH_NS})
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _tombstones(item: Item) -> list[etree._Element]:
    """RFC 6721 at:deleted-entry elements, one per entry id the deletion removes."""
    out = []
    for ref in item.refs:
        el = etree.Element(f"{{{AT_NS}}}deleted-entry", ref=ref, when=item.updated.isoformat())
        comment = etree.SubElement(el, f"{{{AT_NS}}}comment")
        comment.set(XML_LANG, LANG)
        comment.text = xml_safe(item.comment)
        out.append(el)
    return out


def _categories(item: Item) -> list[dict[str, str]]:
    return [{"term": xml_safe(c)} for c in item.categories]


def render_rss(meta: FeedMeta, page: Page) -> bytes:
    fg = _generator(meta, page, "application/rss+xml")
    for item in page.items:
        fe = fg.add_entry(order="append")
        fe.guid(item.guid, permalink=False)
        fe.title(xml_safe(item.title))
        fe.link(href=item.link)
        fe.pubDate(item.rss_date or item.updated)
        if not item.deleted:  # a deletion: guid, title, link and date only
            fe.description(xml_safe(item.content or item.summary))
            fe.category(_categories(item))
    root = etree.fromstring(fg.rss_str())
    channel = root.find("channel")
    at = channel.index(channel.find("item")) if channel.find("item") is not None else len(channel)
    for offset, (rel, href) in enumerate(_archive_links(meta)):
        channel.insert(
            at + offset,
            etree.Element(f"{{{ATOM_NS}}}link", href=href, rel=rel, type="application/rss+xml"),
        )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
