"""Publicity rules, read from data (publishing/data/publicity.toml or DISCLOSURE_RULES_FILE)."""

from __future__ import annotations

import calendar
import hashlib
import json
import tomllib
from dataclasses import dataclass
from datetime import date
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

DEFAULT_RULES_FILE = Path(__file__).parent / "data" / "publicity.toml"


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
        return list(self.raw["penalty"]["never_repairable"]["penalty_kinds"])

    @cached_property
    def _never_repairable(self) -> frozenset[str]:
        return frozenset(self.never_repairable_kinds())

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
        """First day a credit repair may be requested; None when it can never be repaired early."""
        if kind != "penalty":
            return None
        never = self._never_repairable
        if any(k in never for k in fields.get("penalty_kinds") or ()):
            return None
        months = max(self._severity(fields)["repairable_after_months"],
                     self._domain_minimum(fields))
        return add_months(event_date, months)

    def _domain_minimum(self, fields: dict[str, Any]) -> int:
        """SAMR's minimum in months for the case's 领域 (0 for other domains): a listed domain
        covers those that start with it (食品 covers 食品经营, 食品安全; 药品 covers 药品生产)."""
        minimum = self.raw["penalty"]["domain_minimum"]
        domain = fields.get("domain") or ""
        if domain and any(domain.startswith(d) for d in minimum["domains"]):
            return int(minimum["repairable_after_months"])
        return 0

    def _severity(self, fields: dict[str, Any]) -> dict[str, Any]:
        table = self.raw["penalty"]["severity"]
        return table.get(fields.get("severity") or "", table[self.raw["penalty"]["default_severity"]])


def _tagged(value: Any) -> dict[str, str]:
    """TOML's dates and times in the canonical form, tagged so "2026-01-01" the string and
    2026-01-01 the date differ."""
    return {type(value).__name__: value.isoformat()}


def rules_path() -> Path:
    from publishing.settings import get_settings

    return get_settings().rules_file or DEFAULT_RULES_FILE


def read_rules(path: Path | None = None) -> Rules:
    """The rules as the file holds them now. load_rules keeps what it read first (a process's
    rules do not change under it); the long-running worker reads the file again each night so
    that an edit reaches the stored records without a restart."""
    with open(path or rules_path(), "rb") as fh:
        return Rules(tomllib.load(fh))


@lru_cache
def load_rules(path: Path | None = None) -> Rules:
    return read_rules(path)
