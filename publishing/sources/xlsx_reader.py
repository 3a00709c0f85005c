"""XLSX sources: the first sheet, read with python-calamine.

calamine loads the sheet into its own (compact, Rust-side) memory; rows are converted to
Python objects one at a time by iter_rows(). iter_rows() pads the empty rows above the used
range, so its n-th row is spreadsheet row n, which is what the person fixing the file sees
(columns are not padded: a row's first cell is the used range's first column).
Dates come back as datetime.date/datetime and numbers as float; they are passed on raw.

calamine holds the used range as a full rectangle, 32 bytes a cell, and python-calamine (0.9)
has no lazy reading: one stray value at XFD1048576 asks for 512 GiB and aborts the process, one
at Z1048576 costs 900 MB. So the sheet's XML is scanned first (streamed: the cells of its first
4 MB placed one by one, then one regex search a piece for a cell beyond that width or out of
the usual form). A sheet whose rectangle would be far larger than its values, or whose cells
the scan cannot place, is read from a rewritten copy (_Rewriter): empty row gaps left out (rows
keep their numbers), and in each data row the first value beyond the header's last column moved
just past it, so the row is rejected naming the cell, the rest of them dropped.

A sheet whose rectangle (that of the rewritten copy, for one) has more than CHUNKED_CELLS cells
is read in chunks of a few thousand rows, each a workbook of its own (xlsx_chunks): a million
rows of 16 columns took 1.5 GB whole (calamine's rectangle, and every shared string).

python-calamine (0.9) reads an error cell (#N/A, #VALUE!, #DIV/0! …) as "", like a blank one,
and offers no way to tell them apart. The same scan looks for error cells (t="e"); the XML is
parsed for them only when it finds one. Their cells become BadValues, which cleaning rejects.

A merged range below the header holds its value in every cell, as Excel shows it.
"""

from __future__ import annotations

import posixpath
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree

from python_calamine import CalamineError, CalamineSheet, CalamineWorkbook

from publishing.rows import BadValue, SourceFile, SourceRow, excel_error_reason
from publishing.sources.headers import clean_value, header_text, raw_text, source_error
from publishing.sources.table import (
    HEADER_SCAN_ROWS,
    Header,
    WideReason,
    data_rows,
    has_value,
    read_header,
)
from publishing.sources.xlsx_chunks import CHUNKED_CELLS, ChunkedSheet, Unsplittable, split

_CHUNK = 1 << 22
_TAG_MAX = 4096  # kept back from a piece without a tag end (inside a long text)
_ERROR_ATTRS = (b't="e"', b"t='e'")
_ERROR_CELL = re.compile(rb"<(?:\w+:)?c\b([^>]*\bt=[\"']e[\"'][^>]*)>(.*?)</(?:\w+:)?c>", re.S)
_CELL_REF = re.compile(rb"\br=[\"']([A-Z]+)([0-9]+)[\"']")
_VALUE = re.compile(rb"<(?:\w+:)?v>([^<]*)</(?:\w+:)?v>")
_CELL_END = re.compile(rb"</(?:\w+:)?c>")
_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
_SHEET = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}sheet"
_R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_OFFICE_DOCUMENT = "/officeDocument"

