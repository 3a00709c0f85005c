"""Publicity rules, read from data (publishing/data/publicity.toml or DISCLOSURE_RULES_FILE)."""

from __future__ import annotations

import calendar
import hashlib
import json
import logging
import os
import re
import threading
import time
import tomllib
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, NoReturn

DEFAULT_RULES_FILE = Path(__file__).parent / "data" / "publicity.toml"
# add_months must stay within date's years (9999) from any event date: 100 years is plenty
MAX_MONTHS = 1200

log = logging.getLogger("publishing.rules")


class RulesError(ValueError):
    """The rules file cannot be read, or holds a value the code cannot use. The message (for the
    bureau, in Chinese) names the file, the key and the value."""


@lru_cache(maxsize=65536)  # a file's rows share a few thousand dates
def add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Rules:
    raw: dict[str, Any]

    @cached_property
    def fingerprint(self) -> int:
        """A stable hash of the rules' content, as a non-negative 63-bit int (it fits the
        sync_cursors seq column): the parsed TOML in a canonical form, so an edit of comments,
        whitespace, key order or quoting does not change it, an edit of any value does."""
        canonical = json.dumps(self.raw, sort_keys=True, ensure_ascii=False,
                               separators=(",", ":"), default=_tagged)
        digest = hashlib.sha256(canonical.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") >> 1

    def scheme_is_public(self, scheme: str) -> bool:
        return bool(self.raw["credit_mark"]["schemes"].get(scheme, {}).get("public", True))

    def list_schemes(self) -> list[str]:
        """Credit-mark schemes that are lists (a credit check reports being on them)."""
        return [name for name, s in self.raw["credit_mark"]["schemes"].items() if s.get("list")]

    def never_repairable_kinds(self) -> list[str]:
        """The listed terms (a penalty kind that contains one is never repaired early)."""
        return list(self.raw["penalty"]["never_repairable"]["penalty_kinds"])

    def never_repairable_in(self, penalty_kinds: Any) -> list[str]:
        """The penalty kinds (items of 处罚种类) that bar early repair: those containing a listed
        term (吊销 covers 吊销食品经营许可证, 吊销营业执照; 暂扣许可证件 is not covered)."""
        never = self._never_repairable
        return [kind for kind in penalty_kinds or () if _mentions(kind, never)]

    @cached_property
    def _never_repairable(self) -> tuple[str, ...]:
        return _folded_terms(self.never_repairable_kinds())

    @cached_property
    def _minimum_domains(self) -> tuple[str, ...]:
        return _folded_terms(self.raw["penalty"]["domain_minimum"]["domains"])

    def publicity_until(self, kind: str, event_date: date, fields: dict[str, Any]) -> date | None:
        """Default end of publicity when the file gives none; None = until withdrawn."""
        if kind == "penalty":
            # SAMR's minimum is a minimum publicity too: such a case must not leave publication
            # before it may even be repaired
            months = max(self._severity(fields)["publicity_months"], self._domain_minimum(fields))
        elif kind == "blacklist":
            months = self.raw["blacklist"]["publicity_months"]
        else:
            return None  # credit marks: until valid_until or superseded; pledges: until withdrawn
        return add_months(event_date, months)

    def repairable_from(self, kind: str, event_date: date, fields: dict[str, Any]) -> date | None:
        """First day a credit repair may be requested; None when it can never be repaired early.
        The minimum publicity (最短公示期) ends on event date + its months, as publicity_until's
        period does (民法典 art. 201-203: a period in months ends on the corresponding day, that
        day included): repair may be asked from the day after."""
        if kind != "penalty":
            return None
        if self.never_repairable_in(fields.get("penalty_kinds")):
            return None
        months = max(self._severity(fields)["repairable_after_months"],
                     self._domain_minimum(fields))
        return add_months(event_date, months) + timedelta(days=1)

    def _domain_minimum(self, fields: dict[str, Any]) -> int:
        """SAMR's minimum in months for the case's 领域 (0 for other domains): a domain that
        contains a listed term is covered (食品 covers 保健食品, 网络食品; 电梯 covers 电梯安全)."""
        domain = fields.get("domain") or ""
        if domain and _mentions(domain, self._minimum_domains):
            return int(self.raw["penalty"]["domain_minimum"]["repairable_after_months"])
        return 0

    def _severity(self, fields: dict[str, Any]) -> dict[str, Any]:
        table = self.raw["penalty"]["severity"]
        return table.get(fields.get("severity") or "", table[self.raw["penalty"]["default_severity"]])


def _fold(text: str) -> str:
    """Text as the cleaner stores a 领域 (NFKC, no spaces): 场（厂） in the rules file matches
    场(厂) in a record."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def _folded_terms(terms: list[str]) -> tuple[str, ...]:
    return tuple(_fold(t) for t in terms)


@lru_cache(maxsize=4096)  # a file's rows share a few hundred domains and penalty kinds
def _mentions(text: str, terms: tuple[str, ...]) -> bool:
    """Whether the text contains one of the (folded) terms."""
    folded = _fold(text)
    return any(t in folded for t in terms)


def _tagged(value: Any) -> dict[str, str]:
    """TOML's dates and times in the canonical form, tagged so "2026-01-01" the string and
    2026-01-01 the date differ."""
    return {type(value).__name__: value.isoformat()}


def rules_path() -> Path:
    from publishing.settings import get_settings

    return get_settings().rules_file or DEFAULT_RULES_FILE


def read_rules(path: Path | None = None) -> Rules:
    """The rules as the file holds them now, checked: RulesError when the file cannot be read or
    a value is unusable. Strict, for the worker's nightly job (it fails loudly on a bad edit);
    load_rules serves the last good rules instead."""
    where = path or rules_path()
    try:
        with open(where, "rb") as fh:
            raw = tomllib.load(fh)
    except OSError as err:
        raise RulesError(f"公示规则文件 {where} 无法读取：{err.strerror or err}") from err
    except tomllib.TOMLDecodeError as err:
        raise RulesError(f"公示规则文件 {where} 不是有效的 TOML：{err}") from err
    _check(raw, where)
    return Rules(raw)


_MISSING: Any = object()
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _check(raw: dict[str, Any], where: Path) -> None:
    """Every key the code reads (Rules' methods), of the type it uses it as: a bad edit is
    refused here, not by a TypeError in the next publish that happens to read that key."""

    def key(path: tuple[str, ...]) -> str:
        return ".".join(k if _BARE_KEY.fullmatch(k) else json.dumps(k, ensure_ascii=False)
                        for k in path)

    def fail(path: tuple[str, ...], expected: str, value: Any = _MISSING) -> NoReturn:
        if value is _MISSING:
            raise RulesError(f"公示规则文件 {where}：缺少 {key(path)}（应为{expected}）")
        raise RulesError(f"公示规则文件 {where}：{key(path)} 应为{expected}，现为 {_shown(value)}")

    def get(path: tuple[str, ...], expected: str) -> Any:
        node: Any = raw
        for depth, k in enumerate(path):
            if not isinstance(node, dict):
                fail(path[:depth], "表", node)
            node = node.get(k, _MISSING)
            if node is _MISSING:
                fail(path, expected)  # the whole path: the key to add
        return node

    def table(path: tuple[str, ...]) -> dict[str, Any]:
        value = get(path, "表")
        if not isinstance(value, dict):
            fail(path, "表", value)
        return value

    def months(path: tuple[str, ...]) -> None:
        value = get(path, "非负整数（月数）")
        # bool is an int to Python: `true` months would publish for one month
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MONTHS:
            fail(path, f"非负整数（月数，不超过 {MAX_MONTHS}）", value)

    def names(path: tuple[str, ...]) -> None:
        value = get(path, "字符串列表")
        # an empty term (or one of spaces) is contained in every 领域 and penalty kind
        if not isinstance(value, list) or not all(isinstance(v, str) and _fold(v) for v in value):
            fail(path, "非空字符串的列表", value)

    severities = table(("penalty", "severity"))
    for name in severities:
        table(("penalty", "severity", name))
        months(("penalty", "severity", name, "publicity_months"))
        months(("penalty", "severity", name, "repairable_after_months"))
    default = get(("penalty", "default_severity"), "等级名")
    if not isinstance(default, str) or default not in severities:
        fail(("penalty", "default_severity"),
             f" penalty.severity 中的一个等级（{'、'.join(severities) or '无'}）", default)
    table(("penalty", "domain_minimum"))
    months(("penalty", "domain_minimum", "repairable_after_months"))
    names(("penalty", "domain_minimum", "domains"))
    table(("penalty", "never_repairable"))
    names(("penalty", "never_repairable", "penalty_kinds"))
    months(("blacklist", "publicity_months"))
    for name in table(("credit_mark", "schemes")):
        scheme = table(("credit_mark", "schemes", name))
        for flag in ("public", "list"):
            if flag in scheme and not isinstance(scheme[flag], bool):
                fail(("credit_mark", "schemes", name, flag), " true 或 false", scheme[flag])
    # [return_pledge] is not read: pledges stay public until withdrawn


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


_Stamp = tuple[int, int, int] | None  # (st_ino, st_mtime_ns, st_size); None: the file is gone
# A file modified this recently may be modified again within the same timestamp tick (coarse
# clocks, 1-2 s on some file systems) without its stamp changing: such a read is not trusted to
# stand for the file until a later read finds it older.
SETTLE_NS = 2_000_000_000


def _stamp(path: Path) -> _Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class _FollowedRules:
    """load_rules(path=None): the rules as the file holds them, read again when the file changed
    (a stat per call), so that a long-running portal computes with what the worker recomputed
    the stored records under. A changed file that cannot be read or is invalid (a half-saved
    edit) leaves the last good rules of that path in use, logged once per change; with no good
    rules yet it raises RulesError. cache_clear() forgets everything (tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._good: dict[Path, Rules] = {}
        self._read: dict[Path, tuple[_Stamp, bool]] = {}  # the last read's stamp, and if settled
        self._refused: dict[Path, _Stamp] = {}  # the change last refused (and logged)

    def __call__(self, path: Path | None = None) -> Rules:
        where = Path(path) if path is not None else rules_path()
        # the stamp before the read: a change during the read makes the next call read again
        stamp = _stamp(where)
        good = self._good.get(where)
        if good is not None and self._read.get(where) == (stamp, True):
            return good
        with self._lock:
            good = self._good.get(where)
            if good is not None and self._read.get(where) == (stamp, True):
                return good
            # (a stamp far in the future is settled too: a later write stamps it now)
            settled = stamp is not None and abs(time.time_ns() - stamp[1]) > SETTLE_NS
            try:
                rules = read_rules(where)
            except RulesError as err:
                if good is None:
                    raise
                self._read[where] = (stamp, settled)
                if self._refused.get(where, _MISSING) != stamp:
                    self._refused[where] = stamp
                    log.error("%s；继续使用此前读取的有效公示规则", err)
                return good
            if good is not None and rules.raw == good.raw:
                rules = good  # read again unchanged: the same object (its fingerprint is cached)
            self._good[where] = rules
            self._read[where] = (stamp, settled)
            self._refused.pop(where, None)
            return rules

    def cache_clear(self) -> None:
        with self._lock:
            self._good.clear()
            self._read.clear()
            self._refused.clear()


load_rules = _FollowedRules()
