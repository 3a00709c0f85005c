"""The audit log: append-only (the database refuses changes), hash-chained with a key (a change
made around the triggers is found, and where, also when every hash was computed again without
the key), anchored outside the database (a tail cut off is found), entries of the unkeyed
scheme still verify, and `disclosure audit verify` says so by its exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import DatabaseError

from publishing import audit, worker
from publishing.db import MIGRATIONS_DIR, upgrade, writer_connection
from publishing.request_models import AUDIT
from publishing.settings import get_settings


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


def _raw(engine, change: str | Callable) -> None:
    """Change the table around its append-only triggers, as an intruder with DBA rights would
    (`change`: SQL, or a function of the connection)."""
    run = change if callable(change) else (lambda conn: conn.execute(text(change)))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
            run(conn)
            conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
            run(conn)


def _rows(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(AUDIT).order_by(AUDIT.c.n)).mappings()]


def _rehash(
    engine, hasher: Callable[[str, dict], str], edit: Callable[[dict], None], upto: int = 10**9
) -> None:
    """Edit entries and compute their hashes again with `hasher` (entries up to n = `upto`; the
    one after them is linked to the new hashes), all in the database."""

    def rewrite(conn) -> None:
        prev = audit.GENESIS
        for row in _rows(engine):
            edit(row)
            row.update(prev_hash=prev, hash=hasher(prev, row) if row["n"] <= upto else row["hash"])
            values = {k: row[k] for k in ("actor", "prev_hash", "hash")}
            conn.execute(update(AUDIT).where(AUDIT.c.n == row["n"]).values(values))
            if row["n"] > upto:
                return
            prev = row["hash"]

    _raw(engine, rewrite)


def test_chain_links_every_entry(engine):
    assert audit.verify(engine) == (True, None)
    _append(engine, 5)
    with engine.connect() as conn:
        rows = conn.execute(select(AUDIT).order_by(AUDIT.c.n)).mappings().all()
    assert [r["n"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["prev_hash"] == audit.GENESIS
    for prev, row in zip(rows, rows[1:], strict=False):
        assert row["prev_hash"] == prev["hash"]
        assert row["hash"] == audit.entry_hash(prev["hash"], dict(row), audit.chain_key())
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
    forged = audit.entry_hash(row["prev_hash"], row, audit.chain_key())  # even with the key
    _raw(engine, f"UPDATE audit_log SET actor = 'forger', hash = '{forged}' WHERE n = 2")
    assert audit.verify(engine) == (False, 3)  # entry 3 still links to the old hash


def _forge_actor(row: dict) -> None:
    if row["n"] == 2:
        row["actor"] = "forger"


@pytest.mark.parametrize(
    "hasher",
    [
        pytest.param(audit.legacy_hash, id="unkeyed-sha256"),
        pytest.param(
            lambda prev, row: audit.entry_hash(prev, row, audit.chain_key("a guess" * 6)),
            id="another-key",
        ),
    ],
)
def test_the_whole_chain_computed_again_without_the_key_is_found(engine, hasher):
    """Someone with only the database changes an actor and computes every hash again: without
    the key the chain is not the keyed one, and unkeyed hashes pass only before a keyed entry."""
    _append(engine, 5)
    _rehash(engine, hasher, _forge_actor)
    assert [r["actor"] for r in _rows(engine)][:3] == ["tester0", "forger", "tester0"]
    assert audit.verify(engine) == (False, 1)


def _insert_unkeyed(engine, count: int) -> None:
    """Entries as the code before the keyed chain wrote them (sha256 without a key)."""
    with engine.begin() as conn:
        last = audit.head(conn)
        n, prev = (last[0] + 1, last[1]) if last else (1, audit.GENESIS)
        for i in range(count):
            entry = {
                "n": n + i,
                "at": datetime(2026, 11, 20, 9, i, tzinfo=UTC),
                "actor": "cli",
                "action": "user.add",
                "target_type": "user",
                "target_id": f"old{i}",
                "before": None,
                "after": {"role": "reviewer"},
            }
            entry.update(prev_hash=prev, hash=audit.legacy_hash(prev, entry))
            conn.execute(insert(AUDIT).values(**entry))
            prev = entry["hash"]


def _downgrade(engine, revision: str) -> None:
    """The later migrations undone for real (a stamp alone would leave their tables behind)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_unkeyed_entries_from_before_verify_once_the_migration_sealed_them(engine):
    _insert_unkeyed(engine, 3)
    assert audit.verify(engine) == (False, 1)  # nothing keyed vouches for them yet
    _downgrade(engine, "0005_login_sources")  # the database as the release before left it
    upgrade(engine)  # migration 0006 appends the keyed entry that seals them
    rows = _rows(engine)
    assert [(r["n"], r["action"]) for r in rows[2:]] == [(3, "user.add"), (4, "audit.keyed")]
    assert rows[3]["after"] == {"unkeyed_entries": 3}
    assert audit.verify(engine) == (True, None)
    _append(engine, 2)
    assert audit.verify(engine) == (True, None)
    # the unkeyed entries changed and their hashes computed again: the seal covers the old ones
    _rehash(engine, audit.legacy_hash, _forge_actor, upto=3)
    assert audit.verify(engine) == (False, 4)
    # every entry computed again without the key: nothing keyed vouches for them any more
    _rehash(engine, audit.legacy_hash, _forge_actor)
    assert audit.verify(engine) == (False, 1)


