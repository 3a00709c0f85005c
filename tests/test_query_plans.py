"""The hot queries use indexes, on SQLite and PostgreSQL: EXPLAIN of the statements our own
read functions actually send (captured at the driver), over a sample world (30,000 entities,
about 40,000 records and change events) that has been ANALYZEd, so the planners choose with
real statistics (no enable_seqscan=off). The size matters: below ~15,000 change events
PostgreSQL rightly prefers a seq scan for the feed page (a hash join over the whole change
log beats 51 index probes); the test shows the plans of a database past that point.

Hot queries: the entity profile (records by entity_id + status), listings (kind + status +
event_date, with a district, and the keyset next page; by category, by grade), the categories
in use (a loose scan), a blacklist issue's entries, the change log (by seq, by kind), feeds
(a kind, a kind in a district, one entity), the credit check (records of entity_id IN (...)),
the open-data download (pages of the primary key).

The statistics are those publishing.db.analyze writes (on SQLite it once wrote none: its
ANALYZE ran between a BEGIN and a ROLLBACK).
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from datetime import date
from itertools import islice

import pytest
from sqlalchemy import event, func, select, text

from publishing import changes, creditcheck, export, feeds, read
from publishing.db import analyze, make_engine, upgrade
from publishing.models import ACTIVE, Record
from publishing.publish import publish
from publishing.sample import generate
from tests.conftest import PG_ADMIN_URL, _worker

TODAY = date(2026, 11, 27)
ENTITIES = 30_000  # ~50k change events: enough that a seq scan is not the cheap plan
TABLES = ("records", "changes", "entities")


@pytest.fixture(scope="module", params=("sqlite", "postgresql"))
def world(request, tmp_path_factory):
    """A database of its own with the sample world published and analyzed."""
    out = tmp_path_factory.mktemp("plans")
    generate(out / "sample", ENTITIES, seed=7, today=TODAY)
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{out / 'plans.db'}")
        name = None
    else:
        name = f"disclosure_plans_{_worker()}"
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
        engine = make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    upgrade(engine)
    result = publish(
        sorted((out / "sample").iterdir()), engine=engine, today=TODAY, show_progress=False
    )
    assert result.published and result.events > 5000
    analyze(engine)
    if name:  # the steady state: else autovacuum may vacuum the new tables mid-module
        _admin_on(engine, "VACUUM")
    yield engine
    engine.dispose()
    if name:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin_on(engine, *sql: str) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for s in sql:
            conn.execute(text(s))


def _admin(*sql: str) -> None:
    admin = make_engine(PG_ADMIN_URL)
    _admin_on(admin, *sql)
    admin.dispose()


@contextmanager
def captured(engine):
    """The (statement, parameters) the driver is given meanwhile."""
    seen: list[tuple[str, object]] = []

    def listen(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listen)


def plan(engine, statement: str, parameters) -> list[tuple[str, str]]:
    """(node, table) of the statement's plan: PostgreSQL node types ("Seq Scan", "Index Scan"
    …), SQLite's SCAN / SEARCH lines."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            raw = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar()
            doc = raw if isinstance(raw, list) else json.loads(raw)
            out: list[tuple[str, str]] = []

            def walk(node):
                out.append((node["Node Type"], node.get("Relation Name", "")))
                for child in node.get("Plans", ()):
                    walk(child)

            walk(doc[0]["Plan"])
            return out
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        return [(r[-1], (re.findall(r"^(?:SCAN|SEARCH) (\w+)", r[-1]) or [""])[0]) for r in rows]


def full_scans(engine, nodes: list[tuple[str, str]]) -> list[str]:
    """The plan's full scans of the big tables."""
    if engine.dialect.name == "postgresql":
        return [f"{n} on {t}" for n, t in nodes if n == "Seq Scan" and t in TABLES]
    # SQLite: "SCAN t" reads the whole table; "SEARCH t USING ..." seeks an index
    return [n for n, t in nodes if t in TABLES and n.startswith("SCAN")]


def check(engine, call) -> list[tuple[str, list]]:
    """Run `call(conn)`, EXPLAIN every statement it sent that reads the big tables; return
    (statement, plan) pairs and assert none of them scans a whole table."""
    with engine.connect() as conn, captured(engine) as seen:
        call(conn)
    checked = []
    for statement, parameters in seen:
        if not re.search(
            r"\b(records|changes)\b", statement
        ) or statement.lstrip().upper().startswith(("EXPLAIN", "ANALYZE")):
            continue
        nodes = plan(engine, statement, parameters)
        assert not full_scans(engine, nodes), f"{full_scans(engine, nodes)}\n{statement}\n{nodes}"
        checked.append((statement, nodes))
    assert checked, "no statement was captured"
    return checked


