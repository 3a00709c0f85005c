"""Value spellings of the sample files: ISO and the contract's other date forms, messy-but-valid
codes and district names, amounts in yuan, and the working day an event date falls on.
"""

from __future__ import annotations

from datetime import date, timedelta

from publishing.sample.vocab import _DISTRICT_MESSY

_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def _iso(d: date) -> str:
    return d.isoformat()


def _date_text(d: date, style: int) -> str:
    """The contract's other date spellings: 2022/3/5, 2022.3.5, 2022年3月5日, 20220305."""
    style %= 4
    if style == 0:
        return f"{d.year}/{d.month}/{d.day}"
    if style == 1:
        return f"{d.year}.{d.month}.{d.day}"
    if style == 2:
        return f"{d.year}年{d.month}月{d.day}日"
    return f"{d:%Y%m%d}"


def _cn_date(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _messy_code(code: str, style: int) -> str:
    style %= 5
    if style == 0:
        return code.lower()
    if style == 1:
        return " ".join(code[k : k + 4] for k in range(0, 18, 4))
    if style == 2:
        return f"{code[:8]}-{code[8:17]}-{code[17]}"
    if style == 3:
        return code.translate(_FULLWIDTH)
    return f" {code} "


def _messy_district(code: str, style: int) -> str:
    forms = _DISTRICT_MESSY[code]
    return forms[style % len(forms)]


def _yuan(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _workday(d: date, today: date) -> date:
    """A working day near d, never after today: Saturday → Friday, Sunday → Monday (or Friday)."""
    wd = d.weekday()
    if wd == 5:
        d -= timedelta(days=1)
    elif wd == 6:
        d += timedelta(days=1) if d < today else timedelta(days=-2)
    return min(d, today)
