"""A snapshot that would withdraw most of a kind (a truncated export: one district only, a file
cut off), or (nearly) all of one district's records of a kind (an export that lacks a district),
publishes nothing and exits 5, unless --allow-mass-withdrawal confirms it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.cli import build_parser
from publishing.commit import BATCHES, EVENTS, RECORDS
from publishing.publish import (
    DISTRICT_WITHDRAWAL_PERCENT,
    MASS_WITHDRAWAL_MIN,
    MASS_WITHDRAWAL_PERCENT,
    DistrictWithdrawal,
    MassWithdrawal,
    is_district_withdrawal,
    is_mass_withdrawal,
    publish,
)
from tests.factories import penalty_row, pledge_row, write_csv, write_ndjson

TODAY = date(2026, 11, 27)
PUBLISHED = 40  # penalties published before each snapshot
# Spread over four districts, so that the share tests withdraw at most 9 of any district's 10.
SPREAD = ("芝罘区", "莱山区", "福山区", "牟平区")


def penalty(n: int, **over: str) -> dict[str, str]:
    return penalty_row(n, **{"所属区市": SPREAD[n % len(SPREAD)], **over})


def run(engine, paths, **kw):
    kw.setdefault("today", TODAY)
    return publish(paths if isinstance(paths, list) else [paths], engine=engine,
                   show_progress=False, **kw)


def cli(engine_url: str, *args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DISCLOSURE_DATABASE_URL": engine_url,
           "DISCLOSURE_DATA_DIR": str(tmp_path / "var")}
    return subprocess.run([sys.executable, "-m", "portal.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def state(engine) -> tuple[int, int, int]:
    """Active records, change events, batches."""
    with engine.connect() as conn:
        def count(table, *where):
            return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()

        return count(RECORDS, RECORDS.c.status == "active"), count(EVENTS), count(BATCHES)


def snapshot_of(tmp_path: Path, kept: int, name: str = "snap.csv") -> Path:
    """A snapshot file holding the first `kept` of the published penalties."""
    return write_csv(tmp_path / name, [penalty(i) for i in range(1, kept + 1)])


@pytest.fixture
def published(engine, tmp_path):
    run(engine, write_csv(tmp_path / "all.csv", [penalty(i) for i in range(1, PUBLISHED + 1)]))
    assert state(engine) == (PUBLISHED, PUBLISHED, 1)


def test_the_rule():
    assert (MASS_WITHDRAWAL_PERCENT, MASS_WITHDRAWAL_MIN) == (25, 10)
    assert not is_mass_withdrawal(10, 40)  # exactly 25 %: not more than it
    assert is_mass_withdrawal(11, 40)
    assert not is_mass_withdrawal(9, 10)  # 90 %, but fewer than 10 records
    assert is_mass_withdrawal(10, 10)


def test_a_mass_withdrawal_is_refused_and_changes_nothing(engine, tmp_path, published):
    result = run(engine, snapshot_of(tmp_path, 4), mode="snapshot")
    assert (result.published, result.publishable, result.refused) == (False, False, True)
    assert result.batch_id is None and result.events == 0
    assert result.mass_withdrawals == [MassWithdrawal("penalty", 36, PUBLISHED, allowed=False)]
    report = result.as_json()
    assert report["withdrawn"] == 0 and report["published"] is False
    mass = report["mass_withdrawal"]
    assert (mass["withdrawn"], mass["published"], mass["refused"]) == (36, PUBLISHED, True)
    assert "行政处罚（penalty）已公示记录 36 条" in mass["reason"] and "40 条" in mass["reason"]
    assert "--allow-mass-withdrawal" in mass["reason"]
    assert state(engine) == (PUBLISHED, PUBLISHED, 1)  # still active, no event, no new batch


def test_one_refused_kind_publishes_nothing_of_the_other_files(engine, tmp_path, published):
    pledges = write_ndjson(tmp_path / "p.ndjson", [pledge_row(1), pledge_row(2)])
    result = run(engine, [snapshot_of(tmp_path, 4), pledges], mode="snapshot")
    assert not result.published and result.refused
    assert state(engine) == (PUBLISHED, PUBLISHED, 1)


def test_allowed_it_withdraws_as_before(engine, tmp_path, published):
    result = run(engine, snapshot_of(tmp_path, 4), mode="snapshot", allow_mass_withdrawal=True)
    assert result.published and not result.refused
    report = result.as_json()
    assert (report["withdrawn"], report["unchanged"]) == (36, 4)
    assert report["mass_withdrawal"]["refused"] is False
    assert "已确认" in report["mass_withdrawal"]["reason"]
    assert state(engine) == (4, PUBLISHED + 36, 2)


@pytest.mark.parametrize(("kept", "refused"), [(30, False), (29, True)])
def test_the_threshold_share(engine, tmp_path, published, kept, refused):
    """10 of 40 is 25 %, withdrawn as before; 11 of 40 is more."""
    result = run(engine, snapshot_of(tmp_path, kept), mode="snapshot")
    assert result.refused is refused and result.published is not refused
    if not refused:
        assert result.as_json()["withdrawn"] == 10 and "mass_withdrawal" not in result.as_json()
    assert state(engine)[0] == (PUBLISHED if refused else kept)


def test_fewer_than_the_minimum_are_withdrawn_as_before(engine, tmp_path):
    run(engine, write_csv(tmp_path / "ten.csv", [penalty(i) for i in range(1, 11)]))
    result = run(engine, snapshot_of(tmp_path, 1), mode="snapshot")  # 9 of 10
    assert result.published and not result.mass_withdrawals
    assert result.as_json()["withdrawn"] == 9
    assert state(engine)[0] == 1


def test_records_whose_publicity_ended_are_not_counted(engine, tmp_path):
    """Still active (expire has not run yet) but past their publicity: withdrawn anyway, so
    they neither count against the snapshot nor among the kind's published records."""
    ending = [penalty_row(i, 公示截止日期="2026-12-01") for i in range(11, 41)]
    rows = [penalty_row(i, 公示截止日期="2027-06-01") for i in range(1, 11)] + ending
    run(engine, write_csv(tmp_path / "all.csv", rows))
    assert state(engine)[0] == PUBLISHED
    kept = write_csv(tmp_path / "snap.csv", rows[:10])
    result = run(engine, kept, mode="snapshot", today=date(2026, 12, 15))
    assert result.published and not result.mass_withdrawals
    assert state(engine)[0] == 10


