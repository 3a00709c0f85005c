"""/open-data — datasets with their data dictionary and licence (HTML, JSON twin at
/api/v1/open-data), streamed downloads /open-data/{kind}.csv|.ndjson, the snapshot and delta
files with their index.json, and the DCAT-AP catalog /open-data/catalog.jsonld.

A download streams the published records from the database (keyset-paged), except when the
kind has not changed since the newest snapshot: then it streams that snapshot's bytes
(decompressed), which are exactly what index.json's content_sha256 describes, and says so in
ETag and Repr-Digest. Either way memory stays flat.

A live stream costs ~40 times a snapshot's (credit_mark.csv at 300k entities: 14 s of CPU against
0.3 s), and eight at once slowed every page twenty-fold. They happen only between a publish and
the next build (publishing.opendata.needs_build: within about opendata.SETTLE), and at most
LIVE_STREAMS run at once per portal process; one more gets 503 with Retry-After (HEAD and 304
take no slot). Not the previous snapshot instead: its rows of records changed since would be
served as current, and caches would keep them. A slot is given back when the body ends or fails,
after the response (also when the client went away mid-stream), at the latest when the stream is
dropped.

Nothing served here may carry a record that has left publication (withdrawn, expired, its
publicity period ended) or content corrected on an upheld objection: only the newest snapshot
is listed, and not even that one served for a kind that has lost or corrected records since it
was built (410 until the next build); delta files are served with the lines of those records as
/api/v1/changes gives them now. The files the replaced index.json listed (kept by
publishing.opendata.build for RETIRED_GRACE, longer than index.json may be cached) are served
on the same terms until then, so that an index a client or cache still holds resolves; then an
older snapshot answers 410 Gone with a Link to the newest. Snapshot and delta files are
cached for a bounded time (SNAPSHOT_CACHE, DELTA_CACHE) with an ETag, never `immutable`: their
content may have to be withdrawn.

Files built from another change log than the database's (restored from a backup since, seqs
issued again: publishing.opendata.index_matches) are not served at all until the next build.

A snapshot or delta file is sent from a handle opened when the request is resolved, checked
against the index.json it was found through (_open_listed): a build may replace, move or
delete the name meanwhile, and the response still sends exactly the bytes its Content-Length,
ETag and Repr-Digest (the SHA-256 index.json lists) describe.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gzip
import itertools
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from email.utils import formatdate
from pathlib import Path
from typing import Annotated, Any, BinaryIO, NamedTuple

from litestar import HttpMethod, Request, Response, get, route
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.openapi.spec import (
    Example,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Schema,
)
from litestar.params import Parameter
from litestar.response import Stream, Template
from sqlalchemy import Connection, Engine

from portal import stats
from portal.api.schemas import (
    API_TAG,
    TOO_MANY,
    OpenDataIndex,
    OpenDataPage,
    documented,
    html_error,
)
from portal.errors import TITLES, PageError, not_found
from portal.render import Page, etag_matches, respond
from publishing import changes, clock, opendata, opendata_catalog, read
from publishing.contract import KINDS
from publishing.settings import get_settings
from publishing.site import AUTHORITY

# \Z, not $: "$" also matches before a final newline, and a name ending in one went into a
# header (Content-Disposition), which the server refused mid-response, dropping the connection.
DOWNLOAD = re.compile(rf"^({'|'.join(KINDS)})\.(csv|ndjson)\Z")
SNAPSHOT_FILE = re.compile(rf"^({'|'.join(KINDS)})\.(csv|ndjson)\.gz\Z")
DELTA_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.ndjson\Z")
VERSION = re.compile(r"^\d{1,19}(-\d{1,9})?\Z")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson; charset=utf-8"}
# Litestar lets the handler's media_type override a Stream's own: set the header directly.
DOWNLOAD_CACHE = "public, max-age=300"
# Bounded like a 410 page (portal.errors.CACHE): a snapshot may be withdrawn any time.
SNAPSHOT_CACHE = "public, max-age=3600"
DELTA_CACHE = "public, max-age=300"  # rewritten when a record in it changes or is withdrawn
NO_INDEX = "开放数据快照尚未生成（管理员运行 disclosure opendata，或后台任务每日 01:00 生成后即可提供）。"
REBUILDING = "开放数据文件正在按当前数据重新生成，请稍后重新读取 /open-data/index.json。"
LINE_BATCH = 1000  # delta lines rewritten per database lookup
GET_HEAD = [HttpMethod.GET, HttpMethod.HEAD]
# Outside /api/, errors are pages (portal.errors.handle_error); 429 alone is JSON everywhere.
NOT_FOUND = html_error("没有该文件（错误页面）")
GONE = html_error("快照已不再提供（错误页面；Link 响应头指向最新快照或实时下载）")
DOWNLOAD_TAG = "开放数据下载"
NO_DELTA = "没有该增量文件。"
LIVE_STREAMS = 2  # live downloads at once per portal process (module docstring)
LIVE_RETRY_AFTER = 60  # seconds; the files are rebuilt within about opendata.SETTLE
LIVE_BUSY = (
    "该数据集的下载文件正在按最新数据重新生成，同时进行的实时下载已达上限，"
    "请约 1 分钟后重试（或先下载 /open-data/index.json 所列的快照与增量文件）。"
)

log = logging.getLogger("portal")


def _out_dir(request: Request) -> Path:
    return Path(request.app.state.get("opendata_dir") or opendata.default_dir())


class _IndexRead(NamedTuple):
    """index.json as read: `stamp` tells this file from any other (every build writes a new
    one and renames it into place: a new inode), `body` its bytes, `index` parsed."""

    stamp: tuple[int, int, int]
    body: bytes
    index: dict[str, Any]


_index_cache: dict[Path, tuple[tuple[int, int, int], _IndexRead | None]] = {}


def _index_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _index_file(out_dir: Path) -> _IndexRead | None:
    """index.json, read once per version of the file; None when there is none, or when it
    does not parse (truncated, empty: logged once, then served as missing)."""
    path = out_dir / opendata.INDEX_NAME
    stamp = _index_stamp(path)
    if stamp is None:
        return None
    cached = _index_cache.get(path)
    if cached and cached[0] == stamp:
        return cached[1]
    found: _IndexRead | None = None
    try:
        body = path.read_bytes()  # as new as `stamp` or newer: _open_listed then tries again
        index = json.loads(body)
        if not isinstance(index, dict):
            raise ValueError("not a JSON object")
        found = _IndexRead(stamp, body, index)
    except FileNotFoundError:
        pass
    except ValueError as err:
        log.error("open-data index %s is unreadable (%s): served as missing until a build", path, err)
    _index_cache[path] = (stamp, found)
    return found


def current_index(out_dir: Path) -> dict[str, Any] | None:
    """index.json, parsed once per version of the file (None: none, or unreadable)."""
    found = _index_file(out_dir)
    return found.index if found else None


def checked_index(request: Request, conn: Connection) -> dict[str, Any] | None:
    """index.json when it was built from this database's change log, else None (no build yet,
    or a restored database has issued its seqs again since: the files are not served)."""
    index = current_index(_out_dir(request))
    return index if index and opendata.index_matches(conn, index) else None


def _key(index: dict) -> str:
    return f"{index['seq']}:{index.get('seq_event')}"


def _changed(cache: stats.PublishedCache, conn: Connection, index: dict | None) -> set[str]:
    if not index:
        return set(KINDS)
    seq = int(index["seq"])
    return cache.get(
        conn, f"opendata:changed:{_key(index)}", lambda c: opendata.kinds_changed_since(c, seq)
    )


def _withheld(request: Request, conn: Connection, index: dict) -> set[str]:
    """The kinds whose snapshot may hold content that has left publication since the build."""
    return set(_left(request, conn, index).values()) | opendata.ended_kinds(index)


def page_data(request: Request, conn: Connection) -> dict[str, Any]:
    cache: stats.PublishedCache = request.app.state.published_cache
    index = checked_index(request, conn)
    counts = stats.counts(cache, conn)["by_kind"]
    updates = cache.get(conn, "opendata:updates", opendata.last_updates)
    withheld = _withheld(request, conn, index) if index else set()
    sets = opendata.datasets(index, counts, updates, _changed(cache, conn, index), withheld)
    snapshot = None
    index_url = None  # index.json exists only once a build has run: no link to a 404 before
    if index:
        index_url = "/open-data/index.json"
        snapshot = {
            "version": index["version"],
            "seq": index["seq"],
            "generated_at": index["generated_at"],
            "index_url": index_url,
        }
    return {
        "title": "开放数据",
        "publisher": AUTHORITY,
        "as_of": read.last_change_seq(conn),
        "licence": opendata_catalog.licence(),
        "datasets": sets,
        "snapshot": snapshot,
        "index_url": index_url,
        "catalog_url": "/open-data/catalog.jsonld",
        "changes_url": "/api/v1/changes",
        "credit_check_url": "/api/v1/credit-check",
    }


@get("/open-data", name="open_data", include_in_schema=False, sync_to_thread=True)
def open_data_page(request: Request, conn: NamedDependency[Connection]) -> Response:
    return respond(request, Page("open_data.html", page_data(request, conn), max_age=300))


@get(
    "/api/v1/open-data",
    name="api_open_data",
    sync_to_thread=True,
    tags=[API_TAG],
    summary="开放数据集、数据字典与许可",
    description="每类公示信息一个数据集：数据字典（字段、中文名、类型、含义）、行数、最近更新时间、"
    "下载地址及 SHA-256（快照生成时计算）。",
    responses={429: TOO_MANY},
)
def open_data_api(request: Request, conn: NamedDependency[Connection]) -> Response[OpenDataPage]:
    return respond(request, Page("open_data.html", page_data(request, conn), max_age=300))


@route(
    "/open-data/index.json",
    http_method=GET_HEAD,
    name="open_data_index",
    sync_to_thread=True,
    tags=[DOWNLOAD_TAG],
    summary="快照与每日增量文件索引",
    description="镜像站点轮询此文件：version、seq、seq_event、lineage、generated_at，以及每个文件的"
    "路径、字节数、SHA-256、行数（快照）或 seq 范围与事件数（增量）。lineage 与上次读取时不同，"
    "或 seq 比上次读取时小、seq 相同而 seq_event 不同，说明数据库已从备份恢复：请清空副本，"
    "从新快照重新同步。数据库恢复后、文件重新生成前返回 404。",
    responses={404: NOT_FOUND, 429: TOO_MANY},
)
def index_json(request: Request) -> Response[OpenDataIndex]:
    found = _index_file(_out_dir(request))
    if found is None:  # an unreadable file too, like every other open-data route
        raise not_found(NO_INDEX)
    _, body, index = found
    with request.app.state.engine.connect() as conn:
        if not opendata.index_matches(conn, index):
            raise not_found(REBUILDING)
    # the files a replaced index lists stay downloadable longer (opendata.RETIRED_GRACE)
    cache = f"public, max-age={opendata.INDEX_MAX_AGE}"
    return Response(body, media_type="application/json", headers={"Cache-Control": cache})


@get(
    "/open-data/catalog.jsonld",
    name="open_data_catalog",
    sync_to_thread=True,
    media_type="application/ld+json",
    tags=[DOWNLOAD_TAG],
    summary="DCAT-AP 数据目录（JSON-LD）",
    responses={429: TOO_MANY},
)
def catalog(request: Request, conn: NamedDependency[Connection]) -> Response[dict[str, Any]]:
    data = page_data(request, conn)
    index = checked_index(request, conn)
    body = opendata_catalog.catalog(get_settings().base_url, data["datasets"], index)
    return Response(
        body, media_type="application/ld+json", headers={"Cache-Control": "public, max-age=300"}
    )


@dataclass
class DownloadOperation(Operation):
    """The download's 200 is CSV or NDJSON (by file name), not one media type."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse):
            text = Schema(type=OpenAPIType.STRING)
            ok.description = "CSV（UTF-8 带 BOM）或 NDJSON"
            ok.content = {
                "text/csv": OpenAPIMediaType(schema=text),
                "application/x-ndjson": OpenAPIMediaType(schema=text),
            }


