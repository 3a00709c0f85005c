"""What an initial load cannot go below on this machine: the two halves of a publish, alone.

1. The cleaning process's work (read, validate and mask, the stored form, pickling) for every
   row of the sample files, on one core, with no database at all.
2. SQLite storing the records a publish has already built (no cleaning, no planning, no
   change log, no entities, no deferred indexes): the same rows, re-inserted with one
   `executemany` per 2,500 into an empty copy of the records table, in WAL mode and with a
   rollback journal; and, as the bottom line, SQLite copying them with `INSERT ... SELECT`
   (no Python at all).
3. SQLite alone building everything an initial load leaves behind, in C: records, change log
   and entities copied with `INSERT ... SELECT` from the built database into an empty one (the
   indexes a load keeps in place kept), then the deferred indexes and `ANALYZE`. Whatever
   Python does, a load into SQLite takes at least this long on one core.

A publish overlaps the two on two cores, then builds the entities and the indexes; neither
half can take less than these figures.

    .venv/bin/python bench/ingest.py --entities 1000000 --backends sqlite   # makes the database
    .venv/bin/python bench/ingest_floor.py --entities 1000000
"""

from __future__ import annotations

import argparse
import gc
import os
import pickle
import sqlite3
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# DISCLOSURE_BENCH_OUT: elsewhere (the smoke test of the scripts runs them in a temporary folder)
OUT = Path(os.environ.get("DISCLOSURE_BENCH_OUT") or ROOT / "bench" / "out")
CHUNK = 2500


def cleaning(sample: Path) -> tuple[int, float]:
    """Rows and seconds for everything the cleaning process does, for every file."""
    from publishing.clean import Cleaner
    from publishing.plan import prepare
    from publishing.publish import _headers_by_key, _pack
    from publishing.rules import load_rules
    from publishing.sources import open_source

    rules, rows, seconds = load_rules(), 0, 0.0
    gc.disable()
    for path in sorted(p for p in sample.iterdir() if p.is_file()):
        t = time.perf_counter()
        source = open_source(path, None)
        cleaner = Cleaner(source.kind, date.today(), str(path), headers=_headers_by_key(source))
        chunk = []
        for row in source.rows:
            rows += 1
            result = cleaner.clean(row)
            if not isinstance(result, list):
                chunk.append(_pack(prepare(result, rules)))
                if len(chunk) == CHUNK:
                    pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL)
                    chunk = []
        pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL)
        seconds += time.perf_counter() - t
    gc.enable()
    return rows, seconds


def storing(db: Path, journal: str) -> tuple[int, float, float]:
    """Records, insert seconds and commit seconds, re-inserting the records of db."""
    target = OUT / f"floor-{journal}.db"
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    src = sqlite3.connect(db)
    ddl = src.execute("SELECT sql FROM sqlite_schema WHERE name = 'records'").fetchone()[0]
    indexes = [sql for (sql,) in src.execute(
        "SELECT sql FROM sqlite_schema WHERE tbl_name = 'records' AND type = 'index' AND sql IS NOT NULL "
        "AND name IN ('ix_records_group', 'ix_records_issue_id')")]
    out = sqlite3.connect(target, isolation_level=None)
    out.execute(f"PRAGMA journal_mode={journal}")
    out.execute("PRAGMA synchronous=NORMAL")
    out.execute("PRAGMA cache_size=-32768")
    # The table as a publish writes it: its primary key and the two indexes an initial load keeps.
    out.execute(ddl.replace("FOREIGN KEY(entity_id) REFERENCES entities (id)", "CHECK (1)")
                   .replace("FOREIGN KEY(batch_id) REFERENCES batches (id)", "CHECK (1)"))
    for sql in indexes:
        out.execute(sql)
    columns = len(src.execute("SELECT * FROM records LIMIT 1").description)
    insert = f"INSERT INTO records VALUES ({', '.join('?' * columns)})"
    cursor = src.execute("SELECT * FROM records ORDER BY rowid")
    out.execute("BEGIN IMMEDIATE")
    records, seconds = 0, 0.0
    while rows := cursor.fetchmany(CHUNK):
        t = time.perf_counter()
        out.executemany(insert, rows)
        seconds += time.perf_counter() - t
        records += len(rows)
    t = time.perf_counter()
    out.execute("COMMIT")
    if journal == "wal":
        out.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return records, seconds, time.perf_counter() - t


