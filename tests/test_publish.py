"""The publishing pipeline end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import func, select

from publishing.commit import EVENTS, ISSUES, RECORDS
from publishing.expire import expire
from publishing.models import Entity
from publishing.publish import publish
from publishing.rules import load_rules
from tests.factories import (
    blacklist_row,
    credit_mark_row,
    penalty_row,
    pledge_row,
    uscc,
    write_csv,
    write_ndjson,
)

TODAY = date(2026, 11, 27)


def run(engine, paths, **kw):
    kw.setdefault("today", TODAY)
    return publish(paths if isinstance(paths, list) else [paths], engine=engine, show_progress=False, **kw)


def count(engine, table, *where):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def statuses(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(select(RECORDS.c.id, RECORDS.c.status)).all())


def test_publish_adds_records_entities_and_events(engine, tmp_path):
    f = write_csv(tmp_path / "p.csv", [penalty_row(i) for i in range(1, 6)])
    result = run(engine, f)
    assert result.published
    report = result.as_json()
    assert (report["rows"], report["accepted"], report["added"], report["rejected"]) == (5, 5, 5, [])
    assert report["kind"] == "penalty"
    assert count(engine, RECORDS, RECORDS.c.status == "active") == 5
    assert count(engine, EVENTS, EVENTS.c.op == "add") == 5
    assert count(engine, Entity.__table__) == 5
    with engine.connect() as conn:
        rec = conn.execute(select(RECORDS).limit(1)).one()
    # 一般 food penalty: public for 1 year (through 2027-06-01), repair only after SAMR's
    # 1-year minimum (which ends that day too)
    assert rec.publicity_until == date(2027, 6, 1)
    assert rec.repairable_from == date(2027, 6, 2)
    assert rec.id.startswith("pn-") and rec.version == 1


def test_publishing_the_same_file_twice_changes_nothing(engine, tmp_path):
    f = write_csv(tmp_path / "p.csv", [penalty_row(i) for i in range(1, 4)])
    run(engine, f)
    events = count(engine, EVENTS)
    second = run(engine, f).as_json()
    assert (second["added"], second["changed"], second["withdrawn"], second["unchanged"]) == (0, 0, 0, 3)
    assert count(engine, EVENTS) == events


def test_changed_row_is_a_new_version(engine, tmp_path):
    run(engine, write_csv(tmp_path / "a.csv", [penalty_row(1), penalty_row(2)]))
    report = run(engine, write_csv(tmp_path / "b.csv", [penalty_row(1, **{"罚款金额(元)": "8000"}),
                                                        penalty_row(2)])).as_json()
    assert (report["changed"], report["unchanged"]) == (1, 1)
    with engine.connect() as conn:
        rec = conn.execute(select(RECORDS).where(RECORDS.c.data["fine_yuan"].as_string() != "")
                           .order_by(RECORDS.c.version.desc()).limit(1)).one()
        ops = conn.execute(select(EVENTS.c.op, EVENTS.c.version).order_by(EVENTS.c.seq)).all()
    assert rec.version == 2
    assert ops[-1] == ("change", 2)


def test_op_column_withdraws(engine, tmp_path):
    run(engine, write_csv(tmp_path / "a.csv", [penalty_row(1), penalty_row(2)]))
    report = run(engine, write_csv(tmp_path / "b.csv", [penalty_row(1, 操作="撤销")],
                                   header=[*penalty_row(1), "操作"])).as_json()
    assert report["withdrawn"] == 1
    assert sorted(statuses(engine).values()) == ["active", "withdrawn"]
    assert count(engine, EVENTS, EVENTS.c.op == "withdraw") == 1


def test_a_decision_number_never_moves_to_another_party(engine, tmp_path):
    """Masking can make two decision numbers equal (their long digit runs hidden): a file whose
    row names another party than the published case is refused, not a takeover."""
    number = "鲁烟芝市监处罚〔2024〕3706022024000123号"
    run(engine, write_csv(tmp_path / "a.csv", [penalty_row(1, 行政处罚决定书文号=number)]))
    other = number.replace("000123", "010123")  # masks to the same published number
    result = run(engine, write_csv(tmp_path / "b.csv", [penalty_row(2, 行政处罚决定书文号=other)]))
    assert not result.published
    reject = result.as_json()["rejected"][0]
    assert reject["column"] == "统一社会信用代码" and uscc(1) in reject["reason"]
    with engine.connect() as conn:
        assert conn.execute(select(RECORDS.c.entity_id)).scalars().all() == [uscc(1)]
    # once the bureau has withdrawn the published case, the number may name the right party
    run(engine, write_csv(tmp_path / "w.csv", [penalty_row(1, 行政处罚决定书文号=number, 操作="撤销")],
                          header=[*penalty_row(1), "操作"]))
    assert run(engine, write_csv(tmp_path / "c.csv", [penalty_row(2, 行政处罚决定书文号=other)])).published


def test_withdrawing_an_unknown_record_is_a_reject(engine, tmp_path):
    result = run(engine, write_csv(tmp_path / "b.csv", [penalty_row(9, 操作="撤销")],
                                   header=[*penalty_row(9), "操作"]))
    assert not result.published
    reject = result.as_json()["rejected"][0]
    # which record: the key's header and cell as the file has them
    assert (reject["column"], reject["value"], reject["reason"]) == (
        "行政处罚决定书文号", penalty_row(9)["行政处罚决定书文号"], "要撤销的记录未曾公示")


def test_snapshot_withdraws_what_the_file_no_longer_has(engine, tmp_path):
    run(engine, write_csv(tmp_path / "a.csv", [penalty_row(i) for i in range(1, 5)]))
    report = run(engine, write_csv(tmp_path / "b.csv", [penalty_row(1), penalty_row(2)]),
                 mode="snapshot").as_json()
    assert (report["withdrawn"], report["unchanged"]) == (2, 2)
    assert count(engine, RECORDS, RECORDS.c.status == "active") == 2
    with engine.connect() as conn:
        reasons = conn.execute(select(EVENTS.c.reason).where(EVENTS.c.op == "withdraw")).scalars().all()
    assert reasons == ["snapshot", "snapshot"]


def test_incremental_does_not_withdraw_absent_records(engine, tmp_path):
    run(engine, write_csv(tmp_path / "a.csv", [penalty_row(i) for i in range(1, 5)]))
    run(engine, write_csv(tmp_path / "b.csv", [penalty_row(1)]))
    assert count(engine, RECORDS, RECORDS.c.status == "active") == 4


def test_a_rejected_row_publishes_nothing_unless_accept_partial(engine, tmp_path):
    rows = [penalty_row(1), penalty_row(2, 统一社会信用代码="91370602MA3C00000X"), penalty_row(3)]
    f = write_csv(tmp_path / "p.csv", rows)
    result = run(engine, f)
    assert not result.published
    assert count(engine, RECORDS) == 0 and count(engine, EVENTS) == 0
    rejected = result.as_json()["rejected"]
    assert rejected == [{"row": 3, "column": "统一社会信用代码", "value": "91370602MA3C00000X",
                         "reason": rejected[0]["reason"]}]
    assert "校验" in rejected[0]["reason"]
    partial = run(engine, f, accept_partial=True)
    assert partial.published
    assert partial.as_json()["added"] == 2 and len(partial.as_json()["rejected"]) == 1
    assert count(engine, RECORDS) == 2


def test_dry_run_writes_nothing(engine, tmp_path):
    result = run(engine, write_csv(tmp_path / "p.csv", [penalty_row(1)]), dry_run=True)
    assert result.as_json()["added"] == 1 and not result.published
    assert count(engine, RECORDS) == 0 and count(engine, EVENTS) == 0


def test_newer_credit_mark_supersedes_older(engine, tmp_path):
    run(engine, write_csv(tmp_path / "a.csv", [credit_mark_row(1, 分类结果="C", 标注日期="2025-01-10")]))
    report = run(engine, write_csv(tmp_path / "b.csv", [credit_mark_row(1, 分类结果="A")])).as_json()
    assert report["added"] == 1 and report["superseded"] == 1
    with engine.connect() as conn:
        rows = conn.execute(select(RECORDS.c.grade, RECORDS.c.status).order_by(RECORDS.c.event_date)).all()
        ops = conn.execute(select(EVENTS.c.op, EVENTS.c.reason).order_by(EVENTS.c.seq)).all()
    assert [tuple(r) for r in rows] == [("C", "superseded"), ("A", "active")]
    assert ops[-2:] == [("withdraw", "superseded"), ("add", None)] or \
        ops[-2:] == [("add", None), ("withdraw", "superseded")]
    # an older mark arriving late is stored superseded and announced nowhere
    late = run(engine, write_csv(tmp_path / "c.csv", [credit_mark_row(1, 分类结果="D", 标注日期="2024-01-10")]))
    assert late.events == 0
    assert count(engine, RECORDS, RECORDS.c.status == "active") == 1


def test_marks_of_two_files_in_one_initial_publish_supersede_each_other(engine, tmp_path):
    """The first file of a new kind skips the rival lookups; its marks still have rivals in
    the second file."""
    older = write_csv(tmp_path / "a.csv", [credit_mark_row(1, 分类结果="C", 标注日期="2025-01-10"),
                                           credit_mark_row(2, 分类结果="B", 标注日期="2025-01-10")])
    newer = write_csv(tmp_path / "b.csv", [credit_mark_row(1, 分类结果="A")])
    reports = run(engine, [older, newer]).as_json()
    assert [(r["added"], r.get("superseded", 0)) for r in reports] == [(2, 0), (1, 1)]
    with engine.connect() as conn:
        rows = conn.execute(select(RECORDS.c.grade, RECORDS.c.status).order_by(RECORDS.c.grade)).all()
    assert [tuple(r) for r in rows] == [("A", "active"), ("B", "active"), ("C", "superseded")]


def test_scheme_published_only_as_statistics(engine, tmp_path):
    rules = load_rules()
    hidden = type(rules)({**rules.raw, "credit_mark": {"schemes": {"信用风险分类": {"public": False}}}})
    f = write_csv(tmp_path / "a.csv", [credit_mark_row(1), credit_mark_row(2)])
    result = run(engine, f, rules=hidden)
    assert result.events == 0
    assert set(statuses(engine).values()) == {"aggregate"}
    counts = expire(engine, today=TODAY, rules=rules)  # switched back to public
    assert counts["republished"] == 2
    assert set(statuses(engine).values()) == {"active"}
    counts = expire(engine, today=TODAY, rules=hidden)
    assert counts["aggregate"] == 2 and count(engine, EVENTS, EVENTS.c.op == "withdraw") == 2


def test_expire_withdraws_records_past_publicity(engine, tmp_path):
    rows = [penalty_row(1, 处罚决定日期="2026-08-05", 失信程度="轻微", 领域="价格"),
            penalty_row(2, 处罚决定日期="2026-09-05")]
    run(engine, write_csv(tmp_path / "a.csv", rows), today=date(2026, 10, 1))
    assert sorted(statuses(engine).values()) == ["active", "active"]
    counts = expire(engine, today=TODAY)
    assert counts["expired"] == 1  # 轻微: 3 months, ended 2026-11-05
    assert sorted(statuses(engine).values()) == ["active", "expired"]
    assert count(engine, EVENTS, EVENTS.c.op == "expire") == 1
    assert expire(engine, today=TODAY)["expired"] == 0


def test_explicit_publicity_end_wins_and_past_ones_arrive_expired(engine, tmp_path):
    header = [*penalty_row(1), "公示截止日期"]
    rows = [penalty_row(1, 公示截止日期="2030-01-01"), penalty_row(2, 公示截止日期="2026-07-01")]
    result = run(engine, write_csv(tmp_path / "a.csv", rows, header=header))
    assert result.as_json()["added"] == 1 and result.as_json()["stored_expired"] == 1
    with engine.connect() as conn:
        ends = sorted(conn.execute(select(RECORDS.c.publicity_until)).scalars())
    assert ends == [date(2026, 7, 1), date(2030, 1, 1)]


def test_latest_name_wins_and_former_names_are_kept(engine, tmp_path):
    run(engine, write_csv(tmp_path / "a.csv", [penalty_row(1, 当事人名称="烟台旧名食品厂", 处罚决定日期="2025-01-01")]))
    run(engine, write_csv(tmp_path / "b.csv", [penalty_row(2, 统一社会信用代码=penalty_row(1)["统一社会信用代码"],
                                                           当事人名称="烟台新名食品有限公司")]))
    # an older record under a third name does not take over the current name
    run(engine, write_csv(tmp_path / "c.csv", [penalty_row(3, 统一社会信用代码=penalty_row(1)["统一社会信用代码"],
                                                           当事人名称="烟台更旧名商店", 处罚决定日期="2024-01-01")]))
    with engine.connect() as conn:
        ent = conn.execute(select(Entity.__table__)).one()
    assert ent.name == "烟台新名食品有限公司"
    assert ent.former_names == ["烟台旧名食品厂", "烟台更旧名商店"]


def test_blacklist_issue_counts_follow_withdrawals(engine, tmp_path):
    rows = [blacklist_row(i) for i in range(1, 4)]
    run(engine, write_csv(tmp_path / "a.csv", rows))
    with engine.connect() as conn:
        issue = conn.execute(select(ISSUES)).one()
    assert (issue.issue_no, issue.entry_count, issue.issued_on) == ("2026年第9期", 3, date(2026, 9, 1))
    run(engine, write_csv(tmp_path / "b.csv", rows[:1]), mode="snapshot")
    with engine.connect() as conn:
        assert conn.execute(select(ISSUES.c.entry_count)).scalar_one() == 1


def test_pledge_status_withdraws_and_ndjson_is_read(engine, tmp_path):
    run(engine, write_ndjson(tmp_path / "a.ndjson", [pledge_row(1), pledge_row(2)]))
    report = run(engine, write_ndjson(tmp_path / "b.ndjson", [pledge_row(1, status="撤销")])).as_json()
    assert report["withdrawn"] == 1
    assert sorted(statuses(engine).values()) == ["active", "withdrawn"]


def test_cleaning_in_a_child_process_stores_exactly_what_cleaning_in_process_does(
        engine, tmp_path, monkeypatch):
    import publishing.publish as publish_module

    files = [write_csv(tmp_path / "p.csv", [penalty_row(i) for i in range(1, 41)]),
             write_csv(tmp_path / "c.csv", [credit_mark_row(i) for i in range(1, 31)])]
    monkeypatch.setattr(publish_module, "PARALLEL_MIN_BYTES", 0)  # every file in a child
    first = run(engine, files)
    assert [r["added"] for r in first.as_json()] == [40, 30]
    monkeypatch.setattr(publish_module, "PARALLEL_MIN_BYTES", 10**12)  # in process
    again = run(engine, files)
    assert [r["unchanged"] for r in again.as_json()] == [40, 30]  # same content hashes
    assert again.events == 0


def test_a_failure_in_the_cleaning_process_fails_the_publish(engine, tmp_path, monkeypatch):
    import publishing.publish as publish_module
    from publishing.clean import Cleaner

    def broken(self, row):  # cleaning runs in the child (the stored form may not)
        raise RuntimeError("boom in the child")

    monkeypatch.setattr(publish_module, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(Cleaner, "clean", broken)
    with pytest.raises(RuntimeError, match="boom in the child"):
        run(engine, write_csv(tmp_path / "p.csv", [penalty_row(1)]))
    assert count(engine, RECORDS) == 0


def test_a_file_level_error_in_the_cleaning_process_reaches_the_publisher(
    engine, tmp_path, monkeypatch
):
    # A SourceError crosses the pipe pickled; it could not be unpickled (its __init__ takes a
    # Reject), which killed the reader thread and left the publish waiting forever.
    import publishing.publish as publish_module
    from publishing.clean import Cleaner
    from publishing.rows import Reject, SourceError

    def broken(self, row):  # cleaning runs in the child (the stored form may not)
        raise SourceError(Reject("p.csv", 0, None, None, "文件在读取时被改动"))

    monkeypatch.setattr(publish_module, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(Cleaner, "clean", broken)
    with pytest.raises(SourceError) as raised:
        run(engine, write_csv(tmp_path / "p.csv", [penalty_row(1)]))
    assert raised.value.reject.reason == "文件在读取时被改动"
    assert count(engine, RECORDS) == 0


def index_names(engine) -> list[str]:
    """The indexes and foreign keys of the tables an initial load writes."""
    from sqlalchemy import inspect

    inspector = inspect(engine)
    tables = ("records", "changes", "entities")
    return sorted([ix["name"] for t in tables for ix in inspector.get_indexes(t)]
                  + [f"{t}.{fk['constrained_columns']}->{fk['referred_table']}"
                     for t in tables for fk in inspector.get_foreign_keys(t)])


def test_initial_load_leaves_every_index_in_place(engine, tmp_path):
    before = index_names(engine)
    assert "ix_records_kind_status_date" in before and "ix_changes_entity_seq" in before
    assert "records.['entity_id']->entities" in before
    f = write_csv(tmp_path / "p.csv", [penalty_row(i) for i in range(1, 6)])
    run(engine, f, dry_run=True)  # rolled back: dropped indexes come back with the rollback
    assert index_names(engine) == before
    run(engine, f)  # committed: rebuilt in the same transaction
    assert index_names(engine) == before
    run(engine, write_csv(tmp_path / "q.csv", [penalty_row(9)]))  # not an initial load
    assert index_names(engine) == before


def test_initial_load_defers_upkeep_and_checks_foreign_keys_at_the_end(engine, tmp_path, monkeypatch):
    from sqlalchemy.exc import IntegrityError

    from publishing import plan

    rebuilt: list[str] = []
    real_indexes, real_constraints = plan.restore_indexes, plan.restore_constraints

    def restore_indexes(conn, what):
        rebuilt.extend(ix.name for ix in what.indexes)
        real_indexes(conn, what)

    def restore_constraints(conn, what):
        if conn.dialect.name == "postgresql":  # a record of an unknown entity must not commit
            conn.exec_driver_sql("UPDATE records SET entity_id = 'NO-SUCH-ENTITY'")
        real_constraints(conn, what)

    monkeypatch.setattr(plan, "restore_indexes", restore_indexes)
    monkeypatch.setattr(plan, "restore_constraints", restore_constraints)
    f = write_csv(tmp_path / "p.csv", [penalty_row(i) for i in range(1, 4)])
    if engine.dialect.name == "postgresql":
        with pytest.raises(IntegrityError, match="records_entity_id_fkey"):
            run(engine, f)
        assert count(engine, RECORDS) == 0
    else:
        run(engine, f)
        with engine.connect() as conn:  # the load stored its records before their entities
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    assert {"ix_records_kind_status_date", "ix_records_group", "ix_records_issue_id"} <= set(rebuilt)


def test_a_second_file_of_a_kind_in_an_initial_load_looks_up_with_the_indexes_back(engine, tmp_path, monkeypatch):
    from publishing.plan import Planner

    present: list[list[str]] = []
    rivals = Planner._rivals

    def watching(self, rows):
        if rows:
            catalog = ("SELECT name FROM sqlite_master WHERE tbl_name = 'records'"
                       if engine.dialect.name == "sqlite" else
                       "SELECT indexname FROM pg_indexes WHERE tablename = 'records'")
            present.append([r[0] for r in self.conn.exec_driver_sql(catalog)])
        return rivals(self, rows)

    monkeypatch.setattr(Planner, "_rivals", watching)
    first = write_csv(tmp_path / "a.csv", [credit_mark_row(i) for i in range(1, 4)])
    second = write_csv(tmp_path / "b.csv", [credit_mark_row(1, 分类结果="A")])
    run(engine, [first, second])
    assert len(present) == 1  # the first file of the kind looks up nothing
    assert "ix_records_group" in present[0]


def test_sqlite_checks_foreign_keys_again_after_an_initial_load(engine, tmp_path):
    if engine.dialect.name != "sqlite":
        return
    from sqlalchemy.exc import IntegrityError

    assert run(engine, write_csv(tmp_path / "p.csv", [penalty_row(1)])).published
    for _ in range(3):  # every pooled connection, the publisher's included
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    with engine.begin() as conn, pytest.raises(IntegrityError):  # foreign keys are on again
        conn.exec_driver_sql("UPDATE records SET entity_id = 'NO-SUCH-ENTITY'")


def journal_during_publish(engine, f, monkeypatch) -> str:
    """The journal mode the publish transaction ran in (read just before it commits)."""
    from publishing.plan import Planner

    seen = []
    real = Planner.restore_upkeep

    def restore(self):
        journal = self.conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        synchronous = self.conn.exec_driver_sql("PRAGMA synchronous").scalar()
        assert synchronous == (2 if journal == "delete" else 1)  # FULL: power-safe without the WAL
        seen.append(journal)
        real(self)

    monkeypatch.setattr(Planner, "restore_upkeep", restore)
    assert run(engine, f).published
    return seen[0]


def test_sqlite_initial_load_alone_writes_through_a_rollback_journal(engine, tmp_path, monkeypatch):
    """Pages written once, not to the WAL and again at the checkpoint; back to WAL after."""
    if engine.dialect.name != "sqlite":
        return
    engine.dispose()  # nothing else has the database open
    assert journal_during_publish(engine, write_csv(tmp_path / "p.csv", [penalty_row(1)]), monkeypatch) == "delete"
    for _ in range(3):  # every pooled connection, the publisher's included
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    engine.dispose()  # not an initial load any more: the WAL stays
    assert journal_during_publish(engine, write_csv(tmp_path / "q.csv", [penalty_row(2)]), monkeypatch) == "wal"


def test_sqlite_initial_load_keeps_the_wal_for_a_reader_that_has_the_database_open(engine, tmp_path, monkeypatch):
    if engine.dialect.name != "sqlite":
        return
    from publishing.db import make_engine

    reader = make_engine(str(engine.url))
    with reader.connect() as conn:  # a portal connection, in the middle of a read
        assert conn.exec_driver_sql("SELECT count(*) FROM records").scalar() == 0
        f = write_csv(tmp_path / "p.csv", [penalty_row(1), penalty_row(2)])
        assert journal_during_publish(engine, f, monkeypatch) == "wal"
        conn.rollback()  # its next read sees the new publication
        assert conn.exec_driver_sql("SELECT count(*) FROM records").scalar() == 2
    reader.dispose()


def sightings_of(base: int) -> tuple[list[dict], list[dict]]:
    """Entities seen under several names, dates, addresses and legal representatives, in two
    files; and entities whose sightings agree on everything but the date (PostgreSQL merges
    those in SQL)."""
    marks = [credit_mark_row(base, 主体名称="烟台甲有限公司", 标注日期="2025-03-01"),
             credit_mark_row(base, 主体名称="烟台乙有限公司", 标注日期="2024-01-01", 标注类型="严重违法失信名单",
                             分类结果=""),
             credit_mark_row(base + 1, 主体名称="烟台丙有限公司", 标注日期="2025-01-01")]
    penalties = [penalty_row(base, 当事人名称="烟台丁有限公司", 处罚决定日期="2025-06-01", 法定代表人="",
                             住所="烟台市芝罘区新址1号"),
                 penalty_row(base + 1, 当事人名称="烟台戊有限公司", 处罚决定日期="2024-06-01", 法定代表人="李四",
                             住所="烟台市芝罘区旧址2号"),
                 penalty_row(base + 2, 当事人名称="烟台己有限公司", 处罚决定日期="2025-06-01", 住所=""),
                 *(penalty_row(base + 3, 当事人名称="烟台庚有限公司", 处罚决定日期=day, 住所="烟台市芝罘区新址3号",
                               行政处罚决定书文号=f"烟芝市监罚〔2025〕{i}号")
                   for i, day in enumerate(["2025-08-01", "2024-06-01"], start=base)),
                 *(penalty_row(base + 4, 当事人名称="烟台辛有限公司", 法定代表人="", 处罚决定日期=day, 住所="",
                               行政处罚决定书文号=f"烟芝市监罚〔2025〕{i}号")
                   for i, day in enumerate(["2024-06-01", "2025-08-01"], start=base + 10)),
                 *(penalty_row(base + 5, 当事人名称="烟台壬有限公司", 法定代表人=rep, 处罚决定日期=day, 住所="",
                               行政处罚决定书文号=f"烟芝市监罚〔2025〕{i}号")
                   for i, (rep, day) in enumerate([("张三", "2024-06-01"), ("", "2025-08-01")], start=base + 20)),
                 *(penalty_row(base + 6, 当事人名称="烟台癸有限公司", 法定代表人=rep, 处罚决定日期=day, 住所="",
                               行政处罚决定书文号=f"烟芝市监罚〔2025〕{i}号")
                   for i, (rep, day) in enumerate([("李四", "2025-08-01"), ("张三", "2024-06-01")], start=base + 30)),
                 # moved: every field agrees but the district, which the later record gives
                 *(penalty_row(base + 7, 当事人名称="烟台子有限公司", 所属区市=district, 处罚决定日期=day, 住所="",
                               行政处罚决定书文号=f"烟芝市监罚〔2025〕{i}号")
                   for i, (district, day) in enumerate([("芝罘区", "2024-06-01"), ("莱山区", "2025-08-01")],
                                                       start=base + 40))]
    return marks, penalties


def test_an_initial_load_merges_entities_exactly_as_a_later_publish_does(engine, tmp_path):
    """An initial load merges entities at its end from the records; any later publish merges
    them chunk by chunk. The same sightings give the same entities either way."""
    from publishing.commit import ENTITIES

    def publish_sightings(base: int, name: str) -> None:
        marks, penalties = sightings_of(base)
        files = [write_csv(tmp_path / f"{name}-m.csv", marks), write_csv(tmp_path / f"{name}-p.csv", penalties)]
        assert run(engine, files).published

    def entities_from(base: int) -> list[tuple]:
        columns = [c for c in ENTITIES.c if c.name not in ("id", "uscc", "created_at", "updated_at")]
        with engine.connect() as conn:
            rows = conn.execute(select(*columns).where(ENTITIES.c.id.in_([uscc(base + i) for i in range(8)]))
                                .order_by(ENTITIES.c.id)).all()
        return [tuple(r) for r in rows]

    publish_sightings(100, "initial")  # into the empty database
    publish_sightings(200, "later")
    initial, later = entities_from(100), entities_from(200)
    assert initial == later
    assert initial[0][1:3] == ("烟台丁有限公司", ["烟台乙有限公司", "烟台甲有限公司"])  # name, former names
    assert initial[1][1:3] == ("烟台丙有限公司", ["烟台戊有限公司"])  # the later-dated name wins
    names = [column.name for column in ENTITIES.c if column.name not in ("id", "uscc", "created_at", "updated_at")]
    agreeing = [dict(zip(names, row, strict=True)) for row in initial[3:7]]
    assert [(e["name"], e["name_as_of"], e["former_names"], e["legal_rep"]) for e in agreeing] == [
        ("烟台庚有限公司", date(2025, 8, 1), [], "张三"), ("烟台辛有限公司", date(2025, 8, 1), [], None),
        ("烟台壬有限公司", date(2025, 8, 1), [], "张三"),  # a later empty one does not erase it
        ("烟台癸有限公司", date(2025, 8, 1), [], "李四")]  # nor does an earlier-dated one
    moved = dict(zip(names, initial[7], strict=True))
    assert (moved["district"], moved["name_as_of"]) == ("370613", date(2025, 8, 1))  # 莱山区


def test_initial_load_on_postgresql_gives_way_to_readers(engine, tmp_path, monkeypatch):
    """A reader holding a table: no deadlock and no long wait, the indexes just stay."""
    if engine.dialect.name != "postgresql":
        return
    from publishing import initial_load

    monkeypatch.setattr(initial_load, "LOCK_ATTEMPTS", 3)
    before = index_names(engine)
    with engine.connect() as reader, reader.begin():
        reader.execute(select(func.count()).select_from(EVENTS)).scalar_one()  # holds a share lock
        result = run(engine, write_csv(tmp_path / "p.csv", [penalty_row(i) for i in range(1, 4)]))
    assert result.published and count(engine, RECORDS) == 3
    assert index_names(engine) == before


def test_two_files_of_a_new_kind_in_one_publish_see_each_other(engine, tmp_path):
    """The first file of a kind nothing is stored of skips the lookups; the second must not."""
    first = write_csv(tmp_path / "a.csv", [penalty_row(1), penalty_row(2)])
    second = write_csv(tmp_path / "b.csv", [penalty_row(2, **{"罚款金额(元)": "999", "当事人名称": "烟台新名有限公司"}),
                                            penalty_row(3)])
    result = run(engine, [first, second])
    counts = [(r["added"], r["changed"]) for r in result.as_json()]
    assert counts == [(2, 0), (1, 1)]
    assert count(engine, RECORDS) == 3
    # The entities of the first file are built before the second file merges into them.
    with engine.connect() as conn:
        names = conn.execute(select(Entity.__table__.c.id, Entity.__table__.c.name, Entity.__table__.c.former_names)
                             .order_by(Entity.__table__.c.id)).all()
    assert [tuple(n) for n in names] == [(uscc(1), "烟台市芝罘区测试1食品有限公司", []),
                                         (uscc(2), "烟台新名有限公司", ["烟台市芝罘区测试2食品有限公司"]),
                                         (uscc(3), "烟台市芝罘区测试3食品有限公司", [])]


def test_an_initial_load_merges_an_entity_seen_in_several_chunks_and_files(engine, tmp_path, monkeypatch):
    """An entity seen in several chunks and files of an initial load is merged from them all."""
    import publishing.publish as publish_module

    monkeypatch.setattr(publish_module, "CHUNK", 1)  # every sighting in a chunk of its own
    marks = write_csv(tmp_path / "m.csv", [
        credit_mark_row(1, 主体名称="烟台旧名有限公司", 标注日期="2025-01-10"),
        credit_mark_row(1, 主体名称="烟台旧名有限公司", 标注类型="严重违法失信名单", 分类结果=""),
        credit_mark_row(2)])
    penalties = write_csv(tmp_path / "p.csv", [penalty_row(1, 当事人名称="烟台新名有限公司")])
    assert run(engine, [marks, penalties]).published
    with engine.connect() as conn:
        rows = conn.execute(select(Entity.__table__.c.id, Entity.__table__.c.name,
                                   Entity.__table__.c.former_names).order_by("id")).all()

    assert [tuple(r) for r in rows] == [(uscc(1), "烟台新名有限公司", ["烟台旧名有限公司"]),
                                        (uscc(2), "烟台测试2有限公司", [])]


def test_a_publisher_failure_stops_the_cleaning_process_and_its_reader(engine, tmp_path, monkeypatch):
    import threading

    import publishing.publish as publish_module
    from publishing.plan import Planner

    monkeypatch.setattr(publish_module, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(publish_module, "CHUNK", 2)
    monkeypatch.setattr(publish_module, "READ_AHEAD", 1)

    def broken(self, rows):
        raise RuntimeError("boom in the publisher")

    monkeypatch.setattr(Planner, "apply_chunk", broken)
    threads = threading.active_count()
    with pytest.raises(RuntimeError, match="boom in the publisher"):
        run(engine, write_csv(tmp_path / "p.csv", [penalty_row(i) for i in range(1, 40)]))
    assert threading.active_count() == threads
    assert count(engine, RECORDS) == 0


def test_bulk_json_is_what_the_json_module_writes():
    import json

    from publishing.bulk import dumps

    value = {"name": "烟台\"引号\"\\ \n\t\x01\u2028😀 <&>", "list": [1, -2, True, None, {"k": ""}],
             "big": 10**30, "surrogate": "\ud800"}
    assert dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    del value["big"], value["surrogate"]
    assert dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_bulk_writes_store_times_as_sqlalchemy_does(engine, tmp_path, monkeypatch):
    from datetime import UTC, datetime

    from publishing import clock

    instant = datetime(2026, 11, 27, 1, 2, 3, 456789, tzinfo=UTC)  # 09:02 in Beijing
    monkeypatch.setattr(clock, "now", lambda: instant)
    run(engine, write_csv(tmp_path / "p.csv", [penalty_row(1, 处罚决定日期="2026-03-04")]))
    with engine.connect() as conn:  # read back through SQLAlchemy's types, on both backends
        stored = conn.execute(select(RECORDS.c.first_published_at, RECORDS.c.updated_at,
                                     RECORDS.c.event_date)).one()
        at = conn.execute(select(EVENTS.c.at)).scalar_one()
        created = conn.execute(select(Entity.__table__.c.created_at)).scalar_one()
    assert tuple(stored) == (instant, instant, date(2026, 3, 4))
    assert at == created == instant
    if engine.dialect.name == "sqlite":  # one text format for ORM and bulk rows alike
        with engine.connect() as conn:
            raw = conn.exec_driver_sql("SELECT at FROM changes").scalar_one()
            started = conn.exec_driver_sql("SELECT started_at FROM batches").scalar_one()
        assert "+" not in raw and len(raw) == len(started) == len("2026-11-27 09:00:00.000000")


def test_a_pooled_connection_leaves_the_writer_cache_behind(tmp_path):
    from publishing.db import make_engine, writer_connection

    engine = make_engine(f"sqlite:///{tmp_path / 'cache.db'}")
    with writer_connection(engine) as conn:
        writer = [conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in ("cache_size", "threads")]
        writer_id = id(conn.connection.driver_connection)
    with engine.connect() as conn:  # LIFO pool: the same SQLite connection again
        assert id(conn.connection.driver_connection) == writer_id
        reader = [conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in ("cache_size", "threads")]
        assert (writer, reader) == ([-32768, 2], [-4096, 0])
    engine.dispose()


def test_a_file_that_cannot_be_read_publishes_nothing_into_an_empty_database(engine, tmp_path):
    # An empty database starts an initial load: its end-of-load entity build must not run
    # (it failed with an SQL error) when no file could be read at all.
    path = tmp_path / "bad.ndjson"
    path.write_text('{"uscc": "91370602MA3C8GR03X", "entity_name": \n', encoding="utf-8")
    result = run(engine, path)
    assert not result.published and result.rejected == 1
    assert result.reports[0].rejected[0].row == 0
    assert count(engine, RECORDS) == count(engine, Entity.__table__) == 0


def test_lone_surrogate_is_a_rejected_row_not_a_crash(engine, tmp_path):
    from publishing.sources.json_reader import R_SURROGATE

    rows = [pledge_row(1), pledge_row(2, entity_name="烟台测试\ud800商场"), pledge_row(3)]
    path = tmp_path / "p.ndjson"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    result = run(engine, path)
    assert not result.published
    assert [(r.row, r.reason) for r in result.reports[0].rejected] == [(2, R_SURROGATE)]
    result = run(engine, path, accept_partial=True)
    assert result.published and result.reports[0].counts["added"] == 2


def test_stored_data_is_json_text(engine, tmp_path):
    facts = 'C:\\导出\\n 与 "引号" 与 \\u0041 原样保存'  # backslashes survive JSON and COPY escaping
    run(engine, write_csv(tmp_path / "p.csv", [penalty_row(1, 当事人名称="烟台“引号”食品有限公司",
                                                           违法事实=facts)]))
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":  # bound as UTF-8 bytes, stored as TEXT
            sql = "SELECT typeof(data), json_extract(data, '$.entity_name') FROM records"
        else:
            sql = "SELECT jsonb_typeof(data), data->>'entity_name' FROM records"
        assert tuple(conn.exec_driver_sql(sql).one()) in {("text", "烟台“引号”食品有限公司"),
                                                          ("object", "烟台“引号”食品有限公司")}
        data = conn.execute(select(RECORDS.c.data)).scalar_one()
        assert data["entity_name"] == "烟台“引号”食品有限公司"
        assert facts in data.values()


def _cleaned_credit_marks(rows: list[dict]) -> list:
    """The file rows as the cleaner makes them (rows 2, 3 … of c.csv)."""
    from publishing.clean import Cleaner
    from publishing.rows import SourceRow
    from publishing.sources.headers import KeyMapper

    mapper, cleaner = KeyMapper("credit_mark"), Cleaner("credit_mark", TODAY, "c.csv")
    return [cleaner.clean(SourceRow("c.csv", i, {key: v for h, v in row.items() if (key := mapper.classify(h))}))
            for i, row in enumerate(rows, start=2)]


def test_a_cleaned_row_crosses_the_pipe_whole():
    """Rows from a cleaning process reach the publisher as cleaned rows when it has no backlog
    (it makes their stored form itself): the same stored form as the cleaning process makes."""
    import pickle

    import publishing.publish as publish_module
    from publishing.plan import prepare

    (clean,) = _cleaned_credit_marks([credit_mark_row(1, 有效期至="2027-01-31")])
    assert clean.publicity_until is not None
    packed = pickle.loads(pickle.dumps(publish_module._pack_clean(clean), pickle.HIGHEST_PROTOCOL))
    received = publish_module._unpack_clean(packed)
    assert received == clean
    assert prepare(received, load_rules()) == prepare(clean, load_rules())


@pytest.mark.parametrize("slower", ["publisher", "cleaner"])
def test_the_stored_form_is_made_by_whichever_side_has_time(slower):
    """A cleaning process makes a chunk's stored form itself when the publisher has not yet
    taken the chunk before it; when the publisher waits for it, it sends cleaned rows."""
    import time

    from publishing.plan import Prepared, prepare
    from publishing.publish import _CleaningProcess

    rules = load_rules()
    rows = _cleaned_credit_marks([credit_mark_row(i) for i in range(1, 9)])

    def chunks():  # runs in the cleaning process
        for row in rows:
            if slower == "cleaner":
                time.sleep(0.1)
            yield [row], [], 1

    process = _CleaningProcess(chunks(), rules, [])
    received = []
    try:
        time.sleep(0.5 if slower == "publisher" else 0)
        for chunk_rows, _, _ in process:
            received.extend(chunk_rows)
            time.sleep(0.2 if slower == "publisher" else 0)
    finally:
        process.close()
    forms = [type(r).__name__ for r in received]
    if slower == "publisher":  # it takes none for 0.5 s, then one each 0.2 s: the last ones were prepared
        assert forms[4:] == ["Prepared"] * 4
    else:
        assert forms == ["CleanRow"] * 8
    assert [r if isinstance(r, Prepared) else prepare(r, rules) for r in received] == \
        [prepare(r, rules) for r in rows]


def test_content_hash_is_over_the_json_text():
    import hashlib

    from publishing.clean import Cleaner
    from publishing.plan import record_row
    from publishing.rows import SourceRow
    from publishing.sources.headers import KeyMapper

    mapper = KeyMapper("penalty")
    values = {}
    for header, value in penalty_row(1, 当事人名称="烟台“引号”😀食品有限公司").items():
        key = mapper.classify(header)
        if key:
            values[key] = value
    clean = Cleaner("penalty", TODAY, "p.csv").clean(SourceRow("p.csv", 2, values))
    row = record_row(clean, load_rules())
    assert isinstance(row["data"], bytes)
    text = json.dumps(json.loads(row["data"]), ensure_ascii=False, separators=(",", ":"))
    assert text.encode() == row["data"]
    digest = hashlib.blake2b(
        f"{row['entity_id']}|{row['district']}|{row['event_date']}|{row['publicity_until']}|"
        f"{row['repairable_from']}|{text}".encode(), digest_size=16).hexdigest()
    assert row["content_hash"] == digest  # the same hash as when data travelled as text


def test_the_next_file_is_cleaned_while_the_one_before_it_is_published(engine, tmp_path, monkeypatch):
    import multiprocessing
    import tempfile

    import publishing.publish as publish_module
    from publishing.plan import Planner

    monkeypatch.setattr(publish_module, "PARALLEL_MIN_BYTES", 0)  # every file in a child
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the spools go
    files = [write_csv(tmp_path / "p.csv", [penalty_row(i) for i in range(1, 41)]),
             write_csv(tmp_path / "c.csv", [credit_mark_row(i) for i in range(1, 31)]),
             write_ndjson(tmp_path / "r.ndjson", [pledge_row(i) for i in range(1, 21)])]
    events = []
    apply_chunk = Planner.apply_chunk

    class Watched(publish_module._CleaningProcess):
        def __init__(self, chunks, rules, ignored, after):
            super().__init__(chunks, rules, ignored, after)
            events.append("cleaning started")

    def watching(self, rows):
        events.append(rows[0].record["kind"])
        return apply_chunk(self, rows)

    monkeypatch.setattr(publish_module, "_CleaningProcess", Watched)
    monkeypatch.setattr(Planner, "apply_chunk", watching)
    result = run(engine, files)
    assert [r["added"] for r in result.as_json()] == [40, 30, 20]
    # The second file's cleaning starts before the first file is published, the third's
    # before the second's.
    assert events == ["cleaning started", "cleaning started", "penalty",
                      "cleaning started", "credit_mark", "return_pledge"]
    assert multiprocessing.active_children() == []
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("disclosure-spool")] == []


@pytest.mark.parametrize("large", [True, False], ids=["large files", "small files"])
def test_one_process_cleans_at_a_time_after_a_large_file(engine, tmp_path, monkeypatch, large):
    """The next file's process is forked early but, after a large file, cleans only once the
    one before it has cleaned its file: one large file's natural keys in memory at a time."""
    import time

    import publishing.publish as publish_module

    monkeypatch.setattr(publish_module, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(publish_module, "WAIT_AFTER_BYTES", 0 if large else 10**9)
    log = tmp_path / "cleaning.log"
    cleaned_chunks = publish_module._cleaned_chunks

    def logged(source, cleaner, rules, size):  # runs in the cleaning processes
        with log.open("a", encoding="utf-8") as f:
            f.write(f"start {source.kind}\n")
        yield from cleaned_chunks(source, cleaner, rules, size)
        time.sleep(0.3)  # a slow end: the next process would have started meanwhile
        with log.open("a", encoding="utf-8") as f:
            f.write(f"end {source.kind}\n")

    monkeypatch.setattr(publish_module, "_cleaned_chunks", logged)
    files = [write_csv(tmp_path / "p.csv", [penalty_row(i) for i in range(1, 41)]),
             write_csv(tmp_path / "c.csv", [credit_mark_row(i) for i in range(1, 31)]),
             write_ndjson(tmp_path / "r.ndjson", [pledge_row(i) for i in range(1, 21)])]
    result = run(engine, files)
    assert [r["added"] for r in result.as_json()] == [40, 30, 20]
    lines = log.read_text(encoding="utf-8").splitlines()
    if large:
        assert lines == ["start penalty", "end penalty", "start credit_mark", "end credit_mark",
                         "start return_pledge", "end return_pledge"]
    else:  # small files: the next one is cleaned meanwhile
        assert lines.index("start credit_mark") < lines.index("end penalty")


def test_a_failure_stops_the_cleaning_processes_of_files_not_yet_published(engine, tmp_path, monkeypatch):
    import multiprocessing
    import threading

    import publishing.publish as publish_module
    from publishing.plan import Planner

    monkeypatch.setattr(publish_module, "PARALLEL_MIN_BYTES", 0)
    files = [write_csv(tmp_path / "p.csv", [penalty_row(i) for i in range(1, 41)]),
             write_csv(tmp_path / "c.csv", [credit_mark_row(i) for i in range(1, 31)])]

    def broken(self, rows):
        raise RuntimeError("boom in the publisher")

    monkeypatch.setattr(Planner, "apply_chunk", broken)
    threads = threading.active_count()
    with pytest.raises(RuntimeError, match="boom in the publisher"):
        run(engine, files)
    assert multiprocessing.active_children() == []
    assert threading.active_count() == threads
    assert count(engine, RECORDS) == 0


# -- files that cannot be read, rows that cannot be used -----------------------------------------


def test_an_unreadable_file_publishes_nothing_even_with_accept_partial(engine, tmp_path):
    good = write_csv(tmp_path / "good.csv", [penalty_row(1), penalty_row(2)])
    junk = tmp_path / "junk.csv"
    junk.write_text("a,b\n1,2\n", encoding="utf-8")
    result = run(engine, [good, junk], accept_partial=True)
    assert not result.published and result.unreadable
    good_report, junk_report = result.as_json()
    assert (good_report["unreadable"], junk_report["unreadable"]) == (False, True)
    assert count(engine, RECORDS) == 0


@pytest.mark.parametrize("content", ["header", "empty", "truncated"])
def test_an_unreadable_file_with_a_given_kind_is_unreadable_with_nothing_accepted(engine, tmp_path, content):
    """With --kind the report had the kind, which was how unreadable files were told apart."""
    if content == "header":  # a credit-mark file published as penalties: columns missing
        path = write_csv(tmp_path / "m.csv", [credit_mark_row(1)])
    elif content == "empty":
        path = tmp_path / "m.csv"
        path.write_bytes(b"")
    else:
        path = tmp_path / "m.xlsx"
        path.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    report = run(engine, path, kind="penalty", accept_partial=True).reports[0]
    assert report.unreadable and report.kind == "penalty"
    assert report.as_dict(False)["accepted"] == 0  # was -1 when the reject named the header row


def test_a_broken_quote_loses_no_row_silently(engine, tmp_path):
    path = write_csv(tmp_path / "p.csv", [penalty_row(i, 违法事实="事实") for i in range(1, 5)])
    text = path.read_text(encoding="utf-8-sig").replace(",烟台市芝罘区测试2", ',"烟台市芝罘区测试2')
    path.write_text(text, encoding="utf-8")
    result = run(engine, path, accept_partial=True)
    report = result.as_json()
    assert report["rows"] == 2 and report["added"] == 1
    [reject] = report["rejected"]
    assert reject["row"] == 3 and "引号未闭合" in reject["reason"] and "第5行" in reject["reason"]
    assert "烟芝市监罚〔2026〕4号" in reject["value"]  # the swallowed rows, in the report


def test_a_duplicate_of_a_rejected_first_row_is_not_published(engine, tmp_path):
    rows = [penalty_row(1, 处罚决定日期="2026-03-32"), penalty_row(1), penalty_row(2)]
    report = run(engine, write_csv(tmp_path / "d.csv", rows), accept_partial=True).as_json()
    assert [(r["row"], r["reason"]) for r in report["rejected"]] == [
        (2, "日期不存在(2026年3月32日)"), (3, "与第2行重复(自然键相同)")]
    assert report["rejected"][1]["column"] == "行政处罚决定书文号"  # the key's column, by its header
    assert report["added"] == 1 and count(engine, RECORDS) == 1


def test_an_excel_error_cell_is_a_rejected_value(engine, tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(penalty_row(1)))
    sheet.append(list(penalty_row(1, **{"罚款金额(元)": "#N/A"}).values()))  # an error cell
    sheet.append(list(penalty_row(2).values()))
    book.save(tmp_path / "p.xlsx")
    report = run(engine, tmp_path / "p.xlsx", accept_partial=True).as_json()
    assert [(r["row"], r["column"], r["value"], r["reason"]) for r in report["rejected"]] == [
        (2, "罚款金额(元)", "#N/A", "单元格为 Excel 错误值 #N/A（公式出错或引用无效）")]
    assert report["added"] == 1


def test_a_control_character_is_a_rejected_value_not_a_failed_publish(engine, tmp_path):
    """PostgreSQL refuses U+0000 in text and jsonb: one such value failed the whole publish."""
    rows = [penalty_row(1, 当事人名称="烟台\x00测试"), penalty_row(2, 违法事实="事实\x1b"), penalty_row(3)]
    path = write_csv(tmp_path / "p.csv", rows)
    result = run(engine, path, accept_partial=True)
    assert result.published
    report = result.as_json()
    assert [(r["row"], r["column"], r["value"]) for r in report["rejected"]] == [
        (2, "当事人名称", "烟台\\u0000测试"), (3, "违法事实", "事实\\u001b")]  # made visible
    assert "U+0000" in report["rejected"][0]["reason"]
    assert report["added"] == 1
    ndjson = write_ndjson(tmp_path / "p.ndjson", [pledge_row(1, entity_name="烟台\x00商场"), pledge_row(2)])
    report = run(engine, ndjson, accept_partial=True).as_json()
    assert [r["row"] for r in report["rejected"]] == [1] and report["added"] == 1


def test_snapshot_with_rejected_rows_says_it_withdrew_nothing(engine, tmp_path):
    run(engine, write_csv(tmp_path / "a.csv", [penalty_row(i) for i in range(1, 4)]))
    rows = [penalty_row(1), penalty_row(2, 处罚决定日期="2099-01-01")]
    result = run(engine, write_csv(tmp_path / "b.csv", rows), mode="snapshot", accept_partial=True)
    report = result.as_json()
    assert result.published and report["withdrawn"] == 0
    assert report["snapshot_withdrawals_skipped"] is True
    assert "快照模式本次未撤回" in report["snapshot_withdrawals_skipped_reason"]
    assert count(engine, RECORDS, RECORDS.c.status == "active") == 3
    clean = run(engine, write_csv(tmp_path / "c.csv", [penalty_row(1)]), mode="snapshot").as_json()
    assert clean["withdrawn"] == 2 and "snapshot_withdrawals_skipped" not in clean


def test_a_snapshot_of_an_older_mark_makes_it_current_again(engine, tmp_path):
    older = write_csv(tmp_path / "m1.csv", [credit_mark_row(1, 分类结果="B", 标注日期="2026-01-01"),
                                            credit_mark_row(2)])
    run(engine, older)
    run(engine, write_csv(tmp_path / "m2.csv", [credit_mark_row(1, 分类结果="C", 标注日期="2026-06-01")]))
    result = run(engine, older, mode="snapshot")
    report = result.as_json()
    assert (report["withdrawn"], report["restored"]) == (1, 1)
    with engine.connect() as conn:
        rows = conn.execute(select(RECORDS.c.grade, RECORDS.c.status, RECORDS.c.entity_id)
                            .order_by(RECORDS.c.entity_id, RECORDS.c.event_date)).all()
        ops = conn.execute(select(EVENTS.c.op, EVENTS.c.reason).where(EVENTS.c.batch_id == result.batch_id)
                           .order_by(EVENTS.c.seq)).all()
    assert [(r.grade, r.status) for r in rows] == [("B", "active"), ("C", "withdrawn"), ("B", "active")]
    assert sorted(tuple(o) for o in ops) == [("add", None), ("withdraw", "snapshot")]
    # the same snapshot again changes nothing
    again = run(engine, older, mode="snapshot").as_json()
    assert (again["withdrawn"], again.get("restored", 0), again["unchanged"]) == (0, 0, 2)


def test_withdrawing_the_newer_mark_makes_the_older_current_again(engine, tmp_path):
    run(engine, write_csv(tmp_path / "m1.csv", [credit_mark_row(1, 分类结果="B", 标注日期="2026-01-01")]))
    newer = credit_mark_row(1, 分类结果="C", 标注日期="2026-06-01")
    run(engine, write_csv(tmp_path / "m2.csv", [newer]))
    report = run(engine, write_csv(tmp_path / "w.csv", [{**newer, "操作": "撤销"}],
                                   header=[*newer, "操作"])).as_json()
    assert (report["withdrawn"], report["restored"]) == (1, 1)
    with engine.connect() as conn:
        rows = conn.execute(select(RECORDS.c.grade, RECORDS.c.status).order_by(RECORDS.c.event_date)).all()
    assert [tuple(r) for r in rows] == [("B", "active"), ("C", "withdrawn")]
