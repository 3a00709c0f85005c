"""One company under two entity ids: published first under its 注册号 alone (entity id = the
注册号), later with its USCC too (id = the USCC, reg_no = the 注册号). The credit check answers
for both whichever code is asked, /entities/{注册号} redirects to the USCC's profile, which shows
the records of both; only while the records that link them are published. And the credit
check's `problem` for a doubtful 注册号. Through real HTTP (Litestar's test client), on SQLite
and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import event, inspect

from publishing import codes, creditcheck
from tests.api_helpers import api_client, publish_csv
from tests.factories import credit_mark_row, penalty_row, uscc

BOTH_USCC, BOTH_REG = uscc(601), "370602600123459"  # published together only
USCC, REG = uscc(602), "370687600987656"  # REG alone first, then with USCC
SERIOUS = "严重违法失信名单"
REG_DECISIONS = {"烟芝市监罚〔2026〕621号", "烟芝市监罚〔2026〕622号"}


def _mark(code: str, reg_no: str, **over: str) -> dict[str, str]:
    """A 严重违法失信名单 mark carrying both codes."""
    row = credit_mark_row(1, 统一社会信用代码=code, 注册号=reg_no, 标注类型=SERIOUS, 分类结果="")
    return {**row, "主体名称": "海阳市耀宸鑫海鲜馆", **over}


def _reg_penalty(n: int) -> dict[str, str]:
    """A penalty of REG published before the company had a USCC (the 注册号 column only)."""
    return penalty_row(n, 统一社会信用代码="", 注册号=REG, 当事人名称="海阳市耀宸鑫海鲜馆")


def _check(client, code: str) -> dict:
    r = client.get("/api/v1/credit-check", params={"uscc": code})
    assert r.status_code == 200, r.text
    return r.json()["results"][0]


def _redirect(client, path: str) -> str:
    r = client.get(path, follow_redirects=False)
    assert r.status_code == 302, (path, r.status_code, r.text[:300])  # the link can end
    return r.headers["location"]


def _split_company(engine, tmp_path) -> None:
    publish_csv(engine, tmp_path, "reg.csv", [_reg_penalty(621), _reg_penalty(622)])
    publish_csv(engine, tmp_path, "mark.csv", [_mark(USCC, REG)])


def test_a_reg_no_finds_the_entity_that_carries_it(engine, tmp_path):
    """The review's h_both: a mark whose row carries both codes is found by the 注册号 too."""
    publish_csv(engine, tmp_path, "both.csv", [_mark(BOTH_USCC, BOTH_REG)])
    with api_client(engine) as client:
        by_uscc, by_reg = _check(client, BOTH_USCC), _check(client, BOTH_REG)
        for res in (by_uscc, by_reg):
            assert res["known"] and res["listed"], res
            assert [m["scheme"] for m in res["lists"]] == [SERIOUS]
            assert res["entity"]["id"] == BOTH_USCC
            assert [m["id"] for m in res["matched"]] == [BOTH_USCC]
        assert by_reg["code_type"] == "reg_no" and by_reg["problem"] is None

        assert _redirect(client, f"/entities/{BOTH_REG}") == f"/entities/{BOTH_USCC}"
        assert _redirect(client, f"/api/v1/entities/{BOTH_REG}") == f"/api/v1/entities/{BOTH_USCC}"
        wide = "".join(chr(ord(c) + 0xFEE0) for c in BOTH_REG)  # one hop, not two
        assert _redirect(client, f"/entities/{wide}") == f"/entities/{BOTH_USCC}"
        profile = client.get(f"/api/v1/entities/{BOTH_USCC}").json()
        assert profile["badges"]["serious_dishonest"] and profile["linked_entities"] == []


