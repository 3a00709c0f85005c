"""Publish files: read → clean → plan → commit, all of it in ONE transaction.

A file with any rejected row publishes nothing unless accept_partial; a file that cannot be
read at all publishes nothing, whatever accept_partial says; a dry run plans everything and
rolls back. The report says exactly what happened to every row.

A snapshot withdraws every published record of its kind that its files do not hold, so a
truncated export (one district only, a file cut off) would withdraw most of the kind: when the
published records it would withdraw number at least MASS_WITHDRAWAL_MIN and exceed
MASS_WITHDRAWAL_PERCENT of the kind's published records, nothing is published unless
allow_mass_withdrawal (the report's `mass_withdrawal` says how many of how many; a dry run
says the same, and withdraws none of that kind either). An export that lacks one whole district
stays under that share, so the same holds when the withdrawals would take at least
DISTRICT_WITHDRAWAL_PERCENT of one district's published records of the kind (and number at
least MASS_WITHDRAWAL_MIN there): `mass_withdrawal` then names the district(s).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import queue
import signal
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from publishing import clock
from publishing.clean import Cleaner
from publishing.commit import Writer, expired, finish_batch, lock_writer, start_batch
from publishing.contract import DISTRICTS, KIND_LABELS
from publishing.db import ANALYZE_NEXT, analyze, get_engine, writer_connection
from publishing.gcpause import gc_paused
from publishing.initial_load import defer_upkeep, sqlite_initial_load
from publishing.models import ACTIVE
from publishing.plan import Planner, Prepared, prepare
from publishing.progress import progress
from publishing.rows import CleanRow, EntityFields, Reject, SourceError, SourceFile
from publishing.rules import Rules, load_rules
from publishing.sources import open_source
from publishing.sources.headers import R_NO_RECORDS

log = logging.getLogger("publishing.publish")

# Rows planned and written at a time. A million-record load ran as fast with 2,500 as with
# 5,000 and took less memory (the chunks in flight, in every process): SQLite 247 instead of
# 360 MB, PostgreSQL 286 instead of 410 MB (once the publisher could be sent cleaned rows).
CHUNK = 2500
ANALYZE_AFTER_ROWS = 50_000
# Files at least this large are read and cleaned in a process of their own, which starts while
# the file before it is still being published (both cores busy, also when the publisher waits).
PARALLEL_MIN_BYTES = 2_000_000
# A cleaning process holds its file's natural keys (~75 MB for a million rows): after a file
# this large, the next process waits until that file is cleaned (1M load: 462 -> 355 MB over
# all processes); after a smaller one it starts at once (waiting cost a 100k load 6 %).
WAIT_AFTER_BYTES = 64_000_000
# Cleaned chunks the publisher may have waiting in memory (each a few MB); a cleaning process
# that runs ahead spools the rest to an unlinked temporary file.
READ_AHEAD = 2
COUNT_KEYS = ("added", "changed", "withdrawn", "unchanged")
# The guard against a snapshot that withdraws most of a kind (a truncated export). A normal
# snapshot withdraws the records revoked or corrected since the last one, a few percent of a
# kind (expiries are not counted: `disclosure expire` withdraws those anyway); a quarter of the
# kind at once is no normal week. Below MASS_WITHDRAWAL_MIN withdrawals the guard is silent:
# a handful of records is checked at a glance in the report, and small kinds and test sets
# (3 of a kind's 8 records) may lose a large share to an ordinary snapshot.
MASS_WITHDRAWAL_PERCENT = 25
MASS_WITHDRAWAL_MIN = 10
# An export that lacks a whole district (Yantai has 14; one holds 8-15 % of a kind) stays under
# the kind's share, yet withdraws that district's whole publication: a snapshot that would
# withdraw (nearly) all of a district's published records of a kind, at least
# MASS_WITHDRAWAL_MIN of them, is refused too. Nearly: a district's export may still hold a
# few records (a cut-off file, records filed under it by mistake elsewhere).
DISTRICT_WITHDRAWAL_PERCENT = 90
R_MASS_SHARE = ("快照模式{verb}{label}（{kind}）已公示记录 {withdrawn:,} 条，占发布前已公示的 "
                "{published:,} 条的 {share:.1%}（超过 {percent}% 且不少于 {minimum} 条）")
# After R_MASS_SHARE its lead is "，其中{verb}", alone "快照模式{verb}{label}（{kind}）在".
R_MASS_DISTRICTS = ("{lead}{names}的全部或几乎全部已公示记录（{details}；"
                    "一个区市不少于其已公示记录的 {percent}% 且不少于 {minimum} 条）")
R_MASS_DISTRICT = "{name}已公示 {published:,} 条中的 {withdrawn:,} 条"
R_MASS_REFUSED = ("：文件可能不完整（如只导出了部分区市，或文件被截断），本次未发布任何数据。"
                  "请核对文件；确需撤回这些记录时，加 --allow-mass-withdrawal 重新发布")
R_MASS_ALLOWED = "已确认大批撤回（--allow-mass-withdrawal）："
R_SNAPSHOT_SKIPPED = ("有被拒绝的行：快照模式本次未撤回任何记录（被拒绝的行可能正是仍应公示的记录）；"
                      "修正后重新发布完整快照即可撤回"
                      "（简易程序案件等按规定不予公示的行不影响撤回，无需删除）")


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
    # The file could not be read at all (its one reject says why): nothing of it was read, and
    # nothing of the whole publication is published.
    unreadable: bool = False
    # Snapshot mode: the withdrawals of what the files no longer hold were not made (why).
    snapshot_skipped: str | None = None
    # Snapshot mode: the kind's withdrawals are over the guard's threshold (refused or allowed).
    mass_withdrawal: MassWithdrawal | None = None

    @property
    def rejected_rows(self) -> int:
        """Rows with at least one reject (a row may have several): accepted + this = rows."""
        if self.unreadable:
            return 0  # its reject names the header row (or 0), not a data row
        return len({r.row for r in self.rejected if r.row})

    @property
    def accepted(self) -> int:
        return 0 if self.unreadable else self.rows - self.rejected_rows

    def as_dict(self, published: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": self.file, "kind": self.kind, "rows": self.rows, "accepted": self.accepted,
            "rejected": [{k: v for k, v in r.as_dict().items() if k != "file"} for r in self.rejected],
        }
        out.update({k: self.counts.get(k, 0) for k in COUNT_KEYS})
        out.update({k: v for k, v in sorted(self.counts.items()) if k not in COUNT_KEYS})
        out.update(published=published, unreadable=self.unreadable, format=self.format,
                   encoding=self.encoding, ignored_columns=self.ignored_columns)
        if self.snapshot_skipped:
            out.update(snapshot_withdrawals_skipped=True,
                       snapshot_withdrawals_skipped_reason=self.snapshot_skipped)
        if self.mass_withdrawal:
            out.update(mass_withdrawal=self.mass_withdrawal.as_dict())
        return out


@dataclass(frozen=True)
class DistrictWithdrawal:
    """A snapshot's withdrawals of (nearly) all of one district's published records of a kind."""

    district: str  # its code (records.district)
    withdrawn: int  # the district's published records the snapshot would withdraw
    published: int  # the district's published records of the kind before the publish

    @property
    def name(self) -> str:
        return DISTRICTS.get(self.district, self.district)

    def as_dict(self) -> dict[str, Any]:
        return {"district": self.district, "name": self.name, "withdrawn": self.withdrawn,
                "published": self.published}


@dataclass(frozen=True)
class MassWithdrawal:
    """A snapshot's withdrawals of a kind's published records, over the guard's threshold: of
    the whole kind, or of (nearly) all of one district's (`districts`), or both."""

    kind: str
    withdrawn: int  # published records the snapshot would withdraw (expiries not counted)
    published: int  # the kind's published records before the publish
    allowed: bool  # allow_mass_withdrawal: withdrawn all the same (else nothing is published)
    districts: tuple[DistrictWithdrawal, ...] = ()  # by code

    @property
    def refused(self) -> bool:
        return not self.allowed

    @property
    def over_share(self) -> bool:
        """Over the kind's share (else only districts are)."""
        return is_mass_withdrawal(self.withdrawn, self.published)

    def message(self) -> str:
        verb = "撤回" if self.allowed else "将撤回"
        label = KIND_LABELS.get(self.kind, self.kind)
        text = ""
        if self.over_share:
            text = R_MASS_SHARE.format(verb=verb, label=label, kind=self.kind,
                                       withdrawn=self.withdrawn, published=self.published,
                                       share=self.withdrawn / max(self.published, 1),
                                       percent=MASS_WITHDRAWAL_PERCENT, minimum=MASS_WITHDRAWAL_MIN)
        if self.districts:
            lead = f"，其中{verb}" if text else f"快照模式{verb}{label}（{self.kind}）在"
            details = "，".join(R_MASS_DISTRICT.format(name=d.name, published=d.published,
                                                      withdrawn=d.withdrawn)
                                for d in self.districts)
            text += R_MASS_DISTRICTS.format(lead=lead, names="、".join(d.name for d in self.districts),
                                            details=details, percent=DISTRICT_WITHDRAWAL_PERCENT,
                                            minimum=MASS_WITHDRAWAL_MIN)
        return R_MASS_ALLOWED + text if self.allowed else text + R_MASS_REFUSED

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "withdrawn": self.withdrawn, "published": self.published,
                "threshold_percent": MASS_WITHDRAWAL_PERCENT, "minimum": MASS_WITHDRAWAL_MIN,
                "refused": self.refused, "reason": self.message(),
                "over_threshold": self.over_share,
                "district_threshold_percent": DISTRICT_WITHDRAWAL_PERCENT,
                "districts": [d.as_dict() for d in self.districts]}


