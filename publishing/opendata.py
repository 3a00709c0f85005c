"""Open data: streamed downloads, a snapshot plus daily delta files that a mirror can poll,
and the datasets (one per kind) as those files and the change log stand; their licence, data
dictionary and DCAT-AP catalog are publishing.opendata_catalog.

Layout of `out_dir` (default: settings.data_dir / "opendata"), served under /open-data/:

    index.json                          what is there: version, seq, seq_event, highest_seq,
                                        build, generated_at, files
    snapshots/{version}/{kind}.csv.gz   all published records of a kind as of change seq
    snapshots/{version}/{kind}.ndjson.gz  `version` (gzip, reproducible bytes); version is the
                                        seq, or "SEQ-BUILD" for a seq built before, and
                                        always "SEQ-BUILD" after a build without index.json
                                        (see "a URL never names two contents" below)
    deltas/{YYYY-MM-DD}.ndjson          the change events of that (Beijing) day, in seq order,
                                        each line the /api/v1/changes item of that event as of
                                        the build (index.json "delta_lines": "changes"); a file
                                        is written as {YYYY-MM-DD}.build-{BUILD}.ndjson first
                                        (see "index.json is the one commit point" below)
    retired/retired.json                the files the index before this one listed and this one
    retired/snapshots/{version}/...     does not, kept for RETIRED_GRACE after the build (the
    retired/deltas/{YYYY-MM-DD}.ndjson  previous snapshot, delta days past KEEP_DELTA_DAYS)

A mirror loads the snapshot, then applies the delta events with seq > the snapshot's seq
(add/change with a record → put, otherwise delete the record id).

Withdrawn and expired records must leave every public output, so no file keeps a record's
content after it has left publication (or changed) and the next build has run. Published means
what the pages mean (publishing.read.is_visible): active and within its publicity period, so a
record whose end date has passed is left out at once, not only after the nightly expire run. A
correction on an upheld objection (a change event with reason "objection") takes the content
it replaced out like a withdrawal: that content was wrong, not merely older.

- a delta line carries the record's *current* public shape, or `record: null` when the record
  is no longer published, exactly like /api/v1/changes. Each build rewrites every kept day
  with an event of a record that has a newer event since the last build, not only the days
  with new events. Applying the events in seq order still ends in the published state: the
  event that took the record out comes after its earlier lines.
- index.json is the one commit point: every file it lists holds the bytes it describes, at
  any moment, even if a build is killed or fails (disk full). A build writes the new snapshot
  and the rewritten days under names no index lists (a day as DAY.build-BUILD.ndjson), then
  index.json naming them; then it links each day to its usual name DAY.ndjson and writes
  index.json again naming those. The portal finds a delta file through index.json (its URL
  stays /open-data/deltas/DAY.ndjson). A build that fails deletes what it wrote that
  index.json does not list, and so does the next build with what a killed one left.
- a file is never written once an index lists it; it is only linked, renamed or deleted, and
  DAY.ndjson replaced (after the index that lists the day's new file is written). The portal
  serves every file from a handle it opens when it resolves the URL and checks against the
  index it read (portal.api.opendata._open_listed): a download keeps its bytes whatever a
  build does meanwhile.
- only the newest snapshot is listed. The files the replaced index listed stay downloadable
  for RETIRED_GRACE after the build (moved under retired/): that index may still be served
  from a cache for INDEX_MAX_AGE, and its clients must find the URLs it lists. Only the one
  generation the current index replaced is kept (disk: snapshots are large), and not its files
  of a kind that has lost or corrected records since it was built (deleted at once, 410 as
  before the build). After the grace the portal answers 410, and the next build (which
  `needs_build` then asks for) deletes them; an open download keeps its file until it ends.
- between a withdrawal (or correction) and the next build, `left_since` names the records
  concerned: the portal answers 410 for the snapshot of their kind and serves delta files with
  their lines' record as /api/v1/changes gives it now (portal.api.opendata); `needs_build` tells
  the worker to build now.
- after any other change (additions, ordinary changes) the download of the kind streams from
  the database until the next build, at many times a snapshot's cost (portal.api.opendata caps
  those streams): `needs_build` asks for a build once the last one is SETTLE old, so a burst of
  publishes makes one build, not one a minute, and the files follow within about SETTLE.
- each snapshot file names the earliest publicity end date of its rows (`publicity_ends`): from
  the day after it, `ended_kinds` names the kind, the portal treats it like a withdrawal, and
  `needs_build` is true.
- index.json names the change event it was built up to by seq and `seq_event` (a hash of that
  event), and gives `cursor` ("SEQ.seq_event"), the /api/v1/changes cursor to continue from.
  A database restored from a backup issues seqs again for other events: the files then
  describe a history the database no longer has, `index_matches` is false, the portal serves
  none of them, `needs_build` is true and the build starts the delta history again, under a
  new `lineage` (kept from build to build otherwise), by which a mirror of the files sees it.
- a URL never names two contents (snapshots are cached an hour): a version is new to the index
  history, which index.json carries (highest_seq, build). A build without index.json (a new
  data directory, or one lost with its files: what it had listed may still be cached) cannot
  know that history, so it numbers its builds from a random point (FRESH_BUILDS) instead of 1,
  far from the numbers a lost history used, and its history names the build in every version
  ("SEQ-BUILD", index.json "versions": VERSIONS_NAME_BUILD), never a bare seq that a lost
  history may have used for other content. Delta URLs (DAY.ndjson) name no version: their
  content changes at any build, which is why they are cached only DELTA_CACHE with an ETag.

`build(engine, out_dir)` makes a new snapshot when the change log has moved on and brings the
delta files up to date (only the affected days are rewritten).
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import secrets
import shutil
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Engine, and_, or_, select

from publishing import clock
from publishing.changes import WITH_RECORD, Cursor, iter_changes
from publishing.changes import event_mark as _event_mark
from publishing.commit import EVENTS, RECORDS
from publishing.contract import KIND_LABELS, KINDS
from publishing.export import csv_lines, iter_public, ndjson_lines
from publishing.models import ACTIVE, OP_CHANGE
from publishing.opendata_catalog import (
    DATASET_DESCRIPTIONS,
    LICENCE_ID,
    LICENCE_PATH,
    LICENCE_TITLE,
    dictionary,
)
from publishing.read import last_change_seq
from publishing.site import AUTHORITY

FORMATS = ("csv", "ndjson")
MEDIA_TYPES = {"csv": "text/csv", "ndjson": "application/x-ndjson"}
INDEX_NAME = "index.json"
# Seconds index.json may be cached (its Cache-Control, portal.api.opendata): a client or a cache
# in front may hold an index that long after a build has replaced it.
INDEX_MAX_AGE = 60
# How long the files of a replaced index stay downloadable: its last copy may be served up to
# INDEX_MAX_AGE after the build, and a client then needs time to reach the URLs it lists (as
# long again). Then 410, and the next build deletes them.
RETIRED_GRACE = timedelta(seconds=2 * INDEX_MAX_AGE)
RETIRED_DIR = "retired"
RETIRED_NAME = "retired.json"
KEEP_DELTA_DAYS = 90
# index.json marker: delta lines are /api/v1/changes items as of the build. An index without it
# was written when lines kept the record as first written: all its days are rewritten once.
DELTA_LINES = "changes"
# index.json marker: text cells of the CSV snapshots that a spreadsheet would run as a formula
# carry a leading ' (publishing.export). Snapshots of an index without it are built again.
CSV_CELLS = "formula-quoted"
EVENT_BATCH = 10_000
CHUNK_BYTES = 128 * 1024
# The reasons of the change events that replace content which must not stay in the files: a
# correction on an upheld objection (publishing.review), personal data masked (publishing.scrub).
TAKEDOWN_REASONS = ("objection", "scrub")
# The least time between two builds asked for because the change log moved on without anything
# leaving publication (additions, ordinary changes): meanwhile those kinds' downloads stream
# from the database (~40x a snapshot's CPU), so not until the night; but not once a minute
# during a burst of publishes either (a build rewrites every snapshot).
SETTLE = timedelta(minutes=10)
# Where a build without index.json starts numbering builds: a random point in this range, apart
# from the builds of a history begun before this rule (counted from 1), and from another such
# history's unless both drew within as many builds of each other as they made (odds ~1e-4 for
# 50,000 builds) and then built the same seq at the same number. 9 digits with room for 10^8
# builds: portal.api.opendata's VERSION takes that many. Then index.json says that every
# version names the build: see "a URL never names two contents" above.
FRESH_BUILDS = range(10**8, 9 * 10**8)
VERSIONS_NAME_BUILD = "seq-build"

# -- downloads ----------------------------------------------------------------------------


def _joined(lines: Iterable[str], size: int = CHUNK_BYTES) -> Iterator[str]:
    """Lines joined into chunks of at most about `size` bytes (one write per chunk, not per row)."""
    buf: list[str] = []
    length = 0
    for line in lines:
        buf.append(line)
        length += len(line)
        if length >= size // 3:  # up to 3 bytes per character in UTF-8
            yield "".join(buf)
            buf, length = [], 0
    if buf:
        yield "".join(buf)


def content_lines(kind: str, fmt: str, engine: Engine | None = None) -> Iterator[str]:
    """The text of /open-data/{kind}.{fmt}: publishing.export over the published records."""
    records = iter_public(kind, engine)
    return csv_lines(kind, records) if fmt == "csv" else ndjson_lines(records)


def stream(kind: str, fmt: str, engine: Engine | None = None) -> Iterator[bytes]:
    """The download as byte chunks: keyset-paged reads, so memory stays flat at any size."""
    return (chunk.encode() for chunk in _joined(content_lines(kind, fmt, engine)))


# -- snapshots and deltas ----------------------------------------------------------------


def default_dir() -> Path:
    from publishing.settings import get_settings

    return get_settings().data_dir / "opendata"


def _now_iso() -> str:
    return clock.now().replace(microsecond=0).isoformat()


def _beijing_date(at: str | datetime | None) -> date:
    if not at:
        return clock.today()
    return clock.beijing_date(datetime.fromisoformat(at) if isinstance(at, str) else at)


class _HashingWriter:
    """Counts and hashes the bytes written through it (and passes them on)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.raw.write(data)
        self.sha.update(data)
        self.bytes += len(data)
        return len(data)