# A listed file is served from a handle opened when the request is resolved, not by its name
# when the response starts: a build may replace DAY.ndjson (publishing.opendata._settle_deltas),
# move a snapshot under retired/ or delete a file meanwhile, and the name would then give other
# bytes than its headers describe, or none (a 500, or a body cut off). An open handle keeps
# reading the same bytes after the name is replaced or unlinked (the build never writes into a
# file once it is listed).
OPEN_ATTEMPTS = 2  # a build replaced the file between reading index.json and opening: once more
Listed = tuple[dict[str, Any], dict[str, Any], Path]  # (generation, entry, file): _listed


@dataclass
class OpenedFile:
    """A file index.json lists, open: `entry` describes exactly its bytes (checked when it
    was opened). `index` is the index.json it was found through, `generation` the one listing
    it (that index, or the retired generation it replaced)."""

    index: dict[str, Any]
    generation: dict[str, Any]
    entry: dict[str, Any]
    handle: BinaryIO
    stat: os.stat_result

    def close(self) -> None:
        self.handle.close()  # again is a no-op


def _open_listed(
    out_dir: Path, find: Callable[[dict[str, Any]], Listed | None]
) -> OpenedFile | None:
    """The file `find` picks through index.json, opened, when its size is the entry's and
    index.json is still the one read: then the handle holds the bytes that index describes
    (a build changes a listed name only after writing the index that stops listing it as it
    was). None when there is no index.json, it lists no such file, or the file changed under
    us OPEN_ATTEMPTS times (answered as a missing file)."""
    for _ in range(OPEN_ATTEMPTS):
        read = _index_file(out_dir)
        if read is None:
            return None
        found = find(read.index)
        if found is None:
            return None
        generation, entry, path = found
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by the response (or on error)
        except FileNotFoundError:  # deleted by a build since the index was read
            continue
        stat = os.fstat(handle.fileno())
        if (
            stat.st_size == entry.get("bytes")
            and _index_stamp(out_dir / opendata.INDEX_NAME) == read.stamp
        ):
            return OpenedFile(read.index, generation, entry, handle, stat)
        handle.close()
    return None


