"""API benchmark: a real server (uvicorn subprocess) over `disclosure sample` data.

Measures feed requests/s (cold and cached), credit-check latency (single, serial, a realistic
mix of listed, unlisted, unknown and invalid codes; and 1,000-code batches), the full NDJSON
export (rows/s and the server's peak RSS during it), and the open-data snapshot build.

    .venv/bin/python bench/api.py                       # 1,200,000 entities ≈ 2M records, SQLite
    .venv/bin/python bench/api.py --entities 100000 --backend postgresql
    .venv/bin/python bench/api.py --reuse              # keep an already published database

The server runs with an API key whose limit is out of reach, so the rate limiter is on the path
(as in production) but never refuses.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import OUT, PG_ADMIN, fresh_database, run_publish, sample_dir  # noqa: E402
from tests.servers import portal_server  # noqa: E402


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def prepare(backend: str, entities: int, reuse: bool) -> str:
    """The URL of a bench database holding the sample at this scale, published and migrated."""
    from publishing.db import make_engine, upgrade

    url = None
    if reuse:
        url = (
            f"sqlite:///{OUT / f'bench-{entities}.db'}"
            if backend == "sqlite"
            else PG_ADMIN.rsplit("/", 1)[0] + f"/disclosure_bench_{entities}"
        )
        try:
            engine = make_engine(url)
            with engine.connect() as conn:
                n = conn.execute(text("SELECT count(*) FROM records")).scalar()
            engine.dispose()
            print(f"  reusing {url} ({n:,} records)")
        except Exception as err:  # noqa: BLE001 - not there yet: publish
            print(f"  no database to reuse ({type(err).__name__}); publishing")
            url = None
    if url is None:
        files = sorted(p for p in sample_dir(entities).iterdir() if p.is_file())
        url = fresh_database(backend, entities)
        run = run_publish(url, files, OUT / f"report-api-{backend}-{entities}.json")
        accepted = sum(f["accepted"] for f in run.report["files"])
        print(f"  published {accepted:,} rows in {run.seconds:.0f} s")
    engine = make_engine(url)
    upgrade(engine)  # migrations added since the database was made (api_keys …)
    if engine.dialect.name == "postgresql":
        # fresh statistics, as autovacuum makes them soon after a load: without them the
        # planner scans records by kind instead of using ix_records_entity_status
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return url


def pick_codes(url: str, n: int, seed: int = 7) -> list[str]:
    """A realistic mix: 20 % on a list, 40 % known and unlisted, 25 % unknown, 15 % invalid."""
    from publishing.codes import uscc_check_char
    from publishing.commit import ENTITIES, RECORDS
    from publishing.db import make_engine
    from publishing.rules import load_rules

    engine = make_engine(url)
    schemes = load_rules().list_schemes()
    with engine.connect() as conn:
        listed = list(
            conn.execute(
                select(RECORDS.c.entity_id)
                .where(
                    RECORDS.c.status == "active",
                    RECORDS.c.entity_id.is_not(None),
                    (RECORDS.c.kind == "blacklist") | RECORDS.c.category.in_(schemes),
                )
                .group_by(RECORDS.c.entity_id)
                .limit(5000)
            ).scalars()
        )
        known = list(
            conn.execute(select(ENTITIES.c.id).order_by(func.random()).limit(20000)).scalars()
        )
    engine.dispose()
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        r = rnd.random()
        if r < 0.20 and listed:
            out.append(rnd.choice(listed))
        elif r < 0.60:
            out.append(rnd.choice(known))
        elif r < 0.85:
            first17 = f"91370602{rnd.randrange(10**9):09d}"
            out.append(first17 + uscc_check_char(first17))
        else:
            code = rnd.choice(known)
            out.append(code[:-1] + ("0" if code[-1] != "0" else "1"))  # a wrong check character
    return out


@contextmanager
def server(url: str, data_dir: Path) -> Iterator[tuple[str, int]]:
    """The portal under uvicorn (no access log) over `url`; yields (base URL, server pid)."""
    env = {
        "DISCLOSURE_DATABASE_URL": url,
        "DISCLOSURE_DATA_DIR": str(data_dir),
        "PYTHONPATH": str(ROOT),
    }
    with portal_server(env, access_log=False, start_timeout=120, stop_timeout=30) as (base, proc):
        yield base, proc.pid


def feeds(client: httpx.Client, seconds: float = 5.0, threads: int = 8) -> list[tuple[str, str]]:
    probe = client.get("/feeds/penalty.atom")
    if probe.status_code == 404:
        print("  note: /feeds/penalty.atom is not served yet; feed figures skipped")
        return []
    rows = []
    cold = []
    for district in ("370602", "370611", "370612", "370613", "370614", "370681", "370682"):
        t = time.perf_counter()
        r = client.get(f"/feeds/penalty/{district}.atom")
        cold.append(time.perf_counter() - t)
        assert r.status_code == 200, r.status_code
    rows.append(
        (
            "feed, cold (first request per district feed)",
            f"p50 {statistics.median(cold) * 1000:.1f} ms, max {max(cold) * 1000:.1f} ms",
        )
    )
    for label, headers in (
        ("feed, cached (same URL)", {}),
        (
            "feed, revalidated (If-None-Match → 304)",
            {"If-None-Match": probe.headers.get("etag", "")},
        ),
    ):
        count = [0] * threads
        stop = time.perf_counter() + seconds

        def worker(i: int, headers=headers, stop=stop, count=count) -> None:
            with httpx.Client(base_url=str(client.base_url), headers=dict(client.headers)) as c:
                while time.perf_counter() < stop:
                    r = c.get("/feeds/penalty.atom", headers=headers)
                    assert r.status_code in (200, 304), r.status_code
                    count[i] += 1

        pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        t = time.perf_counter()
        for th in pool:
            th.start()
        for th in pool:
            th.join()
        rows.append(
            (label, f"{sum(count) / (time.perf_counter() - t):,.0f} req/s ({threads} clients)")
        )
    return rows


def credit_checks(client: httpx.Client, codes: list[str], batches: int) -> list[tuple[str, str]]:
    for code in codes[:50]:  # warm-up
        client.get("/api/v1/credit-check", params={"uscc": code})
    times = []
    listed = 0
    for code in codes:
        t = time.perf_counter()
        r = client.get("/api/v1/credit-check", params={"uscc": code})
        times.append(time.perf_counter() - t)
        assert r.status_code == 200, r.text
        listed += r.json()["results"][0]["listed"]
    ms = [x * 1000 for x in times]
    rows = [
        (
            f"credit check, single ×{len(codes):,} serial ({listed} listed)",
            f"p50 {_percentile(ms, 50):.2f} / p95 {_percentile(ms, 95):.2f} / "
            f"p99 {_percentile(ms, 99):.2f} ms",
        )
    ]
    rnd = random.Random(11)
    btimes = []
    for _ in range(batches):
        batch = rnd.sample(codes, 1000) if len(codes) >= 1000 else (codes * 1000)[:1000]
        t = time.perf_counter()
        r = client.post("/api/v1/credit-check", json={"uscc": batch})
        btimes.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200 and r.json()["count"] == 1000, r.text[:200]
    rows.append(
        (
            f"credit check, 1,000-code batch ×{batches}",
            f"p50 {_percentile(btimes, 50):.1f} / p95 {_percentile(btimes, 95):.1f} ms",
        )
    )
    return rows


def export_all(client: httpx.Client, pid: int, label: str) -> list[tuple[str, str]]:
    """The full export: every kind's NDJSON download, then the totals."""
    from publishing.contract import KINDS

    lines, totals = [], [0, 0, 0.0, 0]  # rows, bytes, seconds, peak RSS kB
    for kind in KINDS:
        line, (rows, size, seconds, peak) = export(client, pid, kind, label)
        lines.append(line)
        totals = [totals[0] + rows, totals[1] + size, totals[2] + seconds, max(totals[3], peak)]
    rows, size, seconds, peak = totals
    lines.append((f"{label}: all {len(KINDS)} datasets",
                  f"{rows:,} rows, {size / 2**20:,.0f} MB in {seconds:.1f} s = "
                  f"{rows / seconds:,.0f} rows/s; server peak RSS {peak / 1024:.0f} MB"))
    return lines