def _some(engine, stmt):
    with engine.connect() as conn:
        return conn.execute(stmt).scalars().all()


def _index_names(checked) -> set[str]:
    names = set()
    for _, nodes in checked:
        for node, _ in nodes:
            names.update(re.findall(r"\b(ix_\w+|\w+_pkey)\b", node))
    return names


RECORDS = Record.__table__


def test_profile_uses_the_entity_index(world):
    busiest = _some(
        world,
        select(RECORDS.c.entity_id)
        .where(RECORDS.c.status == ACTIVE)
        .group_by(RECORDS.c.entity_id)
        .order_by(text("count(*) DESC"))
        .limit(1),
    )[0]

    def profile(c):  # the first page, the whole count, the badges' kinds, a later page
        first = read.entity_records(c, busiest, today=TODAY, limit=2)
        read.entity_record_count(c, busiest, today=TODAY)
        read.entity_records(c, busiest, today=TODAY, kinds=("blacklist", "credit_mark"))
        last = first[-1]
        read.entity_records(
            c, busiest, today=TODAY, after=(date.fromisoformat(last["date"]), last["id"])
        )
        return read.entity(c, busiest)

    checked = check(world, profile)
    if world.dialect.name == "sqlite":
        assert "ix_records_entity_status" in _index_names(checked)


@pytest.mark.parametrize("kind", ["penalty", "credit_mark", "return_pledge"])
def test_listings_use_the_kind_status_date_index(world, kind):
    def call(conn):
        first = read.list_records(conn, read.ListFilter(kind=kind), limit=50, today=TODAY)
        assert first
        last = first[-1]
        after = (date.fromisoformat(last["date"]), last["id"])
        read.list_records(conn, read.ListFilter(kind=kind), after=after, limit=50, today=TODAY)
        read.list_records(conn, read.ListFilter(kind=kind), before=after, limit=50, today=TODAY)
        read.list_records(
            conn, read.ListFilter(kind=kind, district="370602"), before=after, today=TODAY
        )
        read.list_records(conn, read.ListFilter(kind=kind, district="370602"), today=TODAY)

    check(world, call)


def _sorts(engine, nodes: list[tuple[str, str]]) -> list[str]:
    """The plan's sorts: SQLite's temporary B-trees, PostgreSQL's Sort / Incremental Sort."""
    if engine.dialect.name == "postgresql":
        return [n for n, _ in nodes if n.endswith("Sort")]
    return [n for n, _ in nodes if "TEMP B-TREE" in n]


@pytest.mark.parametrize("kind", ["penalty", "credit_mark"])
def test_district_listings_read_the_district_index_in_order(world, kind):
    """A listing of a district, every page (first, next, previous), reads
    ix_records_kind_district_date in the listing's (event_date, id) order and stops at the
    page's end: no sort. Without the id in the index, the records of a date were sorted
    (PostgreSQL: an incremental sort; SQLite: a temporary B-tree for the ORDER BY)."""
    flt = read.ListFilter(kind=kind, district="370602")

    def call(conn):
        first = read.list_records(conn, flt, limit=20, today=TODAY)
        assert len(first) == 20
        after = (date.fromisoformat(first[-1]["date"]), first[-1]["id"])
        read.list_records(conn, flt, after=after, limit=20, today=TODAY)
        read.list_records(conn, flt, before=after, limit=20, today=TODAY)

    for statement, parameters in _statements(world, call):
        nodes = plan(world, statement, parameters)
        assert not _sorts(world, nodes), (statement, nodes)
        reads = _record_reads(world, statement, parameters)
        assert len(reads) == 1 and "ix_records_kind_district_date" in reads[0], reads


def test_change_log_pages_by_seq_and_kind(world):
    def call(conn):
        changes.page(conn, since=0, limit=100)
        changes.page(conn, since=3000, limit=100)
        changes.page(conn, since=1000, limit=100, kind="penalty")

    check(world, call)


