"""`disclosure expire --recompute`: an edited publicity.toml reaches the stored records as
publishing their rows again under it would. The ground truth is a fresh database: the same
files published into it under the new rules must hold the same status, end of publicity, repair
date and content hash for every record. On SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import re
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from portal.cli import main
from publishing import review, users
from publishing.commit import BATCHES, EVENTS, ISSUES, RECORDS
from publishing.db import make_engine
from publishing.expire import expire
from publishing.publish import publish
from publishing.recompute import RULED_KINDS
from publishing.rules import DEFAULT_RULES_FILE, Rules, load_rules
from publishing.settings import get_settings
from tests.conftest import _empty_pg, _worker, migrated_pg_database
from tests.factories import (
    PENALTY_HEADER,
    blacklist_row,
    credit_mark_row,
    penalty_row,
    uscc,
    write_csv,
)
from tests.requests_support import months_ago, publish_cases, submit_request

TODAY = date(2026, 11, 28)
PASSWORD = "correct horse battery staple"


def old_rules() -> Rules:
    """The rules before the edit: no SAMR minimum, 一般 and blacklists 6 months."""
    raw = copy.deepcopy(load_rules(DEFAULT_RULES_FILE).raw)
    raw["penalty"]["domain_minimum"]["domains"] = []
    raw["penalty"]["severity"]["一般"]["publicity_months"] = 6
    raw["blacklist"]["publicity_months"] = 6
    return Rules(raw)


NEW = load_rules(DEFAULT_RULES_FILE)
OLD = old_rules()

# decision number → (severity, domain, decided, penalty kinds, 公示截止日期); what OLD → NEW does
PENALTIES = {
    1: ("轻微", "食品", "2026-06-01", "警告;罚款", ""),  # expired → current again
    2: ("一般", "价格", "2026-03-01", "罚款", ""),  # expired → current again
    3: ("一般", "价格", "2026-08-01", "罚款", ""),  # current, a later end: changed
    4: ("严重", "食品", "2025-01-01", "罚款", ""),  # the same under both
    5: ("轻微", "药品生产", "2026-05-01", "罚款", "2026-10-01"),  # explicit end, past: repair date
    6: ("一般", "价格", "2026-06-10", "罚款;吊销许可证件", ""),  # never repairable; later end
    7: ("一般", "价格", "2025-09-01", "罚款", ""),  # expired under both, a later (past) end
    8: ("轻微", "食品", "2026-06-01", "罚款", "2027-12-31"),  # explicit end kept; repair date
}


def write_files(folder: Path) -> list[Path]:
    penalties = [
        penalty_row(n, 失信程度=sev, 领域=domain, 处罚决定日期=day, 处罚种类=kinds, 公示截止日期=until)
        for n, (sev, domain, day, kinds, until) in PENALTIES.items()
    ]
    blacklists = [
        blacklist_row(21, "2026年第3期", 发布日期="2026-03-01"),  # expired → current again
        blacklist_row(22, "2026年第3期", 发布日期="2026-03-01", 所属区市="福山区"),
        blacklist_row(23, "2026年第7期", 发布日期="2026-07-01"),  # current, a later end
    ]
    return [
        write_csv(folder / "penalty.csv", penalties, header=[*PENALTY_HEADER, "公示截止日期"]),
        write_csv(folder / "blacklist.csv", blacklists),
        write_csv(folder / "marks.csv", [credit_mark_row(31), credit_mark_row(32, 分类结果="C")]),
    ]


def publish_files(engine: Engine, paths: list[Path], rules: Rules) -> None:
    result = publish(paths, engine=engine, today=TODAY, rules=rules, show_progress=False)
    assert result.published, result.as_json()


def states(engine: Engine) -> dict[str, Any]:
    """What must match the ground truth: each record's state and dates, and its content hash
    (a later file with the same row is unchanged), and each blacklist issue's entry count."""
    with engine.connect() as conn:
        records = {r.id: tuple(r[1:]) for r in conn.execute(select(
            RECORDS.c.id, RECORDS.c.status, RECORDS.c.publicity_until,
            RECORDS.c.repairable_from, RECORDS.c.content_hash))}
        issues = dict(conn.execute(select(ISSUES.c.id, ISSUES.c.entry_count)).all())
    return {"records": records, "issues": issues}


def snapshot(engine: Engine) -> dict[str, Any]:
    """Every stored row of the records, the change log and the batches."""
    with engine.connect() as conn:
        return {t.name: sorted(map(tuple, conn.execute(select(t)).all()), key=repr)
                for t in (RECORDS, EVENTS, BATCHES, ISSUES)}


