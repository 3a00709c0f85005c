"""Recompute: the periods of stored records under the publicity rules as they are now.

`disclosure expire --recompute` brings an edited publicity.toml to what is already stored, as
publishing every record's row again would: each record's publicity_until and repairable_from
are computed again from what is stored about it (event date, and the fields the rules read:
severity, domain, penalty kinds …), an explicit 公示截止日期 from its file still winning. Then:

- a published record whose period now ends before today is expired (op expire);
- an expired record that a longer period makes current again is published again (op add);
- a published record with new dates that stays current gets them as a new version (op change:
  publicity_until and repairable_from are fields of the public record);
- an expired record that stays expired gets its new dates quietly (nothing public changes).

Withdrawn records (by a file, a snapshot, a credit repair, an upheld objection) are left as they
are: a rule does not bring them back. A record corrected on an upheld objection keeps its mark
(as expire keeps it), so that a file bringing it back later publishes the correction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date
from typing import Any

from sqlalchemy import Connection, select

from publishing.clean import KINDS as KIND_SPECS
from publishing.commit import RECORDS, Writer, expired, kept_reason
from publishing.contract import KIND_PREFIX
from publishing.models import ACTIVE, EXPIRED, OP_ADD, OP_CHANGE, OP_EXPIRE
from publishing.plan import LEAVE_REASONS, next_version
from publishing.rules import Rules

# The kinds whose periods the rules compute (Rules.publicity_until, Rules.repairable_from):
# a credit mark's ends with its 有效期至 or a newer mark, a pledge's when it is withdrawn.
RULED_KINDS = ("penalty", "blacklist")
# Records read (and written) at a time: memory stays flat, and no query per record.
PAGE = 10_000
# The states a period decides; withdrawn, superseded and statistics-only records are not.
_DECIDED = (ACTIVE, EXPIRED)
_COLUMNS = tuple(RECORDS.c[name] for name in (
    "id", "kind", "status", "status_reason", "version", "district", "entity_id", "event_date",
    "publicity_until", "repairable_from", "issue_id", "category", "grade", "data",
    "content_hash", "source_file", "source_row",
))


def recompute_periods(conn: Connection, writer: Writer, rules: Rules, today: date,
                      counts: Counter) -> None:
    """Recompute every decided record's period inside the caller's transaction (which holds
    the writer lock); counts: period_changed, and of those period_expired, period_returned."""
    for kind in RULED_KINDS:
        for page in _pages(conn, kind):
            for r in page:
                _recompute_one(r, writer, rules, today, counts)
            writer.flush()


def periods(kind: str, event_date: date, data: dict[str, Any],
            rules: Rules) -> tuple[date | None, date | None]:
    """(publicity_until, repairable_from) as publishing the record's row would store them
    (plan.record_row): the file's own end date when its data holds one, else the rules'."""
    until = explicit_until(kind, data) or rules.publicity_until(kind, event_date, data)
    return until, rules.repairable_from(kind, event_date, data)


def explicit_until(kind: str, data: dict[str, Any]) -> date | None:
    """The end of publicity the record's file gave (公示截止日期; 有效期至 for a mark): the cleaner
    stores the column in the record's data, null when the file left it empty."""
    for key in KIND_SPECS[kind].publicity:
        if data.get(key):
            return date.fromisoformat(data[key])
    return None


def _pages(conn: Connection, kind: str) -> Iterator[list[Any]]:
    """The kind's decided records in id order, a keyset page at a time. A record id starts
    with its kind's prefix ("pn-…"): the id range alone selects the kind, and keeps the query
    on the primary key's order (with a kind or status condition, PostgreSQL took the kind and
    status index and sorted every remaining record for each page)."""
    last, end = f"{KIND_PREFIX[kind]}-", f"{KIND_PREFIX[kind]}."
    while True:
        query = (select(*_COLUMNS).where(RECORDS.c.id > last, RECORDS.c.id < end)
                 .order_by(RECORDS.c.id).limit(PAGE))
        rows = conn.execute(query).all()
        if not rows:
            return
        yield [r for r in rows if r.status in _DECIDED]
        last = rows[-1].id


def _recompute_one(r: Any, writer: Writer, rules: Rules, today: date, counts: Counter) -> None:
    data = r.data or {}
    until, repairable = periods(r.kind, r.event_date, data, rules)
    if (until, repairable) == (r.publicity_until, r.repairable_from):
        return
    counts["period_changed"] += 1
    ended = expired(until, today)
    status = EXPIRED if ended else ACTIVE
    if r.status == ACTIVE:
        op = OP_EXPIRE if ended else OP_CHANGE
        counts["period_expired"] += int(ended)
    elif not ended:  # expired, current again: published again, as its row would be
        op = OP_ADD
        counts["period_returned"] += 1
    else:
        op = None  # expired and still expired: nothing public changes
    reason = LEAVE_REASONS.get(status) if op else None  # the event's: "expired" or none
    status_reason = (kept_reason(r) or reason) if op else r.status_reason
    writer.update(next_version(r, data, status=status, status_reason=status_reason,
                               version=r.version + (1 if op else 0), publicity_until=until,
                               repairable_from=repairable), op, reason)

