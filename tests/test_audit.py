"""The audit log: append-only (the database refuses changes), hash-chained (a change made around
the triggers is found, and where), and `disclosure audit verify` says so by its exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from publishing import audit
from publishing.db import writer_connection
from publishing.request_models import AUDIT


def _append(engine, n: int) -> None:
    for i in range(n):
        with writer_connection(engine) as conn, conn.begin():
            audit.append(
                conn,
                actor=f"tester{i % 2}",
                action="request.accept",
                target_type="request",
                target_id=f"YX20261127-{i:06d}",
                before={"status": "received"},
                after={
                    "status": "accepted",
                    "reason": f"材料齐全 {i}",
                    "n": i,
                    "at": datetime(2026, 11, 27, tzinfo=UTC),
                },
            )


def _raw(engine, sql: str) -> None:
    """Change the table around its append-only triggers, as an intruder with DBA rights would."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
            conn.execute(text(sql))
            conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
            conn.execute(text(sql))


def test_chain_links_every_entry(engine):
    assert audit.verify(engine) == (True, None)
    _append(engine, 5)
    with engine.connect() as conn:
        rows = conn.execute(select(AUDIT).order_by(AUDIT.c.n)).mappings().all()
    assert [r["n"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["prev_hash"] == audit.GENESIS
    for prev, row in zip(rows, rows[1:], strict=False):
        assert row["prev_hash"] == prev["hash"]
        assert row["hash"] == audit.entry_hash(prev["hash"], dict(row))
    assert rows[2]["after"] == {
        "status": "accepted",
        "reason": "材料齐全 2",
        "n": 2,
        "at": "2026-11-27 00:00:00+00:00",
    }
    assert audit.verify(engine) == (True, None)


def test_database_refuses_updates_and_deletes(engine):
    _append(engine, 2)
    for sql in (
        "UPDATE audit_log SET actor = 'x' WHERE n = 1",
        "DELETE FROM audit_log WHERE n = 2",
    ):
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(text(sql))
    assert audit.verify(engine) == (True, None)


@pytest.mark.parametrize(
    "tamper, first_bad",
    [
        ('UPDATE audit_log SET after = \'{"status": "rejected"}\' WHERE n = 3', 3),
        ("UPDATE audit_log SET actor = 'someone-else' WHERE n = 4", 4),
        ("DELETE FROM audit_log WHERE n = 2", 3),
        ("UPDATE audit_log SET at = '2026-01-01 00:00:00+00' WHERE n = 5", 5),
    ],
)
def test_tampering_is_found_where_it_starts(engine, tamper, first_bad):
    _append(engine, 6)
    _raw(engine, tamper)
    assert audit.verify(engine) == (False, first_bad)


def test_rewriting_the_hashes_too_breaks_the_chain_after_it(engine):
    _append(engine, 4)
    with engine.connect() as conn:
        row = dict(conn.execute(select(AUDIT).where(AUDIT.c.n == 2)).mappings().one())
    row["actor"] = "forger"
    forged = audit.entry_hash(row["prev_hash"], row)
    _raw(engine, f"UPDATE audit_log SET actor = 'forger', hash = '{forged}' WHERE n = 2")
    assert audit.verify(engine) == (False, 3)  # entry 3 still links to the old hash


def test_cli_audit_verify(engine, database_url, tmp_path):
    _append(engine, 3)
    env = {
        **os.environ,
        "DISCLOSURE_DATABASE_URL": database_url,
        "DISCLOSURE_DATA_DIR": str(tmp_path / "var"),
    }

    def verify() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "portal.cli", "audit", "verify"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    ok = verify()
    assert ok.returncode == 0, ok.stderr
    assert "校验通过" in ok.stdout
    _raw(engine, "UPDATE audit_log SET target_id = 'YX20261127-999999' WHERE n = 2")
    bad = verify()
    assert bad.returncode == 1
    assert "第 2 条" in bad.stderr and "YX20261127-999999" in bad.stderr