def is_mass_withdrawal(withdrawn: int, published: int) -> bool:
    """At least MASS_WITHDRAWAL_MIN published records, and more than MASS_WITHDRAWAL_PERCENT
    of the kind's (in integers: exact at the boundary)."""
    return withdrawn >= MASS_WITHDRAWAL_MIN and withdrawn * 100 > MASS_WITHDRAWAL_PERCENT * published


def is_district_withdrawal(withdrawn: int, published: int) -> bool:
    """At least MASS_WITHDRAWAL_MIN of a district's published records, and at least
    DISTRICT_WITHDRAWAL_PERCENT of them (in integers: exact at the boundary)."""
    return (withdrawn >= MASS_WITHDRAWAL_MIN
            and withdrawn * 100 >= DISTRICT_WITHDRAWAL_PERCENT * published)


def district_withdrawals(withdrawn: Counter, published: Counter) -> tuple[DistrictWithdrawal, ...]:
    """The districts (by code) of which a snapshot would withdraw (nearly) all published records;
    records without a district are no district's."""
    return tuple(DistrictWithdrawal(code, n, published[code])
                 for code, n in sorted((c, n) for c, n in withdrawn.items() if c is not None)
                 if is_district_withdrawal(n, published[code]))


@dataclass
class PublishResult:
    reports: list[FileReport]
    published: bool
    dry_run: bool
    batch_id: int | None
    events: int
    # The files are published, or in a dry run would be (see _publishable).
    publishable: bool = False

    @property
    def rejected(self) -> int:
        return sum(len(r.rejected) for r in self.reports)

    @property
    def unreadable(self) -> bool:
        return any(r.unreadable for r in self.reports)

    @property
    def snapshot_skipped(self) -> str | None:
        return next((r.snapshot_skipped for r in self.reports if r.snapshot_skipped), None)

    @property
    def mass_withdrawals(self) -> list[MassWithdrawal]:
        """The kinds whose snapshot withdrawals are over the guard's threshold."""
        return [r.mass_withdrawal for r in self.reports if r.mass_withdrawal]

    @property
    def refused(self) -> bool:
        """Nothing is published (nor would be, in a dry run): a mass withdrawal not allowed."""
        return any(m.refused for m in self.mass_withdrawals)

    def as_json(self) -> dict[str, Any] | list[dict[str, Any]]:
        items = [r.as_dict(self.published) for r in self.reports]
        return items[0] if len(items) == 1 else items


