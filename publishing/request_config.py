"""The settings of objections and credit repair, read from data/requests.toml (or the file
settings.requests_file names): the deadlines, which records credit repair may concern, the
attachment and text limits, and the back office's lockout and session length. Read once per
process: load_config is cached (tests that change the file clear its cache).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from publishing.request_models import TYPES

DEFAULT_FILE = Path(__file__).parent / "data" / "requests.toml"
# [retention] personal_data_days when a copy of the file edited before [retention] existed lacks it
DEFAULT_PERSONAL_DATA_DAYS = 1095


@dataclass(frozen=True)
class Config:
    review_days: int
    decision_days: dict[str, int]
    repair_kinds: tuple[str, ...]
    repair_requires_attachment: bool
    commitment: str
    max_files: int
    max_bytes: int
    max_records: int
    limits: dict[str, tuple[int, int]]
    lockout_failures: int  # wrong passwords in a row that lock one address out of a name
    lockout_minutes: int
    session_hours: int
    # wrong passwords from all addresses that lock the account for addresses its owner has not
    # used lately (publishing.users.login); [review] lockout_account_failures, default 10 × the above
    lockout_account_failures: int = 50
    # days after the decision that a decided request's personal data is kept
    # (publishing.request_retention); [retention] personal_data_days
    personal_data_days: int = DEFAULT_PERSONAL_DATA_DAYS

    @property
    def max_mb(self) -> int:
        """A file's size limit in MB, as the forms and messages state it."""
        return self.max_bytes // 1048576


class RequestConfigError(ValueError):
    """The requests file cannot be read or lacks a value the code needs: one message (for the
    bureau, in Chinese) naming the file, instead of a traceback when a portal starts."""


@lru_cache
def load_config(path: Path | None = None) -> Config:
    if path is None:
        from publishing.settings import get_settings

        path = get_settings().requests_file or DEFAULT_FILE
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except OSError as err:
        raise RequestConfigError(f"申请设置文件 {path} 无法读取：{err.strerror or err}") from err
    except tomllib.TOMLDecodeError as err:
        raise RequestConfigError(f"申请设置文件 {path} 不是有效的 TOML：{err}") from err
    try:
        return _config(raw)
    except KeyError as err:
        raise RequestConfigError(f"申请设置文件 {path}：缺少 {err.args[0]}") from err
    except (TypeError, ValueError, AttributeError) as err:
        raise RequestConfigError(f"申请设置文件 {path}：有一项的值无效（{err}）") from err


def _config(raw: dict) -> Config:
    dl, rp, at, lim, rv = (
        raw["deadlines"],
        raw["repair"],
        raw["attachments"],
        raw["limits"],
        raw["review"],
    )
    return Config(
        review_days=int(dl["preliminary_review"]),
        decision_days={t: int(dl["decision"][t]) for t in TYPES},
        repair_kinds=tuple(rp["kinds"]),
        repair_requires_attachment=bool(rp.get("requires_attachment", True)),
        commitment=" ".join(rp["commitment"].split()),
        max_files=int(at["max_files"]),
        max_bytes=int(at["max_bytes"]),
        max_records=int(lim.get("max_records", 20)),
        limits={k: (int(v[0]), int(v[1])) for k, v in lim.items() if isinstance(v, list)},
        lockout_failures=int(rv["lockout_failures"]),
        lockout_minutes=int(rv["lockout_minutes"]),
        session_hours=int(rv["session_hours"]),
        lockout_account_failures=int(
            rv.get("lockout_account_failures", 10 * int(rv["lockout_failures"]))
        ),
        personal_data_days=_retention_days(raw.get("retention", {})),
    )


def _retention_days(retention: dict) -> int:
    """[retention] personal_data_days: a whole number of days, at least 1. Zero or less is
    refused rather than read as "delete at once": a slip of the pen must not erase the
    contacts and files of every decided request on the worker's next run."""
    days = retention.get("personal_data_days", DEFAULT_PERSONAL_DATA_DAYS)
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(
            f"[retention] personal_data_days 应为不小于 1 的整数（天数），现为 {days!r}"
        )
    return days
