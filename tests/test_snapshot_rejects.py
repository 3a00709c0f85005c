"""Snapshot mode and rejected rows, and how a snapshot's withdrawals are counted.

A rejected row may be a record the bureau still publishes, so a snapshot with one withdraws
nothing. A 简易程序 case is never published, by rule: it cannot be such a record, and a real
export holds them every month; it does not stop the withdrawals. `withdrawn` counts what the
public sees go (one change event each); a superseded or statistics-only mark leaves quietly,
counted as `withdrawn_quietly`, by a snapshot and by a 撤销 row alike.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from publishing.commit import EVENTS, RECORDS
from publishing.publish import publish
from publishing.rules import DEFAULT_RULES_FILE, Rules, load_rules
from tests.factories import credit_mark_row, penalty_row, write_csv

TODAY = date(2026, 11, 27)
SIMPLE = {"程序类型": "简易"}


def run(engine, path: Path, **kw):
    kw.setdefault("today", TODAY)
    return publish([path], engine=engine, show_progress=False, **kw)


def statuses(engine) -> dict[str, str]:
    """Penalty decision numbers (or mark grades) -> status."""
    with engine.connect() as conn:
        rows = conn.execute(select(RECORDS.c.data, RECORDS.c.status)).all()
    out = {}
    for data, status in rows:
        data = data if isinstance(data, dict) else json.loads(data)
        out[data.get("decision_no") or data.get("grade")] = status
    return out


def events(engine, batch_id: int | None) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(
            select(EVENTS.c.op, EVENTS.c.reason).where(EVENTS.c.batch_id == batch_id)))


def decision(n: int) -> str:
    return penalty_row(n)["行政处罚决定书文号"]


def published_penalties(engine, tmp_path: Path, n: int = 5) -> None:
    run(engine, write_csv(tmp_path / "all.csv", [penalty_row(i) for i in range(1, n + 1)]))


# -- 1. a 简易程序 row does not stop the withdrawals ---------------------------------------
def test_a_simple_case_does_not_stop_the_withdrawals(engine, tmp_path):
    published_penalties(engine, tmp_path)
    rows = [penalty_row(1), penalty_row(2), penalty_row(3), penalty_row(9, **SIMPLE)]
    result = run(engine, write_csv(tmp_path / "snap.csv", rows), mode="snapshot",
                 accept_partial=True)
    report = result.as_json()
    assert result.published and result.snapshot_skipped is None
    assert "snapshot_withdrawals_skipped" not in report
    # the report still lists the reject
    assert [(r["row"], r["column"], r["reason"]) for r in report["rejected"]] == [
        (5, "程序类型", "简易程序案件不予公示")]
    assert (report["withdrawn"], report["unchanged"]) == (2, 3)
    assert result.events == 2
    assert events(engine, result.batch_id) == [("withdraw", "snapshot")] * 2
    assert statuses(engine) == {
        decision(1): "active", decision(2): "active", decision(3): "active",
        decision(4): "withdrawn", decision(5): "withdrawn"}


def test_a_published_record_whose_row_is_now_simple_is_withdrawn(engine, tmp_path):
    """The file no longer holds a publishable row for it: the snapshot withdraws it."""
    published_penalties(engine, tmp_path)
    rows = [*(penalty_row(i) for i in range(1, 5)), penalty_row(5, **SIMPLE)]
    result = run(engine, write_csv(tmp_path / "snap.csv", rows), mode="snapshot",
                 accept_partial=True)
    report = result.as_json()
    assert result.published and (report["withdrawn"], report["unchanged"]) == (1, 4)
    assert statuses(engine)[decision(5)] == "withdrawn"
    assert result.events == 1


def test_a_simple_case_with_another_problem_does_not_stop_them_either(engine, tmp_path):
    """A 简易 row is never published, whatever else is wrong with it."""
    published_penalties(engine, tmp_path)
    rows = [*(penalty_row(i) for i in range(1, 5)),
            penalty_row(9, 处罚决定日期="2099-01-01", **SIMPLE)]
    result = run(engine, write_csv(tmp_path / "snap.csv", rows), mode="snapshot",
                 accept_partial=True)
    report = result.as_json()
    assert len(report["rejected"]) == 2 and report["withdrawn"] == 1
    assert result.snapshot_skipped is None


def test_a_malformed_row_still_stops_them(engine, tmp_path):
    """A wrong date may hide a record still published; a 简易 row beside it changes nothing."""
    published_penalties(engine, tmp_path)
    rows = [penalty_row(1), penalty_row(2), penalty_row(3, 处罚决定日期="2099-01-01"),
            penalty_row(9, **SIMPLE)]
    result = run(engine, write_csv(tmp_path / "snap.csv", rows), mode="snapshot",
                 accept_partial=True)
    report = result.as_json()
    assert result.published and report["withdrawn"] == 0
    assert report["snapshot_withdrawals_skipped"] is True
    assert "简易程序" in report["snapshot_withdrawals_skipped_reason"]  # need not be deleted
    assert set(statuses(engine).values()) == {"active"}


def test_a_withdrawal_of_a_record_never_published_does_not_stop_them(engine, tmp_path):
    """Its reject says no published record has that key: none can hide behind it."""
    published_penalties(engine, tmp_path)
    withdraw = penalty_row(9, 操作="撤销")
    rows = [penalty_row(1), penalty_row(2), penalty_row(3), withdraw]
    result = run(engine, write_csv(tmp_path / "snap.csv", rows, header=[*withdraw]),
                 mode="snapshot", accept_partial=True)
    report = result.as_json()
    assert [r["reason"] for r in report["rejected"]] == ["要撤销的记录未曾公示"]
    assert result.published and report["withdrawn"] == 2
    assert "snapshot_withdrawals_skipped" not in report
    assert statuses(engine)[decision(4)] == "withdrawn"


def test_without_accept_partial_nothing_is_published(engine, tmp_path):
    published_penalties(engine, tmp_path)
    rows = [penalty_row(1), penalty_row(9, **SIMPLE)]
    result = run(engine, write_csv(tmp_path / "snap.csv", rows), mode="snapshot")
    assert not result.published and not result.publishable and not result.refused
    assert result.as_json()["withdrawn"] == 0
    assert set(statuses(engine).values()) == {"active"}


def cli(database_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DISCLOSURE_DATABASE_URL": database_url,
           "DISCLOSURE_DATA_DIR": str(tmp_path / "var")}
    return subprocess.run([sys.executable, "-m", "portal.cli", "publish", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_cli_dry_run_withdraws_and_exits_as_before(engine, database_url, tmp_path):
    """The reviewer's run: a full export plus one 简易 row, dry run with --accept-partial."""
    rows = [penalty_row(i) for i in range(1, 5)]
    run(engine, write_csv(tmp_path / "all.csv", [*rows, penalty_row(5)]))
    snap = str(write_csv(tmp_path / "snap.csv", [*rows, penalty_row(9, **SIMPLE)]))
    dry = cli(database_url, tmp_path, "--mode", "snapshot", "--accept-partial", "--dry-run", snap)
    assert dry.returncode == 0, dry.stderr
    assert "撤回 1" in dry.stdout and "快照模式本次未撤回" not in dry.stderr
    assert "简易程序案件不予公示" in dry.stderr  # the reject is still listed
    strict = cli(database_url, tmp_path, "--mode", "snapshot", snap)
    assert strict.returncode == 1, strict.stderr  # rejected rows: nothing published, as before
    assert set(statuses(engine).values()) == {"active"}


