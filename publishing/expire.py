"""Expiry: records past their publicity end leave publication (op expire), and credit-mark
schemes switched between public and statistics-only in the rules are applied. With recompute,
the stored records' periods are first computed again under the current rules
(publishing.recompute): an edited publicity.toml reaches what is already published; and the
supersession of credit marks is settled again as publishing their rows again would (marks
stored before an ended newer mark superseded the older ones). The rules'
fingerprint is recorded with it (sync_cursors, RULES_CURSOR), so that the worker's nightly run
recomputes only when the rules changed since (publishing.worker)."""

from __future__ import annotations

from collections import Counter
from datetime import date

from sqlalchemy import Connection, Engine, case, func, select

from publishing import clock
from publishing.commit import (
    RECORDS,
    Writer,
    finish_batch,
    kept_reason,
    lock_writer,
    start_batch,
)
from publishing.db import get_engine, writer_connection
from publishing.models import ACTIVE, AGGREGATE, EXPIRED, OP_ADD, OP_EXPIRE, OP_WITHDRAW
from publishing.plan import (
    _STATE_COLUMNS,
    CURRENT,
    SUPERSEDES_SQL,
    is_superseding,
    load_groups,
    supersede_older,
)
from publishing.recompute import recompute_periods
from publishing.rules import Rules, load_rules
from publishing.search.sync import read_cursor, write_cursor

# The sync_cursors row holding the fingerprint (Rules.fingerprint) of the rules the stored
# periods were last recomputed under; absent: never recomputed.
RULES_CURSOR = "worker:rules"


def expire(
    engine: Engine | None = None,
    today: date | None = None,
    rules: Rules | None = None,
    actor: str = "expire",
    *,
    recompute: bool = False,
    dry_run: bool = False,
    stored_periods_only: bool = False,
) -> Counter:
    """Expire what is due (after recomputing the periods, with recompute); with dry_run, the
    same run is rolled back: the counts say what it would do, nothing is written. With
    stored_periods_only, by the periods as stored, without the rules at all (no recompute, no
    scheme switch): the worker's expiry on a night the rules file cannot be read."""
    engine = engine or get_engine()
    today = today or clock.today()
    rules = None if stored_periods_only else rules or load_rules()
    recompute = recompute and rules is not None
    counts: Counter = Counter(expired=0, expired_statistics=0)  # both named, also when none
    if recompute:
        counts.update(dict.fromkeys(
            ("period_changed", "period_expired", "period_returned", "superseded"), 0))
    with writer_connection(engine) as conn, conn.begin() as tx:
        lock_writer(conn)
        batch_id = start_batch(conn, kind=None, mode="recompute" if recompute else "expire",
                               actor=actor, files=[])
        writer = Writer(conn, batch_id)
        if recompute:  # first: the expiry below reads the periods it stores
            recompute_periods(conn, writer, rules, today, counts)
            # in the same transaction: a run that fails (or a dry run) records nothing, and
            # the worker's next run tries again; the CLI's run spares the worker a second one
            write_cursor(conn, RULES_CURSOR, rules.fingerprint)
        # A statistics-only mark (aggregate) leaves the statistics without an event: it was
        # never published one by one; left aggregate, a scheme made public again would announce
        # it as added, past its end.
        due = conn.execute(
            select(*_STATE_COLUMNS).where(
                RECORDS.c.status.in_((ACTIVE, AGGREGATE)), RECORDS.c.publicity_until < today
            )
        ).all()
        for r in due:
            public = r.status == ACTIVE
            op = OP_EXPIRE if public else None
            writer.set_status(r, EXPIRED, op, "expired", kept_reason=kept_reason(r))
            counts["expired" if public else "expired_statistics"] += 1
        writer.flush()  # what follows reads the statuses just set
        if recompute:
            # after the expiry (a mark past its end stays expired, as its row would), before the
            # visibility switch (a superseded statistics-only mark is not published again)
            _settle_supersession(conn, writer, counts)
            writer.flush()
        if rules is not None:
            _apply_scheme_visibility(conn, writer, rules, counts)
        writer.finish()
        if dry_run:
            tx.rollback()
            return counts
        finish_batch(conn, batch_id, dict(counts))
    return counts


def recomputed_rules(conn: Connection) -> int | None:
    """The fingerprint of the rules the stored periods were last recomputed under (None:
    never, such as a database from before the worker recorded it)."""
    return read_cursor(conn, RULES_CURSOR) or None


def _settle_supersession(conn: Connection, writer: Writer, counts: Counter) -> None:
    """Supersede, in every credit-mark group, the current marks older than its newest
    superseding mark (plan.supersedes: an ended one too, unless it ended before its own date),
    as publishing the group's rows again would (marks stored before an ended newer mark
    superseded the older ones may still be current beside it). Only supersedes: nothing is
    restored, withdrawn marks are left alone, and a mark of the same date as the newest stays
    (as in the planner, only an older mark is superseded)."""
    for members in load_groups(conn, _unsettled_groups(conn)).values():
        superseding = [m for m in members if is_superseding(m)]
        newest = max(superseding, key=lambda m: m.event_date, default=None)
        if newest is not None:  # a tie: either newest has the same older rivals
            counts["superseded"] += supersede_older(writer, newest._asdict(), members)


def _unsettled_groups(conn: Connection) -> list[str]:
    """The groups that may need it, in one query: a current mark older than the group's newest
    superseding mark (plan.SUPERSEDES_SQL, as is_superseding; plan.older_rivals decides which
    marks)."""
    current_date = case((RECORDS.c.status.in_(CURRENT), RECORDS.c.event_date))
    query = (select(RECORDS.c.group_key)
             .where(RECORDS.c.kind == "credit_mark", SUPERSEDES_SQL)
             .group_by(RECORDS.c.group_key)
             .having(func.min(current_date) < func.max(RECORDS.c.event_date)))
    return list(conn.execute(query).scalars())


def _apply_scheme_visibility(conn, writer: Writer, rules: Rules, counts: Counter) -> None:
    marks = select(*_STATE_COLUMNS, RECORDS.c.category).where(
        RECORDS.c.kind == "credit_mark", RECORDS.c.status.in_((ACTIVE, AGGREGATE))
    )
    for r in conn.execute(marks).all():
        public = rules.scheme_is_public(r.category)
        if r.status == ACTIVE and not public:
            writer.set_status(r, AGGREGATE, OP_WITHDRAW, "aggregate", kept_reason=kept_reason(r))
            counts["aggregate"] += 1
        elif r.status == AGGREGATE and public:
            writer.set_status(r, ACTIVE, OP_ADD, None, kept_reason=kept_reason(r))
            counts["republished"] += 1

