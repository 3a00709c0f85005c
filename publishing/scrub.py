"""`disclosure scrub`: apply today's masking and code checks to what older releases stored.

Cleaning rules change (publishing.redact's masking, publishing.codes' checks); records and
entities stored before a change keep what the older rules let through. scrub scans every record
(every status: a withdrawn, expired or superseded record can come back, and its stored content
with it) and every entity, with the cleaner's own functions:

- a record in publication whose public data today's masking changes: a new version (op change,
  reason "scrub") through the one writer, as a correction makes one, so that pages, feeds,
  search and open data follow;
- a record whose entity code (entity id, 统一社会信用代码, 注册号) the cleaner now rejects as a
  resident ID number: withdrawn (op withdraw, reason "scrub"; without an event when it was not
  in publication) and its stored codes masked. Its entity is left with no visible record, so it
  has no profile, search document or credit-check answer (publishing.read.published_entity).
  When the ID number is the entity's id it stays the key of its rows: reported for the operator;
- a record not in publication: masked in place, without an event (nothing public changes);
- an entity's name, former names, legal representative, address and ID-like codes: masked in
  place (after the entities that lost records were merged again from the rest).

Everything in ONE transaction with one batch (started only when something is written), so a
second run finds nothing to do and writes nothing. The report names record ids, fields and
reasons, never a value that was masked.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, select

from publishing import bulk
from publishing.bulk import dumps_utf8
from publishing.codes import R_REG_NO_ID, R_USCC_HEAD_ID, reg_no_is_id_like, uscc_problem
from publishing.commit import (
    ENTITIES,
    RECORDS,
    Writer,
    finish_batch,
    lock_writer,
    start_batch,
)
from publishing.contract import ENTITY_COLUMNS, KIND_COLUMNS
from publishing.db import writer_connection
from publishing.models import ACTIVE, OP_CHANGE, OP_WITHDRAW, WITHDRAWN
from publishing.plan import _CATEGORY_FIELD, content_hash, in_stored_order
from publishing.redact import mask_text, mask_value

SCRUB = "scrub"  # the change events' reason, the withdrawn records' status reason, the batch mode
PAGE = 2000  # rows per keyset page
R_MASKED = "含个人信息(身份证号、手机号或银行卡号),按现行规则遮蔽"
R_KEY = ("主体代码疑似身份证号,且是该主体数据的标识(主键),无法自动遮蔽:其记录已撤下,"
         "主体不再公示;请人工处理")
# What each action (and count) means, for the printed lines.
LABELS = {
    "new_version": "发布遮蔽后的新版本",
    "withdraw": "撤下公示",
    "withdraw_in_place": "标记为撤下(未公示,无变更事件)",
    "mask_in_place": "原位遮蔽(无变更事件)",
    "needs_operator": "需人工处理",
    "entities_masked": "主体原位遮蔽",
}
# Column types the cleaner never masks: codes are checked instead (id_like_reason); dates,
# money and integers are not text (a fine of 13800000000 yuan is no mobile number).
_NOT_TEXT = frozenset({"code", "date", "money", "int"})
_CODE_KEYS = ("uscc", "reg_no")
_ENTITY_TEXT = ("name", "former_names", "legal_rep", "address")
_ENTITY_UPDATE = (*_ENTITY_TEXT, *_CODE_KEYS, "updated_at")


def _not_masked(columns: tuple) -> frozenset[str]:
    return frozenset(c.key for c in columns if c.type in _NOT_TEXT)


_SKIP = {kind: _not_masked(ENTITY_COLUMNS + cols) for kind, cols in KIND_COLUMNS.items()}
_SKIP_DEFAULT = _not_masked(ENTITY_COLUMNS)


def id_like_reason(code: Any) -> str | None:
    """Why a stored entity code is a resident ID number by the cleaner's rules (clean._uscc,
    clean._reg_no), or None."""
    if not isinstance(code, str) or not code:
        return None
    if len(code) == 15:
        return R_REG_NO_ID if reg_no_is_id_like(code) else None
    return R_USCC_HEAD_ID if uscc_problem(code) == R_USCC_HEAD_ID else None


def scrub_data(kind: str, data: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A record's data with today's masking applied to every text field and its ID-like codes
    masked; and (field, reason) of each field that changed."""
    skip = _SKIP.get(kind, _SKIP_DEFAULT)
    out: dict[str, Any] = {}
    found: list[tuple[str, str]] = []
    for key, value in data.items():
        if key in _CODE_KEYS:
            reason = id_like_reason(value)
            new = mask_text(value) if reason else value
        else:
            reason, new = R_MASKED, value if key in skip else mask_value(value)
        if new != value:
            found.append((key, reason or R_MASKED))
        out[key] = new
    return out, found