def _file_digest(path: Path) -> tuple[str, int]:
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            sha.update(block)
            size += len(block)
    return sha.hexdigest(), size


def _write_kind(kind: str, engine: Engine, directory: Path, version: str, seq: int) -> list[dict]:
    """One pass over the kind's records writing both formats, gzip-compressed reproducibly."""
    outs: dict[str, dict[str, Any]] = {}
    rows = 0
    ends: str | None = None  # the earliest publicity end date of the rows written
    with contextlib.ExitStack() as stack:
        for fmt in FORMATS:
            raw = stack.enter_context(open(directory / f"{kind}.{fmt}.gz.tmp", "wb"))
            file_hash = _HashingWriter(raw)
            gz = stack.enter_context(
                gzip.GzipFile(filename="", mode="wb", fileobj=file_hash, mtime=0, compresslevel=6)
            )
            outs[fmt] = {"file": file_hash, "gz": gz, "content": hashlib.sha256(), "bytes": 0}

        def tap(records: Iterator[dict]) -> Iterator[dict]:
            nonlocal rows, ends
            buf: list[str] = []
            for rec in records:
                rows += 1
                until = rec["publicity_until"]
                if until is not None and (ends is None or until < ends):
                    ends = until
                buf.extend(ndjson_lines(iter((rec,))))
                if len(buf) >= 256:
                    _emit(outs["ndjson"], buf)
                    buf = []
                yield rec
            _emit(outs["ndjson"], buf)

        for chunk in _joined(csv_lines(kind, tap(iter_public(kind, engine)))):
            _emit(outs["csv"], [chunk])
    files = []
    for fmt in FORMATS:
        tmp = directory / f"{kind}.{fmt}.gz.tmp"
        final = tmp.with_suffix("")
        os.replace(tmp, final)
        out = outs[fmt]
        name = final.name
        files.append(
            {
                "type": "snapshot",
                "kind": kind,
                "format": fmt,
                "version": version,
                "seq": seq,
                "path": f"snapshots/{version}/{name}",
                "url": f"/open-data/snapshots/{version}/{name}",
                "media_type": MEDIA_TYPES[fmt],
                "encoding": "gzip",
                "rows": rows,
                "bytes": out["file"].bytes,
                "sha256": out["file"].sha.hexdigest(),
                "content_bytes": out["bytes"],
                "content_sha256": out["content"].hexdigest(),
                "publicity_ends": ends,
            }
        )
    return files


