"""The embedded search backend: the index lives in the published data's own database.

SQLite: FTS5 (unicode61) over pre-split tokens; PostgreSQL: a tsvector we write ourselves with a
GIN index (schema.py has the tables, text.py the tokens). Both answer a search the same way:

1. candidates: the first CAP matches, newest first (the index is ordered so that the scan can
   stop there), plus the documents whose code (USCC / 注册号) equals or starts with the query,
   those whose decision number is the query (a tag of the document: text.decision_key) and
   those whose name equals it;
2. order: exact code · exact decision number · code prefix · exact name (then an exact 曾用名,
   among the first CAP matches: a tag of the document, former_tag) · match in a name or 曾用名
   · match in a name's pinyin or initials only · match in text only; within a tier entities
   before records (an exact 曾用名 counts with the exact names for that: the company comes
   before the old records under the name it had), then the shorter name (the query covers more
   of it), then the newest;
3. total and facet counts are over the candidates: exact up to CAP matches, beyond that a lower
   bound over the newest CAP (SearchResult.capped says so).

All three happen in one SQL statement (candidates, counts per combination of facet values, the
page), so that Python never handles more than a page of rows; the page's documents are then
read from the published data (publishing.search.documents) and highlighted.

A query that finds nothing and starts with an administrative prefix (烟台市芝罘区鸿万兴冷饮店)
is answered as the query without it (text.ParsedQuery.unprefixed), and one that still finds
nothing as its relaxed form (text.relaxed_query; base.when_unfound): one or two more
statements, for queries that found nothing.

A broken index (SQLite's "database disk image is malformed", a missing table) raises
SearchUnavailable, logged with the remedy (`disclosure reindex`), and ping() says so to the
readiness check: searches answer as when Meilisearch is down, not with a server error.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from publishing import locks
from publishing.db import writer_connection
from publishing.search import documents, index_format, schema
from publishing.search.base import (
    FACETS,
    MATCH_CAP,
    Hit,
    SearchQuery,
    SearchResult,
    SearchUnavailable,
    batched,
    when_unfound,
)
from publishing.search.highlight import doc_hit
from publishing.search.text import (
    INITIALS,
    PINYIN,
    TEXT,
    ParsedQuery,
    decision_key,
    former_keys,
    initial_grams,
    name_key,
    name_texts,
    normalize,
    parse_query,
    pinyin_grams,
    pinyin_items,
    tokens,
)

if TYPE_CHECKING:  # sync imports the backends
    from publishing.search.sync import RebuildStart

log = logging.getLogger("publishing.search.embedded")

CAP = MATCH_CAP
BATCH = 2000  # documents written per statement batch / transaction
BUILD_BATCH = 10_000  # documents per transaction of a rebuild (into tables nobody reads yet)
BULK_CACHE_KIB = 512 * 1024  # SQLite page cache of the connection that loads a rebuild
CHECKPOINT_EVERY = 200_000  # documents of a rebuild between WAL checkpoints (SQLite)
PARALLEL_MIN = 50_000  # documents from which a rebuild prepares them in worker processes
DAY_SHIFT = 24  # rid = (MAX_DAY - day ordinal) << 24 | n
MAX_DAY = date.max.toordinal()
# tiers, best first
CODE, DECISION, CODE_PREFIX, NAME_EXACT, FORMER_EXACT, NAME, NAME_PINYIN, TEXT_ONLY = range(8)
SEARCH_LOCK_ID = locks.SEARCH_INDEX  # PostgreSQL advisory lock: one writer of the index at a time
SCAN_MIN_SHARE = 0.07  # PostgreSQL: a query matching ≥ 7 % of documents scans in rid order …
SCAN_BUDGET_MS = 50  # … for at most this long before the bitmap plan answers it
SHARES_TTL_S = 600  # how long the lexeme statistics are reused
# Bytes of tokens a document indexes at most (a token counts its bytes and an entry the first
# time, then a position): PostgreSQL refuses a tsvector over 1 MB, and one field can hold any
# length of text. Both databases index the same tokens.
INDEX_BUDGET = 512 * 1024
_DOC_COLUMNS = (
    "rid",
    "id",
    "type",
    "entity_id",
    "district",
    "date",
    "status",
    "grade",
    "uscc",
    "reg_no",
    "name_key",
    "name_len",
)
_FTS_COLUMNS = ("rowid", "name", "py", "pyi", "body", "tags")
# Every candidate: rid and what counting and ordering need; `tier` is computed per dialect.
_CANDIDATE = "rid, type, district, status, grade, name_len"
_ENTITY_FIRST = "CASE WHEN type = 'entity' THEN 0 ELSE 1 END"
# An exact 曾用名 ranks with the exact names, entities first, after an exact current name.
_EXACT_GROUP = f"CASE WHEN tier = {FORMER_EXACT} THEN {NAME_EXACT} ELSE tier END"
_ORDER = {
    "relevance": (
        f"{_EXACT_GROUP}, {_ENTITY_FIRST}, tier, "
        f"CASE WHEN tier < {TEXT_ONLY} THEN name_len ELSE 0 END, rid"
    ),
    "date": f"rid >> {DAY_SHIFT}, tier, {_ENTITY_FIRST}, name_len, rid",
}
_TAG_CLEAN = re.compile(r"[\W_]+")
# The errors of a broken or missing index (not of a query, a busy or an unreachable database):
# SQLite's corruption codes (primary codes: SQLITE_CORRUPT, of FTS5's shadow tables too, and
# SQLITE_NOTADB) and messages; PostgreSQL's SQLSTATEs undefined_table, data and index corrupted.
_SQLITE_BROKEN_CODES = {11, 26}
_SQLITE_BROKEN_MESSAGES = ("no such table", "invalid fts5 file format")
_PG_BROKEN_STATES = {"42P01", "XX001", "XX002"}
REINDEX_HINT = "run disclosure reindex"


class IndexRow(NamedTuple):
    band: int  # rid >> DAY_SHIFT
    meta: tuple  # values of _DOC_COLUMNS except rid
    name: list[str]
    py: list[str]
    pyi: list[str]
    body: list[str]
    tags: list[str]


def _tag(prefix: str, value: str) -> str:
    return prefix + _TAG_CLEAN.sub("", value.lower())


def decision_tag(key: str) -> str:
    """The filter tag of a decision number (its decision_key): one short ASCII word."""
    return "xn" + hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


def former_tag(key: str) -> str:
    """The tag of an entity's 曾用名 (its name_key), for the exact-name tier: one ASCII word."""
    return "xf" + hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


