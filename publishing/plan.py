"""Plan: diff cleaned rows against what is published and hand each difference to the Writer.

For each row: add · change · withdraw · unchanged (plus the quiet cases: a record that arrives
already expired, superseded, or published only as statistics, is stored but not announced).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select

from publishing import bulk, entities, ids
from publishing.clean import KEY_CELLS, field_keys
from publishing.commit import CORRECTED, HELD_REASONS, RECORDS, Writer, expired, kept_reason
from publishing.contract import KIND_PREFIX
from publishing.initial_load import Deferred, restore_constraints, restore_indexes
from publishing.models import (
    ACTIVE,
    AGGREGATE,
    EXPIRED,
    OP_ADD,
    OP_CHANGE,
    OP_EXPIRE,
    OP_WITHDRAW,
    SUPERSEDED,
    WITHDRAWN,
)
from publishing.rows import CleanRow, EntityFields, Reject
from publishing.rules import Rules

# A penalty's natural key is its decision number alone: one that names another party than the
# published record does is refused, never taken over (masked digits can make two numbers equal).
R_OTHER_PARTY = ("该决定书文号已在另一主体（{entity}）名下公示，同一文号不能改属其他主体"
                 "（文号中的长数字串脱敏后可能与其他文号相同，请核对）；如原记录有误，请先撤销原记录")

R_NEVER_PUBLISHED = "要撤销的记录未曾公示"

_CATEGORY_FIELD = {"penalty": "domain", "credit_mark": "scheme", "return_pledge": "category"}
_STATE_COLUMNS = (RECORDS.c.id, RECORDS.c.kind, RECORDS.c.status, RECORDS.c.status_reason,
                  RECORDS.c.version, RECORDS.c.content_hash, RECORDS.c.district,
                  RECORDS.c.entity_id, RECORDS.c.issue_id, RECORDS.c.group_key,
                  RECORDS.c.event_date)


_STATE_NAMES = tuple(c.name for c in _STATE_COLUMNS)
_RESTORE_NAMES = (*_STATE_NAMES, "publicity_until", "category")
_RIVAL_NAMES = (*_STATE_NAMES, "publicity_until")  # is_superseding() reads the end
_LOOKUP_BATCH = 5000  # keys per query (SQLite's limit on parameters is 32,766)


def content_hash(entity_id: str | None, district: str | None, event_date: date | None,
                 publicity_until: date | None, repairable_from: date | None, data_json: bytes) -> str:
    """What a record's content is compared by: a file's row against what is published."""
    return ids.bytes_hash(f"{entity_id}|{district}|{event_date}|{publicity_until}|"
                          f"{repairable_from}|".encode() + data_json)


def in_stored_order(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """Data with its keys in the order record_row stores them (PostgreSQL's jsonb reorders
    them), so that the same content serialises, and hashes, the same."""
    order = (*entities.RECORD_FIELDS, *field_keys(kind))
    return {**{k: data[k] for k in order if k in data}, **data}


# A stored record's columns that a new version carries over unless it changes them.
_CARRIED = ("id", "kind", "entity_id", "district", "status", "status_reason", "version",
            "event_date", "publicity_until", "repairable_from", "issue_id", "category", "grade",
            "source_file", "source_row")


def next_version(stored: Any, data: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A stored record's new content for Writer.update (a correction, recomputed periods): its
    columns with `changes` over them, `data` serialised once in stored order, and the content
    hash record_row would give it, so that a later file with the same row is unchanged."""
    new = {c: getattr(stored, c) for c in _CARRIED} | changes
    new["data"] = data_json = bulk.dumps_utf8(in_stored_order(stored.kind, data))
    new["content_hash"] = content_hash(new["entity_id"], new["district"], new["event_date"],
                                       new["publicity_until"], new["repairable_from"], data_json)
    return new


