"""XLSX sources: the first sheet, read with python-calamine.

calamine loads the sheet into its own (compact, Rust-side) memory; rows are converted to
Python objects one at a time by iter_rows(). iter_rows() pads the empty rows above the used
range, so its n-th row is spreadsheet row n, which is what the person fixing the file sees.
Dates come back as datetime.date/datetime and numbers as float; they are passed on raw.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from python_calamine import CalamineError, CalamineSheet, CalamineWorkbook

from publishing.rows import SourceFile, SourceRow
from publishing.sources.headers import source_error
from publishing.sources.table import Header, data_rows, read_header


def open_xlsx(path: Path, kind: str | None, file: str) -> SourceFile:
    sheet = _first_sheet(path, file)
    header = read_header(sheet.iter_rows(), kind, file)
    return SourceFile(
        path=path,
        kind=header.kind,
        format="xlsx",
        encoding=None,
        columns=header.mapper.columns,
        ignored_columns=header.mapper.ignored,
        rows=_rows(sheet, header, file),
    )


def _first_sheet(path: Path, file: str) -> CalamineSheet:
    try:
        workbook = CalamineWorkbook.from_path(str(path))
    except (CalamineError, OSError, ValueError) as error:
        raise source_error(file, 0, f"不是有效的 XLSX 文件：{error}") from error
    try:
        if not workbook.sheet_names:
            raise source_error(file, 0, "XLSX 文件中没有工作表")
        sheet = workbook.get_sheet_by_index(0)
    except CalamineError as error:
        raise source_error(file, 0, f"无法读取第一个工作表：{error}") from error
    finally:
        workbook.close()  # the sheet keeps its own copy of the cells
    if sheet.start is None:  # iter_rows() on an empty range would panic
        raise source_error(file, 0, f"第一个工作表“{sheet.name}”是空的")
    return sheet


def _rows(sheet: CalamineSheet, header: Header, file: str) -> Iterator[SourceRow]:
    yield from data_rows(sheet.iter_rows(), header, file)
