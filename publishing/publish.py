"""Publish files: read → clean → plan → commit, all of it in ONE transaction.

A file with any rejected row publishes nothing unless accept_partial; a dry run plans
everything and rolls back. The report says exactly what happened to every row.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from publishing import clock
from publishing.clean import Cleaner
from publishing.commit import Writer, finish_batch, lock_writer, start_batch
from publishing.db import get_engine, writer_connection
from publishing.plan import Planner
from publishing.progress import progress
from publishing.rows import CleanRow, Reject, SourceError, SourceFile
from publishing.rules import Rules, load_rules
from publishing.sources import open_source

CHUNK = 5000
COUNT_KEYS = ("added", "changed", "withdrawn", "unchanged")


@dataclass
class FileReport:
    file: str
    kind: str | None
    rows: int = 0
    rejected: list[Reject] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    format: str | None = None
    encoding: str | None = None
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.rows - len({r.row for r in self.rejected if r.row})

    def as_dict(self, published: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": self.file, "kind": self.kind, "rows": self.rows, "accepted": self.accepted,
            "rejected": [{k: v for k, v in r.as_dict().items() if k != "file"} for r in self.rejected],
        }
        out.update({k: self.counts.get(k, 0) for k in COUNT_KEYS})
        out.update({k: v for k, v in sorted(self.counts.items()) if k not in COUNT_KEYS})
        out.update(published=published, format=self.format, encoding=self.encoding,
                   ignored_columns=self.ignored_columns)
        return out


@dataclass
class PublishResult:
    reports: list[FileReport]
    published: bool
    dry_run: bool
    batch_id: int | None
    events: int

    @property
    def rejected(self) -> int:
        return sum(len(r.rejected) for r in self.reports)

    def as_json(self) -> dict[str, Any] | list[dict[str, Any]]:
        items = [r.as_dict(self.published) for r in self.reports]
        return items[0] if len(items) == 1 else items


def publish(paths: list[Path], *, kind: str | None = None, mode: str = "incremental",
            accept_partial: bool = False, dry_run: bool = False, engine: Engine | None = None,
            today: date | None = None, rules: Rules | None = None, show_progress: bool = True,
            actor: str = "cli") -> PublishResult:
    if mode not in ("incremental", "snapshot"):
        raise ValueError(f"unknown mode {mode!r}")
    engine = engine or get_engine()
    today = today or clock.today()
    rules = rules or load_rules()
    reports: list[FileReport] = []
    with writer_connection(engine) as conn, conn.begin() as tx:
        lock_writer(conn)
        batch_id = start_batch(conn, kind=kind, mode=mode, actor=actor, files=[str(p) for p in paths])
        writer = Writer(conn, batch_id)
        planner = Planner(conn, writer, rules, today)
        kinds_seen: dict[str, FileReport] = {}
        for path in paths:
            report = _publish_file(path, kind, planner, today, show_progress)
            reports.append(report)
            if report.kind:
                kinds_seen[report.kind] = report
        if mode == "snapshot" and not any(r.rejected for r in reports):
            for k, report in kinds_seen.items():
                before = planner.counts["withdrawn"]
                planner.withdraw_unseen(k)
                report.counts["withdrawn"] += planner.counts["withdrawn"] - before
        writer.finish()
        has_rejects = any(r.rejected for r in reports)
        published = not dry_run and (accept_partial or not has_rejects)
        if published:
            finish_batch(conn, batch_id, {r.file: r.as_dict(True) for r in reports})
            tx.commit()
        else:
            tx.rollback()
    return PublishResult(reports, published, dry_run, batch_id if published else None,
                         writer.events_written if published else 0)


def _publish_file(path: Path, kind: str | None, planner: Planner, today: date,
                  show_progress: bool) -> FileReport:
    report = FileReport(file=str(path), kind=kind)
    try:
        source = open_source(path, kind)
    except SourceError as err:
        report.rejected.append(err.reject)
        return report
    report.kind, report.format, report.encoding = source.kind, source.format, source.encoding
    report.ignored_columns = list(source.ignored_columns)
    before = Counter(planner.counts)
    rejects_before = len(planner.rejects)
    cleaner = Cleaner(source.kind, today, str(path), headers=_headers_by_key(source))
    chunk: list[CleanRow] = []
    with progress(f"发布 {path.name}", enabled=show_progress) as bar:
        for row in source.rows:
            report.rows += 1
            result = cleaner.clean(row)
            if isinstance(result, list):
                report.rejected.extend(result)
                continue
            chunk.append(result)
            if len(chunk) >= CHUNK:
                planner.apply_chunk(chunk)
                bar.advance(len(chunk))
                chunk = []
        if chunk:
            planner.apply_chunk(chunk)
            bar.advance(len(chunk))
    report.rejected.extend(planner.rejects[rejects_before:])
    report.rejected.sort(key=lambda r: r.row)
    report.counts = planner.counts - before
    return report


def _headers_by_key(source: SourceFile) -> dict[str, str]:
    out: dict[str, str] = {}
    for header, key in source.columns.items():
        out.setdefault(key, header)
    return out