# -- 2. counts agree with the change events -----------------------------------------------
def superseded_mark(engine, tmp_path: Path) -> dict[str, str]:
    """Entity 1: mark B (2026-01-01) superseded by C (2026-06-01); entity 2: mark B. Returns
    the newer mark's row."""
    run(engine, write_csv(tmp_path / "m1.csv", [credit_mark_row(1, 标注日期="2026-01-01"),
                                                credit_mark_row(2, 分类结果="D")]))
    newer = credit_mark_row(1, 分类结果="C", 标注日期="2026-06-01")
    run(engine, write_csv(tmp_path / "m2.csv", [newer]))
    assert statuses(engine) == {"B": "superseded", "C": "active", "D": "active"}
    return newer


def test_a_snapshot_withdrawing_a_superseded_mark_counts_it_quietly(engine, tmp_path):
    newer = superseded_mark(engine, tmp_path)
    # a full export: the current marks only (the superseded one is gone from it)
    snap = write_csv(tmp_path / "snap.csv", [newer, credit_mark_row(2, 分类结果="D")])
    result = run(engine, snap, mode="snapshot")
    report = result.as_json()
    assert (report["withdrawn"], report["withdrawn_quietly"], report["unchanged"]) == (0, 1, 2)
    assert result.events == report["withdrawn"] == 0
    assert statuses(engine)["B"] == "withdrawn"


