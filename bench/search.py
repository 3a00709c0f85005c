"""Search and profile benchmark at scale, side by side with Datasette on the same entities.

    .venv/bin/python bench/search.py --entities 1000000 [--backend sqlite|postgresql] [--workers 1]

Builds (or reuses) a database published from `disclosure sample` data, rebuilds the search
index, serves the portal with uvicorn and Datasette (sqlite-utils FTS, trigram tokenizer) over
the same entities, then measures, in the same run:
  - p50/p95/p99 of a realistic query mix (sequential, keep-alive), ours and Datasette's;
  - p50/p95/p99 of entity profile pages;
  - requests/s under concurrency (wrk, 8 connections, 15 s) for both;
  - peak RSS of each portal worker (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.ingest import OUT, PG_ADMIN, fresh_database, run_publish, sample_dir  # noqa: E402
from tests.servers import free_port, portal_server, stop, wait_up  # noqa: E402


def prepare_database(entities: int, backend: str) -> str:
    marker = OUT / f"search-{backend}-{entities}.ready"
    if marker.exists():
        return marker.read_text().strip()
    ingested = OUT / f"report-{backend}-{entities}.json"  # bench/ingest.py left a database
    if ingested.exists():
        url = (f"sqlite:///{OUT / f'bench-{entities}.db'}" if backend == "sqlite"
               else PG_ADMIN.rsplit("/", 1)[0] + f"/disclosure_bench_{entities}")
        print("  reusing the database published by bench/ingest.py")
    else:
        files = sorted(p for p in sample_dir(entities).iterdir() if p.is_file())
        url = fresh_database(backend, entities)
        run = run_publish(url, files, OUT / f"search-report-{backend}-{entities}.json")
        print(f"  published in {run.seconds:.0f} s (peak RSS {run.peak_rss / 2**20:.0f} MB)")
    t = time.perf_counter()
    env = {**os.environ, "DISCLOSURE_DATABASE_URL": url}
    subprocess.run([sys.executable, "-m", "portal.cli", "reindex"], env=env, cwd=ROOT, check=True)
    print(f"  search index rebuilt in {time.perf_counter() - t:.0f} s")
    marker.write_text(url)
    return url


def datasette_db(url: str, entities: int) -> Path:
    """The same entities in a Datasette-ready SQLite file with trigram FTS (sqlite-utils)."""
    path = OUT / f"datasette-{entities}.db"
    if path.exists():
        return path
    from sqlalchemy import text

    from publishing.db import make_engine

    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    out = sqlite3.connect(tmp)
    out.execute("CREATE TABLE entities (id TEXT PRIMARY KEY, uscc TEXT, name TEXT, former_names TEXT, "
                "district TEXT, legal_rep TEXT, address TEXT)")
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, uscc, name, former_names, district, legal_rep, address "
                                 "FROM entities")).yield_per(50_000)
        batch = []
        for r in rows:
            batch.append((r[0], r[1], r[2], json.dumps(r[3], ensure_ascii=False) if not isinstance(r[3], str) else r[3],
                          r[4], r[5], r[6]))
            if len(batch) >= 50_000:
                out.executemany("INSERT INTO entities VALUES (?,?,?,?,?,?,?)", batch)
                batch = []
        out.executemany("INSERT INTO entities VALUES (?,?,?,?,?,?,?)", batch)
    out.commit()
    out.close()
    subprocess.run([str(ROOT / ".venv/bin/sqlite-utils"), "enable-fts", str(tmp), "entities", "name",
                    "uscc", "former_names", "--tokenize", "trigram"], check=True)
    tmp.rename(path)
    return path


def query_mix(url: str, n: int, seed: int = 7) -> list[tuple[str, str]]:
    """(kind of query, query) pairs drawn from the published entities."""
    from pypinyin import Style, lazy_pinyin
    from sqlalchemy import text

    from publishing.db import make_engine

    rng = random.Random(seed)
    engine = make_engine(url)
    with engine.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM entities")).scalar_one()
        picks = sorted(rng.sample(range(total), min(n, total)))
        names = conn.execute(text("SELECT id, name FROM entities ORDER BY id")).all()
    chosen = [names[i] for i in picks]
    mix: list[tuple[str, str]] = []
    for ent_id, name in chosen:
        roll = rng.random()
        core = name.replace("有限公司", "").replace("烟台市", "").replace("烟台", "") or name
        if roll < 0.45:  # a part of the name, 2-4 characters
            size = rng.choice((2, 3, 4))
            start = rng.randrange(max(1, len(core) - size + 1))
            mix.append(("partial", core[start:start + size]))
        elif roll < 0.60:
            mix.append(("full name", name))
        elif roll < 0.80:
            mix.append(("uscc", ent_id))
        elif roll < 0.90:
            mix.append(("uscc lower/spaced", " ".join([ent_id[:6].lower(), ent_id[6:]])))
        else:
            part = core[:2]
            mix.append(("pinyin initials", "".join(lazy_pinyin(part, style=Style.FIRST_LETTER))))
    return mix


def timed(client: httpx.Client, paths: list[str]) -> list[float]:
    out = []
    for path in paths:
        t = time.perf_counter()
        r = client.get(path)
        out.append((time.perf_counter() - t) * 1000)
        if r.status_code != 200:
            raise SystemExit(f"{path} -> {r.status_code}")
    return out


def pct(values: list[float]) -> str:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {q[49]:6.1f}  p95 {q[94]:6.1f}  p99 {q[98]:6.1f} ms"


def wrk(base: str, paths: list[str], seconds: int = 15, connections: int = 8,
        headers: dict[str, str] | None = None) -> float:
    script = OUT / "wrk_paths.lua"
    lua_paths = ",".join(json.dumps(p) for p in paths)
    script.write_text(
        "local paths = {" + lua_paths + "}\nlocal i = 0\n"
        + "".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in (headers or {}).items())
        + "responses = {}\nresponse = function(status) if status ~= 200 then "
        "error('non-200 response: ' .. status) end end\n"
        "request = function()\n i = (i % #paths) + 1\n return wrk.format('GET', paths[i])\nend\n",
        encoding="utf-8")
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), base],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise SystemExit(out)


def peak_rss_mb(pid: int) -> float:
    total = 0.0
    for p in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total = max(total, int(line.split()[1]) / 1024)
        except FileNotFoundError:
            pass
    return total


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def compare_with_datasette(url: str, entities: int, mix: list[tuple[str, str]], ours_rps: float) -> None:
    """The same query mix against Datasette (trigram FTS) over the same entities."""
    dpath = datasette_db(url, entities)
    dport = free_port()
    datasette = subprocess.Popen([str(ROOT / ".venv/bin/datasette"), "serve", str(dpath), "--port",
                                  str(dport), "--setting", "sql_time_limit_ms", "10000"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        dbase = f"http://127.0.0.1:{dport}"
        wait_up(dbase + "/-/versions.json", 120, datasette, interval=0.3)
        table = f"/{dpath.stem}/entities.json"
        d_paths = [f"{table}?_search={quote(q)}&_size=20" for _, q in mix]
        with httpx.Client(base_url=dbase, timeout=60) as client:
            timed(client, d_paths[:50])
            theirs = timed(client, d_paths)
            found = sum(1 for p in d_paths[:200] if client.get(p).json().get("rows"))
        print(f"datasette search (n={len(theirs)}): {pct(theirs)}; "
              f"{found}/200 queries returned any row (trigram FTS misses 2-character and pinyin queries)")
        d_rps = wrk(dbase, d_paths[:500])
        print(f"throughput: datasette search {d_rps:,.0f} req/s; ours/datasette = {ours_rps / d_rps:.1f}x")
    finally:
        stop(datasette, 30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--backend", default="sqlite", choices=("sqlite", "postgresql"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--no-datasette", action="store_true")
    parser.add_argument("--wrk-seconds", type=int, default=15, help="0: no throughput runs")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"search benchmark: {args.entities:,} entities on {args.backend}, {args.workers} worker(s)")
    url = prepare_database(args.entities, args.backend)
    mix = query_mix(url, args.queries)
    env = {"DISCLOSURE_DATABASE_URL": url, "DISCLOSURE_LOG_FORMAT": "json",
           "DISCLOSURE_LOG_LEVEL": "WARNING"}
    # The benchmark is one client hammering the API: give it a key with a limit it cannot reach.
    from publishing import apikeys
    from publishing.db import make_engine

    key = apikeys.create_key(make_engine(url), f"bench-{time.time():.0f}", per_minute=10**9)
    headers = {"X-API-Key": key}
    with portal_server(env, workers=args.workers, start_timeout=120, stop_timeout=30) as (base, portal):
        with httpx.Client(base_url=base, timeout=30, headers=headers) as client:
            search_paths = [f"/api/v1/search?q={quote(q)}" for _, q in mix]
            timed(client, search_paths[:50])  # warm-up
            ours = timed(client, search_paths)
            by_kind: dict[str, list[float]] = {}
            for (kind, _), ms in zip(mix, ours, strict=True):
                by_kind.setdefault(kind, []).append(ms)
            html = timed(client, [f"/search?q={quote(q)}" for _, q in mix[:300]])
            ids = [q for k, q in mix if k == "uscc"][:300]
            profiles = timed(client, [f"/entities/{i}" for i in ids])
        print(f"search API  (n={len(ours)}): {pct(ours)}")
        for kind, values in sorted(by_kind.items()):
            if len(values) >= 10:
                print(f"  {kind:<18} (n={len(values):>4}): {pct(values)}")
        print(f"search page (n={len(html)}): {pct(html)}")
        print(f"profile     (n={len(profiles)}): {pct(profiles)}")
        ours_rps = None
        if args.wrk_seconds:
            ours_rps = wrk(base, search_paths[:500], args.wrk_seconds, headers=headers)
            profile_rps = wrk(base, [f"/entities/{i}" for i in ids], args.wrk_seconds, headers=headers)
            print(f"throughput: search {ours_rps:,.0f} req/s, profile {profile_rps:,.0f} req/s "
                  "(wrk, 8 connections)")
        print(f"peak RSS per worker: {peak_rss_mb(portal.pid):.0f} MB")
        if not args.no_datasette and args.backend == "sqlite" and ours_rps is not None:
            compare_with_datasette(url, args.entities, mix, ours_rps)


if __name__ == "__main__":
    main()