def copying(db: Path) -> tuple[int, float]:
    """SQLite alone: INSERT ... SELECT of the same rows into an attached empty copy."""
    target = OUT / "floor-copy.db"
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA cache_size=-32768")
    conn.execute(f"ATTACH DATABASE '{target}' AS copy")
    ddl = conn.execute("SELECT sql FROM sqlite_schema WHERE name = 'records'").fetchone()[0]
    conn.execute(ddl.replace("CREATE TABLE records", "CREATE TABLE copy.records")
                 .replace("FOREIGN KEY(entity_id) REFERENCES entities (id)", "CHECK (1)")
                 .replace("FOREIGN KEY(batch_id) REFERENCES batches (id)", "CHECK (1)"))
    conn.execute("CREATE INDEX copy.ix_group ON records (group_key, status)")
    conn.execute("CREATE INDEX copy.ix_issue ON records (issue_id)")
    t = time.perf_counter()
    conn.execute("BEGIN")
    n = conn.execute("INSERT INTO copy.records SELECT * FROM main.records ORDER BY rowid").rowcount
    conn.execute("COMMIT")
    return n, time.perf_counter() - t


def whole_state(db: Path) -> list[tuple[str, float]]:
    """Seconds for each step of SQLite building the published tables of db again, in C."""
    from publishing.initial_load import DEFERRED_INDEXES

    target = OUT / "floor-all.db"
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(target, isolation_level=None)
    for pragma in ("page_size=16384", "journal_mode=DELETE", "synchronous=FULL", "cache_size=-32768",
                   "threads=2"):  # as an initial load runs (publishing/db.py, initial_load.py)
        conn.execute(f"PRAGMA {pragma}")
    conn.execute(f"ATTACH DATABASE '{db}' AS built")
    tables = ("records", "changes", "entities")
    ddl = dict(conn.execute(
        "SELECT name, sql FROM built.sqlite_schema WHERE sql IS NOT NULL AND tbl_name IN (?, ?, ?)", tables))
    for name in tables:  # no foreign keys: the load does not check them row by row either
        conn.execute(ddl[name].replace("FOREIGN KEY(entity_id) REFERENCES entities (id)", "CHECK (1)")
                     .replace("FOREIGN KEY(batch_id) REFERENCES batches (id)", "CHECK (1)"))
    deferred = [name for name in ddl if name.startswith("ix_") and name in DEFERRED_INDEXES]
    for name in ddl:
        if name.startswith("ix_") and name not in DEFERRED_INDEXES:
            conn.execute(ddl[name])
    steps = []
    conn.execute("BEGIN")
    for name in tables:
        t = time.perf_counter()
        conn.execute(f"INSERT INTO main.{name} SELECT * FROM built.{name} ORDER BY rowid")
        steps.append((f"copy {name}", time.perf_counter() - t))
    t = time.perf_counter()
    for name in deferred:
        conn.execute(ddl[name])
    steps.append((f"{len(deferred)} deferred indexes", time.perf_counter() - t))
    t = time.perf_counter()
    conn.execute("ANALYZE main")
    conn.execute("COMMIT")
    steps.append(("ANALYZE and commit", time.perf_counter() - t))
    conn.close()
    return steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=1_000_000)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    db = OUT / f"bench-{args.entities}.db"
    if not db.exists():
        raise SystemExit(f"{db} is missing: run bench/ingest.py --entities {args.entities} --backends sqlite")
    rows, seconds = cleaning(OUT / f"sample-{args.entities}")
    print(f"cleaning process alone: {rows:,} rows in {seconds:.1f} s = {rows / seconds:,.0f} rows/s "
          f"({seconds / rows * 1e6:.1f} us a row, one core)", flush=True)
    for journal in ("wal", "delete"):
        n, insert, commit = storing(db, journal)
        print(f"storing built records, {journal:>6} journal: {n:,} in {insert:.1f} s + commit {commit:.1f} s "
              f"= {n / (insert + commit):,.0f} records/s", flush=True)
    n, seconds = copying(db)
    print(f"SQLite copying them (INSERT ... SELECT, no Python): {n:,} in {seconds:.1f} s "
          f"= {n / seconds:,.0f} records/s", flush=True)
    steps = whole_state(db)
    total = sum(seconds for _, seconds in steps)
    print(f"SQLite alone building the published tables (no Python): {total:.1f} s = "
          f"{n / total:,.0f} records/s (" + ", ".join(f"{name} {s:.1f} s" for name, s in steps) + ")",
          flush=True)
    for name in ("floor-wal.db", "floor-delete.db", "floor-copy.db", "floor-all.db"):
        for suffix in ("", "-wal", "-shm", "-journal"):
            (OUT / f"{name}{suffix}").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
