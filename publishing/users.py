"""The back office's users: argon2 password hashes, roles, lockout, API tokens (stored hashed).

Roles: reviewer (accepts requests, asks for more material), approver (also approves and
rejects), admin (everything). Users are made with `disclosure users add NAME --role ROLE`; the
same command resets a password, which ends the user's sessions and revokes its API tokens.
`disclosure users disable NAME` does both and refuses logins until `users enable NAME`;
`disclosure users revoke NAME [--hint H]` revokes the user's tokens (or one).

Lockout (login) works at two levels, so that guessing is stopped without handing anyone a way
to lock the real user out:

- per (name as typed, client address): `failures` wrong passwords in a row from one address lock
  that address out of that name for `minutes`. Someone typing wrong passwords for a colleague's
  name locks out only themselves. Names that do not exist are counted and locked the same way.
- per account: `account_failures` wrong passwords from any addresses (a guess spread over many)
  lock the account for `minutes`, doubling at each further `account_failures` up to a day — but
  not for the addresses its owner has logged in from in the last KNOWN_DAYS days.

No answer tells which names exist: a wrong password gets the answer an unknown name gets, an
address lock answers every name alike, and the account lock answers as for an unknown name. While
either lock holds, no password is checked, so guessing cannot go on behind it. The client address
is the one the portal's rate limits use (uvicorn applies the trusted proxy's X-Forwarded-For);
the login rate limit counts per source_key too, so that new addresses in one /64 do not add up.

The audit log cannot be pruned, so attempts refused by an address lock do not each add an entry:
the failure that starts the lock is audited, then the first attempt refused by it
("login.locked"); the further ones are counted in the row's `failures` (0 while a lock starts)
and, when the lock is over (the pair's next login, the worker's forget_logins, or a reset by
add_user), audited once as "login.locked_attempts" with the count (`refused`).

A failed login's audit entry names the user when the name is a user's; any other name typed (a
password in the name field, say) only by its length and a keyed fingerprint (unknown_name).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, delete, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from publishing import audit, clock
from publishing.db import writer_connection
from publishing.request_models import LOGIN_SOURCES, TOKENS, USERS
from publishing.roles import ROLES
from publishing.safetext import usable

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password of anyone")
TOKEN_PREFIX = "dsk_"
HINT_LENGTH = 10  # a token's first characters, kept to tell the user's tokens apart
HINT_MIN = 7  # of them, what names one token to revoke: its prefix "dsk_" and 3 more
MIN_PASSWORD = 10
LOCKOUT_FAILURES = 5  # wrong passwords in a row from one address, for one name
LOCKOUT_MINUTES = 15
ACCOUNT_FAILURES = 50  # wrong passwords from all addresses, for one account
ACCOUNT_LOCK_MAX = timedelta(days=1)
KNOWN_DAYS = 90  # an address the owner logged in from within this is spared the account lock
FAILURE_MEMORY = timedelta(days=1)  # wrong passwords further apart than this do not add up
NAME_FINGERPRINT = 16  # hex characters of the keyed hash the audit log keeps of an unknown name
LOGIN_KEY = 32  # hex characters of the keyed hash that names a login_sources row
UNLOCKED_UNKNOWN = "unknown name"  # a lock's name in the worker's entry when it is no user's
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
    locked_until: datetime | None = None  # set when this address is locked out of the name


NAME_MAX = 40  # the audit log's target_id: a longer name failed to be audited on PostgreSQL


def _principal(row) -> Principal:
    return Principal(row.id, row.name, row.role, row.session_epoch)


def _check_new(name: str, role: str, password: str) -> None:
    if role not in ROLES:
        raise UserError(f"角色应为 {' | '.join(ROLES)} 之一")
    if not name or len(name) > NAME_MAX or not name.isprintable() or " " in name:
        raise UserError(f"用户名应为 1–{NAME_MAX} 个字符,不含空格")
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
                role=role,  # `active` stays: a disabled account is enabled by `users enable` only
                failed_logins=0,
                locked_until=None,
                session_epoch=row.session_epoch + 1,
                updated_at=now,
            )
        )
        # a reset also lifts the address locks on the name (their refused attempts audited)
        for pair in _locked_pairs(conn, LOGIN_SOURCES.c.name == login_key(name)):
            _end_lock(conn, pair, actor, name)
        conn.execute(
            update(LOGIN_SOURCES)
            .where(LOGIN_SOURCES.c.name == login_key(name))
            .values(failures=0, locked_until=None)
        )
        # a reset answers a leaked password or a departed holder: its tokens go with it
        revoked = _revoke(conn, row.id, now)
        audit.append(
            conn,
            actor=actor,
            action="user.reset",
            target_type="user",
            target_id=name,
            before={"role": row.role, "active": row.active},
            after={"role": role, "active": row.active, "tokens_revoked": revoked},
        )
        return Principal(row.id, name, role, row.session_epoch + 1), False


def _user_row(conn: Connection, name: str):
    row = conn.execute(select(USERS).where(USERS.c.name == name).with_for_update()).first()
    if row is None:
        raise UserError(f"没有用户 {name}")
    return row


def _revoke(conn: Connection, user_id: int, now: datetime, hint: str | None = None) -> list[str]:
    """Revoke the user's live tokens (or the one with `hint`); the hints of those revoked."""
    where = [TOKENS.c.user_id == user_id, TOKENS.c.revoked_at.is_(None)]
    if hint is not None:  # the start of the token as shown (up to its hint), or the whole token
        where.append(TOKENS.c.hint.startswith(hint[:HINT_LENGTH], autoescape=True))
    hints = conn.execute(select(TOKENS.c.hint).where(*where).order_by(TOKENS.c.id)).scalars().all()
    if hints:
        conn.execute(update(TOKENS).where(*where).values(revoked_at=now))
    return list(hints)