# The sheet's size. A sheet of at most this many columns is read as it is when its rectangle
# is near its values: up to 1,048,576 rows of them, what a full sheet that wide costs.
_MAX_ROW = 1_048_576
_FAST_WIDTH = 64
_EXACT_BYTES = 1 << 22  # the scan places every cell of this much XML
_DENSE_FLOOR = 1 << 20  # cells a rectangle may always have (32 MB)
_SPARSE = 16  # ... or this many times the sheet's values
_DENSE_LIMIT = _MAX_ROW * _FAST_WIDTH  # a rewritten copy larger than this is refused
_GAP = 64  # empty rows from which on a rewritten copy leaves them out
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# A cell as Excel, WPS, LibreOffice and openpyxl write it: r="A1" first.
_REF = re.compile(rb'<c r="([A-Z]{1,3})([0-9]{1,7})"')
_ODD_CELL = re.compile(rb'<c(?:[\t\r\n/>]| (?!r="[A-Z]{1,3}[0-9]{1,7}"))')
_PREFIXED_CELL = re.compile(rb"<[\w.-]+:c[\s/>]")
# The rewriter's tokens, and the attributes it reads.
_TAG = re.compile(rb"<(/?)((?:[\w.-]+:)?)(row|c|sheetData|worksheet)\b([^>]*?)(/?)>")
_CELL_R = re.compile(rb"\sr\s*=\s*[\"']([A-Z]+)([0-9]+)[\"']")
_ROW_R = re.compile(rb"\sr\s*=\s*[\"']([0-9]+)[\"']")
_TYPE_ERROR = re.compile(rb"\st\s*=\s*[\"']e[\"']")

ErrorCells = dict[tuple[int, int], str]  # (row, column), both 0-based -> error text
Numbered = Iterator[tuple[int, Sequence[Any]]]  # (row number in the file, cells)


@dataclass
class _Grid:
    """The sheet calamine loaded (or a large one in chunks), and how its rows map back to the
    file's."""

    sheet: CalamineSheet | ChunkedSheet
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (row read, row in the file)
    moved: dict[tuple[int, int], str] = field(default_factory=dict)  # (row, column) -> cell

    def rows(self, last: bool = False) -> Numbered:
        """The rows; last: the pass over them all (a chunked sheet reads ahead in a thread)."""
        if isinstance(self.sheet, ChunkedSheet):
            numbered: Numbered = self.sheet.numbered(ahead=last)
        else:
            numbered = enumerate(self.sheet.iter_rows(), start=1)
        return _renumbered(numbered, self.gaps) if self.gaps else numbered

    def close(self) -> None:
        if isinstance(self.sheet, ChunkedSheet):
            self.sheet.close()


def open_xlsx(path: Path, kind: str | None, file: str) -> SourceFile:
    scan = _scan(path)
    if scan is not None and scan.needs_copy():
        grid = _copied(path, scan.part, kind, file)
    elif scan is not None and scan.cells() > CHUNKED_CELLS:
        grid = _Grid(_chunked(path, scan.part, scan.right + 1, file))
    else:
        grid = _Grid(_first_sheet(path, file))
    header = read_header(_padded(grid.rows()), kind, file)
    errors = error_cells(path, scan.part) if scan is not None and scan.errors else {}
    return SourceFile(
        path=path,
        kind=header.kind,
        format="xlsx",
        encoding=None,
        columns=header.mapper.columns,
        ignored_columns=header.mapper.ignored,
        rows=_rows(grid, header, file, errors),
    )


def _first_sheet(path: Path | IO[bytes], file: str, empty: bool = False) -> CalamineSheet:
    try:
        if isinstance(path, Path):
            workbook = CalamineWorkbook.from_path(str(path))
        else:  # a chunk of a large sheet (xlsx_chunks)
            workbook = CalamineWorkbook.from_filelike(path)
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
    if sheet.start is None and not empty:  # iter_rows() on an empty range would panic
        raise source_error(file, 0, f"第一个工作表“{sheet.name}”是空的")
    return sheet


def _chunked(path: Path, part: str, width: int, file: str) -> CalamineSheet | ChunkedSheet:
    """A large sheet in chunks (xlsx_chunks), or whole when its XML cannot be cut safely."""
    try:
        with zipfile.ZipFile(path) as archive:
            workbook = _workbook_part(archive)
        sheet = split(path, workbook, part, width, _pieces,
                      lambda chunk: _first_sheet(chunk, file, empty=True))
    except Unsplittable:
        return _first_sheet(path, file)
    if sheet.start is None:
        sheet.close()
        raise source_error(file, 0, f"第一个工作表“{sheet.name}”是空的")
    return sheet