def _band(iso: str | None) -> int:
    """Newer dates get smaller bands; documents without a date come last."""
    try:
        day = date.fromisoformat(iso[:10]).toordinal() if iso else 0
    except ValueError:
        day = 0
    return MAX_DAY - day


def index_row(doc: dict[str, Any]) -> IndexRow:
    """What the index stores for a document: its tokens per column and its filter values."""
    names = [normalize(n) for n in doc.get("names") or () if n]
    views = [name_texts(n) for n in names]
    py: list[str] = []
    pyi: list[str] = []
    if doc["type"] == "entity":
        py, pyi = pinyin_columns([pinyin_items(n, v) for n, v in zip(names, views, strict=True)])
    body = [t for _, value in doc.get("text") or () for t in tokens(normalize(value))]
    tags = ["xall", _tag("xt", doc["type"])]
    tags += [
        _tag(p, doc[k])
        for p, k in (("xd", "district"), ("xs", "status"), ("xg", "grade"))
        if doc.get(k)
    ]
    number = (doc.get("data") or {}).get("decision_no") if doc["type"] != "entity" else None
    number_key = decision_key(number) if isinstance(number, str) else None
    if number_key:
        tags.append(decision_tag(number_key))
    key = name_key(doc["names"][0]) if doc.get("names") else None
    # an exact 曾用名 ranks as an exact name (the current name's key is the column name_key)
    tags += [former_tag(k) for k in former_keys(key, (doc.get("names") or ())[1:])]
    meta = (
        doc["id"],
        doc["type"],
        doc.get("entity_id"),
        doc.get("district"),
        doc.get("date"),
        doc.get("status"),
        doc.get("grade"),
        doc.get("uscc"),
        doc.get("reg_no"),
        key,
        len(key or ""),
    )
    name_tokens = [t for texts in views for v in texts for t in tokens(v)]
    name_tokens, py, pyi, body = _bounded([name_tokens, py, pyi, body])
    return IndexRow(_band(doc.get("date")), meta, name_tokens, py, pyi, body, tags)


def pinyin_columns(forms: list[list[list[str]]]) -> tuple[list[str], list[str]]:
    """The py and pyi tokens of an entity's names, from each name's text.pinyin_items: every
    name's grams as before, then those of each bracket-free form that no name's syllables hold
    already. Of such a form, the joined-syllable bigrams and initials trigrams go in whole (a
    query is a phrase of them: they must stand next to each other); its syllables and initials
    bigrams only where new (each is matched alone, and the name has nearly all of them)."""
    py: list[str] = []
    pyi: list[str] = []
    for items in (f[0] for f in forms):
        py.extend(pinyin_grams(items))
        pyi.extend(initial_grams(items))
    known = [f" {' '.join(f[0])} " for f in forms]
    for items in (items for f in forms for items in f[1:]):
        chain = f" {' '.join(items)} "
        if any(chain in k for k in known):  # (a 曾用名 that is this form, or two names' same)
            continue
        known.append(chain)
        _extend_new(py, pinyin_grams(items), len(items) - 1)
        _extend_new(pyi, initial_grams(items), sum(1 for i in items if i) - 2)
    return py, pyi


def _extend_new(column: list[str], grams: list[str], phrase: int) -> None:
    """Append the first `phrase` grams, then those of the rest that the column lacks."""
    have = set(column)
    column.extend(grams[: max(phrase, 0)])
    column.extend(g for g in dict.fromkeys(grams[max(phrase, 0) :]) if g not in have)


def _bounded(columns: list[list[str]]) -> list[list[str]]:
    """The columns' tokens, in order, as far as they fit in INDEX_BUDGET (names first)."""
    if sum(4 * len(t) + 12 for toks in columns for t in toks) <= INDEX_BUDGET:
        return columns  # the usual document: well within, on an upper bound of the cost
    seen: set[str] = set()
    left = INDEX_BUDGET
    out: list[list[str]] = []
    for toks in columns:
        kept: list[str] = []
        for t in toks:
            cost = 2 if t in seen else len(t.encode()) + 10
            if cost > left:
                left = 0
                break
            left -= cost
            seen.add(t)
            kept.append(t)
        out.append(kept)
    return out


# -- dialects --------------------------------------------------------------------------------


class _Store:
    """What differs between SQLite and PostgreSQL: writing rows and matching text."""

    dialect = ""

    def exists(self, conn: Connection, table: str) -> bool:
        raise NotImplementedError

    def prepare(self, row: IndexRow) -> tuple:
        """What write() stores for a row, apart from its rid (compact, picklable)."""
        raise NotImplementedError

    def write(self, conn: Connection, rows: list[tuple[int, tuple]], suffix: str = "") -> None:
        """Insert prepared rows: (rid, prepare(row))."""
        raise NotImplementedError

    def delete(self, conn: Connection, ids: list[str]) -> None:
        raise NotImplementedError

    def candidates(self, pq: ParsedQuery, q: SearchQuery) -> tuple[str, dict[str, Any]]:
        """SQL of the first CAP matches, newest first: (_CANDIDATE…, tier); its parameters
        (CAP is the parameter `cap`)."""
        raise NotImplementedError

    def code_match(self, code: str) -> tuple[str, str]:
        """A condition matching documents with the code (parameter `code`) and entities whose
        code starts with it (on the indexes), and the prefix pattern."""
        raise NotImplementedError

    def tagged(self, tag: str, where: str) -> tuple[str, str]:
        """SQL of the documents (_CANDIDATE…, tier DECISION) that carry a tag (parameter
        `tag`, the first CAP), and the parameter's value."""
        raise NotImplementedError

    def ph(self, name: str) -> str:
        """The driver's placeholder of a named parameter."""
        raise NotImplementedError

    def session(self, conn: Connection) -> None:
        """Settings for the transaction of a search."""

    def run_search(
        self, conn: Connection, sql: str, params: dict[str, Any], pq: ParsedQuery, q: SearchQuery
    ) -> list[tuple]:
        """Execute the one search statement (PostgreSQL chooses its scan here)."""
        return _raw(conn, sql, params)

    def dump(self, conn: Connection) -> dict[str, tuple]:
        """id → (filter values…, indexed tokens) of every entry, for checks."""
        raise NotImplementedError

    def probe(self, conn: Connection) -> None:
        """Read the index as a search does, cheaply (readiness): raises when it is broken."""
        raise NotImplementedError

    def lock(self, conn: Connection) -> None:
        """Serialise writers of the index (SQLite does it with BEGIN IMMEDIATE)."""

    @contextmanager
    def bulk(self, conn: Connection) -> Iterator[None]:
        """Settings of the connection while a rebuild loads it."""
        yield

    def checkpoint(self, conn: Connection) -> None:
        """Between the transactions of a rebuild: keep the write-ahead log from growing."""

    def finish_build(self, conn: Connection, suffix: str, gen: str) -> None:
        """After a bulk load and its indexes, before the swap."""


