"""Source readers: turn a CSV, XLSX, JSON or NDJSON file into a stream of SourceRow.

    source = open_source(Path("黑榜.xlsx"))          # kind recognised from the headers
    for row in source.rows:                          # lazy; CSV and NDJSON are streamed
        ...

open_source reads the header eagerly, so a file that cannot be used at all (unreadable, kind
not recognisable, required column missing) raises SourceError before any row is produced.
Row-level problems never raise: a row that cannot be parsed carries ERROR_KEY in its values.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from publishing.contract import KIND_COLUMNS
from publishing.rows import SourceError, SourceFile
from publishing.sources.csv_reader import open_csv
from publishing.sources.headers import ERROR_KEY, source_error
from publishing.sources.json_reader import open_json, open_ndjson
from publishing.sources.xlsx_reader import open_xlsx

__all__ = ["ERROR_KEY", "FORMATS", "SourceError", "open_source"]

FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}
_READERS: dict[str, Callable[[Path, str | None, str], SourceFile]] = {
    "csv": open_csv,
    "xlsx": open_xlsx,
    "json": open_json,
    "ndjson": open_ndjson,
}


def open_source(path: Path, kind: str | None = None, display_name: str | None = None) -> SourceFile:
    """Open a source file; the format comes from the extension, the kind is given or recognised."""
    path = Path(path)
    file = display_name or path.name
    if kind is not None and kind not in KIND_COLUMNS:
        known = "、".join(KIND_COLUMNS)
        raise source_error(file, 0, f"未知数据种类：{kind}（可选：{known}）")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise source_error(
            file,
            0,
            f"不支持的文件格式“{path.suffix or '无扩展名'}”：请提供 CSV、XLSX、JSON 或 NDJSON 文件",
        )
    _check_readable(path, file)
    return _READERS[fmt](path, kind, file)


def _check_readable(path: Path, file: str) -> None:
    """Fail early with a clear reason rather than with an OSError deep in a reader."""
    try:
        with path.open("rb") as stream:
            empty = not stream.read(1)
    except FileNotFoundError as error:
        raise source_error(file, 0, "文件不存在") from error
    except IsADirectoryError as error:
        raise source_error(file, 0, "这是一个目录，不是文件") from error
    except PermissionError as error:
        raise source_error(file, 0, "没有读取该文件的权限") from error
    except OSError as error:
        raise source_error(file, 0, f"无法读取文件：{error.strerror or error}") from error
    if empty:
        raise source_error(file, 0, "文件是空的")