def record_ids(engine: Engine) -> dict[int, str]:
    """Record ids by the number their row was made with (decision number, USCC)."""
    with engine.connect() as conn:
        pairs = conn.execute(select(RECORDS.c.entity_id, RECORDS.c.id)).all()
    by_entity = dict(pairs)
    return {n: by_entity[uscc(n)] for n in (*PENALTIES, 21, 22, 23)}


@pytest.fixture(scope="module")
def fresh_pg_url():
    """A second PostgreSQL database of this worker's, for the ground truth."""
    with migrated_pg_database(f"disclosure_test_{_worker()}_fresh") as url:
        yield url


@pytest.fixture
def fresh(backend, request, tmp_path):
    """An empty database on the test's backend, besides the test's own."""
    if backend == "sqlite":
        path = tmp_path / "fresh.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        engine = make_engine(f"sqlite:///{path}")
    else:
        engine = make_engine(request.getfixturevalue("fresh_pg_url"))
        _empty_pg(engine)
    yield engine
    engine.dispose()


@pytest.mark.parametrize(("before", "after"), [(OLD, NEW), (NEW, OLD)], ids=["longer", "shorter"])
def test_recompute_stores_what_publishing_the_files_under_the_new_rules_stores(
    engine, fresh, tmp_path, before, after
):
    paths = write_files(tmp_path)
    publish_files(fresh, paths, after)
    truth = states(fresh)
    publish_files(engine, paths, before)
    assert states(engine) != truth  # the rules' change matters to these files

    counts = expire(engine, today=TODAY, rules=after, recompute=True)
    assert states(engine) == truth
    # 8 penalties but the one no rule change touches, the 3 blacklist entries
    assert counts["period_changed"] == 10
    returned, ended = (counts["period_returned"], counts["period_expired"])
    assert (returned, ended) == ((4, 0) if after is NEW else (0, 4))
    # The planner agrees: the files published again under the new rules change nothing.
    result = publish(paths, engine=engine, today=TODAY, rules=after, show_progress=False)
    changed = sum(r.counts.get(k, 0) for r in result.reports
                  for k in ("added", "changed", "withdrawn", "expired"))
    assert changed == 0 and states(engine) == truth


def test_the_change_log_announces_what_became_public(engine, tmp_path):
    paths = write_files(tmp_path)
    publish_files(engine, paths, OLD)
    ids = record_ids(engine)
    with engine.connect() as conn:
        seq = conn.execute(select(func.max(EVENTS.c.seq))).scalar_one()
    expire(engine, today=TODAY, rules=NEW, recompute=True)

    def events_since(after: int) -> dict[str, tuple]:
        with engine.connect() as conn:
            rows = conn.execute(select(EVENTS.c.record_id, EVENTS.c.op, EVENTS.c.version,
                                       EVENTS.c.reason, BATCHES.c.mode)
                                .join(BATCHES, BATCHES.c.id == EVENTS.c.batch_id)
                                .where(EVENTS.c.seq > after)).all()
        return {r.record_id: tuple(r[1:]) for r in rows}

    new = events_since(seq)
    added, changed = ("add", 2, None, "recompute"), ("change", 2, None, "recompute")
    assert new == {ids[1]: added, ids[2]: added, ids[21]: added, ids[22]: added,
                   ids[3]: changed, ids[6]: changed, ids[8]: changed, ids[23]: changed}
    # 5 and 7 stay expired with new dates, quietly: no event, no new version
    with engine.connect() as conn:
        quiet = dict(conn.execute(select(RECORDS.c.id, RECORDS.c.version)
                                  .where(RECORDS.c.id.in_([ids[5], ids[7]]))).all())
        seq = conn.execute(select(func.max(EVENTS.c.seq))).scalar_one()
    assert quiet == {ids[5]: 1, ids[7]: 1}
    # back to the shorter periods: those that came back leave again, said as an expiry
    expire(engine, today=TODAY, rules=OLD, recompute=True)
    gone = {k: v for k, v in events_since(seq).items() if v[0] == "expire"}
    assert gone == {ids[n]: ("expire", 3, "expired", "recompute") for n in (1, 2, 21, 22)}
    with engine.connect() as conn:
        reasons = set(conn.execute(select(RECORDS.c.status_reason)
                                   .where(RECORDS.c.id.in_(list(gone)))).scalars())
    assert reasons == {"expired"}


def test_a_longer_period_brings_an_expired_record_back_as_republishing_its_row_does(
    engine, tmp_path
):
    """tests/test_rules.py's case: the row published again under the longer period."""
    row = penalty_row(1, 处罚决定日期="2026-06-01", 失信程度="轻微", 领域="食品")
    shorter = copy.deepcopy(NEW.raw)
    shorter["penalty"]["domain_minimum"]["domains"] = []
    publish_files(engine, [write_csv(tmp_path / "p.csv", [row])], Rules(shorter))
    counts = expire(engine, today=TODAY, rules=NEW, recompute=True)
    assert (counts["period_changed"], counts["period_returned"]) == (1, 1)
    with engine.connect() as conn:
        record = conn.execute(select(RECORDS)).one()
        ops = list(conn.execute(select(EVENTS.c.op).order_by(EVENTS.c.seq)).scalars())
    assert (record.status, record.publicity_until) == ("active", date(2027, 6, 1))
    assert ops == ["add"]  # arrived expired (3 months), published with the longer period