@contextlib.contextmanager
def _closed_on_error(opened: OpenedFile | None) -> Iterator[None]:
    """Close the handle when the answer is an error: a response that sends it closes it."""
    try:
        yield
    except BaseException:
        if opened is not None:
            opened.close()
        raise


def _listed(out_dir: Path, path: str, index: dict[str, Any]) -> Listed | None:
    """The file of /open-data/{path}: the one the index lists for that URL (a delta day may
    be under a build's own name: DAY.build-N.ndjson), else the one the index it replaced
    listed while that is kept (publishing.opendata.retired_file)."""
    url = f"/open-data/{path}"
    entry = next((f for f in index.get("files", []) if f.get("url") == url), None)
    if entry is None:
        return opendata.retired_file(out_dir, index, path)
    return index, entry, out_dir / entry["path"]


def _newest_snapshot(out_dir: Path, kind: str, fmt: str, index: dict[str, Any]) -> Listed | None:
    snap = opendata.snapshot_files(index).get((kind, fmt))
    return (index, snap, out_dir / snap["path"]) if snap else None


def _blocks(handle: BinaryIO, size: int) -> Iterator[bytes]:
    """The first `size` bytes of the handle (all of it: Content-Length), closing it after."""
    with handle:
        while size > 0 and (block := handle.read(min(opendata.CHUNK_BYTES, size))):
            size -= len(block)
            yield block


