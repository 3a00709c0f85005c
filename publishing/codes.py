"""Identification codes: USCC (GB 32100-2015), 注册号, resident ID numbers (GB 11643-1999).

The check algorithms are written here from the standards as the data contract states them;
python-stdnum is not used (it rejects valid USCCs starting with A, N or Y, and genuine ID
numbers whose area code is newer than the birth year).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from operator import mul

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_FIRST = frozenset("123456789ANY")  # 登记管理部门代码
_USCC_VALUE = {ch: i for i, ch in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# The whole structure in one pattern (checked before the check character).
_USCC_SHAPE = re.compile(r"[1-9ANY][0-9A-HJ-NPQRTUWXY][0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)  # 2**(17-i) mod 11
_ID_CHECK = "10X98765432"

# Whitespace and the hyphen/dash family, dropped when normalising a code.
_DROP_RE = re.compile("[\\s\\-\u2010\u2011\u2012\u2013\u2014\u2212\ufe63\uff0d]+")


def normalize_code(s: object) -> str:
    """NFKC, upper-case, without spaces or hyphens: '９１３７ ０６-０２…' → '91370602…'."""
    text = str(s)
    if text.isascii() and text.isalnum():  # the usual case, fast
        return text.upper()
    return _DROP_RE.sub("", unicodedata.normalize("NFKC", text)).upper()


def _is_digits(s: str) -> bool:
    return s.isascii() and s.isdigit()


def uscc_check_char(first17: str) -> str:
    """The 18th (check) character of a USCC whose first 17 characters are given."""
    if len(first17) != 17:
        raise ValueError("统一社会信用代码前17位长度错误")
    try:
        total = sum(map(mul, map(_USCC_VALUE.__getitem__, first17), _USCC_WEIGHTS))
    except KeyError as err:
        raise ValueError("统一社会信用代码含有非法字符") from err
    return USCC_ALPHABET[(31 - total % 31) % 31]


def uscc_problem(code: str) -> str | None:
    """Why a *normalised* code is not a valid USCC (Chinese, for the person), or None."""
    if _USCC_SHAPE.fullmatch(code):
        return None if uscc_check_char(code[:17]) == code[17] else "统一社会信用代码校验位错误"
    if len(code) != 18:
        return "统一社会信用代码应为18位"
    if any(ch not in _USCC_VALUE for ch in code):
        return "统一社会信用代码含有非法字符(I、O、S、V、Z 等不在代码字符集中)"
    if code[0] not in USCC_FIRST:
        return "统一社会信用代码第1位(登记管理部门代码)错误"
    return "统一社会信用代码第3—8位(登记管理机关行政区划码)应为数字"


def uscc_is_valid(code: str) -> bool:
    """True when the *normalised* code is a USCC with the right check character."""
    return isinstance(code, str) and uscc_problem(code) is None


def reg_no_is_valid(code: str) -> bool:
    """注册号: 15 digits (the old 工商注册号 of individual businesses)."""
    return isinstance(code, str) and len(code) == 15 and _is_digits(code)


def resident_id_check_char(first17: str) -> str:
    """The 18th (check) character of a resident ID number (ISO 7064 MOD 11-2)."""
    if len(first17) != 17 or not _is_digits(first17):
        raise ValueError("身份证号码前17位应为数字")
    total = sum(map(mul, map(int, first17), _ID_WEIGHTS))
    return _ID_CHECK[total % 11]


def _plausible_birth(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def resident_id_is_valid(s: str) -> bool:
    """18 characters with the GB 11643 check (X allowed last), or the old 15-digit form
    (15 digits whose positions 7–12 are a real date YYMMDD of the 1900s)."""
    if not isinstance(s, str):
        return False
    if len(s) == 18:
        if not _is_digits(s[:17]):
            return False
        return resident_id_check_char(s[:17]) == s[17].upper()
    if len(s) == 15 and _is_digits(s):
        return _plausible_birth(1900 + int(s[6:8]), int(s[8:10]), int(s[10:12]))
    return False