def test_an_explicit_end_of_publicity_wins_over_the_rules(engine, tmp_path):
    publish_files(engine, write_files(tmp_path), OLD)
    ids = record_ids(engine)
    expire(engine, today=TODAY, rules=NEW, recompute=True)
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(RECORDS).where(
            RECORDS.c.id.in_([ids[5], ids[8]])))}
    # the file's 公示截止日期 stays; the repair date follows the new SAMR minimum (12 months)
    assert (rows[ids[5]].status, rows[ids[5]].publicity_until,
            rows[ids[5]].repairable_from) == ("expired", date(2026, 10, 1), date(2027, 5, 2))
    assert (rows[ids[8]].status, rows[ids[8]].publicity_until,
            rows[ids[8]].repairable_from) == ("active", date(2027, 12, 31), date(2027, 6, 2))


def test_a_second_run_and_a_dry_run_write_nothing(engine, tmp_path):
    publish_files(engine, write_files(tmp_path), OLD)
    before = snapshot(engine)
    dry = expire(engine, today=TODAY, rules=NEW, recompute=True, dry_run=True)
    assert snapshot(engine) == before  # not even a batch
    real = expire(engine, today=TODAY, rules=NEW, recompute=True)
    assert dry == real and real["period_changed"] == 10
    done = snapshot(engine)
    again = expire(engine, today=TODAY, rules=NEW, recompute=True)
    assert again["period_changed"] == again["period_expired"] == again["period_returned"] == 0
    after = snapshot(engine)
    assert (after["records"], after["changes"]) == (done["records"], done["changes"])


def test_withdrawn_records_stay_withdrawn_and_a_correction_keeps_its_mark(engine, tmp_path):
    """Records withdrawn by a file or on a credit repair keep their state, dates and version;
    one corrected on an upheld objection leaves and comes back as its expiry and a file would,
    still marked corrected."""
    cases = publish_cases(engine, tmp_path)  # decided 1 to 6 months before the real today
    approver, _ = users.add_user(engine, "wang", "approver", PASSWORD)
    repair = submit_request(engine, "repair", cases.repairable, cases.repairable_uscc)
    review.act(engine, repair, approver, "approve", "准予信用修复。", sync_search=False)
    withdraw = penalty_row(3, 处罚决定日期=_decided(engine, cases.never), 领域="广告",
                           处罚种类="罚款;吊销营业执照", 操作="撤销")
    publish([write_csv(tmp_path / "w.csv", [withdraw])], engine=engine, show_progress=False)
    objection = submit_request(engine, "objection", cases.other, cases.other_uscc)
    review.act(engine, objection, approver, "approve", "异议成立，更正罚款金额。",
               outcome="correct", corrections={"fine_yuan": "3000"}, sync_search=False)
    withdrawn = [cases.repairable, cases.never]
    held = _rows(engine, withdrawn)
    assert {r["status_reason"] for r in held.values()} == {"repair", "file"}

    brief = copy.deepcopy(NEW.raw)  # every case's publicity has ended
    for severity in brief["penalty"]["severity"].values():
        severity["publicity_months"] = 0
    brief["penalty"]["domain_minimum"]["domains"] = []
    counts = expire(engine, rules=Rules(brief), recompute=True)
    assert counts["period_expired"] == 3  # the food case, the recent price case, the corrected one
    assert _rows(engine, withdrawn) == held
    corrected = _rows(engine, [cases.other])[cases.other]
    assert (corrected["status"], corrected["status_reason"]) == ("expired", "corrected")

    counts = expire(engine, rules=NEW, recompute=True)
    assert counts["period_returned"] == 3
    assert _rows(engine, withdrawn) == held
    corrected = _rows(engine, [cases.other])[cases.other]
    assert (corrected["status"], corrected["status_reason"]) == ("active", "corrected")
    assert corrected["data"]["fine_yuan"] == "3000.00"
    with engine.connect() as conn:
        ops = conn.execute(select(EVENTS.c.record_id).where(
            EVENTS.c.record_id.in_(withdrawn), EVENTS.c.batch_id.in_(
                select(BATCHES.c.id).where(BATCHES.c.mode == "recompute")))).all()
    assert ops == []