def publish(paths: list[Path], *, kind: str | None = None, mode: str = "incremental",
            accept_partial: bool = False, dry_run: bool = False, engine: Engine | None = None,
            today: date | None = None, rules: Rules | None = None, show_progress: bool = True,
            actor: str = "cli", allow_mass_withdrawal: bool = False) -> PublishResult:
    if mode not in ("incremental", "snapshot"):
        raise ValueError(f"unknown mode {mode!r}")
    engine = engine or get_engine()
    today = today or clock.today()
    rules = rules or load_rules()
    started = datetime.now(UTC)  # tables analyzed since (by an initial load) are not again
    reports: list[FileReport] = []
    with gc_paused(), writer_connection(engine) as conn, sqlite_initial_load(conn), \
            conn.begin() as tx, ExitStack() as cleanup:
        lock_writer(conn)
        deferred = defer_upkeep(conn)
        batch_id = start_batch(conn, kind=kind, mode=mode, actor=actor, files=[str(p) for p in paths])
        writer = Writer(conn, batch_id)
        planner = Planner(conn, writer, rules, today, track_seen=mode == "snapshot", upkeep=deferred)
        # before any file changes them (the writer's lock keeps other publishers out)
        published_before = planner.published_counts() if mode == "snapshot" else {}
        previous: _CleaningProcess | None = None

        def open_file(path: Path) -> _Feed:
            nonlocal previous
            large = path.stat().st_size >= WAIT_AFTER_BYTES
            feed = _open_file(path, kind, today, rules, CHUNK, after=previous)
            cleanup.callback(feed.close)  # on failure: no cleaning process outlives the publish
            if isinstance(feed.chunks, _CleaningProcess) and large:
                previous = feed.chunks
            return feed

        kinds_seen: dict[str, FileReport] = {}
        for feed in _one_ahead(paths, open_file):
            report = _publish_feed(feed, planner, show_progress)
            feed.close()
            reports.append(report)
            if report.kind:
                kinds_seen[report.kind] = report
        publishable = _publishable(reports, accept_partial)
        if mode == "snapshot" and publishable and not _may_hide_published(reports):
            for k, report in kinds_seen.items():
                _withdraw_unseen(planner, k, report, published_before.get(k, Counter()),
                                 allow_mass_withdrawal)
            publishable = publishable and not any(
                r.mass_withdrawal and r.mass_withdrawal.refused for r in reports)
        elif mode == "snapshot" and publishable:  # else nothing is published anyway
            # A rejected row may be a record the bureau still publishes: withdrawing what the
            # files "no longer hold" could withdraw it. Safe, but it must be said. (Not
            # publishable, nothing is withdrawn either: exit 1 stays exit 1, never 5.)
            for report in reports:
                report.snapshot_skipped = R_SNAPSHOT_SKIPPED
        planner.restore_upkeep()  # first: the issue counts of finish() read the issue index
        writer.finish()
        published = publishable and not dry_run
        if published:
            finish_batch(conn, batch_id, {r.file: r.as_dict(True) for r in reports})
            tx.commit()
        else:
            tx.rollback()
        big = published and sum(r.rows for r in reports) >= ANALYZE_AFTER_ROWS
        conn.info[ANALYZE_NEXT] = big  # the full ANALYZE below, not PRAGMA optimize before it
    if big:
        try:
            analyze(engine, since=started)
        except SQLAlchemyError:  # the publication is committed: stale statistics only slow reads
            log.exception("ANALYZE after the publish failed; run it again (or the next large "
                          "publish will)")
    return PublishResult(reports, published, dry_run, batch_id if published else None,
                         writer.events_written if published else 0, publishable)


