"""The benchmark scripts run end to end at a tiny scale (their figures are not checked): a
script that a changed helper broke (bench/search.py and bench/api.py unpacked run_publish's
result by position and crashed after it gained fields) fails here, not at the next measurement."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bench_scripts")]


def _bench(tmp_path: Path, script: str, *args: str) -> str:
    env = {**os.environ, "DISCLOSURE_BENCH_OUT": str(tmp_path / "out"),
           "DISCLOSURE_DATA_DIR": str(tmp_path / "var")}
    env.pop("DISCLOSURE_DATABASE_URL", None)
    done = subprocess.run([sys.executable, f"bench/{script}", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def test_search_ingest_api_and_floor_on_sqlite(tmp_path):
    out = _bench(tmp_path, "search.py", "--entities", "300", "--queries", "40",
                 "--no-datasette", "--wrk-seconds", "0")
    assert "published in" in out  # its own load: no database of bench/ingest.py to reuse
    assert "search API" in out and "profile" in out and "peak RSS per worker" in out
    out = _bench(tmp_path, "ingest.py", "--entities", "300", "--backends", "sqlite")
    assert "records/s" in out and " sqlite " in out
    assert "20-row blacklist issue into 300" in out and "as CLI runs" in out
    out = _bench(tmp_path, "api.py", "--entities", "300", "--singles", "20", "--batches", "2")
    assert "published" in out  # its own load
    assert "credit check, single" in out and "server VmHWM at the end" in out
    out = _bench(tmp_path, "ingest_floor.py", "--entities", "300")
    assert "cleaning process alone" in out and "SQLite alone building the published tables" in out