@pytest.mark.parametrize("how", ["file", "snapshot"])
def test_a_record_withdrawn_after_its_publicity_ended_stays_withdrawn(engine, tmp_path, how):
    """A file's 撤销 (or a snapshot no longer holding it) of an expired record counted it
    unchanged and left it expired: a longer period then published it again."""
    shorter = copy.deepcopy(NEW.raw)
    shorter["penalty"]["domain_minimum"]["domains"] = []
    ended = penalty_row(1, 处罚决定日期="2026-06-01", 失信程度="轻微", 领域="食品")  # 3 months
    kept = penalty_row(2, 处罚决定日期="2026-10-01")
    publish(
        [write_csv(tmp_path / "p.csv", [ended, kept])], engine=engine, today=TODAY,
        rules=Rules(shorter), show_progress=False,
    )
    if how == "file":
        gone = write_csv(tmp_path / "w.csv", [{**ended, "操作": "撤销"}], header=[*ended, "操作"])
        result = publish([gone], engine=engine, today=TODAY, rules=Rules(shorter),
                         show_progress=False)
    else:
        result = publish([write_csv(tmp_path / "s.csv", [kept])], engine=engine, today=TODAY,
                         rules=Rules(shorter), mode="snapshot", show_progress=False)
    assert result.published
    report = result.as_json()
    # nothing public changed: no event, not counted as 撤回
    assert (report["withdrawn"], report.get("withdrawn_quietly")) == (0, 1)
    with engine.connect() as conn:
        status = dict(conn.execute(select(RECORDS.c.entity_id, RECORDS.c.status)).all())
    assert status == {uscc(1): "withdrawn", uscc(2): "active"}
    counts = expire(engine, today=TODAY, rules=NEW, recompute=True)  # 轻微 食品: 12 months now
    assert counts["period_returned"] == 0
    with engine.connect() as conn:
        assert conn.execute(select(RECORDS.c.status)
                            .where(RECORDS.c.entity_id == uscc(1))).scalar_one() == "withdrawn"
        record = conn.execute(select(RECORDS.c.id).where(RECORDS.c.entity_id == uscc(1))).scalar_one()
        # never announced: it arrived expired, left quietly and stays out
        assert conn.execute(select(EVENTS.c.op).where(EVENTS.c.record_id == record)).all() == []


def _decided(engine: Engine, record_id: str) -> str:
    with engine.connect() as conn:
        return conn.execute(select(RECORDS.c.event_date)
                            .where(RECORDS.c.id == record_id)).scalar_one().isoformat()


def _rows(engine: Engine, record_ids: list[str]) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(RECORDS).where(RECORDS.c.id.in_(record_ids))).mappings()
        return {r["id"]: dict(r) for r in rows}


def test_the_rules_compute_no_period_for_the_kinds_recompute_leaves_alone():
    """recompute reads only RULED_KINDS: a period the rules gave another kind would be missed."""
    fields = {"severity": "严重", "domain": "食品", "penalty_kinds": ["罚款"]}
    for kind in ("credit_mark", "return_pledge"):
        assert kind not in RULED_KINDS
        assert NEW.publicity_until(kind, TODAY, fields) is None
        assert NEW.repairable_from(kind, TODAY, fields) is None


@pytest.fixture
def rules_file(tmp_path, monkeypatch):
    """DISCLOSURE_RULES_FILE: the bundled rules without the SAMR minimum (as before the edit)."""
    source = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
    without, found = re.subn(r"^domains = \[.*?\]", "domains = []", source, flags=re.M | re.S)
    assert found == 1
    path = tmp_path / "publicity.toml"
    path.write_text(without, encoding="utf-8")
    monkeypatch.setenv("DISCLOSURE_RULES_FILE", str(path))
    get_settings.cache_clear()
    load_rules.cache_clear()
    yield path
    load_rules.cache_clear()


def test_the_command_line_reports_a_dry_run_then_applies_it(engine, tmp_path, rules_file, capsys):
    row = penalty_row(1, 处罚决定日期=months_ago(6), 失信程度="轻微", 领域="食品")
    path = write_csv(tmp_path / "p.csv", [row])
    assert main(["publish", str(path)]) == 0  # under the file's rules: 3 months, expired
    assert _statuses(engine) == ["expired"]
    rules_file.write_text(DEFAULT_RULES_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    load_rules.cache_clear()  # the bureau adds the SAMR minimum back
    capsys.readouterr()
    assert main(["expire", "--recompute", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "公示期变更 1 条" in out and "恢复公示 1 条" in out and "未写入任何数据" in out
    assert "被较新标注取代而撤下的旧标注 0 条" in out
    assert _statuses(engine) == ["expired"]
    assert main(["expire", "--recompute"]) == 0
    assert "恢复公示 1 条" in capsys.readouterr().out
    assert _statuses(engine) == ["active"]


def _statuses(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(RECORDS.c.status)).scalars())
