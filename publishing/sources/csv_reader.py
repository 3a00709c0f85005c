"""CSV (and .txt) sources: UTF-8 with or without BOM, else GB18030; streamed row by row."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable, Iterator
from pathlib import Path

from publishing.rows import SourceFile, SourceRow
from publishing.sources.headers import source_error
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


def open_csv(path: Path, kind: str | None, file: str) -> SourceFile:
    encoding = detect_encoding(path, file)
    header, delimiter = _header(path, encoding, kind, file)
    return SourceFile(
        path=path,
        kind=header.kind,
        format="csv",
        encoding=encoding,
        columns=header.mapper.columns,
        ignored_columns=header.mapper.ignored,
        rows=_rows(path, encoding, delimiter, header, file),
    )


def detect_encoding(path: Path, file: str) -> str:
    """Trial-decode the whole file chunk by chunk (flat memory): UTF-8 if it all decodes."""
    with path.open("rb") as stream:
        if stream.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            return "utf-16"  # Excel's "Unicode text" export; beyond the contract, but unambiguous
    for encoding in _ENCODINGS:
        if _decodes(path, encoding):
            return encoding
    raise source_error(file, 0, "无法识别文件编码：既不是 UTF-8 也不是 GB18030/GBK")


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _header(path: Path, encoding: str, kind: str | None, file: str) -> tuple[Header, str]:
    delimiter = _delimiter(path, encoding, kind)
    with path.open(encoding=encoding, newline="") as stream:
        return read_header(_cells(stream, delimiter), kind, file), delimiter


def _delimiter(path: Path, encoding: str, kind: str | None) -> str:
    """The first delimiter under which a header row shows up (comma when none does)."""
    for delimiter in _DELIMITERS:
        with path.open(encoding=encoding, newline="") as stream:
            if find_header_row(_cells(stream, delimiter), kind) is not None:
                return delimiter
    return _DELIMITERS[0]


def _rows(
    path: Path, encoding: str, delimiter: str, header: Header, file: str
) -> Iterator[SourceRow]:
    # A generator: the file is opened on the first next() and closed when exhausted or closed.
    with path.open(encoding=encoding, newline="") as stream:
        yield from data_rows(_cells(stream, delimiter), header, file)


def _cells(stream: Iterable[str], delimiter: str) -> Iterator[Cells]:
    """One item per spreadsheet row (so numbering matches Excel); CellError for a broken row."""
    reader = csv.reader(stream, delimiter=delimiter)
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield CellError(f"CSV 格式错误：{error}")
