"""Ingest benchmark: publish `disclosure sample` data into SQLite and PostgreSQL.

Prints records/s and peak memory for each scale and backend (peak RSS of the publishing
process, and the peak of the proportional set size summed over it and its cleaning child,
which shares pages with it after the fork), and the
latency of publishing a 20-row blacklist issue into the largest database.

    .venv/bin/python bench/ingest.py --entities 100000 1000000 --backends sqlite postgresql
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
# DISCLOSURE_BENCH_OUT: elsewhere (the smoke test of the scripts runs them in a temporary folder)
OUT = Path(os.environ.get("DISCLOSURE_BENCH_OUT") or ROOT / "bench" / "out")
PG_ADMIN = os.environ.get("DISCLOSURE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def sample_dir(entities: int) -> Path:
    d = OUT / f"sample-{entities}"
    if not (d / "penalty.csv").exists():
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "portal.cli", "sample", "--out", str(d), "--entities",
                        str(entities)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        print(f"  sample {entities:,} entities generated in {time.perf_counter() - t:.1f} s")
    return d


def fresh_database(backend: str, entities: int) -> str:
    from publishing.db import make_engine

    if backend == "sqlite":
        path = OUT / f"bench-{entities}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return f"sqlite:///{path}"
    name = f"disclosure_bench_{entities}"
    admin = make_engine(PG_ADMIN)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


PG_SETTINGS = ("shared_buffers", "max_wal_size", "wal_compression", "maintenance_work_mem",
               "checkpoint_timeout", "max_parallel_maintenance_workers")


def postgres_settings() -> str:
    """The server settings the figures depend on (deploy/compose.yaml sets them for production)."""
    from publishing.db import make_engine

    engine = make_engine(PG_ADMIN)
    with engine.connect() as conn:
        values = [f"{n}={conn.exec_driver_sql(f'SHOW {n}').scalar()}" for n in PG_SETTINGS]
    engine.dispose()
    return " ".join(values)


class TreeMemory:
    """Samples the PSS of a process and its children (the memory the publish really takes)
    and the process's own peak RSS (VmHWM). Not rusage's ru_maxrss: a process started by
    vfork and exec inherits the maxrss of its parent (this script), which it then reports."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        self.pid, self.peak, self.peak_rss, self._stop = pid, 0, 0, threading.Event()
        self.at_peak: list[int] = []  # PSS of the publisher, then of each child, at the peak
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            parts = [_pss(p) for p in [self.pid, *_children(self.pid)]]
            if sum(parts) > self.peak:
                self.peak, self.at_peak = sum(parts), parts
            self.peak_rss = max(self.peak_rss, _high_water_rss(self.pid))

    def stop(self) -> tuple[int, int]:
        self._stop.set()
        self._thread.join()
        return self.peak, self.peak_rss


def _high_water_rss(pid: int) -> int:
    return _proc_bytes(f"/proc/{pid}/status", "VmHWM:")


def _pss(pid: int) -> int:
    return _proc_bytes(f"/proc/{pid}/smaps_rollup", "Pss:")


