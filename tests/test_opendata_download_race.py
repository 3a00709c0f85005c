"""Open-data downloads while builds run: every response carries exactly the bytes its headers
describe (Content-Length, ETag, Repr-Digest), or is a documented miss (404, 410), never a 500
or a body cut off. The portal used to resolve a file through index.json and open it by name
only when it started sending: a build in between had replaced DAY.ndjson (a body longer than
its Content-Length), moved the snapshot under retired/ or deleted a DAY.build-N.ndjson (a 500,
or a download cut off after its headers). On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from portal.api import opendata as portal_opendata
from portal.app import create_app
from publishing import apikeys, opendata
from publishing.commit import EVENTS
from tests.api_helpers import bulk_penalties, publish_csv
from tests.factories import credit_mark_row, penalty_row
from tests.servers import portal_server

DAY = "2026-11-27"  # the Beijing day of bulk_penalties' events: rewritten by every build
DELTA_URL = f"/open-data/deltas/{DAY}.ndjson"
UNCHANGED = "/open-data/credit_mark.ndjson"  # served from the newest snapshot, decompressed
ROUNDS = 20
CLIENTS = 3


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _start(engine, tmp_path: Path) -> Path:
    """Penalties on DAY, credit marks that no build changes, and a first build."""
    bulk_penalties(engine, 20)
    publish_csv(engine, tmp_path, "c.csv", [credit_mark_row(i) for i in range(1, 4)])
    out = opendata.default_dir()
    opendata.build(engine, out)
    return out


def _publish_and_build(engine, out: Path, round_no: int) -> dict[str, Any]:
    """More penalties on DAY, then a build: DAY.ndjson is replaced, the snapshot before moves
    under retired/ and the one before that is deleted."""
    bulk_penalties(engine, 3, start=1000 + 3 * round_no)
    return opendata.build(engine, out)


def _problems(url: str, status: int, headers: Any, body: bytes) -> list[str]:
    """What is wrong with one answer: a 200 whose body is not what its headers say, or a
    status the routes do not document."""
    if status in (404, 410) and url != UNCHANGED:
        return []  # a file a newer build took away (the index read was older)
    if status != 200:
        return [f"{url}: {status}"]
    if url == UNCHANGED and "x-snapshot-version" not in headers:
        # builds on both of its tries (a slow machine): streamed from the database, whole
        lines = body.decode().splitlines()
        ids = [json.loads(line)["id"] for line in lines]
        return [] if body.endswith(b"\n") and len(ids) == 3 else [f"{url}: live, {ids}"]
    wrong = []
    if int(headers.get("content-length", -1)) != len(body):
        wrong.append(f"{url}: {len(body)} bytes, Content-Length {headers.get('content-length')}")
    if headers.get("etag") != f'"sha256-{_sha(body)}"':
        wrong.append(f"{url}: ETag {headers.get('etag')} for a body of SHA-256 {_sha(body)}")
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    if headers.get("repr-digest") != f"sha-256=:{digest}:":
        wrong.append(f"{url}: Repr-Digest {headers.get('repr-digest')} for another body")
    return wrong


def _urls(index: dict[str, Any]) -> list[str]:
    """The DAY delta, the newest penalty snapshot and the unchanged kind's download."""
    return [DELTA_URL, opendata.snapshot_files(index)[("penalty", "csv")]["url"], UNCHANGED]


def _download_while_building(client: httpx.Client, building: threading.Event) -> dict[str, Any]:
    """Follow index.json and download its DAY delta, its penalty snapshot and an unchanged
    kind's download, again and again while `building` is set."""
    problems: list[str] = []
    served: dict[str, int] = {"delta": 0, "snapshot": 0, "download": 0}
    while building.is_set():
        listed = client.get("/open-data/index.json")
        if listed.status_code != 200:
            problems.append(f"index.json: {listed.status_code}")
            continue
        for url, what in zip(_urls(listed.json()), ("delta", "snapshot", "download"), strict=True):
            try:
                r = client.get(url)
            except httpx.TransportError as err:  # the body cut off, the connection dropped
                problems.append(f"{url}: {type(err).__name__}: {err}")
                continue
            problems += _problems(url, r.status_code, r.headers, r.content)
            served[what] += r.status_code == 200
    return {"problems": problems, "served": served}


