"""The audit log: every action on requests, users and tokens (who, when, what, before/after).

Append-only and hash-chained. Entry n stores prev_hash (the hash of entry n-1, or 64 zeros for
the first) and hash = sha256(prev_hash + canonical JSON of the entry), where the entry is
{n, at, actor, action, target_type, target_id, before, after}. Changing, removing or reordering
any entry breaks the chain from there on; `verify` finds the first entry where it breaks.
The database also refuses UPDATE and DELETE on the table (triggers, migration 0003).

`append` runs in the caller's transaction, so an action and its audit entry commit together.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from publishing import clock
from publishing.request_models import AUDIT

GENESIS = "0" * 64
AUDIT_LOCK_ID = 7_261_129


def _plain(value: Any) -> Any:
    """JSON-safe and exactly what the database gives back (dates as ISO strings)."""
    return None if value is None else json.loads(json.dumps(value, ensure_ascii=False, default=str))


def _at(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def canonical(entry: dict[str, Any]) -> str:
    body = {
        "n": int(entry["n"]),
        "at": _at(entry["at"]),
        "actor": entry["actor"],
        "action": entry["action"],
        "target_type": entry["target_type"],
        "target_id": entry["target_id"],
        "before": entry["before"],
        "after": entry["after"],
    }
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def entry_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(entry)).encode()).hexdigest()


def _lock(conn: Connection) -> None:
    """Appends are serialised so that each entry links to the one before it (SQLite: the
    caller's write transaction already holds the database lock)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({AUDIT_LOCK_ID})")


def append(
    conn: Connection,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | None = None,
    before: Any = None,
    after: Any = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    _lock(conn)
    last = conn.execute(select(AUDIT.c.n, AUDIT.c.hash).order_by(AUDIT.c.n.desc()).limit(1)).first()
    n, prev = (last.n + 1, last.hash) if last else (1, GENESIS)
    entry = {
        "n": n,
        "at": at or clock.now(),
        "actor": actor,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "before": _plain(before),
        "after": _plain(after),
    }
    entry["prev_hash"] = prev
    entry["hash"] = entry_hash(prev, entry)
    conn.execute(insert(AUDIT).values(**entry))
    return entry


def verify(engine: Engine, batch: int = 5000) -> tuple[bool, int | None]:
    """(True, None) when the whole chain holds; else (False, n of the first bad entry)."""
    expected_n, prev = 1, GENESIS
    with engine.connect() as conn:
        after = 0
        while True:
            rows = (
                conn.execute(
                    select(AUDIT).where(AUDIT.c.n > after).order_by(AUDIT.c.n).limit(batch)
                )
                .mappings()
                .all()
            )
            if not rows:
                return True, None
            for row in rows:
                entry = dict(row)
                if (
                    entry["n"] != expected_n
                    or entry["prev_hash"] != prev
                    or entry_hash(prev, entry) != entry["hash"]
                ):
                    return False, int(entry["n"])
                expected_n, prev = entry["n"] + 1, entry["hash"]
            after = rows[-1]["n"]


def entry(engine_or_conn: Engine | Connection, n: int) -> dict[str, Any] | None:
    def fetch(conn: Connection) -> dict[str, Any] | None:
        row = conn.execute(select(AUDIT).where(AUDIT.c.n == n)).mappings().first()
        return dict(row) if row else None

    if isinstance(engine_or_conn, Engine):
        with engine_or_conn.connect() as conn:
            return fetch(conn)
    return fetch(engine_or_conn)


def for_target(conn: Connection, target_type: str, target_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(AUDIT)
        .where(AUDIT.c.target_type == target_type, AUDIT.c.target_id == target_id)
        .order_by(AUDIT.c.n)
    )
    return [dict(r) for r in rows.mappings()]