def record_row(cr: CleanRow, rules: Rules) -> dict[str, Any]:
    """The stored form of a cleaned row (everything but status, version and times)."""
    kind, f, ent = cr.kind, cr.fields, cr.entity
    data = {"uscc": ent.uscc, "reg_no": ent.reg_no, "entity_name": ent.name,
            "legal_rep": ent.legal_rep, "address": ent.address, **f}
    record_id = ids.record_id(kind, cr.identity)
    # the same digest when the identity is the natural key (all kinds but credit marks)
    group_key = record_id if cr.identity == cr.natural_key else ids.group_key(kind, cr.natural_key)
    row: dict[str, Any] = {
        "id": record_id,
        "group_key": group_key,
        "kind": kind,
        "entity_id": ent.id,
        "district": ent.district,
        "event_date": cr.event_date,
        "publicity_until": cr.publicity_until or rules.publicity_until(kind, cr.event_date, f),
        "repairable_from": rules.repairable_from(kind, cr.event_date, f),
        "issue_id": ids.issue_id(f["publisher"], f["issue_no"]) if kind == "blacklist" else None,
        "category": f.get(_CATEGORY_FIELD.get(kind, ""), None),
        "grade": f.get("grade") if kind == "credit_mark" else None,
        "data": data,
        "source_file": cr.file,
        "source_row": cr.row,
    }
    # Serialise once, to UTF-8: the same bytes are hashed, pickled to the publisher and stored
    # (never decoded and encoded again on the way).
    data_json = bulk.dumps_utf8(row["data"])
    row["data"] = data_json
    row["content_hash"] = content_hash(ent.id, ent.district, cr.event_date, row["publicity_until"],
                                       row["repairable_from"], data_json)
    return row


class Prepared(NamedTuple):
    """A cleaned row in its stored form, ready to be diffed (built where the row is cleaned,
    so a forked cleaning process does this work too)."""

    op: str  # upsert | withdraw
    entity: EntityFields
    record: dict[str, Any]  # record_row()
    # A withdrawal's natural key as the file names and has it (column, value): what its reject
    # names when the record was never published. None for an upsert.
    key_cells: tuple[str, str] | None = None


def prepare(cr: CleanRow, rules: Rules) -> Prepared:
    return Prepared(cr.op, cr.entity, record_row(cr, rules), cr.extra.get(KEY_CELLS))


def target_status(row: dict[str, Any], rules: Rules, today: date) -> str:
    if expired(row["publicity_until"], today):
        return EXPIRED
    if row["kind"] == "credit_mark" and not rules.scheme_is_public(row["category"]):
        return AGGREGATE
    return ACTIVE


# -- supersession of credit marks (also re-run by publishing.review on corrected marks) ------
CURRENT = (ACTIVE, AGGREGATE)  # a group's current mark: published, or counted in statistics
# The status reason (and the change event's) of a record that leaves publication so.
LEAVE_REASONS = {EXPIRED: "expired", AGGREGATE: "aggregate", SUPERSEDED: "superseded"}
# The states of a group's marks that may supersede its older marks: the current ones, and one
# whose 有效期至 has passed, whether it ended after it arrived or had ended already (an ended
# newer mark still replaced the older; the result must not depend on the order the files came
# in), if it ended on or after its own 标注日期 (supersedes() decides). A withdrawn mark (a
# file, a snapshot, an upheld objection) supersedes nothing: it should never have been
# published, and the newest mark it superseded is current again (restorable).
SUPERSEDING = (*CURRENT, EXPIRED)
# Records out of publication that a withdrawal (a file's 撤销, a snapshot) must still reach,
# quietly: a mark counted in the statistics, one a withdrawal of the newer mark would restore,
# and an expired record, which a longer period (`expire --recompute`) would bring back.
QUIETLY_WITHDRAWN = (AGGREGATE, SUPERSEDED, EXPIRED)


def supersedes(status: str, event_date: date, publicity_until: date | None) -> bool:
    """Whether a credit mark in this state supersedes its group's older marks: a current one,
    or an ended one whose 有效期至 is on or after its 标注日期. An end before its own date is a
    mistyped date (such rows are rejected at intake now; older ones are stored as expired): the
    mark never ran, and must not withdraw the entity's current mark. SUPERSEDES_SQL is the same
    test in SQL."""
    if status in CURRENT:
        return True
    return status == EXPIRED and publicity_until is not None and publicity_until >= event_date


def is_superseding(mark: Any) -> bool:
    """supersedes() of a stored mark (a row with status, event_date and publicity_until)."""
    return supersedes(mark.status, mark.event_date, mark.publicity_until)


