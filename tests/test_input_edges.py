"""Input edges through the real publish path, on SQLite and PostgreSQL: an old ID number in a
code column, JSON that Python cannot read (huge numbers, deep nesting), NaN and Infinity, and
district names written as the data contract's own table writes them."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import select

from publishing.commit import ENTITIES, RECORDS
from publishing.export import iter_public
from publishing.publish import publish
from publishing.redact import mask_text
from tests.factories import blacklist_row, penalty_row, pledge_row, write_csv, write_ndjson
from tests.test_cli import cli

TODAY = date(2026, 11, 27)
OLD_ID = "370602800118123"  # area 370602, born 1980-01-18; fails the GS 15 check
REG_NO = "370602600123459"  # a 个体 注册号 that reads as born 1960-01-23, and passes GS 15
R_ID = "注册号疑似身份证号(第7—12位为出生日期且不符合注册号校验规则 GS 15)"
R_NOT_FINITE = "不是有效数值（NaN、Infinity 或超出范围的数字）"


def run(engine, paths, **kw):
    kw.setdefault("today", TODAY)
    paths = paths if isinstance(paths, list) else [paths]
    return publish(paths, engine=engine, show_progress=False, **kw)


def rejects(result) -> list[tuple]:
    return [(r.row, r.column, r.value, r.reason) for rep in result.reports for r in rep.rejected]


def entity_ids(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(ENTITIES.c.id)).scalars())


# -- an old resident ID number in a code column --------------------------------------------


@pytest.mark.parametrize("column", ["统一社会信用代码", "注册号"])
def test_an_old_id_number_in_a_code_column_is_rejected_not_published(engine, tmp_path, column):
    rows = [blacklist_row(n, 注册号="") for n in (1, 2, 3)]
    rows[1].update({"统一社会信用代码": "", column: OLD_ID})
    rows[2].update({"统一社会信用代码": "", column: REG_NO})  # a genuine one is kept
    path = write_csv(tmp_path / "b.csv", rows)

    # reported masked, like every reject's value: the report goes to logs and mail
    assert rejects(run(engine, path)) == [(3, column, mask_text(OLD_ID), R_ID)]
    assert mask_text(OLD_ID) != OLD_ID
    result = run(engine, path, accept_partial=True)
    assert result.published
    assert entity_ids(engine) == {rows[0]["统一社会信用代码"], REG_NO}
    published = json.dumps(list(iter_public("blacklist", engine)), ensure_ascii=False)
    assert OLD_ID not in published and REG_NO in published


# -- JSON that Python cannot read ----------------------------------------------------------

HUGE = "9" * 5000  # beyond sys.get_int_max_str_digits()
DEEP = "[" * 100_000 + "]" * 100_000  # beyond the parser's recursion limit


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (HUGE, "JSON 数字位数过多（超过4300位），无法读取"),
        (DEEP, "JSON 数组或对象嵌套层数过多，无法读取"),
    ],
    ids=["huge-number", "deep-nesting"],
)
def test_unreadable_json_is_a_file_reject_not_a_crash(engine, tmp_path, content, reason):
    good = write_ndjson(tmp_path / "good.ndjson", [pledge_row(1)])
    bad = tmp_path / "bad.json"
    record = json.dumps(pledge_row(2), ensure_ascii=False)
    bad.write_text(f'[{record}, {{"return_days": {content}}}]', encoding="utf-8")

    result = run(engine, [good, bad], accept_partial=True)
    assert result.unreadable and not result.published
    assert rejects(result) == [(0, None, None, reason)]
    with engine.connect() as conn:
        assert conn.execute(select(RECORDS.c.id)).first() is None


def test_unreadable_json_exits_2_from_the_cli(engine, database_url, tmp_path):
    bad = tmp_path / "deep.json"
    bad.write_text(DEEP, encoding="utf-8")
    done = cli(database_url, "publish", str(bad), "--accept-partial", tmp_path=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "嵌套层数过多" in done.stdout + done.stderr


def test_an_unreadable_ndjson_line_is_that_lines_reject(engine, tmp_path):
    lines = [
        json.dumps(pledge_row(1), ensure_ascii=False),
        f'{{"uscc": "x", "return_days": {HUGE}}}',
        DEEP,
        json.dumps(pledge_row(2), ensure_ascii=False),
    ]
    path = tmp_path / "p.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = run(engine, path, accept_partial=True)
    assert result.published and not result.unreadable
    found = {(row, reason) for row, _, _, reason in rejects(result)}
    assert found == {
        (2, "数字位数过多（超过4300位），无法读取"),
        (3, "数组或对象嵌套层数过多，无法读取"),
    }
    with engine.connect() as conn:
        assert len(conn.execute(select(RECORDS.c.id)).all()) == 2


# -- NaN, Infinity -------------------------------------------------------------------------


def pledge_line(n: int, old: str = "", new: str = "") -> str:
    """A pledge record as a JSON text, one of its values replaced by a bare JSON token."""
    return json.dumps(pledge_row(n), ensure_ascii=False).replace(old, new)


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_nan_and_infinity_are_rejected_not_published_as_text(engine, tmp_path, fmt):
    lines = [
        pledge_line(1),
        pledge_line(2, '"商场"', "NaN"),
        pledge_line(3, '"return_days": 7', '"return_days": Infinity'),
        pledge_line(4, '"商场"', "-Infinity"),
        pledge_line(5, '"商场"', "1e400"),  # read as Infinity
    ]
    path = tmp_path / f"p.{fmt}"
    text = f"[{', '.join(lines)}]" if fmt == "json" else "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8")

    result = run(engine, path, accept_partial=True)  # the batch keeps its rejects (jsonb)
    assert result.published
    assert rejects(result) == [
        (2, "category", "NaN", R_NOT_FINITE),
        (3, "return_days", "Infinity", R_NOT_FINITE),
        (4, "category", "-Infinity", R_NOT_FINITE),
        (5, "category", "Infinity", R_NOT_FINITE),
    ]
    assert [r["category"] for r in iter_public("return_pledge", engine)] == ["商场"]


def test_nan_in_a_list_rejects_the_column(engine, tmp_path):
    record = json.dumps({**penalty_row(1), "处罚种类": ["警告", "罚款"]}, ensure_ascii=False)
    path = tmp_path / "p.ndjson"
    path.write_text(record.replace('"罚款"]', "NaN]") + "\n", encoding="utf-8")
    assert rejects(run(engine, path)) == [(1, "处罚种类", '["警告", NaN]', R_NOT_FINITE)]


# -- districts as the contract's table writes them -----------------------------------------


def test_district_names_with_their_short_name_in_brackets(engine, tmp_path):
    written = {
        1: ("烟台高新技术产业开发区 (高新区)", "370671"),
        2: ("烟台经济技术开发区（开发区）", "370672"),
        3: ("烟台市 (市级)", "370600"),
        4: ("烟台市(芝罘区)", None),  # two districts: rejected
    }
    path = write_csv(tmp_path / "p.csv", [penalty_row(n, 所属区市=w) for n, (w, _) in written.items()])
    result = run(engine, path, accept_partial=True)
    assert rejects(result) == [(5, "所属区市", "烟台市(芝罘区)", "所属区市无法识别")]
    with engine.connect() as conn:
        got = dict(conn.execute(select(ENTITIES.c.name, ENTITIES.c.district)).all())
    assert got == {
        penalty_row(n)["当事人名称"]: code for n, (_, code) in written.items() if code is not None
    }