def _rows(grid: _Grid, header: Header, file: str, errors: ErrorCells) -> Iterator[SourceRow]:
    try:
        first = grid.sheet.start[1] if grid.sheet.start else 0
        rows = grid.rows(last=True)
        if errors:
            rows = _with_errors(rows, errors, first)
        merged = _merged_ranges(grid.sheet, header, first)
        if merged:
            rows = _with_merges(rows, merged, sorted(header.positions))
        # XLSX text may hold control characters (_x0000_ escapes): every value is checked. A
        # cell has no length limit of its own: the CSV reader's (headers.CELL_LIMIT) applies.
        yield from data_rows(rows, header, file, check=True, wide=_beyond(first, grid.moved),
                             limited=True, numbered=True)
    finally:
        grid.close()


def _renumbered(rows: Iterable[tuple[int, Sequence[Any]]], gaps: list[tuple[int, int]]) -> Numbered:
    offset = 0
    waiting = iter(gaps)
    upcoming = next(waiting, None)
    for number, cells in rows:
        if upcoming is not None and number >= upcoming[0]:
            offset = upcoming[1] - upcoming[0]
            upcoming = next(waiting, None)
        yield number + offset, cells


def _padded(rows: Numbered) -> Iterator[Sequence[Any]]:
    """Numbered rows as a plain sequence, a left-out row as an empty one (for the header scan,
    which reads the first rows only)."""
    expected = 1
    for number, cells in rows:
        while expected < number:
            yield []
            expected += 1
        yield cells
        expected += 1


def _beyond(first: int, moved: dict[tuple[int, int], str]) -> WideReason:
    """The reason for a row with a value beyond the header's last column, naming the cell."""

    def reason(number: int, cells: Sequence[Any], width: int) -> tuple[str, str]:
        i = next(i for i in range(width, len(cells)) if clean_value(cells[i]) is not None)
        cell = moved.get((number, first + i)) or f"{_letters(first + i)}{number}"
        value = cells[i].raw if isinstance(cells[i], BadValue) else header_text(cells[i])
        return (f"表头之外的单元格 {cell} 有值：表头只到 {_letters(first + width - 1)} 列，"
                "这个值不属于任何一列（请删除它，或为它所在的列加上列名）", raw_text(value))

    return reason


def _with_errors(rows: Numbered, errors: ErrorCells, first_column: int) -> Numbered:
    by_row: dict[int, list[tuple[int, str]]] = {}
    for (row, column), text in errors.items():
        by_row.setdefault(row + 1, []).append((column - first_column, text))
    for number, cells in rows:
        bad = by_row.get(number)
        if bad:
            cells = list(cells)
            for i, text in bad:
                if 0 <= i < len(cells):
                    cells[i] = BadValue(text, excel_error_reason(text))
        yield number, cells


# --- merged cells ------------------------------------------------------------------------------


def _merged_ranges(sheet: CalamineSheet | ChunkedSheet, header: Header,
                   first: int) -> list[tuple[int, int, int, int]]:
    """Merged ranges that start below the header, as (top, bottom, left, right): rows numbered
    from 1, columns as positions in a row, cut at the header's last column."""
    ranges = []
    for (top, left), (bottom, right) in sheet.merged_cell_ranges or ():
        left, right = left - first, min(right - first, header.width - 1)
        if top + 1 > header.row and 0 <= left <= right and bottom >= top:
            ranges.append((top + 1, bottom + 1, left, right))
    return sorted(ranges)


def _with_merges(rows: Numbered, ranges: list[tuple[int, int, int, int]],
                 read: list[int]) -> Numbered:
    """Each range's top-left value in all its cells, in rows with a value of their own under a
    read column (a blank row the range reaches into stays blank, as a 序号-only row does)."""
    waiting = iter(ranges)
    upcoming = next(waiting, None)
    active: list[tuple[int, int, int, Any]] = []  # (bottom, left, right, value)
    for number, cells in rows:
        while upcoming is not None and upcoming[0] <= number:
            top, bottom, left, right = upcoming
            value = cells[left] if top == number and left < len(cells) else None
            active.append((bottom, left, right, value))
            upcoming = next(waiting, None)
        if active:
            active = [merge for merge in active if merge[0] >= number]
            if active and has_value([cells[i] for i in read if i < len(cells)]):
                cells = list(cells)
                for _, left, right, value in active:
                    if len(cells) <= right:
                        cells.extend([""] * (right + 1 - len(cells)))
                    cells[left:right + 1] = [value] * (right + 1 - left)
        yield number, cells


