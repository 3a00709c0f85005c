"""JSON (an array of objects, loaded whole) and NDJSON (one object a line, streamed) sources.

Keys are matched like spreadsheet headers, so English keys and Chinese headers both work.
There is no header row: the kind and the required keys are judged from the keys of the
records (all of them for JSON, the first SAMPLE_RECORDS for NDJSON). File-level rejects
carry row 0, except a JSON syntax error, which carries its line. A line or element that is not
an object becomes a row carrying ERROR_KEY; keys first seen after the sample are still
classified, and listed as ignored, as the rows stream by. A number too long for Python (over
4300 digits) or nesting too deep for its parser makes the file (JSON) or the line (NDJSON)
unreadable; NaN, Infinity and -Infinity (and 1e400, read as Infinity) become BadValues, which
cleaning rejects, as does text longer than a CSV field may be (CELL_LIMIT).
"""

from __future__ import annotations

import codecs
import itertools
import json
import math
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from publishing.redact import mask_value
from publishing.rows import BadValue, SourceFile, SourceRow
from publishing.sources.headers import (
    ERROR_KEY,
    R_NO_RECORDS,
    RAW_KEY,
    KeyMapper,
    check_required,
    raw_text,
    resolve_kind,
    source_error,
)

SAMPLE_RECORDS = 100
# A \uD800–\uDFFF escape: json.loads leaves one that is not half of a pair as a lone
# surrogate, which no database or hash can take as text.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
R_SURROGATE = "含不成对的 Unicode 代理项转义（如 \\ud800），不是有效文本"
# Where a control character can hide in JSON text: an escape \u0000–\u001f (a loose test, it
# also matches \u00e9 …) or a raw DEL. Only records with one have their values checked.
_CONTROL_HINTS = (b"\\u00", b"\x7f")
_TYPE_NAMES = {list: "数组", str: "字符串", int: "数字", float: "数字", bool: "布尔值"}
R_NOT_FINITE = "不是有效数值（NaN、Infinity 或超出范围的数字）"
R_TOO_DEEP = "数组或对象嵌套层数过多，无法读取"
R_TOO_LONG = f"数字位数过多（超过{sys.get_int_max_str_digits()}位），无法读取"


def open_json(path: Path, kind: str | None, file: str) -> SourceFile:
    records, check_text, controls, non_finite = _load_array(path, file)
    mapper = _mapper(_names(records), kind, file)
    rows = _array_rows(records, mapper, file, check_text, controls, non_finite)
    return _source(path, "json", mapper, rows)


def open_ndjson(path: Path, kind: str | None, file: str) -> SourceFile:
    mapper = _mapper(_names(_sample(path)), kind, file)
    return _source(path, "ndjson", mapper, _ndjson_rows(path, mapper, file))


def _source(path: Path, fmt: str, mapper: KeyMapper, rows: Iterator[SourceRow]) -> SourceFile:
    return SourceFile(
        path=path,
        kind=mapper.kind,
        format=fmt,
        encoding="utf-8",
        columns=mapper.columns,
        ignored_columns=mapper.ignored,
        rows=rows,
    )


def _load_array(path: Path, file: str) -> tuple[list[Any], bool, bool, bool]:
    """The records, and whether they may hold lone surrogates, control characters, or NaN and
    other numbers that are not finite."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise source_error(
            file, 0, f"JSON 文件不是 UTF-8 编码（第{error.start + 1}字节）"
        ) from error
    decoder = _Decoder()
    try:
        data = decoder.decode(text)
    except json.JSONDecodeError as error:
        reason = f"JSON 格式错误：{error.msg}（第{error.lineno}行第{error.colno}列）"
        raise source_error(file, error.lineno, reason) from error
    except ValueError as error:  # an integer beyond sys.get_int_max_str_digits()
        raise source_error(file, 0, f"JSON {R_TOO_LONG}") from error
    except RecursionError as error:
        raise source_error(file, 0, f"JSON {R_TOO_DEEP}") from error
    if not isinstance(data, list):
        raise source_error(file, 0, "JSON 文件应为对象数组（[{…}, {…}]）")
    surrogates = _SURROGATE_ESCAPE.search(raw) is not None
    return data, surrogates, _may_hold_controls(raw), decoder.non_finite > 0


class _Decoder:
    """json.loads that counts the numbers that are not finite: NaN, Infinity, -Infinity, and
    floats too large (1e400, read as Infinity). Only a file (JSON) or a line (NDJSON) with one
    has its values looked at again."""

    def __init__(self) -> None:
        self.non_finite = 0
        self._decoder = json.JSONDecoder(parse_constant=self._constant, parse_float=self._float)

    def decode(self, text: str) -> Any:
        return self._decoder.decode(text)

    def _constant(self, name: str) -> float:
        self.non_finite += 1
        return float(name)

    def _float(self, text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            self.non_finite += 1
        return value


def _may_hold_controls(raw: bytes) -> bool:
    return any(hint in raw for hint in _CONTROL_HINTS)


def _mapper(names: list[str], kind: str | None, file: str) -> KeyMapper:
    """Kind and required keys from the records' keys (none: publish rejects the empty file)."""
    if kind is None and not names:
        raise source_error(file, 0, f"无法识别数据种类：{R_NO_RECORDS}")
    mapper = KeyMapper(resolve_kind(names, kind, file, 0))
    keys = set()
    for name in names:
        key = mapper.classify(name)
        if key is not None:
            keys.add(key)
            mapper.columns.setdefault(name, key)
    if names:
        check_required(keys, mapper.kind, file, 0)
    return mapper


