"""Masking of personal data in published text (data contract, "Personal data").

- resident ID numbers (18 characters with the GB 11643 check, or 15 digits):
  first 6 and last 4 kept, ``370602********123X``;
- mobile numbers ``1[3-9]`` + 9 digits: ``138****5678`` (also with a ``86`` prefix);
- bank card / account numbers of 16–19 digits: all but the last 4 masked.

Only whole digit runs count: a run inside a longer run of digits is left alone, letters and
other characters are boundaries. Digits may be grouped by single spaces or hyphens
(``6222 0212 3456 7890 123``, ``138-1234-5678``, ``370602 19900101 123X``); the separators are
kept and only the digits are replaced by ``*``. Full-width digits count as digits (free text
is not NFKC-normalised before masking).

Fast path: strings shorter than 11 characters or without a candidate run are returned as is.
"""

from __future__ import annotations

import re
from typing import Any

from publishing.codes import resident_id_check_char

_D = "0-9\uff10-\uff19"  # ASCII and full-width digits
_SEP = " \\-\u00a0\u3000\uff0d"  # one space (incl. NBSP, ideographic) or hyphen between digits
# A candidate: at least 11 digits, single separators allowed between digits, an optional
# trailing X (ID numbers). Greedy, so every match is a whole run: the search only ever starts
# a match at the first digit of a run (a shorter tail of a failed run cannot reach 11 digits).
_CANDIDATE = re.compile(f"[{_D}](?:[{_SEP}]?[{_D}]){{10,}}[Xx\uff38\uff58]?")
_SEGMENT = re.compile(f"[{_D}]+[Xx\uff38\uff58]?")
_ASCII = str.maketrans("０１２３４５６７８９ｘＸx", "0123456789XXX")

_ID, _MOBILE, _MOBILE86, _BANK = "id", "mobile", "mobile86", "bank"
_KEEP_HEAD = {_ID: 6, _MOBILE: 3, _MOBILE86: 5, _BANK: 0}
_MAX_GROUP = 8  # a digit group of a grouped number (6-8-4 ID, 4-4-4-4-3 card) is short


def _classify(chars: str) -> str | None:
    """What a run of ASCII digits (maybe ending in X) is, or None when it is none of them."""
    n = len(chars)
    if chars[-1] == "X":
        return _ID if n == 18 else None  # with a wrong check: still masked like an ID
    if n == 11:
        return _MOBILE if chars[0] == "1" and chars[1] in "3456789" else None
    if n == 18:
        return _ID if resident_id_check_char(chars[:17]) == chars[17] else _BANK
    if n == 15:
        return _ID
    if n == 13 and chars.startswith("86") and chars[2] == "1" and chars[3] in "3456789":
        return _MOBILE86
    if 16 <= n <= 19:
        return _BANK
    return None


def _mask(text: str, what: str) -> str:
    """Replace the masked digits of text (a digit run, maybe with separators) by '*'."""
    positions = [i for i, ch in enumerate(text) if ch not in _SEPS]
    keep_head = _KEEP_HEAD[what]
    masked = positions[keep_head : len(positions) - 4]
    chars = list(text)
    for i in masked:
        chars[i] = "*"
    return "".join(chars)


_SEPS = frozenset(" -\u00a0\u3000\uff0d")


def _mask_run(text: str) -> str:
    """Mask one candidate run (as matched by _CANDIDATE)."""
    if text[-1] in "Xx\uff38\uff58":
        digits = sum(1 for ch in text if ch not in _SEPS) - 1
        if digits != 17:  # the X is a letter after the number, not an ID check character
            return _mask_run(text[:-1]) + text[-1] if digits >= 11 else text
    segments = [(m.start(), m.end()) for m in _SEGMENT.finditer(text)]
    if len(segments) == 1:
        what = _classify(text.translate(_ASCII))
        return _mask(text, what) if what else text
    # Grouped digits: the whole group first, then the longest classifiable sub-groups.
    out: list[str] = []
    done = 0
    i, n = 0, len(segments)
    while i < n:
        for j in range(n, i, -1):
            if j - i > 1 and not _groupable(text, segments[i:j]):
                continue
            start, end = segments[i][0], segments[j - 1][1]
            what = _classify(_digits(text[start:end]))
            if what:
                out.append(text[done:start])
                out.append(_mask(text[start:end], what))
                done, i = end, j
                break
        else:
            i += 1
    out.append(text[done:])
    return "".join(out)


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch not in _SEPS).translate(_ASCII)


def _groupable(text: str, segments: list[tuple[int, int]]) -> bool:
    """Do these digit groups plausibly form one number? Groups other than the last have 3 to
    8 digits (a country code 86 may lead); the last has at most 8. So dates (2022-03-05) and
    runs of whole numbers (two mobiles side by side) are not glued into one."""
    last = len(segments) - 1
    for k, (start, end) in enumerate(segments):
        size = end - start
        if size > _MAX_GROUP:
            return False
        if k < last and size < 3 and not (k == 0 and text[start:end] in ("86", "８６")):
            return False
    return True


def _replace(match: re.Match[str]) -> str:
    return _mask_run(match.group())


def mask_text(s: str) -> str:
    """s with every ID number, mobile number and bank card number masked."""
    if len(s) < 11 or _CANDIDATE.search(s) is None:
        return s
    return _CANDIDATE.sub(_replace, s)


def mask_value(v: Any) -> Any:
    """mask_text for strings, element-wise for lists, tuples and dict values; numbers with 11
    or more digits (a phone number typed into a numeric cell) are masked as their text."""
    if v is None:
        return None
    if isinstance(v, str):
        return mask_text(v)
    if isinstance(v, (list, tuple)):
        return [mask_value(x) for x in v]
    if isinstance(v, dict):
        return {k: mask_value(x) for k, x in v.items()}
    if isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) >= 1e10:
        text = str(int(v)) if isinstance(v, int) or v.is_integer() else repr(v)
        masked = mask_text(text)
        return masked if masked != text else v
    return v