def _withdraw_unseen(planner: Planner, kind: str, report: FileReport, published: Counter,
                     allow_mass_withdrawal: bool) -> None:
    """Snapshot mode: withdraw the kind's records that the files no longer hold, unless that is
    a mass withdrawal not allowed (then none is withdrawn, and nothing will be published).
    `published`: the kind's records in publication before the publish, by district."""
    gone = planner.unseen(kind)
    # Published records only: an expiry would be withdrawn anyway, a statistics-only or
    # superseded mark quietly (nothing public changes).
    public = Counter(r.district for r in gone
                     if r.status == ACTIVE and not expired(r.publicity_until, planner.today))
    withdrawn, total = public.total(), published.total()
    districts = district_withdrawals(public, published)
    if districts or is_mass_withdrawal(withdrawn, total):
        report.mass_withdrawal = MassWithdrawal(kind, withdrawn, total, allow_mass_withdrawal,
                                                districts)
        if not allow_mass_withdrawal:
            return
    before = Counter(planner.counts)
    planner.withdraw_unseen(kind, gone)
    report.counts.update(planner.counts - before)


def _may_hide_published(reports: list[FileReport]) -> bool:
    """Whether a rejected row may be a record the bureau still publishes: any rejected row but
    one that is never published by rule (a 简易程序 case, whatever else is wrong with it). Such
    a row names no record a snapshot must keep: one published under its key is withdrawn."""
    for report in reports:
        never = {r.row for r in report.rejected if r.never_published}
        if any(r.row not in never for r in report.rejected):
            return True
    return False