def export(client: httpx.Client, pid: int, kind: str, label: str) -> tuple[tuple[str, str], tuple]:
    """One dataset's NDJSON download: (report line, (rows, bytes, seconds, peak RSS kB))."""
    try:  # reset the peak RSS (VmHWM) so that it covers this download only
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    before = _kb(pid, "VmRSS")
    rows = size = 0
    t = time.perf_counter()
    with client.stream("GET", f"/open-data/{kind}.ndjson", timeout=None) as r:
        assert r.status_code == 200, r.status_code
        for chunk in r.iter_bytes():
            rows += chunk.count(b"\n")
            size += len(chunk)
    seconds = time.perf_counter() - t
    peak = _kb(pid, "VmHWM")
    note = "" if reset else " (VmHWM since server start)"
    line = (
        f"{label}: /open-data/{kind}.ndjson",
        f"{rows:,} rows, {size / 2**20:,.0f} MB in {seconds:.1f} s = {rows / seconds:,.0f} rows/s; "
        f"server RSS {before / 1024:.0f} MB before, peak {peak / 1024:.0f} MB{note}",
    )
    return line, (rows, size, seconds, peak)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=1_200_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--reuse", action="store_true", help="reuse a published bench database")
    parser.add_argument("--singles", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--no-snapshot", action="store_true", help="skip the snapshot build")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"API benchmark: {args.entities:,} entities, {args.backend}")
    url = prepare(args.backend, args.entities, args.reuse)

    from publishing import apikeys, opendata
    from publishing.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        records = conn.execute(
            text("SELECT count(*) FROM records WHERE status = 'active'")
        ).scalar()
    key = apikeys.create_key(engine, "bench", per_minute=10**9)
    codes = pick_codes(url, args.singles)
    data_dir = OUT / f"var-api-{args.backend}-{args.entities}"
    shutil.rmtree(data_dir / "opendata", ignore_errors=True)
    rows: list[tuple[str, str]] = [("published records (active)", f"{records:,}")]
    with (
        server(url, data_dir) as (base, pid),
        httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60) as client,
    ):
        rows += feeds(client)
        rows += credit_checks(client, codes, args.batches)
        rows += export_all(client, pid, "export from the database")
        if not args.no_snapshot:
            t = time.perf_counter()
            index = opendata.build(engine, data_dir / "opendata")
            size = sum(f["bytes"] for f in index["files"])
            rows.append(
                (
                    "open-data build (snapshot + deltas + index)",
                    f"{time.perf_counter() - t:.1f} s, {len(index['files'])} files, "
                    f"{size / 2**20:,.0f} MB",
                )
            )
            rows += export_all(client, pid, "export from the snapshot")
        rows.append(("server VmHWM at the end", f"{_kb(pid, 'VmHWM') / 1024:.0f} MB"))
    engine.dispose()
    width = max(len(r[0]) for r in rows)
    print()
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


if __name__ == "__main__":
    main()
