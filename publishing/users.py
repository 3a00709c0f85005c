"""The back office's users: argon2 password hashes, roles, lockout, API tokens (stored hashed).

Roles: reviewer (accepts requests, asks for more material), approver (also approves and
rejects), admin (everything). Users are made with `disclosure users add NAME --role ROLE`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, insert, select, update

from publishing import audit, clock
from publishing.db import writer_connection
from publishing.request_models import TOKENS, USERS
from publishing.roles import ROLES

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password of anyone")
TOKEN_PREFIX = "dsk_"
MIN_PASSWORD = 10
LOCKOUT_FAILURES = 5
LOCKOUT_MINUTES = 15
PERMISSIONS = {
    "reviewer": {"accept", "more_info"},
    "approver": {"accept", "more_info", "approve", "reject"},
    "admin": {"accept", "more_info", "approve", "reject", "admin"},
}


class UserError(ValueError):
    pass


@dataclass(frozen=True)
class Principal:
    id: int
    name: str
    role: str
    session_epoch: int = 0

    def can(self, action: str) -> bool:
        return action in PERMISSIONS.get(self.role, set())


@dataclass(frozen=True)
class LoginResult:
    user: Principal | None
    locked_until: datetime | None = None  # set when the account is locked (now or already)


def _principal(row) -> Principal:
    return Principal(row.id, row.name, row.role, row.session_epoch)


def _check_new(name: str, role: str, password: str) -> None:
    if role not in ROLES:
        raise UserError(f"角色应为 {' | '.join(ROLES)} 之一")
    if not name or len(name) > 64 or not name.isprintable() or " " in name:
        raise UserError("用户名应为 1–64 个字符,不含空格")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"密码至少 {MIN_PASSWORD} 个字符")


def add_user(
    engine: Engine, name: str, role: str, password: str, actor: str = "cli"
) -> tuple[Principal, bool]:
    """Create the user, or reset an existing one's password and role; (user, created)."""
    _check_new(name, role, password)
    now = clock.now()
    hashed = _hasher.hash(password)
    with writer_connection(engine) as conn, conn.begin():
        row = conn.execute(select(USERS).where(USERS.c.name == name)).first()
        if row is None:
            uid = conn.execute(
                insert(USERS).values(
                    name=name,
                    password_hash=hashed,
                    role=role,
                    active=True,
                    failed_logins=0,
                    session_epoch=0,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
            audit.append(
                conn,
                actor=actor,
                action="user.add",
                target_type="user",
                target_id=name,
                after={"role": role},
            )
            return Principal(int(uid), name, role, 0), True
        conn.execute(
            update(USERS)
            .where(USERS.c.id == row.id)
            .values(
                password_hash=hashed,
                role=role,
                active=True,
                failed_logins=0,
                locked_until=None,
                session_epoch=row.session_epoch + 1,
                updated_at=now,
            )
        )
        audit.append(
            conn,
            actor=actor,
            action="user.reset",
            target_type="user",
            target_id=name,
            before={"role": row.role},
            after={"role": role},
        )
        return Principal(row.id, name, role, row.session_epoch + 1), False


def _aware(value: datetime | None) -> datetime | None:
    from datetime import UTC

    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def login(
    engine: Engine,
    name: str,
    password: str,
    *,
    failures: int = LOCKOUT_FAILURES,
    minutes: int = LOCKOUT_MINUTES,
    source: str | None = None,
) -> LoginResult:
    """Check a password; after `failures` wrong ones in a row the account locks for `minutes`.

    Only the right password learns of the lock (locked_until): a wrong one, locked or not, gets
    the answer an unknown name gets."""
    now = clock.now()
    with writer_connection(engine) as conn, conn.begin():
        row = conn.execute(select(USERS).where(USERS.c.name == name, USERS.c.active)).first()
        if row is None:
            _verify(_DUMMY_HASH, password)  # the same time whether or not the name exists
            audit.append(
                conn,
                actor=name[:80] or "?",
                action="login.unknown",
                target_type="user",
                target_id=name[:40],
                after={"source": source},
            )
            return LoginResult(None)
        locked = _aware(row.locked_until)
        # Only the right password learns of a lock: a wrong one is answered as for an unknown
        # name, so the lock does not tell which names exist.
        if locked and locked > now:
            audit.append(
                conn,
                actor=name,
                action="login.locked",
                target_type="user",
                target_id=name,
                after={"source": source},
            )
            return LoginResult(None, locked if _verify(row.password_hash, password) else None)
        if not _verify(row.password_hash, password):
            count = row.failed_logins + 1
            values: dict = {"failed_logins": count}
            if count >= failures:
                values.update(failed_logins=0, locked_until=now + timedelta(minutes=minutes))
            conn.execute(update(USERS).where(USERS.c.id == row.id).values(values))
            audit.append(
                conn,
                actor=name,
                action="login.failed",
                target_type="user",
                target_id=name,
                after={
                    "failures": count,
                    "locked_until": values.get("locked_until"),
                    "source": source,
                },
            )
            return LoginResult(None)
        values = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
        if _hasher.check_needs_rehash(row.password_hash):
            values["password_hash"] = _hasher.hash(password)
        conn.execute(update(USERS).where(USERS.c.id == row.id).values(values))
        audit.append(
            conn,
            actor=name,
            action="login",
            target_type="user",
            target_id=name,
            after={"source": source},
        )
        return LoginResult(_principal(row))


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def logout(engine: Engine, user: Principal) -> None:
    """End every session of the user (client-side sessions carry the epoch they began in)."""
    with writer_connection(engine) as conn, conn.begin():
        conn.execute(
            update(USERS)
            .where(USERS.c.id == user.id)
            .values(session_epoch=USERS.c.session_epoch + 1)
        )
        audit.append(
            conn, actor=user.name, action="logout", target_type="user", target_id=user.name
        )


def session_user(conn: Connection, user_id: int, epoch: int) -> Principal | None:
    row = conn.execute(select(USERS).where(USERS.c.id == user_id, USERS.c.active)).first()
    if row is None or row.session_epoch != epoch:
        return None
    return _principal(row)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(engine: Engine, name: str, actor: str = "cli") -> str:
    """A new API token for the user, printed once; only its SHA-256 is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with writer_connection(engine) as conn, conn.begin():
        row = conn.execute(select(USERS).where(USERS.c.name == name, USERS.c.active)).first()
        if row is None:
            raise UserError(f"没有用户 {name}")
        conn.execute(
            insert(TOKENS).values(
                user_id=row.id,
                token_hash=_token_hash(token),
                hint=token[:10],
                created_at=clock.now(),
            )
        )
        audit.append(
            conn,
            actor=actor,
            action="token.add",
            target_type="user",
            target_id=name,
            after={"hint": token[:10]},
        )
    return token


def token_user(conn: Connection, token: str) -> Principal | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = conn.execute(
        select(USERS)
        .join(TOKENS, TOKENS.c.user_id == USERS.c.id)
        .where(
            TOKENS.c.token_hash == _token_hash(token), TOKENS.c.revoked_at.is_(None), USERS.c.active
        )
    ).first()
    return _principal(row) if row else None


def user_by_name(conn: Connection, name: str) -> Principal | None:
    row = conn.execute(select(USERS).where(USERS.c.name == name)).first()
    return _principal(row) if row else None