def _snapshot_lines(handle: BinaryIO) -> Iterator[bytes]:
    """The snapshot file's content (decompressed), closing the handle after."""
    with handle, gzip.GzipFile(fileobj=handle, mode="rb") as fh:
        while block := fh.read(opendata.CHUNK_BYTES):
            yield block


def _sha256_headers(sha: str) -> dict[str, str]:
    digest = base64.b64encode(bytes.fromhex(sha)).decode()
    return {"ETag": f'"sha256-{sha}"', "Repr-Digest": f"sha-256=:{digest}:"}


class LiveStreams:
    """The live-download slots of one portal process. Taking one and giving it back are single
    list operations (atomic), no lock: a slot may be given back from a garbage collection (a
    stream dropped unread), where waiting for a lock could deadlock."""

    def __init__(self, limit: int) -> None:
        self._free = list(range(limit))

    def take(self) -> LiveSlot | None:
        """A slot, or None when all are in use."""
        try:
            return LiveSlot(self._free, self._free.pop())
        except IndexError:
            return None


class LiveSlot:
    """One slot of LiveStreams, given back once, by whichever comes first: the body's end or
    failure, the response's background task (Litestar runs it also after a client went away
    mid-stream), the slot's garbage collection (a response dropped before it was sent)."""

    def __init__(self, free: list[int], token: int) -> None:
        self._free = free
        self._token = [token]

    def release(self) -> None:
        if self._token:
            with contextlib.suppress(IndexError):  # another thread gave it back just now
                self._free.append(self._token.pop())

    def __del__(self) -> None:
        self.release()


