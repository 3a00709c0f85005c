"""Findings of the input-file fuzz review, through the readers, cleaning and the real publish
path (publish() and the `disclosure publish` command) on SQLite and PostgreSQL: reject values
masked before they are cut, codes that a number cell rounded, lone surrogates in JSON keys, a
CSV field too long across lines, over-long JSON values, and many ignored JSON keys."""

from __future__ import annotations

import json
import re
import tracemalloc
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select

from publishing.clean import R_CODE_NUMBER, Cleaner
from publishing.commit import RECORDS
from publishing.redact import mask_text
from publishing.rows import SourceRow
from publishing.sources import open_source
from publishing.sources.headers import (
    ERROR_KEY,
    IGNORED_LIMIT,
    IGNORED_MORE,
    R_CELL_TOO_LONG,
    RAW_KEY,
    RAW_LIMIT,
)
from tests.factories import pledge_row, resident_id, uscc, write_ndjson
from tests.test_cli import cli
from tests.test_input_edges import TODAY, entity_ids, rejects, run

MOBILE = "13912345678"
ID_NUMBER = resident_id("19800116", "123")  # 370602198001161232
CARD = "6222021234567890123"


def record_count(engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(RECORDS.c.id)).all())


# -- 1. a reject's value is masked, then cut ------------------------------------------------

CUT_HEADER = ("行政处罚决定书文号,当事人名称,统一社会信用代码,所属区市,违法行为类型,主要违法事实,"
              "处罚依据,处罚种类,处罚机关,处罚决定日期,联系电话")
CUT_HEAD = '烟芝市监罚〔2026〕1号,某店,92370602MA3LGMH74E,芝罘区,无证经营,"事实'  # never closed
CUT_TAIL = ",依据,罚款,烟台市芝罘区市场监督管理局,2026-10-01,"


def cut_row(number: str, before_cut: int) -> str:
    """A row whose unclosed quote makes it unreadable, the number in its never-read 联系电话
    column, before_cut of its digits before the report's cut at RAW_LIMIT characters."""
    pad = "。" * (RAW_LIMIT - before_cut - len(CUT_HEAD) - len(CUT_TAIL))
    return CUT_HEAD + pad + CUT_TAIL + number


def shown_digits(text: str) -> int:
    """Digits left unmasked in the last digit run of text (the number at the cut)."""
    run_ = re.search(r"[0-9*]+(?=…?$)", text)
    return sum(c.isdigit() for c in run_[0]) if run_ else 0


@pytest.mark.parametrize("number", [MOBILE, ID_NUMBER, CARD], ids=["mobile", "id", "card"])
def test_an_unreadable_rows_text_is_masked_before_it_is_cut(tmp_path, number):
    whole = shown_digits(mask_text(CUT_TAIL + number))  # 7, 10, 4
    for before_cut in range(1, len(number)):
        row = cut_row(number, before_cut)
        path = tmp_path / "cut.csv"
        path.write_text(f"{CUT_HEADER}\n{row}\n", encoding="utf-8")
        [source_row] = open_source(path).rows
        [reject] = Cleaner("penalty", TODAY, "cut.csv").clean(source_row)
        value = reject.value
        assert value == mask_text(row)[:RAW_LIMIT] + "…", before_cut  # masked whole, then cut
        assert shown_digits(value) <= whole, (before_cut, value[-30:])


def test_the_report_and_stderr_show_no_number_cut_short(engine, database_url, tmp_path):
    path = tmp_path / "cut.csv"
    path.write_text(f"{CUT_HEADER}\n{cut_row(MOBILE, 10)}\n", encoding="utf-8")
    report = tmp_path / "r.json"
    done = cli(database_url, "publish", str(path), "--accept-partial", "--report", str(report),
               tmp_path=tmp_path)
    assert done.returncode == 1, done.stderr  # its only row is rejected
    [rejected] = json.loads(report.read_text(encoding="utf-8"))["rejected"]
    assert rejected["value"].endswith("139****567…")
    for text in (rejected["value"], done.stdout, done.stderr):
        assert MOBILE[:7] not in text  # the review saw 1391234567


# -- 2. a code a number cell rounded --------------------------------------------------------

ROUNDED = 923706025634311936  # a valid USCC: what Excel left of another 18-digit code
REG_NO = "370602600123459"  # 15 digits: a number cell keeps them all
MARK_HEADER = ["统一社会信用代码", "注册号", "企业名称", "所属区市", "标注类型", "分类结果", "认定日期"]