class _Sqlite(_Store):
    dialect = "sqlite"
    _GROUPS = {TEXT: "{name body}", PINYIN: "{py}", INITIALS: "{pyi}"}

    def exists(self, conn: Connection, table: str) -> bool:
        sql = "SELECT 1 FROM sqlite_master WHERE name = ?"
        return conn.exec_driver_sql(sql, (table,)).first() is not None

    def prepare(self, row: IndexRow) -> tuple:
        return (
            row.meta,
            (
                " ".join(row.name),
                " ".join(row.py),
                " ".join(row.pyi),
                " ".join(row.body),
                " ".join(row.tags),
            ),
        )

    def write(self, conn: Connection, rows: list[tuple[int, tuple]], suffix: str = "") -> None:
        meta = [(rid, *m) for rid, (m, _) in rows]
        fts = [(rid, *f) for rid, (_, f) in rows]
        conn.exec_driver_sql(
            f"INSERT INTO {schema.DOCS}{suffix} ({', '.join(_DOC_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(_DOC_COLUMNS))})",
            meta,
        )
        conn.exec_driver_sql(
            f"INSERT INTO {schema.FTS}{suffix} ({', '.join(_FTS_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(_FTS_COLUMNS))})",
            fts,
        )

    def delete(self, conn: Connection, ids: list[str]) -> None:
        for chunk in batched(ids, 500):
            marks = ", ".join("?" * len(chunk))
            rids = [
                r
                for (r,) in conn.exec_driver_sql(
                    f"SELECT rid FROM {schema.DOCS} WHERE id IN ({marks})", tuple(chunk)
                )
            ]
            if rids:
                marks = ", ".join("?" * len(rids))
                conn.exec_driver_sql(
                    f"DELETE FROM {schema.FTS} WHERE rowid IN ({marks})", tuple(rids)
                )
                conn.exec_driver_sql(
                    f"DELETE FROM {schema.DOCS} WHERE rid IN ({marks})", tuple(rids)
                )

    def _phrase(self, p, names_only: bool = False) -> str:
        cols = "{name}" if names_only and p.group == TEXT else self._GROUPS[p.group]
        return f'{cols} : "{" ".join(p.tokens)}"' + (" *" if p.prefix else "")

    def _expr(self, pq: ParsedQuery, q: SearchQuery) -> str:
        parts = ["(" + " OR ".join(self._phrase(p) for p in t.alternatives) + ")" for t in pq.terms]
        tags = []
        if q.types:
            tags.append(" OR ".join(f'"{_tag("xt", t)}"' for t in q.types))
        for prefix, value in (("xd", q.district), ("xs", q.status), ("xg", q.grade)):
            if value:
                tags.append(f'"{_tag(prefix, value)}"')
        parts += [f"{{tags}} : ({t})" for t in tags]
        return " AND ".join(parts) or '{tags} : "xall"'

    def ph(self, name: str) -> str:
        return f":{name}"

    def probe(self, conn: Connection) -> None:
        # a match reads the FTS index's structure and its first leaf, as every search does
        sql = (
            f"SELECT (SELECT rid FROM {schema.DOCS} LIMIT 1), (SELECT rowid FROM {schema.FTS} "
            f"WHERE {schema.FTS} MATCH :m LIMIT 1)"
        )
        _raw(conn, sql, {"m": '{tags} : "xall"'})

    def candidates(self, pq: ParsedQuery, q: SearchQuery) -> tuple[str, dict[str, Any]]:
        expr = self._expr(pq, q)
        params: dict[str, Any] = {"m": expr, "key": pq.name_key}
        tier = str(TEXT_ONLY)
        if pq.terms:
            # Among the first CAP matches, those matching in a name are among the first CAP
            # matches of (query AND a term in a name).
            params["nm"] = (
                f"({expr}) AND ("
                + " OR ".join(self._phrase(p, True) for t in pq.terms for p in t.alternatives)
                + ")"
            )
            in_name = (
                f"{schema.FTS}.rowid IN (SELECT rowid FROM {schema.FTS} WHERE {schema.FTS} "
                f"MATCH :nm ORDER BY rowid LIMIT :cap)"
            )
            former = None
            if _former_exact(pq):
                params["fm"] = f'{{tags}} : "{former_tag(pq.name_key)}"'
                former = (
                    f"{schema.FTS}.rowid IN (SELECT rowid FROM {schema.FTS} WHERE {schema.FTS} "
                    "MATCH :fm)"
                )
            literal = _literal(pq, params, lambda p: f"instr(name_key, :{p}) > 0")
            tier = _tier_case("name_key = :key", former, literal, in_name)
        # (no column name of search_docs is also one of the FTS table's)
        sql = (
            f"SELECT {_CANDIDATE}, {tier} AS tier FROM {schema.FTS} JOIN {schema.DOCS} "
            f"ON rid = {schema.FTS}.rowid WHERE {schema.FTS} MATCH :m "
            f"ORDER BY {schema.FTS}.rowid LIMIT :cap"
        )
        return sql, params

    def code_match(self, code: str) -> tuple[str, str]:
        return (
            "(uscc = :code OR reg_no = :code OR ((uscc GLOB :pattern OR reg_no GLOB :pattern) "
            "AND type = 'entity'))",
            code + "*",
        )

    def tagged(self, tag: str, where: str) -> tuple[str, str]:
        sql = (
            f"SELECT {_CANDIDATE}, {DECISION} AS tier FROM {schema.FTS} JOIN {schema.DOCS} "
            f"ON rid = {schema.FTS}.rowid WHERE {schema.FTS} MATCH :tag{where} LIMIT :cap"
        )
        return sql, f'{{tags}} : "{tag}"'

    @contextmanager
    def bulk(self, conn: Connection) -> Iterator[None]:
        # A large page cache: rows arrive in id order, their rids (by date) spread over ~1,000
        # insertion points of the tables' B-trees.
        before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
        conn.exec_driver_sql(f"PRAGMA cache_size = {-BULK_CACHE_KIB}")
        conn.commit()
        try:
            yield
        finally:
            conn.rollback()
            conn.exec_driver_sql(f"PRAGMA cache_size = {before}")
            conn.commit()

    def checkpoint(self, conn: Connection) -> None:
        # Readers (the workers) keep the WAL from being reset by the automatic checkpoints;
        # TRUNCATE waits (busy timeout) for them to finish their short reads.
        raw = conn.connection.dbapi_connection  # outside any transaction (autocommit)
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def finish_build(self, conn: Connection, suffix: str, gen: str) -> None:
        conn.exec_driver_sql(
            f"INSERT INTO {schema.FTS}{suffix}({schema.FTS}{suffix}) VALUES ('optimize')"
        )

    def dump(self, conn: Connection) -> dict[str, tuple]:
        cols = ", ".join(f"d.{c}" for c in _DOC_COLUMNS[1:])
        sql = (
            f"SELECT {cols}, f.name, f.py, f.pyi, f.body, f.tags FROM {schema.DOCS} d "
            f"JOIN {schema.FTS} f ON f.rowid = d.rid"
        )
        return {r[0]: tuple(r) for r in conn.exec_driver_sql(sql)}