def _emit(out: dict[str, Any], lines: list[str]) -> None:
    if not lines:
        return
    data = "".join(lines).encode()
    out["gz"].write(data)
    out["content"].update(data)
    out["bytes"] += len(data)


def superseded(index: dict[str, Any], version: str) -> bool:
    """Whether snapshot `version` ("SEQ" or "SEQ-BUILD") is one a build before the index's may
    have made: gone (410), not unknown (404)."""
    seq, _, build_no = version.partition("-")
    return (
        version != index["version"]
        and int(seq) <= _highest_seq(index)
        and int(build_no or 0) < int(index.get("build", 1))
    )


def _highest_seq(previous: dict[str, Any] | None) -> int:
    """The highest seq any build has reached (a restored database may be behind it)."""
    if previous is None:
        return -1
    return max(int(previous.get("highest_seq", -1)), int(previous["seq"]))


def _names_build(previous: dict[str, Any] | None) -> bool:
    """Whether every version of the index history names its build: one begun without an
    index.json (which may have been lost, and with it the seqs its versions used)."""
    return previous is None or previous.get("versions") == VERSIONS_NAME_BUILD


def _next_build(previous: dict[str, Any] | None) -> int:
    """The previous build's number + 1; without index.json, a random one in FRESH_BUILDS (the
    index history that may have been lost numbered its builds from 1, or from a random point
    too): a clock would repeat numbers after builds faster than it ticks, or a clock set wrong
    on the machine a disaster recovery brings up."""
    if previous is None:
        return FRESH_BUILDS.start + secrets.randbelow(len(FRESH_BUILDS))
    return int(previous.get("build", 0)) + 1


def _next_version(previous: dict[str, Any] | None, seq: int, build_no: int) -> str:
    """str(seq) for a seq no build has reached; "SEQ-BUILD" for one a build has reached before
    (a publicity period has ended since; a restored database issues seqs again), and for every
    seq in a history begun without index.json, so that a URL never names two contents
    (snapshots are cached an hour)."""
    if _names_build(previous) or seq <= _highest_seq(previous):
        return f"{seq}-{build_no}"
    return str(seq)


def _build_snapshot(engine: Engine, out_dir: Path, seq: int, version: str) -> list[dict]:
    root = out_dir / "snapshots"
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{version}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    files = []
    for kind in KINDS:
        files.extend(_write_kind(kind, engine, tmp, version, seq))
    final = root / version
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return files