# --- the scan ----------------------------------------------------------------------------------


@dataclass
class _Scan:
    """What one streamed read of the sheet's XML tells before calamine loads it."""

    part: str
    errors: bool = False  # it holds an error cell
    odd: bool = False  # a cell whose place this scan cannot tell (or beyond the usual)
    values: int = 0
    top: int = _MAX_ROW + 1
    bottom: int = 0
    left: int = 1 << 30
    right: int = -1
    _exact: int = 0  # bytes whose cells were placed one by one
    _outside: re.Pattern[bytes] | None = None  # after those: a cell outside what they spanned

    def feed(self, text: bytes) -> None:
        if not self.errors:
            self.errors = any(attr in text for attr in _ERROR_ATTRS)
        if self.odd:
            return
        self.values += text.count(b"</c>")  # a cell with content (an empty one is <c …/>)
        if b":c" in text and _PREFIXED_CELL.search(text):
            self.odd = True
        elif self._outside is None:
            self._place(text)
        elif self._outside.search(text):
            self.odd = True
        else:  # cells come row by row: the last one is the lowest
            last = _REF.match(text, max(text.rfind(b'<c r="'), 0))
            if last is not None:
                self.bottom = max(self.bottom, int(last[2]))

    def _place(self, text: bytes) -> None:
        if _ODD_CELL.search(text):
            self.odd = True
            return
        refs = _REF.findall(text)
        if refs:
            columns = [_column_index(letters) for letters in {letters for letters, _ in refs}]
            rows = [int(digits) for _, digits in refs]
            self.top, self.bottom = min(self.top, *rows), max(self.bottom, *rows)
            self.left, self.right = min(self.left, *columns), max(self.right, *columns)
        self._exact += len(text)
        if self._exact >= _EXACT_BYTES and self.bottom > HEADER_SCAN_ROWS:  # the header is in
            self._outside = _outside(self.right)

    def cells(self) -> int:
        """The cells of calamine's rectangle for the sheet, as far as the scan tells."""
        if self.right < 0:
            return 0
        return (self.bottom - self.top + 1) * (self.right - self.left + 1)

    def needs_copy(self) -> bool:
        if self.odd:
            return True
        if self.right < 0:
            return False  # no cell at all: calamine finds the sheet empty
        width = self.right - self.left + 1
        height = self.bottom - self.top + 1
        return width > _FAST_WIDTH or width * height > max(_DENSE_FLOOR, _SPARSE * self.values)


def _scan(path: Path) -> _Scan | None:
    try:
        with zipfile.ZipFile(path) as archive:
            part = _first_sheet_part(archive)
            if part is None:
                return None
            scan = _Scan(part)
            with archive.open(part) as stream:
                for text in _pieces(stream):
                    scan.feed(text)
            return scan
    except (OSError, zipfile.BadZipFile, KeyError, ElementTree.ParseError, EOFError):
        return None  # calamine says what is wrong with the file, or reads a layout this does not know


def _pieces(stream: IO[bytes]) -> Iterator[bytes]:
    """The stream read _CHUNK bytes at a time, in pieces that end after a tag: a tag is never
    split between two pieces (nor a cell reference or t="e" in it)."""
    carry = b""
    while chunk := stream.read(_CHUNK):
        text = carry + chunk if carry else chunk
        cut = text.rfind(b">") + 1
        if cut == 0:  # inside a long text: keep back only what may start a tag
            cut = max(0, len(text) - _TAG_MAX)
        if cut:
            yield text[:cut]
        carry = text[cut:]
    if carry:
        yield carry