_live_lock = threading.Lock()


def live_streams(app: Any) -> LiveStreams:
    """The app's live-download slots (made on first use: one set per portal process)."""
    with _live_lock:
        if app.state.get("live_streams") is None:
            app.state.live_streams = LiveStreams(LIVE_STREAMS)
        return app.state.live_streams


def _holding(slot: LiveSlot, body: Iterator[bytes]) -> Iterator[bytes]:
    """`body`, giving the slot back as soon as it ends or fails."""
    try:
        yield from body
    finally:
        slot.release()


def _live_download(request: Request, kind: str, fmt: str, headers: dict[str, str]) -> Response:
    """The download streamed from the database in one of the process's slots; 503 with
    Retry-After when all are in use."""
    slot = live_streams(request.app).take()
    if slot is None:
        busy = {"Retry-After": str(LIVE_RETRY_AFTER), "Cache-Control": "no-store"}
        context = {"status": 503, "title": TITLES[503], "detail": LIVE_BUSY, "json_url": None,
                   "feeds": []}
        return Template("error.html", context=context, status_code=503, headers=busy)
    body = _holding(slot, opendata.stream(kind, fmt, request.app.state.engine))
    return Stream(body, headers=headers, background=BackgroundTask(slot.release))


def _current_snapshot(request: Request, conn: Connection, kind: str, fmt: str) -> OpenedFile | None:
    """The snapshot file of (kind, fmt), open, when the kind has not changed since it was
    built (nor has any of its records' publicity ended)."""
    out_dir = _out_dir(request)
    opened = _open_listed(out_dir, functools.partial(_newest_snapshot, out_dir, kind, fmt))
    if opened is None:
        return None
    with _closed_on_error(opened):
        index = opened.index
        if (
            not opendata.index_matches(conn, index)
            or kind in _changed(request.app.state.published_cache, conn, index)
            or kind in opendata.ended_kinds(index)
        ):
            opened.close()
            return None
    return opened