@dataclass
class ScrubResult:
    dry_run: bool
    items: list[dict[str, Any]] = field(default_factory=list)  # what changed (or would)
    attention: list[dict[str, Any]] = field(default_factory=list)  # left to the operator
    counts: Counter = field(default_factory=Counter)
    batch_id: int | None = None
    events: int = 0

    @property
    def wrote(self) -> bool:
        return self.batch_id is not None

    def as_json(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "batch_id": self.batch_id, "events": self.events,
                "counts": dict(self.counts), "items": self.items, "attention": self.attention}


class _Scrubber:
    """One scrub inside the caller's transaction; the batch and writer start at the first write."""

    def __init__(self, conn: Connection, result: ScrubResult) -> None:
        self.conn, self.result = conn, result
        self.writer: Writer | None = None

    def _writer(self) -> Writer:
        if self.writer is None:
            batch = start_batch(self.conn, kind=None, mode=SCRUB, actor=SCRUB, files=[])
            self.result.batch_id, self.writer = batch, Writer(self.conn, batch)
        return self.writer

    # -- records -------------------------------------------------------------------------
    def records(self) -> None:
        for rows in _pages(self.conn, RECORDS):
            for row in rows:
                self._record(row)
            if self.writer is not None:
                self.writer.flush()
        if self.writer is not None:
            self.writer.finish()  # the entities that lost records are merged again

    def _record(self, row: Any) -> None:
        data, found = scrub_data(row.kind, row.data or {})
        key_reason = id_like_reason(row.entity_id)
        id_like = key_reason is not None or any(k in _CODE_KEYS for k, _ in found)
        withdraw = id_like and row.status != WITHDRAWN
        if not withdraw and not found:
            return
        public = row.status == ACTIVE
        if withdraw:
            action = "withdraw" if public else "withdraw_in_place"
        else:
            action = "new_version" if public else "mask_in_place"
        if withdraw and key_reason:
            found.insert(0, ("entity_id", key_reason))
        self.result.counts[action] += 1
        self.result.items.extend(
            {"type": "record", "id": row.id, "kind": row.kind, "status": row.status,
             "field": key, "reason": reason, "action": action}
            for key, reason in found
        )
        if not self.result.dry_run:
            self._write(row, data, action)

    def _write(self, row: Any, data: dict[str, Any], action: str) -> None:
        writer = self._writer()
        public = row.status == ACTIVE
        if action == "new_version":
            writer.update(_content(row, data, ACTIVE, row.status_reason, row.version + 1),
                          OP_CHANGE, SCRUB)
            return
        status, reason, version = row.status, row.status_reason, row.version
        if action.startswith("withdraw"):
            # Not kept "corrected": a file would then bring back the stored row, ID-like key and all.
            writer.set_status(row, WITHDRAWN, OP_WITHDRAW if public else None, SCRUB, bump=public)
            status, reason, version = WITHDRAWN, SCRUB, row.version + (1 if public else 0)
        if data != (row.data or {}):
            writer.update(_content(row, data, status, reason, version), None)

    # -- entities ------------------------------------------------------------------------
    def entities(self) -> None:
        updates = []
        for rows in _pages(self.conn, ENTITIES):
            for ent in rows:
                values = self._entity(ent)
                if values:
                    updates.append(values)
        if updates and not self.result.dry_run:
            at = self._writer().at
            bulk.update_many(self.conn, ENTITIES, "id", _ENTITY_UPDATE,
                             [{**u, "updated_at": at} for u in updates])

    def _entity(self, ent: Any) -> dict[str, Any] | None:
        """The entity's masked columns when any changed (id and all), else None."""
        key_reason = id_like_reason(ent.id)
        shown = mask_text(ent.id) if key_reason else ent.id  # never the ID number itself
        if key_reason:
            self.result.counts["needs_operator"] += 1
            self.result.attention.append({"type": "entity", "id": shown, "field": "id",
                                          "reason": R_KEY, "action": "needs_operator"})
        values = {key: mask_value(getattr(ent, key)) for key in _ENTITY_TEXT}
        found = [(key, R_MASKED) for key in _ENTITY_TEXT if values[key] != getattr(ent, key)]
        for key in _CODE_KEYS:
            value, reason = getattr(ent, key), id_like_reason(getattr(ent, key))
            values[key] = mask_text(value) if reason else value
            if reason:
                found.append((key, reason))
        if not found:
            return None
        self.result.counts["entities_masked"] += 1
        self.result.items.extend({"type": "entity", "id": shown, "field": key, "reason": reason,
                                  "action": "mask_in_place"} for key, reason in found)
        return {**values, "id": ent.id}