def _outside(right: int) -> re.Pattern[bytes]:
    """A cell not in the usual form, right of column `right` or below row 1,048,576."""
    columns = _up_to(_letters(right), _ALPHABET)
    rows = _up_to(str(_MAX_ROW), "0123456789")
    return re.compile(rb'<c(?:[\t\r\n/>]| (?!r="(?:' + columns + rb")(?:" + rows + rb')"))')


def _up_to(last: str, alphabet: str) -> bytes:
    """A regex for the strings over alphabet that sort at or before last, shorter ones first
    (and tried first: the usual cell is one of them)."""
    any_char = f"[{alphabet[0]}-{alphabet[-1]}]"
    options = [f"{any_char}{{1,{len(last) - 1}}}"] if len(last) > 1 else []
    for i, char in enumerate(last):
        lower = alphabet[:alphabet.index(char)]
        if lower:
            rest = len(last) - i - 1
            options.append(f"{last[:i]}[{lower[0]}-{lower[-1]}]" + (f"{any_char}{{{rest}}}" if rest else ""))
    options.append(last)
    return "|".join(options).encode()


# --- the rewritten copy ------------------------------------------------------------------------


def _copied(path: Path, part: str, kind: str | None, file: str) -> _Grid:
    """The sheet read from a rewritten copy: first its title and header rows (whose header
    tells the last column), then the whole of it."""
    with tempfile.TemporaryDirectory(prefix="disclosure-xlsx-") as folder:
        probe = _Rewriter(file, last_row=HEADER_SCAN_ROWS)
        _write_copy(path, part, Path(folder, "probe.xlsx"), probe)
        sheet = _first_sheet(Path(folder, "probe.xlsx"), file, empty=True)
        rows = sheet.iter_rows() if sheet.start is not None else iter(())
        header = read_header(rows, kind, file)
        last_column = (sheet.start[1] if sheet.start else 0) + header.width - 1
        copy = _Rewriter(file, header_row=header.row, last_column=last_column)
        _write_copy(path, part, Path(folder, "sheet.xlsx"), copy)
        width = copy.right - copy.left + 1
        if copy.last_copy_row * width > _DENSE_LIMIT:
            cell = f"{_letters(last_column)}{header.row}"
            raise source_error(file, 0, f"第一个工作表太大，无法读取：表头行最后一个有值的单元格是 {cell}，"
                                        f"按此宽度去掉空行后仍有 {copy.last_copy_row:,} 行 × {width:,} 列；"
                                        "请删除远离数据的单元格后重新导出")
        sheet_copy = Path(folder, "sheet.xlsx")
        if copy.last_copy_row * width > CHUNKED_CELLS:
            return _Grid(_chunked(sheet_copy, part, copy.right + 1, file), copy.gaps, copy.moved)
        return _Grid(_first_sheet(sheet_copy, file), copy.gaps, copy.moved)


def _write_copy(path: Path, part: str, target: Path, rewriter: _Rewriter) -> None:
    """A copy of the workbook with the sheet rewritten; the parts calamine does not read for it
    (other sheets, pictures, macros) are left out."""
    folder = posixpath.dirname(part)
    with zipfile.ZipFile(path) as source, \
            zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as copy:
        for info in source.infolist():
            name = info.filename
            if name != part and (posixpath.dirname(name) == folder
                                 or not name.endswith((".xml", ".rels"))):
                continue
            with source.open(info) as stream, copy.open(name, "w", force_zip64=True) as sink:
                if name == part:
                    rewriter.copy(stream, sink)
                else:
                    shutil.copyfileobj(stream, sink, 1 << 20)


