"""Header matching shared by every reader: which column key a header names, which kind a file is.

Only headers that map to a contract column key ever reach SourceRow.values, so unknown and
never-published columns (身份证号 …) are dropped here, structurally, and listed as ignored.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from publishing.contract import (
    ENTITY_COLUMNS,
    FORBIDDEN_HEADERS,
    KIND_COLUMNS,
    KIND_SIGNATURE,
    columns_for,
    header_index,
    normalize_header,
)
from publishing.redact import mask_text
from publishing.rows import BadValue, Reject, SourceError
from publishing.safetext import C0_CONTROLS, NONCHARACTERS

# A SourceRow value under this key carries the reason a row could not be read at all
# (malformed NDJSON line, array element that is not an object); cleaning turns it into a reject.
ERROR_KEY = "__error__"
# ...and under this key the text of that row, as far as it could be read (the reject's value).
RAW_KEY = "__raw__"
RAW_LIMIT = 1000  # characters of such a text kept for the report
# A text is masked before it is cut (a cut through a mobile leaves 10 digits, too few to mask),
# but only this much of it (masking costs up to ~0.1 ms a character): a number reaching from
# before the cut to beyond this is not one.
RAW_WINDOW = 4 * RAW_LIMIT
# The longest cell of any format: csv's default field_size_limit(), which the CSV reader keeps.
CELL_LIMIT = 131_072
R_CELL_TOO_LONG = f"字段过长（超过 {CELL_LIMIT:,} 个字符）"
# Ignored column names listed for the report: a JSON file may have a new key in every record.
IGNORED_LIMIT = 100
IGNORED_NAME_LIMIT = 100  # characters of one
IGNORED_MORE = f"…（被忽略的列名过多，只列出前 {IGNORED_LIMIT} 个）"
_SEEN_LIMIT = 10_000  # header names whose column is remembered
# A file without a single record is unreadable: even a --kind cannot make it publishable.
R_NO_RECORDS = "文件中没有任何记录"
# Control characters other than tab and line breaks, and DEL: no text a person typed holds
# one, and PostgreSQL refuses U+0000 in text and jsonb (one such value fails the whole publish);
# and the Unicode noncharacters, U+FFFE/U+FFFF among them, which XML 1.0 cannot carry (a feed
# showing one failed). What no stored text may hold is defined once, in publishing.safetext.
_CONTROLS = C0_CONTROLS + "\x7f" + NONCHARACTERS
_CONTROL = re.compile(f"[{_CONTROLS}]")
# ...and lone surrogates (a JSON key "\ud800"), which neither UTF-8 nor PostgreSQL can take.
_UNUSABLE = re.compile(f"[{_CONTROLS}\ud800-\udfff]")

_FORBIDDEN = frozenset(normalize_header(h) for h in FORBIDDEN_HEADERS)
_INDEXES = {kind: header_index(kind) for kind in KIND_COLUMNS}
_ANY_KIND = {norm for index in _INDEXES.values() for norm in index}
# Codes longer than this, read from a numeric spreadsheet cell, are returned as digit strings,
# up to 15 digits: Excel keeps no more, so a float of 16 or more has lost some (cleaning
# rejects one in a code column rather than publish other digits).
_LONG_CODE = 1e9
_EXACT_DIGITS = 1e15
_FOOTER_PREFIXES = ("合计", "备注")


def header_text(cell: Any) -> str:
    """The header as shown to a person (for reports): the cell text, trimmed."""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))  # a numeric header cell such as 2022, not "2022.0"
    return "" if cell is None else str(cell).strip()


def known_header_count(cells: Iterable[Any], kind: str | None) -> int:
    """How many cells name a column of the kind (of any kind when kind is None)."""
    known = _INDEXES[kind] if kind else _ANY_KIND
    return sum(1 for cell in cells if _norm(cell) in known)


def detect_kind(names: Iterable[Any]) -> str | None:
    """The first kind (in KIND_SIGNATURE order) whose signature column is among the names."""
    norms = {_norm(name) for name in names}
    for kind, signature in KIND_SIGNATURE.items():
        if any(_INDEXES[kind].get(norm) == signature for norm in norms):
            return kind
    return None


def missing_required(keys: set[str], kind: str) -> list[str]:
    """Chinese labels of the required columns of the kind that the keys do not cover."""
    missing = []
    if not keys & {"uscc", "reg_no"}:
        missing.append(f"{ENTITY_COLUMNS[0].label}（或注册号）")
    missing += [col.label for col in columns_for(kind) if col.required and col.key not in keys]
    return missing


def raw_text(text: str, limit: int = RAW_LIMIT) -> str:
    """Text of an unreadable row for the report: masked, then cut to limit characters (masking
    keeps the length), visible. Cut first, a mobile cut to 10 digits was shown unmasked."""
    text = text.strip()
    masked = mask_text(text[:RAW_WINDOW])
    if len(text) > limit:
        masked = masked[:limit] + "…"
    return visible(masked)


def visible(text: str) -> str:
    """text with its control characters and lone surrogates written as escapes (\\u0000,
    \\ud800): a report shows them, UTF-8 cannot encode a lone surrogate, and PostgreSQL, which
    keeps the report with the batch, refuses a real U+0000."""
    return _UNUSABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match[0]):04x}"


def control_problem(text: str) -> str | None:
    """Why text cannot be published as it is (a control character in it), or None."""
    if text.isprintable():  # the fast path: no control character (nor tab, line break …)
        return None
    found = _CONTROL.search(text)
    if found is None:
        return None
    return f"含控制字符 U+{ord(found[0]):04X}（不可见字符），不是有效文本，请删除后重新导出"


def checked_value(value: Any) -> Any:
    """clean_value, or a BadValue for text (or a list item) with a control character; checked
    before trimming, which would silently drop some of them (str.strip() counts \x1c–\x1f)."""
    if value.__class__ is str:
        problem = control_problem(value)
        if problem is not None:
            return BadValue(visible(value), problem)
    elif isinstance(value, list):
        for item in value:
            problem = control_problem(item) if isinstance(item, str) else None
            if problem is not None:
                return BadValue(visible(str(value)), problem)
    return clean_value(value)


def clean_value(value: Any) -> Any:
    """Trim strings (empty → None); long integral floats (codes typed as numbers) → digits,
    unless too long for Excel to have kept them all (cleaning judges those)."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, float) and value.is_integer() and _LONG_CODE < value < _EXACT_DIGITS:
        return str(int(value))
    return value