@route(
    "/open-data/{filename:str}",
    http_method=GET_HEAD,
    name="open_data_download",
    sync_to_thread=True,
    media_type="application/octet-stream",
    operation_class=DownloadOperation,
    tags=[DOWNLOAD_TAG],
    summary="下载数据集（CSV 或 NDJSON，流式）",
    description="`{kind}.csv`：UTF-8 带 BOM、CRLF 换行，可直接用 Excel 打开；`{kind}.ndjson`：每行一条"
    "记录的 JSON。内容为公示中的全部记录（公示形态），按记录编号排序。",
    responses={
        404: NOT_FOUND,
        429: TOO_MANY,
        503: html_error("实时导出的同时下载数已满，见 Retry-After 响应头（错误页面）"),
    },
)
def download(
    request: Request,
    filename: Annotated[
        str,
        Parameter(
            description="数据集文件名：{kind}.csv 或 {kind}.ndjson",
            examples=[Example(value="penalty.csv"), Example(value="credit_mark.ndjson")],
        ),
    ],
) -> Stream:
    match = DOWNLOAD.match(filename)
    if not match:
        raise not_found(
            "没有该数据集文件。可下载：" + "、".join(f"{k}.csv / {k}.ndjson" for k in KINDS)
        )
    kind, fmt = match.groups()
    headers = {
        "content-type": CONTENT_TYPES[fmt],
        "Cache-Control": DOWNLOAD_CACHE,
        "Content-Disposition": f'attachment; filename="{kind}.{fmt}"',  # never the input
    }
    # Its own short connection, not the request's: a download streams for minutes and must not
    # hold one of the request connection slots (portal.deps) all that time.
    with request.app.state.engine.connect() as conn:
        snapshot = _current_snapshot(request, conn, kind, fmt)
    if snapshot is None:
        if request.method == HttpMethod.HEAD:
            # headers only (no slot taken); the body's length is unknown unless from the snapshot
            return Stream(iter(()), headers=headers)
        return _live_download(request, kind, fmt, headers)  # type: ignore[return-value]
    with _closed_on_error(snapshot):
        snap = snapshot.entry
        headers.update(_sha256_headers(snap["content_sha256"]))
        headers["X-Snapshot-Version"] = str(snap["version"])
        if etag_matches(request.headers.get("if-none-match"), headers["ETag"]):
            snapshot.close()
            return Response(b"", status_code=304, headers=headers)  # type: ignore[return-value]
        headers["content-length"] = str(snap["content_bytes"])  # exactly the snapshot's bytes
        if request.method == HttpMethod.HEAD:
            snapshot.close()
            return Stream(iter(()), headers=headers)
        body = _snapshot_lines(snapshot.handle)
        return Stream(body, headers=headers, background=BackgroundTask(snapshot.close))


def _left(request: Request, conn: Connection, index: dict) -> dict[str, str]:
    """record id -> kind of the records that left publication (or were corrected) since the
    index was built."""
    seq = int(index["seq"])
    cache: stats.PublishedCache = request.app.state.published_cache
    return cache.get(conn, f"opendata:left:{_key(index)}", lambda c: opendata.left_since(c, seq))


def _file(request: Request, opened: OpenedFile, media_type: str, cache: str, name: str) -> Response:
    """The opened file as a download named `name` (its URL's last part): Content-Length its
    size, ETag and Repr-Digest its SHA-256 as listed (the bytes sent: _open_listed); the
    handle is closed once the body is sent or the client went away (the background task runs
    then too), at once for HEAD and 304."""
    headers = {"Cache-Control": cache, **_sha256_headers(opened.entry["sha256"])}
    if etag_matches(request.headers.get("if-none-match"), headers["ETag"]):
        opened.close()
        return Response(b"", status_code=304, headers=headers)
    headers.update(
        {
            "content-type": media_type,  # not the route's media_type (see CONTENT_TYPES)
            "content-length": str(opened.stat.st_size),
            "Content-Disposition": f'attachment; filename="{name}"',
            "Last-Modified": formatdate(opened.stat.st_mtime, usegmt=True),
        }
    )
    if request.method == HttpMethod.HEAD:
        opened.close()
        return Stream(iter(()), headers=headers)
    body = _blocks(opened.handle, opened.stat.st_size)
    return Stream(body, headers=headers, background=BackgroundTask(opened.close))