def _publishable(reports: list[FileReport], accept_partial: bool) -> bool:
    """No file unreadable, and no rejected row unless accept_partial, and then at least one
    row accepted: when every row is rejected there is nothing to publish."""
    if any(r.unreadable for r in reports):
        return False
    if not any(r.rejected for r in reports):
        return True
    return accept_partial and any(r.accepted for r in reports)


@dataclass
class _Feed:
    """A file opened for publishing: its report so far and its cleaned chunks (None when the
    file could not be read at all)."""

    report: FileReport
    chunks: Iterable[Chunk] | None
    headers: dict[str, str] = field(default_factory=dict)  # column key -> the file's header

    def close(self) -> None:
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()


# Cleaned rows (in their stored form, or to be prepared by the publisher), rejects, rows read.
Chunk = tuple[list[Prepared] | list[CleanRow], list[Reject], int]


def _open_file(path: Path, kind: str | None, today: date, rules: Rules, size: int,
               after: _CleaningProcess | None = None) -> _Feed:
    """Open and recognise a file; a large one is cleaned in a process of its own (which waits
    for the one `after` to finish cleaning). Rows come in their stored form, or from a
    cleaning process as cleaned rows when the publisher has none waiting."""
    report = FileReport(file=str(path), kind=kind)
    try:
        source = open_source(path, kind)
    except SourceError as err:
        report.rejected.append(err.reject)
        report.unreadable = True
        return _Feed(report, None)
    report.kind, report.format, report.encoding = source.kind, source.format, source.encoding
    report.ignored_columns = source.ignored_columns  # not a copy: later JSON keys join it
    headers = _headers_by_key(source)
    cleaner = Cleaner(source.kind, today, str(path), headers=headers)
    if path.stat().st_size >= PARALLEL_MIN_BYTES:
        chunks: Iterable[Chunk] = _CleaningProcess(_cleaned_chunks(source, cleaner, None, size),
                                                   rules, report.ignored_columns, after)
    else:
        chunks = _cleaned_chunks(source, cleaner, rules, size)
    return _Feed(report, chunks, headers)


def _one_ahead(paths: list[Path], open_file: Callable[[Path], _Feed]) -> Iterator[_Feed]:
    """The files in order, each opened (and its cleaning started) before the one before it is
    published. Processes are forked here, between files, when no reader thread is running."""
    following = None
    for i, path in enumerate(paths):
        current = following if following is not None else open_file(path)
        following = open_file(paths[i + 1]) if i + 1 < len(paths) else None
        yield current


def _publish_feed(feed: _Feed, planner: Planner, show_progress: bool) -> FileReport:
    report = feed.report
    if feed.chunks is None:
        return report
    before = Counter(planner.counts)
    rejects_before = len(planner.rejects)
    with progress(f"发布 {Path(report.file).name}", enabled=show_progress) as bar:
        for rows, rejects, read in feed.chunks:
            report.rows += read
            report.rejected.extend(rejects)
            if rows:
                if isinstance(rows[0], CleanRow):
                    rows = [prepare(r, planner.rules) for r in rows]
                planner.apply_chunk(rows)
            bar.advance(read)
    planner.finish_file(report.kind, report.file)
    report.rejected.extend(_in_file_terms(r, feed.headers) for r in planner.rejects[rejects_before:])
    report.rejected.sort(key=lambda r: r.row)
    report.counts = planner.counts - before
    if not report.rows:
        # A header-only CSV or `[]` is unreadable like an empty file: published in snapshot
        # mode, it would withdraw every record of its kind.
        report.rejected.append(Reject(report.file, 0, None, None, R_NO_RECORDS))
        report.unreadable = True
    return report


