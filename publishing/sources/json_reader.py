"""JSON (an array of objects) and NDJSON (one object a line) sources, both streamed.

Keys are matched like spreadsheet headers, so English keys and Chinese headers both work.
There is no header row: the kind and the required keys are judged from the keys of the first
SAMPLE_RECORDS object records; keys first seen after them are still classified, and listed as
ignored, as the rows stream by. A JSON array is read CHUNK bytes, one element, at a time, twice:
at open, to check the whole file (a file that is not an array of JSON values is unreadable before
any row is read, as when it was loaded whole), then for the rows. File-level rejects carry row 0,
except a JSON syntax error, which carries its line. A line or element that is not an object
becomes a row carrying ERROR_KEY. A number too long for Python (over 4300 digits) or nesting too
deep for its parser makes the file (JSON) or the line (NDJSON) unreadable; NaN, Infinity and
-Infinity (and 1e400, read as Infinity) become BadValues, which cleaning rejects, as does text
longer than a CSV field may be (CELL_LIMIT).
"""

from __future__ import annotations

import codecs
import itertools
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from publishing.redact import mask_escaped, mask_value
from publishing.rows import BadValue, SourceError, SourceFile, SourceRow
from publishing.safetext import NONCHARACTERS
from publishing.sources.headers import (
    ERROR_KEY,
    R_NO_RECORDS,
    RAW_KEY,
    RAW_WINDOW,
    KeyMapper,
    check_required,
    raw_text,
    resolve_kind,
    source_error,
)

SAMPLE_RECORDS = 100
# Bytes of a JSON array read at a time: its text is held a chunk (or one element) at a time.
CHUNK = 1 << 20
# How far past the place it names in an error the JSON scanner may have looked ("-Infinity"),
# or short of the end of the text a number may stop ("1" of "1.5e3"): an error or a value that
# near the end of the text read so far is read again with more text.
_LOOKAHEAD = 16
_NOT_SPACE = re.compile(r"[^ \t\n\r]")  # JSON's whitespace is these four
# The check at open reads the elements this many calls deeper in the stack than the rows are
# read later (in publish's cleaning, deeper than open_source): an element nested too deep for
# the parser there is found by the check, not halfway through the rows.
_CHECK_DEPTH = 100
# A \uD800–\uDFFF escape: json.loads leaves one that is not half of a pair as a lone
# surrogate, which no database or hash can take as text.
_SURROGATE = r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
_SURROGATE_ESCAPE = re.compile(_SURROGATE.encode())  # in an NDJSON line
_SURROGATE_IN_TEXT = re.compile(_SURROGATE)  # in a JSON element's text
R_SURROGATE = "含不成对的 Unicode 代理项转义（如 \\ud800），不是有效文本"
# Where a control character can hide in JSON text: an escape \u0000–\u001f, \b or \f (a loose
# test, it also matches \u00e9 or an escaped backslash before a b …) or a raw DEL; and a Unicode
# noncharacter (XML cannot carry U+FFFE/U+FFFF): an escape \uFDxx, \uFFFx or of a low surrogate
# \uDFFx (of U+1FFFE …), its hex digits in any case. Only records with one have their values
# checked.
_CONTROL_HINT = r"\\(?:u00|b|f|u[Ff][Dd]|u[Ff]{3}|u[Dd][Ff]{2})|\x7f"
_CONTROL_HINTS = re.compile(_CONTROL_HINT.encode())  # in an NDJSON line
_CONTROL_HINTS_IN_TEXT = re.compile(_CONTROL_HINT)  # in a JSON element's text
# ...or a raw one: in an NDJSON line's UTF-8 (csv_reader's loose hints), in an element's text.
_NONCHARACTER_BYTES = (b"\xef\xb7", b"\xbf\xbe", b"\xbf\xbf")
_NONCHARACTER = re.compile(f"[{NONCHARACTERS}]")
_TYPE_NAMES = {list: "数组", str: "字符串", int: "数字", float: "数字", bool: "布尔值"}
R_NOT_ARRAY = "JSON 文件应为对象数组（[{…}, {…}]）"
R_NOT_FINITE = "不是有效数值（NaN、Infinity 或超出范围的数字）"
R_TOO_DEEP = "数组或对象嵌套层数过多，无法读取"
R_TOO_LONG = f"数字位数过多（超过{sys.get_int_max_str_digits()}位），无法读取"
R_CHANGED = "文件在读取期间被改动，此处起无法读取："