def _snapshot_gone(detail: str, url: str) -> PageError:
    err = PageError(
        f"{detail}请改用 {url}。",
        status_code=410,
        payload={"status": "gone", "detail": detail, "current": url},
    )
    err.headers = {"Link": f'<{url}>; rel="latest-version"'}
    return err


@route(
    "/open-data/snapshots/{version:str}/{name:str}",
    http_method=GET_HEAD,
    name="open_data_snapshot",
    sync_to_thread=True,
    media_type="application/gzip",
    tags=[DOWNLOAD_TAG],
    summary="快照文件（gzip）",
    description="提供最新快照（index.json 中的 version）；被取代的快照在新 index.json 生成后仍可"
    f"下载 {int(opendata.RETIRED_GRACE.total_seconds())} 秒，之后返回 410，Link 响应头指向"
    "最新快照；快照生成后有记录停止公示（撤销、期满、公示截止日期已过）或经异议更正的类别，"
    "在下次生成前也返回 410，指向实时下载。同一版本号的内容不会改变。"
    "缓存一小时（ETag 可用于条件请求）。",
    responses={
        200: documented(
            bytes,
            "gzip 压缩的 CSV 或 NDJSON（index.json 给出其 SHA-256）",
            media_type="application/gzip",
        ),
        404: NOT_FOUND,
        410: GONE,
        429: TOO_MANY,
    },
)
def snapshot_file(
    request: Request,
    version: Annotated[
        str,
        Parameter(description="快照版本（index.json 的 version）", examples=[Example(value="1200")]),
    ],
    name: Annotated[
        str,
        Parameter(
            description="{kind}.csv.gz 或 {kind}.ndjson.gz",
            examples=[Example(value="penalty.ndjson.gz")],
        ),
    ],
) -> Response:
    """The newest snapshot's file, or the replaced one's during its grace; an older version is
    gone (deleted, it may hold records that have left publication since), and so is any kind
    that lost records since the version was built."""
    match = SNAPSHOT_FILE.match(name)
    if not VERSION.match(version) or not match:
        raise not_found("没有该快照文件。")
    kind, fmt = match.groups()
    out_dir = _out_dir(request)
    opened = _open_listed(
        out_dir, functools.partial(_listed, out_dir, f"snapshots/{version}/{name}")
    )
    with _closed_on_error(opened):
        index = opened.index if opened else current_index(out_dir)
        if index is None:
            raise not_found("没有该快照文件。")
        with request.app.state.engine.connect() as conn:  # not held while the file streams
            if not opendata.index_matches(conn, index):
                raise _snapshot_gone(REBUILDING, f"/open-data/{kind}.{fmt}")
            # as of the snapshot's own seq: the replaced one's too
            withheld = _withheld(request, conn, opened.generation if opened else index)
        snap = opendata.snapshot_files(index).get((kind, fmt))
        if not snap:
            raise not_found("没有该快照文件。")
        if version != index["version"]:
            if opened is not None and kind not in withheld:
                return _file(request, opened, "application/gzip", SNAPSHOT_CACHE, name)
            if opened is not None or opendata.superseded(index, version):
                raise _snapshot_gone("该快照已被更新的版本取代，不再提供。", snap["url"])
            raise not_found("没有该快照文件。")
        if kind in withheld:
            raise _snapshot_gone(
                "快照生成后该类别已有信息停止公示或被更正，新快照生成前暂停提供。",
                f"/open-data/{kind}.{fmt}",
            )
        if opened is None:
            raise not_found("没有该快照文件（可能正在更新，请重新读取 /open-data/index.json）。")
        return _file(request, opened, "application/gzip", SNAPSHOT_CACHE, name)