def test_unkeyed_entries_cannot_follow_a_keyed_one(engine):
    _append(engine, 2)
    _insert_unkeyed(engine, 2)
    assert audit.verify(engine) == (False, 3)


def test_a_tail_cut_off_is_found_against_the_anchors(engine, tmp_path):
    path = tmp_path / "anchors.jsonl"
    _append(engine, 3)
    first = audit.record_anchor(engine, path)
    with engine.connect() as conn:
        assert (first.n, first.hash) == audit.head(conn)
    assert audit.record_anchor(engine, path) is None  # nothing new: nothing written
    _append(engine, 2)
    assert audit.record_anchor(engine, path).n == 5
    anchors = audit.read_anchors(path)
    assert [a.n for a in anchors] == [3, 5]
    assert audit.check_anchors(engine, anchors) is None  # untouched
    _raw(engine, "DELETE FROM audit_log WHERE n > 3")
    assert audit.verify(engine) == (True, None)  # what is left is a whole chain ...
    assert audit.check_anchors(engine, anchors) == anchors[1]  # ... but not the anchored one
    _append(engine, 2)  # new entries where the deleted ones were do not hide it
    assert audit.verify(engine) == (True, None)
    assert audit.check_anchors(engine, audit.read_anchors(path)) == anchors[1]


def test_the_worker_anchors_the_head(engine, caplog):
    path = get_settings().audit_anchors_path

    def run() -> dict | None:  # a restarted worker each time: the job is due at once
        job = [j for j in worker.default_jobs() if j.name == "audit-anchor"]
        return worker.run_due(engine, job)["audit-anchor"]

    assert run() is None and not path.exists()  # an empty log
    _append(engine, 2)
    done = run()
    with engine.connect() as conn:
        assert (done["n"], done["hash"]) == audit.head(conn)
    assert json.loads(path.read_text().splitlines()[-1]) == done
    assert run() is None  # the same head is not written twice
    _raw(engine, "DELETE FROM audit_log WHERE n = 2")
    run()
    assert "its tail was deleted" in caplog.text
    assert [a.n for a in audit.read_anchors(path)] == [2, 1]


def test_cli_audit_verify(engine, database_url, tmp_path):
    _append(engine, 3)
    env = {
        **os.environ,
        "DISCLOSURE_DATABASE_URL": database_url,
        "DISCLOSURE_DATA_DIR": str(tmp_path / "var"),
    }

    def verify(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "portal.cli", "audit", "verify", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    ok = verify()
    assert ok.returncode == 0, ok.stderr
    assert "校验通过" in ok.stdout and "没有锚点文件" in ok.stdout
    worker.job_audit_anchor(engine)  # in the data directory, where verify looks by default
    anchored = verify()
    assert anchored.returncode == 0, anchored.stderr
    assert "1 个锚点（至第 3 条）均相符" in anchored.stdout
    _raw(engine, "DELETE FROM audit_log WHERE n = 3")
    cut = verify()
    assert cut.returncode == 1
    assert "锚定的第 3 条" in cut.stderr
    elsewhere = tmp_path / "copy.jsonl"
    elsewhere.write_text(get_settings().audit_anchors_path.read_text())
    assert verify("--anchor", str(elsewhere)).returncode == 1
    assert verify("--anchor", str(tmp_path / "none.jsonl")).returncode == 2
    _raw(engine, "UPDATE audit_log SET target_id = 'YX20261127-999999' WHERE n = 2")
    bad = verify()
    assert bad.returncode == 1
    assert "第 2 条" in bad.stderr and "YX20261127-999999" in bad.stderr


def test_a_half_written_anchor_line_does_not_stop_anchoring(engine, tmp_path):
    path = tmp_path / "anchors.jsonl"
    _append(engine, 2)
    assert audit.record_anchor(engine, path).n == 2
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"n": 2, "ha')  # the process died mid-write
    _append(engine, 1)
    assert audit.record_anchor(engine, path).n == 3
    assert [a.n for a in audit.read_anchors(path)] == [2, 3]  # the new anchor on a line of its own
    assert audit.check_anchors(engine, audit.read_anchors(path)) is None