# supersedes() as a condition on RECORDS (NULL publicity_until: not ended, as in Python)
SUPERSEDES_SQL: ColumnElement[bool] = or_(
    RECORDS.c.status.in_(CURRENT),
    and_(RECORDS.c.status == EXPIRED, RECORDS.c.publicity_until >= RECORDS.c.event_date),
)


def _corrected_twin(row: dict[str, Any], rivals: list[Any]) -> Any:
    """The current mark of the row's group and date that an upheld objection corrected into
    them, if any. A mark's id is made of its scheme, domain and date, and a correction keeps
    the id: the platform's export with the corrected values has another id, and would stand
    beside the corrected mark as a second current mark of the same group and date."""
    return next((r for r in rivals if r.status_reason == CORRECTED and r.id != row["id"]
                 and r.status in CURRENT and r.event_date == row["event_date"]), None)


def superseded_by_newer(row: dict[str, Any], rivals: list[Any]) -> bool:
    """Whether a mark of the row's group that supersedes (is_superseding: current, or ended
    after its date) is newer than it (it is then superseded)."""
    return any(o.id != row["id"] and o.event_date > row["event_date"] and is_superseding(o)
               for o in rivals)


def older_rivals(row: dict[str, Any], rivals: list[Any]) -> list[Any]:
    """The current marks of the row's group that it supersedes, being newer (callers ask
    supersedes() of the row first)."""
    return [o for o in rivals
            if o.id != row["id"] and o.status in CURRENT and o.event_date < row["event_date"]]


def supersede_older(writer: Writer, row: dict[str, Any], rivals: list[Any]) -> int:
    """Supersede the current marks of the row's group that are older than it (older_rivals):
    a published one leaves publication (op withdraw, reason superseded), one counted in the
    statistics quietly. How many. Also `expire --recompute`'s, on marks stored before an
    ended mark superseded (publishing.expire)."""
    older = older_rivals(row, rivals)
    for other in older:
        op = OP_WITHDRAW if other.status == ACTIVE else None
        writer.set_status(other, SUPERSEDED, op, "superseded", kept_reason=kept_reason(other))
    return len(older)


def restorable(members: list[Any], seen: set[int] | None = None) -> Any | None:
    """The mark that is current again in a group that lost its newest mark: the newest it
    superseded (of those the snapshot holds, `seen`); None while the group has a current mark,
    or when its newest mark left is an ended one (that one still supersedes the older; one
    that ended before its own date supersedes nothing, and is passed over)."""
    if any(r.status in CURRENT for r in members):
        return None
    left = [r for r in members if (r.status == SUPERSEDED or is_superseding(r))
            and (seen is None or int(r.id[3:], 16) in seen)]
    # on a tie of dates (a mark corrected into another's date) the superseded one returns
    newest = max(left, key=lambda r: (r.event_date, r.status == SUPERSEDED), default=None)
    return newest if newest is not None and newest.status == SUPERSEDED else None


def load_groups(conn: Connection, group_keys: Iterable[str]) -> dict[str, list[Any]]:
    """The stored marks of these groups (state, end of publicity, scheme), by group key."""
    keys = sorted(set(group_keys))
    groups: dict[str, list[Any]] = {}
    for i in range(0, len(keys), _LOOKUP_BATCH):
        for r in bulk.select_in(conn, RECORDS, _RESTORE_NAMES, "group_key",
                                keys[i:i + _LOOKUP_BATCH]):
            groups.setdefault(r.group_key, []).append(r)
    return groups


