"""Identification numbers of the sample: USCCs, old 注册号, organisation codes and resident IDs
with their check characters (private copies of GB 32100-2015, GB 11714, GB 11643 and ISO 7064,
so the generator does not lean on the code it exercises), the validity checks the tests use,
and the random resident IDs and mobile numbers that put PII into penalty facts.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {ch: i for i, ch in enumerate(_ALPHABET)}
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _uscc_check(first17: str) -> str:
    """GB 32100-2015 check character: alphabet[(31 − Σ vᵢ·wᵢ mod 31) mod 31]."""
    total = sum(_VALUE[ch] * w for ch, w in zip(first17, _WEIGHTS, strict=True))
    return _ALPHABET[(31 - total % 31) % 31]


def uscc_is_valid(code: str) -> bool:
    """A normalised 18-character USCC with the right check character (for the tests)."""
    return (
        len(code) == 18
        and code[0] in "123456789ANY"
        and code[2:8].isdigit()
        and all(ch in _VALUE for ch in code)
        and _uscc_check(code[:17]) == code[17]
    )


def _org_check(body8: str) -> str:
    """GB 11714 organisation-code check character (letters count 10 + their alphabet index)."""
    total = sum(
        (int(c) if c.isdigit() else ord(c) - 55) * w
        for c, w in zip(body8, _ORG_WEIGHTS, strict=True)
    )
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def _reg_no_check(first14: str) -> str:
    """ISO 7064 MOD 11,10 check digit of the old 15-digit 注册号."""
    p = 10
    for ch in first14:
        s = (p + int(ch)) % 10 or 10
        p = s * 2 % 11
    return str((11 - p) % 10)


def resident_id_is_valid(code: str) -> bool:
    """GB 11643 check of an 18-character resident ID number (for the tests)."""
    if len(code) != 18 or not code[:17].isdigit():
        return False
    total = sum(int(c) * w for c, w in zip(code[:17], _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == code[17]


_ID_AREAS = ("370602", "370611", "370612", "370613", "370634", "370681", "370682", "370683",
             "370684", "370685", "370686", "370687", "370702", "371002", "370283")  # fmt: skip


def _resident_id(r: random.Random) -> str:
    birth = date(1960, 1, 1) + timedelta(days=r.randrange(40 * 365))
    first17 = f"{r.choice(_ID_AREAS)}{birth:%Y%m%d}{r.randrange(1000):03d}"
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def _mobile(r: random.Random) -> str:
    return f"1{r.choice('3456789')}{r.randrange(10**9):09d}"
