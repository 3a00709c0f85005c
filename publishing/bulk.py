"""Bulk writes through the DB-API driver, for the hot path of publishing.

SQLAlchemy's per-row parameter processing costs more than SQLite's own insert; here values are
adapted once per column (dates, datetimes, JSON) and handed to the driver's executemany.
Values are stored exactly as SQLAlchemy's own types store them, so ORM reads see the same data.
"""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import JSON, Connection, Date, DateTime, Table, TypeDecorator
from sqlalchemy.types import TypeEngine

Adapter = Callable[[Any], Any]


def dumps(value: Any) -> str:
    """Compact JSON, non-ASCII kept: byte for byte what json.dumps(ensure_ascii=False,
    separators=(",", ":")) writes for our values (content hashes depend on it), 5× faster."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # a lone surrogate from an escaped JSON input, or an exotic type
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def dumps_utf8(value: Any) -> bytes:
    """dumps() as UTF-8 (a lone surrogate, which no column can store, raises)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return dumps(value).encode()


def _storage_type(col_type: TypeEngine) -> TypeEngine:
    """The type the driver sees: sqlmodel's UTCDateTime decorates DateTime."""
    while isinstance(col_type, TypeDecorator):
        col_type = col_type.impl_instance
    return col_type


@lru_cache(maxsize=256)  # a batch stamps every row with the same instant
def _sqlite_datetime(v: datetime | None) -> str | None:
    # SQLAlchemy's SQLite DATETIME format, in UTC without an offset (as sqlmodel stores it).
    if v is None:
        return None
    return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


@lru_cache(maxsize=8192)
def _iso(v: date | None) -> str | None:
    """A date as SQLite stores it; a date or datetime as ISO text for COPY, which PostgreSQL
    reads as it reads psycopg's own dumps, at a fraction of the cost (dumping them took 3 of
    the 5 us a record row cost)."""
    return v.isoformat() if v is not None else None


def _json(v: Any) -> str | bytes | None:
    if v is None or isinstance(v, str | bytes):
        return v  # already serialised by the caller (once, shared with the content hash)
    return dumps(v)


def _json_text(v: Any) -> str | None:
    """PostgreSQL's COPY takes JSON as text (bytes would be copied as bytea)."""
    v = _json(v)
    return v.decode() if isinstance(v, bytes) else v


def _identity(v: Any) -> Any:
    return v


@lru_cache(maxsize=64)
def _plan(table: Table, columns: tuple[str, ...], dialect: str) -> tuple[Callable[[dict], tuple], list[str]]:
    """A row builder (dict -> tuple of driver values) and the placeholders, for a dialect
    ("copy": PostgreSQL's COPY, whose text format takes every value as text)."""
    adapters: dict[str, Adapter] = {}
    marks: list[str] = []
    mark = "?" if dialect == "sqlite" else "%s"
    for name in columns:
        col_type = _storage_type(table.c[name].type)
        if dialect == "copy" and isinstance(col_type, Date | DateTime):
            adapters[name] = _iso
            marks.append(mark)
        elif dialect == "copy" and isinstance(col_type, JSON):
            adapters[name] = _json  # UTF-8 bytes stay bytes: see _copy_cursor
            marks.append(mark)
        elif isinstance(col_type, JSON) and dialect == "sqlite":
            # JSON serialised as UTF-8 bytes is bound as they are, and stored as the TEXT they
            # spell: a million records' Python strings need not be encoded to UTF-8 again.
            adapters[name] = _json
            marks.append(f"CAST({mark} AS TEXT)")
        elif isinstance(col_type, JSON):
            adapters[name] = _json_text
            marks.append("%s::jsonb")
        elif dialect == "sqlite" and isinstance(col_type, DateTime):
            adapters[name] = _sqlite_datetime
            marks.append(mark)
        elif dialect == "sqlite" and isinstance(col_type, Date):
            adapters[name] = _iso
            marks.append(mark)
        else:
            marks.append(mark)
    # One generated function per (table, columns, dialect): a tuple display is much faster than a
    # generator over the columns, and this runs once per row of million-row files.
    parts = [f"_{i}(g({c!r}))" if c in adapters else f"g({c!r})" for i, c in enumerate(columns)]
    env = {f"_{i}": adapters[c] for i, c in enumerate(columns) if c in adapters}
    source = f"def build(d):\n    g = d.get\n    return ({', '.join(parts)},)\n"
    exec(compile(source, f"<bulk {table.name}>", "exec"), env)
    return env["build"], marks


