"""The shapes rows take on their way through the pipeline: read → cleaned (or rejected)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from publishing.redact import mask_escaped, mask_text, mask_value


@dataclass(slots=True)
class SourceRow:
    """One data row as read, keyed by contract column key (e.g. "uscc", "fine_wan")."""

    file: str  # the file's name as given on the command line
    row: int  # the row number a person sees (spreadsheet row incl. header; NDJSON line; JSON position)
    values: dict[str, Any]  # raw: str, or date/datetime/int/float/bool from XLSX and JSON


# A cell holding an Excel error value: an XLSX error cell, or the same text in any source.
R_EXCEL_ERROR = "单元格为 Excel 错误值 {error}（公式出错或引用无效）"


def excel_error_reason(error: str) -> str:
    """The reason of a reject for a cell holding an Excel error value (#N/A …)."""
    return R_EXCEL_ERROR.format(error=error)


@dataclass(frozen=True, slots=True)
class BadValue:
    """A cell a reader could read but that holds no usable value (an Excel error cell, text
    with control characters): every column handler rejects it, with this reason and raw text."""

    raw: str
    reason: str


@dataclass
class SourceFile:
    path: Path
    kind: str
    format: str  # csv | xlsx | json | ndjson
    encoding: str | None  # for CSV: utf-8-sig | gb18030
    columns: dict[str, str]  # original header -> column key
    ignored_columns: list[str]  # unknown columns and never-published ones (身份证号 …)
    rows: Iterator[SourceRow]


@dataclass(slots=True)
class Reject:
    file: str
    row: int
    column: str | None  # the header as it appears in the file, or the key when not from a header
    value: Any
    reason: str  # Chinese, for the person who fixes the file
    # The row is never published by rule (a 简易程序 case), whatever else it holds, or it is
    # a 撤销 of a record never published: it cannot be a record the bureau still publishes,
    # so it does not stop a snapshot's withdrawals.
    never_published: bool = False

    def __post_init__(self) -> None:
        # Reports go to logs and e-mails: the value is masked as published text is (a CSV
        # row's raw line holds the never-read 身份证号 and 联系电话 columns), text also through
        # JSON escapes (a malformed JSON line's "\uff11\uff13\uff19…").
        value = self.value
        self.value = mask_escaped(value) if isinstance(value, str) else mask_value(value)

    def as_dict(self) -> dict[str, Any]:
        value = self.value if isinstance(self.value, (str, int, float, bool, type(None))) else mask_text(str(self.value))
        return {"file": self.file, "row": self.row, "column": self.column, "value": value,
                "reason": self.reason}


class SourceError(Exception):
    """The file as a whole cannot be read (unreadable, unknown kind, a required column missing)."""

    def __init__(self, reject: Reject):
        super().__init__(f"{reject.file}: {reject.reason}")
        self.reject = reject

    def __reduce__(self) -> tuple[type, tuple[Reject]]:
        # Raised in a cleaning process, it crosses the pipe pickled: by default as its message,
        # which __init__ cannot take (the publisher's reader thread died, the publish hung).
        return SourceError, (self.reject,)


@dataclass(slots=True)
class EntityFields:
    id: str  # uscc, or reg_no when there is no uscc
    uscc: str | None
    reg_no: str | None
    name: str
    legal_rep: str | None
    district: str  # district code, e.g. "370602"
    address: str | None


@dataclass(slots=True)
class CleanRow:
    """A valid row, normalised and masked, ready to be planned against what is published."""

    kind: str
    file: str
    row: int
    op: str  # "upsert" (新增/更新/blank) | "withdraw" (撤销)
    entity: EntityFields
    fields: dict[str, Any]  # kind columns: ISO date strings, money as decimal strings, lists
    event_date: date
    publicity_until: date | None  # only when the file gives 公示截止日期 / 有效期至
    natural_key: tuple[str, ...]  # the contract's natural key
    identity: tuple[str, ...]  # what makes a distinct record (natural key, + marked_on for marks)
    extra: dict[str, Any] = field(default_factory=dict)