def test_a_company_split_over_two_entities_is_answered_whole(engine, tmp_path):
    """The review's second case: penalties under the 注册号 alone, then a mark with both codes.
    Either code answers listed *and* 2 penalties; the USCC's profile holds all three records.
    Withdraw the mark and the link goes with it: the 注册号 answers for itself alone again."""
    _split_company(engine, tmp_path)
    with api_client(engine) as client:
        single = {code: _check(client, code) for code in (USCC, REG)}
        for res in single.values():
            assert res["known"] and res["listed"], res
            assert [m["scheme"] for m in res["lists"]] == [SERIOUS]
            assert res["penalties"]["count"] == 2
            assert {p["decision_no"] for p in res["penalties"]["records"]} == REG_DECISIONS
            assert res["entity"]["id"] == USCC
            assert [m["id"] for m in res["matched"]] == [USCC, REG]
        batch = client.post("/api/v1/credit-check", json={"uscc": [REG, USCC, uscc(699)]}).json()
        assert batch["results"][:2] == [single[REG], single[USCC]]
        assert not batch["results"][2]["known"] and batch["results"][2]["matched"] == []

        assert _redirect(client, f"/entities/{REG}") == f"/entities/{USCC}"
        profile = client.get(f"/api/v1/entities/{USCC}").json()
        assert [e["id"] for e in profile["linked_entities"]] == [REG]
        assert profile["record_count"] == 3 and profile["badges"]["serious_dishonest"]
        penalties = profile["records"]["penalty"]
        assert {p["decision_no"] for p in penalties} == REG_DECISIONS
        assert {p["entity_id"] for p in penalties} == {REG}
        page = client.get(f"/entities/{USCC}")
        assert page.status_code == 200
        assert all(no in page.text for no in REG_DECISIONS) and "行政处罚公示中 2 条" in page.text

        # As if never published: the mark withdrawn, nothing of USCC is public, nor the link.
        publish_csv(engine, tmp_path, "withdraw.csv", [{**_mark(USCC, REG), "操作": "撤销"}])
        alone = _check(client, REG)
        assert alone["known"] and not alone["listed"] and alone["penalties"]["count"] == 2
        assert alone["entity"]["id"] == REG and [m["id"] for m in alone["matched"]] == [REG]
        gone = _check(client, USCC)
        assert not gone["known"] and gone["matched"] == [] and gone["penalties"]["count"] == 0
        assert client.get(f"/entities/{REG}", follow_redirects=False).status_code == 200
        assert client.get(f"/api/v1/entities/{REG}").json()["linked_entities"] == []
        assert client.get(f"/entities/{USCC}", follow_redirects=False).status_code == 404


def test_a_batch_with_linked_codes_is_still_one_statement(engine, tmp_path):
    """Both directions of the link in a batch of 1,000: one lookup statement (with BEGIN and the
    two reads of the change seq), answers as for the codes one by one."""
    _split_company(engine, tmp_path)
    asked = [USCC, REG, *(uscc(n) for n in range(1000, 1998))]
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with engine.connect() as conn:
            result = creditcheck.check(conn, asked)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) <= 4, statements
    first, second = result["results"][:2]
    assert first["listed"] and second["listed"]
    assert first["penalties"] == second["penalties"] and first["penalties"]["count"] == 2
    assert sum(r["known"] for r in result["results"]) == 2


def test_reg_no_lookups_have_an_index(engine):
    """ix_entities_reg_no (migration 0012), partial: only entities with a 注册号 are in it."""
    found = {ix["name"]: ix for ix in inspect(engine).get_indexes("entities")}
    assert found["ix_entities_reg_no"]["column_names"] == ["reg_no"]
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            plan = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM entities WHERE reg_no IN (?, ?)",
                (REG, BOTH_REG),
            ).all()
        assert any("ix_entities_reg_no" in row[-1] for row in plan), plan


def test_a_doubtful_reg_no_has_a_problem_but_is_looked_up(engine, tmp_path):
    """15 digits are looked up as a 注册号 (publishing may hold one that fails its check digit),
    and `problem` says what is doubtful, as publishing judges it."""
    publish_csv(engine, tmp_path, "both.csv", [_mark(BOTH_USCC, BOTH_REG)])
    with api_client(engine) as client:
        for code, problem in (
            ("000000000000000", codes.R_REG_NO_CHECK),
            ("370602800118123", codes.R_REG_NO_ID),  # an old-style resident ID number
            ("370602600123458", codes.R_REG_NO_ID),  # BOTH_REG with another check digit
            ("110108000000017", codes.R_REG_NO_CHECK),
            (BOTH_REG, None),
            ("110108000000016", None),
        ):
            res = _check(client, code)
            assert (res["valid"], res["code_type"], res["problem"]) == (True, "reg_no", problem)
        assert _check(client, BOTH_REG)["listed"]