def too_long(value: Any) -> BadValue | None:
    """A BadValue for text (or a list's text) longer than a CSV field may be, else None."""
    if value.__class__ is str:
        if len(value) <= CELL_LIMIT:
            return None
        text = value
    elif value.__class__ is list:
        if sum(len(item) for item in value if item.__class__ is str) <= CELL_LIMIT:
            return None
        text = "、".join(map(str, value))
    else:
        return None
    return BadValue(raw_text(text), R_CELL_TOO_LONG)


def is_footer(cells: Sequence[Any]) -> bool:
    """A 合计/备注 row: its first non-empty cell starts with one of those words."""
    for cell in cells:
        text = clean_value(cell)
        if text is not None:
            return isinstance(text, str) and _squash(text).startswith(_FOOTER_PREFIXES)
    return False


def kind_signature_labels() -> str:
    labels = []
    for kind, key in KIND_SIGNATURE.items():
        labels += [f"“{col.label}”" for col in KIND_COLUMNS[kind] if col.key == key]
    return "、".join(labels)


def source_error(file: str, row: int, reason: str) -> SourceError:
    return SourceError(Reject(file=file, row=row, column=None, value=None, reason=reason))


def resolve_kind(names: Sequence[Any], kind: str | None, file: str, row: int) -> str:
    """The given kind, or the one recognised from the headers; SourceError when neither."""
    if kind is not None:
        return kind
    detected = detect_kind(names)
    if detected is None:
        raise source_error(
            file,
            row,
            f"无法识别数据种类：表头中没有{kind_signature_labels()}中的任何一列，请用 --kind 指定",
        )
    return detected


def check_required(keys: set[str], kind: str, file: str, row: int) -> None:
    missing = missing_required(keys, kind)
    if missing:
        raise source_error(file, row, "缺少必填列：" + "、".join(missing))


class KeyMapper:
    """Classifies header names for one kind, remembering the names it ignored (in order, as a
    report shows them: masked, visible, at most IGNORED_LIMIT of them)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.columns: dict[str, str] = {}
        self.ignored: list[str] = []
        self._index = _INDEXES[kind]
        self._seen: dict[str, str | None] = {}
        self._listed: set[str] = set()  # self.ignored, for look-ups
        self._ignored_names: set[str] = set()  # names as given, up to _SEEN_LIMIT

    def classify(self, name: str) -> str | None:
        """The column key a header names; None (and listed as ignored) if unknown or forbidden."""
        try:
            return self._seen[name]
        except KeyError:
            pass
        norm = normalize_header(name)
        key = None if norm in _FORBIDDEN else self._index.get(norm)
        if len(self._seen) < _SEEN_LIMIT:  # NDJSON may have a new key in every record
            self._seen[name] = key
        if key is None and name:
            self.ignore(name)
        return key

    def ignore(self, name: str) -> None:
        if name in self._ignored_names:
            return
        if len(self._ignored_names) < _SEEN_LIMIT:
            self._ignored_names.add(name)
        # A JSON key may hold a mobile, a control character or a lone surrogate, and be long.
        shown = raw_text(name, IGNORED_NAME_LIMIT)
        if shown in self._listed:
            return
        if len(self._listed) < IGNORED_LIMIT:
            self._listed.add(shown)
            self.ignored.append(shown)
        elif self.ignored[-1] != IGNORED_MORE:
            self.ignored.append(IGNORED_MORE)

    def positions(self, headers: Sequence[Any]) -> dict[int, str]:
        """Cell position → column key for a header row; the first header of a key wins."""
        positions: dict[int, str] = {}
        for i, cell in enumerate(headers):
            name = header_text(cell)
            key = self.classify(name)
            if key is None:
                continue
            if key in positions.values():
                self.ignore(name)
                continue
            positions[i] = key
            self.columns.setdefault(name, key)
        return positions

    def values(self, record: dict[str, Any], check: bool = False) -> dict[str, Any]:
        """Column key → cleaned value for a JSON object; first key of a column wins. check:
        text with control characters becomes a BadValue (for records that may hold some)."""
        values: dict[str, Any] = {}
        convert = checked_value if check else clean_value
        for name, value in record.items():
            name = name.strip()
            key = self.classify(name)
            if key is None:
                continue
            if key in values:
                self.ignore(name)
                continue
            # A CSV field longer than CELL_LIMIT cannot be read: nor is such a JSON value.
            values[key] = too_long(value) or convert(value)
            self.columns.setdefault(name, key)
        return values


def _norm(cell: Any) -> str:
    return normalize_header(header_text(cell))


def _squash(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())
