"""XLSX sources: the first sheet, read with python-calamine.

calamine loads the sheet into its own (compact, Rust-side) memory; rows are converted to
Python objects one at a time by iter_rows(). iter_rows() pads the empty rows above the used
range, so its n-th row is spreadsheet row n, which is what the person fixing the file sees
(columns are not padded: a row's first cell is the used range's first column).
Dates come back as datetime.date/datetime and numbers as float; they are passed on raw.

python-calamine (0.9) reads an error cell (#N/A, #VALUE!, #DIV/0! …) as "", like a blank one,
and offers no way to tell them apart. So the sheet's XML is scanned for error cells (t="e")
too: a streamed search that finds none in a sound file (mostly the inflating: ~0.4 s for a
100,000-row sheet of 176 MB XML, against ~3 s for calamine's load), a parse only when it does.
Their cells become BadValues, which cleaning rejects with the error text.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from python_calamine import CalamineError, CalamineSheet, CalamineWorkbook

from publishing.rows import BadValue, SourceFile, SourceRow, excel_error_reason
from publishing.sources.headers import source_error
from publishing.sources.table import Header, data_rows, read_header

_CHUNK = 1 << 22
_ERROR_ATTRS = (b't="e"', b"t='e'")
_OVERLAP = max(len(a) for a in _ERROR_ATTRS) - 1
_ERROR_CELL = re.compile(rb"<(?:\w+:)?c\b([^>]*\bt=[\"']e[\"'][^>]*)>(.*?)</(?:\w+:)?c>", re.S)
_CELL_REF = re.compile(rb"\br=[\"']([A-Z]+)([0-9]+)[\"']")
_VALUE = re.compile(rb"<(?:\w+:)?v>([^<]*)</(?:\w+:)?v>")
_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
_SHEET = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}sheet"
_R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_OFFICE_DOCUMENT = "/officeDocument"

ErrorCells = dict[tuple[int, int], str]  # (row, column), both 0-based -> error text


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
        rows=_rows(sheet, header, file, error_cells(path)),
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


def _rows(sheet: CalamineSheet, header: Header, file: str,
          errors: ErrorCells) -> Iterator[SourceRow]:
    rows: Iterable[Sequence[Any]] = sheet.iter_rows()
    if errors:
        rows = _with_errors(rows, errors, sheet.start[1] if sheet.start else 0)
    # XLSX text may hold control characters (_x0000_ escapes): every value is checked.
    yield from data_rows(rows, header, file, check=True)


def _with_errors(rows: Iterable[Sequence[Any]], errors: ErrorCells,
                 first_column: int) -> Iterator[Sequence[Any]]:
    by_row: dict[int, list[tuple[int, str]]] = {}
    for (row, column), text in errors.items():
        by_row.setdefault(row, []).append((column - first_column, text))
    for number, cells in enumerate(rows):
        bad = by_row.get(number)
        if bad:
            cells = list(cells)
            for i, text in bad:
                if 0 <= i < len(cells):
                    cells[i] = BadValue(text, excel_error_reason(text))
        yield cells


def error_cells(path: Path) -> ErrorCells:
    """The error cells of the first sheet (t="e" in its XML), which calamine reads as blank."""
    try:
        with zipfile.ZipFile(path) as archive:
            part = _first_sheet_part(archive)
            if part is None or not _has_error_cells(archive, part):
                return {}
            xml = archive.read(part)
    except (OSError, zipfile.BadZipFile, KeyError, ElementTree.ParseError):
        return {}  # calamine read this file: it is laid out in a way this scan does not know
    cells: ErrorCells = {}
    for match in _ERROR_CELL.finditer(xml):
        attrs, content = match.groups()
        ref = _CELL_REF.search(attrs)
        value = _VALUE.search(content)
        if ref is None or attrs.endswith(b"/"):
            continue
        text = value[1].decode("utf-8", errors="replace") if value else "#错误"
        cells[(int(ref[2]) - 1, _column_index(ref[1]))] = text
    return cells


def _has_error_cells(archive: zipfile.ZipFile, part: str) -> bool:
    """A streamed search: the sheet's XML is never held whole for a sound file."""
    tail = b""
    with archive.open(part) as stream:
        while chunk := stream.read(_CHUNK):
            seam = tail + chunk[:_OVERLAP]  # an attribute split between two chunks
            if any(attr in chunk or attr in seam for attr in _ERROR_ATTRS):
                return True
            tail = chunk[-_OVERLAP:]
    return False


def _first_sheet_part(archive: zipfile.ZipFile) -> str | None:
    """The zip member of the first sheet in the workbook's order (the one calamine reads)."""
    workbook = _target(archive, "_rels/.rels", "", lambda rel: rel.get("Type", "").endswith(
        _OFFICE_DOCUMENT)) or "xl/workbook.xml"
    sheets = ElementTree.fromstring(archive.read(workbook)).iter(_SHEET)
    first = next(sheets, None)
    if first is None:
        return None
    folder, name = posixpath.split(workbook)
    rels = posixpath.join(folder, "_rels", name + ".rels")
    return _target(archive, rels, folder, lambda rel: rel.get("Id") == first.get(_R_ID))


def _target(archive: zipfile.ZipFile, rels: str, folder: str, wanted: Any) -> str | None:
    for rel in ElementTree.fromstring(archive.read(rels)).iter(_REL):
        if wanted(rel):
            target = rel.get("Target", "")
            if target.startswith("/"):
                return target.lstrip("/")
            return posixpath.normpath(posixpath.join(folder, target))
    return None


def _column_index(letters: bytes) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + letter - 64
    return index - 1
