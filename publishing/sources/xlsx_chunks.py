"""A large sheet read a part at a time: calamine holds a sheet whole (32 bytes a cell, and every
shared string of the workbook), 1.5 GB for a million rows of 16 columns.

When the file is opened, the sheet's XML is cut between rows into chunks of about CHUNK_CELLS
cells, each made a workbook of its own: the parts of the workbook calamine reads, the chunk's
rows keeping their numbers (<row r="...">, <c r="...">), and a sharedStrings part with only
the strings its cells use, their indexes renumbered (the workbook's strings are copied once to
a temporary file, with where each one starts). The chunk workbooks lie one after the other in
a temporary file unlinked from the start: nothing outlives a killed process, and a forked
process that reads the rows (a large file's cleaning process) keeps it as long as it needs it.
They are stored uncompressed (about the size of the sheet's XML): compressing took longer than
anything else here.

While the next chunk is cut, one thread writes a chunk to that file and another has calamine
read it (calamine releases the GIL): a sheet calamine cannot read is refused when the file is
opened, as before, and where each chunk's cells start is known. calamine's rows start at the
sheet's first column with a value; a chunk starting right of it is padded to it. The last
chunk holds the sheet's tail, with its merged ranges. The rows are then read a chunk at a time
(the next one read ahead in a thread), each released before the next.

A sheet whose XML the cuts cannot follow safely (comments, CDATA, shared-string cells not in
a form recognised here) raises Unsplittable: the caller reads it whole.
"""

from __future__ import annotations

import bisect
import io
import itertools
import operator
import os
import posixpath
import re
import tempfile
import zipfile
from array import array
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from python_calamine import CalamineSheet

# A sheet whose rectangle has more cells than this is read in chunks (whole, it costs 64 MB and
# more, its strings aside) ...
CHUNKED_CELLS = 1 << 21
# ... of about this many cells each (2 MB; the chunk's XML, its workbook, calamine's parse and
# the values as Python objects take ~20 times that, a larger chunk more than in proportion).
CHUNK_CELLS = 1 << 16

Pieces = Callable[[IO[bytes]], Iterator[bytes]]  # a stream in pieces that end after a tag
OpenSheet = Callable[[IO[bytes]], CalamineSheet]  # the first sheet of a workbook
Merged = list[tuple[tuple[int, int], tuple[int, int]]]
Start = tuple[int, int] | None  # where a chunk's cells start (row, column), 0-based

_UNSAFE = b"<!"  # <!-- and <![CDATA[: text with tags in it, which the cuts would take for tags
_SHEET_DATA = re.compile(rb"<((?:[\w.-]+:)?)sheetData\b[^>]*?(/?)>")
_SHEET_DATA_END = re.compile(rb"</(?:[\w.-]+:)?sheetData\s*>")
_WORKSHEET = re.compile(rb"<((?:[\w.-]+:)?)worksheet\b")
_ROW_START = re.compile(rb"<(?:[\w.-]+:)?row[\s/>]")
_CELL = re.compile(rb'<c r="[A-Z]{1,3}([0-9]{1,7})"')
# A shared-string cell's index, as Excel, WPS, LibreOffice, openpyxl and xlsxwriter write it
# (t last); else with other attributes after t (slower: the tag's end is kept apart).
_SHARED = re.compile(rb'(?:t="s"><v>)([0-9]+)(?=</v>)')
_SHARED_ANY = re.compile(rb'(t="s"(?:\s[^>]*)?><v>)([0-9]+)(?=</v>)')
_TYPE_S = b't="s"'
_ODD_TYPE = b"t='s'"  # t="s" as the patterns above miss it (spaces around = are not looked for)
_STRING_ROOT = re.compile(rb"<((?:[\w.-]+:)?)sst\b")
_STRING_ROOT_END = re.compile(rb"</(?:[\w.-]+:)?sst\s*>")


class Unsplittable(Exception):
    """The sheet's XML holds what the cuts cannot follow safely: it is read whole."""


