"""Open-data builds that fail, and files a build leaves unreadable: index.json and the files it
lists stay consistent, and a failed build leaves nothing of itself (on-call review). The full
disk is a real write failure: `disclosure opendata` runs with RLIMIT_FSIZE, so that a file
growing past the limit fails with EFBIG, as one fails with ENOSPC on a full disk (a tmpfs would
need a mount, which a container may not allow). On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from portal.api.opendata import NO_INDEX
from publishing import opendata
from publishing.commit import EVENTS
from tests.api_helpers import api_client, bulk_penalties, publish_csv
from tests.factories import penalty_row

# Over the snapshot files and a few days' deltas, under one day of 200 penalties (about 300 KB),
# and over what SQLite may write beside a database it reads (its 32 KB shared-memory file).
FILE_LIMIT = 64 * 1024
PENALTY_WITH_OP = [*penalty_row(1), "操作"]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files(out: Path) -> dict[str, bytes]:
    """Every file under the open-data directory (the build lock aside) and its bytes."""
    return {
        path.relative_to(out).as_posix(): path.read_bytes()
        for path in sorted(out.rglob("*"))
        if path.is_file() and path.name != ".lock"
    }


def _assert_consistent(out: Path) -> dict:
    """Each file index.json lists holds the bytes it describes, and nothing else is there but
    the files of the index it replaced, kept under retired/ (retired.json lists them)."""
    index = json.loads((out / "index.json").read_text(encoding="utf-8"))
    for f in index["files"]:
        raw = (out / f["path"]).read_bytes()
        assert (len(raw), _sha(raw)) == (f["bytes"], f["sha256"]), f["path"]
    listed = {"index.json", *(f["path"] for f in index["files"])}
    retired = opendata.load_retired(out)
    if retired is not None:
        listed |= {"retired/retired.json", *(f"retired/{f['path']}" for f in retired["files"])}
    assert set(_files(out)) == listed
    return index


def _file_size_limit(size: int):
    def limit() -> None:  # in the child, before it runs the CLI
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past it fails, not the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def _opendata(database_url: str, data_dir: Path, limit: int | None = None):
    env = {
        **os.environ,
        "DISCLOSURE_DATABASE_URL": database_url,
        "DISCLOSURE_DATA_DIR": str(data_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "portal.cli", "opendata"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_file_size_limit(limit) if limit else None,
    )


def _backdate(engine) -> None:
    """The events so far happened on 2026-11-20: a withdrawal today rewrites that day's file."""
    with engine.begin() as conn:
        conn.execute(EVENTS.update().values(at=datetime(2026, 11, 20, 2, 0, tzinfo=UTC)))


def _checkpoint(engine) -> None:
    """SQLite: the WAL written back, so that the CLI reading the database writes nothing."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))


def test_a_build_that_cannot_write_leaves_the_served_files_as_they_were(
    engine, database_url, tmp_path
):
    """The review's disk-full run: the new snapshot stayed (unreferenced), a partial .tmp delta
    with it, a traceback; and the 2026-11-20 file was rewritten in place before the failing
    one, so index.json's checksum of it was wrong."""
    publish_csv(engine, tmp_path, "p.csv", [penalty_row(i) for i in range(1, 4)])
    _backdate(engine)
    data_dir = tmp_path / "var"
    out = data_dir / "opendata"
    first = _opendata(database_url, data_dir)
    assert first.returncode == 0, first.stderr
    before = _files(out)
    # rewrites 2026-11-20 (a record of it withdrawn), then 2026-11-27 outgrows the limit
    publish_csv(engine, tmp_path, "w.csv", [penalty_row(2, 操作="撤销")], header=PENALTY_WITH_OP)
    bulk_penalties(engine, 200, start=100)
    _checkpoint(engine)

    failed = _opendata(database_url, data_dir, limit=FILE_LIMIT)
    assert failed.returncode == 1 and failed.stdout == "", failed.stdout
    assert failed.stderr.splitlines() == [
        f"错误：无法写入开放数据文件 {out}（File too large）：本次写入的文件已删除，"
        "已有的开放数据文件未改动。"
    ], failed.stderr
    assert _files(out) == before  # nothing of the failed build, the previous one untouched
    _assert_consistent(out)

    again = _opendata(database_url, data_dir)
    assert again.returncode == 0, again.stderr
    index = _assert_consistent(out)
    days = [f["date"] for f in index["files"] if f["type"] == "delta"]
    assert "2026-11-27" in days
    assert sorted(os.listdir(out / "deltas")) == [f"{day}.ndjson" for day in days]


def test_a_delta_is_served_from_the_file_index_json_lists(engine, tmp_path):
    """A build writes a day under its own name, names it in index.json, then gives it the
    usual name: a build killed in between leaves index.json listing DAY.build-N.ndjson while
    DAY.ndjson still holds the day as it was. The URL serves what index.json lists, and the
    next build deletes the file it does not list."""
    publish_csv(engine, tmp_path, "p.csv", [penalty_row(i) for i in range(1, 4)])
    out = tmp_path / "od"
    index = opendata.build(engine, out)
    [day] = [f for f in index["files"] if f["type"] == "delta"]
    usual = out / day["path"]
    day["path"] = f"deltas/{day['date']}.build-7.ndjson"
    os.replace(usual, out / day["path"])
    usual.write_text('{"the day": "as it was before"}\n', encoding="utf-8")
    (out / "index.json").write_text(json.dumps(index, ensure_ascii=False), encoding="utf-8")
    with api_client(engine, opendata_dir=out) as client:
        served = client.get(day["url"])
        assert served.status_code == 200 and _sha(served.content) == day["sha256"]
        assert f'filename="{day["date"]}.ndjson"' in served.headers["content-disposition"]
    assert opendata.build(engine, out)["files"] == index["files"]  # nothing new to build
    assert not usual.exists()
    _assert_consistent(out)


def test_an_unreadable_index_json_is_served_as_missing(engine, tmp_path, caplog, monkeypatch):
    """A truncated or empty index.json: /open-data/index.json answered 500 (the other routes
    took it as missing); now the 404 of a missing one, logged once as an error."""
    out = tmp_path / "od"
    with api_client(engine, opendata_dir=out) as client:
        missing = client.get("/open-data/index.json")
    assert missing.status_code == 404 and NO_INDEX in missing.text
    publish_csv(engine, tmp_path, "p.csv", [penalty_row(1)])
    built = json.dumps(opendata.build(engine, out), ensure_ascii=False).encode()
    for body in (built[: len(built) // 2], b""):
        (out / "index.json").write_bytes(body)
        caplog.clear()
        with api_client(engine, opendata_dir=out) as client:
            # set up by the app: the portal's logger does not reach caplog's handler on the root
            monkeypatch.setattr(logging.getLogger("portal"), "handlers", [caplog.handler])
            answers = [client.get("/open-data/index.json") for _ in range(3)]
            page = client.get("/open-data")
        for answer in answers:
            assert (answer.status_code, answer.text) == (404, missing.text)
        assert page.status_code == 200 and "/open-data/index.json" not in page.text
        logged = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(logged) == 1 and "index.json" in logged[0].getMessage(), logged