def _proc_bytes(path: str, field: str) -> int:
    """A "field: N kB" line of a /proc file, in bytes (0 once the process is gone)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class PublishRun(NamedTuple):
    seconds: float
    peak_rss: int  # bytes, the publishing process
    peak_tree_pss: int  # bytes, the publishing process and its cleaning children together
    at_peak: list[int]  # bytes: the publisher's PSS, then each child's, at that peak
    report: dict


def run_publish(url: str, files: list[Path], report: Path) -> PublishRun:
    """Publish in a child process and measure it."""
    env = {**os.environ, "DISCLOSURE_DATABASE_URL": url}
    # Migrate first so the timing covers publishing only.
    subprocess.run([sys.executable, "-c", "from publishing.db import get_engine, upgrade; upgrade(get_engine())"],
                   env=env, check=True, cwd=ROOT)
    t = time.perf_counter()
    # publishing.publish directly (what `disclosure publish` runs, without its search sync).
    code = ("import json, sys; from pathlib import Path; from publishing.publish import publish; "
            "r = publish([Path(p) for p in sys.argv[2:]]); "
            "Path(sys.argv[1]).write_text(json.dumps(r.as_json(), default=str), encoding='utf-8'); "
            "sys.exit(0 if r.published else 1)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(report), *map(str, files)], env=env,
                            cwd=ROOT, stdout=subprocess.DEVNULL)
    memory = TreeMemory(proc.pid)
    _, status, _ = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    tree_pss, peak_rss = memory.stop()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"publish failed with {status}")
    data = json.loads(report.read_text(encoding="utf-8"))
    return PublishRun(seconds, peak_rss, tree_pss, memory.at_peak,
                      {"files": data if isinstance(data, list) else [data]})


def blacklist_issue(path: Path, n: int = 20) -> Path:
    from tests.factories import blacklist_row, write_csv

    today = date.today().isoformat()
    rows = [blacklist_row(900_000_000 + i, issue="2026年第99期", 发布日期=today) for i in range(n)]
    return write_csv(path, rows)


def time_small_publish(url: str, path: Path) -> tuple[float, list[float]]:
    """(in-process publish seconds, whole CLI process seconds of three runs) for a small file."""
    from publishing.db import make_engine
    from publishing.publish import publish

    engine = make_engine(url)
    t = time.perf_counter()
    publish([path], engine=engine, show_progress=False)
    in_process = time.perf_counter() - t
    engine.dispose()
    # The CLI also brings the search index up to date: build it first, as a running site has it.
    env = {**os.environ, "DISCLOSURE_DATABASE_URL": url}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "portal.cli", "reindex"], env=env, check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    print(f"{'':>10} search index rebuilt in {time.perf_counter() - t:.0f} s", flush=True)
    # A deployed install has its bytecode compiled (pip does it); a session here may run with
    # PYTHONDONTWRITEBYTECODE=1, which would make every CLI run compile our modules again.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    runs = []
    for n in (98, 97, 96, 95):
        other = path.with_name(f"issue{n}.csv")
        other.write_text(path.read_text(encoding="utf-8-sig").replace("第99期", f"第{n}期"), encoding="utf-8")
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "portal.cli", "publish", str(other)], env=env, check=True,
                       cwd=ROOT, stdout=subprocess.DEVNULL)
        runs.append(time.perf_counter() - t)
    return in_process, runs[1:]  # the first run writes the bytecode


def machine_speed() -> str:
    """Two yardsticks printed with the figures: this machine's speed varies between sessions
    (the same code has measured 7.2 and 14.2 s for the 100k load on different days)."""
    import sqlite3

    t = time.perf_counter()
    total = 0
    for i in range(5_000_000):
        total += i
    python = time.perf_counter() - t
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id TEXT PRIMARY KEY, data TEXT)")
    rows = [(f"{i * 2654435761 % 2**32:08x}", "烟台市芝罘区" * 40) for i in range(200_000)]
    t = time.perf_counter()
    db.executemany("INSERT INTO t VALUES (?, ?)", rows)
    sqlite = time.perf_counter() - t
    return (f"machine: Python loop of 5M additions {python:.2f} s; SQLite 200k inserts "
            f"in memory {sqlite / 200_000 * 1e6:.2f} us each")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--no-issue", action="store_true", help="skip the 20-row publish (and its reindex)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    print(machine_speed(), flush=True)
    if "postgresql" in args.backends:
        print(f"PostgreSQL: {postgres_settings()}", flush=True)
    print(f"{'entities':>10} {'backend':>10} {'records':>10} {'seconds':>8} {'records/s':>10} "
          f"{'peak RSS':>9} {'peak PSS (all processes)':>25}")
    last_url = None
    for entities in args.entities:
        files = sorted(p for p in sample_dir(entities).iterdir() if p.is_file())
        for backend in args.backends:
            url = fresh_database(backend, entities)
            seconds, rss, tree_pss, at_peak, report = run_publish(url, files, OUT / f"report-{backend}-{entities}.json")
            records = sum(f["accepted"] for f in report["files"])
            print(f"{entities:>10,} {backend:>10} {records:>10,} {seconds:>8.1f} {records / seconds:>10,.0f} "
                  f"{rss / 2**20:>7.0f}MB {tree_pss / 2**20:>23.0f}MB "
                  f"(= {' + '.join(f'{p / 2**20:.0f}' for p in at_peak)})", flush=True)
            last_url = (backend, entities, url) if entities == max(args.entities) else last_url
            if entities == max(args.entities) and not args.no_issue:
                issue = blacklist_issue(OUT / f"issue-{backend}.csv")
                in_proc, whole = time_small_publish(url, issue)
                print(f"{'':>10} {backend:>10} 20-row blacklist issue into {entities:,}: "
                      f"{in_proc * 1000:.0f} ms in process, "
                      f"{' / '.join(f'{s * 1000:.0f}' for s in whole)} ms as CLI runs", flush=True)


if __name__ == "__main__":
    main()