def disable_user(engine: Engine, name: str, actor: str = "cli") -> list[str]:
    """Refuse the user's logins, end its sessions and revoke its tokens (so that enabling it
    again brings none of them back); the hints of the tokens revoked."""
    now = clock.now()
    with writer_connection(engine) as conn, conn.begin():
        row = _user_row(conn, name)
        conn.execute(
            update(USERS)
            .where(USERS.c.id == row.id)
            .values(active=False, session_epoch=row.session_epoch + 1, updated_at=now)
        )
        revoked = _revoke(conn, row.id, now)
        audit.append(
            conn,
            actor=actor,
            action="user.disable",
            target_type="user",
            target_id=name,
            before={"active": row.active},
            after={"active": False, "tokens_revoked": revoked},
        )
    return revoked


def enable_user(engine: Engine, name: str, actor: str = "cli") -> Principal:
    """Let a disabled user log in again with its password (it needs new tokens)."""
    with writer_connection(engine) as conn, conn.begin():
        row = _user_row(conn, name)
        conn.execute(
            update(USERS).where(USERS.c.id == row.id).values(active=True, updated_at=clock.now())
        )
        audit.append(
            conn,
            actor=actor,
            action="user.enable",
            target_type="user",
            target_id=name,
            before={"active": row.active},
            after={"active": True},
        )
    return _principal(row)


def revoke_tokens(
    engine: Engine, name: str, hint: str | None = None, actor: str = "cli"
) -> list[str]:
    """Revoke the user's API tokens, or only those starting with `hint` (at least
    HINT_MIN characters: "dsk_" alone would name them all); the hints of those revoked
    (UserError when `hint` names no live token of the user)."""
    if hint is not None and len(hint) < HINT_MIN:
        raise UserError(f"令牌开头至少写 {HINT_MIN} 个字符（生成时显示前 {HINT_LENGTH} 个）")
    with writer_connection(engine) as conn, conn.begin():
        row = _user_row(conn, name)
        revoked = _revoke(conn, row.id, clock.now(), hint)
        if hint is not None and not revoked:
            raise UserError(f"用户 {name} 没有以 {hint} 开头的有效令牌")
        audit.append(
            conn,
            actor=actor,
            action="token.revoke",
            target_type="user",
            target_id=name,
            after={"hints": revoked},
        )
    return revoked


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def source_key(source: str | None) -> str:
    """The address a lock applies to: an IPv4 address, or the /64 network of an IPv6 one (what
    one subscriber is given: a lock per IPv6 address would be one new address away)."""
    if not source:
        return "unknown"
    try:
        ip = ipaddress.ip_address(source)
    except ValueError:
        return source[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _source_row(conn: Connection, name: str, source: str):
    """The (name, address) row, made if missing, locked until the transaction ends."""
    ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        ins(LOGIN_SOURCES)
        .values(name=name, source=source, failures=0)
        .on_conflict_do_nothing(index_elements=["name", "source"])
    )
    where = (LOGIN_SOURCES.c.name == name, LOGIN_SOURCES.c.source == source)
    return conn.execute(select(LOGIN_SOURCES).where(*where).with_for_update()).one()


def _pair_where(pair) -> tuple:
    return LOGIN_SOURCES.c.name == pair.name, LOGIN_SOURCES.c.source == pair.source


def _refused_while_locked(conn: Connection, pair, name: str, source: str | None, held: datetime):
    """An attempt the address lock refuses: counted on the pair; only the first one of the lock
    is audited (anonymous hammering must not grow the audit log without end)."""
    refused = pair.failures + 1
    conn.execute(update(LOGIN_SOURCES).where(*_pair_where(pair)).values(failures=refused))
    if refused == 1:
        _audit_login(
            conn,
            "login.locked",
            *_logged_name(conn, name),
            {"source": source, "scope": "address", "locked_until": held},
        )
    return LoginResult(None, held)


