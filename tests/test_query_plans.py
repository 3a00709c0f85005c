"""The hot queries use indexes, on SQLite and PostgreSQL: EXPLAIN of the statements our own
read functions actually send (captured at the driver), over a sample world (30,000 entities,
about 40,000 records and change events) that has been ANALYZEd, so the planners choose with
real statistics (no enable_seqscan=off). The size matters: below ~15,000 change events
PostgreSQL rightly prefers a seq scan for the feed page (a hash join over the whole change
log beats 51 index probes); the test shows the plans of a database past that point.

Hot queries: the entity profile (records by entity_id + status), listings (kind + status +
event_date, with a district, and the keyset next page), the change log (by seq, by kind), feeds
(a kind, a kind in a district, one entity), the credit check (records of entity_id IN (...)),
the open-data download (pages of the primary key).
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
from publishing.db import make_engine, upgrade
from publishing.models import ACTIVE, Record
from publishing.publish import publish
from publishing.sample import generate
from tests.conftest import PG_ADMIN_URL, _worker

TODAY = date(2026, 11, 27)
ENTITIES = 30_000  # ~50k change events: enough that a seq scan is not the cheap plan
TABLES = ("records", "changes", "entities")


@pytest.fixture(scope="module", params=("sqlite", "postgresql"))
def world(request, tmp_path_factory):
    """A database of its own with the sample world published and ANALYZEd."""
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
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    yield engine
    engine.dispose()
    if name:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin(*sql: str) -> None:
    admin = make_engine(PG_ADMIN_URL)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for s in sql:
            conn.execute(text(s))
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
        read.entity_records(c, busiest, today=TODAY, after=(date.fromisoformat(last["date"]), last["id"]))
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
        read.list_records(conn, read.ListFilter(kind=kind, district="370602"), before=after, today=TODAY)
        read.list_records(conn, read.ListFilter(kind=kind, district="370602"), today=TODAY)

    check(world, call)


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
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            raw = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar()
            doc = raw if isinstance(raw, list) else json.loads(raw)
            out: list[str] = []

            def walk(node):
                if node.get("Alias") == "previous":
                    out.append(
                        f"{node['Node Type']} {node.get('Index Name')} {node.get('Scan Direction')}"
                    )
                for child in node.get("Plans", ()):
                    walk(child)

            walk(doc[0]["Plan"])
            return out
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        return [r[-1] for r in rows if re.match(r"^(SCAN|SEARCH) previous\b", r[-1])]


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