class _Postgres(_Store):
    dialect = "postgresql"
    # Weights: A name, B pinyin, C initials, D text; the filter tags have no position. A text
    # phrase is not restricted to A and D (pinyin and tags are ASCII words that Chinese tokens
    # never equal), so that a one-word query is answered by the GIN index without rechecks.
    _WEIGHTS = {TEXT: "", PINYIN: "B", INITIALS: "C"}

    def exists(self, conn: Connection, table: str) -> bool:
        return conn.exec_driver_sql("SELECT to_regclass(%s)", (table,)).scalar() is not None

    @staticmethod
    def tsvector(row: IndexRow) -> str:
        """The tsvector literal: positions run on across the columns, with a gap between;
        then the filter tags (no position)."""
        lexemes: dict[str, list[str]] = {}
        pos = 0
        for weight, toks in (("A", row.name), ("B", row.py), ("C", row.pyi), ("D", row.body)):
            for tok in toks:
                pos += 1
                lexemes.setdefault(tok, []).append(f"{min(pos, 16383)}{weight}")
            pos += 1
        out = [f"'{t}':{','.join(p[:255])}" for t, p in lexemes.items()]
        out.extend(f"'{t}'" for t in row.tags if t not in lexemes)
        return " ".join(out)

    def prepare(self, row: IndexRow) -> tuple:
        return (*row.meta, self.tsvector(row))

    def write(self, conn: Connection, rows: list[tuple[int, tuple]], suffix: str = "") -> None:
        raw = conn.connection.driver_connection
        cols = ", ".join((*_DOC_COLUMNS, "tsv"))
        with raw.cursor() as cur, cur.copy(f"COPY {schema.DOCS}{suffix} ({cols}) FROM STDIN") as cp:
            for rid, values in rows:
                cp.write_row((rid, *values))

    def delete(self, conn: Connection, ids: list[str]) -> None:
        conn.exec_driver_sql(f"DELETE FROM {schema.DOCS} WHERE id = ANY(%s)", (list(ids),))

    def lock(self, conn: Connection) -> None:
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SEARCH_LOCK_ID})")

    def _phrase(self, p, names_only: bool) -> str:
        weights = "A" if names_only and p.group == TEXT else self._WEIGHTS[p.group]
        last = len(p.tokens) - 1
        lexemes = [
            f"'{t}'"
            + (":" if weights or (p.prefix and i == last) else "")
            + ("*" if p.prefix and i == last else "")
            + weights
            for i, t in enumerate(p.tokens)
        ]
        return "(" + " <-> ".join(lexemes) + ")"

    def tsquery(self, pq: ParsedQuery, q: SearchQuery) -> tuple[str, str]:
        """The query with its filters (as tags: intersected in the GIN index), and the query
        restricted to names (any term matching in a name, its pinyin or initials)."""
        parts = [
            "(" + " | ".join(self._phrase(p, False) for p in t.alternatives) + ")" for t in pq.terms
        ]
        if q.types:
            parts.append("(" + " | ".join(f"'{_tag('xt', t)}'" for t in q.types) + ")")
        parts += [
            f"'{_tag(prefix, value)}'"
            for prefix, value in (("xd", q.district), ("xs", q.status), ("xg", q.grade))
            if value
        ]
        names = " | ".join(self._phrase(p, True) for t in pq.terms for p in t.alternatives)
        return " & ".join(parts), names

    def ph(self, name: str) -> str:
        return f"%({name})s"

    def probe(self, conn: Connection) -> None:
        _raw(conn, f"SELECT rid FROM {schema.DOCS} LIMIT 1", {})

    def candidates(self, pq: ParsedQuery, q: SearchQuery) -> tuple[str, dict[str, Any]]:
        where, params = filter_sql(q, self.ph)
        params["key"] = pq.name_key
        if not pq.terms:
            sql = (
                f"SELECT {_CANDIDATE}, {TEXT_ONLY} AS tier FROM {schema.DOCS} WHERE true{where} "
                "ORDER BY rid LIMIT %(cap)s"
            )
            return sql, params
        params["q"], params["nq"] = self.tsquery(pq, q)
        former = None
        if _former_exact(pq):  # checked on each candidate: a GIN lookup needs a bitmap scan
            params["fq"] = f"'{former_tag(pq.name_key)}'"
            former = "tsv @@ CAST(%(fq)s AS tsquery)"
        literal = _literal(pq, params, lambda p: f"strpos(name_key, %({p})s) > 0")
        tier = _tier_case("name_key = %(key)s", former, literal, "tsv @@ CAST(%(nq)s AS tsquery)")
        sql = (
            f"SELECT {_CANDIDATE}, {tier} AS tier FROM {schema.DOCS} "
            f"WHERE tsv @@ CAST(%(q)s AS tsquery) LIMIT %(cap)s"
        )
        return sql, params

    def session(self, conn: Connection) -> None:
        # A search is one short statement: JIT compilation costs more than it saves, and a
        # larger work_mem keeps the bitmap of a common word exact (no lossy pages to recheck).
        _raw_execute(conn, "SET LOCAL jit = off")
        _raw_execute(conn, "SET LOCAL work_mem = '32MB'")
        # psycopg prepares a statement run five times; PostgreSQL may then reuse a generic plan,
        # blind to how common the query's words are and to run_search's scan choice.
        _raw_execute(conn, "SET LOCAL plan_cache_mode = force_custom_plan")

    def run_search(
        self, conn: Connection, sql: str, params: dict[str, Any], pq: ParsedQuery, q: SearchQuery
    ) -> list[tuple]:
        """A query matching a large share of the documents reads the table in rid order (newest
        first) and stops after CAP matches, instead of the bitmap PostgreSQL would build.

        PostgreSQL multiplies the frequencies of a phrase's grams as if they were independent:
        体工 <-> 工商 <-> 商户 is estimated at 1.7 % of a million entities' documents and matches
        26 %, so it builds a bitmap of 600,000 rows to keep 5,000 (120 ms; the scan: 10 ms).
        Our estimate takes the rarest gram (an upper bound); when the phrase is rarer than its
        grams the scan would run long, so it gets SCAN_BUDGET_MS before the bitmap plan runs."""
        from psycopg.errors import QueryCanceled  # here: a SQLite process never loads psycopg

        if not pq.terms:
            return _raw(conn, sql, params)
        _raw_execute(conn, "SAVEPOINT scan_choice")
        try:
            # (a decision number's tag is looked up in the GIN index: a bitmap scan)
            if pq.decision or common_share(conn, _lexemes(pq, q)) < SCAN_MIN_SHARE:
                # and the other way round: PostgreSQL overestimates pinyin initials ("zf": 11 %
                # estimated, 6 % actual, all of them entities) and scans 1.1M rows to find 5,000
                _raw_execute(conn, "SET LOCAL enable_seqscan = off")
                return _raw(conn, sql, params)
            _raw_execute(conn, "SET LOCAL enable_bitmapscan = off")
            _raw_execute(conn, f"SET LOCAL statement_timeout = {SCAN_BUDGET_MS}")
            try:
                return _raw(conn, sql, params)
            except QueryCanceled:
                _raw_execute(conn, "ROLLBACK TO SAVEPOINT scan_choice")
                return _raw(conn, sql, params)
        finally:  # undoes the settings for the rest of the transaction
            _raw_execute(conn, "ROLLBACK TO SAVEPOINT scan_choice")

    def code_match(self, code: str) -> tuple[str, str]:
        return (
            "(uscc = %(code)s OR reg_no = %(code)s OR ((uscc LIKE %(pattern)s "
            "OR reg_no LIKE %(pattern)s) AND type = 'entity'))",
            code + "%",
        )

    def tagged(self, tag: str, where: str) -> tuple[str, str]:
        sql = (
            f"SELECT {_CANDIDATE}, {DECISION} AS tier FROM {schema.DOCS} "
            f"WHERE tsv @@ CAST(%(tag)s AS tsquery){where} LIMIT %(cap)s"
        )
        return sql, f"'{tag}'"

    def finish_build(self, conn: Connection, suffix: str, gen: str) -> None:
        conn.exec_driver_sql(f"CLUSTER {schema.DOCS}{suffix} USING ix_search_docs_rid_{gen}")
        conn.exec_driver_sql(f"ANALYZE {schema.DOCS}{suffix}")

    def dump(self, conn: Connection) -> dict[str, tuple]:
        cols = ", ".join(_DOC_COLUMNS[1:])
        sql = f"SELECT {cols}, tsv::text FROM {schema.DOCS}"
        return {r[0]: tuple(r) for r in conn.exec_driver_sql(sql)}