def test_a_dry_run_says_the_run_would_be_refused(engine, tmp_path, published):
    result = run(engine, snapshot_of(tmp_path, 4), mode="snapshot", dry_run=True)
    assert result.refused and not result.publishable and not result.published
    assert result.as_json()["withdrawn"] == 0
    allowed = run(engine, snapshot_of(tmp_path, 4), mode="snapshot", dry_run=True,
                  allow_mass_withdrawal=True)
    assert allowed.publishable and not allowed.refused and allowed.as_json()["withdrawn"] == 36
    assert state(engine) == (PUBLISHED, PUBLISHED, 1)


def test_the_cli_refuses_with_exit_5_and_says_how_to_confirm(engine, database_url, tmp_path):
    all_rows = write_csv(tmp_path / "all.csv", [penalty(i) for i in range(1, PUBLISHED + 1)])
    assert cli(database_url, "publish", str(all_rows), tmp_path=tmp_path).returncode == 0
    snap, report = snapshot_of(tmp_path, 4), tmp_path / "r.json"

    refused = cli(database_url, "publish", str(snap), "--mode", "snapshot", "--report", str(report),
                  tmp_path=tmp_path)
    assert refused.returncode == 5, refused.stderr
    assert "错误：快照模式将撤回行政处罚（penalty）已公示记录 36 条，占发布前已公示的 40 条" \
        in refused.stderr
    assert "--allow-mass-withdrawal" in refused.stderr and "Traceback" not in refused.stderr
    assert "已发布" not in refused.stdout
    # its counts leave the refused withdrawals out, and say so (not "若发布：… 撤回 0")
    assert "未发布（不含被拒绝的快照撤回，见下：新增 0  变更 0  撤回 0  未变 4）" in refused.stdout
    data = json.loads(report.read_text(encoding="utf-8"))
    assert (data["published"], data["mass_withdrawal"]["refused"]) == (False, True)
    assert state(engine) == (PUBLISHED, PUBLISHED, 1)

    dry = cli(database_url, "publish", str(snap), "--mode", "snapshot", "--dry-run",
              tmp_path=tmp_path)
    assert dry.returncode == 5 and "未写入" in dry.stdout
    assert "正式发布将被拒绝" in dry.stderr and "36 条" in dry.stderr
    dry_allowed = cli(database_url, "publish", str(snap), "--mode", "snapshot", "--dry-run",
                      "--allow-mass-withdrawal", tmp_path=tmp_path)
    assert dry_allowed.returncode == 0 and "撤回 36" in dry_allowed.stdout
    assert state(engine) == (PUBLISHED, PUBLISHED, 1)

    allowed = cli(database_url, "publish", str(snap), "--mode", "snapshot",
                  "--allow-mass-withdrawal", tmp_path=tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    assert "警告：已确认大批撤回" in allowed.stderr and "已发布" in allowed.stdout
    assert state(engine) == (4, PUBLISHED + 36, 2)


def test_the_help_names_the_threshold(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["publish", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps the help text
    assert "--allow-mass-withdrawal" in out
    assert f"{MASS_WITHDRAWAL_PERCENT}%" in out and f"{MASS_WITHDRAWAL_MIN} 条" in out


# -- a district missing ---------------------------------------------------------------------------

FUSHAN = "370611"


def districts_published(engine, tmp_path, fushan: int, others: int = 60) -> list[dict[str, str]]:
    """`others` penalties spread over three districts, then `fushan` of 福山区 (numbered after
    them); all published."""
    rows = [penalty_row(i, 所属区市=("芝罘区", "莱山区", "牟平区")[i % 3]) for i in range(1, others + 1)]
    rows += [penalty_row(others + i, 所属区市="福山区") for i in range(1, fushan + 1)]
    run(engine, write_csv(tmp_path / "all.csv", rows))
    assert state(engine)[0] == others + fushan
    return rows


def test_the_district_rule():
    assert DISTRICT_WITHDRAWAL_PERCENT == 90
    assert is_district_withdrawal(10, 10)
    assert not is_district_withdrawal(9, 9)  # all of them, but fewer than 10 records
    assert is_district_withdrawal(18, 20)  # exactly 90 %
    assert not is_district_withdrawal(17, 20)


def test_a_snapshot_without_a_district_is_refused(engine, tmp_path):
    """12 of 72 (17 %) is under the kind's share, yet all of 福山区's publication."""
    rows = districts_published(engine, tmp_path, fushan=12)
    snap = write_csv(tmp_path / "snap.csv", rows[:60])
    result = run(engine, snap, mode="snapshot")
    assert (result.published, result.publishable, result.refused) == (False, False, True)
    fushan = DistrictWithdrawal(FUSHAN, 12, 12)
    assert result.mass_withdrawals == [MassWithdrawal("penalty", 12, 72, False, (fushan,))]
    report = result.as_json()
    assert report["withdrawn"] == 0 and report["published"] is False
    mass = report["mass_withdrawal"]
    # the fields of the share's rule as before, the district's added
    assert (mass["withdrawn"], mass["published"], mass["refused"]) == (12, 72, True)
    assert (mass["threshold_percent"], mass["minimum"]) == (25, 10)
    assert (mass["over_threshold"], mass["district_threshold_percent"]) == (False, 90)
    assert mass["districts"] == [{"district": FUSHAN, "name": "福山区", "withdrawn": 12,
                                  "published": 12}]
    assert mass["reason"].startswith("快照模式将撤回行政处罚（penalty）在福山区的全部或几乎全部已公示记录")
    assert "福山区已公示 12 条中的 12 条" in mass["reason"]
    assert "--allow-mass-withdrawal" in mass["reason"] and "本次未发布任何数据" in mass["reason"]
    assert state(engine) == (72, 72, 1)

    dry = run(engine, snap, mode="snapshot", dry_run=True)
    assert dry.refused and not dry.publishable and dry.mass_withdrawals == result.mass_withdrawals

    allowed = run(engine, snap, mode="snapshot", allow_mass_withdrawal=True)
    assert allowed.published and not allowed.refused
    assert allowed.as_json()["withdrawn"] == 12
    mass = allowed.as_json()["mass_withdrawal"]
    assert mass["refused"] is False and mass["districts"][0]["name"] == "福山区"
    assert mass["reason"].startswith("已确认大批撤回（--allow-mass-withdrawal）：快照模式撤回行政处罚")
    assert state(engine) == (60, 72 + 12, 2)


@pytest.mark.parametrize(("kept", "refused"), [(2, True), (3, False)])
def test_nearly_all_of_a_district(engine, tmp_path, kept, refused):
    """18 of 福山区's 20 (90 %) is refused, 17 (85 %) withdrawn as before."""
    rows = districts_published(engine, tmp_path, fushan=20)
    result = run(engine, write_csv(tmp_path / "snap.csv", rows[:60 + kept]), mode="snapshot")
    assert result.refused is refused and result.published is not refused
    if refused:
        assert result.mass_withdrawals[0].districts == (DistrictWithdrawal(FUSHAN, 18, 20),)
    else:
        assert result.as_json()["withdrawn"] == 17 and "mass_withdrawal" not in result.as_json()
    assert state(engine)[0] == (80 if refused else 60 + kept)


def test_a_small_district_is_withdrawn_as_before(engine, tmp_path):
    rows = districts_published(engine, tmp_path, fushan=MASS_WITHDRAWAL_MIN - 1)
    result = run(engine, write_csv(tmp_path / "snap.csv", rows[:60]), mode="snapshot")
    assert result.published and not result.mass_withdrawals
    assert state(engine)[0] == 60


def test_both_rules_say_both(engine, tmp_path):
    """A file of one district only: over the kind's share, and every other district's."""
    rows = districts_published(engine, tmp_path, fushan=12, others=30)  # 10 in each of three
    result = run(engine, write_csv(tmp_path / "snap.csv", rows[30:]), mode="snapshot")
    (mass,) = result.mass_withdrawals
    assert (mass.withdrawn, mass.published, mass.over_share) == (30, 42, True)
    assert [(d.name, d.withdrawn, d.published) for d in mass.districts] == \
        [("芝罘区", 10, 10), ("牟平区", 10, 10), ("莱山区", 10, 10)]  # by code
    assert "已公示记录 30 条，占发布前已公示的 42 条" in mass.message()
    assert "，其中将撤回芝罘区、牟平区、莱山区的全部或几乎全部已公示记录" in mass.message()
    assert state(engine)[0] == 42


def test_the_cli_names_the_district(engine, database_url, tmp_path):
    rows = districts_published(engine, tmp_path, fushan=12)
    snap, report = write_csv(tmp_path / "snap.csv", rows[:60]), tmp_path / "r.json"
    refused = cli(database_url, "publish", str(snap), "--mode", "snapshot", "--report", str(report),
                  tmp_path=tmp_path)
    assert refused.returncode == 5, refused.stderr
    assert "错误：快照模式将撤回行政处罚（penalty）在福山区的全部或几乎全部已公示记录" in refused.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["mass_withdrawal"]["districts"][0]["name"] == "福山区"
    assert state(engine) == (72, 72, 1)
