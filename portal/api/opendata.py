"""/open-data — datasets with their data dictionary and licence (HTML, JSON twin at
/api/v1/open-data), streamed downloads /open-data/{kind}.csv|.ndjson, the snapshot and delta
files with their index.json, and the DCAT-AP catalog /open-data/catalog.jsonld.

A download streams the published records from the database (keyset-paged), except when the
kind has not changed since the newest snapshot: then it streams that snapshot's bytes
(decompressed), which are exactly what index.json's content_sha256 describes, and says so in
ETag and Repr-Digest. Either way memory stays flat.
"""

from __future__ import annotations

import base64
import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from litestar import HttpMethod, Request, Response, get, route
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
from litestar.response import File, Stream
from sqlalchemy import Connection

from portal import stats
from portal.api.schemas import API_TAG, NOT_FOUND, TOO_MANY, OpenDataIndex, OpenDataPage
from portal.errors import not_found
from portal.render import Page, respond
from publishing import opendata, read
from publishing.contract import KINDS
from publishing.settings import get_settings

DOWNLOAD = re.compile(rf"^({'|'.join(KINDS)})\.(csv|ndjson)$")
SNAPSHOT_FILE = re.compile(rf"^({'|'.join(KINDS)})\.(csv|ndjson)\.gz$")
DELTA_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.ndjson$")
VERSION = re.compile(r"^\d{1,19}$")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson; charset=utf-8"}
# Litestar lets the handler's media_type override a Stream's own: set the header directly.
DOWNLOAD_CACHE = "public, max-age=300"
NO_INDEX = "开放数据快照尚未生成(管理员运行 disclosure export 或后台任务后即可提供)。"
GET_HEAD = [HttpMethod.GET, HttpMethod.HEAD]
DOWNLOAD_TAG = "开放数据下载"


def _out_dir(request: Request) -> Path:
    return Path(request.app.state.get("opendata_dir") or opendata.default_dir())


_index_cache: dict[Path, tuple[tuple[int, int], dict[str, Any] | None]] = {}


def current_index(out_dir: Path) -> dict[str, Any] | None:
    """index.json, parsed once per version of the file."""
    path = out_dir / opendata.INDEX_NAME
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    stamp = (st.st_mtime_ns, st.st_size)
    cached = _index_cache.get(path)
    if cached and cached[0] == stamp:
        return cached[1]
    index = opendata.load_index(out_dir)
    _index_cache[path] = (stamp, index)
    return index


def _changed(cache: stats.PublishedCache, conn: Connection, index: dict | None) -> set[str]:
    if not index:
        return set(KINDS)
    seq = int(index["seq"])
    return cache.get(
        conn, f"opendata:changed:{seq}", lambda c: opendata.kinds_changed_since(c, seq)
    )


def page_data(request: Request, conn: Connection) -> dict[str, Any]:
    cache: stats.PublishedCache = request.app.state.published_cache
    index = current_index(_out_dir(request))
    counts = stats.counts(cache, conn)["by_kind"]
    updates = cache.get(conn, "opendata:updates", opendata.last_updates)
    sets = opendata.datasets(index, counts, updates, _changed(cache, conn, index))
    snapshot = None
    if index:
        snapshot = {
            "version": index["version"],
            "seq": index["seq"],
            "generated_at": index["generated_at"],
            "index_url": "/open-data/index.json",
        }
    return {
        "title": "开放数据",
        "publisher": opendata.PUBLISHER,
        "as_of": read.last_change_seq(conn),
        "licence": opendata.licence(),
        "datasets": sets,
        "snapshot": snapshot,
        "index_url": "/open-data/index.json",
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
    description="每类公示信息一个数据集:数据字典(字段、中文名、类型、含义)、行数、最近更新时间、"
    "下载地址及 SHA-256(快照生成时计算)。",
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
    description="镜像站点轮询此文件:version、generated_at,以及每个文件的路径、字节数、SHA-256、"
    "行数(快照)或 seq 范围与事件数(增量)。",
    responses={404: NOT_FOUND, 429: TOO_MANY},
)
def index_json(request: Request) -> Response[OpenDataIndex]:
    path = _out_dir(request) / opendata.INDEX_NAME
    try:
        body = path.read_bytes()
    except FileNotFoundError:
        raise not_found(NO_INDEX) from None
    return Response(
        body, media_type="application/json", headers={"Cache-Control": "public, max-age=60"}
    )


@get(
    "/open-data/catalog.jsonld",
    name="open_data_catalog",
    sync_to_thread=True,
    media_type="application/ld+json",
    tags=[DOWNLOAD_TAG],
    summary="DCAT-AP 数据目录(JSON-LD)",
    responses={429: TOO_MANY},
)
def catalog(request: Request, conn: NamedDependency[Connection]) -> Response[dict[str, Any]]:
    data = page_data(request, conn)
    index = current_index(_out_dir(request))
    body = opendata.catalog(get_settings().base_url, data["datasets"], index)
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
            ok.description = "CSV(UTF-8 带 BOM)或 NDJSON"
            ok.content = {
                "text/csv": OpenAPIMediaType(schema=text),
                "application/x-ndjson": OpenAPIMediaType(schema=text),
            }


def _snapshot_lines(path: Path) -> Iterator[bytes]:
    with gzip.open(path, "rb") as fh:
        while block := fh.read(opendata.CHUNK_BYTES):
            yield block


