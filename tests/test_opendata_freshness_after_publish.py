"""Open-data downloads after a publish that only adds records: the worker's open-data-now job
builds once the last build is opendata.SETTLE old (not only at 01:00), so downloads are served
from the snapshot again; until then they stream from the database, at most LIVE_STREAMS at once
per portal process (503 with Retry-After beyond), each slot given back when its stream ends or
is abandoned. On SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx

from portal.api.opendata import LIVE_RETRY_AFTER, LIVE_STREAMS
from publishing import clock, opendata, worker
from tests.api_helpers import GENEROUS, api_client, publish_csv
from tests.factories import blacklist_row, penalty_row
from tests.servers import portal_server

T0 = datetime.now(UTC).replace(microsecond=0)


def _at(monkeypatch, moment: datetime) -> None:
    monkeypatch.setattr(clock, "now", lambda: moment)


def _open_data_now(engine) -> dict | None:
    """One run of the worker as deployed, with only its open-data-now job (fresh: due)."""
    [job] = [j for j in worker.default_jobs() if j.name == "open-data-now"]
    return worker.run_worker(engine, once=True, jobs=[job])["open-data-now"]


def _ids(text: str) -> set[str]:
    return {json.loads(line)["id"] for line in text.splitlines()}


def _decision_no(n: int) -> str:
    return penalty_row(n)["行政处罚决定书文号"]


def test_additions_are_built_within_the_settle_interval(engine, tmp_path, monkeypatch):
    publish_csv(engine, tmp_path, "p.csv", [penalty_row(1), penalty_row(2)])
    _at(monkeypatch, T0)
    first = opendata.build(engine)
    with api_client(engine, GENEROUS) as client:
        served = client.get("/open-data/penalty.ndjson")
        assert served.headers["x-snapshot-version"] == first["version"]
        publish_csv(engine, tmp_path, "q.csv", [penalty_row(3)])  # additions only

        # settling: the download streams from the database, with the new record
        _at(monkeypatch, T0 + opendata.SETTLE - timedelta(seconds=1))
        assert _open_data_now(engine) is None
        live = client.get("/open-data/penalty.ndjson")
        assert "x-snapshot-version" not in live.headers
        assert _decision_no(3) in live.text

        # SETTLE after the last build the worker builds, though no record left publication
        _at(monkeypatch, T0 + opendata.SETTLE)
        built = _open_data_now(engine)
        assert built is not None and built["seq"] > first["seq"]
        index = opendata.load_index()
        snap = client.get("/open-data/penalty.ndjson")
        assert snap.headers["x-snapshot-version"] == index["version"] != first["version"]
        assert _ids(snap.text) == _ids(live.text) and _decision_no(3) in snap.text
        assert client.get("/open-data/penalty.csv").headers["x-snapshot-version"] == index["version"]

        # a burst: the next additions wait for SETTLE after that build, then make one build
        for n in (4, 5):
            publish_csv(engine, tmp_path, f"r{n}.csv", [penalty_row(n)])
            _at(monkeypatch, T0 + opendata.SETTLE + timedelta(minutes=n))
            assert _open_data_now(engine) is None
        _at(monkeypatch, T0 + 2 * opendata.SETTLE)
        assert _open_data_now(engine)["seq"] == opendata.load_index()["seq"] > built["seq"]
        snap = client.get("/open-data/penalty.ndjson")
        assert {_decision_no(4), _decision_no(5)} <= {
            json.loads(x)["decision_no"] for x in snap.text.splitlines()
        }
        assert snap.headers["x-snapshot-version"] == opendata.load_index()["version"]
        assert _open_data_now(engine) is None  # nothing new

        # a withdrawal does not wait for SETTLE (as before)
        _at(monkeypatch, T0 + 2 * opendata.SETTLE + timedelta(minutes=1))
        header = [*penalty_row(1), "操作"]
        publish_csv(engine, tmp_path, "w.csv", [penalty_row(1, 操作="撤销")], header=header)
        assert _open_data_now(engine) is not None


# -- the cap on live streams ------------------------------------------------------------------

# A body larger than the socket buffers can take (BIG_ROWS rows of about 15 kB: 7 MB; the send
# buffer grows to 4 MB at most): a client that stops reading holds the server's stream open.
BIG_ROWS = 500
FACTS = "当事人经营超过保质期的食品，" * 350


@contextlib.contextmanager
def _held_stream(client: httpx.Client, path: str) -> Iterator[httpx.Response]:
    """A download the client has started reading and then stops reading (the server's stream
    stays open); closed (the connection dropped mid-stream) on the way out."""
    with client.stream("GET", path) as response:
        if response.status_code == 200:
            chunks = response.iter_bytes()  # kept: dropping it would close the connection
            next(chunks)
            response.rest = chunks  # type: ignore[attr-defined]
        yield response


def _eventually(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _starts(client: httpx.Client, path: str) -> bool:
    with _held_stream(client, path) as response:
        return response.status_code == 200


def test_live_streams_are_capped_and_their_slots_freed(engine, tmp_path):
    publish_csv(engine, tmp_path, "b.csv", [blacklist_row(1)])
    opendata.build(engine)
    rows = [penalty_row(n, 违法事实=f"{FACTS}{n}") for n in range(1, BIG_ROWS + 1)]
    publish_csv(engine, tmp_path, "big.csv", rows)  # added since the build: streamed live
    path = "/open-data/penalty.csv"
    with portal_server({}, access_log=False) as (base, _), httpx.Client(
        base_url=base, timeout=30
    ) as client:
        with contextlib.ExitStack() as held:
            streams = [held.enter_context(_held_stream(client, path)) for _ in range(LIVE_STREAMS)]
            assert [s.status_code for s in streams] == [200] * LIVE_STREAMS
            assert all("x-snapshot-version" not in s.headers for s in streams)
            busy = client.get(path)
            assert busy.status_code == 503
            assert busy.headers["retry-after"] == str(LIVE_RETRY_AFTER)
            assert "正在按最新数据重新生成" in busy.text and "重试" in busy.text
            assert client.get("/open-data/penalty.ndjson").status_code == 503  # any live one
            assert client.head(path).status_code == 200  # HEAD takes no slot
            # the snapshot of an unchanged kind is served, and revalidated, as before
            snap = client.get("/open-data/blacklist.csv")
            assert snap.status_code == 200 and "x-snapshot-version" in snap.headers
            etag = {"If-None-Match": snap.headers["etag"]}
            assert client.get("/open-data/blacklist.csv", headers=etag).status_code == 304
            # one stream read to its end gives its slot back
            rest = b"".join(streams[0].rest)
            assert rest.endswith(b"\r\n")
            assert _eventually(lambda: _starts(client, path))
        # the other one was abandoned mid-stream (connection closed): its slot comes back too
        assert _eventually(lambda: _both_free(client, path))


def _both_free(client: httpx.Client, path: str) -> bool:
    """Whether LIVE_STREAMS streams start at once again, and not one more."""
    with contextlib.ExitStack() as held:
        started = [held.enter_context(_held_stream(client, path)) for _ in range(LIVE_STREAMS)]
        if any(s.status_code != 200 for s in started):
            return False
        assert client.get(path).status_code == 503
        return True

