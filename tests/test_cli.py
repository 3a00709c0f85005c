"""The `disclosure` CLI as a user runs it: real processes, real files, exit codes, reports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from publishing.commit import EVENTS, RECORDS
from publishing.db import make_engine, upgrade
from tests.conftest import PG_ADMIN_URL
from tests.factories import credit_mark_row, penalty_row, pledge_row, write_csv, write_ndjson
from tests.servers import free_port, stop, wait_up


def cli(engine_url: str, *args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DISCLOSURE_DATABASE_URL": engine_url, "DISCLOSURE_DATA_DIR": str(tmp_path / "var")}
    return subprocess.run([sys.executable, "-m", "portal.cli", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_exit_codes_and_report(engine, database_url, tmp_path):
    good = write_csv(tmp_path / "good.csv", [penalty_row(1), penalty_row(2)])
    bad = write_csv(tmp_path / "bad.csv", [penalty_row(3), penalty_row(4, 处罚决定日期="2099-01-01")])
    report = tmp_path / "r.json"

    ok = cli(database_url, "publish", str(good), "--report", str(report), tmp_path=tmp_path)
    assert ok.returncode == 0, ok.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    assert {k: data[k] for k in ("file", "kind", "rows", "accepted", "rejected", "added", "changed",
                                 "withdrawn", "unchanged")} == {
        "file": str(good), "kind": "penalty", "rows": 2, "accepted": 2, "rejected": [], "added": 2,
        "changed": 0, "withdrawn": 0, "unchanged": 0}

    rejected = cli(database_url, "publish", str(bad), "--report", str(report), tmp_path=tmp_path)
    assert rejected.returncode == 1
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["rejected"][0]["row"] == 3 and data["rejected"][0]["column"] == "处罚决定日期"
    assert data["published"] is False
    assert "第3行" in rejected.stderr
    # what it would have done, not "新增 1" as if it had
    assert f"{bad} [penalty] 行数 2  接受 1  拒绝 1  未发布（若发布：新增 1  变更 0  撤回 0  未变 0）" \
        in rejected.stdout.splitlines()

    partial = cli(database_url, "publish", str(bad), "--accept-partial", tmp_path=tmp_path)
    assert partial.returncode == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(RECORDS)).scalar_one() == 3

    missing = cli(database_url, "publish", str(tmp_path / "nope.csv"), tmp_path=tmp_path)
    assert missing.returncode == 2
    garbage = tmp_path / "garbage.csv"
    garbage.write_text("a,b\n1,2\n", encoding="utf-8")
    assert cli(database_url, "publish", str(garbage), tmp_path=tmp_path).returncode == 2

    dry = cli(database_url, "publish", str(write_csv(tmp_path / "new.csv", [penalty_row(9)])), "--dry-run",
              tmp_path=tmp_path)
    assert dry.returncode == 0 and "未写入" in dry.stdout and "试运行（若发布：新增 1  " in dry.stdout
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(RECORDS)).scalar_one() == 3


def test_export_writes_public_shape(engine, database_url, tmp_path):
    cli(database_url, "publish", str(write_csv(tmp_path / "p.csv", [penalty_row(1)])), tmp_path=tmp_path)
    out = cli(database_url, "export", "--kind", "penalty", "--format", "ndjson", tmp_path=tmp_path)
    rec = json.loads(out.stdout.splitlines()[0])
    assert rec["decision_no"] == "烟芝市监罚〔2026〕1号" and rec["kind"] == "penalty"
    assert rec["fine_yuan"] == "5000.00" and rec["penalty_kinds"] == ["警告", "罚款"]
    csv_out = tmp_path / "p_out.csv"
    cli(database_url, "export", "--kind", "penalty", "--format", "csv", "--out", str(csv_out), tmp_path=tmp_path)
    raw = csv_out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens it as UTF-8
    assert "烟芝市监罚〔2026〕1号" in raw.decode("utf-8-sig")


def test_export_leaves_out_a_record_whose_publicity_ended(engine, database_url, tmp_path):
    from datetime import date, timedelta

    from publishing.publish import publish

    ended = penalty_row(2, 处罚决定日期="2025-01-10", 公示截止日期=(date.today() - timedelta(days=1)).isoformat())
    path = write_csv(tmp_path / "e.csv", [penalty_row(1), ended], header=[*ended])
    assert publish([path], engine=engine, show_progress=False,
                   today=date.today() - timedelta(days=30)).published
    out = cli(database_url, "export", "--kind", "penalty", "--format", "ndjson", tmp_path=tmp_path)
    numbers = [json.loads(line)["decision_no"] for line in out.stdout.splitlines()]
    assert numbers == ["烟芝市监罚〔2026〕1号"]  # the other ended yesterday; expire has not run


@pytest.mark.slow
@pytest.mark.parametrize("initial", [False, True], ids=["incremental", "initial-load"])
def test_sigkill_mid_commit_leaves_previous_publication_intact(engine, database_url, tmp_path, initial):
    """Killed mid-publish: the previous publication is intact, and a rerun completes. An
    initial load (nothing published before) takes other paths: dropped indexes and foreign
    keys, entities built at the end, on SQLite a rollback journal instead of the WAL."""
    if not initial:
        first = write_csv(tmp_path / "first.csv", [penalty_row(i) for i in range(1, 11)])
        assert cli(database_url, "publish", str(first), tmp_path=tmp_path).returncode == 0
    with engine.connect() as conn:
        before = (conn.execute(select(func.count()).select_from(RECORDS)).scalar_one(),
                  conn.execute(select(func.count()).select_from(EVENTS)).scalar_one())
    engine.dispose()  # alone with the database, an initial load on SQLite leaves the WAL
    big = write_csv(tmp_path / "big.csv", [penalty_row(i) for i in range(1, 40_001)],
                    header=list(penalty_row(1)))
    env = {**os.environ, "DISCLOSURE_DATABASE_URL": database_url, "DISCLOSURE_DATA_DIR": str(tmp_path / "var"),
           "DISCLOSURE_PROGRESS_EVERY": "20000"}
    proc = subprocess.Popen([sys.executable, "-m", "portal.cli", "publish", str(big)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # The plain progress line at 20,000 rows proves chunks were already written in the transaction.
    deadline = time.monotonic() + 240
    line = ""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "20,000 行" in line or not line:
            break
    assert "20,000 行" in line, f"publisher ended before the kill point: {proc.communicate()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    if initial and engine.dialect.name == "sqlite":  # killed in rollback-journal mode: a hot journal
        assert Path(f"{engine.url.database}-journal").exists()
    engine.dispose()
    with engine.connect() as conn:
        after = (conn.execute(select(func.count()).select_from(RECORDS)).scalar_one(),
                 conn.execute(select(func.count()).select_from(EVENTS)).scalar_one())
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
    assert after == before
    rerun = cli(database_url, "publish", str(big), tmp_path=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(RECORDS)).scalar_one() == 40_000


def test_unreadable_files_exit_2_and_publish_nothing_even_with_accept_partial(engine, database_url, tmp_path):
    """With --kind, an unreadable file's report had a kind, and the CLI took that to mean it
    was read: exit 1 instead of 2; with --accept-partial the other files were published."""
    marks = write_csv(tmp_path / "marks.csv", [credit_mark_row(1)])
    garbage = tmp_path / "garbage.csv"
    garbage.write_text("a,b\n1,2\n", encoding="utf-8")
    good = write_csv(tmp_path / "good.csv", [penalty_row(1)])
    report = tmp_path / "r.json"
    for args in ([str(marks), "--kind", "penalty"], [str(garbage), "--kind", "penalty"],
                 [str(good), str(garbage), "--accept-partial", "--report", str(report)]):
        run = cli(database_url, "publish", *args, tmp_path=tmp_path)
        assert run.returncode == 2, (args, run.stderr)
        assert "无法读取" in run.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    assert [(d["unreadable"], d["accepted"], d["published"]) for d in data] == [
        (False, 1, False), (True, 0, False)]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(RECORDS)).scalar_one() == 0


def test_a_report_that_cannot_be_written(engine, database_url, tmp_path):
    good = write_csv(tmp_path / "good.csv", [penalty_row(1)])
    nowhere = cli(database_url, "publish", str(good), "--report", str(tmp_path / "no" / "r.json"),
                  tmp_path=tmp_path)
    assert nowhere.returncode == 2 and "报告文件" in nowhere.stderr
    assert "Traceback" not in nowhere.stderr
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(RECORDS)).scalar_one() == 0
    # a write that fails only after publishing (a full disk): reported, and the search sync
    # that follows a publish still runs
    full = cli(database_url, "publish", str(good), "--report", "/dev/full", tmp_path=tmp_path)
    assert full.returncode == 4, full.stderr  # not 0: something went wrong, and not "nothing published"
    assert "写入失败" in full.stderr and "已发布的数据不受影响" in full.stderr
    assert "Traceback" not in full.stderr
    assert "搜索索引已同步" in full.stdout
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(RECORDS)).scalar_one() == 1


def test_snapshot_with_rejects_warns_that_it_withdrew_nothing(engine, database_url, tmp_path):
    cli(database_url, "publish", str(write_csv(tmp_path / "a.csv", [penalty_row(1), penalty_row(2)])),
        tmp_path=tmp_path)
    partial = write_csv(tmp_path / "b.csv", [penalty_row(1, 处罚决定日期="2099-01-01"), penalty_row(3)])
    run = cli(database_url, "publish", str(partial), "--mode", "snapshot", "--accept-partial",
              tmp_path=tmp_path)
    assert run.returncode == 0
    assert "警告" in run.stderr and "快照模式本次未撤回" in run.stderr


def test_worker_once_exits_non_zero_when_a_job_fails(engine, database_url, tmp_path):
    cli(database_url, "publish", str(write_csv(tmp_path / "a.csv", [penalty_row(1)])),
        tmp_path=tmp_path)
    (tmp_path / "var").mkdir(exist_ok=True)
    (tmp_path / "var" / "opendata").write_text("not a folder", encoding="utf-8")
    failed = cli(database_url, "worker", "--once", tmp_path=tmp_path)
    assert failed.returncode == 1, failed.stdout
    results = json.loads(failed.stdout.strip().splitlines()[-1])
    # "open-data" is due only from 01:00 Beijing; "open-data-now" runs at any hour. Each
    # failed on the file in its folder's place (the error, not a result, is reported).
    failed_jobs = {k: v for k, v in results.items() if k.startswith("open-data")}
    assert "open-data-now" in failed_jobs
    assert all(isinstance(v, str) and "var/opendata" in v for v in failed_jobs.values()), results
    (tmp_path / "var" / "opendata").unlink()
    ok = cli(database_url, "worker", "--once", tmp_path=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # the default log format (text) logs the worker's INFO lines too (RUNBOOK ships them)
    assert "INFO publishing.worker: worker: job open-data done" in ok.stdout, ok.stdout


def test_apikeys_add_list_revoke(engine, database_url, tmp_path):
    from publishing import apikeys, audit

    added = cli(database_url, "apikeys", "add", "烟台市发展和改革委员会", "--per-minute", "600",
                tmp_path=tmp_path)
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    assert key.startswith(apikeys.PREFIX) and "X-API-Key" in added.stderr
    held = apikeys.lookup(engine, key)
    assert held is not None and (held.name, held.per_minute) == ("烟台市发展和改革委员会", 600)
    listed = cli(database_url, "apikeys", "list", tmp_path=tmp_path)
    assert "烟台市发展和改革委员会\t1 个\t每分钟限额 600" in listed.stdout
    assert cli(database_url, "apikeys", "add", "x", "--per-minute", "0",
               tmp_path=tmp_path).returncode == 2
    revoked = cli(database_url, "apikeys", "revoke", "烟台市发展和改革委员会", tmp_path=tmp_path)
    assert revoked.returncode == 0 and "1 个" in revoked.stdout
    assert apikeys.lookup(engine, key) is None
    assert cli(database_url, "apikeys", "revoke", "烟台市发展和改革委员会",
               tmp_path=tmp_path).returncode == 1
    with engine.connect() as conn:
        entries = audit.for_target(conn, "apikey", "烟台市发展和改革委员会")
    assert sorted(e["action"] for e in entries) == ["apikey.add", "apikey.revoke"]
    assert key not in str(entries)  # only a hint of the key is kept


def _reject_lines(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if "第" in line and "行" in line]


def test_every_reject_names_its_file_and_reads_as_typed(engine, database_url, tmp_path):
    """Reject lines had no file name, stopped at 20 with a pointer to a --report nobody gave,
    and showed Python: [None], datetime.date(…), '…' quotes."""
    import openpyxl

    rows = [penalty_row(i, 处罚决定日期="2026-13-01") for i in range(1, 25)]
    two_problems = penalty_row(30, 所属区市="火星区", **{"罚款金额(元)": "1000.001"})
    rows += [two_problems, penalty_row(30)]  # and a duplicate of it
    many = write_csv(tmp_path / "many.csv", rows)
    book = openpyxl.Workbook()
    book.active.append(list(penalty_row(40)))
    book.active.append([*list(penalty_row(40).values())[:13], date(2099, 5, 1), "一般", "食品"])
    book.save(xlsx := tmp_path / "dated.xlsx")
    pledges = write_ndjson(tmp_path / "p.ndjson", [pledge_row(1, return_days=5)])

    run = cli(database_url, "publish", str(many), str(xlsx), str(pledges), tmp_path=tmp_path)
    assert run.returncode == 1
    lines = _reject_lines(run.stderr)
    assert len(lines) == 24 + 3 + 1 + 1  # all of them: no --report to find the rest in
    assert sum(line.startswith(f"{many} 第") for line in lines) == 27
    assert f"{xlsx} 第2行 [处罚决定日期] “2099-05-01”：日期晚于今天" in lines
    assert f"{pledges} 第1行 [return_days] “5”：退货期限不得少于7天" in lines
    duplicate = next(line for line in lines if "重复" in line)
    assert duplicate.startswith(
        f"{many} 第27行 [行政处罚决定书文号] “烟芝市监罚〔2026〕30号”：与第26行重复")
    assert not any(s in run.stderr for s in ("None", "datetime", "'", "另有"))
    # 接受 + 拒绝 = 行数: rejected rows, the problems apart
    assert f"{many} [penalty] 行数 26  接受 0  拒绝 26（27 处问题）" in run.stdout

    report = tmp_path / "r.json"
    listed = cli(database_url, "publish", str(many), "--report", str(report), tmp_path=tmp_path)
    assert len(_reject_lines(listed.stderr)) == 20
    assert f"…另有 7 条拒绝，全部见报告 {report}" in listed.stderr
    assert len(json.loads(report.read_text(encoding="utf-8"))["rejected"]) == 27


def test_an_unreadable_file_is_one_file_level_line(engine, database_url, tmp_path):
    """"第0行 [None] None: 文件是空的" said nothing useful beyond the reason."""
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    run = cli(database_url, "publish", str(empty), tmp_path=tmp_path)
    assert run.returncode == 2
    assert f"  {empty}：文件是空的" in run.stderr.splitlines()
    assert f"{empty} [?] 无法读取" in run.stdout and "None" not in run.stderr + run.stdout


def test_the_summary_shows_every_count_and_adds_up(engine, database_url, tmp_path):
    """Rows stored but not published (their publicity already ended) were in no console count."""
    from datetime import timedelta

    ended = penalty_row(2, 处罚决定日期="2025-01-10",
                        公示截止日期=(date.today() - timedelta(days=1)).isoformat())
    path = write_csv(tmp_path / "e.csv", [penalty_row(1), ended], header=[*ended])
    run = cli(database_url, "publish", str(path), tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (f"{path} [penalty] 行数 2  接受 2  拒绝 0  新增 1  变更 0  撤回 0  未变 0  "
            "已过公示期（不公示） 1\n") in run.stdout


def test_accept_partial_with_every_row_rejected_publishes_nothing_and_exits_1(engine, database_url,
                                                                              tmp_path):
    bad = write_csv(tmp_path / "bad.csv", [penalty_row(i, 处罚决定日期="2026-13-01") for i in (1, 2)])
    report = tmp_path / "r.json"
    run = cli(database_url, "publish", str(bad), "--accept-partial", "--report", str(report),
              tmp_path=tmp_path)
    assert run.returncode == 1, run.stdout
    assert "已发布" not in run.stdout and "所有行都被拒绝：未发布任何数据" in run.stderr
    assert json.loads(report.read_text(encoding="utf-8"))["published"] is False
    dry = cli(database_url, "publish", str(bad), "--accept-partial", "--dry-run", tmp_path=tmp_path)
    assert dry.returncode == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(RECORDS)).scalar_one() == 0


@pytest.mark.parametrize("empty", ["header.csv", "empty.json", "blank.ndjson"])
def test_an_empty_snapshot_is_unreadable_and_withdraws_nothing(engine, database_url, tmp_path, empty):
    """A header-only CSV or `[]` with --kind penalty --mode snapshot withdrew every penalty."""
    published = write_csv(tmp_path / "a.csv", [penalty_row(1), penalty_row(2)])
    assert cli(database_url, "publish", str(published), tmp_path=tmp_path).returncode == 0
    path = tmp_path / empty
    if empty == "header.csv":
        path.write_text(",".join(penalty_row(1)) + "\n", encoding="utf-8")
    else:
        path.write_text("[]" if empty == "empty.json" else "\n\n", encoding="utf-8")
    report = tmp_path / "r.json"
    run = cli(database_url, "publish", str(path), "--kind", "penalty", "--mode", "snapshot",
              "--report", str(report), tmp_path=tmp_path)
    assert run.returncode == 2, run.stdout
    assert f"  {path}：文件中没有任何记录" in run.stderr.splitlines()
    data = json.loads(report.read_text(encoding="utf-8"))
    assert (data["unreadable"], data["withdrawn"], data["published"]) == (True, 0, False)
    assert "快照模式本次未撤回" not in run.stderr  # nothing is published: no such warning
    with engine.connect() as conn:
        statuses = conn.execute(select(RECORDS.c.status)).scalars().all()
    assert statuses == ["active", "active"]


def test_a_truncated_utf16_file_is_unreadable(engine, database_url, tmp_path):
    text = "\t".join(penalty_row(1)) + "\n" + "\t".join(penalty_row(1).values()) + "\n"
    path = tmp_path / "p.txt"
    path.write_bytes(text.encode("utf-16")[:-1])  # a UTF-16 file cut in the middle of a character
    report = tmp_path / "r.json"
    run = cli(database_url, "publish", str(path), "--report", str(report), tmp_path=tmp_path)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and "UTF-16" in run.stderr
    assert json.loads(report.read_text(encoding="utf-8"))["unreadable"] is True


def test_an_unreachable_database_is_one_line_and_exit_3(backend, tmp_path):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}"  # a folder: SQLite cannot open it
    else:
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/disclosure_no_such_database"
    good = write_csv(tmp_path / "good.csv", [penalty_row(1)])
    for args in (["publish", str(good)], ["export", "--kind", "penalty"], ["expire"],
                 ["reindex"], ["opendata"], ["scrub"], ["audit", "verify"]):
        run = cli(url, *args, tmp_path=tmp_path)
        assert run.returncode == 3, run.stderr
        assert "Traceback" not in run.stderr
        [line] = run.stderr.splitlines()
        assert line.startswith("错误：无法访问数据库")


def test_commands_that_read_do_not_create_a_missing_sqlite_database(tmp_path):
    """A mistyped path (or data directory) made a new empty database: export wrote no records
    and opendata empty snapshots over the published ones, both with exit 0."""
    typo = tmp_path / "typo" / "disclosure.db"
    for args in (["export", "--kind", "penalty"], ["expire"], ["reindex"], ["opendata"], ["scrub"],
                 ["audit", "verify"]):  # (a daily check of a new, empty log said all was well)
        run = cli(f"sqlite:///{typo}", *args, tmp_path=tmp_path)
        assert run.returncode == 3, (args, run.stdout, run.stderr)
        [line] = run.stderr.splitlines()
        assert line.startswith(f"错误：数据库文件 {typo} 不存在"), line
        assert not typo.exists() and not typo.parent.exists()
    # a URI filename names the file after "file:"
    existing = tmp_path / "ro.db"
    upgrade(make_engine(f"sqlite:///{existing}"))
    run = cli(f"sqlite:///file:{existing}?mode=ro&uri=true", "export", "--kind", "penalty",
              tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr


def test_opendata_from_a_database_that_never_published_keeps_the_files(engine, database_url,
                                                                       tmp_path):
    good = write_csv(tmp_path / "good.csv", [penalty_row(1)])
    assert cli(database_url, "publish", str(good), tmp_path=tmp_path).returncode == 0
    built = cli(database_url, "opendata", tmp_path=tmp_path)
    index = tmp_path / "var" / "opendata" / "index.json"
    # one line, not the whole index.json
    assert built.returncode == 0 and built.stdout.count("\n") == 1, built.stdout
    version = json.loads(index.read_text(encoding="utf-8"))["version"]
    assert built.stdout.startswith(f"开放数据已生成：版本 {version}，seq ") and str(index) in built.stdout
    again = cli(database_url, "opendata", tmp_path=tmp_path)  # nothing changed since
    assert again.stdout.startswith(f"开放数据已是最新（自上次生成以来没有变更，未改写文件）：版本 {version}")
    before = index.read_bytes()
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade(make_engine(empty))  # a database that exists and never published anything
    run = cli(empty, "opendata", tmp_path=tmp_path)
    assert run.returncode == 3 and "请检查数据库地址" in run.stderr, run.stderr
    assert index.read_bytes() == before


def test_demo_serves_the_sample_data_with_its_open_data(tmp_path):
    """The README's first command: sample data published and served, the open-data downloads
    built too (they said "not made yet" until a worker's nightly build)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISCLOSURE_")}  # a laptop's
    proc = subprocess.Popen([sys.executable, "-m", "portal.cli", "demo", "--port", str(port),
                             "--entities", "60"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_up(f"{base}/open-data/index.json", 120, proc)
        with urllib.request.urlopen(f"{base}/open-data/index.json", timeout=10) as resp:
            index = json.load(resp)
        assert {f["type"] for f in index["files"]} >= {"snapshot"} and index["seq"] > 0
        with urllib.request.urlopen(f"{base}/penalties", timeout=10) as resp:
            assert resp.status == 200
        # absolute links name the demo's own port (the default base URL says 8000)
        with urllib.request.urlopen(f"{base}/feeds/penalty.atom", timeout=10) as resp:
            feed = resp.read().decode()
        assert f'href="{base}/' in feed and "127.0.0.1:8000" not in feed
    finally:
        stop(proc, 15)
    assert (tmp_path / "var" / "opendata" / "index.json").exists()


def test_sample_and_export_usage_errors_are_one_line(engine, database_url, tmp_path):
    sample = cli(database_url, "sample", "--out", str(tmp_path / "s"), "--entities", "0",
                 tmp_path=tmp_path)
    assert sample.returncode == 2 and "--entities" in sample.stderr
    assert "Traceback" not in sample.stderr and not (tmp_path / "s").exists()
    (tmp_path / "f").write_text("a file, not a folder", encoding="utf-8")
    blocked = cli(database_url, "sample", "--out", str(tmp_path / "f" / "s"), "--entities", "1",
                  tmp_path=tmp_path)
    assert blocked.returncode == 2 and blocked.stderr.startswith("错误：无法写入")
    nowhere = cli(database_url, "export", "--kind", "penalty", "--out", str(tmp_path / "no" / "x.csv"),
                  tmp_path=tmp_path)
    assert nowhere.returncode == 2 and "Traceback" not in nowhere.stderr
    assert nowhere.stderr.startswith("错误：无法写入")


def test_export_into_a_closed_pipe(engine, database_url, tmp_path):
    """`disclosure export … | head`: the reader leaves early."""
    cli(database_url, "publish", str(write_csv(tmp_path / "p.csv", [penalty_row(i) for i in range(1, 400)])),
        tmp_path=tmp_path)
    env = {**os.environ, "DISCLOSURE_DATABASE_URL": database_url, "DISCLOSURE_DATA_DIR": str(tmp_path / "var")}
    proc = subprocess.Popen([sys.executable, "-m", "portal.cli", "export", "--kind", "penalty"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # before the first line is written
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 1
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert stderr.strip() == "导出提前结束：输出管道已被关闭。"


def test_progress_lines_and_ndjson_syntax_errors_in_chinese_terms(engine, database_url, tmp_path):
    line = json.dumps(pledge_row(2), ensure_ascii=False)[:-1]  # the closing brace is missing
    path = tmp_path / "p.ndjson"
    path.write_text(json.dumps(pledge_row(1), ensure_ascii=False) + "\n" + line + "\n", encoding="utf-8")
    env_cli = {**os.environ, "DISCLOSURE_DATABASE_URL": database_url,
               "DISCLOSURE_DATA_DIR": str(tmp_path / "var"), "DISCLOSURE_PROGRESS_EVERY": "1"}
    run = subprocess.run([sys.executable, "-m", "portal.cli", "publish", str(path)], env=env_cli,
                         capture_output=True, text=True, timeout=300)
    assert "发布 p.ndjson：2 行，" in run.stderr and "行/秒" in run.stderr
    assert "rows" not in run.stderr
    assert f"（第{len(line) + 1}列）" in run.stderr  # where the line ends, not column 1 of the next


def _active_records(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(RECORDS)
                            .where(RECORDS.c.status == "active")).scalar_one()


def test_demo_makes_a_new_sample_when_entities_change(engine, tmp_path, capsys):
    """`./dev demo --entities N` after an earlier demo: the sample of N entities is made and
    shown, alone (it republished the first sample, whatever N said)."""
    from portal.cli import DEMO_STAMP, _demo_publish

    sample = tmp_path / "sample"
    _demo_publish(engine, sample, 20)
    small = _active_records(engine)
    assert json.loads((sample / DEMO_STAMP).read_text()) == {"entities": 20, "seed": 20261127}
    made = (sample / "penalty.csv").stat().st_mtime_ns

    _demo_publish(engine, sample, 20)
    assert "示例数据：沿用" in capsys.readouterr().out
    assert (sample / "penalty.csv").stat().st_mtime_ns == made and _active_records(engine) == small

    _demo_publish(engine, sample, 60)
    assert "示例数据：重新生成" in capsys.readouterr().out
    assert json.loads((sample / DEMO_STAMP).read_text())["entities"] == 60
    assert _active_records(engine) > small

    _demo_publish(engine, sample, 20)  # fewer again: the larger sample's other records go
    assert "（20 个主体，此前为 60 个）" in capsys.readouterr().out
    assert _active_records(engine) == small
