"""Time as the bureau sees it: dates are Beijing dates, instants are stored in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

BEIJING = ZoneInfo("Asia/Shanghai")


def now() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    return datetime.now(BEIJING).date()


def beijing_date(at: datetime) -> date:
    """The Beijing date of an instant; a naive one is UTC (PostgreSQL gives stored ones back so)."""
    return (at.replace(tzinfo=UTC) if at.tzinfo is None else at).astimezone(BEIJING).date()
