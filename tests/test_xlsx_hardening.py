"""XLSX input hardening, through the real publish path on SQLite and PostgreSQL: a stray value far
out in the sheet (calamine allocates the whole rectangle up to it: XFD1048576 aborted the
process), merged cells in data rows, cells longer than a CSV field may be, and a row whose
values all lie beyond the header's last column."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import func, select

from publishing.commit import RECORDS
from publishing.export import iter_public
from publishing.publish import publish
from publishing.rows import BadValue, SourceError
from publishing.sources import open_source, xlsx_reader
from publishing.sources.headers import CELL_LIMIT
from tests.factories import blacklist_row, credit_mark_row, write_csv

TODAY = date(2026, 11, 27)
BEYOND = "表头之外的单元格 {cell} 有值：表头只到 {last} 列，这个值不属于任何一列（请删除它，或为它所在的列加上列名）"
# The CLI in a child process that reports its peak resident memory (calamine's allocations are
# invisible to tracemalloc).
# The CLI's own peak: VmHWM of its memory map, which exec made new (ru_maxrss is carried over
# exec, and so counts the forking pytest worker's size, 550–690 MB late in a full run).
PEAK_CLI = ("import atexit, re, runpy, sys; atexit.register(lambda: print('PEAK_KB', "
            "re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read())[1], file=sys.stderr)); "
            "runpy.run_module('portal.cli', run_name='__main__', alter_sys=True)")


def run(engine, path: Path, **kw: Any):
    return publish([path], engine=engine, show_progress=False, today=TODAY, **kw)


def rejects(result) -> list[tuple]:
    return [(r.row, r.column, r.value, r.reason) for rep in result.reports for r in rep.rejected]


def write_xlsx(path: Path, rows: list[list[Any]], edit: Callable[[Any], None] | None = None) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    if edit is not None:
        edit(sheet)
    book.save(path)
    return path


def grid(records: list[dict[str, str]]) -> list[list[Any]]:
    return [list(records[0]), *(list(r.values()) for r in records)]


def count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(RECORDS)).scalar_one()


def cli_peak(database_url: str, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, int]:
    env = {**os.environ, "DISCLOSURE_DATABASE_URL": database_url,
           "DISCLOSURE_DATA_DIR": str(tmp_path / "var"), "DISCLOSURE_MEILI_URL": ""}
    done = subprocess.run([sys.executable, "-c", PEAK_CLI, *args], env=env, capture_output=True,
                          text=True, timeout=300)
    peak = re.search(r"PEAK_KB (\d+)", done.stderr)
    assert peak, done.stderr[-2000:]  # no line: the process aborted
    return done, int(peak[1]) // 1024


# -- 1. a stray value far out ----------------------------------------------------------------


@pytest.mark.parametrize("cell", ["XFD1048576", "Z1048576", "XFD3"])
def test_a_stray_value_far_out_is_a_rejected_row_in_bounded_memory(engine, database_url, tmp_path,
                                                                    cell):
    """XFD1048576 asked calamine for 512 GiB (abort, exit 134, no report); Z1048576 took 917 MB."""
    path = write_xlsx(tmp_path / "far.xlsx", grid([credit_mark_row(1), credit_mark_row(2)]),
                      lambda sheet: sheet.__setitem__(cell, 0))
    report = tmp_path / "r.json"
    done, peak_mb = cli_peak(database_url, tmp_path, "publish", str(path), "--dry-run",
                             "--report", str(report))
    assert done.returncode == 1, done.stderr[-2000:]  # a rejected row, nothing else wrong
    assert peak_mb < 400, peak_mb
    data = json.loads(report.read_text(encoding="utf-8"))
    row = int(cell.lstrip("XFDZ"))
    assert data["rows"] == (3 if row > 3 else 2) and data["accepted"] == (2 if row > 3 else 1)
    assert data["rejected"] == [{"row": row, "column": None, "value": "0",
                                 "reason": BEYOND.format(cell=cell, last="G")}]

    result = run(engine, path, accept_partial=True)
    assert result.published and count(engine) == (2 if row > 3 else 1)


def test_a_stray_value_in_the_title_rows_far_out_leaves_the_rows_alone(engine, tmp_path):
    def edit(sheet: Any) -> None:
        sheet["XFD1"] = "制表：某局"  # beyond the header, above it: read like any title cell
        sheet.merge_cells("A1:G1")

    rows = [["信用风险分类结果"], *grid([credit_mark_row(n) for n in range(1, 71)])]
    path = write_xlsx(tmp_path / "t.xlsx", rows, edit)
    assert xlsx_reader._scan(path).needs_copy()  # 72 rows × 16,384 columns: read from a copy
    result = run(engine, path)
    assert rejects(result) == [] and result.published and count(engine) == 70


def test_a_stray_value_far_out_in_the_header_row_of_a_long_sheet_refuses_the_file(tmp_path):
    """The header reaches to it, and so would every row: a clear error, not 2 GB or more."""
    rows = grid([credit_mark_row(n) for n in range(1, 4101)])
    path = write_xlsx(tmp_path / "h.xlsx", rows, lambda sheet: sheet.__setitem__("XFD1", "备注"))
    with pytest.raises(SourceError) as info:
        open_source(path)
    assert info.value.reject.reason == (
        "第一个工作表太大，无法读取：表头行最后一个有值的单元格是 XFD1，按此宽度去掉空行后仍有 4,101 行 × "
        "16,384 列；请删除远离数据的单元格后重新导出")


def test_far_cells_are_read_where_calamine_would_place_them(tmp_path, monkeypatch):
    """The rewritten copy (left-out gaps, a moved far cell, cells without r="A1") reads as the
    file does: row numbers, an error cell, merged cells, the values."""
    def edit(sheet: Any) -> None:
        sheet["A300"], sheet["B300"] = "91370602000000300X", "烟台远行有限公司"
        sheet["C300"], sheet["D300"], sheet["E300"] = "莱山区", "信用风险分类", "#N/A"
        sheet["G300"] = "2026-01-10"
        sheet.merge_cells("C3:C4")
        sheet["H5000"] = "备注：远处"  # one column past the header; after a long gap

    rows = [["标题"], *grid([credit_mark_row(1), credit_mark_row(2, 所属区市=None)])]
    plain = write_xlsx(tmp_path / "plain.xlsx", rows, edit)
    far = write_xlsx(tmp_path / "far.xlsx", rows, lambda sheet: (edit(sheet), sheet.__setitem__(
        "AZ9000", 7)))  # (in-process: XFD1048576 would abort the tests, were the fix missing)
    bare = _without_cell_refs(far, tmp_path / "bare.xlsx")  # positions by order, as some write

    def read(path: Path) -> list[tuple[int, dict[str, Any]]]:
        return [(r.row, r.values) for r in open_source(path).rows]

    assert not xlsx_reader._scan(plain).needs_copy()  # read by calamine as it is
    expected = read(plain)
    assert [number for number, _ in expected] == [3, 4, 300, 5000]
    assert expected[1][1]["district"] == "莱山区"  # the merged cell, filled
    assert expected[2][1]["grade"] == BadValue("#N/A", "单元格为 Excel 错误值 #N/A（公式出错或引用无效）")
    assert expected[3][1]["__error__"] == BEYOND.format(cell="H5000", last="G")
    far_row = (9000, {"__error__": BEYOND.format(cell="AZ9000", last="G"), "__raw__": "7"})
    assert read(far) == [*expected, far_row]

    monkeypatch.setattr(xlsx_reader, "_CHUNK", 64)  # pieces that split tags and cells
    monkeypatch.setattr(xlsx_reader, "_EXACT_BYTES", 512)  # H5000 is found by the search
    for path in (plain, far, bare):
        assert xlsx_reader._scan(path).needs_copy()
    assert read(plain) == expected
    assert read(far) == [*expected, far_row]  # moved next to the header's last column
    assert read(bare) == [*expected, far_row]


def _without_cell_refs(path: Path, target: Path) -> Path:
    """The workbook with its cells' r="A1" attributes removed where calamine places them the
    same by their order (a row's cells from column A without gaps)."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as copy:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb'<row r="(\d+)"[^>]*>(<c r="A\d+".*?)</row>', _bare_row, data)
            copy.writestr(item, data)
    return target


def _bare_row(match: re.Match[bytes]) -> bytes:
    cells = re.findall(rb'<c r="([A-Z]+)\d+"', match[2])
    if [c.decode() for c in cells] != [chr(65 + i) for i in range(len(cells))] or b"/>" in match[2]:
        return match[0]
    return match[0].replace(b' r="', b' x="').replace(b'<row x="', b'<row r="', 1)


@pytest.mark.parametrize("right", [0, 6, 25, 26, 51, 701, 702, 16383])
def test_the_search_beyond_the_exact_part_knows_each_column(right):
    pattern = xlsx_reader._outside(right)
    for column in {0, 1, right - 1, right, right + 1, 26, 27, 702, 703, 16383, 16384}:
        if column < 0:
            continue
        cell = f'<c r="{xlsx_reader._letters(column)}1048576">'.encode()
        assert (pattern.search(cell) is not None) == (column > right), column
    assert pattern.search(b'<c r="A1048577">') and not pattern.search(b'<c r="A999999" t="s">')
    assert pattern.search(b'<c t="s" r="A1">') and pattern.search(b"<c><v>1</v></c>")


# -- 2. merged cells -------------------------------------------------------------------------


def test_merged_cells_in_data_rows_hold_their_value_in_every_row(engine, tmp_path):
    """涉案产品 (part of the natural key), 处理结果 and the required 所属区市 merged down over three
    entities: rows 2–3 of them were published without the values, or rejected (必填项为空)."""
    records = [blacklist_row(n, 涉案产品="韭菜", 处理结果="罚款2000元") for n in (1, 2, 3)]

    def edit(sheet: Any) -> None:
        sheet.merge_cells("A1:I1")  # the title: above the header, not a value of any row
        for column in ("C", "I"):  # 所属区市, 处理结果
            sheet.merge_cells(f"{column}3:{column}5")
        sheet.merge_cells("G3:G7")  # 涉案产品, reaching into blank rows: they stay blank

    rows = [["烟台市食品安全“黑榜”"], *grid(records)]
    result = run(engine, write_xlsx(tmp_path / "b.xlsx", rows, edit))
    assert rejects(result) == [] and result.reports[0].rows == 3
    published = sorted(iter_public("blacklist", engine), key=lambda r: r["entity_id"])
    assert [(r["district"], r["products"], r["action"]) for r in published] == \
        [("芝罘区", "韭菜", "罚款2000元")] * 3


# -- 3. over-long cells ----------------------------------------------------------------------


def test_a_cell_longer_than_a_csv_field_may_be_is_a_rejected_value(engine, tmp_path):
    """A 7-million-character 违法事实 was published from XLSX; CSV rejects such a field."""
    limit = CELL_LIMIT
    records = [blacklist_row(1, 违法事实="LONG"), blacklist_row(2), blacklist_row(3, 违法事实="LIMIT")]
    # openpyxl cuts text at Excel's 32,767 characters; other writers do not, nor does calamine
    path = _with_texts(write_xlsx(tmp_path / "b.xlsx", grid(records)),
                       {"LONG": "超" * (limit + 1), "LIMIT": "长" * limit})
    result = run(engine, path, accept_partial=True)
    assert rejects(result) == [(2, "违法事实", "超" * 1000 + "…",
                                f"字段过长（超过 {limit:,} 个字符）")]
    assert result.published and count(engine) == 2  # the limit itself is fine

    records[0]["违法事实"] = "超" * (limit + 1)
    in_csv = run(engine, write_csv(tmp_path / "b.csv", records[:2]), dry_run=True)
    assert [(row, reason) for row, _, _, reason in rejects(in_csv)] == [
        (2, f"CSV 格式错误：字段过长（超过 {limit:,} 个字符）")]


def _with_texts(path: Path, texts: dict[str, str]) -> Path:
    """The workbook with each placeholder text in its sheet replaced."""
    copy = path.with_name("texts-" + path.name)
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(copy, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.infolist():
            data = source.read(item.filename)
            for placeholder, text in texts.items():
                data = data.replace(f">{placeholder}<".encode(), f">{text}<".encode())
            out.writestr(item, data)
    return copy


# -- 4. values beyond the header's last column -----------------------------------------------


def test_a_row_with_values_only_beyond_the_header_is_rejected_as_in_csv(engine, tmp_path):
    """It was silently skipped in XLSX: not counted, not rejected."""
    records = [credit_mark_row(1), credit_mark_row(2), credit_mark_row(3)]
    rows = grid(records)
    rows[2] = [None] * 7 + ["烟台测试2有限公司", "B"]  # shifted right past the header (A–G)
    xlsx = run(engine, write_xlsx(tmp_path / "c.xlsx", rows), accept_partial=True)
    assert rejects(xlsx) == [(3, None, "烟台测试2有限公司", BEYOND.format(cell="H3", last="G"))]
    assert xlsx.reports[0].rows == 3 and count(engine) == 2

    in_csv = tmp_path / "c.csv"
    with in_csv.open("w", encoding="utf-8", newline="") as stream:
        csv.writer(stream).writerows([[v or "" for v in row] for row in rows])
    result = run(engine, in_csv, dry_run=True)
    assert [(row, column) for row, column, _, _ in rejects(result)] == [(3, None)]
    assert result.reports[0].rows == 3
