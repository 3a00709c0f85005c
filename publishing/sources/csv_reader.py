"""CSV (and .txt) sources: UTF-8 with or without BOM, else GB18030; streamed row by row."""

from __future__ import annotations

import codecs
import csv
import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from publishing.rows import SourceFile, SourceRow
from publishing.sources.headers import (
    CELL_LIMIT,
    R_CELL_TOO_LONG,
    RAW_WINDOW,
    raw_text,
    source_error,
)
from publishing.sources.table import (
    CellError,
    Cells,
    Header,
    data_rows,
    find_header_row,
    read_header,
)

_CHUNK = 1 << 20
# Tried in order: the contract's UTF-8-then-GB18030 rule (GB18030 is a superset of GBK).
_ENCODINGS = ("utf-8-sig", "gb18030")
# Comma first; tab for "text" exports. The one that yields a header row wins.
_DELIMITERS = (",", "\t")
# Bytes other than the control characters (tab and line breaks count as text). In UTF-8 and
# GB18030 a byte below 0x20 or 0x7F is never part of a multi-byte character.
_NOT_CONTROL = bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100)) + b"\t\n\r"
# Where a Unicode noncharacter (headers._CONTROLS: XML cannot carry U+FFFE/U+FFFF) can be in
# UTF-8: U+FDD0–U+FDEF start EF B7, U+FFFE/U+FFFF and those of the other planes end BF BE / BF BF.
# A loose test (a few CJK characters end so too): it only has the values checked one by one.
_NONCHARACTER_HINTS = (b"\xef\xb7", b"\xbf\xbe", b"\xbf\xbf")
# The csv module's messages (strict mode) and what they mean to the person fixing the file.
_UNCLOSED = "unexpected end of data"
_AFTER_QUOTE = "expected after '\"'"
_TOO_LONG = "field larger than field limit"
# The module's default: set all the same, as JSON values are held to CELL_LIMIT too.
csv.field_size_limit(CELL_LIMIT)


def open_csv(path: Path, kind: str | None, file: str) -> SourceFile:
    encoding, controls = _encoding(path, file)
    header, delimiter = _header(path, encoding, kind, file)
    return SourceFile(
        path=path,
        kind=header.kind,
        format="csv",
        encoding=encoding,
        columns=header.mapper.columns,
        ignored_columns=header.mapper.ignored,
        rows=_rows(path, encoding, delimiter, header, file, controls),
    )


def detect_encoding(path: Path, file: str) -> str:
    """Trial-decode the whole file chunk by chunk (flat memory): UTF-8 if it all decodes."""
    return _encoding(path, file)[0]


def _encoding(path: Path, file: str) -> tuple[str, bool]:
    """The encoding, and whether the file may hold control characters (then its values are
    checked one by one; the byte scan rides along with the trial decoding)."""
    with path.open("rb") as stream:
        utf16 = stream.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    if utf16:  # Excel's "Unicode text" export; beyond the contract
        if _decodes(path, "utf-16") is None:  # else a UnicodeDecodeError midway through the rows
            raise source_error(file, 0, "文件编码错误：以 UTF-16 标记开头，但不是完整的 UTF-16 文本"
                                        "（可能被截断或已损坏）")
        return "utf-16", True
    for encoding in _ENCODINGS:
        controls = _decodes(path, encoding)
        if controls is not None:
            return encoding, controls
    raise source_error(file, 0, "无法识别文件编码：既不是 UTF-8 也不是 GB18030/GBK")


