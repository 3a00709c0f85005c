"""An open-data index.json may be cached (max-age) after a build has replaced it: every URL it
lists must still resolve for that long, and for a margin, and only then answer 410 and leave the
disk (publishing.opendata.RETIRED_GRACE). Real files, real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime, timedelta

from publishing import clock, opendata, worker
from publishing.commit import EVENTS
from tests.api_helpers import api_client, publish_csv
from tests.factories import credit_mark_row, penalty_row

PENALTY_WITH_OP = [*penalty_row(1), "操作"]
MARK_WITH_OP = [*credit_mark_row(1), "操作"]
GONE_MARKERS = ("烟芝市监罚〔2026〕2号", "案值2元")  # the withdrawn penalty's own content


def _publish(engine, tmp_path) -> None:
    publish_csv(engine, tmp_path, "p.csv", [penalty_row(i) for i in range(1, 4)])
    publish_csv(engine, tmp_path, "c.csv", [credit_mark_row(i) for i in range(1, 3)])


def _fetch_index(client) -> dict:
    r = client.get("/open-data/index.json")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == f"public, max-age={opendata.INDEX_MAX_AGE}"
    return r.json()


def _snapshots(index: dict) -> list[dict]:
    return [f for f in index["files"] if f["type"] == "snapshot"]


def _assert_newest_resolves(client, out) -> dict:
    """The index now served lists only files that are on disk and served."""
    index = _fetch_index(client)
    for f in index["files"]:
        assert (out / f["path"]).is_file(), f["path"]
        r = client.get(f["url"])
        assert r.status_code == 200, (f["url"], r.text)
        if f["type"] == "snapshot":
            assert hashlib.sha256(r.content).hexdigest() == f["sha256"]
    return index


def _at(moment: datetime, monkeypatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: moment)


def _on_disk(out) -> str:
    return "".join(
        (gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()).decode(
            "utf-8-sig"
        )
        for p in out.rglob("*")
        if p.is_file() and p.name != ".lock"
    )


def test_an_index_fetched_before_a_rebuild_resolves_after_it(engine, tmp_path):
    # the grace outlasts any copy of a replaced index, with a margin to follow its URLs
    assert timedelta(seconds=opendata.INDEX_MAX_AGE) < opendata.RETIRED_GRACE
    _publish(engine, tmp_path)
    out = tmp_path / "od"
    opendata.build(engine, out)
    with api_client(engine, opendata_dir=out) as client:
        old = _fetch_index(client)
        publish_csv(engine, tmp_path, "more.csv", [penalty_row(50)])
        new = opendata.build(engine, out)
        assert new["version"] != old["version"]
        for f in old["files"]:  # what a client holding the old index (or a cache) follows
            r = client.get(f["url"])
            assert r.status_code == 200, (f["url"], r.text)
            if f["type"] == "snapshot":
                assert hashlib.sha256(r.content).hexdigest() == f["sha256"]
                assert r.headers["etag"] == f'"sha256-{f["sha256"]}"'
            assert client.head(f["url"]).status_code == 200
        assert _assert_newest_resolves(client, out)["version"] == new["version"]
    # only the newest snapshot is listed and under snapshots/; one older generation is kept
    assert [p.name for p in (out / "snapshots").iterdir()] == [new["version"]]
    assert [p.name for p in (out / "retired" / "snapshots").iterdir()] == [old["version"]]


def test_after_the_grace_the_replaced_files_are_gone(engine, tmp_path, monkeypatch):
    _publish(engine, tmp_path)
    out = opendata.default_dir()  # the worker's
    opendata.build(engine)
    with api_client(engine) as client:
        old = _fetch_index(client)
        built = datetime.now(UTC)
        _at(built, monkeypatch)
        publish_csv(engine, tmp_path, "more.csv", [penalty_row(50)])
        new = opendata.build(engine)
        newest = {(f["kind"], f["format"]): f["url"] for f in _snapshots(new)}
        _at(built + opendata.RETIRED_GRACE - timedelta(seconds=1), monkeypatch)
        assert all(client.get(f["url"]).status_code == 200 for f in _snapshots(old))
        assert not opendata.needs_build(engine)
        _at(built + opendata.RETIRED_GRACE, monkeypatch)
        for f in _snapshots(old):
            r = client.get(f["url"])
            link = f'<{newest[f["kind"], f["format"]]}>; rel="latest-version"'
            assert r.status_code == 410 and r.headers["link"] == link
        # the worker's next look deletes them, without building anything new
        assert opendata.needs_build(engine)
        assert worker.job_open_data_if_needed(engine)["seq"] == new["seq"]
        assert opendata.load_index(out) == new and not opendata.needs_build(engine)
        assert not (out / "retired").exists()
        assert [p.name for p in (out / "snapshots").iterdir()] == [new["version"]]
        assert all(client.get(f["url"]).status_code == 410 for f in _snapshots(old))
        _assert_newest_resolves(client, out)


def test_a_kind_that_lost_records_is_not_kept(engine, tmp_path):
    """The replaced snapshot of a kind with a withdrawal since answered 410 before the build,
    and neither comes back nor stays on disk; the other kinds' files stay; a withdrawal during
    the grace takes that kind's kept files out too."""
    _publish(engine, tmp_path)
    out = tmp_path / "od"
    opendata.build(engine, out)
    with api_client(engine, opendata_dir=out) as client:
        old = _fetch_index(client)
        by_kind = {(f["kind"], f["format"]): f["url"] for f in _snapshots(old)}
        publish_csv(
            engine, tmp_path, "w.csv", [penalty_row(2, 操作="撤销")], header=PENALTY_WITH_OP
        )
        assert client.get(by_kind["penalty", "csv"]).status_code == 410  # before the build
        opendata.build(engine, out)
        assert client.get(by_kind["penalty", "csv"]).status_code == 410
        assert client.get(by_kind["penalty", "ndjson"]).status_code == 410
        assert not [m for m in GONE_MARKERS if m in _on_disk(out)]
        assert client.get(by_kind["credit_mark", "ndjson"]).status_code == 200
        for f in old["files"]:
            if f["type"] == "delta":  # rewritten in place: its withdrawn line is null now
                assert not [m for m in GONE_MARKERS if m in client.get(f["url"]).text]
        publish_csv(
            engine, tmp_path, "wc.csv", [credit_mark_row(1, 操作="撤销")], header=MARK_WITH_OP
        )
        assert client.get(by_kind["credit_mark", "ndjson"]).status_code == 410
        newer = opendata.build(engine, out)
        assert client.get(by_kind["credit_mark", "ndjson"]).status_code == 410
        retired = opendata.load_retired(out)
        assert retired["replaced_by"] == newer["version"] and retired["version"] != old["version"]
        assert {f["kind"] for f in retired["files"] if f["type"] == "snapshot"} == {
            "blacklist",
            "penalty",
            "return_pledge",
        }
        assert not (out / "retired" / "snapshots" / old["version"]).exists()
        _assert_newest_resolves(client, out)