def _end_lock(conn: Connection, pair, actor: str, target: str) -> None:
    """Lift the pair's lock; when more attempts were refused than the first (audited as it
    came), one entry with their count, so that an operator sees the name was hammered."""
    if pair.failures > 1:
        _audit_login(
            conn,
            "login.locked_attempts",
            actor,
            target,
            {
                "source": pair.source,
                "scope": "address",
                "locked_until": _aware(pair.locked_until),
                "refused": pair.failures,
            },
        )
    conn.execute(
        update(LOGIN_SOURCES).where(*_pair_where(pair)).values(failures=0, locked_until=None)
    )


def _locked_pairs(conn: Connection, *where) -> list:
    """The pairs with a lock not yet lifted (perhaps over), locked until the transaction ends."""
    query = select(LOGIN_SOURCES).where(LOGIN_SOURCES.c.locked_until.is_not(None), *where)
    return list(conn.execute(query.order_by(LOGIN_SOURCES.c.name).with_for_update()))


def _address_failure(conn: Connection, pair, now: datetime, failures: int, minutes: int):
    """Count a wrong password (or an unknown name) from the address; (count, locked_until)."""
    last = _aware(pair.last_failure_at)
    count = (pair.failures if last and now - last < FAILURE_MEMORY else 0) + 1
    values: dict = {"failures": count, "last_failure_at": now}
    locked = None
    if count >= failures:
        locked = now + timedelta(minutes=minutes)
        values.update(failures=0, locked_until=locked)
    conn.execute(
        update(LOGIN_SOURCES)
        .where(LOGIN_SOURCES.c.name == pair.name, LOGIN_SOURCES.c.source == pair.source)
        .values(values)
    )
    return count, locked


