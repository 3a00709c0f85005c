"""Grid logic shared by CSV and XLSX: find the header row below any title rows, then yield
data rows numbered as a person sees them in a spreadsheet (title and header rows counted).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from publishing.contract import KIND_LABELS
from publishing.rows import SourceRow
from publishing.sources.headers import (
    ERROR_KEY,
    RAW_KEY,
    KeyMapper,
    check_required,
    checked_value,
    clean_value,
    is_footer,
    known_header_count,
    resolve_kind,
    source_error,
    too_long,
)

# Title rows above the header are few; give up looking for the header after this many rows.
HEADER_SCAN_ROWS = 30
# A header row names at least this many known columns (a merged title cell names none or one).
MIN_KNOWN_HEADERS = 2


@dataclass(frozen=True)
class CellError:
    """Stands in for a row the underlying reader could not parse (e.g. a CSV syntax error)."""

    reason: str
    raw: str | None = None  # the row's text, as far as it could be read


Cells = Sequence[Any] | CellError
# Why a row with values beyond the header's last column is rejected, and the text reported:
# (row number, cells, header width) -> (reason, raw text).
WideReason = Callable[[int, Sequence[Any], int], tuple[str, str]]


@dataclass
class Header:
    row: int  # 1-based row number of the header row
    kind: str
    mapper: KeyMapper
    positions: dict[int, str]  # cell position -> column key
    width: int = 0  # cells up to the header's last named one


def find_header_row(rows: Iterable[Cells], kind: str | None) -> tuple[int, Sequence[Any]] | None:
    """The row (number, cells) naming the most known columns, at least two, within the scan
    limit; the first of equals. Not simply the first such row: a title block of key/value
    rows (发布单位 | 某局 | 发布日期 | 2026-08-01) names two columns above the real header."""
    best: tuple[int, Sequence[Any]] | None = None
    most = MIN_KNOWN_HEADERS - 1
    for number, cells in enumerate(itertools.islice(rows, HEADER_SCAN_ROWS), start=1):
        if isinstance(cells, CellError):
            continue
        known = known_header_count(cells, kind)
        if known > most:
            best, most = (number, cells), known
    return best


def read_header(rows: Iterable[Cells], kind: str | None, file: str) -> Header:
    """Locate and interpret the header row; SourceError when absent, unknown kind or incomplete."""
    found = find_header_row(rows, kind)
    if found is None:
        raise source_error(file, 0, _no_header_reason(kind))
    number, cells = found
    kind = resolve_kind(cells, kind, file, number)
    mapper = KeyMapper(kind)
    positions = mapper.positions(cells)
    check_required(set(positions.values()), kind, file, number)
    width = max((i + 1 for i, cell in enumerate(cells) if clean_value(cell) is not None), default=0)
    return Header(row=number, kind=kind, mapper=mapper, positions=positions, width=width)


def data_rows(rows: Iterable[Cells], header: Header, file: str, check: bool = False,
              wide: bool | WideReason = False, limited: bool = False,
              numbered: bool = False) -> Iterator[SourceRow]:
    """Rows below the header: blank rows skipped, trailing 合计/备注 rows dropped. check: text
    with control characters becomes a BadValue (for files that may hold some). wide: a row with
    values beyond the header's last column cannot be read (in a CSV file: an unquoted comma or
    a stray quote shifted its fields, and which value belongs where is unknown); True gives the
    CSV reason, a function another. limited: text longer than a CSV field may be becomes a
    BadValue (headers.too_long). numbered: rows come
    as (row number, cells) pairs, for a reader that skips some (else they are counted from 1).

    A row is blank when every cell under a known column is empty: cells of ignored columns
    are never read, so a row holding only those has nothing to publish or reject.

    A 合计/备注 row is held back until it is known to be trailing: if data follows it, it is
    yielded after all (cleaning rejects it) rather than silently lost.
    """
    held: list[SourceRow] = []
    pairs = cast(Iterable[tuple[int, Cells]], rows) if numbered else enumerate(rows, start=1)
    data = itertools.dropwhile(lambda pair: pair[0] <= header.row, pairs)
    convert = checked_value if check else clean_value
    if limited:
        convert = _limited(convert)
    beyond = _csv_wide if wide is True else wide
    for number, cells in data:
        if isinstance(cells, CellError):
            error = {ERROR_KEY: cells.reason}
            if cells.raw is not None:
                error[RAW_KEY] = cells.raw
            row = SourceRow(file, number, error)
        elif beyond and len(cells) > header.width and has_value(cells[header.width:]):
            reason, raw = beyond(number, cells, header.width)
            row = SourceRow(file, number, {ERROR_KEY: reason, RAW_KEY: raw})
        else:
            values = _values(cells, header.positions, convert)
            if all(value is None for value in values.values()):
                continue  # blank, or only unread columns filled (a pre-numbered 序号)
            row = SourceRow(file, number, values)
            if is_footer(cells):
                held.append(row)
                continue
        yield from held
        held.clear()
        yield row


def has_value(cells: Sequence[Any]) -> bool:
    """Whether any cell holds a value (blank text counts as none)."""
    if cells.count("") == len(cells):  # the common case, checked at C speed
        return False
    return any(clean_value(cell) is not None for cell in cells)


def _csv_wide(number: int, cells: Sequence[Any], width: int) -> tuple[str, str]:
    reason = (f"本行有 {len(cells)} 个字段，多于表头的 {width} 列：可能是字段中的逗号"
              "未加引号或引号错位，各值所属的列无法确定")
    return reason, ",".join(map(str, cells))


def _limited(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """convert, but too long a text becomes a BadValue (its text cut for the report)."""
    def check(value: Any) -> Any:
        return too_long(value) or convert(value)
    return check


def _values(cells: Sequence[Any], positions: dict[int, str],
            convert: Callable[[Any], Any]) -> dict[str, Any]:
    width = len(cells)
    return {key: convert(cells[i]) if i < width else None for i, key in positions.items()}


def _no_header_reason(kind: str | None) -> str:
    if kind is None:
        return f"无法识别数据种类：前{HEADER_SCAN_ROWS}行中找不到表头行（至少两个可识别的列名）"
    return f"找不到表头行：前{HEADER_SCAN_ROWS}行中没有至少两个“{KIND_LABELS[kind]}”的列名"