def test_counts_equal_the_events_when_a_snapshot_withdraws_both(engine, tmp_path):
    """The reviewer's case: 撤回 said 9, the events 8. One public mark and one superseded one."""
    superseded_mark(engine, tmp_path)
    result = run(engine, write_csv(tmp_path / "snap.csv", [credit_mark_row(2, 分类结果="D")]),
                 mode="snapshot")
    report = result.as_json()
    assert (report["withdrawn"], report["withdrawn_quietly"]) == (1, 1)
    assert result.events == report["withdrawn"]
    assert events(engine, result.batch_id) == [("withdraw", "snapshot")]
    assert statuses(engine) == {"B": "withdrawn", "C": "withdrawn", "D": "active"}


def test_a_withdrawal_row_of_a_superseded_mark_is_counted_the_same(engine, tmp_path):
    superseded_mark(engine, tmp_path)
    older = credit_mark_row(1, 标注日期="2026-01-01", 操作="撤销")
    result = run(engine, write_csv(tmp_path / "w.csv", [older], header=[*older]))
    report = result.as_json()
    assert (report["withdrawn"], report["withdrawn_quietly"]) == (0, 1)
    assert result.events == 0
    assert statuses(engine)["B"] == "withdrawn"


def statistics_only() -> Rules:
    raw = copy.deepcopy(load_rules(DEFAULT_RULES_FILE).raw)
    raw["credit_mark"]["schemes"]["信用风险分类"]["public"] = False
    return Rules(raw)


def test_a_statistics_only_mark_is_withdrawn_quietly(engine, tmp_path):
    rules = statistics_only()
    run(engine, write_csv(tmp_path / "m.csv", [credit_mark_row(1), credit_mark_row(2, 分类结果="D")]),
        rules=rules)
    assert statuses(engine) == {"B": "aggregate", "D": "aggregate"}
    result = run(engine, write_csv(tmp_path / "snap.csv", [credit_mark_row(1)]), mode="snapshot",
                 rules=rules)
    report = result.as_json()
    assert (report["withdrawn"], report["withdrawn_quietly"], result.events) == (0, 1, 0)
    row = credit_mark_row(1, 操作="撤销")
    result = run(engine, write_csv(tmp_path / "w.csv", [row], header=[*row]), rules=rules)
    report = result.as_json()
    assert (report["withdrawn"], report["withdrawn_quietly"], result.events) == (0, 1, 0)
    assert statuses(engine) == {"B": "withdrawn", "D": "withdrawn"}


def test_the_cli_labels_the_quiet_withdrawals(engine, database_url, tmp_path):
    superseded_mark(engine, tmp_path)
    snap = str(write_csv(tmp_path / "snap.csv", [credit_mark_row(2, 分类结果="D")]))
    out = cli(database_url, tmp_path, "--mode", "snapshot", snap)
    assert out.returncode == 0, out.stderr
    assert "撤回 1" in out.stdout and "撤回（未公示的记录） 1" in out.stdout
    assert "变更事件 1 条" in out.stdout


def test_counts_add_up(engine, tmp_path):
    """Nothing lost between the keys: every published record a snapshot drops is counted once."""
    superseded_mark(engine, tmp_path)
    result = run(engine, write_csv(tmp_path / "snap.csv", [credit_mark_row(2, 分类结果="D")]),
                 mode="snapshot")
    with engine.connect() as conn:
        gone = conn.execute(select(func.count()).select_from(RECORDS).where(
            RECORDS.c.status == "withdrawn", RECORDS.c.batch_id == result.batch_id)).scalar_one()
    report = result.as_json()
    assert report["withdrawn"] + report["withdrawn_quietly"] == gone == 2
