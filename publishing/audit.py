"""The audit log: every action on requests, users and tokens (who, when, what, before/after).

Append-only and hash-chained with a key. Entry n stores prev_hash (the hash of entry n-1, or 64
zeros for the first) and hash = HMAC-SHA256(key, prev_hash + canonical JSON of the entry), where
the entry is {n, at, actor, action, target_type, target_id, before, after} and the key is
derived from DISCLOSURE_AUDIT_KEY (default: DISCLOSURE_SECRET_KEY). Changing, removing or
reordering any entry breaks the chain from there on, and without the key nobody can compute it
again; `verify` finds the first entry where it breaks.

Entries written before the chain was keyed have hash = sha256(prev_hash + canonical JSON)
(`legacy_hash`). They verify only as the chain's beginning and only when a keyed entry follows
them (migration 0006 appended one, action `audit.keyed`), whose keyed hash covers theirs: an
unkeyed entry after a keyed one, or a chain that ends in unkeyed entries, is tampering.

A chain cannot tell that its tail was cut off. The worker therefore records the head (n, hash)
outside the database, in an anchor file (and its log); `check_anchors` finds an anchored entry
that is gone or changed.

The database also refuses UPDATE and DELETE on the table (triggers, migration 0003).
`append` runs in the caller's transaction, so an action and its audit entry commit together.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from publishing import clock, locks
from publishing.request_models import AUDIT
from publishing.settings import get_settings

GENESIS = "0" * 64
AUDIT_LOCK_ID = locks.AUDIT
KEY_PURPOSE = b"disclosure audit chain v1"  # the chain's key is derived, never the setting itself


@dataclass(frozen=True)
class Anchor:
    """The head of the chain as the worker saw it at `at`."""

    n: int
    hash: str
    at: str


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


def chain_key(material: str | None = None) -> bytes:
    """The HMAC key, derived from `material` (default: the audit key setting)."""
    material = get_settings().audit_key if material is None else material
    return hmac.new(material.encode(), KEY_PURPOSE, hashlib.sha256).digest()


def entry_hash(prev_hash: str, entry: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, (prev_hash + canonical(entry)).encode(), hashlib.sha256).hexdigest()


def legacy_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    """The unkeyed hash of the entries written before the chain was keyed."""
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
    entry["hash"] = entry_hash(prev, entry, chain_key())
    conn.execute(insert(AUDIT).values(**entry))
    return entry


def _entries(engine: Engine, batch: int) -> Iterator[dict[str, Any]]:
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
                return
            yield from (dict(row) for row in rows)
            after = rows[-1]["n"]


def verify(engine: Engine, batch: int = 5000, key: bytes | None = None) -> tuple[bool, int | None]:
    """(True, None) when the whole chain holds; else (False, n of the first bad entry)."""
    key = key or chain_key()
    expected_n, prev = 1, GENESIS
    keyed = False  # a keyed entry was seen: no unkeyed one may follow
    unkeyed_from = None  # the first unkeyed entry that no keyed entry vouches for yet
    for entry in _entries(engine, batch):
        n = int(entry["n"])
        if n != expected_n or entry["prev_hash"] != prev:
            return False, n
        if hmac.compare_digest(entry_hash(prev, entry, key), entry["hash"]):
            keyed, unkeyed_from = True, None
        elif not keyed and legacy_hash(prev, entry) == entry["hash"]:
            unkeyed_from = unkeyed_from or n
        else:
            return False, n
        expected_n, prev = n + 1, entry["hash"]
    if unkeyed_from is not None:
        return False, unkeyed_from
    return True, None


def seal_unkeyed(conn: Connection) -> dict[str, Any] | None:
    """Append a keyed entry after unkeyed ones (migration 0006), so that they verify as the
    chain's beginning; None when the log is empty or already ends in a keyed entry."""
    last = conn.execute(select(AUDIT).order_by(AUDIT.c.n.desc()).limit(1)).mappings().first()
    if last is None or entry_hash(last["prev_hash"], dict(last), chain_key()) == last["hash"]:
        return None
    return append(
        conn,
        actor="system",
        action="audit.keyed",
        target_type="audit",
        after={"unkeyed_entries": int(last["n"])},
    )


def head(conn: Connection) -> tuple[int, str] | None:
    last = conn.execute(select(AUDIT.c.n, AUDIT.c.hash).order_by(AUDIT.c.n.desc()).limit(1)).first()
    return (int(last.n), last.hash) if last else None


def _anchor(line: str) -> Anchor:
    data = json.loads(line)
    return Anchor(int(data["n"]), str(data["hash"]), str(data["at"]))


def read_anchors(path: Path) -> list[Anchor]:
    """The anchors in the file, oldest first (ValueError for a line that is not one)."""
    anchors = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            anchors.append(_anchor(line))
        except (ValueError, KeyError, TypeError) as err:
            if number == len(lines) or _half_written(line):
                continue  # cut short by a crash while it was written: no anchor, not tampering
            raise ValueError(f"{path} 第 {number} 行不是锚点:{line[:80]!r}") from err
    return anchors


def _half_written(line: str) -> bool:
    """A line that is the start of an anchor's JSON and nothing else (a crash mid-write)."""
    return line.startswith('{"n"') and not line.rstrip().endswith("}")


def last_anchor(path: Path) -> Anchor | None:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 4096))  # a line is ~120 bytes
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):  # a line cut short by a crash must not stop anchoring for good
        try:
            return _anchor(line)
        except (ValueError, KeyError, TypeError):
            continue
    return None


def record_anchor(engine: Engine, path: Path) -> Anchor | None:
    """Append the chain's head to the anchor file when it moved; the new anchor, or None."""
    with engine.connect() as conn:
        top = head(conn)
    last = last_anchor(path)
    if top is None or (last and (last.n, last.hash) == top):
        return None
    anchor = Anchor(top[0], top[1], clock.now().isoformat(timespec="seconds"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as out:  # appends go to the end whatever is read
        size = out.seek(0, os.SEEK_END)
        if size:
            out.seek(size - 1)
            if out.read(1) != b"\n":
                out.write(b"\n")  # after a line a crash cut short: start a new one
        out.write((json.dumps(asdict(anchor)) + "\n").encode())
    return anchor


def check_anchors(engine: Engine, anchors: Iterable[Anchor], batch: int = 1000) -> Anchor | None:
    """The first anchor whose entry is no longer in the chain with its hash; None if all are."""
    anchors = list(anchors)
    held: dict[int, str] = {}
    wanted = sorted({a.n for a in anchors})
    with engine.connect() as conn:
        for i in range(0, len(wanted), batch):
            rows = conn.execute(
                select(AUDIT.c.n, AUDIT.c.hash).where(AUDIT.c.n.in_(wanted[i : i + batch]))
            )
            held.update((int(r.n), r.hash) for r in rows)
    return next((a for a in anchors if held.get(a.n) != a.hash), None)


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