def _literal(pq: ParsedQuery, params: dict[str, Any], contains: Callable[[str], str]) -> str | None:
    """When each term of the query is a latin word that may be pinyin or initials (xyz): the
    condition that the name holds one (its name_key, on the row at hand: no second index
    lookup), so that 烟台XYZ科技 ranks above 星烨装饰 (x y z); None for any other query.
    `contains(param)`: the dialect's SQL of "name_key contains the parameter's value"."""
    if not pq.terms or any(len(t.alternatives) == 1 for t in pq.terms):
        return None
    conds = []
    for i, term in enumerate(pq.terms):
        params[f"lw{i}"] = term.source  # (a word of several: as name_key joins them)
        conds.append(contains(f"lw{i}"))
    return "(" + " OR ".join(conds) + ")"


def _former_exact(pq: ParsedQuery) -> bool:
    """Whether the query may be an exact 曾用名 (as the exact-name tier: 2+ characters)."""
    return len(pq.name_key) >= 2


def _tier_case(exact: str, former: str | None, literal: str | None, in_name: str) -> str:
    """A candidate's tier, from the conditions of an exact name, an exact 曾用名 (None: not
    looked for), a match in a name (its text, pinyin or initials) and, for a latin word, the
    name holding it (None: any match in a name is one of its text)."""
    in_name_tier = f"CASE WHEN {literal} THEN {NAME} ELSE {NAME_PINYIN} END" if literal else NAME
    whens = [(exact, NAME_EXACT), (former, FORMER_EXACT), (in_name, in_name_tier)]
    cases = " ".join(f"WHEN {cond} THEN {tier}" for cond, tier in whens if cond)
    return f"CASE {cases} ELSE {TEXT_ONLY} END"


def _raw_execute(conn: Connection, sql: str) -> None:
    cur = conn.connection.dbapi_connection.cursor()
    try:
        cur.execute(sql)
    finally:
        cur.close()


def _raw(conn: Connection, sql: str, params: dict[str, Any]) -> list[tuple]:
    """Plain tuples straight from the driver (Row objects cost more than the query for 10,000
    rows), inside the connection's transaction."""
    cur = conn.connection.dbapi_connection.cursor()
    try:
        cur.execute(sql, params)
        return cur.fetchall()
    finally:
        cur.close()


