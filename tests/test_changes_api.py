"""/api/v1/changes: a copy built only from the change log equals what is published, after
publishes, changes, op withdrawals, snapshot withdrawals, supersession, re-publication and
expiry — whether it follows every step, starts late, or reads in pages of any size. The same
for a mirror of the open-data snapshot and daily delta files."""

from __future__ import annotations

import gzip
import json
from datetime import date

from publishing import opendata
from publishing.expire import expire
from tests.api_helpers import api_client, publish_csv, publish_ndjson, published, sync
from tests.factories import blacklist_row, credit_mark_row, penalty_row, pledge_row

PENALTY_WITH_OP = [*penalty_row(1), "操作"]


def _penalties(*ns: int, over: dict[int, dict] | None = None) -> list[dict]:
    over = over or {}
    rows = []
    for n in ns:
        extra = {}
        if n in (5, 6):
            extra["失信程度"] = "严重"  # 36 months: survives the expiry below
        if n in (7, 8):
            extra["处罚决定日期"] = "2026-09-01"
        rows.append(penalty_row(n, **{**extra, **over.get(n, {})}))
    return rows


def _steps(engine, tmp_path):
    """The sequence of public changes; yields after each step."""
    publish_csv(engine, tmp_path, "p1.csv", _penalties(*range(1, 9)))
    publish_csv(
        engine,
        tmp_path,
        "c1.csv",
        [
            credit_mark_row(1, 标注日期="2025-01-10", 分类结果="C"),
            credit_mark_row(
                2, 标注类型="严重违法失信名单", 分类结果="", 列入原因="拒不履行行政处罚决定"
            ),
        ],
    )
    publish_csv(engine, tmp_path, "b1.csv", [blacklist_row(i) for i in range(1, 4)])
    publish_ndjson(engine, tmp_path, "r1.ndjson", [pledge_row(1), pledge_row(2)])
    yield "published"
    publish_csv(engine, tmp_path, "p2.csv", _penalties(1, over={1: {"罚款金额(元)": "8000"}}))
    yield "changed"
    publish_csv(engine, tmp_path, "p3.csv", [penalty_row(2, 操作="撤销")], header=PENALTY_WITH_OP)
    yield "op withdrawal"
    publish_csv(
        engine,
        tmp_path,
        "p4.csv",
        _penalties(1, 3, 5, 6, 7, 8, over={1: {"罚款金额(元)": "8000"}}),
        mode="snapshot",
    )
    yield "snapshot withdrawal"
    publish_csv(
        engine, tmp_path, "c2.csv", [credit_mark_row(1, 分类结果="A", 标注日期="2026-03-01")]
    )
    yield "superseded"
    publish_csv(engine, tmp_path, "p5.csv", _penalties(4))
    yield "published again"
    publish_ndjson(engine, tmp_path, "r2.ndjson", [pledge_row(2, status="撤销")])
    yield "pledge withdrawn"
    counts = expire(engine, today=date(2027, 7, 1))
    assert counts["expired"] >= 3
    yield "expired"


def test_a_copy_built_from_the_change_log_equals_the_published_records(engine, tmp_path):
    follower, late, paged = {}, {}, {}
    cursor = late_cursor = 0
    with api_client(engine) as client:
        for i, step in enumerate(_steps(engine, tmp_path)):
            cursor = sync(client, follower, cursor, limit=4)
            assert follower == published(engine), step
            if i == 2:
                late_cursor = sync(client, late, 0, limit=1000)
        sync(client, late, late_cursor, limit=3)
        sync(client, paged, 0, limit=1)
        final = published(engine)
        assert late == final and paged == final
        assert {r["kind"] for r in final.values()} == {
            "penalty",
            "credit_mark",
            "blacklist",
            "return_pledge",
        }
        # one kind alone replicates that kind alone
        marks: dict = {}
        sync(client, marks, 0, limit=2, kind="credit_mark")
        assert marks == {k: v for k, v in final.items() if v["kind"] == "credit_mark"}
        # the log holds every kind of event this sequence produced
        ops = {
            e["op"]
            for e in client.get("/api/v1/changes", params={"limit": 10000}).json()["changes"]
        }
        assert ops == {"add", "change", "withdraw", "expire"}


def test_an_add_whose_record_left_publication_since_carries_no_record(engine, tmp_path):
    publish_csv(engine, tmp_path, "a.csv", _penalties(1, 2))
    publish_csv(engine, tmp_path, "b.csv", [penalty_row(2, 操作="撤销")], header=PENALTY_WITH_OP)
    with api_client(engine) as client:
        events = client.get("/api/v1/changes").json()["changes"]
    by_op = {
        (e["op"], e["record"] is not None)
        for e in events
        if e["record_id"] == events[1]["record_id"]
    }
    assert by_op == {("add", False), ("withdraw", False)}
    first = next(e for e in events if e["op"] == "add" and e["record"])
    assert first["record"]["id"] == first["record_id"] and first["record"]["status"] == "active"
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