@dataclass
class Planner:
    """Plans and writes one publication, chunk by chunk, inside the caller's transaction."""

    conn: Connection
    writer: Writer
    rules: Rules
    today: date
    counts: Counter = field(default_factory=Counter)
    rejects: list[Reject] = field(default_factory=list)
    track_seen: bool = False  # snapshot mode needs the ids the files contain
    upkeep: Deferred = field(default_factory=Deferred)  # what an initial load builds at its end
    seen: dict[str, set[int]] = field(default_factory=dict)  # kind -> record ids in the files
    # Kinds of which nothing is stored yet. Natural keys are unique within a file (duplicates
    # are rejected), and so are ids and group keys: rows of the first file of such a kind need
    # no lookup of their stored state, nor of rival credit marks.
    unstored: set[str] = field(init=False)
    files: list[str] = field(default_factory=list)  # in the order they were published

    def __post_init__(self) -> None:
        self.unstored = {kind for kind in KIND_PREFIX if not self._any_stored(kind)}

    def finish_file(self, kind: str, path: str) -> None:
        self.unstored.discard(kind)
        self.files.append(path)

    def restore_upkeep(self) -> None:
        """Build what an initial load deferred: the entities, the indexes, the constraints."""
        self._build_entities()
        restore_indexes(self.conn, self.upkeep)
        restore_constraints(self.conn, self.upkeep)

    def _build_entities(self) -> None:
        """The entities of the records stored so far (a scan and a sort, before any index on
        the records' entity ids exists to get in the way)."""
        if self.upkeep.entities:
            self.writer.flush()
            entities.build_from_records(self.conn, self.writer.batch_id, self.files, self.writer.at)
            self.upkeep.entities = False

    def apply_chunk(self, rows: list[Prepared]) -> None:
        known = [p.record for p in rows if p.record["kind"] not in self.unstored]
        if known:  # a second file of a kind: its rows are looked up (by id and group key), and
            self._build_entities()  # from here on entities are merged as they come
            restore_indexes(self.conn, self.upkeep)
        stored = self._stored([r["id"] for r in known])
        rivals = self._rivals([r for r in known if r["kind"] == "credit_mark"])
        sightings = []
        for op, entity, row, key_cells in rows:
            if self.track_seen:
                self.seen.setdefault(row["kind"], set()).add(int(row["id"][3:], 16))
            if op == "withdraw":
                self._withdraw(row, stored.get(row["id"]), key_cells)
                continue
            sightings.append((entity, row["event_date"]))
            self._upsert(row, stored.get(row["id"]), rivals.get(row["group_key"], []))
        if not self.upkeep.entities:
            entities.upsert(self.conn, sightings, self.writer.at)
        self.writer.flush()

    # -- one row -------------------------------------------------------------------------
    def _upsert(self, row: dict[str, Any], current: Any, rivals: list[Any]) -> None:
        if current is not None and self._stored_decides(row, current):
            return
        if current is None and rivals and _corrected_twin(row, rivals) is not None:
            self.counts["held"] += 1  # the corrected mark, as the platform now exports it
            return
        status = target_status(row, self.rules, self.today)
        if current is not None and current.status == WITHDRAWN and status != ACTIVE:
            self.counts["unchanged"] += 1  # withdrawn and still not publishable: it stays
            return  # out of supersession too (a withdrawn mark supersedes nothing)
        if row["kind"] == "credit_mark" and supersedes(status, row["event_date"],
                                                       row["publicity_until"]):
            status = self._supersede(row, rivals, status)
        if current is None:
            row.update(status=status, version=1,
                       status_reason="superseded" if status == SUPERSEDED else None)
            self.writer.insert(row, OP_ADD if status == ACTIVE else None)
            self.counts["added" if status == ACTIVE else f"stored_{status}"] += 1
            return
        was_public = current.status == ACTIVE
        same = current.content_hash == row["content_hash"]
        if same and current.status == status:
            self.counts["unchanged"] += 1
            return
        if status == ACTIVE:
            op, bump = (OP_ADD, 1) if not was_public else (OP_CHANGE, 1)
            self.counts["added" if op == OP_ADD else "changed"] += 1
        elif was_public:
            op, bump = (OP_EXPIRE if status == EXPIRED else OP_WITHDRAW), 1
            self.counts["expired" if status == EXPIRED else "withdrawn"] += 1
        elif current.status in (WITHDRAWN,):
            self.counts["unchanged"] += 1  # withdrawn and still not publishable
            return
        else:
            op, bump = None, 0  # quiet: content of a record that is not public
            self.counts["unchanged"] += 1
        reason = LEAVE_REASONS.get(status)
        row.update(status=status, status_reason=reason, version=current.version + bump)
        self.writer.update(row, op, reason if op else None)

    def _stored_decides(self, row: dict[str, Any], current: Any) -> bool:
        """Whether the stored record, not the file's row, decides what becomes of it (the row
        is refused, held back, or brings back the corrected content). Checked before any
        supersession: such a row must not supersede the current mark of its group."""
        if row["kind"] == "penalty" and current.status == ACTIVE \
                and current.entity_id != row["entity_id"]:
            self.rejects.append(Reject(row["source_file"], row["source_row"], "uscc", row["entity_id"],
                                       R_OTHER_PARTY.format(entity=current.entity_id)))
            return True
        if current.status == WITHDRAWN and current.status_reason in HELD_REASONS:
            self.counts["held"] += 1  # withdrawn on a request: files do not bring it back
            return True
        if current.status_reason == CORRECTED and current.status != ACTIVE:
            self._republish_corrected(current, row)
            return True
        if current.status_reason == CORRECTED and current.content_hash != row["content_hash"]:
            self.counts["held"] += 1  # corrected on an upheld objection: files do not undo it
            return True
        return False

    def _withdraw(self, row: dict[str, Any], current: Any,
                  key_cells: tuple[str, str] | None = None) -> None:
        if current is None:
            # Which record: its key as the file names and has it (the op column would not say).
            column, value = key_cells or ("op", "撤销")
            # nor does it stop a snapshot's withdrawals: no published record hides behind it
            self.rejects.append(Reject(row["source_file"], row["source_row"], column, value,
                                       R_NEVER_PUBLISHED, never_published=True))
            return
        if current.status != ACTIVE and current.status not in QUIETLY_WITHDRAWN:
            self.counts["unchanged"] += 1
            return
        self._withdraw_one(current, "file")
        # the mark it superseded is current again (restorable decides: looked for also after
        # a mark that ended before its date, which superseded nothing; harmless)
        if current.status in SUPERSEDING and current.kind == "credit_mark":
            self.writer.flush()
            self._restore_superseded([current.group_key])

    def _withdraw_one(self, current: Any, reason: str) -> None:
        """A file (or a snapshot) withdraws a record: a published one with a change event; a
        statistics-only or superseded mark, or an expired record, quietly (nothing public
        changes), yet withdrawn, so that neither the statistics, a restoration of its group nor
        a longer period bring it back. One corrected
        on an upheld objection keeps its mark, so that a file bringing it back publishes the
        correction. Counted as `withdrawn` only with its change event (what readers compare
        the count with), else as `withdrawn_quietly`."""
        public = current.status == ACTIVE
        self.writer.set_status(current, WITHDRAWN, OP_WITHDRAW if public else None, reason,
                               bump=public, kept_reason=kept_reason(current))
        self.counts["withdrawn" if public else "withdrawn_quietly"] += 1

    def _republish_corrected(self, current: Any, row: dict[str, Any]) -> None:
        """A file brings back a record that the bureau corrected on an upheld objection while
        (or after) it was out of publication: the stored, corrected content is what returns,
        not the file's (counted as held when they differ). A mark returns among the marks of
        its corrected group, which may differ from the file row's (a corrected scheme or
        domain)."""
        stored = self._full_row(current.id)
        status = target_status(stored, self.rules, self.today)
        if status == ACTIVE and stored["kind"] == "credit_mark":
            group = stored["group_key"]
            status = self._supersede(stored, load_groups(self.conn, [group]).get(group, []))
        same = current.content_hash == row["content_hash"]
        if not same:
            self.counts["held"] += 1
        if status != ACTIVE:  # past its publicity (or superseded): it stays out, still corrected
            self.counts["unchanged"] += same
            return
        stored.update(status=ACTIVE, status_reason=CORRECTED, version=current.version + 1)
        self.writer.update(stored, OP_ADD)
        self.counts["added"] += 1

    def _full_row(self, record_id: str) -> dict[str, Any]:
        """Every column of a stored record (only for the few records corrected on objections)."""
        self.writer.flush()
        query = select(RECORDS).where(RECORDS.c.id == record_id)
        return dict(self.conn.execute(query).mappings().one())

    def _supersede(self, row: dict[str, Any], rivals: list[Any], status: str = ACTIVE) -> str:
        """A newer mark of the same scheme and domain supersedes the older one: `status` (the
        row's own state: published, counted in the statistics, which count an entity's
        current mark only, or ended) unless a newer one supersedes it. An ended row stays
        expired either way, and still supersedes the older marks (the caller asked
        supersedes())."""
        if superseded_by_newer(row, rivals):
            return SUPERSEDED if status in CURRENT else status
        superseded = supersede_older(self.writer, row, rivals)
        if superseded:  # counted only when some were (the report names what happened)
            self.counts["superseded"] += superseded
        return status

    # -- lookups -------------------------------------------------------------------------
    def _any_stored(self, kind: str) -> bool:
        query = select(RECORDS.c.id).where(RECORDS.c.kind == kind).limit(1)
        return self.conn.execute(query).first() is not None

    def _stored(self, record_ids: list[str]) -> dict[str, Any]:
        if not record_ids:
            return {}
        rows = bulk.select_in(self.conn, RECORDS, _STATE_NAMES, "id", record_ids)
        return {r.id: r for r in rows}

    def _rivals(self, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
        keys = list({r["group_key"] for r in rows})
        if not keys:
            return {}
        out: dict[str, list[Any]] = {}
        states = ", ".join(f"'{s}'" for s in SUPERSEDING)  # is_superseding() narrows them
        stored = bulk.select_in(self.conn, RECORDS, _RIVAL_NAMES, "group_key", keys,
                                where=f" AND status IN ({states})")
        for r in stored:
            out.setdefault(r.group_key, []).append(r)
        return out

    def published_counts(self) -> dict[str, Counter]:
        """Records in publication (active, publicity not ended) of each kind, by district (None:
        a record without one). Counted before a snapshot's files change anything: what its
        withdrawals are weighed against, for the kind and for each district. One query, as
        fast as by kind alone (a million records, SQLite: 1.4 s either way, a scan of
        ix_records_kind_district_date that reads each end date from the table)."""
        from publishing.read import in_publication  # snapshots only: kept off the CLI's start

        query = (select(RECORDS.c.kind, RECORDS.c.district, func.count())
                 .where(in_publication(self.today))
                 .group_by(RECORDS.c.kind, RECORDS.c.district))
        out: dict[str, Counter] = {}
        for kind, district, n in self.conn.execute(query):
            out.setdefault(kind, Counter())[district] = n
        return out

    def unseen(self, kind: str) -> list[Any]:
        """Snapshot mode: the records of the kind that the files no longer contain and a
        snapshot withdraws (statistics-only and superseded marks too: the snapshot is the whole
        set), with their end of publicity."""
        seen = self.seen.get(kind, set())
        query = select(*_STATE_COLUMNS, RECORDS.c.publicity_until).where(
            RECORDS.c.kind == kind, RECORDS.c.status.in_((ACTIVE, *QUIETLY_WITHDRAWN)))
        return [r for r in self.conn.execute(query).all() if int(r.id[3:], 16) not in seen]

    def withdraw_unseen(self, kind: str, gone: list[Any] | None = None) -> None:
        """Snapshot mode: withdraw the records of the kind that the files no longer contain
        (`gone`, as unseen() found them; looked up when not given)."""
        seen = self.seen.get(kind, set())
        if gone is None:
            gone = self.unseen(kind)
        for r in gone:
            self._withdraw_one(r, "snapshot")
        self.writer.flush()
        # groups that lost their newest mark (a current or an ended one; restorable decides)
        lost = [r.group_key for r in gone if r.status in SUPERSEDING]
        if kind == "credit_mark" and lost:
            self._restore_superseded(lost, seen)

    def _restore_superseded(self, group_keys: list[str], seen: set[int] | None = None) -> None:
        """The newer mark of these groups has just been withdrawn (by a file, or by a snapshot
        that no longer holds it): the newest mark it superseded (of those the snapshot holds,
        `seen`) is current again, else the entity would be left with no mark at all."""
        for members in load_groups(self.conn, group_keys).values():
            newest = restorable(members, seen)
            if newest is None:
                continue  # the group still has a current mark, or none to restore
            status = target_status(newest._asdict(), self.rules, self.today)
            if status == ACTIVE:
                self.writer.set_status(newest, ACTIVE, OP_ADD, None, kept_reason=kept_reason(newest))
            else:
                self.writer.set_status(newest, status, None, status, kept_reason=kept_reason(newest))
            self.counts["restored"] += 1
        self.writer.flush()