def insert_many(conn: Connection, table: Table, columns: tuple[str, ...], dicts: Sequence[dict[str, Any]]) -> None:
    if not dicts:
        return
    if conn.dialect.name == "postgresql":
        build, _ = _plan(table, columns, "copy")
        # COPY: several times faster than a pipelined executemany of INSERTs, in the same
        # transaction (it runs on the connection SQLAlchemy holds).
        with _copy_cursor(conn) as cur, \
                cur.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for d in dicts:
                copy.write_row(build(d))
        return
    build, marks = _plan(table, columns, conn.dialect.name)
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(marks)})"
    conn.exec_driver_sql(sql, [build(d) for d in dicts])


def _copy_cursor(conn: Connection) -> Any:
    """A cursor on the connection SQLAlchemy holds, whose COPY writes bytes as the UTF-8 text
    they are (serialised JSON; none of our columns is bytea) instead of decoding it first."""
    cur = conn.connection.driver_connection.cursor()
    cur.adapters.register_dumper(bytes, _utf8_dumper())
    return cur


@lru_cache(maxsize=1)
def _utf8_dumper() -> type:
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    class Utf8TextDumper(Dumper):
        format = Format.TEXT

        def dump(self, obj: bytes) -> bytes:
            return obj

    return Utf8TextDumper


def update_many(conn: Connection, table: Table, key: str, columns: tuple[str, ...],
                dicts: Sequence[dict[str, Any]]) -> None:
    """UPDATE table SET columns… WHERE key = d[key], for each dict."""
    if not dicts:
        return
    build, marks = _plan(table, (*columns, key), conn.dialect.name)
    sets = ", ".join(f"{c} = {m}" for c, m in zip(columns, marks, strict=False))
    sql = f"UPDATE {table.name} SET {sets} WHERE {key} = {marks[-1]}"
    conn.exec_driver_sql(sql, [build(d) for d in dicts])


@lru_cache(maxsize=64)
def _reader(table: Table, columns: tuple[str, ...], dialect: str) -> tuple[type, list[Adapter | None]]:
    row_type = namedtuple(f"{table.name}_row", columns)  # noqa: PYI024
    converters: list[Adapter | None] = []
    for name in columns:
        col_type = _storage_type(table.c[name].type)
        if dialect == "sqlite" and isinstance(col_type, JSON):
            converters.append(lambda v: json.loads(v) if isinstance(v, str) else v)
        elif dialect == "sqlite" and isinstance(col_type, Date) and not isinstance(col_type, DateTime):
            converters.append(lambda v: date.fromisoformat(v) if isinstance(v, str) else v)
        else:
            converters.append(None)
    return row_type, converters


def select_in(conn: Connection, table: Table, columns: tuple[str, ...], key: str, values: Sequence[Any],
              where: str = "") -> list[Any]:
    """Rows whose `key` is in values (one query; placeholders rendered without SQLAlchemy's
    per-execution expansion), as named tuples with dates and JSON decoded like the ORM does."""
    if not values:
        return []
    dialect = conn.dialect.name
    select = f"SELECT {', '.join(columns)} FROM {table.name} WHERE "
    if dialect == "postgresql":  # one array parameter: psycopg parses no 5,000-mark query
        rows = conn.exec_driver_sql(f"{select}{key} = ANY(%s){where}", (list(values),)).fetchall()
    else:
        marks = ", ".join(["?"] * len(values))
        rows = conn.exec_driver_sql(f"{select}{key} IN ({marks}){where}", tuple(values)).fetchall()
    row_type, converters = _reader(table, columns, dialect)
    if not any(converters):
        return [row_type(*r) for r in rows]
    pairs = list(zip(converters, range(len(columns)), strict=True))
    return [row_type(*[c(r[i]) if c else r[i] for c, i in pairs]) for r in rows]