def test_feeds_read_a_range_of_the_change_log(world):
    entity = _some(world, select(RECORDS.c.entity_id).where(RECORDS.c.kind == "penalty").limit(1))[
        0
    ]

    def call(conn):
        for scope in (
            feeds.Scope(kind="penalty"),
            feeds.Scope(kind="credit_mark", district="370613"),
            feeds.Scope(entity_id=entity),
        ):
            feeds.read_page(conn, scope, "http://example.test", today=TODAY)

    check(world, call)


def test_credit_check_looks_up_records_by_entity_ids(world):
    ids = _some(world, select(RECORDS.c.entity_id).distinct().limit(200))
    check(world, lambda c: creditcheck.check(c, ids[:1], today=TODAY))
    checked = check(world, lambda c: creditcheck.check(c, ids, today=TODAY))
    if world.dialect.name == "sqlite":
        assert "ix_records_entity_status" in _index_names(checked)


@pytest.mark.parametrize("kind", ["penalty", "credit_mark"])
def test_exports_page_through_the_primary_key_without_sorting(world, kind):
    def call(conn):  # two pages of the download (iter_public opens its own connections)
        assert len(list(islice(export.iter_public(kind, world), export.BATCH + 10))) > 0

    for statement, nodes in check(world, call):
        # SQLite: a sort here orders all the kind's active records for every page (it did,
        # through the kind/status index). PostgreSQL sorts a small kind's rows and scans the
        # primary key once the kind is large (measured at 2M records), so only no full scan.
        if world.dialect.name == "sqlite":
            assert not any("TEMP B-TREE" in node for node, _ in nodes), (statement, nodes)
            assert any("sqlite_autoindex_records_1" in node for node, _ in nodes), nodes


def _probes(engine, statement: str, parameters) -> list[str]:
    """How the plan reads the change log under the alias `previous`: SQLite's SEARCH lines,
    PostgreSQL's index scans ("<Node Type> <Index Name> <Scan Direction>")."""
    return _plan_reads(engine, statement, parameters, "previous", "Alias", "Scan Direction")


def test_district_moves_are_tested_by_a_probe_of_the_record_index(world):
    """A district page looks for the changes that moved records out of its district
    (feeds.moves_out), in the log's window (a busy district) or among the changes of its own
    records (a quiet one). Either way no full scan, and each change is tested by one probe of
    ix_changes_record for its record's previous event (not by reading the records' histories)."""
    events = feeds.EVENTS
    top = _some(world, select(func.max(events.c.seq)))[0]
    counts = (
        select(events.c.kind, events.c.district, func.count().label("n"))
        .where(events.c.op.in_(feeds.CONTENT_OPS), events.c.district.is_not(None))
        .group_by(events.c.kind, events.c.district)
    )
    with world.connect() as conn:
        rows = conn.execute(counts).all()
    busy = max(rows, key=lambda r: r.n)
    quiet = min((r for r in rows if r.n <= feeds.MOVE_HISTORY), key=lambda r: r.n)

    def window(conn):  # a window shorter than MOVE_WINDOW: the kind's changes in it
        feeds.moves_out(conn, feeds.Scope(busy.kind, busy.district), top - 999, top + 1, set())

    def history(conn):  # the whole log, but a short history: the changes of its records
        feeds.moves_out(conn, feeds.Scope(quiet.kind, quiet.district), 1, top + 1, set())

    for call, statements in ((window, 1), (history, 2)):
        checked = check(world, call)
        # the window way: the moves; the history way: the district's records, then their moves
        assert len(checked) == statements, checked
        with world.connect() as conn, captured(world) as seen:
            call(conn)
        [(statement, parameters)] = [(s, p) for s, p in seen if "previous" in s]
        probes = _probes(world, statement, parameters)
        if world.dialect.name == "sqlite":
            assert probes == [
                "SEARCH previous USING INDEX ix_changes_record (record_id=? AND seq<?)"
            ]
        else:
            assert probes == ["Index Scan ix_changes_record Backward"], probes


def _record_reads(engine, statement: str, parameters) -> list[str]:
    """How the plan reads the records: SQLite's SEARCH lines, PostgreSQL's
    "<Node Type> <Index Name> <Index Cond>" (or the node type of a scan without an index).
    PostgreSQL's plan as run (EXPLAIN ANALYZE): EXPLAIN leaves out the subquery that a
    recursive CTE's step evaluates."""
    return _plan_reads(
        engine, statement, parameters, "records", "Relation Name", "Index Cond", analyze=True
    )