def _discard_unreferenced(out_dir: Path) -> None:
    """Delete the files under snapshots/ and deltas/ that neither index.json (as it is on disk)
    nor the retired generation it replaced lists, a retired/ left by a build that never wrote
    its index, and temporary files: an older snapshot may hold records that have left
    publication since, and a failed or killed build's files would keep the disk space it
    took (disk full: the attachments share the directory). An open download keeps its file
    until it ends."""
    index = load_index(out_dir)
    keep = {f["path"] for f in (index or {}).get("files", [])}
    retired = load_retired(out_dir)
    if index is not None and retired is not None and retired.get("replaced_by") == index["version"]:
        keep.update(f["path"] for f in retired["files"])
    else:  # not this index's (retired_file ignores it too)
        shutil.rmtree(out_dir / RETIRED_DIR, ignore_errors=True)
    for top in ("snapshots", "deltas"):
        # reversed: a directory's files come before the directory itself
        for path in sorted((out_dir / top).rglob("*"), reverse=True):
            if path.is_dir():
                with contextlib.suppress(OSError):  # removed once empty
                    path.rmdir()
            elif path.relative_to(out_dir).as_posix() not in keep:
                path.unlink(missing_ok=True)
    (out_dir / f"{INDEX_NAME}.tmp").unlink(missing_ok=True)


# -- the files a replaced index listed -----------------------------------------------------


def load_retired(out_dir: Path) -> dict[str, Any] | None:
    """The retired generation: version, seq, seq_event, replaced_by (the version of the index
    that replaced it), until (the end of its grace) and the files kept."""
    try:
        return json.loads((out_dir / RETIRED_DIR / RETIRED_NAME).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def retired_file(
    out_dir: Path, index: dict[str, Any], path: str, now: datetime | None = None
) -> tuple[dict[str, Any], dict[str, Any], Path] | None:
    """(generation, file entry, file) of `path` ("snapshots/V/KIND.FMT.gz", "deltas/DAY.ndjson":
    its URL below /open-data/) when the index that `index` replaced listed it and it is kept;
    None for a file never listed, not kept, or once the grace has run out (the portal answers
    410). A delta day may be kept under a build's own name (DAY.build-N.ndjson)."""
    retired = load_retired(out_dir)
    if (
        retired is None
        or retired.get("replaced_by") != index["version"]  # left by an interrupted build
        or (now or clock.now()) >= datetime.fromisoformat(retired["until"])
    ):
        return None
    entry = next((f for f in retired["files"] if f["url"] == f"/open-data/{path}"), None)
    if entry is None:
        return None
    # moved under retired/ just after the new index is written: it may be at either place;
    # the first place first, so that one moved between the two looks is found on a second try
    for file in (out_dir / entry["path"], out_dir / RETIRED_DIR / entry["path"]):
        if file.is_file():
            return retired, entry, file
    return None


def _retired_due(out_dir: Path) -> bool:
    """Whether retired files are on disk past their grace (or without a readable manifest)."""
    if not (out_dir / RETIRED_DIR).exists():
        return False
    retired = load_retired(out_dir)
    return retired is None or clock.now() >= datetime.fromisoformat(retired["until"])


def _left_kinds(conn: Connection, seq: int) -> set[str]:
    """The kinds with a record that left publication (or was corrected) after change `seq`."""
    left = _left_after(seq).subquery()
    return set(conn.execute(select(left.c.kind).distinct()).scalars())


def _retiring(
    engine: Engine, previous: dict[str, Any], version: str, dropped: list[dict], snapshot: bool
) -> dict[str, Any]:
    """What is kept of the files `previous` listed that the index of `version` does not: the
    delta days dropped (written by this build, so as current as its index), and the snapshot
    (when `snapshot`) less its kinds that lost or corrected records since it was built: their
    files must not be served again (the portal answered 410 for them before this build)."""
    files = list(dropped)
    if snapshot:
        with engine.connect() as conn:
            gone = _left_kinds(conn, int(previous["seq"])) | ended_kinds(previous)
        files = [f for f in snapshot_files(previous).values() if f["kind"] not in gone] + files
    return {
        "version": previous["version"],
        "seq": previous["seq"],
        "seq_event": previous.get("seq_event"),
        "replaced_by": version,
        "until": (clock.now() + RETIRED_GRACE).isoformat(),
        "files": files,
    }


def _start_retiring(out_dir: Path, retiring: dict[str, Any] | None) -> None:
    """Replace the generation retired before (at most one is kept: snapshots are large) by the
    manifest of `retiring`, written before the index that replaces it so that none of its
    URLs answers 410 in between."""
    root = out_dir / RETIRED_DIR
    shutil.rmtree(root, ignore_errors=True)
    if retiring is not None:
        root.mkdir(parents=True)
        _write_json(root / RETIRED_NAME, retiring)


def _finish_retiring(out_dir: Path, retiring: dict[str, Any] | None, dropped: list[dict]) -> None:
    """Move the kept files under retired/ and delete the dropped delta days not kept (the
    snapshot files not kept go with the old snapshot directory: _discard_unreferenced)."""
    kept = [f["path"] for f in retiring["files"]] if retiring else []
    for path in kept:
        target = out_dir / RETIRED_DIR / path
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.replace(out_dir / path, target)
    for f in dropped:
        if f["path"] not in kept:
            (out_dir / f["path"]).unlink(missing_ok=True)


def _event_days(engine: Engine, since: int, until: int) -> dict[str, list[int]]:
    """day -> [first seq, last seq] of the events in (since, until], read in keyset pages."""
    days: dict[str, list[int]] = {}
    last = since
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(EVENTS.c.seq, EVENTS.c.at)
                .where(EVENTS.c.seq > last, EVENTS.c.seq <= until)
                .order_by(EVENTS.c.seq)
                .limit(EVENT_BATCH)
            ).all()
        if not rows:
            return days
        for seq, at in rows:
            day = _beijing_date(at).isoformat()
            span = days.setdefault(day, [int(seq), int(seq)])
            span[1] = int(seq)
        last = int(rows[-1].seq)