def _names(records: Iterable[Any]) -> list[str]:
    """Every key of the object records, trimmed, in order of first appearance."""
    names: dict[str, None] = {}
    for record in records:
        if isinstance(record, dict):
            names.update(dict.fromkeys(name.strip() for name in record))
    return list(names)


def _sample(path: Path) -> list[dict[str, Any]]:
    """The first SAMPLE_RECORDS object lines; the file is closed again right away."""
    lines = _lines(path)
    try:
        objects = (record for _, record, _, _ in lines if isinstance(record, dict))
        return list(itertools.islice(objects, SAMPLE_RECORDS))
    finally:
        lines.close()


def _array_rows(records: list[Any], mapper: KeyMapper, file: str, check_text: bool,
                controls: bool, non_finite: bool) -> Iterator[SourceRow]:
    for position, record in enumerate(records, start=1):
        if check_text and not _is_text(record):
            # Escaped (a lone surrogate cannot be encoded), so masked first: the mask cannot
            # read a full-width digit written \uff11.
            raw = raw_text(json.dumps(mask_value(record)))
            yield SourceRow(file, position, {ERROR_KEY: R_SURROGATE, RAW_KEY: raw})
        else:
            yield _row(file, position, record, mapper, controls, non_finite)


def _ndjson_rows(path: Path, mapper: KeyMapper, file: str) -> Iterator[SourceRow]:
    for number, record, controls, non_finite in _lines(path):
        if isinstance(record, _Broken):
            yield SourceRow(file, number, {ERROR_KEY: record.reason, RAW_KEY: record.raw})
        else:
            yield _row(file, number, record, mapper, controls, non_finite)


class _Broken:
    """A line that is not valid JSON (or not UTF-8), with its text for the report."""

    def __init__(self, reason: str, line: bytes) -> None:
        self.reason = reason
        self.raw = raw_text(line.decode("utf-8", errors="replace"))


def _lines(path: Path) -> Iterator[tuple[int, Any, bool, bool]]:
    """(line number, parsed value or _Broken, whether it may hold control characters, whether
    it holds a number that is not finite) for every non-blank line, streamed."""
    decoder = _Decoder()
    with path.open("rb") as stream:
        for number, raw in enumerate(stream, start=1):
            line = raw.removeprefix(codecs.BOM_UTF8) if number == 1 else raw
            if line.strip():
                before = decoder.non_finite
                value = _parse_line(line, decoder)
                yield number, value, _may_hold_controls(line), decoder.non_finite != before


def _parse_line(line: bytes, decoder: _Decoder) -> Any:
    try:
        # Without its line break: a line cut short is then an error at its end, not "column 1"
        # of the line after it.
        value = decoder.decode(line.decode("utf-8").rstrip("\r\n"))
        if _SURROGATE_ESCAPE.search(line) and not _is_text(value):
            return _Broken(R_SURROGATE, line)
        return value
    except UnicodeDecodeError as error:
        return _Broken(f"编码错误：该行不是 UTF-8（第{error.start + 1}字节）", line)
    except json.JSONDecodeError as error:
        return _Broken(f"JSON 格式错误：{error.msg}（第{error.colno}列）", line)
    except ValueError:  # an integer beyond sys.get_int_max_str_digits()
        return _Broken(R_TOO_LONG, line)
    except RecursionError:
        return _Broken(R_TOO_DEEP, line)


def _is_text(value: Any) -> bool:
    """False when a string in value holds a lone surrogate (pairs were joined by json.loads)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _row(file: str, number: int, record: Any, mapper: KeyMapper, controls: bool,
         non_finite: bool) -> SourceRow:
    if not isinstance(record, dict):
        kind = "null" if record is None else _TYPE_NAMES.get(type(record), type(record).__name__)
        raw = raw_text(json.dumps(record, ensure_ascii=False))
        return SourceRow(file, number, {ERROR_KEY: f"不是 JSON 对象（是{kind}）", RAW_KEY: raw})
    values = mapper.values(record, check=controls)
    if non_finite:
        _reject_non_finite(values)
    return SourceRow(file, number, values)


def _reject_non_finite(values: dict[str, Any]) -> None:
    """NaN, Infinity (values or list items) become BadValues: no number to publish, and the
    contract never "fixes" a bad value into something else (the text "nan")."""
    for key, value in values.items():
        if _is_non_finite(value) or (value.__class__ is list and any(map(_is_non_finite, value))):
            values[key] = BadValue(raw_text(json.dumps(value, ensure_ascii=False)), R_NOT_FINITE)


def _is_non_finite(value: Any) -> bool:
    return value.__class__ is float and not math.isfinite(value)
