"""Open-data files never outlive what the pages show: a correction on an upheld objection, a
record whose publicity period has ended (before the nightly expire run), and files built from a
change log that a database restored from a backup has since issued again; downloads revalidate
with any If-None-Match a cache sends. On SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import gzip
import json
from datetime import UTC, date, datetime

from litestar.testing import TestClient

from portal.app import create_app
from publishing import clock, opendata, read, users
from tests.api_helpers import GENEROUS, Backup, publish_csv, published
from tests.factories import blacklist_row, penalty_row
from tests.requests_support import PDF, fields, files, publish_cases

PENALTY_WITH_OP = [*penalty_row(1), "操作"]
PASSWORD = "correct horse battery staple"


@contextlib.contextmanager
def _client(engine, out):
    app = create_app(engine)
    app.state.rate_limits = GENEROUS
    app.state.opendata_dir = str(out)
    with TestClient(app, base_url="https://testserver.local") as client:
        yield client


def _changes(client) -> dict[int, dict]:
    r = client.get("/api/v1/changes", params={"since": 0, "limit": 10_000})
    assert r.status_code == 200, r.text
    return {item["seq"]: item for item in r.json()["changes"]}


def _lines(text: str) -> list[dict]:
    return [json.loads(x) for x in text.splitlines()]


def _snapshot_ids(out, index, kind: str) -> set[str]:
    f = opendata.snapshot_files(index)[(kind, "ndjson")]
    return {json.loads(x)["id"] for x in gzip.decompress((out / f["path"]).read_bytes()).splitlines()}


def _assert_current(client, engine, out) -> dict:
    """What a build leaves: snapshots of exactly the visible records, delta lines equal to the
    /api/v1/changes items."""
    index = json.loads((out / "index.json").read_text())
    public = {i: rec for i, rec in published(engine).items() if read.is_visible(rec)}
    changes = _changes(client)
    for f in index["files"]:
        r = client.get(f["url"])
        assert r.status_code == 200, (f["url"], r.text)
        if f["type"] == "snapshot" and f["format"] == "ndjson":
            ids = {json.loads(x)["id"] for x in gzip.decompress(r.content).splitlines()}
            assert ids == {i for i, rec in public.items() if rec["kind"] == f["kind"]}
        elif f["type"] == "delta":
            for item in _lines(r.text):
                assert item == changes[item["seq"]]
    return index


# -- a correction on an upheld objection ---------------------------------------------------


def _correct_fine(client, engine, cases, fine: str) -> None:
    filed = client.post(
        "/api/v1/requests",
        data={
            **fields(type="objection", uscc=cases.other_uscc, record_ids=[cases.other]),
            "reason": "罚款金额有误，见处罚决定书第2页。",
            "commitment": None,
        },
        files=files(("proof.pdf", PDF, "application/pdf")),
    )
    assert filed.status_code == 201, filed.text
    users.add_user(engine, "wang", "approver", PASSWORD)
    done = client.post(
        f"/api/v1/review/requests/{filed.json()['tracking_no']}/decision",
        json={
            "decision": "approve",
            "outcome": "correct",
            "reason": "异议成立，更正罚款金额。",
            "corrections": {"fine_yuan": fine},
        },
        headers={"Authorization": f"Bearer {users.new_token(engine, 'wang')}"},
    )
    assert done.status_code == 200, done.text


def test_a_correction_leaves_the_files_like_a_withdrawal(engine, tmp_path):
    cases = publish_cases(engine, tmp_path)
    out = tmp_path / "od"
    index = opendata.build(engine, out)
    snap = opendata.snapshot_files(index)[("penalty", "ndjson")]
    with _client(engine, out) as client:
        before = client.get(f"/api/v1/records/{cases.other}").json()["record"]["fine_yuan"]
        assert before != "800.00"
        _correct_fine(client, engine, cases, "800")
        assert client.get(f"/api/v1/records/{cases.other}").json()["record"]["fine_yuan"] == "800.00"
        assert opendata.needs_build(engine, out)  # the worker builds at once
        gone = client.get(snap["url"])
        assert gone.status_code == 410
        assert gone.headers["link"] == '</open-data/penalty.ndjson>; rel="latest-version"'
        listed = client.get("/api/v1/open-data").json()
        [pen] = [d for d in listed["datasets"] if d["kind"] == "penalty"]
        assert [d["url"] for d in pen["downloads"] if d["encoding"]] == []  # no 410 offered
        live = client.get("/open-data/penalty.ndjson")
        assert "x-snapshot-version" not in live.headers
        [rec] = [r for r in _lines(live.text) if r["id"] == cases.other]
        assert rec["fine_yuan"] == "800.00"
        # the delta lines of the record are the /api/v1/changes items: the corrected content
        changes = _changes(client)
        [delta] = [f for f in index["files"] if f["type"] == "delta"]
        served = client.get(delta["url"])
        assert served.status_code == 200 and served.headers["cache-control"] == "no-store"
        mine = [x for x in _lines(served.text) if x["record_id"] == cases.other]
        assert mine and all(x == changes[x["seq"]] for x in mine)
        assert {x["record"]["fine_yuan"] for x in mine} == {"800.00"}
        # the next build takes the old content out of the files
        rebuilt = opendata.build(engine, out)
        assert not opendata.needs_build(engine, out)
        _assert_current(client, engine, out)
        snap = opendata.snapshot_files(rebuilt)[("penalty", "ndjson")]
        rows = _lines(gzip.decompress((out / snap["path"]).read_bytes()).decode())
        assert [r["fine_yuan"] for r in rows if r["id"] == cases.other] == ["800.00"]
        text = (out / rebuilt["files"][-1]["path"]).read_text(encoding="utf-8")
        mine = [x for x in _lines(text) if x["record_id"] == cases.other]
        assert {x["record"]["fine_yuan"] for x in mine} == {"800.00"}


# -- publicity that has ended before the expire run ----------------------------------------


def _on(monkeypatch, day: date) -> None:
    monkeypatch.setattr(clock, "today", lambda: day)
    monkeypatch.setattr(clock, "now", lambda: datetime(day.year, day.month, day.day, 2, tzinfo=UTC))


def test_a_record_whose_publicity_ended_leaves_changes_and_files(engine, tmp_path, monkeypatch):
    _on(monkeypatch, date(2026, 11, 20))
    publish_csv(
        engine,
        tmp_path,
        "b.csv",
        [blacklist_row(1, 公示截止日期="2026-11-25"), blacklist_row(2)],
        today=date(2026, 11, 20),
    )
    out = tmp_path / "od"
    index = opendata.build(engine, out)
    [ending] = [i for i, r in published(engine).items() if r["publicity_until"] == "2026-11-25"]
    snap = opendata.snapshot_files(index)[("blacklist", "ndjson")]
    assert snap["publicity_ends"] == "2026-11-25" and ending in _snapshot_ids(out, index, "blacklist")
    with _client(engine, out) as client:
        _on(monkeypatch, date(2026, 11, 25))  # its last day: still shown
        assert not opendata.needs_build(engine, out)
        assert client.get(snap["url"]).status_code == 200
        _on(monkeypatch, date(2026, 11, 28))  # ended; the expire run has not run
        assert client.get(f"/api/v1/records/{ending}").status_code == 410
        [add] = [x for x in _changes(client).values() if x["record_id"] == ending]
        assert add["record"] is None
        assert opendata.needs_build(engine, out)
        live = client.get("/open-data/blacklist.ndjson")
        assert live.status_code == 200 and "x-snapshot-version" not in live.headers
        assert ending not in {r["id"] for r in _lines(live.text)}
        assert ending not in client.get("/open-data/blacklist.csv").text
        assert client.get(snap["url"]).status_code == 410
        [delta] = [f for f in index["files"] if f["type"] == "delta"]
        served = _lines(client.get(delta["url"]).text)
        assert [x["record"] for x in served if x["record_id"] == ending] == [None]
        # the build notices although the change log has not moved
        rebuilt = opendata.build(engine, out)
        assert rebuilt["seq"] == index["seq"] and rebuilt["version"] == f"{index['seq']}-{index['build'] + 1}"
        assert not opendata.needs_build(engine, out)
        assert ending not in _snapshot_ids(out, rebuilt, "blacklist")
        text = (out / rebuilt["files"][-1]["path"]).read_text(encoding="utf-8")
        assert [x["record"] for x in _lines(text) if x["record_id"] == ending] == [None]
        assert client.get(snap["url"]).status_code == 410  # the replaced version
        _assert_current(client, engine, out)


# -- a database restored from a backup -----------------------------------------------------


def test_files_of_a_replaced_change_log_are_not_served(engine, database_url, tmp_path):
    publish_csv(engine, tmp_path, "p.csv", [penalty_row(i) for i in range(1, 4)])
    backup = Backup(engine, database_url, tmp_path)
    publish_csv(engine, tmp_path, "more.csv", [penalty_row(50)])
    out = tmp_path / "od"
    old = opendata.build(engine, out)
    old_snap = opendata.snapshot_files(old)[("penalty", "ndjson")]
    [old_delta] = [f for f in old["files"] if f["type"] == "delta"]
    backup.restore()
    with _client(engine, out) as client:
        # a follower at the old head is told to start again, not left waiting
        ahead = client.get("/api/v1/changes", params={"since": old["seq"]})
        assert ahead.status_code == 409 and ahead.json()["head"] == old["seq"] - 1
        [gone] = [r for r in published(engine).values() if r["decision_no"].endswith("〕2号")]
        publish_csv(engine, tmp_path, "w.csv", [penalty_row(2, 操作="撤销")],
                    header=PENALTY_WITH_OP)
        assert _changes(client)[old["seq"]]["record_id"] == gone["id"]  # the seq issued again
        assert opendata.needs_build(engine, out)
        live = client.get("/open-data/penalty.ndjson")
        assert "x-snapshot-version" not in live.headers
        ids = {r["id"] for r in _lines(live.text)}
        assert gone["id"] not in ids and ids == set(published(engine))
        assert gone["id"] not in client.get("/open-data/penalty.csv").text
        assert client.get(old_snap["url"]).status_code == 410
        assert client.get(old_delta["url"]).status_code == 404
        assert client.get("/open-data/index.json").status_code == 404
        assert client.get("/api/v1/open-data").json()["snapshot"] is None
        # the build notices although the seq is the one it was built at, and starts over
        new = opendata.build(engine, out)
        assert new["seq"] == old["seq"] and new["seq_event"] != old["seq_event"]
        assert new["version"] != old["version"] and not opendata.needs_build(engine, out)
        assert sum(f["events"] for f in new["files"] if f["type"] == "delta") == new["seq"]
        assert gone["id"] not in _snapshot_ids(out, new, "penalty")
        assert client.get(old_snap["url"]).status_code == 410
        _assert_current(client, engine, out)


# -- revalidation ----------------------------------------------------------------------------


def test_downloads_revalidate_with_weak_listed_or_any_tags(engine, tmp_path):
    publish_csv(engine, tmp_path, "p.csv", [penalty_row(i) for i in range(1, 4)])
    out = tmp_path / "od"
    opendata.build(engine, out)
    with _client(engine, out) as client:
        etag = client.get("/open-data/penalty.csv").headers["etag"]
        for sent in (etag, f"W/{etag}", f'"other", W/{etag}', "*"):
            again = client.get("/open-data/penalty.csv", headers={"If-None-Match": sent})
            assert again.status_code == 304, sent
        assert client.get(
            "/open-data/penalty.csv", headers={"If-None-Match": '"other"'}
        ).status_code == 200