def _ended_between(first: date, today: date) -> Any:
    """The active records whose publicity ended on a day in [first, today): shown on `first`
    (a build that day wrote them), no longer today."""
    return select(RECORDS.c.id).where(
        RECORDS.c.status == ACTIVE,
        RECORDS.c.publicity_until >= first,
        RECORDS.c.publicity_until < today,
    )


def _touched_days(
    engine: Engine, entries: dict[str, dict], since: int, until: int, built_on: date | None
) -> set[str]:
    """The kept days with an event of a record that has an event in (since, until], or whose
    publicity has ended since the last build (on `built_on`): what /api/v1/changes gives for
    their lines has changed (new shape, or null once withdrawn or ended)."""
    newer = select(EVENTS.c.record_id).where(EVENTS.c.seq > since, EVENTS.c.seq <= until)
    touched = EVENTS.c.record_id.in_(newer)
    today = clock.today()
    if built_on is not None and built_on < today:
        touched = or_(touched, EVENTS.c.record_id.in_(_ended_between(built_on, today)))
    out = set()
    with engine.connect() as conn:
        for day, entry in entries.items():
            hit = conn.execute(
                select(EVENTS.c.seq)
                .where(EVENTS.c.seq.between(entry["from_seq"], entry["to_seq"]), touched)
                .limit(1)
            ).first()
            if hit is not None:
                out.add(day)
    return out


def _write_delta(
    engine: Engine, deltas_dir: Path, day: str, first: int, last: int, build_no: int
) -> dict:
    """The day's file from the change log (its events in [first, last]), under this build's
    own name: the file index.json lists for the day stays as it is until index.json names
    this one (_settle_deltas gives it the day's usual name afterwards)."""
    path = deltas_dir / f"{day}.build-{build_no}.ndjson"
    entry: dict[str, Any] = {"date": day, "from_seq": None, "to_seq": None, "events": 0}
    with open(path, "wb") as fh:
        for item in iter_changes(engine, since=first - 1, until=last):
            if _beijing_date(item["at"]).isoformat() != day:
                continue  # a neighbouring day's event inside the seq range
            fh.write((json.dumps(item, ensure_ascii=False) + "\n").encode())
            entry["from_seq"] = entry["from_seq"] or item["seq"]
            entry["to_seq"] = item["seq"]
            entry["events"] += 1
    sha, size = _file_digest(path)
    entry.update(
        type="delta",
        path=f"deltas/{path.name}",
        url=f"/open-data/deltas/{day}.ndjson",
        media_type=MEDIA_TYPES["ndjson"],
        bytes=size,
        sha256=sha,
    )
    return entry


def _update_deltas(
    engine: Engine,
    out_dir: Path,
    previous: list[dict],
    since: int,
    until: int,
    keep_days: int | None,
    build_no: int,
    rewrite_all: bool = False,
    built_on: date | None = None,
) -> tuple[list[dict], list[dict]]:
    """Bring the day files up to date with the events up to `until`: the days with events
    after `since`, and the kept days whose lines /api/v1/changes now gives otherwise. Returns
    the kept days' entries and those of the days dropped past `keep_days`, whose files (up to
    date too) are left for the caller to retire or delete."""
    deltas_dir = out_dir / "deltas"
    deltas_dir.mkdir(parents=True, exist_ok=True)
    entries = {d["date"]: dict(d) for d in previous if (out_dir / d["path"]).exists()}
    stale = set(entries) if rewrite_all else _touched_days(engine, entries, since, until, built_on)
    spans = {day: [e["from_seq"], e["to_seq"]] for day, e in entries.items() if day in stale}
    for day, (first, last) in _event_days(engine, since, until).items():
        span = spans.setdefault(
            day, [entries[day]["from_seq"], last] if day in entries else [first, last]
        )
        span[1] = last
    for day in sorted(spans):
        entries[day] = _write_delta(engine, deltas_dir, day, *spans[day], build_no)
    days = sorted(entries)
    dropped = []
    if keep_days is not None and days:
        newest = date.fromisoformat(days[-1])
        for day in days:
            if (newest - date.fromisoformat(day)).days > keep_days:
                dropped.append(entries.pop(day))
    return [entries[d] for d in sorted(entries)], dropped