def _current_lines(
    handle: BinaryIO, left: dict[str, str], engine: Engine, today: date
) -> Iterator[bytes]:
    """The delta file with each line as /api/v1/changes gives it now: the record of the
    records that left publication or were corrected since the build read again (null unless
    published), and null for a record whose publicity period has ended. Closes the handle."""
    with handle as fh:
        while lines := list(itertools.islice(fh, LINE_BATCH)):
            items = [json.loads(line) for line in lines]
            again = [i["record_id"] for i in items if i["record"] and i["record_id"] in left]
            now: dict[str, dict | None] = {}
            if again:
                with engine.connect() as conn:
                    now = changes.current_records(conn, again, today)
            for line, item in zip(lines, items, strict=True):
                rec = item["record"]
                if rec is not None and (
                    item["record_id"] in now or not read.is_visible(rec, today)
                ):
                    item["record"] = now.get(item["record_id"])
                    line = (json.dumps(item, ensure_ascii=False) + "\n").encode()
                yield line


@route(
    "/open-data/deltas/{name:str}",
    http_method=GET_HEAD,
    name="open_data_delta",
    sync_to_thread=True,
    media_type="application/x-ndjson",
    tags=[DOWNLOAD_TAG],
    summary="每日增量文件（NDJSON）",
    description="当日（北京时间）全部变更事件，按 seq 排列，每行与 /api/v1/changes 的一项相同："
    "已停止公示的记录 record 为 null，此前各日文件中该记录的行也是如此；异议成立后更正的记录，"
    "各行 record 为更正后的内容。缓存五分钟。",
    responses={
        200: documented(
            str,
            "每行一个变更事件（与 /api/v1/changes 的一项相同）",
            media_type="application/x-ndjson",
        ),
        404: NOT_FOUND,
        429: TOO_MANY,
    },
)
def delta_file(
    request: Request,
    name: Annotated[
        str,
        Parameter(description="YYYY-MM-DD.ndjson", examples=[Example(value="2026-11-27.ndjson")]),
    ],
) -> Response:
    """The day's file as built; between a withdrawal or correction (or the end of a record's
    publicity) and the next build (which rewrites the file) its lines for those records are
    rewritten on the fly. A day the current index no longer lists is served while the one it
    replaced is kept (that build wrote it: it is as current as the index). The file is the one
    index.json lists for the URL (a build writes a day under another name first)."""
    if not DELTA_FILE.match(name):
        raise not_found(NO_DELTA)
    out_dir = _out_dir(request)
    opened = _open_listed(out_dir, functools.partial(_listed, out_dir, f"deltas/{name}"))
    if opened is None:
        raise not_found(NO_DELTA)
    engine = request.app.state.engine
    with _closed_on_error(opened):
        with engine.connect() as conn:
            if not opendata.index_matches(conn, opened.index):
                raise not_found(REBUILDING)
            left = _left(request, conn, opened.index)
        today = clock.today()
        if not left and not opendata.ended_kinds(opened.index, today):
            return _file(request, opened, "application/x-ndjson", DELTA_CACHE, name)
        headers = {
            "content-type": CONTENT_TYPES["ndjson"],
            "Cache-Control": "no-store",  # differs from the file until the next build
            "Content-Disposition": f'attachment; filename="{name}"',
        }
        if request.method == HttpMethod.HEAD:
            opened.close()
            return Stream(iter(()), headers=headers)
        body = _current_lines(opened.handle, left, engine, today)
        return Stream(body, headers=headers, background=BackgroundTask(opened.close))


route_handlers = [
    open_data_page,
    open_data_api,
    index_json,
    catalog,
    download,
    snapshot_file,
    delta_file,
]