class _Rewriter:
    """Copies a sheet's XML, placing each cell as calamine does (r="A1", or the next place in
    its row) and writing every kept cell with its place: rows after a gap of _GAP or more empty
    rows move up (gaps records them), cells right of last_column are dropped, except in data
    rows the first of them, which moves just past it (moved records its place in the file)."""

    def __init__(self, file: str, last_row: int | None = None, header_row: int = 0,
                 last_column: int | None = None) -> None:
        self.file, self.last_row = file, last_row
        self.header_row, self.last_column = header_row, last_column
        self.gaps: list[tuple[int, int]] = []
        self.moved: dict[tuple[int, int], str] = {}
        self.last_file_row = self.last_copy_row = 0
        self.left, self.right = 1 << 30, -1
        self._out: IO[bytes] | None = None
        self._state = "head"  # head | data | tail | done
        self._end = b"</sheetData></worksheet>"
        self._row = 0  # calamine's row and column for a cell without r, 0-based
        self._column = 0
        self._cells: list[tuple[int, bytes, bytes]] = []  # (column, attributes, content)
        self._cells_row = 0  # the row of those cells (a cell's r may name another than its row's)
        self._cell: tuple[int, int, bytes] | None = None  # the open cell: row, column, attrs
        self._content: list[bytes] = []

    def copy(self, stream: IO[bytes], out: IO[bytes]) -> None:
        self._out = out
        for text in _pieces(stream):
            self._feed(text)
            if self._state == "done":
                out.write(self._end)
                return
        if self._state == "data":  # a truncated sheet: calamine says so
            self._flush()

    def _feed(self, text: bytes) -> None:
        assert self._out is not None
        done = 0  # text before this is handled
        for tag in _TAG.finditer(text):
            if self._state == "done":
                return
            closing, prefix, name, attrs, empty = tag.groups()
            if self._cell is not None:  # inside a cell only its end tag counts
                if closing and name == b"c":
                    self._content.append(text[done:tag.start()])
                    self._end_cell()
                    done = tag.end()
                continue
            if name in (b"worksheet", b"sheetData"):
                if name == b"worksheet" and not closing:
                    self._end = b"</" + prefix + b"sheetData></" + prefix + b"worksheet>"
                if name == b"sheetData" and self._state == "head":
                    self._out.write(text[done:tag.end()])
                    done = tag.end()
                    self._state = "tail" if empty else "data"
                elif name == b"sheetData" and self._state == "data":
                    self._flush()
                    self._state, done = "tail", tag.start()
                continue
            if self._state != "data":
                continue
            done = tag.end()  # between rows and cells: only white space
            if name == b"row" and not empty:
                if closing:
                    self._end_row()
                elif row := _ROW_R.search(attrs):
                    self._row = int(row[1]) - 1
            elif name == b"c" and not (empty or closing):  # <c/>: calamine skips it, place and all
                ref = _CELL_R.search(attrs)
                row, column = (int(ref[2]) - 1, _column_index(ref[1])) if ref else (
                    self._row, self._column)
                self._column = column + 1
                self._cell, self._content = (row, column, attrs), []
        if self._cell is not None:
            self._content.append(text[done:])
        elif self._state in ("head", "tail"):
            self._out.write(text[done:])

    def _end_cell(self) -> None:
        assert self._cell is not None
        row, column, attrs = self._cell
        self._cell = None
        if self._cells and row != self._cells_row:
            self._flush()
        self._cells_row = row
        self._cells.append((column, attrs, b"".join(self._content)))

    def _end_row(self) -> None:
        self._flush()
        self._row += 1
        self._column = 0

    def _flush(self) -> None:
        """Write the row's cells, if it has any."""
        if not self._cells or self._state == "done":
            return
        number = self._cells_row + 1
        cells, self._cells = self._cells, []
        if self.last_row is not None and number > self.last_row:
            self._state = "done"
            return
        if number <= self.last_file_row:
            raise source_error(self.file, 0, f"不是有效的 XLSX 文件：第 {number} 行写在第 "
                                             f"{self.last_file_row} 行之后")
        cells = self._kept(number, cells)
        copy = self._copy_row(number)
        assert self._out is not None
        self._out.write(b'<row r="%d">' % copy)
        for column, attrs, content in cells:
            self.left, self.right = min(self.left, column), max(self.right, column)
            ref = f"{_letters(column)}{copy}".encode()
            self._out.write(b'<c r="' + ref + b'"' + _CELL_R.sub(b"", attrs) + b">" + content + b"</c>")
        self._out.write(b"</row>")

    def _kept(self, number: int, cells: list[tuple[int, bytes, bytes]]) -> list[tuple[int, bytes, bytes]]:
        last = self.last_column
        if last is None or all(column <= last for column, _, _ in cells):
            return cells
        kept = [cell for cell in cells if cell[0] <= last]
        if number > self.header_row:
            column, attrs, content = min(cell for cell in cells if cell[0] > last)
            self.moved[(number, last + 1)] = f"{_letters(column)}{number}"
            # an error cell would read as blank there: its error text shows instead
            kept.append((last + 1, _TYPE_ERROR.sub(b' t="str"', attrs), content))
        return kept

    def _copy_row(self, number: int) -> int:
        gap = number - self.last_file_row - 1
        if gap >= _GAP:
            copy = self.last_copy_row + 1
            self.gaps.append((copy, number))
        else:
            copy = self.last_copy_row + gap + 1
        self.last_file_row, self.last_copy_row = number, copy
        return copy