def load_index(out_dir: Path | None = None) -> dict[str, Any] | None:
    path = (out_dir or default_dir()) / INDEX_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(out_dir: Path):
    """One build at a time (worker and CLI may both run one)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class EmptyChangeLog(RuntimeError):
    """The database has never published anything, but the open-data files come from one that
    has: most likely the wrong database (a mistyped path creates an empty SQLite file). A build
    would empty every snapshot and tell mirrors to clear their copies."""

    def __init__(self, files_seq: int) -> None:
        super().__init__(
            f"数据库的变更日志为空，而现有开放数据文件来自 seq {files_seq} 的数据库：请检查数据库地址"
            "（DISCLOSURE_DATABASE_URL / DISCLOSURE_DATA_DIR）；开放数据文件未改动"
        )
        self.files_seq = files_seq


def build(
    engine: Engine | None = None,
    out_dir: Path | None = None,
    keep_days: int | None = KEEP_DELTA_DAYS,
) -> dict[str, Any]:
    """Bring snapshot, deltas and index.json up to date with the change log; returns the index.

    Nothing is rewritten when the change log has not moved since the last build and no
    record's publicity has ended since. Otherwise the new snapshot replaces the old one (kept
    under retired/ for RETIRED_GRACE once index.json names the new one, deleted by the first
    build after that) and every delta line of a record that has changed or
    left publication since is rewritten. When the database no longer holds the event the last
    build ended at (restored from a backup, seqs issued again), the delta history starts over.
    A database that has never published anything does not replace files built from one that
    has (EmptyChangeLog). A build that fails (disk full: OSError) leaves the files index.json
    lists as they were and deletes what it wrote besides."""
    from publishing.db import get_engine

    engine = engine or get_engine()
    out_dir = Path(out_dir) if out_dir is not None else default_dir()
    with _locked(out_dir):
        if _retired_due(out_dir):  # grace over: the portal answers 410 for them by now
            shutil.rmtree(out_dir / RETIRED_DIR, ignore_errors=True)
        _discard_unreferenced(out_dir)  # what a killed build left
        try:
            return _build(engine, out_dir, keep_days)
        except BaseException:
            _discard_unreferenced(out_dir)
            raise


def _build(engine: Engine, out_dir: Path, keep_days: int | None) -> dict[str, Any]:
    """build's work, under its lock."""
    previous = load_index(out_dir)
    with engine.connect() as conn:
        seq = last_change_seq(conn)
        if seq == 0 and previous is not None and _highest_seq(previous) > 0:
            raise EmptyChangeLog(_highest_seq(previous))
        mark = event_mark(conn, seq)
        same_log = previous is not None and index_matches(conn, previous)
    current = same_log and previous.get("delta_lines") == DELTA_LINES
    if (
        current
        and previous.get("csv_cells") == CSV_CELLS
        and previous["seq"] == seq
        and (out_dir / "snapshots" / str(previous["version"])).is_dir()
        and not ended_kinds(previous)
    ):
        if previous.get("cursor") != snapshot_cursor(seq, mark):
            previous["cursor"] = snapshot_cursor(seq, mark)  # an index from before cursors
            _write_json(out_dir / INDEX_NAME, previous)
        return previous
    build_no = _next_build(previous)
    version = _next_version(previous, seq, build_no)
    snapshot = _build_snapshot(engine, out_dir, seq, version)
    prev_deltas = [f for f in (previous or {}).get("files", []) if f["type"] == "delta"]
    since = int(previous["seq"]) if previous and prev_deltas else 0
    if since > seq or (previous and "seq_event" in previous and not same_log):
        # the database was rebuilt or restored: its history is not the files' any more
        # (the old days go once the new index.json is written: _discard_unreferenced)
        since, prev_deltas = 0, []
    deltas, dropped = _update_deltas(
        engine,
        out_dir,
        prev_deltas,
        since,
        seq,
        keep_days,
        build_no,
        rewrite_all=not current,
        built_on=_beijing_date(previous["generated_at"]) if previous else None,
    )
    index = {
        "version": version,
        "seq": seq,
        "seq_event": mark,
        "cursor": snapshot_cursor(seq, mark),
        "lineage": _lineage(previous, same_log),
        "highest_seq": max(seq, _highest_seq(previous)),
        "build": build_no,
        **({"versions": VERSIONS_NAME_BUILD} if _names_build(previous) else {}),
        "generated_at": _now_iso(),
        "publisher": AUTHORITY,
        "licence": {"id": LICENCE_ID, "title": LICENCE_TITLE, "url": LICENCE_PATH},
        "usage": "先下载 type=snapshot 的文件（截至 seq 的全部公示记录），再按 seq 顺序应用 "
        "type=delta 文件中 seq 大于快照 seq 的事件：record 不为 null 的写入，"
        "为 null 的按 record_id 删除。之后以 cursor 为 since 请求 /api/v1/changes，"
        "再以每次返回的 next 持续同步（cursor 同时标识 seq 对应的事件，数据库从备份恢复后"
        "接口会返回 409 提示重新同步）。"
        f"只保留最新快照：被取代的快照文件在新 index.json 生成后仍可下载 "
        f"{int(RETIRED_GRACE.total_seconds())} 秒（其后有记录停止公示或被更正的类别除外），"
        "之后返回 410，请重新读取 index.json。已停止公示的记录在各增量文件中 record 为 null。"
        "lineage 标识变更日志的这段历史：与上次读取时不同（数据库已从备份恢复，此后的 seq "
        "可能已分配给其他事件），或 seq 比上次读取时小、seq 相同而 seq_event 不同，"
        "都说明副本可能含有已不存在的记录，请清空副本，从新快照重新同步。",
        "delta_lines": DELTA_LINES,
        "csv_cells": CSV_CELLS,
        "files": [*snapshot, *deltas],
    }
    retiring = None
    if previous is not None and same_log:  # another change log's files are never served
        snapshot = previous.get("csv_cells") == CSV_CELLS  # else unquoted: not again
        retiring = _retiring(engine, previous, version, dropped, snapshot)
    _start_retiring(out_dir, retiring)
    _write_json(out_dir / INDEX_NAME, index)  # the commit point
    _finish_retiring(out_dir, retiring, dropped)
    if _settle_deltas(out_dir, index):
        _write_json(out_dir / INDEX_NAME, index)
    _discard_unreferenced(out_dir)  # the old snapshot, replaced days, build-named links
    return index


