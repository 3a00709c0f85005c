"""Load on the request intake: N concurrent credit-repair submissions (multipart, one PDF each)
through POST /api/v1/requests on a real uvicorn server, then a check that nothing was lost.

    .venv/bin/python bench/requests_load.py                 # 200 at once, temporary SQLite
    .venv/bin/python bench/requests_load.py --n 500 --concurrency 100
    .venv/bin/python bench/requests_load.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench

The database must be new or empty of requests (the script migrates it and publishes N penalty
records, one per entity, each eligible for repair). Submissions carry an API key, as a
forwarding system's would: the per-IP limit of anonymous submitters is not what is measured.

Prints latency percentiles and throughput; exits 1 unless exactly N requests were stored, with
N distinct tracking numbers, every receipt found in the database, every attachment on disk with
its SHA-256, and the audit chain intact.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from publishing.settings import get_settings  # noqa: E402
from tests.servers import portal_server  # noqa: E402

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
HEADER = [
    "统一社会信用代码",
    "当事人名称",
    "所属区市",
    "行政处罚决定书文号",
    "违法行为类型",
    "违法事实",
    "处罚依据",
    "处罚种类",
    "罚款金额(元)",
    "处罚机关",
    "处罚决定日期",
    "失信程度",
    "领域",
]


def prepare(url: str, workdir: Path, n: int) -> tuple[list[tuple[str, str]], str]:
    """Migrate, publish n repairable penalties; returns [(uscc, record id)] and an API key."""
    from sqlalchemy import select

    from publishing import apikeys, clock
    from publishing.codes import uscc_check_char
    from publishing.commit import RECORDS
    from publishing.db import make_engine, upgrade
    from publishing.publish import publish

    engine = make_engine(url)
    upgrade(engine)
    decided = (clock.today() - timedelta(days=180)).isoformat()
    path = workdir / "load-penalties.csv"
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        for i in range(n):
            first17 = f"91370602{700000000 + i:09d}"
            out.writerow(
                [
                    first17 + uscc_check_char(first17),
                    f"烟台压测{i}商贸有限公司",
                    "芝罘区",
                    f"烟芝市监罚〔2026〕压{i}号",
                    "虚假宣传",
                    f"当事人发布虚假广告{i}。",
                    "《中华人民共和国广告法》第五十五条",
                    "警告;罚款",
                    "3000",
                    "烟台市芝罘区市场监督管理局",
                    decided,
                    "一般",
                    "广告",
                ]
            )
    result = publish([path], engine=engine, show_progress=False)
    assert result.published, result.as_json()
    with engine.connect() as conn:
        rows = conn.execute(
            select(RECORDS.c.entity_id, RECORDS.c.id)
            .where(RECORDS.c.source_file == str(path))
            .order_by(RECORDS.c.entity_id)
        ).all()
    key = apikeys.create_key(engine, "load test", per_minute=1_000_000)
    engine.dispose()
    return [(r.entity_id, r.id) for r in rows], key


async def submit_all(
    base: str, targets: list[tuple[str, str]], concurrency: int, api_key: str
) -> list[tuple[int, float, dict]]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    start = asyncio.Event()

    async def one(client: httpx.AsyncClient, i: int, uscc: str, record: str):
        data = {
            "type": "repair",
            "uscc": uscc,
            "record_ids": [record],
            "contact_name": f"压测{i}",
            "mobile": f"139{i:08d}",
            "reason": f"已经履行完毕处罚决定并整改到位,编号{i}。",
            "commitment": "true",
        }
        pdf = PDF + f"% load {i}\n".encode()
        await start.wait()
        async with gate:
            began = time.perf_counter()
            response = await client.post(
                "/api/v1/requests",
                data=data,
                files=[("attachments", (f"证明{i}.pdf", pdf, "application/pdf"))],
                headers={"X-API-Key": api_key, "Idempotency-Key": f"load-{i}"},
            )
            elapsed = time.perf_counter() - began
        try:
            body = response.json()
        except ValueError:
            body = {"raw": response.text[:200]}
        return response.status_code, elapsed, {**body, "_sha256": hashlib.sha256(pdf).hexdigest()}

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
        tasks = [asyncio.create_task(one(client, i, u, r)) for i, (u, r) in enumerate(targets)]
        start.set()
        return await asyncio.gather(*tasks)


def check(url: str, data_dir: Path, results: list[tuple[int, float, dict]]) -> dict:
    """What the database and the disk hold after the load, against the receipts."""
    from sqlalchemy import func, select

    from publishing import audit
    from publishing.db import make_engine
    from publishing.request_models import ATTACHMENTS, REQUESTS

    engine = make_engine(url)
    with engine.connect() as conn:
        stored = dict(conn.execute(select(REQUESTS.c.tracking_no, REQUESTS.c.id)).all())
        files = conn.execute(select(ATTACHMENTS.c.stored_name, ATTACHMENTS.c.sha256)).all()
        count = conn.execute(select(func.count()).select_from(REQUESTS)).scalar_one()
    chain_ok, bad = audit.verify(engine)
    engine.dispose()
    receipts = [body.get("tracking_no") for status, _, body in results if status == 201]
    folder = data_dir / "attachments"
    on_disk = {p.name for p in folder.iterdir() if p.is_file()} if folder.exists() else set()
    files_ok = all(
        name in on_disk and hashlib.sha256((folder / name).read_bytes()).hexdigest() == sha
        for name, sha in files
    )
    return {
        "sent": len(results),
        "created_201": len(receipts),
        "statuses": sorted({status for status, _, _ in results}),
        "stored": count,
        "distinct_tracking_numbers": len(set(receipts)),
        "receipts_found": sum(1 for t in receipts if t in stored),
        "attachments": len(files),
        "files_on_disk_ok": files_ok and len(on_disk) == len(files),
        "expected_hashes_ok": sorted(body["_sha256"] for _, _, body in results)
        == sorted(sha for _, sha in files),
        "audit_chain_ok": chain_ok and bad is None,
    }


def percentiles(latencies: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": max(latencies)}


def run(url: str, workdir: Path, n: int, concurrency: int) -> dict:
    targets, key = prepare(url, workdir, n)
    data_dir = workdir / "var"
    env = {"DISCLOSURE_DATABASE_URL": url, "DISCLOSURE_DATA_DIR": str(data_dir)}
    with portal_server(env) as (base, _):
        began = time.perf_counter()
        results = asyncio.run(submit_all(base, targets, concurrency, key))
        wall = time.perf_counter() - began
    summary = check(url, data_dir, results)
    summary.update(
        concurrency=concurrency,
        wall_seconds=wall,
        per_second=n / wall,
        latency=percentiles([t for _, t, _ in results]),
    )
    summary["ok"] = (
        summary["stored"]
        == n
        == summary["created_201"]
        == summary["receipts_found"]
        == summary["distinct_tracking_numbers"]
        == summary["attachments"]
        and summary["files_on_disk_ok"]
        and summary["expected_hashes_ok"]
        and summary["audit_chain_ok"]
    )
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=None, help="default: all at once")
    parser.add_argument("--database-url", help="default: a new SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="requests-load-") as tmp:
        workdir = Path(tmp)
        # This process adds the API key (the audit chain's first entry) and checks the chain:
        # with the server's data directory, so with its kept secret key (as the tests run it).
        os.environ["DISCLOSURE_DATA_DIR"] = str(workdir / "var")
        get_settings.cache_clear()
        url = args.database_url or f"sqlite:///{workdir / 'load.db'}"
        s = run(url, workdir, args.n, args.concurrency or args.n)
    lat = s["latency"]
    backend = url.split(":", 1)[0]
    print(
        f"{s['sent']} submissions, {s['concurrency']} at once, {backend}: "
        f"{s['wall_seconds']:.2f} s, {s['per_second']:.1f}/s"
    )
    print(
        f"latency p50 {lat['p50'] * 1000:.0f} ms  p95 {lat['p95'] * 1000:.0f} ms  "
        f"p99 {lat['p99'] * 1000:.0f} ms  max {lat['max'] * 1000:.0f} ms"
    )
    print(
        f"stored {s['stored']}, 201 responses {s['created_201']}, distinct tracking numbers "
        f"{s['distinct_tracking_numbers']}, receipts found {s['receipts_found']}, attachments "
        f"{s['attachments']} (files and SHA-256 ok: {s['files_on_disk_ok'] and s['expected_hashes_ok']}), "
        f"audit chain ok: {s['audit_chain_ok']}, statuses {s['statuses']}"
    )
    print("OK: nothing lost" if s["ok"] else "FAILED: see the counts above")
    return 0 if s["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