def _cleaned_chunks(source: SourceFile, cleaner: Cleaner, rules: Rules | None,
                    size: int) -> Iterator[Chunk]:
    rows: list = []
    rejects: list[Reject] = []
    read = 0
    for row in source.rows:
        read += 1
        result = cleaner.clean(row)
        if isinstance(result, list):
            rejects.extend(result)
        else:
            rows.append(prepare(result, rules) if rules is not None else result)
            if len(rows) >= size:
                yield rows, rejects, read
                rows, rejects, read = [], [], 0
    yield rows, rejects, read


class _CleaningProcess:
    """Reads and cleans a file in a forked child, which starts at once, while this process
    plans and writes (an earlier file, then this one).

    The child appends each cleaned chunk, pickled, to a spool file and announces its size over
    a pipe; a reader thread here unpickles the chunks in order once the file's turn comes, at
    most READ_AHEAD ahead, and counts them in shared memory (`_taken`): a chunk still unread
    when the child has cleaned the next one means the publisher is behind, and the child makes
    the next one's stored form itself. The spool is unlinked from the start and the child dies
    with this process, so nothing outlives a killed publish.

    A child forked `after` another one first waits for it to have cleaned its file: the first
    child holds the write end of a pipe (`_done`) until then, the second reads the other end
    until it closes (also when the first dies)."""

    def __init__(self, chunks: Iterator[Chunk], rules: Rules, ignored: list[str],
                 after: _CleaningProcess | None = None) -> None:
        self._spool = tempfile.TemporaryFile(prefix="disclosure-spool-")  # noqa: SIM115 (closed by close())
        ctx = multiprocessing.get_context("fork")
        self._receiver, sender = ctx.Pipe(duplex=False)
        self._taken = ctx.RawValue("q", 0)  # chunks the reader thread has taken from the spool
        wait_for = after.hand_over() if after is not None else None
        self._done, done = os.pipe()  # the read end is for the process after this one
        self._child = ctx.Process(target=_produce, daemon=True,
                                  args=(chunks, rules, ignored, sender, self._receiver,
                                        self._spool.fileno(), self._taken, wait_for, done,
                                        self._done))
        self._child.start()
        sender.close()
        os.close(done)  # the child's alone: it closes when the child has cleaned its file
        if wait_for is not None:
            os.close(wait_for)
        self._reader: threading.Thread | None = None
        self._stop = threading.Event()
        self._ahead: queue.Queue = queue.Queue(maxsize=READ_AHEAD)
        self._ignored = ignored

    def __iter__(self) -> Iterator[Chunk]:
        self._reader = threading.Thread(target=_receive, daemon=True,
                                        args=(self._receiver, self._spool.fileno(), self._taken,
                                              self._ahead, self._stop, self._ignored))
        self._reader.start()
        while True:
            item = self._ahead.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def hand_over(self) -> int | None:
        """The read end of the pipe that closes when this child has cleaned its file (None once
        this process is closed: it is done)."""
        done, self._done = self._done, None
        return done

    def close(self) -> None:
        if self._done is not None:
            os.close(self._done)
            self._done = None
        if self._child is None:
            return
        self._stop.set()
        while self._reader is not None and self._reader.is_alive():
            with suppress(queue.Empty):  # unblock a reader waiting for room in the queue
                self._ahead.get_nowait()
            self._reader.join(timeout=0.05)
        self._receiver.close()
        self._child.join(timeout=0 if self._reader is None else 5)
        if self._child.is_alive():
            self._child.kill()
            self._child.join()
        self._spool.close()
        self._child = None


def _receive(receiver, spool: int, taken: Any, ahead: queue.Queue, stop: threading.Event,
             ignored: list[str]) -> None:
    """Read and unpack chunks in a thread: it runs while the publisher waits for the
    database (which releases the GIL). The end comes as the file's ignored columns as the
    child saw them (JSON keys first met after the sample join them as the rows stream by)."""
    offset = 0
    while not stop.is_set():
        try:
            item = receiver.recv()
            if isinstance(item, list):
                ignored[:] = item  # before the end is queued: the report is read after it
                item = None
            elif isinstance(item, int):
                taken.value += 1  # this thread alone writes it
                data = _read_exactly(spool, item, offset)
                offset += item
                prepared, packed, rejects, read = pickle.loads(data)
                unpack = _unpack if prepared else _unpack_clean
                item = ([unpack(t) for t in packed], rejects, read)
        except (EOFError, OSError):
            item = RuntimeError("the cleaning process ended unexpectedly")
        except Exception as err:  # noqa: BLE001 - handed to the publisher, which raises it
            # a failure here must reach the publisher: a dead thread left it waiting forever
            item = RuntimeError(f"reading the cleaning process's output failed: {err!r}")
        ahead.put(item)
        if not isinstance(item, tuple):
            return