def _account_lock(count: int, account_failures: int, minutes: int) -> timedelta | None:
    """How long the account locks after its count-th wrong password (None: it does not)."""
    if count < account_failures or count % account_failures:
        return None
    doublings = min(count // account_failures - 1, 16)
    return min(timedelta(minutes=minutes) * 2**doublings, ACCOUNT_LOCK_MAX)


def login(
    engine: Engine,
    name: str,
    password: str,
    *,
    failures: int = LOCKOUT_FAILURES,
    minutes: int = LOCKOUT_MINUTES,
    account_failures: int = ACCOUNT_FAILURES,
    source: str | None = None,
) -> LoginResult:
    """Check a password from the client address `source` (see the module's doc for the locks).

    user is set on success; locked_until when this address is locked out of this name (said
    for every name alike, whether it exists or not); otherwise neither, as for a wrong
    password."""
    now = clock.now()
    key, address = login_key(name), source_key(source)
    with writer_connection(engine) as conn, conn.begin():
        pair = _source_row(conn, key, address)
        held = _aware(pair.locked_until)
        if held and held > now:
            return _refused_while_locked(conn, pair, name, source, held)
        if held:  # the lock is over: its count of refused attempts is audited, then cleared
            _end_lock(conn, pair, *_logged_name(conn, name))
            pair = _source_row(conn, key, address)
        row = (
            conn.execute(
                select(USERS).where(USERS.c.name == name, USERS.c.active).with_for_update()
            ).first()
            if usable(name)  # NUL …: no user's name, and PostgreSQL cannot even compare it
            else None
        )
        if row is None:
            _verify(_DUMMY_HASH, password)  # the same time whether or not the name exists
            count, locked = _address_failure(conn, pair, now, failures, minutes)
            _audit_login(
                conn,
                "login.unknown",
                *_logged_name(conn, name),
                {"source": source, "failures": count, "locked_until": locked},
            )
            return LoginResult(None)
        account_locked = _aware(row.locked_until)
        account_locked = account_locked if account_locked and account_locked > now else None
        seen = _aware(pair.last_login_at)
        known = seen is not None and now - seen < timedelta(days=KNOWN_DAYS)
        if account_locked and not known:
            # Answered, timed and counted as for an unknown name; the password is not checked.
            _verify(_DUMMY_HASH, password)
            count, locked = _address_failure(conn, pair, now, failures, minutes)
            _audit_login(
                conn,
                "login.locked",
                name,
                name,
                {
                    "source": source,
                    "scope": "account",
                    "locked_until": account_locked,
                    "failures": count,
                },
            )
            return LoginResult(None)
        if not _verify(row.password_hash, password):
            count, locked = _address_failure(conn, pair, now, failures, minutes)
            total = row.failed_logins + 1
            values: dict = {"failed_logins": total}
            lock = _account_lock(total, account_failures, minutes)
            if lock:
                values["locked_until"] = now + lock
            conn.execute(update(USERS).where(USERS.c.id == row.id).values(values))
            _audit_login(
                conn,
                "login.failed",
                name,
                name,
                {
                    "failures": count,
                    "locked_until": locked,
                    "account_failures": total,
                    "account_locked_until": values.get("locked_until"),
                    "source": source,
                },
            )
            return LoginResult(None)
        conn.execute(
            update(LOGIN_SOURCES)
            .where(LOGIN_SOURCES.c.name == key, LOGIN_SOURCES.c.source == address)
            .values(failures=0, locked_until=None, last_login_at=now)
        )
        values = {"last_login_at": now}
        if account_locked is None:  # an attack still locking the account goes on counting
            values.update(failed_logins=0, locked_until=None)
        if _hasher.check_needs_rehash(row.password_hash):
            values["password_hash"] = _hasher.hash(password)
        conn.execute(update(USERS).where(USERS.c.id == row.id).values(values))
        _audit_login(conn, "login", name, name, {"source": source})
        return LoginResult(_principal(row))


def _audit_login(
    conn: Connection, action: str, actor: str, target: str, after: dict[str, Any]
) -> None:
    """The audit entry of a login attempt on the user `target` (for a failed one by a name
    no user has: _logged_name's actor and target)."""
    audit.append(
        conn, actor=actor, action=action, target_type="user", target_id=target, after=after
    )


def _logged_name(conn: Connection, name: str) -> tuple[str, str]:
    """(actor, target id) for the audit entry of a failed login. A user's name (disabled or
    not) as it is; any other name typed — perhaps a password in the wrong field — never in
    plain text in the permanent log, only as unknown_name(name)."""
    exists = usable(name) and conn.execute(select(USERS.c.id).where(USERS.c.name == name)).first()
    shown = name if exists else unknown_name(name)
    return shown[:80], shown[:40]


def unknown_name(name: str) -> str:
    """What the audit log keeps of a name no user has: "unknown(LENGTH) FINGERPRINT", a keyed
    hash, so that an auditor sees the same name tried again and again while nothing of it can
    be recovered without the secret key. The space keeps it apart from every user's name."""
    return f"unknown({len(name)}) {_keyed_hash('login-name:', name)[:NAME_FINGERPRINT]}"


def login_key(name: str) -> str:
    """The name of a login_sources row: a keyed hash of the name as typed (perhaps a password
    in the wrong field), never the name itself; the same name, the same row."""
    return _keyed_hash("login-source:", name)[:LOGIN_KEY]


def _keyed_hash(purpose: str, name: str) -> str:
    from publishing.settings import get_settings

    key = (purpose + get_settings().secret_key).encode()
    return hmac.new(key, name.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def forget_logins(engine: Engine, now: datetime | None = None) -> int:
    """Delete the (name, address) rows that no longer matter: no lock, no recent wrong
    password, no login within KNOWN_DAYS; returns how many (the worker runs this daily)."""
    now = now or clock.now()
    c = LOGIN_SOURCES.c
    with writer_connection(engine) as conn, conn.begin():
        _end_locks_over(conn, now)
        return conn.execute(
            delete(LOGIN_SOURCES).where(
                or_(c.locked_until.is_(None), c.locked_until < now),
                or_(c.last_failure_at.is_(None), c.last_failure_at < now - FAILURE_MEMORY),
                or_(c.last_login_at.is_(None), c.last_login_at < now - timedelta(days=KNOWN_DAYS)),
            )
        ).rowcount


def _end_locks_over(conn: Connection, now: datetime) -> None:
    """Lift the locks that are over, auditing their counts of refused attempts (a pair nobody
    tries again would otherwise be forgotten with its count). A row keeps only the keyed hash
    of the name: a user's name is found by it, any other is shown as UNLOCKED_UNKNOWN."""
    over = _locked_pairs(conn, LOGIN_SOURCES.c.locked_until <= now)
    if not over:
        return
    names = {login_key(n): n for n in conn.execute(select(USERS.c.name)).scalars()}
    for pair in over:
        shown = names.get(pair.name, UNLOCKED_UNKNOWN)
        _end_lock(conn, pair, shown, shown)


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
        row = _user_row(conn, name)
        if not row.active:
            raise UserError(f"用户 {name} 已停用")
        conn.execute(
            insert(TOKENS).values(
                user_id=row.id,
                token_hash=_token_hash(token),
                hint=token[:HINT_LENGTH],
                created_at=clock.now(),
            )
        )
        audit.append(
            conn,
            actor=actor,
            action="token.add",
            target_type="user",
            target_id=name,
            after={"hint": token[:HINT_LENGTH]},
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