def _decodes(path: Path, encoding: str) -> bool | None:
    """None when the file does not decode; else whether it may hold a control character or a
    noncharacter. Only UTF-8 is scanned for the latter: a GB18030 file's values are all checked
    (its 4-byte sequences carry any code point)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    controls = not encoding.startswith("utf-8")
    tail = b""  # the end of the chunk before: a hint may straddle two
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                decoder.decode(chunk)
                controls = controls or bool(chunk.translate(None, _NOT_CONTROL))
                controls = controls or any(h in tail + chunk[:2] or h in chunk
                                           for h in _NONCHARACTER_HINTS)
                tail = chunk[-2:]
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    return controls


def _header(path: Path, encoding: str, kind: str | None, file: str) -> tuple[Header, str]:
    delimiter = _delimiter(path, encoding, kind)
    with path.open(encoding=encoding, newline="") as stream, _RawLines(path, encoding) as raw:
        return read_header(_cells(stream, delimiter, raw), kind, file), delimiter


def _delimiter(path: Path, encoding: str, kind: str | None) -> str:
    """The first delimiter under which a header row shows up (comma when none does)."""
    for delimiter in _DELIMITERS:
        with path.open(encoding=encoding, newline="") as stream, _RawLines(path, encoding) as raw:
            if find_header_row(_cells(stream, delimiter, raw), kind) is not None:
                return delimiter
    return _DELIMITERS[0]


def _rows(
    path: Path, encoding: str, delimiter: str, header: Header, file: str, controls: bool
) -> Iterator[SourceRow]:
    # A generator: the file is opened on the first next() and closed when exhausted or closed.
    with path.open(encoding=encoding, newline="") as stream, _RawLines(path, encoding) as raw:
        yield from data_rows(_cells(stream, delimiter, raw), header, file, check=controls, wide=True)


def _cells(stream: Iterable[str], delimiter: str, raw: _RawLines) -> Iterator[Cells]:
    """One item per spreadsheet row (so numbering matches Excel); CellError for a broken row.

    Strict: a quote the csv module would silently drop or a quoted field that never closes
    (which swallows every row after it) is an error, never a row that reads differently.
    After any error the csv module drops the rest of the line and starts afresh on the next,
    which may be inside a quoted field of the broken row (a field too long, or one opened
    after a stray character: "甲"x,"多行…): the row is read to its end as a spreadsheet reads
    it and passed over, so it is one broken row and the rows after it keep their numbers."""
    lines = iter(stream)
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    skipped = 0  # lines passed over outside the reader
    while True:
        first = reader.line_num + skipped + 1
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            last = reader.line_num + skipped
            text, end, closed = raw.record(first, last, delimiter)
            skipped += sum(1 for _ in itertools.islice(lines, end - last))
            yield CellError(_csv_reason(str(error), first, end, closed), text)


def _csv_reason(message: str, first: int, last: int, closed: bool) -> str:
    """closed: whether the row ends (else a quoted field in it goes on to the end, line last)."""
    unclosed = (f"从本行（文件第{first}行）起到文件末尾（第{last}行）都被读成了同一个字段，"
                "这些行都无法读取；请检查本行的引号")
    if _AFTER_QUOTE in message:
        reason = ("CSV 格式错误：引号用法错误：引号括起的字段在右引号之后还有其他字符"
                  "（字段内的引号应写作两个引号 \"\"）")
        return reason if closed else f"{reason}；其后又有引号未闭合：{unclosed}"
    if _UNCLOSED in message or not closed:
        return f"CSV 格式错误：引号未闭合：{unclosed}"
    if _TOO_LONG in message:
        return f"CSV 格式错误：{R_CELL_TOO_LONG}"
    return f"CSV 格式错误：{message}"


class _RawLines:
    """The text of broken rows, for the report: physical lines read from a second handle that
    is opened at the first broken row and only moves forward (no cost for a sound file)."""

    def __init__(self, path: Path, encoding: str) -> None:
        self._path, self._encoding = path, encoding
        self._stream: TextIO | None = None
        self._next = 1  # the line the stream is at

    def record(self, first: int, last: int, delimiter: str) -> tuple[str, int, bool]:
        """The text of the row that starts at line first and goes on at least to line last,
        its last line, and whether it ends (False: a quoted field goes on to the end of the
        file). Read as the csv module does, line by line (memory stays flat)."""
        raw, quoted, number = _Text(), False, first - 1
        for number, line in enumerate(self._from(first), start=first):
            raw.add(line)
            quoted = _ends_quoted(line, delimiter, quoted)
            if number >= last and not quoted:
                break
        number = max(number, last)  # (nothing read: an earlier row's text went past first)
        self._next = number + 1
        return raw.text(), number, not quoted

    def _from(self, first: int) -> Iterator[str]:
        if self._stream is None:
            self._stream = self._path.open(encoding=self._encoding, newline="")
        skip = first - self._next
        if skip < 0:
            return iter(())
        return itertools.islice(self._stream, skip, None)

    def __enter__(self) -> _RawLines:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stream is not None:
            self._stream.close()


class _Text:
    """Lines of a broken row, kept up to what raw_text masks (an unclosed quote may reach to
    the end of a large file)."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._size = 0

    def add(self, line: str) -> None:
        if self._size <= RAW_WINDOW:
            self._parts.append(line)
            self._size += len(line)

    def text(self) -> str:
        return raw_text("".join(self._parts))


def _ends_quoted(line: str, delimiter: str, quoted: bool) -> bool:
    """Whether a line ends inside a quoted field (its row goes on), given whether it starts
    in one; the csv module's reading, a field at a time (str.find, not a loop per character).
    A stray character after a closing quote is taken as part of the field."""
    i, end = 0, len(line)
    while True:
        if quoted:
            close = line.find('"', i)
            if close < 0:
                return True
            if line.startswith('"', close + 1):  # "" inside quotes
                i = close + 2
                continue
            quoted, i = False, close + 1
        elif line.startswith('"', i):  # a field opening with a quote
            quoted, i = True, i + 1
            continue
        comma = line.find(delimiter, i)  # the field (or what follows its quote) ends
        if comma < 0:
            return False
        i = comma + 1
        if i >= end:
            return False
