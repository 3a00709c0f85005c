"""Time as the bureau sees it: dates are Beijing dates, instants are stored in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

BEIJING = ZoneInfo("Asia/Shanghai")


def now() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    return datetime.now(BEIJING).date()
