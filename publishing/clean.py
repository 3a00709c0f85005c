"""Cleaning: SourceRow → CleanRow (normalised, validated, masked) or the list of its Rejects.

Every rule of the data contract's "Values", kind tables and "Bad input" is applied here; the
value parsers (dates, money, integers) are public for the readers, the sample generator and
the tests. Reasons are in Chinese, for the person who fixes the file.

Speed: a Cleaner precomputes one handler per column in __init__; low-cardinality columns
(dates, districts, enums, money, authorities …) cache their results per raw value, so the
per-row cost is mostly dict look-ups plus masking of the free text.

Every text value loses its invisible characters (codes.INVISIBLE: zero-width and bidi
controls) before anything else, and text that is an Excel error value (#N/A …) is rejected as
an XLSX error cell is; both behind pre-checks in C (isprintable, "#" in text).
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from publishing.codes import (
    INVISIBLE_RE,
    R_REG_NO_ID,
    normalize_code,
    reg_no_is_id_like,
    reg_no_is_valid,
    uscc_problem,
)
from publishing.contract import ENTITY_COLUMNS, EVENT_DATE, KIND_COLUMNS, Column, district_code
from publishing.redact import mask_text, mask_value
from publishing.rows import BadValue, CleanRow, EntityFields, Reject, SourceRow, excel_error_reason

ERROR_KEY = "__error__"  # a SourceRow value carrying why the row could not be read at all
RAW_KEY = "__raw__"  # optional: the unreadable text, reported as the reject's value

# -- reasons ------------------------------------------------------------------------------
R_REQUIRED = "必填项为空"
R_TYPE = "值的类型不正确"
R_NO_ID = "统一社会信用代码和注册号均为空"
R_REG_NO = "注册号应为15位数字"
R_REG_NO_CONFLICT = "统一社会信用代码列中的15位注册号与注册号列不一致"
R_DISTRICT = "所属区市无法识别"
R_OP = "操作应为 新增/更新/撤销"
R_DATE_FORMAT = "日期格式无法识别"
R_DATE_RANGE = "日期年份超出合理范围(1900—2100)"
R_DATE_MISSING = "日期不存在"
R_FUTURE = "日期晚于今天"
R_MONEY_FORMAT = "金额格式无法识别"
R_MONEY_NEGATIVE = "金额不能为负数"
R_MONEY_CENTS = "金额应精确到分(最多两位小数)"
R_MONEY_LARGE = "金额过大"
R_FINE_CONFLICT = "罚款金额(元)与罚款金额(万元)不一致"
R_INT = "应为整数"
R_SIMPLE = "简易程序案件不予公示"
R_PROCEDURE = "程序类型应为 普通/一般/简易"
R_ENDS_BEFORE = "{end}早于{start}"  # an explicit end of publicity before the record's date
R_SEVERITY = "失信程度应为 轻微/一般/严重"
R_GRADE = "分类结果应为 A/B/C/D/E"
R_GRADE_REQUIRED = "信用风险分类的分类结果为空"
R_RETURN_DAYS = "退货期限不得少于7天"
R_REFUND_DAYS = "退款期限不能为负数"
R_MODEL_UNIT = "示范单位应为 是/否"
R_STATUS = "状态应为 有效/撤销"
R_ISSUE_NO = "期次格式无法识别(应如 2022年第3期 或 第3期)"
R_PERSONAL = "疑似个人信息(身份证号、手机号或银行卡号)，不予公示"
R_DUPLICATE = "与第{row}行重复(自然键相同)"
R_CODE_NUMBER = "代码被保存为数字，精度已丢失，请将该列设为文本格式"
# Rejects that say the row is never published by rule, not that a value is wrong: such a row
# cannot be a record still published (a snapshot's withdrawals go ahead). Not R_PERSONAL,
# R_FUTURE or R_RETURN_DAYS: a mistyped cell of a published record reads the same.
NEVER_PUBLISHED = frozenset({R_SIMPLE})
KEY_CELLS = "key_cells"  # CleanRow.extra of a withdrawal: the key's (columns, cells) in file terms

RISK_SCHEME = "信用风险分类"
DEFAULT_DOMAIN = {"credit_mark": "通用"}
_CENT = Decimal("0.01")
_WAN = Decimal(10000)
_EXCEL_EPOCH = date(1899, 12, 30)
# From 1990: no record of these kinds is older, and a year typed with one digit too many
# ("20260") read as 1955-06-20 was published as long expired instead of rejected.
_SERIAL_MIN = (date(1990, 1, 1) - _EXCEL_EPOCH).days  # 32874
_SERIAL_MAX = (date(2099, 12, 31) - _EXCEL_EPOCH).days  # 73050
_CACHE_LIMIT = 4096  # distinct raw values remembered per column


def _nfkc(s: str) -> str:
    return unicodedata.normalize("NFKC", s)


def _squash(s: str) -> str:
    """NFKC without any whitespace: for codes, enums, keys."""
    return "".join(unicodedata.normalize("NFKC", s).split())


# -- Chinese numerals (七天, 第三期) ---------------------------------------------------------
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}  # fmt: skip
_CN_UNITS = {"十": 10, "百": 100}


def _cn_int(text: str) -> int | None:
    """一 … 九百九十九 as an int; None when text is not such a numeral."""
    if not text:
        return None
    total, current = 0, 0
    for ch in text:
        if ch in _CN_DIGITS:
            current = _CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            total += (current or 1) * _CN_UNITS[ch]
            current = 0
        else:
            return None
    return total + current


# -- dates ---------------------------------------------------------------------------------
_TIME = r"(?:(?:\s+|T)\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_DATE_SEP = re.compile(
    r"(?P<y>\d{4})\s*(?P<s>[-/.])\s*(?P<m>\d{1,2})\s*(?P=s)\s*(?P<d>\d{1,2})" + _TIME
)
_DATE_CN = re.compile(r"(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号]?" + _TIME)
_DATE_COMPACT = re.compile(r"(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})")
_DATE_SERIAL = re.compile(r"\d{5}(?:\.\d+)?")


def _ymd(year: int, month: int, day: int) -> date:
    if not 1900 <= year <= 2100:
        raise ValueError(R_DATE_RANGE)
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"{R_DATE_MISSING}({year}年{month}月{day}日)") from None


def _from_serial(serial: float) -> date:
    if not _SERIAL_MIN <= serial < _SERIAL_MAX + 1:
        raise ValueError(R_DATE_FORMAT + "(数字既不是 YYYYMMDD 也不是合理的 Excel 日期序列号)")
    return _EXCEL_EPOCH + timedelta(days=int(serial))


def _from_number(n: int | float) -> date:
    if n == int(n) and 19000101 <= n <= 21001231:
        text = str(int(n))
        return _ymd(int(text[:4]), int(text[4:6]), int(text[6:]))
    return _from_serial(n)


def parse_date(v: Any) -> date:
    """A date from `2022-03-05`, `2022/3/5`, `2022.3.5`, `2022年3月5日`, `20220305`, a date or
    datetime, or an Excel serial number (epoch 1899-12-30; 1990–2099, also as a 5-digit
    string). A time of day after the date is ignored. ValueError (Chinese reason) otherwise."""
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    if isinstance(v, bool):
        raise ValueError(R_DATE_FORMAT)
    if isinstance(v, int):
        return _from_number(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(R_DATE_FORMAT)
        return _from_number(v)
    if not isinstance(v, str):
        raise ValueError(R_DATE_FORMAT)
    text = _nfkc(v).strip()
    m = _DATE_SEP.fullmatch(text) or _DATE_CN.fullmatch(text) or _DATE_COMPACT.fullmatch(text)
    if m is not None:
        return _ymd(int(m["y"]), int(m["m"]), int(m["d"]))
    if _DATE_SERIAL.fullmatch(text):
        return _from_serial(float(text))
    raise ValueError(R_DATE_FORMAT)


# -- money and integers --------------------------------------------------------------------
_MONEY = re.compile(r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+")
_MONEY_PREFIXES = ("人民币", "RMB", "¥")
_FLOAT_NOISE = Decimal("1e-6")


def parse_money(v: Any, unit: str = "yuan") -> Decimal:
    """An exact amount in yuan. unit "yuan" (元) or "wan" (万元, × 10000). Strings may have
    thousands separators, full-width digits, a leading 人民币/¥ and a trailing 元 or 万元 (a
    unit written in the value wins over the column's). Floats go through repr (no binary noise).
    Negative amounts are rejected."""
    factor = _WAN if unit in ("wan", "万元") else Decimal(1)
    if isinstance(v, bool):
        raise ValueError(R_MONEY_FORMAT)
    if isinstance(v, Decimal):
        if not v.is_finite():
            raise ValueError(R_MONEY_FORMAT)
        amount = v
    elif isinstance(v, int):
        amount = Decimal(v)
    elif isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(R_MONEY_FORMAT)
        amount = Decimal(repr(v))
        exponent = amount.as_tuple().exponent  # an int for a finite number
        if isinstance(exponent, int) and exponent < -6:  # 9.899999999999999 from spreadsheet arithmetic
            amount = amount.quantize(_FLOAT_NOISE)
    elif isinstance(v, str):
        text = _squash(v).upper()
        for prefix in _MONEY_PREFIXES:
            text = text.removeprefix(prefix)
        text = text.removesuffix("整")
        yuan = text.endswith("元")
        text = text.removesuffix("元")
        if text.endswith("万"):
            text, factor = text[:-1], _WAN
        elif yuan:  # "5000元" in a 万元 column: the unit written in the value wins
            factor = Decimal(1)
        if text.startswith(("-", "负")):
            raise ValueError(R_MONEY_NEGATIVE)
        if not _MONEY.fullmatch(text):
            raise ValueError(R_MONEY_FORMAT)
        amount = Decimal(text.replace(",", ""))
    else:
        raise ValueError(R_MONEY_FORMAT)
    if amount < 0:
        raise ValueError(R_MONEY_NEGATIVE)
    return amount * factor


def money_text(amount: Decimal) -> str:
    """The canonical text of an amount in yuan: exactly two decimals ("50000.00")."""
    try:
        cents = amount.quantize(_CENT)
    except InvalidOperation:
        raise ValueError(R_MONEY_LARGE) from None
    if cents != amount:
        raise ValueError(R_MONEY_CENTS)
    return str(cents)


_INT = re.compile(r"[+-]?\d+(?:\.0*)?")


def parse_int(v: Any) -> int:
    """An integer from an int, an integral float, or text such as `7`, `７`, `7天`, `七天`."""
    if isinstance(v, bool):
        raise ValueError(R_INT)
    if isinstance(v, int):
        return v
    if isinstance(v, (float, Decimal)):
        if not math.isfinite(v) or v != int(v):
            raise ValueError(R_INT)
        return int(v)
    if not isinstance(v, str):
        raise ValueError(R_INT)
    text = _squash(v).removesuffix("天").removesuffix("日")
    if _INT.fullmatch(text):
        return int(text.split(".")[0])
    number = _cn_int(text)
    if number is None:
        raise ValueError(R_INT)
    return number


# -- text ----------------------------------------------------------------------------------
_LIST_SPLIT = re.compile(r"[、，,;；\n]")
# Digit groups of masked text, and what may stand between two of one number (list separators
# among them: line breaks and commas).
_DIGIT_GROUP = re.compile(r"[0-9\uff10-\uff19*]+")
_BETWEEN_GROUPS = re.compile(r"(?<=[0-9\uff10-\uff19*])[\s,，、]+(?=[0-9\uff10-\uff19*])")


def _text(raw: Any) -> str:
    """A raw value as text (numbers typed into spreadsheet cells included)."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool) or not isinstance(raw, (int, float, Decimal, date)):
        raise ValueError(R_TYPE)
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    if isinstance(raw, date):
        return raw.isoformat()
    return str(raw)


# Excel's error values: a CSV export writes an error cell as this text, and a cell may hold it.
EXCEL_ERRORS = frozenset({
    "#N/A", "#VALUE!", "#REF!", "#DIV/0!", "#NAME?", "#NUM!", "#NULL!",  # every Excel
    "#SPILL!", "#CALC!", "#FIELD!", "#BLOCKED!", "#CONNECT!", "#BUSY!", "#UNKNOWN!",  # 365
    "#GETTING_DATA",
})  # fmt: skip


def excel_error(text: str) -> str | None:
    """The Excel error value that the (trimmed) text is, in Excel's spelling, or None."""
    if text[:1] != "#":
        return None
    error = text.upper()
    return error if error in EXCEL_ERRORS else None


def drop_invisible(text: str) -> str:
    """text without its invisible characters (zero-width and bidi controls, codes.INVISIBLE)."""
    return INVISIBLE_RE.sub("", text)


def _visible_text(text: str) -> str:
    """drop_invisible; ValueError when what is left is an Excel error value ("#N/A\u200b")."""
    text = drop_invisible(text)
    error = excel_error(text.strip())
    if error is not None:
        raise ValueError(excel_error_reason(error))
    return text


def _list_items(items: list[Any]) -> list[Any]:
    """The items of a JSON array without invisible characters; an Excel error value rejects."""
    return [_visible_text(item) if item.__class__ is str else item for item in items]


def _blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def _line(raw: Any) -> str:
    """Single-line text: trimmed, inner whitespace runs collapsed, masked. No NFKC."""
    return mask_text(" ".join(_text(raw).split()))


def _free(raw: Any) -> str:
    """Free text: trimmed (inner line breaks kept), masked. No NFKC: Chinese punctuation stays."""
    return mask_text(_text(raw).strip())


def _items(raw: Any) -> list[str]:
    """A list column: split on 、，,;； and line breaks (or a JSON array), items trimmed, empty
    ones dropped, masked."""
    parts = raw if isinstance(raw, (list, tuple)) else _split_masked(_text(raw))
    items = [mask_text(" ".join(_text(p).split())) for p in parts if not _blank(p)]
    return items


def _split_masked(text: str) -> list[str]:
    """text masked as a whole, then split on the list separators, but not on one inside a
    number the masker read across it: split first, the pieces of 赵六（370602,19851105,5982）
    or 139⏎1501⏎0507 were each too short to mask. Such a separator stands between two digit
    groups, one of which is masked otherwise when every separator is taken as the end of a
    number (13900151015,13900161016 is two mobiles: split)."""
    masked = mask_text(text)
    if masked is text:  # nothing to mask (mask_text's fast path returns the same object)
        return _LIST_SPLIT.split(text)
    alone = mask_text(_LIST_SPLIT.sub("。", text))  # 。 ends every number
    changed: dict[int, bool] = {}  # a digit group's start and end: masked otherwise alone?
    for m in _DIGIT_GROUP.finditer(masked):
        start, end = m.span()
        changed[start] = changed[end] = masked[start:end] != alone[start:end]
    inside: set[int] = set()  # separators inside a number
    for m in _BETWEEN_GROUPS.finditer(masked):
        if changed[m.start()] or changed[m.end()]:
            inside.update(range(m.start(), m.end()))
    parts, start = [], 0
    for m in _LIST_SPLIT.finditer(masked):
        if m.start() not in inside:
            parts.append(masked[start : m.start()])
            start = m.end()
    parts.append(masked[start:])
    return parts


# -- enumerations ----------------------------------------------------------------------------
_OPS = {"新增": "upsert", "更新": "upsert", "新增或更新": "upsert", "add": "upsert",
        "update": "upsert", "upsert": "upsert", "撤销": "withdraw", "withdraw": "withdraw"}  # fmt: skip
_PROCEDURES = {"普通": "普通", "一般": "普通", "普通程序": "普通", "一般程序": "普通"}
# An affirmative 简易 程序类型 (after _squash: no whitespace, （） as ()), with an optional
# remark in brackets: 简易程序（当场）, 简易(当场处罚). One that only mentions it
# (简易程序转普通程序, 非简易程序) is not a 简易 case: it gets the generic reject, and so is not
# taken for a record the bureau never publishes (a snapshot's withdrawals stop for it).
_SIMPLE = re.compile(r"(?:简易|简易程序|适用简易程序|简易程序案件)(?:\([^()]*\))?")
_SEVERITIES = ("轻微", "一般", "严重")
_SCHEME_ALIASES = {
    "企业信用风险分类": RISK_SCHEME,
    "信用风险分类结果": RISK_SCHEME,
    "严重违法失信企业名单": "严重违法失信名单",
    "列入严重违法失信名单": "严重违法失信名单",
    "列入经营异常名录": "经营异常名录",
}
_GRADE = re.compile(r"([A-E])(?:类|级)?(?:\(.*\))?")
_YES = frozenset({"是", "y", "yes", "true", "1", "√", "✓", "示范单位"})
_NO = frozenset({"否", "n", "no", "false", "0", "×", "✗"})
_STATUS_WITHDRAWN = frozenset({"撤销", "已撤销", "withdrawn", "withdraw"})
_STATUS_VALID = frozenset({"有效", "active", "valid"})
_ISSUE_NO = re.compile(
    r"(?:(?P<y>\d{4})(?:年第?|第))?第?(?P<n>\d+|[〇零一二两三四五六七八九十百]+)期"
)
_YEAR_BRACKETS = re.compile(r"[\[【(〔〖（［﹝]\s*(\d{4})\s*[\]】)〕〗）］﹞]")


def _op(raw: Any) -> str:
    op = _OPS.get(_squash(_text(raw)).lower())
    if op is None:
        raise ValueError(R_OP)
    return op


def _district(raw: Any) -> str:
    code = district_code(_text(raw))
    if code is None:
        raise ValueError(R_DISTRICT)
    return code


def _uscc(raw: Any) -> str:
    """A valid USCC, or a 15-digit 注册号 written in the USCC column (resolved in _entity)."""
    code = normalize_code(_text(raw))
    if reg_no_is_valid(code):
        return _not_id(code)
    problem = uscc_problem(code)
    if problem:
        raise ValueError(problem)
    return code


def _reg_no(raw: Any) -> str:
    code = normalize_code(_text(raw))
    if not reg_no_is_valid(code):
        raise ValueError(R_REG_NO)
    return _not_id(code)


def _not_id(reg_no: str) -> str:
    """The 注册号, unless it is an old resident ID number: code fields are published unmasked
    (an entity's id, search, credit check), so one is rejected where free text masks it."""
    if reg_no_is_id_like(reg_no):
        raise ValueError(R_REG_NO_ID)
    return reg_no


def normalize_decision_no(text: str) -> str:
    """行政处罚决定书文号: NFKC, no spaces, the year in 〔〕: 烟芝市监罚[2023]123号 → 烟芝市监罚〔2023〕123号."""
    return _YEAR_BRACKETS.sub(_year_in_brackets, _squash(text))


def _year_in_brackets(m: re.Match[str]) -> str:
    return f"〔{m[1]}〕"  # a function: much faster than a template replacement


def _masked_squash(text: str) -> str:
    """_squash between two masks: the first sees digit groups (370602 19800116 1232) that the
    squash would glue into an unrecognisable run, the second runs that only the squash joins."""
    return mask_text(_squash(mask_text(text)))


def _decision_no(raw: Any) -> str:
    return mask_text(_YEAR_BRACKETS.sub(_year_in_brackets, _squash(mask_text(_text(raw)))))


def _issue_no(raw: Any) -> tuple[int | None, int]:
    """(year or None, number) of 期次; the year is completed from issued_on in _post."""
    m = _ISSUE_NO.fullmatch(_squash(_text(raw)))
    if m is None:
        raise ValueError(R_ISSUE_NO)
    number = int(m["n"]) if m["n"].isdigit() else _cn_int(m["n"])
    if not number:
        raise ValueError(R_ISSUE_NO)
    return (int(m["y"]) if m["y"] else None, number)


def _procedure(raw: Any) -> str:
    text = _squash(_text(raw))
    if _SIMPLE.fullmatch(text):  # 简易程序, 适用简易程序, 简易(当场处罚) …: never published
        raise ValueError(R_SIMPLE)
    try:
        return _PROCEDURES[text]
    except KeyError:
        raise ValueError(R_PROCEDURE) from None


def _severity(raw: Any) -> str:
    text = _squash(_text(raw)).removesuffix("失信")
    if text not in _SEVERITIES:
        raise ValueError(R_SEVERITY)
    return text


def _scheme(raw: Any) -> str:
    text = _text(raw)
    return _SCHEME_ALIASES.get(_squash(text)) or _masked_squash(text)


def _label(raw: Any) -> str:
    """A short category label (领域, 监管领域): NFKC, no spaces, masked."""
    return _masked_squash(_text(raw))


def _grade(raw: Any) -> str:
    m = _GRADE.fullmatch(_squash(_text(raw)).upper())
    if m is None:
        raise ValueError(R_GRADE)
    return m[1]


def _model_unit(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = _squash(_text(raw)).lower()
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise ValueError(R_MODEL_UNIT)


def _status_withdraws(raw: Any) -> bool:
    text = _squash(_text(raw)).lower()
    if text in _STATUS_WITHDRAWN:
        return True
    if text in _STATUS_VALID:
        return False
    raise ValueError(R_STATUS)


def _min_int(minimum: int, reason: str) -> Callable[[Any], int]:
    def parse(raw: Any) -> int:
        number = parse_int(raw)
        if number < minimum:
            raise ValueError(reason)
        return number

    return parse


def _money(unit: str) -> Callable[[Any], Decimal]:
    def parse(raw: Any) -> Decimal:
        amount = parse_money(raw, unit)
        money_text(amount)  # validates: at most cents, not too large
        return amount

    return parse


# -- the column plan -----------------------------------------------------------------------
# Handlers by column key (kind-specific ones override); otherwise by the contract column type.
_BY_KEY: dict[str, Callable[[Any], Any]] = {
    "uscc": _uscc,
    "reg_no": _reg_no,
    "district": _district,
    "op": _op,
    "decision_no": _decision_no,
    "issue_no": _issue_no,
    "procedure": _procedure,
    "severity": _severity,
    "scheme": _scheme,
    "grade": _grade,
    "domain": _label,
    "model_unit": _model_unit,
    "status": _status_withdraws,
    "fine_yuan": _money("yuan"),
    "fine_wan": _money("wan"),
    "confiscated_yuan": _money("yuan"),
    "return_days": _min_int(7, R_RETURN_DAYS),
    "refund_days": _min_int(0, R_REFUND_DAYS),
}
_BY_TYPE: dict[str, Callable[[Any], Any]] = {
    "text": _line,
    "list": _items,
    "date": parse_date,
    "money": _money("yuan"),
    "int": parse_int,
    "enum": _line,
    "code": normalize_code,
}
FREE_TEXT = frozenset(
    {"violation", "action", "facts", "basis", "reason", "conditions", "exclusions"}
)
# Blank → this value instead of None.
_DEFAULTS: dict[tuple[str, str], Any] = {
    ("*", "op"): "upsert",
    ("*", "procedure"): "普通",
    ("*", "severity"): "一般",
    ("*", "model_unit"): False,
    ("*", "status"): False,
    ("credit_mark", "domain"): DEFAULT_DOMAIN["credit_mark"],
}
# Columns with few distinct values: their results are cached per raw value.
_CACHED = frozenset({
    "district", "op", "procedure", "severity", "scheme", "grade", "domain", "model_unit",
    "status", "fine_yuan", "fine_wan", "confiscated_yuan", "return_days", "refund_days",
    "issue_no", "publisher", "authority", "violation_type", "basis", "penalty_kinds", "category",
    "conditions", "exclusions", "action",
})  # fmt: skip
# Columns of codes and document numbers: a number in one is digits someone typed, not a figure.
IDENTIFIERS = frozenset(
    {col.key for col in ENTITY_COLUMNS if col.type == "code"} | {"decision_no"}
)
# Excel keeps 15 significant digits (a float of 16 or more integer digits has lost some) and
# a double every integer below 2**53 (a bigger JSON integer may have passed through one).
_EXACT_FLOAT = 1e15
_EXACT_INT = 2**53
# Columns of numbers, published as figures (not masked): digits that read as personal data reject.
_NUMBER_TYPES = frozenset({"money", "int"})
_NUMBER_KEYS = frozenset({"issue_no"})  # 期次: the issue's number
# Event dates may not lie in the future.
_NOT_FUTURE = frozenset(EVENT_DATE.values())
# Date columns as the contract names them (reasons of the cross-field date check).
_LABELS = {col.key: col.label for cols in KIND_COLUMNS.values() for col in cols
           if col.type == "date"}
# Kind columns that are not fields: fine_wan is folded into fine_yuan, status into op.
_NOT_FIELDS = frozenset({"fine_wan", "status"})


def field_keys(kind: str) -> tuple[str, ...]:
    """A kind's fields, in the order a cleaned row lists them."""
    return tuple(col.key for col in KIND_COLUMNS[kind] if col.key not in _NOT_FIELDS)


class _Failed:
    """Marks a column whose value was rejected (cross-field checks skip it)."""

    __slots__ = ()


FAILED = _Failed()


class _Error:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _cached(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    cache: dict[Any, Any] = {}

    def lookup(raw: Any) -> Any:
        key = raw if raw.__class__ is str else (raw.__class__, raw)
        try:
            hit = cache[key]
        except KeyError:
            try:
                hit = fn(raw)
            except ValueError as err:
                hit = _Error(str(err))
            if len(cache) < _CACHE_LIMIT:
                cache[key] = hit
        except TypeError:  # unhashable (a JSON list)
            return fn(raw)
        if hit.__class__ is _Error:
            raise ValueError(hit.reason)
        if hit.__class__ is list:
            return list(hit)
        return hit

    return lookup


def _column_handler(kind: str, col: Column, today: date) -> Callable[[Any], Any]:
    """One function raw → value for the column: blank handling, parsing, caching."""
    parse = _BY_KEY.get(col.key) or (_free if col.key in FREE_TEXT else _BY_TYPE[col.type])
    if col.key in _NOT_FUTURE:
        parse = _not_after(parse, today)
    if col.type in _NUMBER_TYPES or col.key in _NUMBER_KEYS:
        parse = _not_personal(parse)
    if col.key in IDENTIFIERS:
        parse = _exact_code(parse)
    required = col.required
    is_list = col.type == "list"
    default = _DEFAULTS.get((kind, col.key), _DEFAULTS.get(("*", col.key)))

    def handle(raw: Any) -> Any:
        if raw is None:
            if required:
                raise ValueError(R_REQUIRED)
            return [] if is_list else default  # a blank list column: an empty list
        if raw.__class__ is str:
            # Fast pre-checks, no per-character work in Python: nearly all text passes
            # isprintable() (one C scan); only text with a non-printable character (a line
            # break, U+3000 …) is searched for invisible ones, removed before anything else (a
            # name of only a zero-width space is blank). "#" in raw is a memchr.
            if not raw.isprintable():
                raw = _visible_text(raw)
            if not raw.strip():
                if required:
                    raise ValueError(R_REQUIRED)
                return [] if is_list else default
            if "#" in raw and (error := excel_error(raw.strip())) is not None:
                raise ValueError(excel_error_reason(error))
            return parse(raw)
        if raw.__class__ is list:  # a JSON array: its items are text like any other
            raw = _list_items(raw)
        return parse(raw)

    if col.key in _CACHED or col.type == "date":
        return _cached(handle)  # blanks and their defaults are cached too
    return handle


def _not_personal(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """parse, but a value whose digits read as an ID, a mobile or a card number (mask_value
    masks them: 罚款 13900151015, 第13900151015期) is rejected: it is personal data typed into
    the wrong cell, not a figure to publish, and a number column is published unmasked."""

    def check(raw: Any) -> Any:
        masked = mask_value(raw)
        if masked is not raw and masked != raw:
            raise ValueError(R_PERSONAL)
        return parse(raw)

    return check


def _exact_code(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """parse, but a number too long to hold every digit of a code is rejected: an 18-digit
    code in a number cell became 923706025634311936, a valid code in 1 of 31 cases, another
    entity's."""

    def check(raw: Any) -> Any:
        cls = raw.__class__
        if (cls is float and abs(raw) >= _EXACT_FLOAT) or (cls is int and abs(raw) >= _EXACT_INT):
            raise ValueError(R_CODE_NUMBER)
        return parse(raw)

    return check


def _not_after(parse: Callable[[Any], Any], today: date) -> Callable[[Any], Any]:
    def check(raw: Any) -> Any:
        day = parse(raw)
        if day > today:
            raise ValueError(R_FUTURE)
        return day

    return check


# -- kinds ---------------------------------------------------------------------------------
Values = dict[str, Any]


@dataclass(frozen=True)
class KindSpec:
    """How one kind is cleaned beyond its columns: keys, cross-field rules, dates."""

    natural_key: Callable[[Values, str], tuple[str, ...]]  # (values, entity id) → key
    key_columns: tuple[str, ...]  # the columns of natural_key, in order ("entity": its id)
    post: Callable[[Cleaner, Values, list[tuple[str, Any, str]]], None] | None = None
    entity: bool = True  # district_board (planned) has no entity columns
    publicity: tuple[str, ...] = ("publicity_until",)  # the first present one ends publicity
    identity_extra: tuple[str, ...] = ()  # fields appended to the natural key in identity


def _post_blacklist(cleaner: Cleaner, v: Values, errors: list[tuple[str, Any, str]]) -> None:
    issue, issued_on = v["issue_no"], v["issued_on"]
    if isinstance(issue, tuple):
        year = issue[0] if issue[0] is not None else getattr(issued_on, "year", None)
        v["issue_no"] = f"{year}年第{issue[1]}期" if year else FAILED


def _post_penalty(cleaner: Cleaner, v: Values, errors: list[tuple[str, Any, str]]) -> None:
    yuan, wan = v["fine_yuan"], v["fine_wan"]
    if isinstance(wan, Decimal):
        if isinstance(yuan, Decimal) and yuan != wan:
            errors.append(("fine_wan", cleaner._raw.get("fine_wan"), R_FINE_CONFLICT))
        elif yuan is None:
            v["fine_yuan"] = wan


def _post_credit_mark(cleaner: Cleaner, v: Values, errors: list[tuple[str, Any, str]]) -> None:
    if v["scheme"] == RISK_SCHEME and v["grade"] is None:
        errors.append(("grade", None, R_GRADE_REQUIRED))


def _post_return_pledge(cleaner: Cleaner, v: Values, errors: list[tuple[str, Any, str]]) -> None:
    if v["status"] is True:
        v["op"] = "withdraw"


KINDS: dict[str, KindSpec] = {
    "blacklist": KindSpec(
        natural_key=lambda v, eid: (v["publisher"], v["issue_no"], eid, v["products"] or ""),
        key_columns=("publisher", "issue_no", "entity", "products"),
        post=_post_blacklist,
    ),
    "penalty": KindSpec(
        natural_key=lambda v, eid: (v["decision_no"],), key_columns=("decision_no",),
        post=_post_penalty,
    ),
    "credit_mark": KindSpec(
        natural_key=lambda v, eid: (eid, v["scheme"], v["domain"]),
        key_columns=("entity", "scheme", "domain"),
        post=_post_credit_mark,
        publicity=("valid_until",),
        identity_extra=("marked_on",),
    ),
    "return_pledge": KindSpec(
        natural_key=lambda v, eid: (eid, v["address"] or ""), key_columns=("entity", "address"),
        post=_post_return_pledge, publicity=(),
    ),
}


# Column type → JSON-ready form of its value (other types are JSON-ready already).
_TO_JSON: dict[str, Callable[[Any], Any]] = {"date": date.isoformat, "money": money_text}


def key_digest(parts: tuple[str, ...]) -> int:
    """A 64-bit digest of a natural key (as wide as a record id's), to remember many keys."""
    return int.from_bytes(hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest())


class SeenKeys:
    """The natural keys of a file so far, and the row each came from.

    A million keys take ~75 MB as a set of digests plus two flat arrays in row order, where a
    dict of digest -> row took ~120 MB. The dict is built only when a key first repeats."""

    def __init__(self) -> None:
        self._digests: set[int] = set()
        self._order = array("Q")  # digests in row order
        self._rows = array("I")  # their row numbers
        self._first: dict[int, int] | None = None

    def first_row(self, digest: int, row: int) -> int:
        """The row the key was first seen in: this row when it is new."""
        if digest not in self._digests:
            self._digests.add(digest)
            self._order.append(digest)
            self._rows.append(row)
            if self._first is not None:
                self._first[digest] = row
            return row
        if self._first is None:
            self._first = dict(zip(self._order, self._rows, strict=True))
        return self._first[digest]


class Cleaner:
    """Cleans the rows of one file of one kind; remembers natural keys to reject duplicates."""

    def __init__(self, kind: str, today: date, file: str,
                 headers: Mapping[str, str] | None = None) -> None:  # fmt: skip
        if kind not in KINDS or kind not in KIND_COLUMNS:
            raise ValueError(f"unknown kind {kind!r}")
        self.kind, self.today, self.file = kind, today, file
        self.spec = KINDS[kind]
        columns = (ENTITY_COLUMNS if self.spec.entity else ()) + KIND_COLUMNS[kind]
        self._plan = [(col.key, _column_handler(kind, col, today)) for col in columns]
        self._headers = {col.key: (headers or {}).get(col.key) or col.key for col in columns}
        types = {col.key: col.type for col in KIND_COLUMNS[kind]}
        self._fields = [(key, _TO_JSON.get(types[key])) for key in field_keys(kind)]
        self._event = EVENT_DATE[kind]
        self._seen = SeenKeys()
        self._raw: Values = {}

    def header(self, key: str) -> str:
        """The column as the file names it (the key when the file does not have it)."""
        return self._headers.get(key, key)

    def clean(self, row: SourceRow) -> CleanRow | list[Reject]:
        raw_values = row.values
        file = self.file or row.file
        if ERROR_KEY in raw_values:
            reason = str(raw_values[ERROR_KEY])
            return [Reject(file, row.row, None, raw_values.get(RAW_KEY), reason)]
        self._raw = raw_values
        get = raw_values.get
        v: Values = {}
        errors: list[tuple[str, Any, str]] = []
        for key, handle in self._plan:
            raw = get(key)
            try:
                v[key] = handle(raw)
            except ValueError as err:
                if raw.__class__ is BadValue:  # every handler rejects one; its reason is better
                    errors.append((key, raw.raw, raw.reason))
                else:
                    errors.append((key, raw, str(err)))
                v[key] = FAILED
        entity = self._entity(v, errors) if self.spec.entity else None
        if self.spec.post is not None:
            self.spec.post(self, v, errors)
        self._check_end(v, errors)
        if errors:
            rejects = [Reject(file, row.row, self.header(k), val, why, why in NEVER_PUBLISHED)
                       for k, val, why in errors]
            duplicate = self._claim_key(v, errors, row.row)
            if duplicate is not None:
                rejects.append(Reject(file, row.row, *self._key_cells(), duplicate))
            return rejects
        natural_key = self.spec.natural_key(v, entity.id if entity else "")
        first = self._seen.first_row(key_digest(natural_key), row.row)
        if first != row.row:
            reason = R_DUPLICATE.format(row=first)
            return [Reject(file, row.row, *self._key_cells(), reason)]
        identity = natural_key
        for k in self.spec.identity_extra:
            identity += (v[k].isoformat(),)
        publicity_until = None
        for k in self.spec.publicity:
            if v[k] is not None:
                publicity_until = v[k]
                break
        fields = {}
        for k, to_json in self._fields:
            value = v[k]
            fields[k] = value if to_json is None or value is None else to_json(value)
        op = v.get("op") or "upsert"
        return CleanRow(
            kind=self.kind,
            file=file,
            row=row.row,
            op=op,
            entity=entity,  # type: ignore[arg-type]  # None only for entity-less kinds
            fields=fields,
            event_date=v[self._event],
            publicity_until=publicity_until,
            natural_key=natural_key,
            identity=identity,
            # a withdrawal of a record never published is rejected by the planner, naming the
            # record as a duplicate's reject does (the raw cells are only here)
            extra={KEY_CELLS: self._key_cells()} if op == "withdraw" else {},
        )

    def _check_end(self, v: Values, errors: list[tuple[str, Any, str]]) -> None:
        """An explicit end of publicity (公示截止日期; 有效期至) before the record's own date is a
        mistyped date, not a record to store as already expired: the row is rejected."""
        start = v[self._event]
        for key in self.spec.publicity:
            end = v[key]
            if end.__class__ is date and start.__class__ is date and end < start:
                reason = R_ENDS_BEFORE.format(end=_LABELS[key], start=_LABELS[self._event])
                errors.append((key, self._raw.get(key), reason))

    def _key_cells(self) -> tuple[str, str]:
        """A duplicate's (column, value): the key's columns as the file names them, and their
        cells as the file has them (the key itself is normalised: 〔2026〕 for [2026])."""
        raw = self._raw
        entity = "uscc" if raw.get("uscc") not in (None, "") else "reg_no"
        keys = [entity if k == "entity" else k for k in self.spec.key_columns]
        cells = ("" if raw.get(k) is None else str(raw.get(k)) for k in keys)
        return " / ".join(self.header(k) for k in keys), " / ".join(cells)

    def _claim_key(self, v: Values, errors: list[tuple[str, Any, str]],
                   row: int) -> str | None:
        """A rejected row whose key columns are valid still claims its natural key: the first
        row of a key counts, so a later row with it is a duplicate even when this one is
        rejected. The reason of a duplicate reject when this row repeats a key itself."""
        entity_id: Any = ""
        if self.spec.entity:
            bad_id = any(k in ("uscc", "reg_no") for k, _, _ in errors)
            entity_id = FAILED if bad_id else v["uscc"] or v["reg_no"] or FAILED
        natural_key = self.spec.natural_key(v, entity_id)
        if any(part is FAILED or part.__class__ is not str for part in natural_key):
            return None
        first = self._seen.first_row(key_digest(natural_key), row)
        if first == row:
            return None
        return R_DUPLICATE.format(row=first)

    def _entity(self, v: Values, errors: list[tuple[str, Any, str]]) -> EntityFields | None:
        uscc, reg_no = v["uscc"], v["reg_no"]
        if isinstance(uscc, str) and len(uscc) == 15:  # a 注册号 in the USCC column
            if reg_no is None:
                reg_no = v["reg_no"] = uscc
            elif reg_no is not FAILED and reg_no != uscc:
                errors.append(("uscc", self._raw.get("uscc"), R_REG_NO_CONFLICT))
            uscc = v["uscc"] = None
        if uscc is None and reg_no is None:
            errors.append(("uscc", None, R_NO_ID))
        if errors:
            return None
        return EntityFields(
            id=uscc or reg_no,
            uscc=uscc,
            reg_no=reg_no,
            name=v["entity_name"],
            legal_rep=v["legal_rep"],
            district=v["district"],
            address=v["address"],
        )