def test_delta_days_dropped_from_the_index_stay_for_the_grace(engine, tmp_path, monkeypatch):
    publish_csv(engine, tmp_path, "p.csv", [penalty_row(i) for i in range(1, 4)])
    with engine.begin() as conn:  # that day is long past
        conn.execute(EVENTS.update().values(at=datetime(2026, 10, 1, 2, 0, tzinfo=UTC)))
    out = tmp_path / "od"
    opendata.build(engine, out, keep_days=5)
    with api_client(engine, opendata_dir=out) as client:
        old = _fetch_index(client)
        [day] = [f for f in old["files"] if f["type"] == "delta"]
        assert day["date"] == "2026-10-01"
        publish_csv(engine, tmp_path, "more.csv", [penalty_row(50)])
        built = datetime.now(UTC)
        _at(built, monkeypatch)
        new = opendata.build(engine, out, keep_days=5)
        assert day["url"] not in {f["url"] for f in new["files"]}
        r = client.get(day["url"])
        assert r.status_code == 200
        assert [json.loads(x)["seq"] for x in r.text.splitlines()] == [1, 2, 3]
        _assert_newest_resolves(client, out)
        _at(built + opendata.RETIRED_GRACE, monkeypatch)
        assert client.get(day["url"]).status_code == 404
        opendata.build(engine, out, keep_days=5)
        assert not (out / "retired").exists() and not (out / day["path"]).exists()