def _settle_deltas(out_dir: Path, index: dict[str, Any]) -> bool:
    """Give each delta file the index lists under a build's own name its usual name
    (DAY.ndjson) too, as a second link to the same bytes, and list it under that name; True
    when any moved (index.json is to be written again). Either index.json lists the file as it
    is on disk: the old one until that write, then this one."""
    moved = False
    for entry in index["files"]:
        usual = f"deltas/{entry.get('date')}.ndjson"
        if entry["type"] != "delta" or entry["path"] == usual:
            continue
        link = out_dir / f"{usual}.tmp"
        link.unlink(missing_ok=True)
        os.link(out_dir / entry["path"], link)
        os.replace(link, out_dir / usual)
        entry["path"] = usual
        moved = True
    return moved


def _lineage(previous: dict[str, Any] | None, same_log: bool) -> str:
    """The id of the change-log history the files describe: kept while the database's log
    goes on from the previous build's, new when it does not (restored from a backup, rebuilt).
    A mirror fed by the delta files cannot tell otherwise: after a restore and more publishes
    the seq it holds is below the new one, yet its events from there on were another history."""
    if same_log and previous is not None and previous.get("lineage"):
        return str(previous["lineage"])
    return uuid.uuid4().hex


def _left_after(seq: int) -> Any:
    """The events after change `seq` that took a record's content out of publication: a
    withdrawal or expiry, a correction on an upheld objection (the content was wrong) and a
    scrub (it held personal data)."""
    return select(EVENTS.c.record_id, EVENTS.c.kind).where(
        EVENTS.c.seq > seq,
        or_(
            EVENTS.c.op.notin_(WITH_RECORD),
            and_(EVENTS.c.op == OP_CHANGE, EVENTS.c.reason.in_(TAKEDOWN_REASONS)),
        ),
    )


def left_since(conn: Connection, seq: int) -> dict[str, str]:
    """record id -> kind of the records that left publication (or were corrected) after change
    `seq`: the files built at `seq` may still carry their content (until the next build)."""
    return {record_id: kind for record_id, kind in conn.execute(_left_after(seq).distinct())}


def event_mark(conn: Connection, seq: int) -> str | None:
    """The identity of change event `seq` (a hash of what it was), None when there is none:
    a database restored from a backup may give the same seq to another event."""
    if seq == 0:
        return ""
    row = conn.execute(
        select(EVENTS.c.at, EVENTS.c.record_id, EVENTS.c.op, EVENTS.c.version).where(
            EVENTS.c.seq == seq
        )
    ).first()
    if row is None:
        return None
    # the same mark as the /api/v1/changes cursor's: "SEQ.seq_event" continues from the build
    return _event_mark(seq, row.at, row.record_id, row.op, row.version)


def snapshot_cursor(seq: int, mark: str | None) -> str:
    """The /api/v1/changes cursor that continues after the files built at change `seq`."""
    return str(Cursor(seq, mark or None))


def index_matches(conn: Connection, index: dict[str, Any]) -> bool:
    """The index was built from this database's change log: its last event is still there."""
    mark = index.get("seq_event")
    return mark is not None and mark == event_mark(conn, int(index["seq"]))


def ended_kinds(index: dict[str, Any] | None, today: date | None = None) -> set[str]:
    """The kinds whose snapshot holds a record whose publicity has ended since it was built."""
    day = (today or clock.today()).isoformat()
    return {
        f["kind"]
        for f in snapshot_files(index).values()
        if f.get("publicity_ends") is not None and f["publicity_ends"] < day
    }