def _current_snapshot(
    request: Request, conn: Connection, kind: str, fmt: str
) -> tuple[dict, Path] | None:
    """The snapshot file of (kind, fmt) when the kind has not changed since it was built."""
    out_dir = _out_dir(request)
    index = current_index(out_dir)
    snap = opendata.snapshot_files(index).get((kind, fmt))
    if not snap or kind in _changed(request.app.state.published_cache, conn, index):
        return None
    path = out_dir / snap["path"]
    return (snap, path) if path.is_file() else None


@route(
    "/open-data/{filename:str}",
    http_method=GET_HEAD,
    name="open_data_download",
    sync_to_thread=True,
    media_type="application/octet-stream",
    operation_class=DownloadOperation,
    tags=[DOWNLOAD_TAG],
    summary="下载数据集(CSV 或 NDJSON,流式)",
    description="`{kind}.csv`:UTF-8 带 BOM、CRLF 换行,可直接用 Excel 打开;`{kind}.ndjson`:每行一条"
    "记录的 JSON。内容为公示中的全部记录(公示形态),按记录编号排序。",
    responses={404: NOT_FOUND, 429: TOO_MANY},
)
def download(
    request: Request,
    filename: Annotated[
        str,
        Parameter(
            description="数据集文件名:{kind}.csv 或 {kind}.ndjson",
            examples=[Example(value="penalty.csv"), Example(value="credit_mark.ndjson")],
        ),
    ],
) -> Stream:
    match = DOWNLOAD.match(filename)
    if not match:
        raise not_found(
            "没有该数据集文件。可下载:" + "、".join(f"{k}.csv / {k}.ndjson" for k in KINDS)
        )
    kind, fmt = match.groups()
    headers = {
        "content-type": CONTENT_TYPES[fmt],
        "Cache-Control": DOWNLOAD_CACHE,
        "Content-Disposition": f'attachment; filename="{filename}"',
    }
    # Its own short connection, not the request's: a download streams for minutes and must not
    # hold one of the request connection slots (portal.deps) all that time.
    with request.app.state.engine.connect() as conn:
        snapshot = _current_snapshot(request, conn, kind, fmt)
    if snapshot:
        snap, path = snapshot
        digest = base64.b64encode(bytes.fromhex(snap["content_sha256"])).decode()
        headers.update(
            {
                "ETag": f'"sha256-{snap["content_sha256"]}"',
                "Repr-Digest": f"sha-256=:{digest}:",
                "X-Snapshot-Version": str(snap["version"]),
            }
        )
        if request.headers.get("if-none-match") == headers["ETag"]:
            return Response(b"", status_code=304, headers=headers)  # type: ignore[return-value]
        headers["content-length"] = str(snap["content_bytes"])  # exactly the snapshot's bytes
        body: Iterator[bytes] = _snapshot_lines(path)
    else:
        body = opendata.stream(kind, fmt, request.app.state.engine)
    if request.method == HttpMethod.HEAD:
        body = iter(())  # headers only; the body's length is unknown unless from the snapshot
    return Stream(body, headers=headers)


def _file(path: Path, media_type: str, cache: str) -> File:
    if not path.is_file():
        raise not_found("没有该文件(快照可能已被更新的版本取代,请重新读取 /open-data/index.json)。")
    return File(
        path,
        filename=path.name,
        media_type=media_type,
        content_disposition_type="attachment",
        headers={"Cache-Control": cache},
    )


@route(
    "/open-data/snapshots/{version:str}/{name:str}",
    http_method=GET_HEAD,
    name="open_data_snapshot",
    sync_to_thread=True,
    media_type="application/gzip",
    tags=[DOWNLOAD_TAG],
    summary="快照文件(gzip)",
    responses={404: NOT_FOUND, 429: TOO_MANY},
)
def snapshot_file(
    request: Request,
    version: Annotated[
        str,
        Parameter(description="快照版本(index.json 的 version)", examples=[Example(value="1200")]),
    ],
    name: Annotated[
        str,
        Parameter(
            description="{kind}.csv.gz 或 {kind}.ndjson.gz",
            examples=[Example(value="penalty.ndjson.gz")],
        ),
    ],
) -> File:
    if not VERSION.match(version) or not SNAPSHOT_FILE.match(name):
        raise not_found("没有该快照文件。")
    path = _out_dir(request) / "snapshots" / version / name
    return _file(path, "application/gzip", "public, max-age=31536000, immutable")


@route(
    "/open-data/deltas/{name:str}",
    http_method=GET_HEAD,
    name="open_data_delta",
    sync_to_thread=True,
    media_type="application/x-ndjson",
    tags=[DOWNLOAD_TAG],
    summary="每日增量文件(NDJSON)",
    description="当日(北京时间)全部变更事件,按 seq 排列,每行与 /api/v1/changes 的一项相同。",
    responses={404: NOT_FOUND, 429: TOO_MANY},
)
def delta_file(
    request: Request,
    name: Annotated[
        str,
        Parameter(description="YYYY-MM-DD.ndjson", examples=[Example(value="2026-11-27.ndjson")]),
    ],
) -> File:
    if not DELTA_FILE.match(name):
        raise not_found("没有该增量文件。")
    return _file(_out_dir(request) / "deltas" / name, "application/x-ndjson", "public, max-age=300")


route_handlers = [
    open_data_page,
    open_data_api,
    index_json,
    catalog,
    download,
    snapshot_file,
    delta_file,
]