# --- error cells and the sheet's part ----------------------------------------------------------


def error_cells(path: Path, part: str) -> ErrorCells:
    """The error cells of the first sheet (t="e" in its XML), which calamine reads as blank.
    Streamed: the XML is searched a piece at a time, each cut after a cell's end tag."""
    cells: ErrorCells = {}
    try:
        with zipfile.ZipFile(path) as archive, archive.open(part) as stream:
            carry = b""
            for piece in _pieces(stream):
                text = carry + piece
                cut = _after_last_cell(text)
                _add_error_cells(text[:cut], cells)
                carry = text[cut:]
            _add_error_cells(carry, cells)
    except (OSError, zipfile.BadZipFile, KeyError, EOFError):
        return {}
    return cells


def _after_last_cell(text: bytes) -> int:
    """The position after the last cell end tag in text (0 if none)."""
    at = len(text)
    while (at := text.rfind(b"c>", 0, at)) > 0:
        end = _CELL_END.match(text, text.rfind(b"<", 0, at))
        if end is not None and end.end() == at + 2:
            return at + 2
    return 0


def _add_error_cells(xml: bytes, cells: ErrorCells) -> None:
    for match in _ERROR_CELL.finditer(xml):
        attrs, content = match.groups()
        ref = _CELL_REF.search(attrs)
        value = _VALUE.search(content)
        if ref is None or attrs.endswith(b"/"):
            continue
        text = value[1].decode("utf-8", errors="replace") if value else "#错误"
        cells[(int(ref[2]) - 1, _column_index(ref[1]))] = text


def _first_sheet_part(archive: zipfile.ZipFile) -> str | None:
    """The zip member of the first sheet in the workbook's order (the one calamine reads)."""
    workbook = _workbook_part(archive)
    sheets = ElementTree.fromstring(archive.read(workbook)).iter(_SHEET)
    first = next(sheets, None)
    if first is None:
        return None
    folder, name = posixpath.split(workbook)
    rels = posixpath.join(folder, "_rels", name + ".rels")
    return _target(archive, rels, folder, lambda rel: rel.get("Id") == first.get(_R_ID))


def _workbook_part(archive: zipfile.ZipFile) -> str:
    return _target(archive, "_rels/.rels", "", lambda rel: rel.get("Type", "").endswith(
        _OFFICE_DOCUMENT)) or "xl/workbook.xml"


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


def _letters(column: int) -> str:
    """The letters of a 0-based column (0 -> A, 16383 -> XFD)."""
    letters = ""
    column += 1
    while column:
        column, rest = divmod(column - 1, 26)
        letters = _ALPHABET[rest] + letters
    return letters