def _lexemes(pq: ParsedQuery, q: SearchQuery) -> list[list[list[str]]]:
    """The query as lexemes: all terms and filter tags must match (AND); a term matches by any
    alternative (OR), an alternative by all its tokens. A prefix token ends with *."""
    terms = [
        [
            [
                t + ("*" if p.prefix and i == len(p.tokens) - 1 else "")
                for i, t in enumerate(p.tokens)
            ]
            for p in term.alternatives
        ]
        for term in pq.terms
    ]
    tags = [("xt", t) for t in q.types] if len(q.types) == 1 else []
    tags += [
        (prefix, value)
        for prefix, value in (("xd", q.district), ("xs", q.status), ("xg", q.grade))
        if value
    ]
    return terms + [[[_tag(prefix, value)]] for prefix, value in tags]


_shares: dict[str, tuple[float, dict[str, float]]] = {}  # database URL -> (loaded at, shares)


def common_share(conn: Connection, query: list[list[list[str]]]) -> float:
    """Roughly the share of documents the query matches, from the most common lexemes
    PostgreSQL's statistics list (a lexeme not among them counts as rare: 0; a prefix as the
    sum of the listed lexemes it begins). The rarest token bounds an alternative."""
    shares = _common_lexemes(conn)

    def token(t: str) -> float:
        if t.endswith("*"):
            return min(1.0, sum(v for k, v in shares.items() if k.startswith(t[:-1])))
        return shares.get(t, 0.0)

    def alternative(tokens: list[str]) -> float:
        return min(map(token, tokens), default=0.0)

    return min((max(map(alternative, alts), default=0.0) for alts in query), default=0.0)


def _common_lexemes(conn: Connection) -> dict[str, float]:
    key = str(conn.engine.url)
    loaded = _shares.get(key)
    if loaded and time.monotonic() - loaded[0] < SHARES_TTL_S:
        return loaded[1]
    row = conn.exec_driver_sql(
        "SELECT most_common_elems::text::text[], most_common_elem_freqs FROM pg_stats "
        "WHERE schemaname = current_schema() AND tablename = %s AND attname = 'tsv'",
        (schema.DOCS,),
    ).first()
    shares = dict(zip(row[0], row[1], strict=False)) if row and row[0] else {}
    _shares[key] = (time.monotonic(), shares)
    return shares


def filter_sql(q: SearchQuery, ph) -> tuple[str, dict[str, Any]]:
    """The query's filters as ' AND …' over search_docs columns, and their parameters."""
    conds: list[str] = []
    params: dict[str, Any] = {}
    if q.types:
        names = [f"type{i}" for i in range(len(q.types))]
        conds.append(f"type IN ({', '.join(ph(n) for n in names)})")
        params.update(zip(names, q.types, strict=True))
    for key in ("district", "status", "grade"):
        if getattr(q, key):
            conds.append(f"{key} = {ph(key)}")
            params[key] = getattr(q, key)
    return "".join(f" AND {c}" for c in conds), params


# -- the backend -----------------------------------------------------------------------------


