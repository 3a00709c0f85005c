"""The run fails when SQLite database tests ran but no PostgreSQL one did (README): checked by
the process that sees every report, also under xdist, where a worker's exit status is lost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ONE_TEST = "tests/test_withdraw_unpublished.py::test_a_superseded_mark_withdrawn_by_a_file_is_not_restored"


def test_sqlite_tests_without_postgresql_fail_the_run_under_xdist():
    """(The whole suite passing with both shows the other side.)"""
    run = subprocess.run(
        [sys.executable, "-m", "pytest", f"{ONE_TEST}[sqlite]", "-q", "-n", "2",
         "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert "sqlite=1, postgresql=0" in run.stdout, run.stdout[-2000:]
    assert run.returncode == 1, run.stdout[-2000:]
