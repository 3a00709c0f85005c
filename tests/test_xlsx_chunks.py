"""A large XLSX sheet read in chunks (publishing/sources/xlsx_chunks.py): the same rows as one
read of the whole sheet, through the real publish command on SQLite and PostgreSQL, and in
bounded memory (calamine held a million-row sheet whole: 1.5 GB).

The workbooks are written here directly, as Excel writes them (shared strings, dates as styled
numbers, error cells t="e"): openpyxl writes inline strings, and is slow for large sheets."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest

from publishing.rows import BadValue, SourceError
from publishing.sources import open_source, xlsx_chunks, xlsx_reader
from publishing.sources.headers import CELL_LIMIT
from tests.factories import PENALTY_HEADER, credit_mark_row, penalty_row
from tests.test_cli import cli
from tests.test_xlsx_hardening import cli_peak

BEYOND = "表头之外的单元格 {cell} 有值：表头只到 {last} 列，这个值不属于任何一列（请删除它，或为它所在的列加上列名）"
NA = "单元格为 Excel 错误值 #N/A（公式出错或引用无效）"
MARK_HEADER = ["序号", *credit_mark_row(0)]  # A–H


@dataclass(frozen=True)
class Err:
    """An error cell (t="e")."""

    text: str


# -- writing a workbook ----------------------------------------------------------------------

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    "</Types>"
)
ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="数据" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>'
    '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
    "</Relationships>"
)
STYLES = (  # style 1: a date
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/></numFmts>'
    '<fonts count="1"><font><sz val="11"/></font></fonts><fills count="1"><fill/></fills>'
    '<borders count="1"><border/></borders><cellStyleXfs count="1"><xf/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="164" applyNumberFormat="1"/></cellXfs>'
    "</styleSheet>"
)
SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    "<sheetData>"
)
EXCEL_EPOCH = date(1899, 12, 30)


def letters(column: int) -> str:
    return xlsx_reader._letters(column)


class Strings:
    """The shared strings table, written as Excel writes it: in order of first use."""

    def __init__(self, zero_pad: bool = False) -> None:
        self.index: dict[str, int] = {}
        self.zero_pad = zero_pad  # some indexes written with a leading 0 (calamine reads them)

    def cell(self, ref: str, text: str, t_first: bool) -> str:
        i = self.index.setdefault(text, len(self.index))
        written = f"0{i}" if self.zero_pad and i % 3 == 0 else str(i)
        attrs = 't="s" s="0"' if t_first else 't="s"'
        return f'<c r="{ref}" {attrs}><v>{written}</v></c>'

    def xml(self) -> str:
        items = "".join(f"<si><t>{escape(text)}</t></si>" for text in self.index)
        return (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            f'count="{len(self.index)}" uniqueCount="{len(self.index)}">{items}</sst>'
        )


def cell_xml(ref: str, value: Any, strings: Strings | None, t_first: bool) -> str:
    if isinstance(value, Err):
        return f'<c r="{ref}" t="e"><v>{escape(value.text)}</v></c>'
    if isinstance(value, date):
        return f'<c r="{ref}" s="1"><v>{(value - EXCEL_EPOCH).days}</v></c>'
    if isinstance(value, int | float):
        return f'<c r="{ref}"><v>{value}</v></c>'
    if strings is None:
        return f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>'
    return strings.cell(ref, value, t_first)


def write_book(
    path: Path,
    rows: dict[int, list[Any]],
    merges: list[str] = (),
    shared: bool = True,
    t_first: bool = False,
    zero_pad: bool = False,
) -> Path:
    """rows: row number -> cells from column A on (None: no cell)."""
    strings = Strings(zero_pad) if shared else None
    parts = []
    for number in sorted(rows):
        cells = "".join(
            cell_xml(f"{letters(i)}{number}", value, strings, t_first)
            for i, value in enumerate(rows[number])
            if value is not None
        )
        parts.append(f'<row r="{number}">{cells}</row>')
    merged = "".join(f'<mergeCell ref="{ref}"/>' for ref in merges)
    tail = f'<mergeCells count="{len(merges)}">{merged}</mergeCells>' if merges else ""
    sheet = SHEET_HEAD + "".join(parts) + "</sheetData>" + tail + "</worksheet>"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("[Content_Types].xml", CONTENT_TYPES)
        book.writestr("_rels/.rels", ROOT_RELS)
        book.writestr("xl/workbook.xml", WORKBOOK)
        book.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        book.writestr("xl/styles.xml", STYLES)
        book.writestr("xl/worksheets/sheet1.xml", sheet)
        if strings is not None:
            book.writestr("xl/sharedStrings.xml", strings.xml())
    return path


# -- reading it in chunks and whole --------------------------------------------------------


def read(path: Path) -> list[tuple[int, dict[str, Any]]]:
    return [(row.row, row.values) for row in open_source(path).rows]


def read_both(path: Path, monkeypatch, rows_per_chunk: int = 6) -> tuple[list, list]:
    """The rows read whole, then in chunks of rows_per_chunk rows (of a sheet 8 columns wide)."""
    monkeypatch.setattr(xlsx_reader, "CHUNKED_CELLS", 1 << 40)
    whole = read(path)
    monkeypatch.setattr(xlsx_reader, "CHUNKED_CELLS", 0)
    monkeypatch.setattr(xlsx_chunks, "CHUNK_CELLS", 8 * rows_per_chunk)
    return whole, read(path)


def chunk_count(path: Path) -> int:
    """The chunks the sheet is read in (thresholds as read_both left them)."""
    scan = xlsx_reader._scan(path)
    if scan.needs_copy():
        sheet = xlsx_reader._copied(path, scan.part, None, path.name).sheet
    else:
        sheet = xlsx_reader._chunked(path, scan.part, scan.right + 1, path.name)
    assert isinstance(sheet, xlsx_chunks.ChunkedSheet)
    sheet.close()
    return len(sheet._chunks)


def mark(n: int, **over: Any) -> list[Any]:
    """A credit-mark row from column A (序号), its date a real date."""
    values = credit_mark_row(n, 标注日期=date(2026, 1, 10), **over)
    return [n, *values.values()]


def marks_sheet() -> tuple[dict[int, list[Any]], list[str]]:
    """Title rows, a header, and data cut in chunks of 6 rows with something at each cut."""
    rows: dict[int, list[Any]] = {
        1: ["烟台市信用风险分类结果"],
        2: ["制表单位：烟台市市场监督管理局", None, None, None, None, None, None, date(2026, 2, 1)],
        3: MARK_HEADER,
    }
    for n in range(4, 20):
        rows[n] = mark(n)
    rows[8][6] = Err("#N/A")  # 监管领域 of row 8
    rows[15][5] = Err("#DIV/0!")  # 分类结果 of row 15
    rows[11][3] = "福山区"  # 所属区市 merged D11:D14, over the cut after row 12
    for n in (12, 13, 14):
        rows[n][3] = None
    # rows 20-40 empty, across a cut; then two chunks whose 序号 (column A) is blank
    for n in range(41, 53):
        rows[n] = [None, *mark(n)[1:]]
    rows[43] = [None, *mark(43)[1:], None, "备注：补录"]  # beyond the header: J43
    rows[45][2] = "长" * (CELL_LIMIT + 1)  # 主体名称 longer than a cell may be
    rows[47] = [47]  # 序号 only: a blank row
    rows[53] = ["合计", None, "共 40 家"]  # a trailing footer
    merges = ["A1:H1", "D11:D14"]
    return rows, merges


@pytest.mark.parametrize("form", ["shared", "t-first", "zero-padded", "inline"])
def test_chunks_read_as_the_whole_sheet(tmp_path, monkeypatch, form):
    rows, merges = marks_sheet()
    path = write_book(
        tmp_path / "marks.xlsx",
        rows,
        merges,
        shared=form != "inline",
        t_first=form == "t-first",
        zero_pad=form == "zero-padded",
    )
    whole, chunked = read_both(path, monkeypatch)
    assert chunk_count(path) >= 6
    assert chunked == whole

    numbers = [number for number, _ in whole]
    assert numbers == [*range(4, 20), *range(41, 47), *range(48, 53)]  # no 47, no 合计
    values = dict(whole)
    assert values[8]["domain"] == BadValue("#N/A", NA)
    assert [values[n]["district"] for n in (11, 12, 13, 14, 15)] == ["福山区"] * 4 + ["莱山区"]
    assert values[43] == {"__error__": BEYOND.format(cell="J43", last="H"), "__raw__": "备注：补录"}
    assert isinstance(values[45]["entity_name"], BadValue)
    assert values[44]["entity_name"] == "烟台测试44有限公司" and values[44]["uscc"] == mark(44)[1]
    assert values[4]["marked_on"] == date(2026, 1, 10)


def test_a_chunk_starting_left_of_the_first_one(tmp_path, monkeypatch):
    """The first chunk starts at column B; a later one at A (a value left of the header, read
    by nothing), and a merged range there reaches into the header's columns: every chunk is
    then read when the file is opened, to place the rows as the whole sheet does."""
    rows: dict[int, list[Any]] = {1: [None, "信用风险分类结果"], 2: [None, *MARK_HEADER[1:]]}
    for n in range(3, 30):
        rows[n] = [None, *mark(n)[1:]]
    rows[20][0] = "左侧备注"
    rows[22][3] = None  # A22:D22 merged, A22 blank: all of it blank, as Excel shows it
    for merges in ([], ["A22:D22"]):
        path = write_book(tmp_path / f"left{len(merges)}.xlsx", rows, merges)
        whole, chunked = read_both(path, monkeypatch)
        assert chunk_count(path) >= 4
        assert chunked == whole
        assert dict(whole)[20]["entity_name"] == "烟台测试20有限公司"


def test_stray_far_cells_in_a_large_sheet_are_rejected_as_before(tmp_path, monkeypatch):
    """A rewritten copy (a far cell, a long gap) is read in chunks too: the far cell rejected
    by name, the rows after the gap numbered as in the file."""
    rows, merges = marks_sheet()
    rows[300] = mark(300)
    rows[301] = [*mark(301), *[None] * 30, "远处"]  # AM301
    rows[5000] = ["备注"] + [None] * 16382 + ["远"]  # XFD5000
    path = write_book(tmp_path / "far.xlsx", rows, merges)
    assert xlsx_reader._scan(path).needs_copy()
    whole, chunked = read_both(path, monkeypatch)
    assert chunk_count(path) >= 6
    assert chunked == whole
    assert whole[-2:] == [
        (301, {"__error__": BEYOND.format(cell="AM301", last="H"), "__raw__": "远处"}),
        (5000, {"__error__": BEYOND.format(cell="XFD5000", last="H"), "__raw__": "远"}),
    ]


def test_a_chunk_calamine_cannot_read_refuses_the_file_when_opened(tmp_path, monkeypatch):
    """Each chunk is read when the file is opened: a sheet calamine cannot read is refused then,
    as when it is read whole, not half-way through its rows."""
    rows = {1: MARK_HEADER, **{n: mark(n) for n in range(2, 30)}}
    path = write_book(tmp_path / "broken.xlsx", rows)
    broken = tmp_path / "broken2.xlsx"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(broken, "w") as out:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.endswith("sheet1.xml"):  # a number that is not one, in row 20
                data = data.replace(b'<c r="A20"><v>20</v>', b'<c r="A20" t="n"><v>2x0</v>')
            out.writestr(item, data)
    reasons = []
    monkeypatch.setattr(xlsx_chunks, "CHUNK_CELLS", 8 * 6)
    for chunked in (1 << 40, 0):
        monkeypatch.setattr(xlsx_reader, "CHUNKED_CELLS", chunked)
        with pytest.raises(SourceError) as info:
            open_source(broken)
        reasons.append(info.value.reject.reason)
    assert (
        reasons[0] == reasons[1] == "无法读取第一个工作表：Parse float error: invalid float literal"
    )
    assert chunk_count(path) == 5  # the file before the damage: read in chunks


# -- the publish command -----------------------------------------------------------------------

WIDE = 64  # columns: 16 of a penalty, the rest not read
NOTE = "附加说明" * 10  # one shared string, which calamine copies into every cell holding it


def write_wide_penalties(path: Path, count: int) -> Path:
    """count penalty rows under a 64-column header (enough cells to be read in chunks by
    default: count × 64 > CHUNKED_CELLS), with a merge across the first cut, an error cell,
    and a trailing 合计 row."""
    extra = WIDE - len(PENALTY_HEADER)
    rows: dict[int, list[Any]] = {1: PENALTY_HEADER + [f"附加{i}" for i in range(extra)]}
    for n in range(1, count + 1):
        values = penalty_row(n, 处罚决定日期=date(2026, 6, 1))
        values["罚款金额(元)"] = 5000
        rows[n + 1] = [*values.values(), *[NOTE] * extra]  # never read, but calamine loads them
    district = PENALTY_HEADER.index("所属区市")
    for row in range(4091, 4101):
        rows[row][district] = "莱山区" if row == 4091 else None
    rows[7][PENALTY_HEADER.index("失信程度")] = Err("#N/A")
    rows[count + 2] = ["合计", f"{count} 件"]
    column = letters(district)
    return write_book(path, rows, [f"{column}4091:{column}4100"])


def test_publish_command_reads_a_large_sheet_in_chunks(database_url, tmp_path):
    """Read whole, this sheet took the publishing process to 523 MB (the rectangle of 64
    columns, and a string in each of its cells)."""
    count = 35_000
    path = write_wide_penalties(tmp_path / "penalties.xlsx", count)
    assert xlsx_reader._scan(path).cells() > xlsx_chunks.CHUNKED_CELLS
    assert path.stat().st_size > 2_000_000  # cleaned in a forked process
    report = tmp_path / "r.json"
    done, peak_mb = cli_peak(
        database_url, tmp_path, "publish", str(path), "--accept-partial", "--report", str(report)
    )
    assert done.returncode == 0, done.stderr[-3000:]  # published, one row rejected
    assert "Traceback" not in done.stderr
    assert peak_mb < 300, peak_mb
    data = json.loads(report.read_text(encoding="utf-8"))
    assert (data["rows"], data["accepted"], data["added"]) == (count, count - 1, count - 1)
    assert [(r["row"], r["column"]) for r in data["rejected"]] == [(7, "失信程度")]
    assert data["published"] is True

    exported = tmp_path / "out.csv"
    dump = cli(
        database_url,
        "export",
        "--kind",
        "penalty",
        "--format",
        "csv",
        "--out",
        str(exported),
        tmp_path=tmp_path,
    )
    assert dump.returncode == 0, dump.stderr[-3000:]
    text = exported.read_text(encoding="utf-8-sig")
    for n in (4090, 4095, 4099):  # rows 4091-4100: merged 莱山区
        line = next(line for line in text.splitlines() if f"〔2026〕{n}号" in line)
        assert "莱山区" in line
    assert text.count("芝罘区") >= count - 20


# -- memory --------------------------------------------------------------------------------

PEAK_READ = (
    "import re, sys; from pathlib import Path; from publishing.sources import open_source; "
    "rows = sum(1 for _ in open_source(Path(sys.argv[1])).rows); "
    "print(rows, re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read())[1])"
)


def test_a_large_sheet_is_read_in_bounded_memory(tmp_path):
    """200,000 penalty rows: read whole, 321 MB; in chunks, 101 MB (a few thousand rows at a
    time, and where each of the workbook's strings starts)."""
    count = 200_000
    rows: dict[int, list[Any]] = {1: PENALTY_HEADER}
    for n in range(1, count + 1):
        values = penalty_row(n, 处罚决定日期=date(2026, 6, 1))
        values["罚款金额(元)"] = 5000
        rows[n + 1] = list(values.values())
    path = write_book(tmp_path / "large.xlsx", rows)
    done = subprocess.run(
        [sys.executable, "-c", PEAK_READ, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parent.parent,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    read_rows, peak_kb = map(int, done.stdout.split())
    assert read_rows == count
    assert peak_kb < 160 * 1024, peak_kb