def test_paging_cursor_filters_and_errors(engine, tmp_path):
    publish_csv(engine, tmp_path, "a.csv", _penalties(1, 2, 3))
    publish_csv(engine, tmp_path, "c.csv", [credit_mark_row(9)])
    with api_client(engine) as client:
        r = client.get("/api/v1/changes", params={"limit": 2})
        body = r.json()
        assert r.status_code == 200 and len(body["changes"]) == 2 and body["has_more"]
        assert body["next"].startswith(f"{body['changes'][-1]['seq']}.")
        assert r.headers["link"] == f'</api/v1/changes?since={body["next"]}&limit=2>; rel="next"'
        rest = client.get("/api/v1/changes", params={"since": body["next"]}).json()
        assert len(rest["changes"]) == 2 and not rest["has_more"]
        assert "link" not in client.get("/api/v1/changes", params={"since": body["next"]}).headers
        end = rest["next"]
        empty = client.get("/api/v1/changes", params={"since": end}).json()
        assert empty == {"changes": [], "next": end, "has_more": False}
        only = client.get("/api/v1/changes", params={"kind": "credit_mark"}).json()["changes"]
        assert [e["kind"] for e in only] == ["credit_mark"]
        for bad in (
            {"since": -1},
            {"limit": 0},
            {"limit": 10_001},
            {"kind": "nope"},
            {"since": "x"},
            {"since": "3.zz"},
            {"since": f"{2**62 + 1}"},
        ):
            r = client.get("/api/v1/changes", params=bad)
            assert r.status_code == 400, bad
            assert r.json()["status_code"] == 400


def test_a_mirror_of_snapshot_and_deltas_equals_the_published_records(engine, tmp_path):
    out = tmp_path / "opendata"
    steps = _steps(engine, tmp_path)
    for _ in range(3):
        next(steps)
    index = opendata.build(engine, out)
    mirror = _load_snapshot(out, index)
    assert mirror == published(engine)
    seen = index["seq"]
    for _ in steps:
        pass
    newer = opendata.build(engine, out)
    assert newer["seq"] > index["seq"] and newer["version"] != index["version"]
    assert not (out / "snapshots" / index["version"]).exists()  # only the newest is kept
    for f in newer["files"]:
        if f["type"] == "delta" and f["to_seq"] > seen:
            for line in (out / f["path"]).read_text(encoding="utf-8").splitlines():
                ev = json.loads(line)
                if ev["seq"] > seen:
                    _apply_one(mirror, ev)
    assert mirror == published(engine)
    assert _load_snapshot(out, newer) == published(engine)


def _apply_one(mirror: dict, ev: dict) -> None:
    if ev["record"] is not None:
        mirror[ev["record_id"]] = ev["record"]
    else:
        mirror.pop(ev["record_id"], None)


def _load_snapshot(out, index) -> dict:
    mirror = {}
    for f in index["files"]:
        if f["type"] == "snapshot" and f["format"] == "ndjson":
            with gzip.open(out / f["path"], "rt", encoding="utf-8") as fh:
                for line in fh:
                    rec = json.loads(line)
                    mirror[rec["id"]] = rec
    return mirror


def test_a_cursor_beyond_the_log_is_told_to_resync(engine, tmp_path):
    """A database restored from an older backup: a follower's cursor is past the newest seq.
    An empty page would leave it waiting for seqs that will be issued again to other events."""
    publish_csv(engine, tmp_path, "a.csv", _penalties(1, 2))
    with api_client(engine) as client:
        head = client.get("/api/v1/changes").json()["changes"][-1]["seq"]
        assert client.get("/api/v1/changes", params={"since": head}).status_code == 200
        for since in (head + 1, head + 500):
            for kind in (None, "credit_mark"):
                params = {"since": since, **({"kind": kind} if kind else {})}
                r = client.get("/api/v1/changes", params=params)
                assert r.status_code == 409, params
                assert r.headers["cache-control"] == "no-store"
                body = r.json()
                assert (body["status"], body["since"], body["head"], body["resync_from"]) == (
                    "cursor_ahead",
                    since,
                    head,
                    0,
                )
                assert "since=0" in body["detail"]
        doc = client.get("/schema/openapi.json").json()["paths"]["/api/v1/changes"]["get"]
        assert "409" in doc["responses"] and "409" in doc["description"]