@dataclass(frozen=True)
class _Chunk:
    offset: int  # of its workbook in the store
    size: int
    start: Start
    name: str  # the sheet's
    merged: Merged  # the sheet's merged ranges (known from the last chunk)


class ChunkedSheet:
    """The sheet in chunk workbooks, standing in for calamine's sheet: start, name and
    merged_cell_ranges as calamine gives them for the whole sheet; numbered() its rows."""

    def __init__(self, store: IO[bytes], chunks: list[_Chunk], open_sheet: OpenSheet) -> None:
        self._store, self._chunks, self._open_sheet = store, chunks, open_sheet
        self.name = chunks[0].name
        self.merged_cell_ranges = chunks[-1].merged
        placed = [chunk.start for chunk in chunks if chunk.start is not None]
        self.start = (min(s[0] for s in placed), min(s[1] for s in placed)) if placed else None

    def numbered(self, ahead: bool = False) -> Iterator[tuple[int, list[Any]]]:
        """(row number, cells) for each row in a chunk's range, its cells from the sheet's first
        column on (as calamine gives the rows of the whole sheet, from its first row). ahead:
        calamine reads the next chunk in a thread meanwhile (it releases the GIL)."""
        first = self.start[1] if self.start else 0
        chunks = [chunk for chunk in self._chunks if chunk.start is not None]
        for chunk, loading in _ahead(chunks, self._load, ahead):
            sheet = loading.result()  # it could be read when the file was opened
            rows = sheet.to_python(skip_empty_area=True)
            del sheet, loading  # before the next chunk's
            pad = [""] * (chunk.start[1] - first)
            rows.reverse()  # popped from the end: each row is freed once used
            number = chunk.start[0]
            while rows:
                number += 1
                cells = rows.pop()
                yield number, pad + cells if pad else cells

    def close(self) -> None:
        self._store.close()

    def _load(self, chunk: _Chunk) -> CalamineSheet:
        return self._open_sheet(
            io.BytesIO(os.pread(self._store.fileno(), chunk.size, chunk.offset))
        )


def _ahead(
    items: list[_Chunk], load: Callable[[_Chunk], CalamineSheet], ahead: bool
) -> Iterator[tuple[_Chunk, Future[CalamineSheet]]]:
    """Each item with its load, started one item ahead in a thread if ahead."""
    if not ahead:
        for item in items:
            done: Future[CalamineSheet] = Future()
            done.set_result(load(item))
            yield item, done
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="xlsx-chunks") as pool:
        loading = [pool.submit(load, items[0])] if items else []
        for i, item in enumerate(items):
            if i + 1 < len(items):
                loading.append(pool.submit(load, items[i + 1]))
            yield item, loading.pop(0)