# json.JSONDecoder.raw_decode: (the value at a position of a text, where it ends).
RawDecode = Callable[[str, int], tuple[Any, int]]
# An element of a JSON array, the text it was read from, and where in that text it starts, ends.
Element = tuple[Any, str, int, int]


def open_json(path: Path, kind: str | None, file: str) -> SourceFile:
    mapper = _mapper(_names(_deeper(_CHECK_DEPTH, _checked_sample, path, file)), kind, file)
    return _source(path, "json", mapper, _array_rows(path, mapper, file))


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


def _deeper(calls: int, function: Callable[..., Any], *args: Any) -> Any:
    """function(*args), called that many calls deeper in the stack."""
    return _deeper(calls - 1, function, *args) if calls > 0 else function(*args)


def _checked_sample(path: Path, file: str) -> list[dict[str, Any]]:
    """The first SAMPLE_RECORDS object elements, once the whole file has been read as an array
    of JSON values (SourceError if it is not one)."""
    sample: list[dict[str, Any]] = []
    # No hooks: the values are thrown away, only whether they can be read counts here.
    for value, *_ in _elements(path, file, json.JSONDecoder().raw_decode):
        if len(sample) < SAMPLE_RECORDS and isinstance(value, dict):
            sample.append(value)
    return sample


def _elements(path: Path, file: str, raw_decode: RawDecode) -> Iterator[Element]:
    """The elements of the file's array, streamed; SourceError as JSONDecoder.decode would
    have failed on the whole text (the same message, line and column)."""
    with path.open("rb") as stream:
        text = _Text(stream, file, raw_decode)
        if text.skip_space() != "[":
            text.value()  # the error it is, if it is not JSON at all
            if text.skip_space():
                raise text.syntax_error("Extra data")
            raise text.fail(0, R_NOT_ARRAY)
        text.pos += 1
        if text.skip_space() != "]":
            while True:
                yield text.value()
                separator = text.skip_space()
                if separator == "]":
                    break
                if separator != ",":
                    raise text.syntax_error("Expecting ',' delimiter")
                text.pos += 1
        text.pos += 1
        if text.skip_space():
            raise text.syntax_error("Extra data")


class _Text:
    """A JSON file's text, decoded CHUNK bytes at a time (a BOM dropped): `text` from `pos` on
    is still to be read, what is before `pos` is dropped when more is read. Where text[0] is in
    the file is kept, so that an error names its line and column in the whole text."""

    def __init__(self, stream: BinaryIO, file: str, raw_decode: RawDecode) -> None:
        self.text = ""
        self.pos = 0
        self._stream, self._file, self._raw_decode = stream, file, raw_decode
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._bytes = 0  # decoded so far, after the BOM
        self._line, self._column = 1, 0  # of text[0], the column counted from 0
        self._end = False
        self._start = True  # nothing read yet: a BOM may come

    def read(self, size: int) -> bool:
        """Drop the text before pos and add that of (up to) size more bytes; False at the end."""
        if self._end:
            return False
        data = self._stream.read(max(size, len(codecs.BOM_UTF8)) if self._start else size)
        self._end = not data
        if self._start:
            data, self._start = data.removeprefix(codecs.BOM_UTF8), False
        pending = len(self._decoder.getstate()[0])  # bytes of a character cut by the last read
        try:
            added = self._decoder.decode(data, final=self._end)
        except UnicodeDecodeError as error:
            at = self._bytes - pending + error.start  # counted after the BOM, as it always was
            raise source_error(
                self._file, 0, f"JSON 文件不是 UTF-8 编码（第{at + 1}字节）"
            ) from error
        self._bytes += len(data)
        self._drop_read()
        self.text += added
        return not self._end

    def _drop_read(self) -> None:
        lines = self.text.count("\n", 0, self.pos)
        if lines:
            self._line += lines
            self._column = self.pos - self.text.rfind("\n", 0, self.pos) - 1
        else:
            self._column += self.pos
        self.text = self.text[self.pos :]
        self.pos = 0

    def skip_space(self) -> str:
        """The character at pos once whitespace is skipped, "" at the end of the file."""
        while (found := _NOT_SPACE.search(self.text, self.pos)) is None:
            self.pos = len(self.text)
            if not self.read(CHUNK):
                return ""
        self.pos = found.start()
        return found[0]

    def value(self) -> Element:
        """The JSON value after pos, pos moved past it."""
        self.skip_space()
        while True:
            try:
                value, end = self._raw_decode(self.text, self.pos)
            except json.JSONDecodeError as error:
                if self._end or not self._cut_short(error):
                    raise self.syntax_error(error.msg, error.pos) from error
            except RecursionError as error:
                raise self.fail(0, f"JSON {R_TOO_DEEP}") from error
            except ValueError as error:  # an integer beyond sys.get_int_max_str_digits()
                raise self.fail(0, f"JSON {R_TOO_LONG}") from error
            else:
                # A number ending near the end may go on ("1" of "1.5"), the rest cannot.
                if self._end or end + _LOOKAHEAD < len(self.text):
                    start, self.pos = self.pos, end
                    return value, self.text, start, end
            # Read as much again as the value has so far: a large one is read in a few tries
            # (each from its start), not in one a chunk.
            self.read(max(CHUNK, len(self.text) - self.pos))

    def _cut_short(self, error: json.JSONDecodeError) -> bool:
        """Whether the error may be the end of the text read so far rather than the file's: a
        string that does not end (the error names where it starts) or an error near the end."""
        unterminated = error.msg.startswith("Unterminated string")
        return unterminated or error.pos + _LOOKAHEAD >= len(self.text)

    def syntax_error(self, message: str, at: int | None = None) -> SourceError:
        at = self.pos if at is None else at
        line = self._line + self.text.count("\n", 0, at)
        column = self._column + at + 1 if line == self._line else at - self.text.rfind("\n", 0, at)
        return self.fail(line, f"JSON 格式错误：{message}（第{line}行第{column}列）")

    def fail(self, row: int, reason: str) -> SourceError:
        """The file's reject, once the rest of the file is known to be UTF-8: else that is the
        reject, as when the file was decoded whole before it was parsed."""
        self.pos = len(self.text)
        while self.read(CHUNK):
            self.pos = len(self.text)
        return source_error(self._file, row, reason)


