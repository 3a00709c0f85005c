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
# GB 32100 登记管理部门代码 (position 1, the data contract's 1-9 A N Y) → the 机构类别代码
# (position 2) it may be followed by. A code whose first two characters are not such a pair is
# no USCC, whatever its check character: e.g. a resident ID number (37… 山东) that passes it.
USCC_CATEGORIES: dict[str, str] = {
    "1": "1239",  # 机构编制: 机关, 事业单位, 中央编办直接管理机构编制的群众团体, 其他
    "2": "19",  # 外交: 外国常驻新闻机构, 其他
    "3": "123459",  # 司法行政: 律师执业机构, 公证处, 基层法律服务所, 司法鉴定机构, 仲裁委员会, 其他
    "4": "19",  # 文化: 外国在华文化中心, 其他
    "5": "1239",  # 民政: 社会团体, 民办非企业单位, 基金会, 其他
    "6": "129",  # 旅游: 外国旅游部门常驻代表机构, 港澳台地区旅游部门常驻内地(大陆)代表机构, 其他
    "7": "129",  # 宗教: 宗教活动场所, 宗教院校, 其他
    "8": "19",  # 工会: 基层工会, 其他
    "9": "123",  # 工商: 企业, 个体工商户, 农民专业合作社
    "A": "19",  # 中央军委改革和编制办公室: 军队事业单位, 其他
    "N": "1239",  # 农业: 组级, 村级, 乡镇级集体经济组织, 其他
    "Y": "1",  # 其他 (no categories: always 1)
}
USCC_FIRST = frozenset(USCC_CATEGORIES)  # 登记管理部门代码
# The valid first two characters ("91", "92", "12", "N2", "Y1" …): the one definition, also
# for publishing.redact (which leaves out 62, the start of every UnionPay card number).
USCC_HEADS = frozenset(dept + cat for dept, cats in USCC_CATEGORIES.items() for cat in cats)
_USCC_VALUE = {ch: i for i, ch in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# The whole structure in one pattern (checked before the check character), the 登记管理部门/
# 机构类别 pair included: (?:1[1239]|2[19]|…|Y1)[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}.
_USCC_SHAPE = re.compile(
    "(?:" + "|".join(f"{dept}[{cats}]" for dept, cats in USCC_CATEGORIES.items()) + ")"
    r"[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}"
)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)  # 2**(17-i) mod 11
_ID_CHECK = "10X98765432"

# Invisible characters, two classes, both removed from every text value by publishing.clean
# (and dropped from codes here): zero-width copy-paste noise that breaks search and matching
# (zero-width space, non-joiner, joiner U+200B–U+200D, word joiner and invisible operators
# U+2060–U+2064, BOM/ZWNBSP U+FEFF, soft hyphen U+00AD, Mongolian vowel separator U+180E), and
# bidi controls that can make a published name display reversed (marks U+200E/U+200F,
# embeddings and overrides U+202A–U+202E, isolates U+2066–U+2069). The same set as the one
# publishing.redact ignores between digits (its _INV): a regex character class.
INVISIBLE = "\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
INVISIBLE_RE = re.compile(f"[{INVISIBLE}]")  # one character: re scans for a class prefix fast

# Whitespace, the hyphen/dash family and invisible characters, dropped when normalising a code.
_DROP_RE = re.compile(f"[\\s\\-\u2010\u2011\u2012\u2013\u2014\u2212\ufe63\uff0d{INVISIBLE}]+")


def normalize_code(s: object) -> str:
    """NFKC, upper-case, without spaces, hyphens or invisible characters (INVISIBLE):
    '９１３７ ０６-０２…' → '91370602…'."""
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


R_USCC_HEAD = "统一社会信用代码第1—2位(登记管理部门/机构类别代码)无效"
R_USCC_HEAD_ID = R_USCC_HEAD + "(疑似身份证号)"


def uscc_problem(code: str) -> str | None:
    """Why a *normalised* code is not a valid USCC (Chinese, for the person), or None.
    The 登记管理部门/机构类别 pair is checked before the check character: a resident ID number
    (the 18 characters of many pass the USCC check too) is named as such."""
    if _USCC_SHAPE.fullmatch(code):
        return None if uscc_check_char(code[:17]) == code[17] else "统一社会信用代码校验位错误"
    if len(code) != 18:
        return "统一社会信用代码应为18位"
    if any(ch not in _USCC_VALUE for ch in code):
        return "统一社会信用代码含有非法字符(I、O、S、V、Z 等不在代码字符集中)"
    if code[0] not in USCC_FIRST:
        return "统一社会信用代码第1位(登记管理部门代码)错误"
    if code[:2] not in USCC_HEADS:
        return _head_problem(code)
    return "统一社会信用代码第3—8位(登记管理机关行政区划码)应为数字"


def _head_problem(code: str) -> str:
    return R_USCC_HEAD_ID if resident_id_is_valid(code) else R_USCC_HEAD


def uscc_is_valid(code: str) -> bool:
    """True when the *normalised* code is a USCC with the right check character."""
    return isinstance(code, str) and uscc_problem(code) is None


def reg_no_is_valid(code: str) -> bool:
    """注册号: 15 digits (the old 工商注册号 of individual businesses)."""
    return isinstance(code, str) and len(code) == 15 and _is_digits(code)


def reg_no_check_ok(code: str) -> bool:
    """The GS 15-2006 check (ISO 7064 MOD 11,10) of a 15-digit 注册号: 110108000000016."""
    p = 10
    for ch in code[:14]:
        p = ((p + ord(ch) - 48) % 10 or 10) * 2 % 11
    return (p + ord(code[14]) - 48) % 10 == 1


def reg_no_is_id_like(code: str) -> bool:
    """A 15-digit code that reads as an old resident ID number (a 1900s birth date YYMMDD at
    positions 7–12) and fails the GS 15 check: personal data, not a 注册号 to publish. The rule
    publishing.redact applies to 15 digits after a 注册号 label; a 个体 注册号 (sequence 6–9…)
    may read as a birth date, so only its check digit tells them apart."""
    return resident_id_is_valid(code) and not reg_no_check_ok(code)


# The reasons of reg_no_problem; R_REG_NO_ID is also publishing.clean's reject reason.
R_REG_NO_ID = "注册号疑似身份证号(第7—12位为出生日期且不符合注册号校验规则 GS 15)"
R_REG_NO_CHECK = "注册号校验位错误(不符合注册号校验规则 GS 15)"


def reg_no_problem(code: str) -> str | None:
    """What is doubtful about a 15-digit 注册号, for a reader checking it (publishing.creditcheck),
    or None: an old resident ID number (what publishing rejects), or a failed GS 15 check digit
    (which publishing accepts: older 注册号 may fail it, so it only warns)."""
    if reg_no_is_id_like(code):
        return R_REG_NO_ID
    return None if reg_no_check_ok(code) else R_REG_NO_CHECK


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
