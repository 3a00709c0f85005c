"""A stray character after a closing quote in a CSV file ("某店"x, or a full-width comma after
a multi-line cell) with a multi-line quoted field after it in the same row: the csv module
gives up on the rest of the line and starts afresh inside that field. The row is one reject at
its spreadsheet row and every later row keeps its number, in each encoding of the contract;
the rows read as the csv module's lax reading (Excel's) splits the file, on real files."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest

from publishing.sources import open_source
from publishing.sources.csv_reader import _cells, _RawLines
from publishing.sources.headers import ERROR_KEY, RAW_KEY
from publishing.sources.table import CellError
from tests.factories import uscc
from tests.test_input_edges import entity_ids, rejects, run
from tests.test_input_fuzz_findings import PENALTY_HEADER

ENCODINGS = ["utf-8", "utf-8-sig", "gbk", "gb18030"]
R_AFTER_QUOTE = (
    "CSV 格式错误：引号用法错误：引号括起的字段在右引号之后还有其他字符"
    '（字段内的引号应写作两个引号 ""）'
)
CRLF = "\r\n"  # as Excel and WPS write CSV


def row(n: int, name: str = "", facts: str = "事实", day: str = "2026-10-01") -> str:
    """A penalty row; name and facts are written as given (quotes and line breaks included)."""
    return (
        f"烟芝市监罚〔2026〕{n}号,{name or f'某店{n}'},{uscc(n)},芝罘区,无证经营,{facts},"
        f"依据,罚款,烟台市芝罘区市场监督管理局,{day}"
    )


def write(path: Path, lines: list[str], encoding: str, delimiter: str = ",") -> Path:
    text = CRLF.join(lines) + CRLF
    path.write_bytes(text.replace(",", delimiter).encode(encoding))
    return path


# The broken first data row of each case; its quoted field after the fault spans lines.
BROKEN = {
    "stray-then-multiline": row(1, '"某店1"x', '"事实第一行\r\n事实第二行"'),
    # the sample's own case: a full-width comma typed after a multi-line cell
    "fullwidth-comma-then-multiline": row(1, '"某店1第一行\r\n第二行"，x', '"事实\r\n续"'),
    # a cell ending in a line break: afresh, its closing quote opened a field that swallowed
    # the next rows (they were merged into one unclosed-quote reject)
    "cell-ending-in-a-line-break": row(1, '"某店1"x', '"事实\r\n"'),
    # commas and doubled quotes on the lines the csv module started afresh on
    "commas-and-quotes-across-lines": row(1, '"某店1"x', '"事实\r\n""引""号,逗号\r\n"'),
    # a second fault on a later line of the same row
    "second-stray-on-a-later-line": row(1, '"某店1"x', '"事实\r\n续"y,"又\r\n一段"'),
}


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("case", list(BROKEN))
def test_a_stray_character_before_a_multi_line_field_is_one_reject_at_its_row(
    tmp_path, case, encoding
):
    broken = BROKEN[case]
    path = write(
        tmp_path / "p.csv", [PENALTY_HEADER, broken, row(2), row(3, day="2026-02-30")], encoding
    )
    rows = list(open_source(path).rows)
    assert [r.row for r in rows] == [2, 3, 4]
    assert rows[0].values[ERROR_KEY] == R_AFTER_QUOTE
    assert rows[0].values[RAW_KEY] == broken  # the whole row, none of it read as another
    assert rows[1].values["decision_no"] == "烟芝市监罚〔2026〕2号"
    assert rows[2].values["decision_no"] == "烟芝市监罚〔2026〕3号"
    assert rows[2].values["decided_on"] == "2026-02-30"


def test_a_tab_separated_unicode_text_export_keeps_its_numbers_too(tmp_path):
    """Excel's "Unicode text" (UTF-16, tab-separated), beyond the contract but read."""
    broken = BROKEN["stray-then-multiline"]
    path = write(tmp_path / "p.txt", [PENALTY_HEADER, broken, row(2)], "utf-16", "\t")
    rows = list(open_source(path).rows)
    assert [r.row for r in rows] == [2, 3]
    assert rows[0].values[ERROR_KEY] == R_AFTER_QUOTE
    assert rows[1].values["decision_no"] == "烟芝市监罚〔2026〕2号"


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_quote_opened_after_a_stray_character_that_never_closes_reaches_to_the_end(
    tmp_path, encoding
):
    """A spreadsheet reads every later line into that field: one reject says so, never later
    rows read as if the quote had closed."""
    path = write(
        tmp_path / "p.csv",
        [PENALTY_HEADER, row(1), row(2, '"某店2"x', '"事实'), row(3), row(4)],
        encoding,
    )
    rows = list(open_source(path).rows)
    assert [r.row for r in rows] == [2, 3]
    assert rows[0].values["decision_no"] == "烟芝市监罚〔2026〕1号"
    assert rows[1].values[ERROR_KEY] == (
        f"{R_AFTER_QUOTE}；其后又有引号未闭合：从本行（文件第3行）起到文件末尾（第5行）"
        "都被读成了同一个字段，这些行都无法读取；请检查本行的引号"
    )
    assert "烟芝市监罚〔2026〕4号" in rows[1].values[RAW_KEY]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_broken_title_row_above_the_header_does_not_shift_the_data_rows(tmp_path, encoding):
    title = '"2026年第3期"x,"行政处罚\r\n公示"'  # one spreadsheet row over two lines
    path = write(tmp_path / "p.csv", [title, PENALTY_HEADER, row(1), row(2)], encoding)
    rows = list(open_source(path).rows)
    assert [(r.row, r.values["decision_no"]) for r in rows] == [
        (3, "烟芝市监罚〔2026〕1号"),
        (4, "烟芝市监罚〔2026〕2号"),
    ]


def test_publishing_a_file_with_a_stray_character_before_a_multi_line_field(engine, tmp_path):
    path = write(
        tmp_path / "p.csv",
        [
            PENALTY_HEADER,
            BROKEN["cell-ending-in-a-line-break"],
            row(2),
            row(3, day="2026-02-30"),
            row(4),
        ],
        "gb18030",
    )
    result = run(engine, path, accept_partial=True)
    assert [(r, column, reason) for r, column, _, reason in rejects(result)] == [
        (2, None, R_AFTER_QUOTE),
        (4, "处罚决定日期", "日期不存在(2026年2月30日)"),
    ]
    assert result.reports[0].rows == 4
    assert entity_ids(engine) == {uscc(2), uscc(4)}


# -- against the csv module's lax reading -----------------------------------------------------

PIECES = ["a", "甲", ",", '"', '"', '""', "\n", "\r\n", "\r", "x", "，", " "]


def records(text: str) -> list[list[str]]:
    """The rows as the csv module reads them laxly (a stray character glued on, as Excel)."""
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_rows_split_as_the_lax_csv_module_splits_them(tmp_path, encoding):
    """Random quotes, commas and line breaks: as many rows as the lax reading has, each sound
    one read alike, so each row has the number a spreadsheet shows."""
    rng = random.Random(20261001)
    path = tmp_path / "f.csv"
    decoding = "gb18030" if encoding == "gb18030" else "utf-8-sig"
    for _ in range(800):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 40)))
        path.write_bytes(text.encode(encoding))
        with path.open(encoding=decoding, newline="") as stream, _RawLines(path, decoding) as raw:
            ours = list(_cells(stream, ",", raw))
        expected = records(text)
        assert len(ours) == len(expected), text
        for cells, lax in zip(ours, expected, strict=True):
            assert isinstance(cells, CellError) or list(cells) == lax, text