def _settled(index: dict[str, Any]) -> bool:
    """Whether the files were built SETTLE or longer ago (or at an unknown time, or one ahead
    of the clock: a clock set back must not hold builds off)."""
    try:
        built = datetime.fromisoformat(index["generated_at"])
    except (KeyError, TypeError, ValueError):
        return True
    age = clock.now() - (built if built.tzinfo else built.replace(tzinfo=UTC))
    return not timedelta(0) <= age < SETTLE


def needs_build(engine: Engine | None = None, out_dir: Path | None = None) -> bool:
    """Whether the files hold content that has left publication since the last build (a
    withdrawal, a correction, an ended publicity period), describe a change log the database
    no longer has (restored from a backup), were written in an older CSV form, or do not exist,
    are the empty files of a database that has published since (its first publish), or whether
    retired files have outlived their grace: the worker should then build at once rather than
    wait for its daily run (a build with nothing new only deletes those). Also when the change
    log has moved on otherwise (additions, ordinary changes) and the last build is SETTLE old
    (clock.now()): the downloads of the kinds concerned stream from the database until then.
    Retired files past their grace then wait for that build too (the portal answers 410 for
    them meanwhile): a build now would make new snapshots, and retire these for RETIRED_GRACE,
    so a burst of publishes would make a build every few minutes."""
    from publishing.db import get_engine

    out = Path(out_dir) if out_dir is not None else default_dir()
    index = load_index(out)
    if index is None or ended_kinds(index) or index.get("csv_cells") != CSV_CELLS:
        return True
    with (engine or get_engine()).connect() as conn:
        if not index_matches(conn, index):
            return True
        seq, head = int(index["seq"]), last_change_seq(conn)
        if seq == 0 and head > 0:  # empty files: a first publish does not wait at all
            return True
        if conn.execute(_left_after(seq).limit(1)).first() is not None:
            return True
    if head > seq:
        return _settled(index)
    return _retired_due(out)


# -- what the portal shows ----------------------------------------------------------------


def snapshot_files(index: dict[str, Any] | None) -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, format) -> the snapshot file entry of an index."""
    if not index:
        return {}
    return {(f["kind"], f["format"]): f for f in index.get("files", []) if f["type"] == "snapshot"}


def kinds_changed_since(conn: Connection, seq: int) -> set[str]:
    """The kinds with change events after seq (their live download differs from the snapshot)."""
    return {
        kind
        for kind in KINDS
        if conn.execute(
            select(EVENTS.c.seq).where(EVENTS.c.kind == kind, EVENTS.c.seq > seq).limit(1)
        ).first()
        is not None
    }


def last_updates(conn: Connection) -> dict[str, str | None]:
    """kind -> time of its newest change event (index ix_changes_kind_seq)."""
    out: dict[str, str | None] = {}
    for kind in KINDS:
        at = conn.execute(
            select(EVENTS.c.at).where(EVENTS.c.kind == kind).order_by(EVENTS.c.seq.desc()).limit(1)
        ).scalar()
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        out[kind] = at.isoformat() if at is not None else None
    return out


def datasets(
    index: dict[str, Any] | None,
    counts: dict[str, int],
    updates: dict[str, str | None],
    changed: set[str],
    withheld: set[str] | frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """The datasets as the open-data page and its JSON twin show them. `withheld`: the kinds
    whose snapshot is not served now (content left publication since it was built)."""
    files = snapshot_files(index)
    out = []
    for kind in KINDS:
        downloads = []
        current = bool(index) and kind not in changed and kind not in withheld
        for fmt in FORMATS:
            snap = files.get((kind, fmt))
            known = snap if current and snap else None
            downloads.append(
                {
                    "format": fmt,
                    "url": f"/open-data/{kind}.{fmt}",
                    "media_type": MEDIA_TYPES[fmt],
                    "encoding": None,
                    "rows": known["rows"] if known else None,
                    "bytes": known["content_bytes"] if known else None,
                    "sha256": known["content_sha256"] if known else None,
                }
            )
        for fmt in FORMATS:
            snap = files.get((kind, fmt))
            if snap and kind not in withheld:
                downloads.append(
                    {
                        "format": fmt,
                        "url": snap["url"],
                        "media_type": MEDIA_TYPES[fmt],
                        "encoding": "gzip",
                        "rows": snap["rows"],
                        "bytes": snap["bytes"],
                        "sha256": snap["sha256"],
                    }
                )
        out.append(
            {
                "kind": kind,
                "title": KIND_LABELS[kind],
                "description": DATASET_DESCRIPTIONS[kind],
                "row_count": files[(kind, "csv")]["rows"]
                if current and (kind, "csv") in files
                else counts.get(kind, 0),
                "last_update": updates.get(kind),
                "snapshot_version": index["version"] if index else None,
                "snapshot_current": current,
                "downloads": downloads,
                "fields": dictionary(kind),
            }
        )
    return out
