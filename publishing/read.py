"""Read-side queries for the portal: what is published now, in the public shape.

Every function takes a SQLAlchemy Connection and returns public dicts (publishing.shape) or
plain values, so no page can show a column the public shape does not have. Queries only use
indexed access paths (see the indexes on publishing.models.Record); nothing here loads more
rows than the page shows.

A record is visible when it is active and its publicity has not ended: between the end date and
the next `disclosure expire` run a record is already treated as gone.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from sqlalchemy import Connection, and_, exists, func, literal, or_, select, text, tuple_

from publishing import clock
from publishing.codes import reg_no_is_valid
from publishing.commit import BATCHES, ENTITIES, EVENTS, ISSUES, RECORDS
from publishing.contract import DISTRICTS, KINDS
from publishing.models import ACTIVE, AGGREGATE
from publishing.shape import RECORD_COLUMNS, public_entity, public_record

_PUBLIC_COLUMNS = tuple(RECORDS.c[name] for name in RECORD_COLUMNS)
_ENTITY_COLUMNS = (
    ENTITIES.c.id,
    ENTITIES.c.uscc,
    ENTITIES.c.reg_no,
    ENTITIES.c.name,
    ENTITIES.c.former_names,
    ENTITIES.c.legal_rep,
    ENTITIES.c.district,
    ENTITIES.c.address,
    ENTITIES.c.updated_at,
)
PROFILE_LIMIT = 500  # records on one page of a profile (the rare larger entity pages on)
COUNT_CAP = 10_000  # a filtered listing counts this many records at most (count_records)
SERIOUS_LIST = "严重违法失信名单"
GRADES = ("A", "B", "C", "D", "E")  # 信用风险分类
UNGRADED = "未分级"  # a mark without a grade, in scheme_statistics


def in_publication(today: date, seek_status: bool = True, status: str = ACTIVE):
    """The SQL condition of a visible record (is_visible's rule): active, publicity not ended.
    seek_status=False compares the status as an expression, which no index can seek.
    status=AGGREGATE: a mark of a scheme published only as statistics, still in its publicity."""
    column = RECORDS.c.status if seek_status else RECORDS.c.status.concat("")
    return and_(
        column == status,
        or_(RECORDS.c.publicity_until.is_(None), ~publicity_ended(today)),
    )


def publicity_ended(today: date):
    """The date rule: a publicity whose last day is before today has ended (a record without
    an end date stays until withdrawn). in_publication is its complement; the counts take off
    the records it selects (_ended)."""
    return RECORDS.c.publicity_until < today


def is_visible(rec: dict[str, Any], today: date | None = None) -> bool:
    """A public record dict is shown (not gone)."""
    today = today or clock.today()
    until = rec.get("publicity_until")
    return rec["status"] == ACTIVE and (until is None or until >= today.isoformat())


# -- health -------------------------------------------------------------------------------


def database_ready(conn: Connection) -> bool:
    """The database answers and holds the schema (the records table exists)."""
    conn.execute(text("SELECT 1"))
    conn.execute(select(RECORDS.c.id).limit(1)).first()
    return True


def last_change_seq(conn: Connection) -> int:
    """The newest change-log sequence number: anything cached against it is current."""
    return int(conn.execute(select(func.max(EVENTS.c.seq))).scalar() or 0)


def publication_stamp(conn: Connection) -> tuple[int, int]:
    """(newest change seq, newest batch id) in one query: the batch moves also when a batch
    changed what is counted without a change event (statistics-only marks stored, withdrawn
    or expired)."""
    seq, batch = conn.execute(
        select(select(func.max(EVENTS.c.seq)).scalar_subquery(),
               select(func.max(BATCHES.c.id)).scalar_subquery())
    ).one()
    return int(seq or 0), int(batch or 0)


def newest_change(conn: Connection) -> tuple[int, Any]:
    """(seq, time) of the newest change event, or (0, None): a cache key that also moves when
    a database restored from a backup publishes again under seqs it had used before."""
    row = conn.execute(
        select(EVENTS.c.seq, EVENTS.c.at).order_by(EVENTS.c.seq.desc()).limit(1)
    ).first()
    return (int(row.seq), row.at) if row else (0, None)


# -- entities -----------------------------------------------------------------------------


def entity(conn: Connection, entity_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(*_ENTITY_COLUMNS).where(ENTITIES.c.id == entity_id)).first()
    return public_entity(row) if row else None


def published_entity(conn: Connection, entity_id: str, today: date | None = None) -> dict[str, Any] | None:
    """entity(), but only while one of its records is visible: one whose records are all
    withdrawn (repaired), expired or superseded is, to the public, as if never published."""
    found = entity(conn, entity_id)
    if found is None:
        return None
    visible = select(RECORDS.c.id).where(RECORDS.c.entity_id == entity_id, in_publication(today or clock.today()))
    return found if conn.execute(visible.limit(1)).first() else None


# -- one company under two entity ids ------------------------------------------------------
# An entity published first with only its 注册号 (entity id = the 注册号) and later with its USCC
# too (id = the USCC, reg_no = the 注册号) is one company under two ids. Its records are not
# re-keyed: the reads put them together. The link counts only while the entity with the USCC is
# published (a visible record): it is its records that say the two codes are one company, and
# one whose records are all withdrawn or ended is as if never published. ix_entities_reg_no.


def _published(entity_id: Any, today: date) -> Any:
    """The entity (an id or a column) has a visible record (ix_records_entity_status)."""
    return exists().where(RECORDS.c.entity_id == entity_id, in_publication(today))


def uscc_entity_of(conn: Connection, reg_no: str, today: date | None = None) -> str | None:
    """The id (USCC) of the published entity that carries this 注册号 beside its USCC, or None;
    the first by id if, against the rules, several do. /entities/{注册号} redirects to it."""
    today = today or clock.today()
    query = (
        select(ENTITIES.c.id)
        .where(ENTITIES.c.reg_no == reg_no, ENTITIES.c.id != reg_no, _published(ENTITIES.c.id, today))
        .order_by(ENTITIES.c.id)
        .limit(1)
    )
    return conn.execute(query).scalar()


def profile_entities(
    conn: Connection, ent: dict[str, Any], today: date | None = None
) -> list[dict[str, Any]]:
    """The published entities whose records belong on ent's profile besides its own: the one
    published under ent's 注册号 alone, before ent had a USCC (none, or that one)."""
    reg_no = ent["reg_no"]
    if not reg_no or reg_no == ent["id"]:
        return []
    today = today or clock.today()
    query = select(*_ENTITY_COLUMNS).where(
        ENTITIES.c.id == reg_no,
        _published(ENTITIES.c.id, today),
        _published(ent["id"], today),
    )
    return [public_entity(row) for row in conn.execute(query)]


def entities_with_profile(
    conn: Connection, entity_ids: Sequence[str], today: date | None = None
) -> set[str]:
    """Which of these entity ids have a profile to show (company_of's rule, for a page of
    search hits): the entity has a visible record of its own, or it is a 注册号 whose USCC
    entity is published (its profile redirects there). Two queries, whatever the count: the
    ids through the primary key and ix_records_entity_status, the 注册号 through
    ix_entities_reg_no."""
    if not entity_ids:
        return set()
    today = today or clock.today()
    own = select(ENTITIES.c.id).where(
        ENTITIES.c.id.in_(list(entity_ids)), _published(ENTITIES.c.id, today)
    )
    shown = set(conn.execute(own).scalars())
    reg_nos = [i for i in entity_ids if i not in shown and reg_no_is_valid(i)]
    if reg_nos:
        linked = select(ENTITIES.c.reg_no).where(
            ENTITIES.c.reg_no.in_(reg_nos),
            ENTITIES.c.id != ENTITIES.c.reg_no,
            _published(ENTITIES.c.id, today),
        )
        shown.update(conn.execute(linked).scalars())
    return shown


def company_of(
    conn: Connection, code: str, today: date | None = None
) -> tuple[dict[str, Any], list[str]] | None:
    """The published entity a code stands for and the ids of its records, as the profile takes
    them: a 注册号 linked to a USCC stands for the USCC's entity (uscc_entity_of), whose
    records include those published under the 注册号 alone (profile_entities). None: nothing
    published under the code."""
    today = today or clock.today()
    owner = uscc_entity_of(conn, code, today) if reg_no_is_valid(code) else None
    ent = published_entity(conn, owner or code, today)
    if ent is None:
        return None
    return ent, [ent["id"], *(e["id"] for e in profile_entities(conn, ent, today))]


def entity_records(
    conn: Connection,
    entity_id: str | Sequence[str],
    today: date | None = None,
    limit: int | None = PROFILE_LIMIT,
    after: tuple[date, str] | None = None,
    kinds: tuple[str, ...] | None = None,
) -> list[dict[str, Any]]:
    """The entity's visible records (of the kinds), newest first, after a keyset position
    (event_date, id) (index ix_records_entity_status). entity_id: one, or the ids of one
    company (profile_entities)."""
    today = today or clock.today()
    conds = [_of_entity(entity_id), in_publication(today), *_older_than(after)]
    if kinds is not None:
        conds.append(RECORDS.c.kind.in_(kinds))
    rows = conn.execute(
        select(*_PUBLIC_COLUMNS)
        .where(*conds)
        .order_by(RECORDS.c.event_date.desc(), RECORDS.c.id.desc())
        .limit(limit)
    ).all()
    return [public_record(r) for r in rows]


def entity_record_count(
    conn: Connection, entity_id: str | Sequence[str], today: date | None = None
) -> int:
    today = today or clock.today()
    query = select(func.count()).where(_of_entity(entity_id), in_publication(today))
    return conn.execute(query).scalar_one()


def _of_entity(entity_id: str | Sequence[str]) -> Any:
    """The records of an entity, or of several (an IN over ix_records_entity_status)."""
    if isinstance(entity_id, str):
        return RECORDS.c.entity_id == entity_id
    return RECORDS.c.entity_id.in_(list(entity_id))


def _older_than(after: tuple[date, str] | None) -> list[Any]:
    """Keyset paging, newest first: records after (event_date, id) in the listing's order.

    A row-value comparison, which SQLite and PostgreSQL both seek as one range of an index
    ending in (event_date, id): the page starts at the position itself. `date <= d AND (date < d
    OR id < i)` was a range on the date alone: a page deep in a date's block (230,000 credit
    marks share a day) read the block back to the position first (SQLite 25 ms a page)."""
    if after is None:
        return []
    return [tuple_(RECORDS.c.event_date, RECORDS.c.id) < tuple(after)]


def _newer_than(before: tuple[date, str] | None) -> list[Any]:
    """The mirror of _older_than: records before (event_date, id) in the listing's order."""
    if before is None:
        return []
    return [tuple_(RECORDS.c.event_date, RECORDS.c.id) > tuple(before)]


def objection_pending(
    conn: Connection, entity_id: str | None = None, record_id: str | None = None
) -> bool:
    """Whether an objection (异议) about this entity (or this record) is being handled: the
    profile's and the record page's 异议处理中 mark (publishing.request_queries reads the requests)."""
    from publishing.request_queries import objection_pending as pending

    return pending(conn, entity_id=entity_id, record_id=record_id)


def group_by_kind(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Records grouped by kind, in the contract's kind order (empty kinds left out)."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        groups[rec["kind"]].append(rec)
    order = [*KINDS, *sorted(k for k in groups if k not in KINDS)]
    return {kind: groups[kind] for kind in order if groups.get(kind)}


# -- records ------------------------------------------------------------------------------


def record(conn: Connection, record_id: str) -> dict[str, Any] | None:
    """A record in the public shape, whatever its status (the caller decides gone or not)."""
    row = conn.execute(select(*_PUBLIC_COLUMNS).where(RECORDS.c.id == record_id)).first()
    return public_record(row) if row else None


def visible_record_ids(
    conn: Connection, record_ids: Sequence[str], today: date | None = None
) -> set[str]:
    """Which of these records are visible (is_visible's rule: the record page answers 200),
    read by primary key: a page of search hits, whose index may still hold a record past
    its publicity until the nightly expire writes its event."""
    if not record_ids:
        return set()
    today = today or clock.today()
    query = select(RECORDS.c.id).where(
        RECORDS.c.id.in_(list(record_ids)), in_publication(today, seek_status=False)
    )
    return set(conn.execute(query).scalars())


@dataclass(frozen=True)
class ListFilter:
    kind: str
    district: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    category: str | None = None
    grade: str | None = None


def list_records(
    conn: Connection,
    flt: ListFilter,
    after: tuple[date, str] | None = None,
    limit: int = 50,
    today: date | None = None,
    before: tuple[date, str] | None = None,
) -> list[dict[str, Any]]:
    """Visible records of a kind, newest first, after a keyset position (event_date, id) — or,
    with `before`, the `limit` records just before one (the previous page), still newest first.

    Uses ix_records_kind_status_date (or ix_records_kind_district_date with a district;
    ix_records_kind_category_date or ix_records_kind_grade_date with a category or a grade,
    where the other filters are checked in the index), read backwards for `before`: from the
    position itself, a range of (event_date, id) (_older_than)."""
    flt, seek_after, seek_before = _one_bound_a_side(flt, after, before)
    conds = [
        *_listing_conditions(conn, flt, today or clock.today()),
        *_older_than(seek_after),
        *_newer_than(seek_before),
    ]
    if before is None:
        order = (RECORDS.c.event_date.desc(), RECORDS.c.id.desc())
    else:
        order = (RECORDS.c.event_date.asc(), RECORDS.c.id.asc())
    rows = conn.execute(select(*_PUBLIC_COLUMNS).where(*conds).order_by(*order).limit(limit)).all()
    if before is not None:
        rows.reverse()
    return [public_record(r) for r in rows]


def _one_bound_a_side(
    flt: ListFilter, after: tuple[date, str] | None, before: tuple[date, str] | None
) -> tuple[ListFilter, tuple[date, str] | None, tuple[date, str] | None]:
    """The filter's date bound and the keyset position that bound the same side of the range,
    less the one the other implies (the same records either way; the page's direction stays
    the caller's). Given both, SQLite starts the range at the date bound and tests the
    position on every row up to it: deep in a date's block, as slow as an OR of the date and
    the id."""
    if after is not None and flt.date_to is not None:
        if after[0] <= flt.date_to:  # (event_date, id) < after: event_date <= date_to already
            flt = replace(flt, date_to=None)
        else:
            after = None
    if before is not None and flt.date_from is not None:
        if before[0] >= flt.date_from:
            flt = replace(flt, date_from=None)
        else:
            before = None
    return flt, after, before


def count_records(
    conn: Connection, flt: ListFilter, today: date | None = None, cap: int | None = None
) -> tuple[int, bool]:
    """How many records list_records would list for the filter, counted up to `cap`
    (COUNT_CAP): (count, capped). Capped, the count is `cap` and there are more: a broad filter
    over a million records must not be an unbounded count, so at most cap + 1 rows are read
    (from the same index list_records seeks)."""
    cap = COUNT_CAP if cap is None else cap
    matching = (
        select(literal(1))
        .where(*_listing_conditions(conn, flt, today or clock.today()))
        .limit(cap + 1)
        .subquery()
    )
    found = conn.execute(select(func.count()).select_from(matching)).scalar_one()
    return min(found, cap), found > cap


def _listing_conditions(conn: Connection, flt: ListFilter, today: date) -> list[Any]:
    """The conditions of a listing's records (list_records, count_records): the kind's
    visible records that the filter selects."""
    conds = [RECORDS.c.kind == flt.kind, in_publication(today)]
    if flt.district:
        conds.append(_district(conn, flt) == flt.district)
    if flt.date_from:
        conds.append(RECORDS.c.event_date >= flt.date_from)
    if flt.date_to:
        conds.append(RECORDS.c.event_date <= flt.date_to)
    if flt.category:
        conds.append(RECORDS.c.category == flt.category)
    if flt.grade:
        conds.append(RECORDS.c.grade == flt.grade)
    return conds


def _district(conn: Connection, flt: ListFilter) -> Any:
    """The district column of a listing's condition. With a category or a grade, SQLite is
    given an expression it cannot seek: its averages rate the district index as good a seek,
    but that index tests each of the district's records in the table (a rare category: all of
    them), where the filter's own index has the district in it. PostgreSQL knows the values'
    frequencies, and checks the district in the index's condition."""
    if (flt.category or flt.grade) and conn.dialect.name == "sqlite":
        return RECORDS.c.district.concat("")
    return RECORDS.c.district


def categories(
    conn: Connection, kind: str, today: date | None = None, status: str = ACTIVE
) -> list[str]:
    """The categories (penalty domain, credit-mark scheme, pledge category) of the kind's
    visible records, sorted: the options of a listing's filter, so none that lists nothing.
    status=AGGREGATE: the schemes published only as statistics that have marks in publication.

    A loose scan of ix_records_kind_category_date: one seek for each distinct category (the
    next one after the last, by a recursive CTE), then one for a visible record of it. A
    GROUP BY read every record of the kind (a million: 10 s)."""
    today = today or clock.today()
    seen = select(_next_category(kind, None).label("category")).cte("seen", recursive=True)
    seen = seen.union_all(
        select(_next_category(kind, seen.c.category)).where(seen.c.category.is_not(None))
    )
    shown = exists().where(
        RECORDS.c.kind == kind,
        RECORDS.c.category == seen.c.category,
        in_publication(today, status=status),
    )
    rows = conn.execute(
        select(seen.c.category)
        .where(seen.c.category.is_not(None), seen.c.category != "", shown)
        .order_by(seen.c.category)
    ).scalars()
    return list(rows)


def _next_category(kind: str, after: Any):
    """The kind's smallest category (of any status) greater than `after` (None: the first)."""
    cond = RECORDS.c.category.is_not(None) if after is None else RECORDS.c.category > after
    return (
        select(RECORDS.c.category)
        .where(RECORDS.c.kind == kind, cond)
        .order_by(RECORDS.c.category)
        .limit(1)
        .scalar_subquery()
    )


# -- blacklist issues ---------------------------------------------------------------------


def _issue(row: Any, entry_count: int | None = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "issue_no": row.issue_no,
        "publisher": row.publisher,
        "district_code": row.district,
        "district": DISTRICTS.get(row.district or "", None),
        "issued_on": row.issued_on.isoformat(),
        "entry_count": row.entry_count if entry_count is None else entry_count,
        "url": f"/blacklist/{row.id}",
    }


def blacklist_issues(
    conn: Connection, limit: int | None = None, today: date | None = None
) -> list[dict[str, Any]]:
    """Issues that still have entries in publication, newest first, each with the count of
    those (issue_entries' rule). The stored entry_count counts active entries, which stay
    active past their publicity until the nightly expire: an issue listed by it answered 410.
    Each issue's entries are counted through ix_records_issue_id (issues are few: 175)."""
    today = today or clock.today()
    visible = (
        select(func.count())
        .where(RECORDS.c.issue_id == ISSUES.c.id, in_publication(today, seek_status=False))
        .scalar_subquery()
    )
    counted = select(ISSUES, visible.label("visible_entries")).subquery()
    stmt = (
        select(counted)
        .where(counted.c.visible_entries > 0)
        .order_by(counted.c.issued_on.desc(), counted.c.id.desc())
    )
    if limit:
        stmt = stmt.limit(limit)
    return [_issue(r, r.visible_entries) for r in conn.execute(stmt)]


def blacklist_issue(conn: Connection, issue_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(ISSUES).where(ISSUES.c.id == issue_id)).first()
    return _issue(row) if row else None


def issue_entries(
    conn: Connection, issue_id: str, today: date | None = None, limit: int = 2000
) -> list[dict[str, Any]]:
    """An issue's visible entries, by district: through ix_records_issue_id, the only index
    this query can seek. SQLite's statistics (averages, in which all the records without an
    issue count as one issue, and those without an end of publicity as one date) made
    ix_records_status_until look cheaper, as one seek for the records without an end date and
    one for the others: that read every active record (at a million: 0.75 s, not 6 ms). So the
    status is compared as an expression no index answers (`status || ''`)."""
    today = today or clock.today()
    rows = conn.execute(
        select(*_PUBLIC_COLUMNS)
        .where(RECORDS.c.issue_id == issue_id, in_publication(today, seek_status=False))
        .order_by(RECORDS.c.district, RECORDS.c.id)
        .limit(limit)
    ).all()
    return [public_record(r) for r in rows]


# -- statistics ---------------------------------------------------------------------------


def counts(conn: Connection, today: date | None = None) -> dict[str, Any]:
    """Records in publication (in_publication) by kind and by kind × district.

    The active records of each kind are counted by one grouped query per kind from the
    covering index ix_records_kind_district_date (≈0.15 s for a million records), less those
    whose publicity has ended but that the nightly `disclosure expire` has not expired yet
    (_ended: a day's worth). Counting in_publication itself would read every record's end date
    from the table. Callers cache the result against last_change_seq() and the day."""
    today = today or clock.today()
    by_kind: dict[str, int] = dict.fromkeys(KINDS, 0)
    by_district: dict[str, dict[str, int]] = {code: dict.fromkeys(KINDS, 0) for code in DISTRICTS}

    def add(kind: str, district: str | None, n: int) -> None:
        if kind in by_kind:
            by_kind[kind] += n
            if district in by_district:
                by_district[district][kind] += n

    for kind in KINDS:
        rows = conn.execute(
            select(RECORDS.c.district, func.count())
            .where(RECORDS.c.kind == kind, RECORDS.c.status == ACTIVE)
            .group_by(RECORDS.c.district)
        ).all()
        for district, n in rows:
            add(kind, district, n)
    for (kind, district), n in _ended(conn, ACTIVE, today, RECORDS.c.kind, RECORDS.c.district).items():
        add(kind, district, -n)
    return {"by_kind": by_kind, "by_district": by_district}


def scheme_statistics(conn: Connection, today: date | None = None) -> list[dict[str, Any]]:
    """The credit-mark schemes published only as statistics (publicity rules: public = false;
    their marks are held back as AGGREGATE) that have marks in publication, each with those
    marks counted by grade and by district (and grade × district): the only form in which such
    a scheme is published, so nothing here names an entity.

    The schemes come from the loose scan of categories(). A scheme's marks are counted as
    counts() counts records: all its AGGREGATE marks, grouped in the covering index
    ix_records_kind_category_date (a seek of kind, category, status; the grade and the district
    are in it), less those whose publicity has ended (_ended). At a million marks: SQLite 1 s,
    PostgreSQL 0.3 s. A count with in_publication read every mark's end date from the table
    (SQLite 5.5 s), or the whole table (PostgreSQL 0.5 s). Callers cache the result."""
    today = today or clock.today()
    ended = _ended(conn, AGGREGATE, today, RECORDS.c.category, RECORDS.c.grade, RECORDS.c.district)
    found = []
    for scheme in categories(conn, "credit_mark", today, status=AGGREGATE):
        rows = conn.execute(
            select(RECORDS.c.grade, RECORDS.c.district, func.count())
            .where(
                RECORDS.c.kind == "credit_mark",
                RECORDS.c.category == scheme,
                RECORDS.c.status == AGGREGATE,
            )
            .group_by(RECORDS.c.grade, RECORDS.c.district)
        ).all()
        cells = Counter({(grade, district): n for grade, district, n in rows})
        cells.subtract({(g, d): n for (category, g, d), n in ended.items() if category == scheme})
        found.append(_scheme_counts(scheme, cells))
    return found


def _ended(conn: Connection, status: str, today: date, *columns: Any) -> Counter:
    """The records of `status` whose publicity has ended (publicity_ended), counted by the
    values of `columns`: normally few (the nightly expiry takes them away).

    A range of ix_records_status_until, counted in the index alone, then read in its order up
    to that count. Grouped in SQL, SQLite scanned a whole index in the groups' order instead;
    and PostgreSQL, which estimates the status and the end date apart (most records are
    active or aggregate, many end dates have passed), read the whole table for a plain
    query (at a million records: 0.65 s for none)."""
    ended = and_(RECORDS.c.status == status, publicity_ended(today))
    n = conn.execute(select(func.count()).where(ended)).scalar_one()
    if not n:
        return Counter()
    rows = conn.execute(
        select(*columns).where(ended).order_by(RECORDS.c.publicity_until).limit(n)
    )
    return Counter(tuple(r) for r in rows)


def _scheme_counts(scheme: str, counted: Counter) -> dict[str, Any]:
    """One scheme's counts by (grade, district) as totals by grade and by district (every
    district of the table, in its order). A scheme with grades has the five, A–E, and marks
    without one under UNGRADED; a scheme without grades (none of its marks has one) none."""
    cells: dict[str, Counter] = defaultdict(Counter)
    for (grade, district), n in counted.items():
        if n > 0:
            cells[district or ""][grade or UNGRADED] += n
    present = set().union(*cells.values())
    grades = [*GRADES, *((UNGRADED,) if UNGRADED in present else ())] if present - {UNGRADED} else []
    codes = [*DISTRICTS, *sorted(code for code in cells if code not in DISTRICTS)]
    districts = [
        {
            "district_code": code or None,
            "district": DISTRICTS.get(code),
            "count": sum(cells[code].values()),
            "by_grade": {g: cells[code][g] for g in grades},
        }
        for code in codes
    ]
    return {
        "scheme": scheme,
        "total": sum(d["count"] for d in districts),
        "grades": grades,
        "by_grade": {g: sum(d["by_grade"][g] for d in districts) for g in grades},
        "by_district": districts,
    }