def _pages(conn: Connection, table: Any):
    """A table's rows in id order, a keyset page at a time (memory stays flat)."""
    last = ""
    while True:
        rows = conn.execute(
            select(table).where(table.c.id > last).order_by(table.c.id).limit(PAGE)
        ).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


def _content(row: Any, data: dict[str, Any], status: str, status_reason: str | None,
             version: int) -> dict[str, Any]:
    """Every content column of the record with the masked data (corrections.corrected_version's way: the
    planner's stored order and content hash, so that a later file with the same, now masked,
    content is unchanged)."""
    data = in_stored_order(row.kind, data)
    return {
        "id": row.id,
        "kind": row.kind,
        "entity_id": row.entity_id,
        "district": row.district,
        "status": status,
        "status_reason": status_reason,
        "version": version,
        "event_date": row.event_date,
        "publicity_until": row.publicity_until,
        "repairable_from": row.repairable_from,
        "issue_id": row.issue_id,
        "category": data.get(_CATEGORY_FIELD.get(row.kind, ""), row.category),
        "grade": row.grade,
        "data": data,
        "source_file": row.source_file,
        "source_row": row.source_row,
        "content_hash": content_hash(row.entity_id, row.district, row.event_date,
                                     row.publicity_until, row.repairable_from, dumps_utf8(data)),
    }


def scrub(engine: Engine, dry_run: bool = False) -> ScrubResult:
    """Scrub every stored record and entity (see the module docstring); with dry_run, only
    say what would change."""
    result = ScrubResult(dry_run=dry_run)
    with writer_connection(engine) as conn, conn.begin():
        lock_writer(conn)
        scrubber = _Scrubber(conn, result)
        scrubber.records()
        scrubber.entities()
        if scrubber.writer is not None:
            result.events = scrubber.writer.events_written
            finish_batch(conn, scrubber.writer.batch_id, dict(result.counts))
    return result


def refresh_outputs(engine: Engine) -> list[str]:
    """After a scrub that wrote: rebuild the search index (entities masked in place have no
    change event to be synced by) and bring existing open-data files up to date (a snapshot
    keeps the unmasked content until rebuilt). Best effort: the scrub is committed; returns
    warnings, in Chinese, for what failed."""
    from publishing import opendata
    from publishing.search.sync import reindex

    warnings = []
    try:
        reindex(engine)
    except Exception as err:  # noqa: BLE001 - reported, never fatal to a committed scrub
        warnings.append(f"搜索索引重建失败({err});请运行 disclosure reindex。")
    try:
        if opendata.load_index(opendata.default_dir()) is not None:
            opendata.build(engine)
    except Exception as err:  # noqa: BLE001
        warnings.append(f"开放数据文件更新失败({err});请运行 disclosure opendata。")
    return warnings

