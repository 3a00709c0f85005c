"""/api/v1/credit-check: one code (GET) or a batch (POST), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select

from publishing import creditcheck
from publishing.commit import EVENTS
from tests.api_helpers import api_client, publish_csv
from tests.factories import blacklist_row, credit_mark_row, penalty_row, uscc

PENALISED, BLACKLISTED, SERIOUS, ABNORMAL, GRADED, ENDED = (uscc(n) for n in (1, 2, 3, 4, 5, 6))
UNKNOWN = uscc(99)
BAD_CHECK = uscc(7)[:17] + ("0" if uscc(7)[17] != "0" else "1")


def _max_seq(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.max(EVENTS.c.seq))).scalar()


@pytest.fixture
def data(engine, tmp_path):
    publish_csv(
        engine,
        tmp_path,
        "p.csv",
        [
            penalty_row(1),
            penalty_row(
                11, 统一社会信用代码=PENALISED, 行政处罚决定书文号="烟芝市监罚〔2026〕911号"
            ),
            # 轻微: public for 3 months only, ended 2026-05-01 — no longer counts
            penalty_row(6, 处罚决定日期="2026-02-01", 失信程度="轻微", 领域="价格"),
        ],
    )
    publish_csv(engine, tmp_path, "b.csv", [blacklist_row(2)])
    publish_csv(
        engine,
        tmp_path,
        "c.csv",
        [
            credit_mark_row(3, 标注类型="严重违法失信名单", 分类结果="", 有效期至="2029-01-01"),
            credit_mark_row(
                4, 标注类型="经营异常名录", 分类结果="", 列入原因="通过登记的住所无法联系"
            ),
            credit_mark_row(5),  # 信用风险分类: a grade, not a list
        ],
        header=[*credit_mark_row(3), "有效期至", "列入原因"],
    )
    return engine


def _one(client, code: str) -> dict:
    r = client.get("/api/v1/credit-check", params={"uscc": code})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 1
    return body["results"][0] | {"as_of": body["as_of"]}


def test_single_checks(data):
    with api_client(data) as client:
        bl = _one(client, BLACKLISTED)
        assert bl["valid"] and bl["known"] and bl["listed"] and bl["code_type"] == "uscc"
        assert bl["as_of"] == _max_seq(data)
        assert bl["entity"]["id"] == BLACKLISTED and bl["entity"]["name"] == "烟台黑榜测试2超市"
        [entry] = bl["blacklist"]
        assert entry["issue_no"] == "2026年第9期" and entry["date"] == "2026-09-01"
        assert entry["url"] == f"/records/{entry['record_id']}" and entry["issue_id"]
        assert bl["lists"] == [] and bl["penalties"] == {"count": 0, "records": []}

        serious = _one(client, SERIOUS)
        assert serious["listed"] and [m["scheme"] for m in serious["lists"]] == ["严重违法失信名单"]
        assert serious["lists"][0]["valid_until"] == "2029-01-01"
        abnormal = _one(client, ABNORMAL)
        assert [m["scheme"] for m in abnormal["lists"]] == ["经营异常名录"]

        graded = _one(client, GRADED)
        assert graded["known"] and not graded["listed"] and graded["lists"] == []

        pen = _one(client, PENALISED)
        assert pen["known"] and not pen["listed"]
        assert pen["penalties"]["count"] == 2
        assert {p["decision_no"] for p in pen["penalties"]["records"]} == {
            "烟芝市监罚〔2026〕1号",
            "烟芝市监罚〔2026〕911号",
        }

        ended = _one(client, ENDED)  # its only penalty's publicity has ended
        # ... so nothing of it is published: the answer is that for a code never published.
        assert not ended["known"] and ended["entity"] is None and ended["penalties"]["count"] == 0

        unknown = _one(client, UNKNOWN)
        assert unknown["valid"] and not unknown["known"] and unknown["entity"] is None
        assert not unknown["listed"]

        bad = _one(client, BAD_CHECK)
        assert not bad["valid"] and not bad["known"] and "校验位" in bad["problem"]
        assert bad["code_type"] is None

        messy = BLACKLISTED.lower()[:6] + " - " + BLACKLISTED.lower()[6:]
        norm = _one(client, messy)
        assert norm["input"] == messy and norm["code"] == BLACKLISTED and norm["listed"]
        wide = _one(client, "".join(chr(ord(c) + 0xFEE0) for c in BLACKLISTED))
        assert wide["code"] == BLACKLISTED and wide["listed"]

        reg = _one(client, "370602600123456")
        assert reg["valid"] and reg["code_type"] == "reg_no" and not reg["known"]

        assert client.get("/api/v1/credit-check").status_code == 400


def test_batch_keeps_order_and_answers_each_code(data):
    codes = [UNKNOWN, BLACKLISTED, "not a code", SERIOUS, BLACKLISTED, BAD_CHECK, PENALISED]
    with api_client(data) as client:
        r = client.post("/api/v1/credit-check", json={"uscc": codes})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["count"] == len(codes) and body["as_of"] == _max_seq(data)
        assert [x["input"] for x in body["results"]] == codes
        assert [x["listed"] for x in body["results"]] == [
            False,
            True,
            False,
            True,
            True,
            False,
            False,
        ]
        assert [x["known"] for x in body["results"]] == [
            False,
            True,
            False,
            True,
            True,
            False,
            True,
        ]
        assert body["results"][1] == body["results"][4]
        assert r.headers["access-control-allow-origin"] == "*"
        # the batch answer for a code equals its single answer
        single = client.get("/api/v1/credit-check", params={"uscc": SERIOUS}).json()
        assert single["results"][0] == body["results"][3]


def test_batch_limit(data):
    with api_client(data) as client:
        ok = client.post("/api/v1/credit-check", json={"uscc": [UNKNOWN] * creditcheck.MAX_BATCH})
        assert ok.status_code == 200 and ok.json()["count"] == creditcheck.MAX_BATCH
        r = client.post(
            "/api/v1/credit-check", json={"uscc": [UNKNOWN] * (creditcheck.MAX_BATCH + 1)}
        )
        assert r.status_code == 413
        assert r.json()["detail"] == "一次最多查询 1000 个代码，收到 1001 个；请分批提交。"
        assert client.post("/api/v1/credit-check", json={"uscc": "x"}).status_code == 400
        assert client.post("/api/v1/credit-check", json={}).status_code == 400
        assert client.post("/api/v1/credit-check", json={"uscc": ["9" * 65]}).status_code == 400


def test_a_batch_is_a_constant_number_of_queries(data):
    codes = [uscc(n) for n in range(1, 1001)]
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(data, "before_cursor_execute", count)
    try:
        with data.connect() as conn:
            result = creditcheck.check(conn, codes)
    finally:
        event.remove(data, "before_cursor_execute", count)
    assert result["count"] == 1000 and sum(r["listed"] for r in result["results"]) == 3
    # (BEGIN), seq, one IN query over entities ⟕ records, one over the records of the entities
    # with nothing listed (known only while something of theirs is published), seq again
    assert len(statements) <= 5


def test_as_of_follows_publication(data, tmp_path):
    with api_client(data) as client:
        before = _one(client, UNKNOWN)
        publish_csv(data, tmp_path, "late.csv", [blacklist_row(99, issue="2026年第10期")])
        after = _one(client, UNKNOWN)
    assert after["as_of"] > before["as_of"] and after["listed"] and not before["listed"]


def test_a_waiting_check_does_not_stall_other_requests(pg_url):
    """The single check waits for the database in a worker thread, not on the event loop:
    while a lock holds it up, the same process still answers (PostgreSQL, where a table lock
    makes a reader wait; SQLite readers in WAL mode never wait)."""
    import threading
    import time

    from sqlalchemy import text

    from publishing.db import make_engine

    engine = make_engine(pg_url)
    holder = engine.connect()
    try:
        with api_client(engine) as client:
            client.get("/healthz/live")
            holder.execute(text("LOCK TABLE records IN ACCESS EXCLUSIVE MODE"))
            waiting = threading.Thread(
                target=lambda: client.get("/api/v1/credit-check", params={"uscc": UNKNOWN}))
            release = threading.Timer(3.0, holder.rollback)  # ends the wait whatever happens
            waiting.start()
            release.start()
            time.sleep(0.5)  # the check is now waiting for the lock
            t = time.perf_counter()
            assert client.get("/healthz/live").status_code == 200
            answered = time.perf_counter() - t
            release.join()
            waiting.join(10)
        assert answered < 1.0, answered  # on the event loop, it would wait for the release
    finally:
        holder.close()
        engine.dispose()