class EmbeddedSearch:
    """SearchBackend over the database itself; `bound(conn)` writes in the caller's transaction
    and searches on the caller's connection."""

    name = "embedded"

    def __init__(self, engine: Engine, conn: Connection | None = None):
        self.engine = engine
        self._conn = conn
        self._store: _Store = _Sqlite() if engine.dialect.name == "sqlite" else _Postgres()

    def bound(self, conn: Connection) -> EmbeddedSearch:
        return EmbeddedSearch(self.engine, conn)

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        if self._conn is not None:
            self._store.lock(self._conn)
            yield self._conn
            return
        with writer_connection(self.engine) as conn, conn.begin():
            self._store.lock(conn)
            yield conn

    # -- writing ---------------------------------------------------------------------------
    def upsert(self, docs: Iterable[dict[str, Any]]) -> None:
        for chunk in batched(docs, BATCH):
            rows = [index_row(d) for d in {d["id"]: d for d in chunk}.values()]
            with self._writing() as conn:
                self._store.delete(conn, [r.meta[0] for r in rows])
                self._store.write(
                    conn, [(rid, self._store.prepare(r)) for rid, r in self._allocate(conn, rows)]
                )

    def delete(self, doc_ids: Iterable[str]) -> None:
        for chunk in batched(doc_ids, BATCH):
            with self._writing() as conn:
                self._store.delete(conn, chunk)

    def _allocate(self, conn: Connection, rows: list[IndexRow]) -> list[tuple[int, IndexRow]]:
        """rids for new rows: after the last one of the same day."""
        nxt: dict[int, int] = {}
        sql = text(f"SELECT max(rid) FROM {schema.DOCS} WHERE rid >= :lo AND rid < :hi")
        for band in {r.band for r in rows}:
            lo = band << DAY_SHIFT
            top = conn.execute(sql, {"lo": lo, "hi": lo + (1 << DAY_SHIFT)}).scalar()
            nxt[band] = lo if top is None else top + 1
        out = []
        for r in rows:
            out.append((nxt[r.band], r))
            nxt[r.band] += 1
        return out

    def rebuild(self, docs: Iterable[dict[str, Any]]) -> int:
        """Build the index into new tables, then swap them in (searches go on meanwhile)."""
        return self._build(self._prepared(docs))

    def _prepared(self, docs: Iterable[dict[str, Any]]) -> Iterator[tuple[int, tuple]]:
        return ((r.band, self._store.prepare(r)) for r in map(index_row, docs))

    def rebuild_from_database(self, workers: int | None = None) -> int:
        """rebuild() from every document in the database, prepared by worker processes when
        there are many (a million entities: see the figures in the module's tests' notes).
        The sync cursors move to where the database was read from (sync.rebuilt) in the
        transaction of the swap: a kill after it cannot leave them where a sync meanwhile put
        them, past events the new tables lack. The caller holds the rebuild lock."""
        from publishing.search.sync import rebuild_start

        start = rebuild_start(self.engine)  # before any document is read
        with self.engine.connect() as conn:
            total = documents.count_docs(conn)
        workers = min(os.cpu_count() or 1, 8) if workers is None else workers
        fork = "fork" in multiprocessing.get_all_start_methods()
        if workers < 2 or total < PARALLEL_MIN or not fork:
            return self._build(self._prepared(documents.iter_all_docs(self.engine)), start)
        # fork: no re-import of the caller's __main__; the children open their own connections,
        # so none of ours may be inherited.
        self.engine.dispose()
        url = self.engine.url.render_as_string(hide_password=False)
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(workers, initializer=_worker_init, initargs=(url,)) as pool:
            pages = _ordered(pool, _worker_page, documents.page_ids(self.engine), 2 * workers)
            return self._build((row for page in pages for row in page), start)

    def _build(
        self, prepared: Iterable[tuple[int, tuple]], start: RebuildStart | None = None
    ) -> int:
        """Load, index and swap in new tables; with `start` (a rebuild of the whole database),
        the sync cursors move there in the swap's transaction."""
        store, dialect = self._store, self._store.dialect
        gen = f"{time.time_ns() // 1_000_000:x}"
        with writer_connection(self.engine) as conn, conn.begin():
            for sql in [*schema.drops(dialect, schema.NEW), *schema.tables(dialect, schema.NEW)]:
                conn.exec_driver_sql(sql)
        counters: dict[int, int] = {}
        count = 0
        with writer_connection(self.engine) as conn, store.bulk(conn):
            for chunk in batched(prepared, BUILD_BATCH):
                rows = []
                for band, values in chunk:
                    n = counters.get(band, 0)
                    counters[band] = n + 1
                    rows.append(((band << DAY_SHIFT) | n, values))
                with conn.begin():
                    store.write(conn, rows, schema.NEW)
                count += len(rows)
                if count % CHECKPOINT_EVERY < len(rows):
                    store.checkpoint(conn)
        with writer_connection(self.engine) as conn, conn.begin():
            for sql in schema.indexes(dialect, schema.NEW, gen):
                conn.exec_driver_sql(sql)
            store.finish_build(conn, schema.NEW, gen)
        with writer_connection(self.engine) as conn, conn.begin():
            store.lock(conn)
            for sql in schema.drops(dialect, schema.OLD):
                conn.exec_driver_sql(sql)
            if store.exists(conn, schema.DOCS):
                for sql in schema.renames(dialect, "", schema.OLD):
                    conn.exec_driver_sql(sql)
            for sql in schema.renames(dialect, schema.NEW, ""):
                conn.exec_driver_sql(sql)
            # with the swap: no moment when the new tables are live under the old stamp, nor
            # under cursors that a sync moved on meanwhile (applying events to the old tables)
            _write_stamp(conn, self.name)
            if start is not None:
                from publishing.search.sync import rebuilt

                rebuilt(conn, self, start)
        with writer_connection(self.engine) as conn:
            with conn.begin():
                for sql in schema.drops(dialect, schema.OLD):
                    conn.exec_driver_sql(sql)
            store.checkpoint(conn)
        return count

    # -- format --------------------------------------------------------------------------
    def format_version(self) -> int | None:
        """The format version (index_format) the index was built with; None: unknown."""
        from publishing.search.sync import read_cursor

        with self.engine.connect() as conn:
            return read_cursor(conn, index_format.stamp_name(self.name)) or None

    def stamp_format(self) -> None:
        """Say that the index is of this code's format (sync: an index with nothing in it)."""
        with writer_connection(self.engine) as conn, conn.begin():
            _write_stamp(conn, self.name)

    # -- reading ---------------------------------------------------------------------------
    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(text(f"SELECT count(*) FROM {schema.DOCS}")).scalar_one()

    def dump(self) -> dict[str, tuple]:
        """Every entry as id → (filter values…, indexed tokens), for checks and debugging."""
        with self.engine.connect() as conn:
            return self._store.dump(conn)

    def documents(self) -> Iterator[dict[str, Any]]:
        """The document of every entry, as the published data makes it now (rid order)."""
        last = -1
        sql = text(
            f"SELECT rid, type, id FROM {schema.DOCS} WHERE rid > :last ORDER BY rid LIMIT {BATCH}"
        )
        while True:
            with self.engine.connect() as conn:
                entries = conn.execute(sql, {"last": last}).all()
                if not entries:
                    return
                docs = documents.load_docs(conn, [(t, i) for _, t, i in entries])
            yield from (docs[i] for _, _, i in entries if docs.get(i))
            last = entries[-1][0]

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A transaction for one search: on the bound connection (a request's own, so that a
        request never holds two pooled connections: requests each waiting for a second one
        deadlocked a full pool), else on a pooled one."""
        conn = self._conn
        if conn is None:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        else:
            with conn.begin_nested() if conn.in_transaction() else conn.begin():
                yield conn

    def search(self, query: SearchQuery) -> SearchResult:
        started = time.perf_counter()
        pq = parse_query(query.q)
        result = self._search(query, pq, started)
        return when_unfound(pq, result, lambda other: self._search(query, other, started))

    def _search(self, query: SearchQuery, pq: ParsedQuery, started: float) -> SearchResult:
        sql, params = self._search_sql(pq, query)
        with self._reading() as conn:
            self._store.session(conn)
            rows = self._matches(conn, sql, params, pq, query)
            total = sum(r[5] for r in rows if r[0] == 0)
            page = sorted(
                (r for r in rows if r[0] == 1),
                key=_date_key if query.sort == "date" or not pq.terms else _relevance_key,
            )
            # The documents come from the published data, as it is now: a record withdrawn a
            # moment ago (and not synced yet) is left out of the page.
            docs = documents.load_docs(conn, [(r[1], r[2]) for r in page])
        hits = [self._hit(docs[r[2]], pq, r[7]) for r in page if docs.get(r[2])]
        facets = _facets([r for r in rows if r[0] == 0]) if query.facets else {}
        return SearchResult(
            total=total,
            hits=hits,
            facets=facets,
            capped=total >= CAP,
            facets_capped=total >= CAP,
            took_ms=round((time.perf_counter() - started) * 1000, 2),
            query=query,
        )

    def _matches(
        self, conn: Connection, sql: str, params: dict[str, Any], pq: ParsedQuery, q: SearchQuery
    ) -> list[tuple]:
        """The search statement's rows. A broken index raises SearchUnavailable: the portal
        answers as when Meilisearch is down (503; an exact code's profile from the database)
        instead of failing every search with a server error."""
        try:
            return self._store.run_search(conn, sql, params, pq, q)
        except Exception as err:
            if not _broken_logged(err):
                raise
            raise SearchUnavailable(f"embedded index broken: {err}") from err

    def ping(self) -> bool:
        """Whether the index can be searched (readiness and metrics, as Meilisearch's health):
        one cheap match; False when it is broken."""
        try:
            with self._reading() as conn:
                self._store.probe(conn)
        except Exception as err:
            if not _broken_logged(err):
                raise
            return False
        return True

    def _search_sql(self, pq: ParsedQuery, q: SearchQuery) -> tuple[str, dict[str, Any]]:
        """One statement: the candidates (the first CAP matches, plus the documents whose code
        equals or starts with the query, whose decision number or name is the query), counted per
        combination of facet values, and the requested page of them."""
        store = self._store
        ph = store.ph
        sql, params = store.candidates(pq, q)
        where, fparams = filter_sql(q, ph)
        params.update(fparams, cap=CAP, offset=max(q.offset, 0), limit=max(q.limit, 0))
        ctes = [f"f AS MATERIALIZED ({sql})"]
        parts = ["SELECT * FROM f"]
        if len(pq.name_key) >= 2:  # names that are the query, beyond the first CAP matches
            parts.append(
                f"SELECT * FROM (SELECT {_CANDIDATE}, {NAME_EXACT} AS tier "
                f"FROM {schema.DOCS} WHERE name_key = {ph('key')}{where} "
                f"AND rid NOT IN (SELECT rid FROM f) LIMIT {ph('cap')}) AS e"
            )
        if pq.code:
            cond, params["pattern"] = store.code_match(pq.code)
            params["code"] = pq.code
            tier = (
                f"CASE WHEN uscc = {ph('code')} OR reg_no = {ph('code')} THEN {CODE} "
                f"ELSE {CODE_PREFIX} END"
            )
            parts.append(
                f"SELECT * FROM (SELECT {_CANDIDATE}, {tier} AS tier FROM {schema.DOCS} "
                f"WHERE {cond}{where} LIMIT {ph('cap')}) AS k"
            )
        if pq.decision:
            sql, params["tag"] = store.tagged(decision_tag(pq.decision), where)
            parts.append(f"SELECT * FROM ({sql}) AS n")
        union = " UNION ALL ".join(parts)
        if pq.code or pq.decision:  # a document found twice keeps its best tier
            union = (
                f"SELECT rid, min(type) AS type, min(district) AS district, "
                f"min(status) AS status, min(grade) AS grade, min(name_len) AS name_len, "
                f"min(tier) AS tier FROM ({union}) AS u GROUP BY rid"
            )
        ctes.append(f"c AS MATERIALIZED ({union})")
        order = _ORDER["date" if q.sort == "date" or not pq.terms else "relevance"]
        # rows: (0, type, district, status, grade, count, 0, 0) per combination of facet values,
        #       (1, type, id, NULL, NULL, name_len, rid, tier) per document of the page
        groups = "type, district, status, grade" if q.facets else "NULL, NULL, NULL, NULL"
        sql = f"""WITH {", ".join(ctes)}
SELECT 0, {groups}, count(*), 0, 0 FROM c{" GROUP BY type, district, status, grade" if q.facets else ""}
UNION ALL
SELECT 1, p.type, d.id, NULL, NULL, p.name_len, p.rid, p.tier FROM (
    SELECT rid, type, tier, name_len FROM c
    ORDER BY {order} LIMIT {ph("limit")} OFFSET {ph("offset")}) AS p
JOIN {schema.DOCS} d ON d.rid = p.rid"""
        return sql, params

    @staticmethod
    def _hit(doc: dict[str, Any], pq: ParsedQuery, tier: int) -> Hit:
        # score: 7 code · 6 decision number · 5 code prefix · 4 exact name · 3 exact 曾用名 ·
        # 2 in a name · 1 in a name's pinyin or initials only · 0 text only
        return doc_hit(doc, pq, score=float(TEXT_ONLY - tier))


def broken_index(err: BaseException) -> bool:
    """Whether a database error says that the index is broken or missing (_SQLITE_BROKEN_CODES
    and the rest), as opposed to a query's or a busy database's error."""
    err = err.orig if isinstance(err, DBAPIError) and err.orig is not None else err
    code = getattr(err, "sqlite_errorcode", None)
    if code is not None:
        broken_message = any(m in str(err) for m in _SQLITE_BROKEN_MESSAGES)
        return code & 0xFF in _SQLITE_BROKEN_CODES or broken_message
    return getattr(err, "sqlstate", None) in _PG_BROKEN_STATES


def _broken_logged(err: BaseException) -> bool:
    """broken_index, logged with what to do about it."""
    if not broken_index(err):
        return False
    log.error("search: the embedded index cannot be read (%s): %s", err, REINDEX_HINT)
    return True


def _write_stamp(conn: Connection, name: str) -> None:
    from publishing.search.sync import write_cursor

    write_cursor(conn, index_format.stamp_name(name), index_format.FORMAT_VERSION)


# -- parallel rebuild ------------------------------------------------------------------------

_worker: dict[str, Any] = {}


def _worker_init(url: str) -> None:
    from publishing.db import make_engine

    engine = make_engine(url)
    _worker.update(
        engine=engine, store=_Sqlite() if engine.dialect.name == "sqlite" else _Postgres()
    )


def _worker_page(page: tuple[str, list[str]]) -> list[tuple[int, tuple]]:
    """A page of documents read and prepared in a worker process: [(band, prepared)]."""
    kind, ids = page
    with _worker["engine"].connect() as conn:
        docs = documents.load_page(conn, kind, ids)
    store = _worker["store"]
    return [(r.band, store.prepare(r)) for r in map(index_row, docs)]


def _ordered(pool, func, items: Iterable[Any], ahead: int) -> Iterator[Any]:
    """pool.imap with at most `ahead` results waiting (imap itself never stops reading)."""
    pending: deque = deque()
    for item in items:
        pending.append(pool.apply_async(func, (item,)))
        if len(pending) >= ahead:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def _relevance_key(r: tuple) -> tuple:  # a page row, ordered as _ORDER["relevance"]
    group = NAME_EXACT if r[7] == FORMER_EXACT else r[7]
    return (group, r[1] != "entity", r[7], r[5] if r[7] < TEXT_ONLY else 0, r[6])


def _date_key(r: tuple) -> tuple:  # as _ORDER["date"]
    return (r[6] >> DAY_SHIFT, r[7], r[1] != "entity", r[5], r[6])


def _facets(groups: list[tuple]) -> dict[str, dict[str, int]]:
    """Counts per facet value from the counts per combination of values (0, type, district,
    status, grade, count, …)."""
    out: dict[str, Counter] = {f: Counter() for f in FACETS}
    for row in groups:
        for column, facet in enumerate(FACETS, start=1):
            if row[column] is not None:
                out[facet][row[column]] += row[5]
    return {f: dict(c.most_common()) for f, c in out.items()}
