"""Stable ids derived from a record's kind and natural key: database key, URL slug, search
document id and (with the version) feed guid, the same across reloads."""

from __future__ import annotations

import hashlib

from publishing.contract import KIND_PREFIX


def _digest(parts: tuple[str, ...], size: int) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=size).hexdigest()


def record_id(kind: str, identity: tuple[str, ...]) -> str:
    return f"{KIND_PREFIX[kind]}-{_digest((kind, *identity), 8)}"


def group_key(kind: str, natural_key: tuple[str, ...]) -> str:
    return f"{KIND_PREFIX[kind]}-{_digest((kind, *natural_key), 8)}"


def issue_id(publisher: str, issue_no: str) -> str:
    return f"bi-{_digest((publisher, issue_no), 6)}"


def bytes_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()
