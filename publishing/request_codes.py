"""The numbers and codes a request is known by: its tracking number (YX20261127-000123, from a
counter per Beijing day) and its access code (shown once to the applicant; only a salted hash is
stored, and with an idempotency key the code is derived from it and the secret so that a
repeated submission can show it again), and how either is read as people type it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from datetime import date

from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from publishing.request_models import COUNTERS

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
CODE_LENGTH = 10
TRACKING_DIGITS = 6  # YX20261127-000123: what tracking_number writes and _TRACKING accepts
TRACKING_MAX = 10**TRACKING_DIGITS - 1
_TRACKING = re.compile(rf"^YX\d{{8}}-\d{{{TRACKING_DIGITS}}}$")
_DASHES = str.maketrans(dict.fromkeys("‐‑‒–—―−", "-"))


def _secret() -> bytes:
    from publishing.settings import get_settings

    return get_settings().secret_key.encode()


def new_access_code(idem_key: str | None = None) -> str:
    """Random; or, with an idempotency key, derived from it and the secret, so that a repeated
    submission can show the same receipt again (the code itself is never stored)."""
    if idem_key is None:
        return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    digest = hmac.new(_secret(), ("access-code:" + idem_key).encode(), hashlib.sha256).digest()
    return "".join(CODE_ALPHABET[b % len(CODE_ALPHABET)] for b in digest[:CODE_LENGTH])


def format_code(code: str) -> str:
    return f"{code[:5]}-{code[5:]}"


def normalize_tracking_no(raw: str | None) -> str:
    """A tracking number as people type it: full-width forms (Chinese input methods) and other
    dashes made ASCII, spaces dropped, letters upper-case. The lookup compares it exactly."""
    text = unicodedata.normalize("NFKC", raw or "").translate(_DASHES)
    return "".join(text.split()).upper()


def normalize_access_code(raw: str | None) -> str:
    """An access code as people type it: full-width forms (Chinese input methods) made ASCII
    first, as for the tracking number; then upper-case, and dashes, spaces and any other
    separator dropped."""
    text = unicodedata.normalize("NFKC", raw or "")
    return re.sub(r"[^0-9A-Z]", "", text.upper())


def hash_code(code: str) -> str:
    salt = secrets.token_hex(8)
    return f"sha256${salt}${hashlib.sha256((salt + code).encode()).hexdigest()}"


def code_matches(stored: str, raw: str | None) -> bool:
    code = normalize_access_code(raw)
    try:
        _, salt, digest = stored.split("$")
    except ValueError:
        return False
    return hmac.compare_digest(hashlib.sha256((salt + code).encode()).hexdigest(), digest)


def next_number(conn: Connection, day: date) -> int:
    """The day's next tracking-number counter, in the caller's transaction (one upsert: two
    submissions at once never draw the same number)."""
    key = day.strftime("%Y%m%d")
    ins = pg_insert(COUNTERS) if conn.dialect.name == "postgresql" else sqlite_insert(COUNTERS)
    stmt = (
        ins.values(day=key, n=1)
        .on_conflict_do_update(index_elements=[COUNTERS.c.day], set_={"n": COUNTERS.c.n + 1})
        .returning(COUNTERS.c.n)
    )
    return int(conn.execute(stmt).scalar_one())


class CounterFull(ValueError):
    """The day's counter cannot be moved on without running out of tracking numbers."""


def skip_numbers(conn: Connection, day: date, gap: int) -> tuple[int, int]:
    """Move the day's counter `gap` numbers past its current value (a day with no counter yet
    counts as 0), in the caller's transaction; (before, after). CounterFull, and nothing moved
    once the caller rolls back, when fewer than `gap` numbers would be left for the rest of the
    day: a counter past TRACKING_MAX makes numbers that the format cannot hold."""
    key = day.strftime("%Y%m%d")
    ins = pg_insert(COUNTERS) if conn.dialect.name == "postgresql" else sqlite_insert(COUNTERS)
    stmt = (
        ins.values(day=key, n=gap)
        .on_conflict_do_update(index_elements=[COUNTERS.c.day], set_={"n": COUNTERS.c.n + gap})
        .returning(COUNTERS.c.n)
    )
    after = int(conn.execute(stmt).scalar_one())
    if after > TRACKING_MAX - gap:
        raise CounterFull(
            f"{key} 的受理编号计数器已到 {after - gap}，再跳过 {gap} 个后剩余编号不足"
            f"（编号最多 {TRACKING_DIGITS} 位，即 {TRACKING_MAX}）"
        )
    return after - gap, after


def tracking_number(day: date, n: int) -> str:
    return f"YX{day:%Y%m%d}-{n:0{TRACKING_DIGITS}d}"


def valid_tracking_no(value: str) -> bool:
    return bool(_TRACKING.fullmatch(value or ""))
