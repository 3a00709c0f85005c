"""/api/v1/changes cursors name the event at their seq ("SEQ.MARK"), so a follower notices a
database restored from an older backup even when the head has since passed its seq again: a
bare seq cannot tell the reissued events from the ones it read. On SQLite and PostgreSQL,
with a real backup and restore of the test database."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import delete

from publishing import changes, clock, opendata
from publishing.commit import EVENTS
from tests.api_helpers import Backup, api_client, bulk_penalties, publish_csv, published, sync
from tests.factories import credit_mark_row, penalty_row
from tests.test_changes_api import PENALTY_WITH_OP

URL = "/api/v1/changes"


def _get(client, since, **params):
    return client.get(URL, params={"since": since, **params})


def _tokens(client, **params) -> dict[int, str]:
    """seq -> the cursor after that event, paging one event at a time."""
    out, since = {}, "0"
    while True:
        body = _get(client, since, limit=1, **params).json()
        for item in body["changes"]:
            out[item["seq"]] = body["next"]
        since = body["next"]
        if not body["has_more"]:
            return out


def _assert_resync(r, status: str, cursor: str, head: int) -> None:
    assert r.status_code == 409, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    seq = int(cursor.split(".")[0])
    assert (body["status"], body["since"], body["cursor"], body["head"]) == (
        status,
        seq,
        cursor,
        head,
    )
    assert body["resync_from"] == 0 and body["snapshot_index"] == "/open-data/index.json"
    assert "since=0" in body["detail"] and cursor in body["detail"]


def test_a_cursor_past_the_restore_point_is_refused_once_its_seq_is_issued_again(
    engine, database_url, tmp_path
):
    publish_csv(engine, tmp_path, "p.csv", [penalty_row(i) for i in (1, 2, 3)])
    backup = Backup(engine, database_url, tmp_path)
    publish_csv(engine, tmp_path, "more.csv", [penalty_row(50), penalty_row(51)])
    follower: dict = {}
    with api_client(engine) as client:
        cursor = sync(client, follower, 0, limit=2)
        tokens = _tokens(client)
        read = {e["seq"]: e["record_id"] for e in _get(client, 0).json()["changes"]}
    assert sorted(tokens) == [1, 2, 3, 4, 5] and cursor == tokens[5]
    backup.restore()
    with api_client(engine) as client:
        # right after the restore the follower is ahead of the log
        _assert_resync(_get(client, cursor), "cursor_ahead", cursor, 3)
        # a cursor before the restore point still names its event
        assert _get(client, tokens[3]).json() == {
            "changes": [],
            "next": tokens[3],
            "has_more": False,
        }
        # new publications take seqs 4, 5 and 6 again, for other records
        publish_csv(engine, tmp_path, "other.csv", [penalty_row(i) for i in (60, 61, 62)])
        now = {e["seq"]: e["record_id"] for e in _get(client, 0).json()["changes"]}
        assert max(now) == 6 and all(now[s] != read[s] for s in (4, 5))
        for stale in (tokens[4], cursor):
            for kind in (None, "penalty", "credit_mark"):
                params = {"kind": kind} if kind else {}
                _assert_resync(_get(client, stale, **params), "cursor_unknown", stale, 6)
        resumed = _get(client, tokens[3]).json()
        assert [e["seq"] for e in resumed["changes"]] == [4, 5, 6]
        # a bare seq cannot tell: an old client is answered as before and misses 4 and 5
        legacy = _get(client, 5).json()["changes"]
        assert [e["seq"] for e in legacy] == [6]
        assert follower != published(engine)  # what it would keep: records that are gone
        fresh: dict = {}
        sync(client, fresh, 0, limit=2)
        assert fresh == published(engine)


def test_a_cursor_whose_event_is_gone_below_the_head_is_unknown(engine, tmp_path):
    publish_csv(engine, tmp_path, "p.csv", [penalty_row(i) for i in (1, 2, 3)])
    with api_client(engine) as client:
        tokens = _tokens(client)
        with engine.begin() as conn:
            conn.execute(delete(EVENTS).where(EVENTS.c.seq == 2))
        _assert_resync(_get(client, tokens[2]), "cursor_unknown", tokens[2], 3)
        assert _get(client, tokens[1]).status_code == 200


def _history(engine, tmp_path) -> None:
    publish_csv(engine, tmp_path, "p1.csv", [penalty_row(i) for i in range(1, 6)])
    publish_csv(engine, tmp_path, "c1.csv", [credit_mark_row(1), credit_mark_row(2)])
    publish_csv(engine, tmp_path, "p2.csv", [penalty_row(1, **{"罚款金额(元)": "9000"})])
    publish_csv(engine, tmp_path, "p3.csv", [penalty_row(2, 操作="撤销")], header=PENALTY_WITH_OP)
    publish_csv(engine, tmp_path, "c2.csv", [credit_mark_row(3)])


def _walk(client, limit: int, follow_link: bool = False, **params) -> list[dict]:
    """Every page from the start, by `next` (or the Link header), checking each cursor."""
    pages, since = [], "0"
    while True:
        r = _get(client, since, limit=limit, **params)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(body)
        if body["changes"]:
            assert body["next"].startswith(f"{body['changes'][-1]['seq']}.")
        if not body["has_more"]:
            assert "link" not in r.headers
            return pages
        since = body["next"]
        if follow_link:
            link = r.headers["link"]
            assert link.startswith(f"<{URL}?since={since}&limit={limit}")
            since = link.split("since=", 1)[1].split("&", 1)[0]


def test_paging_by_cursor_gives_every_event_once_and_the_same_cursor_each_time(engine, tmp_path):
    _history(engine, tmp_path)
    with api_client(engine) as client:
        everything = _get(client, 0, limit=10_000).json()
        seqs = [e["seq"] for e in everything["changes"]]
        assert len(seqs) == 10 and seqs == sorted(set(seqs))
        tokens = _tokens(client)
        assert sorted(tokens) == seqs
        assert everything["next"] == tokens[seqs[-1]]
        for limit in (1, 2, 3, 4):
            pages = _walk(client, limit, follow_link=limit == 3)
            assert [e for p in pages for e in p["changes"]] == everything["changes"], limit
            for p in pages:
                if p["changes"]:  # the same event, the same cursor, whatever the page size
                    assert p["next"] == tokens[p["changes"][-1]["seq"]]
        # a repeated request and a caught-up follower keep the cursor as it is
        head = tokens[seqs[-1]]
        assert (
            _get(client, tokens[seqs[3]], limit=2).json()
            == _get(client, tokens[seqs[3]], limit=2).json()
        )
        assert _get(client, head).json() == {"changes": [], "next": head, "has_more": False}
        # one kind alone, by cursor, gets that kind's events once
        marks = [e for p in _walk(client, 1, kind="credit_mark") for e in p["changes"]]
        assert marks == [e for e in everything["changes"] if e["kind"] == "credit_mark"]
        # the open-data build names the same event the same way
        index = opendata.build(engine, tmp_path / "od")
        assert index["cursor"] == head == f"{index['seq']}.{index['seq_event']}"


def test_a_plain_seq_still_pages_as_before_and_is_answered_with_a_cursor(engine, tmp_path):
    with api_client(engine) as client:
        assert _get(client, 0).json() == {"changes": [], "next": "0", "has_more": False}
        r = _get(client, 1)
        assert r.status_code == 409 and r.json()["status"] == "cursor_ahead"
        assert "cursor" not in r.json()
        _history(engine, tmp_path)
        tokens = _tokens(client)
        seqs = sorted(tokens)
        for seq in (0, seqs[2], seqs[-1]):
            plain = _get(client, seq, limit=4).json()
            by_cursor = _get(client, tokens.get(seq, "0"), limit=4).json()
            assert plain == by_cursor, seq
            assert [e["seq"] for e in plain["changes"]] == [s for s in seqs if s > seq][:4]
        assert _get(client, seqs[-1]).json()["next"] == tokens[seqs[-1]]
        ahead = _get(client, seqs[-1] + 1).json()
        assert (ahead["status"], ahead["since"], ahead["head"]) == (
            "cursor_ahead",
            seqs[-1] + 1,
            seqs[-1],
        )


def test_malformed_cursors_are_bad_requests_and_documented(engine, tmp_path):
    publish_csv(engine, tmp_path, "p.csv", [penalty_row(1), penalty_row(2)])
    with api_client(engine) as client:
        good = _tokens(client)[1]
        seq, mark = good.split(".")
        for bad in (
            "x",
            "-1",
            f"{seq}.",
            f"{seq}.{mark[:-1]}",
            f"{seq}.{mark}0",
            f"{seq}.{mark.upper()}" if mark != mark.upper() else f"{seq}.{'g' * 16}",
            f"{seq}.{mark}.{mark}",
            f"0.{mark}",
            f"{2**62 + 1}.{mark}",
            str(2**62 + 1),
            f"{seq} ",
            "1" * 41,
        ):
            r = _get(client, bad)
            assert r.status_code == 400, bad
            assert r.json() == {"status_code": 400, "detail": "请求参数格式不正确：since"}, bad
        assert _get(client, good).status_code == 200
        doc = client.get("/schema/openapi.json").json()
    op = doc["paths"][URL]["get"]
    [param] = [p for p in op["parameters"] if p["name"] == "since"]
    assert param["schema"]["type"] == "string" and param["schema"]["pattern"]
    examples = op["responses"]["409"]["content"]["application/json"]["examples"].values()
    assert {e["value"]["status"] for e in examples} == {"cursor_ahead", "cursor_unknown"}
    assert "cursor_unknown" in op["description"]
    assert doc["components"]["schemas"]["ChangesPage"]["properties"]["next"]["type"] == "string"


# An event with microseconds, written in Beijing time: each backend keeps it in UTC.
AT = datetime(2026, 11, 28, 0, 5, 9, 123456, tzinfo=clock.BEIJING)


def test_the_cursor_is_made_from_the_event_alone(engine):
    """The same event data gives the same cursor on either backend, in any process, in any
    release: a client's saved cursor must not turn unknown because the portal moved."""
    bulk_penalties(engine, 3, at=AT)
    with api_client(engine) as client:
        tokens = _tokens(client)
    for i, seq in enumerate(sorted(tokens)):
        assert tokens[seq] == f"{seq}.{changes.event_mark(seq, AT, f'pn-{i:016x}', 'add', 1)}"
    in_utc = AT.astimezone(UTC)
    assert changes.event_mark(1, in_utc.replace(tzinfo=None), "pn-0000000000000000", "add", 1) == (
        changes.event_mark(1, AT, "pn-0000000000000000", "add", 1)
    )
    # pinned: this value is in followers' saved cursors (and in open data's seq_event)
    assert tokens[1] == "1.8b72535f1890d1ad"


def test_the_snapshot_index_gives_the_cursor_to_continue_from(engine, database_url, tmp_path):
    out = tmp_path / "od"
    publish_csv(engine, tmp_path, "p.csv", [penalty_row(i) for i in (1, 2)])
    backup = Backup(engine, database_url, tmp_path)
    publish_csv(engine, tmp_path, "more.csv", [penalty_row(3)])
    index = opendata.build(engine, out)
    with api_client(engine, opendata_dir=out) as client:
        served = client.get("/open-data/index.json").json()
        assert served["cursor"] == index["cursor"] == _get(client, 0).json()["next"]
        assert _get(client, served["cursor"]).json()["changes"] == []
    # an index written before cursors existed gets one without a rebuild
    path = out / opendata.INDEX_NAME
    old = json.loads(path.read_text(encoding="utf-8"))
    del old["cursor"]
    path.write_text(json.dumps(old), encoding="utf-8")
    again = opendata.build(engine, out)
    assert again == index and json.loads(path.read_text(encoding="utf-8")) == index
    backup.restore()
    publish_csv(engine, tmp_path, "other.csv", [penalty_row(70)])
    with api_client(engine) as client:
        _assert_resync(_get(client, index["cursor"]), "cursor_unknown", index["cursor"], 3)