def _plan_reads(
    engine, statement: str, parameters, name: str, pg_key: str, pg_detail: str, analyze=False
) -> list[str]:
    """The plan's reads of table or alias `name`: SQLite's SCAN/SEARCH lines; PostgreSQL's
    nodes whose `pg_key` is `name`, as "<Node Type> <Index Name> <pg_detail>" (of a bitmap heap
    scan: of the index scans that feed it)."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            explain = "EXPLAIN (ANALYZE, FORMAT JSON) " if analyze else "EXPLAIN (FORMAT JSON) "
            raw = conn.exec_driver_sql(explain + statement, parameters).scalar()
            doc = raw if isinstance(raw, list) else json.loads(raw)
            out: list[str] = []

            def indexes(node) -> list[dict]:  # a bitmap heap scan's, under BitmapAnd/Or too
                found = [node] if "Index Name" in node else []
                return found + [i for child in node.get("Plans", ()) for i in indexes(child)]

            def walk(node):
                if node.get(pg_key) == name:
                    # a bitmap heap scan names no index: its Bitmap Index Scans do
                    parts = [node] if node["Node Type"] != "Bitmap Heap Scan" else indexes(node)
                    names = " ".join(str(p.get("Index Name")) for p in parts)
                    details = " ".join(str(p.get(pg_detail)) for p in parts)
                    out.append(f"{node['Node Type']} {names} {details}")
                for child in node.get("Plans", ()):
                    walk(child)

            walk(doc[0]["Plan"])
            return out
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        return [r[-1] for r in rows if re.match(rf"^(SCAN|SEARCH) {name}\b", r[-1])]


def _reads(engine, call) -> list[list[str]]:
    """check(call), then how each of its statements reads the records."""
    return [
        _record_reads(engine, statement, parameters)
        for statement, parameters in _statements(engine, call)
    ]


def _statements(engine, call) -> list[tuple[str, object]]:
    check(engine, call)
    with engine.connect() as conn, captured(engine) as seen:
        call(conn)
    return [(s, p) for s, p in seen if re.search(r"\brecords\b", s)]


def test_analyze_writes_statistics_that_stay(engine, tmp_path):
    """analyze() commits what it writes (on SQLite it ran BEGIN / ANALYZE / ROLLBACK), and a
    publish too small for it leaves statistics all the same (PRAGMA optimize, SQLite)."""
    from tests.api_helpers import publish_csv
    from tests.factories import penalty_row

    publish_csv(engine, tmp_path, "p.csv", [penalty_row(n) for n in range(1, 3)])
    publish_csv(engine, tmp_path, "q.csv", [penalty_row(3)])  # the first was an initial load
    if engine.dialect.name == "postgresql":
        analyze(engine)
        with engine.connect() as conn:
            stats = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stats WHERE tablename = 'records' AND attname = 'kind'"
            ).scalar()
        assert stats == 1
        return

    def stat1(conn) -> dict[str, str]:
        rows = conn.exec_driver_sql("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'records'")
        return dict(rows.all())

    with engine.connect() as conn:
        assert "ix_records_issue_id" in stat1(conn)  # the publishing connection analyzed them
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM sqlite_stat1")
    analyze(engine)
    engine.dispose()  # a connection of its own reads what was committed
    with engine.connect() as conn:
        stats = stat1(conn)
    assert {"ix_records_issue_id", "ix_records_kind_category_date"} <= set(stats)
    assert stats["sqlite_autoindex_records_1"] == "3 1"  # 3 records, one per id


def test_blacklist_issue_entries_use_the_issue_index(world):
    """Without statistics SQLite read every active record through ix_records_status_until
    (0.75 s at a million records, instead of a few ms)."""
    issue = _some(world, select(RECORDS.c.issue_id).where(RECORDS.c.issue_id.is_not(None)))[0]
    (reads,) = _reads(world, lambda c: read.issue_entries(c, issue, today=TODAY))
    assert len(reads) == 1 and "ix_records_issue_id" in reads[0], reads


# Filters that leave a few per cent of the kind (as the reviewer's slow pages did): with one
# that keeps most records, reading the kind by date is as good a plan, and chosen by chance.
GRADE, SCHEME, LIST, DOMAIN = "E", "信用风险分类", "经营异常名录", "特种设备"


@pytest.mark.parametrize(
    ("flt", "indexes", "in_index"),
    [
        (read.ListFilter("credit_mark", category=LIST), {"category"}, ()),
        (read.ListFilter("penalty", category=DOMAIN), {"category"}, ()),
        (
            read.ListFilter("penalty", category=DOMAIN, district="370602"),
            {"category"},
            ("district",),
        ),
        (read.ListFilter("credit_mark", grade=GRADE), {"grade"}, ()),
        (
            read.ListFilter("credit_mark", grade=GRADE, category=SCHEME),
            {"category", "grade"},
            ("category", "grade"),
        ),
    ],
    ids=["list", "domain", "domain-district", "grade", "scheme-grade"],
)
def test_category_and_grade_listings_use_their_indexes(world, flt, indexes, in_index):
    """A category or a grade is sought in its index on every page (newest first, or, as
    PostgreSQL may choose for a few hundred rows, a bitmap of them and a top-N sort); the other
    filter of a combination is checked in the index (PostgreSQL shows it in the Index Cond)."""

    def call(conn):
        first = read.list_records(conn, flt, limit=10, today=TODAY)
        assert len(first) == 10
        after = (date.fromisoformat(first[-1]["date"]), first[-1]["id"])
        read.list_records(conn, flt, after=after, limit=10, today=TODAY)
        read.list_records(conn, flt, before=after, limit=10, today=TODAY)

    names = {f"ix_records_kind_{name}_date" for name in indexes}
    for reads in _reads(world, call):
        assert len(reads) == 1 and any(name in reads[0] for name in names), reads
        if world.dialect.name == "postgresql":
            assert all(column in reads[0] for column in in_index), reads


@pytest.mark.parametrize("kind", ["penalty", "credit_mark", "return_pledge"])
def test_categories_seek_the_category_index(world, kind):
    """A loose scan: one seek per category in ix_records_kind_category_date (the next category
    after the last), and one for a visible record of it; never a read of the kind's records
    (the GROUP BY took 10 s at a million)."""
    found = []
    (reads,) = _reads(world, lambda c: found.extend(read.categories(c, kind, today=TODAY)))
    assert len(found) > 1
    if world.dialect.name == "sqlite":  # the first category, the next ones, a visible record
        seek = "SEARCH records USING COVERING INDEX ix_records_kind_category_date"
        assert reads == [
            f"{seek} (kind=? AND category>?)",
            f"{seek} (kind=? AND category>?)",
            "SEARCH records USING INDEX ix_records_kind_category_date"
            " (kind=? AND category=? AND status=?)",
        ], reads
    else:
        seek = f"ix_records_kind_category_date ((kind = '{kind}'::text) AND (category > "
        assert any(seek in r for r in reads), reads
        # the pledges (1,200 here) may be checked for visibility in one pass: as cheap
        if kind != "return_pledge":
            assert all("ix_records_kind_category_date" in r for r in reads), reads


@pytest.mark.parametrize("backend", ["sqlite"])  # PRAGMA optimize is SQLite's
def test_a_large_publish_analyzes_once(engine, tmp_path, monkeypatch):
    """A publish large enough for analyze() skips the PRAGMA optimize that would analyze the
    grown tables once more before it (seconds at a million records); a small one keeps it."""
    from sqlalchemy import event

    from publishing import db, publish
    from tests.api_helpers import publish_csv
    from tests.factories import penalty_row

    analyzed: list[str] = []

    def traced(dbapi_conn, _record) -> None:
        dbapi_conn.set_trace_callback(
            lambda sql: analyzed.append(sql) if "ANALYZE" in sql or "optimize" in sql else None
        )

    engine.dispose()
    event.listen(engine, "connect", traced)
    monkeypatch.setattr(publish, "ANALYZE_AFTER_ROWS", 2)
    publish_csv(engine, tmp_path, "p.csv", [penalty_row(n) for n in range(1, 3)])
    assert analyzed == ["ANALYZE"]  # analyze(), and no optimize before it
    analyzed.clear()
    publish_csv(engine, tmp_path, "q.csv", [penalty_row(3)])  # small: optimize, no ANALYZE
    assert "PRAGMA optimize" in analyzed and "ANALYZE" not in analyzed
    raw = engine.raw_connection()
    assert db.ANALYZE_NEXT not in raw.info  # not left on a pooled connection
    raw.close()
