"""API keys: optional, for departments and re-users that need a higher request rate.

Only the SHA-256 of a key is stored (table `api_keys`, migration 0004); the key itself is shown
once, when it is created. A key has a name (who holds it), an optional rate limit of its own
(requests per minute; None = the default for keys) and may be revoked.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    String,
    Table,
    UniqueConstraint,
    insert,
    select,
    update,
)
from sqlmodel import SQLModel

from publishing import audit, clock

API_KEYS = Table(
    "api_keys",
    SQLModel.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String, nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("per_minute", Integer, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime, nullable=True),
    UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    extend_existing=True,
)
PREFIX = "dk_"


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    per_minute: int | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.strip().encode()).hexdigest()


def create_key(
    engine: Engine, name: str, per_minute: int | None = None, actor: str = "cli"
) -> str:
    """Store a new key for `name` and return it (the only time it is seen in clear)."""
    key = PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(
            insert(API_KEYS).values(
                name=name, key_hash=hash_key(key), per_minute=per_minute, created_at=clock.now()
            )
        )
        audit.append(conn, actor=actor, action="apikey.add", target_type="apikey", target_id=name,
                     after={"per_minute": per_minute, "hint": key[:10]})
    return key


def revoke(engine: Engine, name: str, at: datetime | None = None, actor: str = "cli") -> int:
    """Revoke every active key of `name`; returns how many."""
    with engine.begin() as conn:
        result = conn.execute(
            update(API_KEYS)
            .where(API_KEYS.c.name == name, API_KEYS.c.revoked_at.is_(None))
            .values(revoked_at=at or clock.now())
        )
        if result.rowcount:
            audit.append(conn, actor=actor, action="apikey.revoke", target_type="apikey",
                         target_id=name, after={"revoked": result.rowcount})
    return result.rowcount


def holders(engine: Engine) -> list[dict[str, Any]]:
    """Each key holder's active keys: name, count, per-minute limits, newest creation time."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(API_KEYS.c.name, API_KEYS.c.per_minute, API_KEYS.c.created_at)
            .where(API_KEYS.c.revoked_at.is_(None))
            .order_by(API_KEYS.c.name, API_KEYS.c.created_at)
        ).all()
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        h = out.setdefault(r.name, {"name": r.name, "keys": 0, "per_minute": [], "created_at": None})
        h["keys"] += 1
        h["per_minute"].append(r.per_minute)
        h["created_at"] = r.created_at
    return list(out.values())


def lookup(engine: Engine, key: str) -> ApiKey | None:
    """The active key with this value, or None."""
    with engine.connect() as conn:
        row = conn.execute(
            select(API_KEYS.c.id, API_KEYS.c.name, API_KEYS.c.per_minute).where(
                API_KEYS.c.key_hash == hash_key(key), API_KEYS.c.revoked_at.is_(None)
            )
        ).first()
    return ApiKey(row.id, row.name, row.per_minute) if row else None