def _read_exactly(fd: int, size: int, offset: int) -> bytes:
    parts = []
    while size:
        part = os.pread(fd, size, offset)
        if not part:
            raise RuntimeError("the cleaning spool ended early")
        parts.append(part)
        size, offset = size - len(part), offset + len(part)
    return b"".join(parts)


def _entity_tuple(e: EntityFields) -> tuple:
    """Plain tuples pickle several times faster than nested slotted dataclasses."""
    return e.id, e.uscc, e.reg_no, e.name, e.legal_rep, e.district, e.address


def _pack(p: Prepared) -> tuple:
    return p.op, _entity_tuple(p.entity), p.record, p.key_cells


def _unpack(t: tuple) -> Prepared:
    return Prepared(t[0], EntityFields(*t[1]), t[2], t[3])


def _pack_clean(r: CleanRow) -> tuple:
    return (r.kind, r.file, r.row, r.op, _entity_tuple(r.entity), r.fields, r.event_date,
            r.publicity_until, r.natural_key, r.identity, r.extra)


def _unpack_clean(t: tuple) -> CleanRow:
    return CleanRow(t[0], t[1], t[2], t[3], EntityFields(*t[4]), *t[5:])


def _die_with_parent() -> None:
    """Linux: the kernel kills this child when the publisher dies (even by SIGKILL), so a forked
    copy of the publisher's database connection never outlives it and keeps its locks."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _produce(chunks: Iterator[Chunk], rules: Rules, ignored: list[str], sender, receiver,
             spool: int, taken: Any, wait_for: int | None, done: int,
             next_waits_on: int | None) -> None:
    _die_with_parent()
    receiver.close()  # our copy of the read end would keep a dead publisher's pipe open
    if next_waits_on is not None:
        os.close(next_waits_on)
    try:
        while wait_for is not None and os.read(wait_for, 1):
            pass  # nothing is written: the read returns empty once the process before us is done
        for sent, (rows, rejects, read) in enumerate(chunks):
            # The stored form (plan.prepare, ~6 us a row) is made by whichever side has time:
            # here when the publisher has not taken the last chunk yet, else by the publisher.
            # Which side is slower depends on the file (a penalty costs the cleaner half again
            # as much as a credit mark) and on the database; fixed per database, either choice
            # cost a million-record load on PostgreSQL 3 to 8 s.
            prepared = sent > taken.value
            if prepared:
                packed = [_pack(prepare(r, rules)) for r in rows]
            else:
                packed = [_pack_clean(r) for r in rows]
            data = pickle.dumps((prepared, packed, rejects, read), pickle.HIGHEST_PROTOCOL)
            view = memoryview(data)
            while view:  # appends: the spool is this process's alone to write
                view = view[os.write(spool, view):]
            sender.send(len(data))
        sender.send(list(ignored))  # the end
    except (BrokenPipeError, EOFError):
        pass  # the publisher is gone
    except BaseException as err:  # hand any failure to the publisher, which raises it
        try:
            sender.send(err)
        except Exception:
            sender.send(RuntimeError(f"cleaning failed: {err!r}"))
    finally:
        os.close(done)
        sender.close()


def _in_file_terms(reject: Reject, headers: dict[str, str]) -> Reject:
    """A planner's reject names a column key ("op", "uscc"): name it as the file does (操作, or
    状态 when a return pledge's status withdraws it)."""
    if reject.column == "op":
        reject.column = headers.get("op") or headers.get("status") or reject.column
    elif reject.column is not None:
        reject.column = headers.get(reject.column, reject.column)
    return reject


def _headers_by_key(source: SourceFile) -> dict[str, str]:
    out: dict[str, str] = {}
    for header, key in source.columns.items():
        out.setdefault(key, header)
    return out
