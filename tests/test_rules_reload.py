"""The publicity rules as data that changes under running processes: load_rules follows the file
(a portal computes with the rules the worker recomputed the stored records under, and a broken
edit leaves it on the last good rules), read_rules refuses a value the code cannot use, naming
the file, the key and the value, and so do the worker's nightly expiry (recording nothing) and
the command line (one line, exit 2). Database tests on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import os
import time
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from portal.cli import main
from publishing import review, users, worker
from publishing.commit import RECORDS
from publishing.expire import recomputed_rules
from publishing.publish import publish
from publishing.rules import DEFAULT_RULES_FILE, RulesError, add_months, load_rules, read_rules
from publishing.search.embedded import EmbeddedSearch
from publishing.settings import get_settings
from tests.factories import blacklist_row, penalty_row, uscc, write_csv
from tests.requests_support import months_ago, submit_request

SOURCE = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
GENERAL = '[penalty.severity."一般"]\npublicity_months = 12\n'  # rules A: 一般 12 months
BLACKLIST = "[blacklist]\npublicity_months = 12\n"
HOUR_NS = 3600 * 10**9


def rules_text(general: str = "12") -> str:
    assert GENERAL in SOURCE
    return SOURCE.replace(GENERAL, GENERAL.replace("12", general))


def general_months(rules) -> int:
    return rules.raw["penalty"]["severity"]["一般"]["publicity_months"]


def write(path: Path, text: str, *, age_ns: int | None = None) -> None:
    """Write the file in place; with age_ns, stamp it that long ago (an edit made well before
    the next read, as a bureau's is)."""
    path.write_text(text, encoding="utf-8")
    if age_ns is not None:
        stamp = time.time_ns() - age_ns
        os.utime(path, ns=(stamp, stamp))


@pytest.fixture
def rules_file(tmp_path, monkeypatch) -> Path:
    """DISCLOSURE_RULES_FILE: the bundled rules (rules A)."""
    path = tmp_path / "publicity.toml"
    write(path, rules_text())
    monkeypatch.setenv("DISCLOSURE_RULES_FILE", str(path))
    get_settings.cache_clear()
    load_rules.cache_clear()
    yield path
    load_rules.cache_clear()
    get_settings.cache_clear()


def test_the_shipped_rules_are_valid():
    assert general_months(read_rules(DEFAULT_RULES_FILE)) == 12


# -- load_rules follows the file ------------------------------------------------------------------


def test_an_edited_file_is_read_again_without_cache_clear(rules_file):
    write(rules_file, rules_text(), age_ns=2 * HOUR_NS)
    first = load_rules()
    assert general_months(first) == 12
    assert load_rules() is first and load_rules(rules_file) is first  # one file, one cache entry

    # edited in place to the same size: the modification time tells
    write(rules_file, rules_text("24"), age_ns=HOUR_NS)
    assert general_months(load_rules()) == 24

    # replaced by a rename (as editors save), same size and time: the inode tells
    stamp = rules_file.stat().st_mtime_ns
    new = rules_file.with_suffix(".new")
    write(new, rules_text("36"))
    os.utime(new, ns=(stamp, stamp))
    os.replace(new, rules_file)
    assert general_months(load_rules()) == 36

    # edited just now: read again whatever the stamp says
    write(rules_file, rules_text("48"))
    assert general_months(load_rules()) == 48


def test_an_unchanged_file_is_not_read_again(rules_file):
    write(rules_file, rules_text(), age_ns=HOUR_NS)
    stat = rules_file.stat()
    first = load_rules()
    # other content under the very same stamp (inode, time, size): the cached rules stand, so
    # a call costs a stat, not a parse
    write(rules_file, rules_text("24"))
    os.utime(rules_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert rules_file.stat().st_ino == stat.st_ino and rules_file.stat().st_size == stat.st_size
    assert load_rules() is first and general_months(first) == 12


def test_a_file_read_just_after_it_was_saved_is_read_again(rules_file):
    """Two saves within one tick of the file system's clock leave the same stamp: a read that
    soon after a save does not stand for the file until the file is older."""
    write(rules_file, rules_text())
    stat = rules_file.stat()
    assert general_months(load_rules()) == 12
    write(rules_file, rules_text("24"))  # saved again within the same tick
    os.utime(rules_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert general_months(load_rules()) == 24


def test_a_broken_edit_keeps_the_last_good_rules(rules_file, caplog):
    write(rules_file, rules_text(), age_ns=2 * HOUR_NS)
    good = load_rules()
    caplog.set_level(logging.ERROR, logger="publishing.rules")

    # a half-saved edit: an invalid value
    write(rules_file, SOURCE.replace(BLACKLIST, '[blacklist]\npublicity_months = "12个月"\n'),
          age_ns=HOUR_NS)
    for _ in range(3):
        assert load_rules() is good
    with pytest.raises(RulesError) as err:
        read_rules()
    assert "blacklist.publicity_months" in str(err.value) and "'12个月'" in str(err.value)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # once per change, not per call
    assert "blacklist.publicity_months" in errors[0].getMessage()

    # another broken edit, not TOML at all (just saved: read on every call meanwhile)
    write(rules_file, SOURCE[: SOURCE.index(BLACKLIST) + 16])
    for _ in range(3):
        assert load_rules() is good
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 2
    with pytest.raises(RulesError, match="TOML"):
        read_rules()

    # the file removed (a rename half done)
    rules_file.unlink()
    assert load_rules() is good
    with pytest.raises(RulesError, match="无法读取"):
        read_rules()

    # fixed: the new rules
    write(rules_file, rules_text("24"))
    assert general_months(load_rules()) == 24
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 3


def test_with_no_good_rules_yet_a_broken_file_raises(rules_file):
    write(rules_file, rules_text("-1"))
    for _ in range(2):
        with pytest.raises(RulesError, match=r'penalty\.severity\."一般"\.publicity_months'):
            load_rules()


# -- read_rules refuses what the code cannot use --------------------------------------------------

INVALID = [
    # (replaced, replacement, key path in the message, value in the message)
    (BLACKLIST, '[blacklist]\npublicity_months = "12个月"\n', "blacklist.publicity_months",
     "'12个月'"),
    (BLACKLIST, "[blacklist]\npublicity_months = -1\n", "blacklist.publicity_months", "-1"),
    (BLACKLIST, "[blacklist]\npublicity_months = 12.5\n", "blacklist.publicity_months", "12.5"),
    (BLACKLIST, "[blacklist]\npublicity_months = 99999\n", "blacklist.publicity_months", "99999"),
    (BLACKLIST, "[blacklist]\n", "缺少 blacklist.publicity_months", None),
    (GENERAL, '[penalty.severity."一般"]\npublicity_months = true\n',
     'penalty.severity."一般".publicity_months', "true"),
    ("repairable_after_months = 3\n", 'repairable_after_months = "3"\n',
     'penalty.severity."一般".repairable_after_months', "'3'"),
    ('default_severity = "一般"', 'default_severity = "中等"', "penalty.default_severity",
     "'中等'"),
    ("[penalty.domain_minimum]\nrepairable_after_months = 12",
     "[penalty.domain_minimum]\nrepairable_after_months = false",
     "penalty.domain_minimum.repairable_after_months", "false"),
    # (the bundled list, over several lines, is left under a key the rules do not read)
    ("domains = [", 'domains = "食品"\nbundled = [',
     "penalty.domain_minimum.domains", "'食品'"),
    ("domains = [", 'domains = ["食品", ""]\nbundled = [',
     "penalty.domain_minimum.domains", "['食品', '']"),
    ('penalty_kinds = ["吊销"', 'penalty_kinds = [1, "吊销"',
     "penalty.never_repairable.penalty_kinds", "[1, "),
    ('[credit_mark.schemes."信用风险分类"]\npublic = true',
     '[credit_mark.schemes."信用风险分类"]\npublic = "false"',
     'credit_mark.schemes."信用风险分类".public', "'false'"),
    ('[credit_mark.schemes."经营异常名录"]\npublic = true\nlist = true',
     '[credit_mark.schemes."经营异常名录"]\npublic = true\nlist = 1',
     'credit_mark.schemes."经营异常名录".list', "1"),
]


@pytest.mark.parametrize(("old", "new", "key", "value"), INVALID,
                         ids=[f"{i}-{case[2]}" for i, case in enumerate(INVALID)])
def test_invalid_values_are_refused_naming_the_key(tmp_path, old, new, key, value):
    assert old in SOURCE
    path = tmp_path / "publicity.toml"
    write(path, SOURCE.replace(old, new, 1))
    with pytest.raises(RulesError) as err:
        read_rules(path)
    message = str(err.value)
    assert message.startswith(f"公示规则文件 {path}：") and key in message
    assert value is None or f"现为 {value}" in message
    assert isinstance(err.value, ValueError)


# -- the portal, the worker and the command line --------------------------------------------------


def record(engine: Engine) -> tuple[str, date]:
    with engine.connect() as conn:
        row = conn.execute(select(RECORDS.c.status, RECORDS.c.publicity_until)).one()
    return row.status, row.publicity_until


def test_a_correction_in_a_long_running_portal_keeps_the_recomputed_period(
    engine, rules_file, tmp_path
):
    """The reviewer's case: the portal read rules A, the worker recomputed under the edited
    rules B, then the back office upheld an objection with a correction. The corrected record
    must have B's period: the next night's fingerprint matches and would never repair it."""
    EmbeddedSearch(engine).rebuild([])
    decided = months_ago(6)
    rows = [penalty_row(1, 处罚决定日期=decided, 领域="价格")]
    assert publish([write_csv(tmp_path / "p.csv", rows)], engine=engine,
                   show_progress=False).published
    assert general_months(load_rules()) == 12  # the portal's rules, read once
    assert worker.job_expire(engine)["recomputed"] is True  # records A's fingerprint
    a_period = add_months(date.fromisoformat(decided), 12)
    assert record(engine) == ("active", a_period)

    write(rules_file, rules_text("24"), age_ns=HOUR_NS)  # the bureau edits: 一般 24 months
    night = worker.job_expire(engine)
    assert night["recomputed"] is True and night["period_changed"] == 1
    b_period = add_months(date.fromisoformat(decided), 24)
    assert record(engine) == ("active", b_period)

    approver, _ = users.add_user(engine, "wang", "approver", "correct horse battery staple")
    with engine.connect() as conn:
        rid = conn.execute(select(RECORDS.c.id)).scalar_one()
    tracking = submit_request(engine, "objection", rid, uscc(1))
    review.act(engine, tracking, approver, "approve", "异议成立，更正领域。", outcome="correct",
               corrections={"领域": "广告"}, sync_search=False)
    assert record(engine) == ("active", b_period)
    assert worker.job_expire(engine)["recomputed"] is False
    assert record(engine) == ("active", b_period)


def test_the_nightly_expiry_fails_on_an_invalid_file_and_records_nothing(
    engine, rules_file, tmp_path
):
    EmbeddedSearch(engine).rebuild([])
    rows = [penalty_row(1, 处罚决定日期=months_ago(6))]
    assert publish([write_csv(tmp_path / "p.csv", rows)], engine=engine,
                   show_progress=False).published
    before = record(engine)
    write(rules_file, SOURCE.replace(BLACKLIST, '[blacklist]\npublicity_months = "12个月"\n'))
    with pytest.raises(RulesError, match="blacklist.publicity_months"):
        worker.job_expire(engine)
    with engine.connect() as conn:
        assert recomputed_rules(conn) is None
    assert record(engine) == before


def test_the_command_line_says_one_line_and_exits_2(engine, rules_file, tmp_path, capsys):
    write(rules_file, SOURCE.replace(BLACKLIST, '[blacklist]\npublicity_months = "12个月"\n'))
    for argv in (["expire"], ["expire", "--recompute", "--dry-run"],
                 ["publish", str(write_csv(tmp_path / "b.csv", [blacklist_row(1)]))]):
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith(f"错误：公示规则文件 {rules_file}：blacklist.publicity_months")
    with engine.connect() as conn:
        assert conn.execute(select(RECORDS.c.id)).first() is None  # nothing was published