def test_a_code_saved_as_a_number_too_long_to_keep_it_is_rejected(engine, tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(MARK_HEADER)
    sheet.append([9.23706025634312e17, None, "芝罘区甲店", "芝罘区", "信用风险分类", "B", "2026-09-30"])
    sheet.append([None, float(REG_NO), "芝罘区乙店", "芝罘区", "信用风险分类", "B", "2026-09-30"])
    sheet.append([None, 3.70602600123459e16, "芝罘区丙店", "芝罘区", "信用风险分类", "B", "2026-09-30"])
    path = tmp_path / "marks.xlsx"
    book.save(path)
    assert [row.values.get("uscc") for row in open_source(path).rows][0] == float(ROUNDED)

    result = run(engine, path, accept_partial=True)
    assert [(row, column, reason) for row, column, _, reason in rejects(result)] == [
        (2, "统一社会信用代码", R_CODE_NUMBER), (4, "注册号", R_CODE_NUMBER)]
    assert result.published
    assert entity_ids(engine) == {REG_NO}


def test_a_json_integer_code_beyond_a_doubles_precision_is_rejected(engine, tmp_path):
    path = write_ndjson(tmp_path / "p.ndjson", [pledge_row(1), pledge_row(2, uscc=ROUNDED)])
    result = run(engine, path, accept_partial=True)
    assert [(row, column, reason) for row, column, _, reason in rejects(result)] == [
        (2, "uscc", R_CODE_NUMBER)]
    assert str(ROUNDED) not in entity_ids(engine)


def test_a_decision_number_saved_as_a_long_number_is_rejected():
    row = SourceRow("p.xlsx", 2, {"decision_no": 1.2345678901234568e17})
    errors = Cleaner("penalty", TODAY, "p.xlsx").clean(row)
    assert ("decision_no", R_CODE_NUMBER) in [(r.column, r.reason) for r in errors]


# -- 3. a lone surrogate in a JSON key ------------------------------------------------------

def surrogate_file(tmp_path: Path) -> Path:
    good = json.dumps(pledge_row(1), ensure_ascii=False)
    bad = json.dumps(pledge_row(2), ensure_ascii=False)[:-1] + ', "备注\\ud800": 1}'
    path = tmp_path / "s.json"
    path.write_text(f"[{good}, {bad}]", encoding="utf-8")
    return path


@pytest.mark.parametrize("dry_run", [False, True], ids=["publish", "dry-run"])
def test_a_lone_surrogate_in_a_json_key_is_reported_not_a_traceback(engine, database_url,
                                                                     tmp_path, dry_run):
    report = tmp_path / "r.json"
    args = ["publish", str(surrogate_file(tmp_path)), "--accept-partial", "--report", str(report)]
    done = cli(database_url, *args, *(["--dry-run"] if dry_run else []), tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr  # published (--accept-partial): the valid row
    assert "Traceback" not in done.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["ignored_columns"] == ["备注\\ud800"]
    assert [r["row"] for r in data["rejected"]] == [2]
    assert "\\ud800" in data["rejected"][0]["value"]
    assert record_count(engine) == (0 if dry_run else 1)


# -- 4. a CSV field too long, across lines --------------------------------------------------

PENALTY_HEADER = ("行政处罚决定书文号,当事人名称,统一社会信用代码,所属区市,违法行为类型,主要违法事实,"
                  "处罚依据,处罚种类,处罚机关,处罚决定日期")
PENALTY_LINE = ("烟芝市监罚〔2026〕{n}号,某店{n},{uscc},芝罘区,{kind},事实,依据,罚款,"
                "烟台市芝罘区市场监督管理局,{day}")


def long_cell(size: int, newline: str = "\n") -> str:
    """A quoted field of about size characters over many lines, with what may confuse a
    reader that starts afresh inside it: commas, doubled quotes, a line that opens a quote."""
    line = "超" * 2990 + ',"x",y' + newline + '"a,' + newline
    text = line * (size // len(line) + 1) + "结尾"
    return '"' + text.replace('"', '""') + '"'


def long_file(path: Path, cell: str, newline: str = "\n", stray: bool = False) -> Path:
    first = PENALTY_LINE.format(n=1, uscc="92370602MA3LGMH74E", kind=cell, day="2026-10-01")
    if stray:  # an unquoted field holding a quote, before the long one: 12"寸
        first = first.replace("某店1", '某店12"寸')
    rows = [PENALTY_HEADER, first,
            PENALTY_LINE.format(n=2, uscc=uscc(2), kind="无证经营", day="2026-10-02"),
            PENALTY_LINE.format(n=3, uscc=uscc(3), kind="无证经营", day="2026-02-30")]
    path.write_text(newline.join(rows) + newline, encoding="utf-8", newline="")
    return path


@pytest.mark.parametrize(
    ("newline", "stray"), [("\n", False), ("\r\n", False), ("\n", True)],
    ids=["lf", "crlf", "stray-quote"])
def test_a_field_too_long_across_lines_is_one_reject_and_later_rows_keep_their_numbers(
        tmp_path, newline, stray):
    path = long_file(tmp_path / "long.csv", long_cell(400_000, newline), newline, stray)
    rows = list(open_source(path).rows)
    assert [row.row for row in rows] == [2, 3, 4]
    assert rows[0].values[ERROR_KEY] == f"CSV 格式错误：{R_CELL_TOO_LONG}"
    assert rows[0].values[RAW_KEY].startswith("烟芝市监罚〔2026〕1号")
    assert len(rows[0].values[RAW_KEY]) == RAW_LIMIT + 1
    assert rows[1].values["decision_no"] == "烟芝市监罚〔2026〕2号"
    assert rows[2].values["decided_on"] == "2026-02-30"


def test_a_field_too_long_whose_quote_never_closes_reaches_to_the_end(tmp_path):
    cell = long_cell(300_000)[:-3]  # without its closing quote
    path = long_file(tmp_path / "long.csv", cell)
    [row] = open_source(path).rows
    assert row.row == 2
    assert row.values[ERROR_KEY].startswith("CSV 格式错误：引号未闭合：从本行（文件第2行）起到文件末尾")


def test_a_field_too_long_across_lines_is_read_in_flat_memory(tmp_path):
    path = long_file(tmp_path / "long.csv", long_cell(16_000_000))
    tracemalloc.start()
    try:
        rows = [row.row for row in open_source(path).rows]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rows == [2, 3, 4]
    assert peak < 8_000_000  # the field is 16 million characters (48 MB of UTF-8)


def test_publishing_a_file_with_a_field_too_long_across_lines(engine, tmp_path):
    path = long_file(tmp_path / "long.csv", long_cell(400_000))
    result = run(engine, path, accept_partial=True)
    assert [(row, column, reason) for row, column, _, reason in rejects(result)] == [
        (2, None, f"CSV 格式错误：{R_CELL_TOO_LONG}"),
        (4, "处罚决定日期", "日期不存在(2026年2月30日)"),
    ]
    assert result.reports[0].rows == 3
    assert entity_ids(engine) == {uscc(2)}


# -- 5. JSON values held to the CSV field limit ---------------------------------------------

@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_a_json_value_longer_than_a_csv_field_is_rejected(engine, tmp_path, fmt):
    rows = [pledge_row(1, conditions="退" * 200_000 + MOBILE), pledge_row(2),
            pledge_row(3, exclusions=["食品", "药" * 140_000])]
    path = tmp_path / f"p.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    else:
        write_ndjson(path, rows)
    result = run(engine, path, accept_partial=True)
    found = rejects(result)
    assert [(row, column, reason) for row, column, _, reason in found] == [
        (1, "conditions", R_CELL_TOO_LONG), (3, "exclusions", R_CELL_TOO_LONG)]
    assert all(len(value) == RAW_LIMIT + 1 for _, _, value, _ in found)
    assert record_count(engine) == 1


# -- 6. ignored JSON keys: masked, listed up to a limit -------------------------------------

def test_ignored_json_keys_are_masked_cut_and_listed_up_to_a_limit(engine, tmp_path):
    rows = [pledge_row(1, **{f"联系人 {MOBILE}": "张三", "说明" * 1000: "x"})]
    rows += [pledge_row(n, **{f"备注{n}": "x"}) for n in range(2, IGNORED_LIMIT + 20)]
    path = tmp_path / "p.json"
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")

    result = run(engine, path)
    ignored = result.reports[0].ignored_columns
    assert ignored[0] == f"联系人 {mask_text(MOBILE)}"
    assert ignored[1] == "说明" * 50 + "…"
    assert ignored[2:IGNORED_LIMIT] == [f"备注{n}" for n in range(2, IGNORED_LIMIT)]
    assert ignored[IGNORED_LIMIT:] == [IGNORED_MORE]
    assert record_count(engine) == len(rows)


def test_a_new_key_in_every_ndjson_record_is_not_listed_without_end(tmp_path):
    path = tmp_path / "p.ndjson"
    write_ndjson(path, [pledge_row(n, **{f"备注{n}": "x"}) for n in range(1, 3000)])
    source = open_source(path)
    assert sum(1 for row in source.rows if ERROR_KEY not in row.values) == 2999
    assert len(source.ignored_columns) == IGNORED_LIMIT + 1