def split(
    path: Path, workbook: str, part: str, width: int, pieces: Pieces, open_sheet: OpenSheet
) -> ChunkedSheet:
    """The sheet (zip member part, of at most width columns) in chunks; Unsplittable when its
    XML holds what the cuts cannot follow safely, open_sheet's error when calamine cannot read
    a chunk."""
    store = tempfile.TemporaryFile(prefix="disclosure-xlsx-")  # noqa: SIM115 (ChunkedSheet's)
    try:
        with (
            zipfile.ZipFile(path) as archive,
            _Packer(archive, workbook, part, store, pieces, open_sheet) as packer,
        ):
            with archive.open(part) as stream:
                for sheet, last in _sheets(pieces(stream), max(1, CHUNK_CELLS // width)):
                    packer.add(sheet, last)
            chunks = packer.chunks()
    except BaseException:
        store.close()
        raise
    return ChunkedSheet(store, chunks, open_sheet)


# --- cutting the sheet -------------------------------------------------------------------------


def _sheets(pieces: Iterable[bytes], rows: int) -> Iterator[tuple[list[bytes], bool]]:
    """The sheet's XML as chunks of whole rows: [its head, rows, an end], and whether it is the
    last chunk (which ends with the sheet's own tail)."""
    head, prefix, texts = _head(iter(pieces))
    root = _WORKSHEET.search(head)
    end = b"</" + prefix + b"sheetData></" + (root[1] if root else prefix) + b"worksheet>"
    row_ends = _RowEnds(prefix)
    pending: list[bytes] = []  # the rows of the chunk not yet complete
    counted = 0
    for text in texts:
        _check_safe(text)
        tail = _SHEET_DATA_END.search(text) if b"sheetData" in text else None
        body = text[: tail.start()] if tail else text
        while (cut := row_ends.after(body, rows - counted)) is not None:
            pending.append(body[:cut])
            yield from _within_span(head, b"".join(pending), end, rows)
            pending, counted, body = [], 0, body[cut:]
        pending.append(body)
        counted += row_ends.count(body)
        if tail:
            tail_text = text[tail.start() :] + b"".join(texts)
            yield from _within_span(head, b"".join(pending), end, rows, tail_text)
            return
    raise Unsplittable  # no </sheetData>: calamine says what is wrong


def _head(pieces: Iterator[bytes]) -> tuple[bytes, bytes, Iterator[bytes]]:
    """The sheet's XML up to its <sheetData>, the tags' prefix, and the pieces after it."""
    seen: list[bytes] = []
    for text in pieces:
        seen.append(text)
        joined = b"".join(seen)
        data = _SHEET_DATA.search(joined)
        if data is None:
            continue
        _check_safe(joined)
        if data[2]:
            raise Unsplittable  # <sheetData/>: an empty sheet, nothing to cut
        return joined[: data.end()], data[1], _prepended(joined[data.end() :], pieces)
    raise Unsplittable


def _check_safe(text: bytes) -> None:
    if b"!" in text and _UNSAFE in text:  # (a byte is found faster than two)
        raise Unsplittable


def _prepended(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


class _RowEnds:
    """A row's end tag, </row> (or with the sheet's prefix): counted fast, found when a chunk
    is complete."""

    def __init__(self, prefix: bytes) -> None:
        self.tags = [b"</row>"] + ([b"</" + prefix + b"row>"] if prefix else [])
        self._pattern = re.compile(b"|".join(re.escape(tag) for tag in self.tags))

    def count(self, text: bytes) -> int:
        return sum(text.count(tag) for tag in self.tags)

    def after(self, text: bytes, n: int) -> int | None:
        """The position just after the n-th row end in text, None if it has fewer."""
        if self.count(text) < n:
            return None
        found = next(itertools.islice(self._pattern.finditer(text), n - 1, None))
        return found.end()


def _within_span(
    head: bytes, text: bytes, end: bytes, rows: int, tail: bytes | None = None
) -> Iterator[tuple[list[bytes], bool]]:
    """A chunk of whole rows (the last one ending with the sheet's tail), cut again where its
    row numbers leap: calamine's rectangle runs from its first row to its last."""
    start = 0
    first = _CELL.search(text)
    last = _CELL.match(text, max(text.rfind(b'<c r="'), 0))
    if first and last and int(last[1]) - int(first[1]) >= 2 * rows:
        top = int(first[1])
        for row in _ROW_START.finditer(text):
            cell = _CELL.search(text, row.end())
            if cell is not None and int(cell[1]) - top >= rows and row.start() > start:
                yield [head, text[start : row.start()], end], False
                start, top = row.start(), int(cell[1])
    yield [head, text[start:], end if tail is None else tail], tail is not None


# --- the chunk workbooks -----------------------------------------------------------------------


class _Packer:
    """Makes each chunk a workbook: the parts of the workbook calamine reads (its sheets, their
    relationships, the styles that tell dates), the chunk's sheet and its shared strings. While
    the next chunk is cut, a thread writes a chunk to the store and another has calamine read it
    (waiting for the one two back keeps at most four chunks in memory)."""

    def __init__(
        self,
        archive: zipfile.ZipFile,
        workbook: str,
        part: str,
        store: IO[bytes],
        pieces: Pieces,
        open_sheet: OpenSheet,
    ) -> None:
        home = posixpath.dirname(workbook)
        wanted = {
            "[Content_Types].xml",
            "_rels/.rels",
            workbook,
            posixpath.join(home, "_rels", posixpath.basename(workbook) + ".rels"),
            posixpath.join(home, "styles.xml"),
        }
        names = set(archive.namelist())
        self._parts = {name: archive.read(name) for name in sorted(wanted & names)}
        self._sheet_part = part
        self._strings_part = posixpath.join(home, "sharedStrings.xml")  # where calamine looks
        self._strings: _SharedStrings | None = None
        if self._strings_part in names:
            with archive.open(self._strings_part) as stream:
                self._strings = _SharedStrings(stream, pieces)
        self._store, self._open_sheet = store, open_sheet
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xlsx-chunks")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xlsx-chunks")
        self._read: list[Future[_Chunk]] = []

    def __enter__(self) -> _Packer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.shutdown(wait=True, cancel_futures=True)
        self._reader.shutdown(wait=True, cancel_futures=True)
        if self._strings is not None:
            self._strings.close()

    def add(self, sheet: list[bytes], last: bool) -> None:
        strings: list[bytes] | None = None
        if self._strings is not None:
            sheet, strings = self._strings.renumbered(sheet)
        if len(self._read) >= 2:
            self._read[-2].result()  # read (or not readable: stop here)
        written = self._writer.submit(self._write, sheet, strings)
        self._read.append(self._reader.submit(self._check, written, last))

    def chunks(self) -> list[_Chunk]:
        return [read.result() for read in self._read]

    def _write(
        self, sheet: list[bytes], strings: list[bytes] | None
    ) -> tuple[int, int, io.BytesIO]:
        """The chunk's workbook, appended to the store: where, its size, and it."""
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as chunk:
            for name, data in self._parts.items():
                chunk.writestr(name, data)
            for name, texts in ((self._strings_part, strings), (self._sheet_part, sheet)):
                if texts is not None:
                    with chunk.open(name, "w", force_zip64=True) as sink:
                        for text in texts:
                            sink.write(text)
        offset = self._store.seek(0, os.SEEK_END)
        with out.getbuffer() as data:
            self._store.write(data)
        self._store.flush()
        size = out.tell()
        out.seek(0)
        return offset, size, out

    def _check(self, written: Future[tuple[int, int, io.BytesIO]], last: bool) -> _Chunk:
        """calamine's reading of the chunk: where its cells start (and the sheet's name, its
        merged ranges from the last chunk); open_sheet's error if it cannot read it."""
        offset, size, out = written.result()
        sheet = self._open_sheet(out)
        merged = list(sheet.merged_cell_ranges or ()) if last else []
        return _Chunk(offset, size, sheet.start, sheet.name, merged)


class _SharedStrings:
    """The workbook's shared strings, copied to an unlinked temporary file with where each one
    starts: a chunk gets those its cells use, in their order (a run of them is one read), its
    cells their places in that part."""

    def __init__(self, stream: IO[bytes], pieces: Pieces) -> None:
        self._file = tempfile.TemporaryFile(prefix="disclosure-xlsx-")  # noqa: SIM115 (close())
        try:
            self._copy(stream, pieces)
        except BaseException:
            self._file.close()
            raise

    def _copy(self, stream: IO[bytes], pieces: Pieces) -> None:
        self._starts = array("Q")  # each <si>'s offset in the file, then the end of the last
        written, end, item = 0, -1, b""
        for text in pieces(stream):
            _check_safe(text)
            if not item and (root := _STRING_ROOT.search(text)):
                item = b"<" + root[1] + b"si"
            if item:
                self._starts.extend(_offsets(text, item, written))
            if b"sst" in text and (closing := _STRING_ROOT_END.search(text)):
                end = written + closing.start()
            self._file.write(text)
            written += len(text)
        if end < 0:
            raise Unsplittable  # no </sst>: calamine says what is wrong
        self._file.flush()
        self.count = len(self._starts)
        self._head = self._read(0, self._starts[0] if self._starts else end)
        self._starts.append(end)
        self._tail = self._read(end, written)

    def renumbered(self, sheet: list[bytes]) -> tuple[list[bytes], list[bytes]]:
        """The chunk's XML with its string indexes renumbered, and its sharedStrings part."""
        cells = [_shared_cells(text) for text in sheet]
        indexes: set[bytes] = set()
        for parts, step in cells:
            indexes.update(parts[step - 1 :: step])
        ordered = sorted(indexes, key=int)
        # An index beyond the table stays as it is: calamine refuses it as it did.
        values = list(map(int, ordered[: bisect.bisect_left(ordered, self.count, key=int)]))
        wanted, ranks = values, list(range(len(values)))
        if len(set(values)) != len(values):  # one index written two ways (7, 007)
            wanted = sorted(set(values))
            ranks = [bisect.bisect_left(wanted, value) for value in values]
        out = []
        for text, (parts, step) in zip(sheet, cells, strict=True):
            if len(parts) > 1:
                new = _new_indexes(ordered, ranks, step)
                parts[step - 1 :: step] = map(new.__getitem__, parts[step - 1 :: step])
                text = b"".join(parts)
            out.append(text)
        return out, [self._head, *self._runs(wanted), self._tail]

    def _runs(self, wanted: list[int]) -> Iterator[bytes]:
        """The wanted strings' XML (ascending, no repeats), one read a run of consecutive ones."""
        steps = list(map(operator.sub, wanted, range(len(wanted))))  # equal along a run
        i = 0
        while i < len(wanted):
            j = bisect.bisect_right(steps, steps[i], i)
            yield self._read(self._starts[wanted[i]], self._starts[wanted[j - 1] + 1])
            i = j

    def _read(self, start: int, end: int) -> bytes:
        return os.pread(self._file.fileno(), end - start, start)

    def close(self) -> None:
        self._file.close()


def _offsets(text: bytes, item: bytes, at: int) -> Iterator[int]:
    """Where each <si> (item) starts in text, which starts at offset at; Unsplittable if a tag
    only begins so (SpreadsheetML has no other element whose name starts with si)."""
    parts = text.split(item)
    found = len(parts) - 1
    if found != text.count(item + b">") and found != sum(
        text.count(item + after) for after in (b">", b"/", b" ", b"\t", b"\r", b"\n")
    ):
        raise Unsplittable
    before = itertools.accumulate(map(len, parts[:-1]))  # the text before each, less the items
    return map(operator.add, before, range(at, at + len(item) * found, len(item)))


def _shared_cells(text: bytes) -> tuple[list[Any], int]:
    """text split around its shared-string indexes: (parts, step), every step-th part an index
    (step 2: t="s"><v> taken out before each; step 3: the tag's end before each, kept)."""
    parts = _SHARED.split(text)
    count = text.count(_TYPE_S)
    step = 2
    if len(parts) // 2 != count:
        parts, step = _SHARED_ANY.split(text), 3
        if len(parts) // 3 != count:
            raise Unsplittable  # t="s" elsewhere, or an index not right in <v>
    if _ODD_TYPE in text:
        raise Unsplittable
    return parts, step


def _new_indexes(ordered: list[bytes], ranks: list[int], step: int) -> dict[bytes, bytes]:
    """Each index as written (ascending) to the one it gets, by rank; those past the ranks are
    not in the table and stay as they are."""
    prefix = b't="s"><v>' if step == 2 else b""
    new = dict(zip(ordered, map(prefix.__add__, map(b"%d".__mod__, ranks)), strict=False))
    new.update(zip(ordered[len(ranks) :], map(prefix.__add__, ordered[len(ranks) :]), strict=True))
    return new
