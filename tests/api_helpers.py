"""Shared helpers of the open-data API tests: publishing through the real pipeline, a test
client with generous rate limits, and a mirror that follows the change log."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from datetime import date, datetime
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from portal.app import create_app
from portal.ratelimit import Limit, RateLimitConfig
from publishing.commit import Writer, finish_batch, lock_writer, start_batch
from publishing.contract import KINDS
from publishing.db import writer_connection
from publishing.export import iter_public
from publishing.publish import publish
from tests.factories import write_csv, write_ndjson

TODAY = date(2026, 11, 27)
GENEROUS = RateLimitConfig(api=Limit(100_000, 60), bulk=Limit(100_000, 60))


def run(engine, path: Path, **kw):
    kw.setdefault("today", TODAY)
    result = publish([path], engine=engine, show_progress=False, **kw)
    assert result.published, result.as_json()
    return result


def publish_csv(engine, tmp_path: Path, name: str, rows: list[dict], header=None, **kw):
    return run(engine, write_csv(tmp_path / name, rows, header=header), **kw)


def publish_ndjson(engine, tmp_path: Path, name: str, rows: list[dict], **kw):
    return run(engine, write_ndjson(tmp_path / name, rows), **kw)


@contextlib.contextmanager
def api_client(engine, limits: RateLimitConfig = GENEROUS, opendata_dir: Path | None = None):
    app = create_app(engine)
    app.state.rate_limits = limits
    if opendata_dir is not None:
        app.state.opendata_dir = str(opendata_dir)
    with TestClient(app) as client:
        yield client


def published(engine) -> dict[str, dict[str, Any]]:
    """Every published record in its public shape, by id (what a mirror must hold)."""
    return {rec["id"]: rec for kind in KINDS for rec in iter_public(kind, engine)}


def apply(mirror: dict[str, dict], events: list[dict]) -> None:
    """A consumer of the change log: put the record, or delete the id."""
    for ev in events:
        if ev["record"] is not None:
            mirror[ev["record_id"]] = ev["record"]
        else:
            mirror.pop(ev["record_id"], None)


def sync(
    client: TestClient,
    mirror: dict[str, dict],
    since: int | str,
    limit: int = 1000,
    kind: str | None = None,
) -> str:
    """Follow /api/v1/changes from `since` until has_more is false; returns the new cursor."""
    while True:
        params: dict[str, Any] = {"since": since, "limit": limit}
        if kind:
            params["kind"] = kind
        r = client.get("/api/v1/changes", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        apply(mirror, body["changes"])
        assert int(body["next"].split(".")[0]) >= int(str(since).split(".")[0])
        since = body["next"]
        if not body["has_more"]:
            return since


def bulk_penalties(
    engine, n: int, start: int = 0, at: datetime = datetime(2026, 11, 27, 8, 0)
) -> None:
    """n synthetic penalty records written through the one writer (fast: no file parsing)."""
    with writer_connection(engine) as conn, conn.begin():
        lock_writer(conn)
        batch = start_batch(conn, kind="penalty", mode="incremental", actor="test", files=[])
        writer = Writer(conn, batch, at=at)
        for i in range(start, start + n):
            rid = f"pn-{i:016x}"
            data = {
                "uscc": None,
                "entity_name": f"烟台测试{i}商店",
                "decision_no": f"烟市监罚〔2026〕{i}号",
                "violation_type": "经营超过保质期的食品",
                "facts": "当事人经营超过保质期的食品。" * 3,
                "basis": "《中华人民共和国食品安全法》第一百二十四条",
                "penalty_kinds": ["警告", "罚款"],
                "fine_yuan": "5000.00",
                "authority": "烟台市市场监督管理局",
                "decided_on": "2026-06-01",
                "severity": "一般",
                "domain": "食品",
            }
            writer.insert(
                {
                    "id": rid,
                    "kind": "penalty",
                    "entity_id": None,
                    "status": "active",
                    "status_reason": None,
                    "version": 1,
                    "district": "370602",
                    "event_date": date(2026, 6, 1),
                    "publicity_until": date(2027, 6, 1),
                    "repairable_from": None,
                    "issue_id": None,
                    "category": "食品",
                    "grade": None,
                    "data": data,
                    "group_key": rid,
                    "content_hash": f"{i:032x}",
                    "source_file": None,
                    "source_row": None,
                },
                "add",
            )
            if (i - start) % 2000 == 1999:
                writer.flush()
        writer.finish()
        finish_batch(conn, batch, {"added": n})


class Backup:
    """A real backup and restore of the test database: a file copy (SQLite), pg_dump and
    pg_restore (PostgreSQL), with the sequences as they were."""

    def __init__(self, engine, database_url: str, tmp_path) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self.url = database_url.replace("+psycopg", "")
        self.file = tmp_path / ("backup.db" if self.sqlite else "backup.pgdump")
        engine.dispose()
        if self.sqlite:
            shutil.copy(engine.url.database, self.file)
        else:
            subprocess.run(["pg_dump", "-Fc", "-f", str(self.file), self.url], check=True)

    def restore(self) -> None:
        self.engine.dispose()
        if self.sqlite:
            shutil.copy(self.file, self.engine.url.database)
            return
        subprocess.run(
            ["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges",
             "--single-transaction", "--exit-on-error", "-d", self.url, str(self.file)],
            check=True,
            capture_output=True,
        )