def test_downloads_during_builds_are_whole_or_missing(engine, database_url, tmp_path):
    """The review's run: clients fetch a delta day and snapshot files in a loop while builds
    rewrite that day and replace the snapshot."""
    out = _start(engine, tmp_path)
    key = apikeys.create_key(engine, "开放数据镜像测试", per_minute=100_000)  # not rate-limited
    env = {"DISCLOSURE_DATABASE_URL": database_url, "DISCLOSURE_DATA_DIR": str(out.parent)}
    building = threading.Event()
    building.set()
    with (
        portal_server(env, access_log=False) as (base, _),
        httpx.Client(base_url=base, timeout=30, headers={"X-API-Key": key}) as client,
        ThreadPoolExecutor(CLIENTS) as pool,
    ):
        clients = [pool.submit(_download_while_building, client, building) for _ in range(CLIENTS)]
        try:
            versions = {_publish_and_build(engine, out, n)["version"] for n in range(ROUNDS)}
        finally:
            building.clear()
        results = [c.result() for c in clients]
    assert len(versions) == ROUNDS  # each round built anew
    problems = [p for r in results for p in r["problems"]]
    assert not problems, problems
    for what in ("delta", "snapshot", "download"):
        assert sum(r["served"][what] for r in results) >= ROUNDS, results


# -- the same race, made certain: resolved, then two builds, then sent ---------------------


async def _resolve_build_send(app, url: str, between: Callable[[], None]) -> tuple[int, dict, bytes]:
    """GET `url` from the app as a server would, running `between` once the handler has
    answered, after the response's headers are made and before its body is sent (the
    moment a build used to replace or delete the file under a resolved response)."""
    done = asyncio.Event()
    requested = False
    start: dict[str, Any] = {}
    body = bytearray()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()  # the client stays until the response is over
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            between()
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": url,
        "raw_path": url.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    await app(scope, receive, send)
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, bytes(body)


def test_a_response_resolved_before_builds_sends_the_bytes_it_resolved(engine, tmp_path):
    """Deterministic: each URL is resolved, then two builds run (the day rewritten twice,
    the snapshot retired and then deleted), then the response is sent. It sends the file as
    it was when resolved, whole, with headers that describe it."""
    out = _start(engine, tmp_path)
    app = create_app(engine)
    for round_no, url in enumerate((DELTA_URL, "snapshot", UNCHANGED)):
        index = opendata.load_index(out)
        snapshots = opendata.snapshot_files(index)
        expected = {
            DELTA_URL: next(f["sha256"] for f in index["files"] if f["url"] == DELTA_URL),
            "snapshot": snapshots[("penalty", "csv")]["sha256"],
            UNCHANGED: snapshots[("credit_mark", "ndjson")]["content_sha256"],
        }[url]
        url = _urls(index)[1] if url == "snapshot" else url

        def two_builds(n: int = round_no) -> None:
            _publish_and_build(engine, out, 2 * n)
            _publish_and_build(engine, out, 2 * n + 1)

        status, headers, body = asyncio.run(_resolve_build_send(app, url, two_builds))
        assert status == 200, (url, status, body[:300])
        assert _problems(url, status, headers, body) == []
        assert _sha(body) == expected, url  # what was resolved, not what the builds wrote
        assert opendata.load_index(out)["version"] != index["version"]
    assert not (out / "retired" / "snapshots" / index["version"]).exists()  # (deleted indeed)


def test_a_day_replaced_between_reading_the_index_and_opening_is_looked_up_again(
    engine, tmp_path
):
    """The route's resolution with a build between its reading index.json and its opening
    the file: a fine corrected to as many digits rewrites the record's earlier day to as many
    bytes, other ones, so the file's size alone would pass; index.json is read again and the
    new entry comes with the new file. A build before every opening: no file (answered as a
    missing one)."""
    publish_csv(engine, tmp_path, "p.csv", [penalty_row(i) for i in range(1, 4)])
    with engine.begin() as conn:  # the day of those events is not the one corrections land on
        conn.execute(EVENTS.update().values(at=datetime(2026, 11, 20, 2, 0, tzinfo=UTC)))
    out = tmp_path / "od"
    url = "/open-data/deltas/2026-11-20.ndjson"
    [before] = [f for f in opendata.build(engine, out)["files"] if f["url"] == url]
    fines = iter(["6000", "7000", "8000"])

    def build_before_opening(times: int) -> Callable[[dict[str, Any]], Any]:
        """The route's lookup of the day, then a correction and a build: the first `times`
        times."""
        left = [times]

        def find(index: dict[str, Any]) -> Any:
            found = portal_opendata._listed(out, "deltas/2026-11-20.ndjson", index)
            if left[0] > 0:
                left[0] -= 1
                fine = next(fines)
                row = penalty_row(2, **{"罚款金额(元)": fine})
                publish_csv(engine, tmp_path, f"fine-{fine}.csv", [row])
                opendata.build(engine, out)
            return found

        return find

    opened = portal_opendata._open_listed(out, build_before_opening(1))
    assert opened is not None
    try:
        data = opened.handle.read()
    finally:
        opened.close()
    [after] = [f for f in opendata.load_index(out)["files"] if f["url"] == url]
    assert (after["bytes"], after["sha256"]) != (before["bytes"], before["sha256"])
    assert after["bytes"] == before["bytes"]  # (the case where only the index tells)
    assert opened.entry == after and _sha(data) == after["sha256"]
    assert portal_opendata._open_listed(out, build_before_opening(2)) is None