class _Decoder:
    """json.loads that counts the numbers that are not finite: NaN, Infinity, -Infinity, and
    floats too large (1e400, read as Infinity). Only an element (JSON) or a line (NDJSON) with
    one has its values looked at again."""

    def __init__(self) -> None:
        self.non_finite = 0
        self._decoder = json.JSONDecoder(parse_constant=self._constant, parse_float=self._float)

    def decode(self, text: str) -> Any:
        return self._decoder.decode(text)

    def raw_decode(self, text: str, pos: int) -> tuple[Any, int]:
        return self._decoder.raw_decode(text, pos)

    def _constant(self, name: str) -> float:
        self.non_finite += 1
        return float(name)

    def _float(self, text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            self.non_finite += 1
        return value


def _may_hold_controls(raw: bytes) -> bool:
    return _CONTROL_HINTS.search(raw) is not None or any(h in raw for h in _NONCHARACTER_BYTES)


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


def _array_rows(path: Path, mapper: KeyMapper, file: str) -> Iterator[SourceRow]:
    # A generator: the file is opened on the first next() and closed when exhausted or closed.
    # It was checked at open. Changed since, what can no longer be read is a rejected row: an
    # error raised here would end publish's cleaning process, not the publish.
    read = 0
    try:
        for row in _array_elements(path, mapper, file):
            read = row.row
            yield row
    except SourceError as error:
        yield SourceRow(file, read + 1, {ERROR_KEY: R_CHANGED + error.reject.reason})


def _array_elements(path: Path, mapper: KeyMapper, file: str) -> Iterator[SourceRow]:
    decoder = _Decoder()
    counted = 0
    elements = _elements(path, file, decoder.raw_decode)
    for position, (record, text, start, end) in enumerate(elements, start=1):
        non_finite, counted = decoder.non_finite != counted, decoder.non_finite
        if _SURROGATE_IN_TEXT.search(text, start, end) and not _is_text(record):
            # Escaped (a lone surrogate cannot be encoded), so masked first: the mask cannot
            # read a full-width digit written \uff11.
            raw = raw_text(json.dumps(mask_value(record)))
            yield SourceRow(file, position, {ERROR_KEY: R_SURROGATE, RAW_KEY: raw})
        else:
            controls = _CONTROL_HINTS_IN_TEXT.search(text, start, end) is not None
            controls = controls or _NONCHARACTER.search(text, start, end) is not None
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
        # Masked through its JSON escapes (a mobile written "\uff11\uff13…") before the report
        # cuts it: cut first, a number's escapes cut short could no longer be read as one.
        text = line.decode("utf-8", errors="replace").strip()[:RAW_WINDOW]
        self.raw = raw_text(mask_escaped(text))


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


def _row(
    file: str, number: int, record: Any, mapper: KeyMapper, controls: bool, non_finite: bool
) -> SourceRow:
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
