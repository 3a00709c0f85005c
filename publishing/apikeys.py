"""API keys: optional, for departments and re-users that need a higher request rate.

Only the SHA-256 of a key is stored (table `api_keys`, migration 0004), with its first
HINT_LENGTH characters (migration 0007) so that one key of a holder can be named and revoked; the
key itself is shown once, when it is created. A key has a name (who holds it), an optional rate
limit of its own (requests per minute; None = the default for keys) and may be revoked.

`generation` changes whenever a key is added or revoked: the portal's processes compare it with
what they cached (portal.ratelimit.KeyCache), so a revocation applies everywhere within a second.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    String,
    Table,
    UniqueConstraint,
    func,
    insert,
    select,
    update,
)
from sqlmodel import SQLModel

from publishing import audit, clock
from publishing.db import writer_connection

API_KEYS = Table(
    "api_keys",
    SQLModel.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String, nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("per_minute", Integer, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime, nullable=True),
    Column("hint", String(16), nullable=True),  # the key's first characters; None before 0007
    UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    extend_existing=True,
)
PREFIX = "dk_"
HINT_LENGTH = 10  # a key's first characters, kept (and listed) to tell a holder's keys apart
PREFIX_MIN = 7  # of them, what names one key to revoke: "dk_" and 4 more


def _utc_wall(at: datetime) -> datetime:
    """An instant as the columns (timestamp without time zone) keep it: UTC wall time. An aware
    value would be stored in the PostgreSQL server's own time zone, a naive one is kept as is."""
    return at.astimezone(UTC).replace(tzinfo=None)


class ApiKeyError(ValueError):
    """A revocation that cannot be done as asked (the message says why, in Chinese)."""


class NoSuchKey(ApiKeyError):
    """The prefix names no active key of the holder."""


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    per_minute: int | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.strip().encode()).hexdigest()


def create_key(engine: Engine, name: str, per_minute: int | None = None, actor: str = "cli") -> str:
    """Store a new key for `name` and return it (the only time it is seen in clear)."""
    key = PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(
            insert(API_KEYS).values(
                name=name,
                key_hash=hash_key(key),
                hint=key[:HINT_LENGTH],
                per_minute=per_minute,
                created_at=_utc_wall(clock.now()),
            )
        )
        audit.append(
            conn,
            actor=actor,
            action="apikey.add",
            target_type="apikey",
            target_id=name,
            after={"per_minute": per_minute, "hint": key[:HINT_LENGTH]},
        )
    return key


def revoke(engine: Engine, name: str, at: datetime | None = None, actor: str = "cli") -> int:
    """Revoke every active key of `name`; returns how many."""
    with writer_connection(engine) as conn, conn.begin():
        active = API_KEYS.c.name == name, API_KEYS.c.revoked_at.is_(None)
        hints = conn.execute(select(API_KEYS.c.hint).where(*active)).scalars().all()
        result = conn.execute(update(API_KEYS).where(*active).values(revoked_at=_utc_wall(at or clock.now())))
        if result.rowcount:
            _audit_revoked(conn, actor, name, result.rowcount, hints)
    return result.rowcount


def _audit_revoked(
    conn: Any, actor: str, name: str, revoked: int, hints: list[str | None]
) -> None:
    audit.append(
        conn,
        actor=actor,
        action="apikey.revoke",
        target_type="apikey",
        target_id=name,
        after={"revoked": revoked, "hints": hints},
    )


def _named_by(prefix: str) -> Any:
    """The condition on a key that `prefix` names: up to HINT_LENGTH characters, the start of
    its hint; longer, the whole key (what is kept of a key cannot check more of it)."""
    if len(prefix) <= HINT_LENGTH:
        return API_KEYS.c.hint.startswith(prefix, autoescape=True)
    return API_KEYS.c.key_hash == hash_key(prefix)


def revoke_one(engine: Engine, name: str, prefix: str, actor: str = "cli") -> str:
    """Revoke the one active key of `name` that starts with `prefix` (as `holders` lists it:
    at least PREFIX_MIN characters; or the whole key); returns its hint. ApiKeyError when the
    prefix is too short or names more than one active key of `name`; NoSuchKey when none."""
    prefix = prefix.strip().rstrip("…")
    if len(prefix) < PREFIX_MIN:
        raise ApiKeyError(
            f"密钥前缀至少写 {PREFIX_MIN} 个字符(apikeys list 显示每个密钥的前 {HINT_LENGTH} 个)"
        )
    with writer_connection(engine) as conn, conn.begin():
        found = conn.execute(
            select(API_KEYS.c.id, API_KEYS.c.hint).where(
                API_KEYS.c.name == name, API_KEYS.c.revoked_at.is_(None), _named_by(prefix)
            )
        ).all()
        if not found:
            raise NoSuchKey(f"{name} 没有以 {prefix} 开头的有效 API 密钥")
        if len(found) > 1:
            listed = "、".join(f"{r.hint}…" for r in found)
            raise ApiKeyError(
                f"前缀 {prefix} 对应 {name} 的 {len(found)} 个密钥({listed}),请写得更长或给出整个密钥"
            )
        key_id, hint = found[0][0], found[0][1] or prefix[:HINT_LENGTH]  # no hint: whole key
        conn.execute(update(API_KEYS).where(API_KEYS.c.id == key_id).values(revoked_at=_utc_wall(clock.now())))
        _audit_revoked(conn, actor, name, 1, [hint])
    return hint


def generation(engine: Engine) -> tuple[int, int]:
    """(keys, revoked keys): changes whenever a key is added or revoked (neither is undone).
    One aggregate over a table of a few rows per partner: cheap enough to read every second."""
    with engine.connect() as conn:
        total, revoked = conn.execute(
            select(func.count(), func.count(API_KEYS.c.revoked_at)).select_from(API_KEYS)
        ).one()
    return int(total), int(revoked)


def holders(engine: Engine) -> list[dict[str, Any]]:
    """Each key holder's active keys: name, count, per-minute limits, hints (None for a key
    made before hints were kept), newest creation time."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(API_KEYS.c.name, API_KEYS.c.per_minute, API_KEYS.c.hint, API_KEYS.c.created_at)
            .where(API_KEYS.c.revoked_at.is_(None))
            .order_by(API_KEYS.c.name, API_KEYS.c.created_at)
        ).all()
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        h = out.setdefault(
            r.name, {"name": r.name, "keys": 0, "per_minute": [], "hints": [], "created_at": None}
        )
        h["keys"] += 1
        h["per_minute"].append(r.per_minute)
        h["hints"].append(r.hint)
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
