"""Masking of personal data in published text (data contract, "Personal data").

``mask_text`` replaces digits (of any form, see Digits) by ``*`` and changes nothing else (the
length, separators and invisible characters stay). What it masks, in every digit run of at
least 11 digits:

- resident ID numbers, first 6 and last 4 characters kept: 18 characters of which the first
  17 are digits, with the GB 11643 check character, or ending in X whatever the check
  (``370602********123X``); 15 digits whose positions 7–12 are a real date YYMMDD of the 1900s
  (``370602*****1123``; not ``370602202300123``, month 00, a decision number's digits), unless
  a 注册号 label (注册号, 工商注册号：, 登记号为 …) stands right before it and it passes the GS 15
  check (a 个体 注册号 ``370602600118121`` reads as born 1960-01-18); an ID may have its birth
  date in year, month, day groups (``370602 ****-**-** 1233``, 6-4-2-2-4, old ones 6-2-2-2-3);
- mobile numbers ``1[3-9]`` + 9 digits, ``138****5678``; with a ``86`` or ``0086`` prefix
  (``86138****5678``) or a trunk ``0`` (``0139****1018``), the prefix is kept too; one group
  of 12–15 digits holding a mobile with something glued to it, with up to 4 digits after it:
  after a trunk ``0``, ``86``, ``086`` or an area code (``0535139****1016``), or at its head
  in a run right after a phone label (电话, 联系电话, 手机号码, 联系方式, Tel, Mobile … and maybe
  a colon, ``电话139******1712``; without one such a group is more likely a case or report
  number, ``案件编号：13706022024001``), unless it is glued to a Latin letter (a licence
  number: ``JY13706020012345``, ``YB137…``, ``SC13137068200123``), a time stamp
  YYYYMMDDhhmm[ss] or a 注册号 after a 注册号 label with its GS 15 check digit right
  (``130102000000001``);
- bank card and account numbers of 16–21 digits, all but the last 4 masked; so are 18 digits
  failing the ID check, and any run of 16 or more digits without separators that is not one of
  the above (an ID glued to a mobile, ``37060219800122123113900451045``).

Left alone: other numbers (money, also with thousands separators ``1,200,000.00``; lists
``12,13,14``; dates, also date ranges ``20230501-20240501`` and lists of years
``2019,2020,2021,2022``; landlines ``0535-6612345``, 400/800 numbers, 15 digits that are not a
date nor hold a mobile as above), and an 18-character valid USCC (GB 32100 check) that fails
the GB 11643 check, has a real 登记管理部门/机构类别 pair and province code (not 62, where every
UnionPay card starts), and no birth date YYYYMMDD of 1900–2099 at positions 7–14 (else it is
more likely a mistyped ID or an account number, and is masked).

Digits. Free text is not NFKC-normalised; a number is read in two passes, each masking the
same way (a character per digit, the same head and tail shown). First ASCII and full-width
digits. Then every form of digit over what is left: Chinese numerals (〇 零 一 二 … 九, 壹 贰 叁
… 玖, 幺), circled digits (⓪ ① … ⑨, ❶ ➀ ➊ ⓵ …) and the decimal digits of any script (𝟏,
١), mixed too, in runs that hold at least one such digit: ``一三九****一〇一五``,
``139****一〇15``. Two passes, as a numeral may end a name: 张三13900151015 is 张三 and a mobile.
For the same reason a run of other forms is also read without one or two Chinese numerals at
an end next to a letter (a word's numeral: 王五一三九〇〇一五一〇一五) or a circled digit at its
head (a list mark: ①一三九…): the cheapest reading is taken, the characters left out counted
as unexplained digits (so 当事人三七〇六… stays an ID, not 17 digits of a card).

Runs. Letters and other characters end a run; stars do not (see Masked before). Invisible
characters (U+200B–U+200F, U+2060–U+2064, U+FEFF, soft hyphen, bidi controls) are ignored
wherever they stand: ``139\\u200b0022\\u200b1022`` is the 11 digits of one group. Digit
groups are joined into one run by a separator: whitespace (what str.isspace() is: space, tab,
line breaks of every kind (VT, FF, NEL, U+2028, U+2029 …), NBSP, ideographic and other Unicode
spaces; any number of them), or 1–2 punctuation characters with any whitespace on either
side: hyphens and dashes (- ‐ ‑ ‒ – — ― − ﹣ －), dots (. · ・ ．), slashes (/ \\ ／),
parentheses (``(139)0027-1027``), underscores (_ ＿) and list separators: commas (, ， ﹐),
vertical bars (| ¦ ｜), tildes and wave dashes (~ ～ 〜), semicolons (; ；), 、 (see below). An
ID's X may follow the last digit. Not : + # and the like.

Odd separators. Before all that, groups of ASCII or full-width digits joined by a colon
(: ： ∶ ﹕) or by 一 typed as a dash, maybe with whitespace around it, are masked where a piece
of them is a mobile in groups 3-4-4 (``139:****:1015``, ``139一****一1015``) or an 18-character
ID with its check character, a province and a birth date (``370602：********1233``); nothing
else is joined so: times (``12:30:45``), ratios and numerals in words are left alone.

Grouped runs. A run of several groups is cut into pieces, each a number, a date
(``2023-10-01``: year 19xx/20xx, the same one punctuation character twice), an amount of money
with thousands separators (1–3 digits, then groups of exactly 3 after one and the same comma,
maybe a decimal point and 1–2 digits) or a group left unexplained; of all cuts the cheapest is
taken. A cut costs its unexplained digits, plus 10 per piece in an unusual grouping for its
kind (mobiles 3-4-4, 3-8, 7-4, 4-4-3, with prefixes 2-3-4-4, 4-4-4…; IDs and accounts in equal
groups with a last one no longer, 6-8-4, 6-4-4-4, 3-3-4-4-4; an ID split 6-4-2-2-4 with a
province code and a birth date, 6-2-2-2-3), 8 per piece of 3 or more groups with different
separators, 4 per card printed 6+13 or 4+15, 3 per grouped number of 20–21 digits; ties go to
the cut masking the most digits, then the fewest pieces, then the longest first piece. A piece
of several groups has at most 21 digits, groups of 3–8 digits but the last (at most 8; a
leading ``86`` may have 2), except a card print: 6 or 4 digits (not 19xx/20xx) then 10–15,
joined by spaces, a dash, an underscore or a comma (``621700 0912345678901``). A landline piece
is an area code (010, 02x, 0xxx) group then 7–8 digits starting 2–9 (two groups after a 3-digit
area code), not joined by a list separator (``027，20230501`` is a list); 400/800 numbers
likewise. So ``0535-6612345 139 0015 1015`` is a landline kept and a mobile masked, two mobiles
or a card and a mobile side by side are each masked on their own, and ``2022-03-05 2023-04-06``
is two dates: groups shorter than 3 digits never stand inside a number (but in an ID's birth
date split into year, month and day).

Dates and lists. One group YYYYMMDD of 1900–2099 is a date, years 19xx/20xx joined by one comma
a list: both explain their digits. Not a number, whatever its digits: a piece whose groups are
all years or all dates YYYYMMDD (``2019 2020 2021 2022``, ``20230501-20240501``; 16 digits
without a separator are still masked). No card or account number starts with 19 or 20: such a
grouped piece is in an unusual grouping. A list separator separates items or the ends of a
range first: a piece with one between its groups has the same separator throughout and a
grouping numbers are written in with commas (mobiles 3-4-4, with prefixes 2-3-4-4, 4-4-4,
4-3-4-4, and not with two groups that are years; IDs and accounts in groups of 4, or 6 then
8-4, 4-4-4, 6-6, 4-2-2-4), or a card print, else it is no piece: ``142，26751230``,
``101,102,103,104,105,106`` and ``2023.01.01~2023.12.31`` are lists or ranges,
``1,139,001,510.15`` is money, ``139|0015|1015`` and ``139；0015；1015`` are mobiles. 、, the list
separator of Chinese text, joins groups so only in a number whose digits speak for it: a mobile
but not with a round hundred (``139、0015、1015``, not ``150、1000、2000件``), an 18-character ID
with its check character, a province and a birth date (``370602、19800118、1233``; not
``220314、220315、220316``), a UnionPay card passing the Luhn check whose groups do not count
(``6222、0212、3456、7894``; not ``房间6201、6202、6203、6204``).

Broken numbers. Groups that no grouping explains, whole tokens with only whitespace between
them and whitespace or a list separator around them (line breaks in a cell, stray spaces:
``370602198001⏎181233``, ``13 900151015``, ``139 00 15 1015``, ``62220212 34567890123``,
``1 3 9 0 0 1 5 1 0 1 5``, ``13 900151015，2023-10-01``), are one piece when their digits
together are an 18-character ID with its check character, a province and a birth date, an old
15-digit ID with a province, a mobile, or 16–19 digits not starting 19/20 (a card). Such a
piece costs 11, so it is taken only over its groups left all unexplained, unless its own
structure speaks for it (cost 0, whatever its pieces read as): an 18-character ID, unless a
group by itself is a date YYYYMMDD other than its birth date after a real area code (a
province, then a prefecture other than 00) or a group is a year 1900–2039
(``3706 02 19800118 1233`` is an ID, ``5000 13 20230501 2025`` and ``13 2024 20230501 2019``
are lists); an old ID with a real area code and a piece that reads as a landline
(``37 0602 8001181 23``); a card with a group of 16 digits or more, a card but no ID by itself,
or a UnionPay card (62…) with a piece that reads as a landline or a 400/800 number
(``62170 07064925440``). At most 4 groups, unless each is one digit (spaced out), and a card
from 2 groups or spaced digits only: lists of small numbers join into anything
(``第1 3 5 7 9 11 13 15 17条``, ``12315 13 2024 20230501``). Only whitespace breaks a number at
odd points: punctuation between short groups writes dates, decimals and clause numbers
(``2025.1.2``, ``13.5``, ``1-2``); a hyphen, dot, slash … joins groups of 3–8 digits (above).

Masked before. Masking twice changes nothing (``disclosure scrub`` runs over what older
releases masked): a run is read with the stars in it, each group of stars in a number
masked before, its head digits, stars and 4 tail characters in a shape mask_text writes
(``139****1015``, ``370602 ******** 1233``, ``****-****-****-5678``); such a number costs
nothing and masks nothing, stars in no such number cost more than any reading, and no other
number takes digits from it: ``370602********1233,2019,2020,2021`` is left as it is (1233
2019 2020 2021 would read as a card). Stars written in the text (``**13900151015**``) stand
alone in every reading. A run with stars beside a digit of another form is read in the
second pass only (``张三62170_*****1838``: the first read 三62170_030921838, an old ID).

Fast path: a string shorter than 11 characters, or without 11 digits of any form joined only
by separator characters (or odd separators), is returned as is (the same object); so is one with
nothing masked.
Linear time: each group starts a bounded number of pieces (an amount of money or a list of
years is read over at most 32 groups, a longer one in pieces).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any

from publishing.codes import (
    INVISIBLE,
    USCC_HEADS,
    reg_no_check_ok,
    resident_id_check_char,
    resident_id_is_valid,
    uscc_is_valid,
)

_D = "0-9\uff10-\uff19"  # ASCII and full-width digits
# Other ways to write a digit, read in the second pass: Chinese numerals (幺 is a 1 read out in a
# phone number), circled digits of every style, and (through \d) the decimal digits of any
# script (mathematical bold 𝟏, Arabic-Indic ١ …). Not ⑴ ⒈ ¹ ₁: list marks and footnotes.
_CHINESE_DIGITS = {
    **dict.fromkeys("〇零", "0"),
    **dict.fromkeys("一壹幺", "1"),
    **dict.fromkeys("二贰貳", "2"),
    **dict.fromkeys("三叁參叄", "3"),
    **dict.fromkeys("四肆", "4"),
    **dict.fromkeys("五伍", "5"),
    **dict.fromkeys("六陆陸", "6"),
    **dict.fromkeys("七柒", "7"),
    **dict.fromkeys("八捌", "8"),
    **dict.fromkeys("九玖", "9"),
}
_CIRCLED = (  # circled, negative circled, double circled, sans-serif circled digits 0-9
    "\u24ea\u2460-\u2468\u24ff\u2776-\u277e\u24f5-\u24fd\u2780-\u2788\u278a-\u2792"
)
_OTHER_D = "".join(_CHINESE_DIGITS) + _CIRCLED
_ANY_D = f"\\d{_OTHER_D}"  # \d: the decimal digits of every script, ASCII and full-width too
_X = "Xx\uff38\uff58"  # an ID's check character X, ASCII or full-width
# Invisible format characters: zero-width space/non-joiner/joiner, LRM/RLM, bidi embeddings and
# isolates, word joiner and invisible operators, BOM/ZWNBSP, soft hyphen, Mongolian vowel sep.
_INV = INVISIBLE  # zero-width and bidi controls: ignored between digits
# Whitespace: exactly what str.isspace() is (the run analysis tells a break by it): space, tab,
# line breaks (VT, FF, the file/group/record/unit separators, NEL, U+2028, U+2029), NBSP and
# the other Unicode spaces.
_WS = " \t\n\x0b\x0c\r\x1c-\x1f\x85\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_DASH = "\\-\u2010-\u2015\u2043\u2212\u2e3a\u2e3b\ufe58\ufe63\uff0d"
_COMMAS = ",\ufe50\uff0c"  # comma, small comma, full-width comma
_ENUMERATION = "\u3001\ufe51\uff64"  # 、 (and its small and half-width forms)
# List separators: commas, vertical bars, tildes and wave dashes, semicolons, 、. They join
# groups only in a number's usual grouping (139|0015|1015); else they separate items or a
# range. 、 only in a number whose digits speak for it (_enumerated).
_LIST_SEPS = _COMMAS + "|\u00a6\uff5c~\u301c\uff5e;\uff1b" + _ENUMERATION
_PUNCT = (
    _DASH
    + ".\u00b7\u2027\u30fb\uff0e"
    + "/\\\\\u2044\u2215\uff0f\uff3c"
    + "()\uff08\uff09"
    + "_\uff3f"  # underscore, full-width low line
    + _LIST_SEPS
)

_I = f"[{_INV}]*"
_JOIN = (  # what may stand between two digits of one run (nothing at all, too)
    f"{_I}(?:(?:[{_WS}]{_I})+|(?:[{_WS}]{_I})*(?:[{_PUNCT}]{_I}){{1,2}}(?:[{_WS}]{_I})*)?"
)
_SEP_CHARS = f"{_INV}{_WS}{_PUNCT}"
_STAR_OR_SEP = re.compile(f"[*{_SEP_CHARS}]")


@dataclass(frozen=True)
class _Reading:
    """The regular expressions of one pass over the text, for one set of digit characters.
    run: a run, digits joined as _JOIN says, an optional trailing X; greedy, so every match is
    a whole run. candidate: the fast path, a cheap superset of the runs of at least 11 digits,
    any separator characters between the digits (the exact _JOIN is much slower to try at
    every digit of ordinary text). Its lookahead rejects most digits of ordinary text at once
    (2023年, 1234元): the 10 characters after the first digit of a run are digits or separator
    characters. A match only ever starts at the first digit of such a stretch (a shorter tail of
    a failed stretch cannot reach 11 digits); run then splits it into runs. other: when set, a
    run is read only when it holds one of these (the second pass leaves the first one's runs)."""

    candidate: re.Pattern[str]
    run: re.Pattern[str]
    group: re.Pattern[str]
    token: re.Pattern[str]
    other: re.Pattern[str] | None


def _reading(digits: str, other: re.Pattern[str] | None) -> _Reading:
    return _Reading(
        candidate=re.compile(
            f"[{digits}](?=[{digits}{_SEP_CHARS}*]{{10}})"
            f"(?:[{_SEP_CHARS}*]*+[{digits}]){{10,}}(?:{_I}[{_X}])?"
        ),
        run=re.compile(f"[{digits}*](?:{_JOIN}[{digits}*])*(?:{_I}[{_X}])?"),
        group=re.compile(f"[{digits}]+"),
        token=re.compile(f"[{digits}]+|\\*+"),
        other=other,
    )


# First ASCII and full-width digits; then every digit form over what is left, runs with a
# digit of another form only (张三13900151015 is a name and a mobile: 三 is no digit of it).
# [^\D…]: a decimal digit but not ASCII or full-width, one class test (a lookahead before \d
# at every position cost a third more).
_OTHER_DIGIT = re.compile(f"[{_OTHER_D}]|[^\\D{_D}]")
_CIRCLED_DIGIT = re.compile(f"[{_CIRCLED}]")
# A digit of another form after or before a run, joined to it as _JOIN says.
_OTHER_AFTER = re.compile(f"{_JOIN}(?:[{_OTHER_D}]|[^\\D{_D}])")
_OTHER_BEFORE = re.compile(f"(?:[{_OTHER_D}]|[^\\D{_D}]){_JOIN}\\Z")
_OTHER_WINDOW = 40  # characters looked at before a run (a join is short but for whitespace)
_PLAIN = _reading(_D, None)
# Odd separators: colons (ASCII, full-width, ratio, small) and 一 typed as a dash. They join
# digit groups only into a mobile 3-4-4 or a valid ID (_odd_number): else a time (12:30), a
# ratio (1:1000) or a numeral in a word.
_ODD_SEPS = ":\uff1a\u2236\ufe55\u4e00"
_ODD_SEP = re.compile(f"[{_ODD_SEPS}][{_WS}]*[{_D}]")  # the cheap test first
_ODD_JOINED = re.compile(  # the lookahead: 11 digits and 2 separators at least (a mobile)
    f"(?<![{_D}])(?=[{_D}{_WS}{_ODD_SEPS}]{{13}})"
    f"[{_D}]+(?:[{_WS}]*[{_ODD_SEPS}][{_WS}]*[{_D}]+)+(?:[{_X}](?![A-Za-z]))?"
)
_MOBILE_HEADS = frozenset(f"1{k}" for k in range(3, 10))
_ANY = _reading(_ANY_D, _OTHER_DIGIT)
_INVISIBLE = re.compile(f"[{_INV}]")
# Spaces and/or a dash, an underscore or a comma.
_PLAIN_SEP = re.compile(f"[{_WS}]*(?:[{_DASH}]{{0,2}}|[_\uff3f{_COMMAS}])[{_WS}]*")
_LANDLINE = re.compile(r"(?:010|02\d|0[3-9]\d\d)[2-9]\d{6,7}")
_AREA = re.compile(r"010|02\d|0[3-9]\d\d")


class _DigitValues(dict[int, str]):
    """A str.translate table from every digit form to its ASCII digit, filled as it is used."""

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        value = _CHINESE_DIGITS.get(ch)
        if value is None:
            digit = unicodedata.digit(ch, None)
            value = ch if digit is None else str(digit)
        self[code] = value
        return value


_ASCII = _DigitValues()
_X_SET = frozenset(_X)
_DATE_SEPS = frozenset("-./\u2010\u2011\u2012\u2013\u2212\uff0d\uff0e\uff0f")
_COMMA_SET = frozenset(_COMMAS)
_LIST_SET = frozenset(_LIST_SEPS)
_ENUMERATION_SET = frozenset(_ENUMERATION)
_DECIMAL_POINTS = frozenset(".\uff0e")
# A label right before a 15-digit number saying it is a 注册号 (工商注册号, 注册号码, 登记号,
# 登记证号, 营业执照号 …), then at most a colon, brackets, 为/是 and spaces.
_REG_LABEL = re.compile(
    f"(?:注册|登记|执照)证?(?:号码?|编号)[{_WS}{_INV}:：()（）\\[\\]【】为是]{{0,4}}\\Z"
)
_REG_LABEL_WINDOW = 12  # characters looked at before the number
# A phone label right before a number (电话, 联系电话, 联系人电话, 手机号码, 联系方式, Tel,
# Mobile …), then at most a colon, a dot, a slash, brackets, quotes (a JSON key: "tel":"…"),
# 为/是 and spaces. A Latin one not inside a word (Hotel).
_PHONE_LABEL = re.compile(
    "(?:电话|手机|联系方式|(?<![A-Za-z])(?i:tel|mobile|phone|mob|cell))(?:号码?)?"
    f"[{_WS}{_INV}:：.．/／()（）\\[\\]【】\"'“”为是]{{0,4}}\\Z"
)
_PHONE_LABEL_WINDOW = 16
# A Latin letter glued to the number: the prefix of a licence or code (食品经营许可证 JY137…,
# 仅销售预包装食品备案 YB137…, 食品生产许可证 SC131…), not a phone.
_LETTER_BEFORE = re.compile(f"[A-Za-z\uff21-\uff3a\uff41-\uff5a][{_INV}]*\\Z")
_LETTER_WINDOW = 8
# A label saying the number is an identifier, not a phone (案件编号, 许可证编号, 报告编号, 案号,
# 备案号, 流水号, 工单号 …), then at most a colon, brackets, 为/是 and spaces.
_CODE_LABEL = re.compile(
    "(?:编号|案号|文号|证号|许可证|备案号|登记号|单号|流水号|批号|代码|凭证号|序号)"
    f"[{_WS}{_INV}:：()（）\\[\\]【】为是]{{0,4}}\\Z"
)
_CODE_LABEL_WINDOW = 12
# What stands right before a run (_label_before): a 注册号 label, a phone label, an identifier
# label, a letter.
_REG, _PHONE, _CODE, _LETTER = "reg", "phone", "code", "letter"

# Kinds of number: (digits kept at the head, at the tail), or not masked.
_ID = (6, 4)
_MOBILE, _MOBILE86, _MOBILE0, _MOBILE0086 = (3, 4), (5, 4), (4, 4), (7, 4)
# A mobile in one group of 12–15 digits (_glued_mobile): a prefix (trunk 0, 86, 086, an area
# code) maybe, the mobile, maybe up to 4 digits more. Masked with the prefix and 3 digits shown.
_GLUED_MOBILE = re.compile(r"(0|86|086|010|02\d|0[3-9]\d\d)?1[3-9]\d{9}")
_MOBILE_WITH_PREFIX = {0: _MOBILE, 1: _MOBILE0, 2: _MOBILE86, 3: (6, 4), 4: (7, 4)}
_BANK = (0, 4)
_NOT_PERSONAL = None  # a landline, 400/800 number or USCC: explains its digits, kept as is
_UNKNOWN = False  # explains nothing

_MAX_GROUP = 8  # a digit group of a grouped number (6-8-4 ID, 4-4-4-4-3 card) is short
_MAX_GROUPED = 21  # digits of a grouped number (the longest account numbers)
_MAX_PIECE_GROUPS = 8  # 86 + 7 groups of 3
# Groups of an amount of money or a list of years read as one piece (a longer one is read in
# pieces): each start reads a bounded number of groups, so the masker stays linear-time.
_MAX_LIST = 32
_IRREGULAR = 10  # the cost of a piece in an unusual grouping, in unexplained digits
_MIXED = 8  # the cost of a piece of 3 or more groups with different separators
_CARD_PRINT = 4  # the cost of a card number printed 6+13 or 4+15
_LONG_ACCOUNT = 3  # the cost of a grouped account number of 20 or 21 digits (rarer than cards)
# A number broken at an odd point costs more than one in an unusual grouping: it is taken only
# over its digits left all unexplained (a mobile's 11; a tie goes to the cut masking more).
# Nothing when an 18-character ID's check character and birth date speak for it (its pieces
# may read as something else: 37060219 8001181233, an 800 number), or when one piece is a card
# by itself and the few digits beside it its end (6222021234567890⏎123).
_BROKEN = _IRREGULAR + 1
_BROKEN_SIZES = frozenset([11, 15, 16, 17, 18, 19])  # digits of a mobile, an ID, a card
_BROKEN_LONGEST = max(_BROKEN_SIZES)
_MAX_BROKEN = 4  # groups of a broken number, unless each is one digit
_FIRST_YEAR, _LAST_YEAR = 1900, 2039  # years in a list (5000 13 20230501 2025)
# Stars that are no part of a number masked before (mask_text's own output, _masked_end):
# they cost more than any reading of a number, so that a second run reads a masked number as
# it was read the first time. Stars written in the text (3*5) stand alone in every reading.
_STRAY_STARS = 1000
# Numbers as mask_text leaves them, by the digits shown at the head: what the head is, and the
# widths (none: an account's, 16 or more; an ID's X counted). Mobiles glued to a prefix or to
# digits after them (_glued_mobile) are 12–15 digits wide.
_MASKED_SHAPES: dict[int, tuple[tuple[re.Pattern[str], frozenset[int]], ...]] = {
    0: ((re.compile(""), frozenset()),),
    3: ((re.compile("1[3-9]"), frozenset(range(11, 16))),),
    4: ((re.compile("01[3-9]"), frozenset(range(12, 16))),),
    5: ((re.compile("861[3-9]"), frozenset(range(13, 16))),),
    6: (
        (re.compile(""), frozenset([15, 18])),
        (re.compile(r"(?:010|02\d|086)1[3-9]"), frozenset([14, 15])),
    ),
    7: ((re.compile(r"(?:0086|0[3-9]\d\d)1[3-9]"), frozenset([15])),),
}
_MAX_MASK_HEAD = max(_MASKED_SHAPES)
_MAX_MASK_STAR_GROUPS = _BROKEN_LONGEST  # a spaced-out card's: 19 digits, 4 shown
# Usual groupings of mobiles (by kind), and of IDs and accounts besides equal groups with a
# last one no longer (4-4-4-4-3, 6-6-3); an X counts in the last group.
_MOBILE_SHAPES = {
    _MOBILE: frozenset([(3, 4, 4), (3, 8), (7, 4), (4, 4, 3)]),
    _MOBILE86: frozenset([(2, 3, 4, 4), (2, 3, 8), (2, 7, 4), (5, 4, 4), (5, 8)]),
    _MOBILE0: frozenset([(4, 4, 4), (4, 8)]),
    _MOBILE0086: frozenset([(4, 3, 4, 4), (4, 3, 8), (4, 7, 4)]),
}
_NUMBER_SHAPES = frozenset([(6, 8, 4), (6, 4, 4, 4), (3, 3, 4, 4, 4)])
_COMMA_MOBILE_SHAPES = frozenset([(3, 4, 4), (2, 3, 4, 4), (4, 4, 4), (4, 3, 4, 4)])
# GB 32100 登记管理部门 + 机构类别 pairs of all-digit codes, and province codes (GB/T 2260).
# Without 62 (旅游, 港澳台 offices): the start of every UnionPay card.
_USCC_HEADS = frozenset(h for h in USCC_HEADS if h.isdigit()) - {"62"}
_PROVINCES = frozenset(
    re.findall(
        r"\d\d",
        "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65"
        " 71 81 82",
    )
)


def _plausible_birth(yyyymmdd: str) -> bool:
    year = int(yyyymmdd[:4])
    if not 1900 <= year <= 2099:
        return False
    try:
        date(year, int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return True


def _uscc_not_id(code: str) -> bool:
    """An 18-character code (failing the ID check) to leave alone as a USCC: the GB 32100
    check, a real 登记管理部门/机构类别 pair and province, and no birth date where an ID has one
    (else it is more likely a mistyped ID or an account number)."""
    return (
        code[:2] in _USCC_HEADS
        and code[2:4] in _PROVINCES
        and uscc_is_valid(code)
        and not _plausible_birth(code[6:14])
    )


def _label_before(s: str, at: int) -> str | None:
    """What ends right before s[at], the first digit of a run: a 注册号/登记号 label (_REG), a
    phone label (_PHONE; Tel13… too), an identifier label (_CODE: 案件编号), a Latin letter
    (_LETTER: JY137…), else None."""
    if _REG_LABEL.search(s, max(0, at - _REG_LABEL_WINDOW), at) is not None:
        return _REG
    if _PHONE_LABEL.search(s, max(0, at - _PHONE_LABEL_WINDOW), at) is not None:
        return _PHONE
    if _CODE_LABEL.search(s, max(0, at - _CODE_LABEL_WINDOW), at) is not None:
        return _CODE
    if _LETTER_BEFORE.search(s, max(0, at - _LETTER_WINDOW), at) is not None:
        return _LETTER
    return None


def _group_label(label: str | None, i: int) -> str | None:
    """What stands before group i of a run after label: the label itself before the first
    group; a phone label speaks for every group of the run (电话：0535-6612345 1390015101712)."""
    return label if i == 0 or label == _PHONE else None


def _compact_datetime(d: str) -> bool:
    """12 or 14 digits YYYYMMDDhhmm[ss] of 1900–2099: a time stamp, not a mistyped mobile."""
    return (
        len(d) in (12, 14)
        and _plausible_birth(d[:8])
        and int(d[8:10]) < 24
        and all(int(d[k : k + 2]) < 60 for k in range(10, len(d), 2))
    )


def _glued_mobile(d: str, label: str | None) -> Any:
    """The kind of one group d of 12–15 digits holding a mobile with something glued to it,
    or _UNKNOWN; label: what stands right before it (_label_before). The mobile follows a
    prefix that cannot start anything else: a trunk 0, 86/086, or an area code
    (053513900151016: 0535 and a mobile; no landline after an area code starts with 1), and is
    masked whatever stands before; or it starts the group (1390015101712: a digit typed twice,
    an extension), and is masked unless an identifier label says what it is (案件编号：
    13706022024001): phone labels come in too many forms (电话/传真, 联系人及电话：张三…) to wait
    for one. Up to 4 digits may follow the mobile.
    Masked as a mobile with that prefix: the prefix and 3 digits shown, and the last 4 of the
    group. Left alone: digits glued to a Latin letter (a licence number: 食品经营许可证
    JY13706020012345, YB137…, SC131…), a time stamp YYYYMMDDhhmm[ss], and a 15-digit 注册号 of
    河北/山西/内蒙古 (13…, 14…, 15…) after a 注册号 label with a right GS 15 check digit."""
    glued = _GLUED_MOBILE.match(d)
    if glued is None or label == _LETTER or _compact_datetime(d):
        return _UNKNOWN
    if label == _REG and len(d) == 15 and reg_no_check_ok(d):
        return _NOT_PERSONAL
    prefix = glued.group(1) or ""
    if not prefix and label in (_CODE, _REG):  # an identifier, as its label says
        return _UNKNOWN
    return _MOBILE_WITH_PREFIX[len(prefix)]


def _dates_only(digits: list[str]) -> bool:
    """Groups that are all years (2019 2020 2021 2022) or all dates YYYYMMDD (20230501-20240501):
    a list or a range of dates, not a card number. No card or account starts with 19xx/20xx in
    every group."""
    if all(len(g) == 4 and g[:2] in ("19", "20") for g in digits):
        return True
    return all(len(g) == 8 and _plausible_birth(g) for g in digits)


def _classify(d: str, x: bool, single: bool, label: str | None = None) -> Any:
    """What a piece is: d its ASCII digits, x whether an X follows it, single whether it is
    one group, label what stands right before it (_label_before: a 注册号 or phone label, a
    letter). A (head, tail) kind to mask, _NOT_PERSONAL or _UNKNOWN."""
    n = len(d)
    if x and n == 17:  # an 18-character ID, masked even with a wrong check character
        if single and resident_id_check_char(d) != "X" and _uscc_not_id(d + "X"):
            return _NOT_PERSONAL
        return _ID
    if n == 11:
        if d[0] == "1" and d[1] in "3456789":
            return _MOBILE
        if single and _LANDLINE.fullmatch(d):
            return _NOT_PERSONAL
    elif n == 18:
        if resident_id_check_char(d[:17]) == d[17]:
            return _ID
        if single and _uscc_not_id(d):
            return _NOT_PERSONAL
        return _BANK
    elif n == 15:
        if d.startswith("0086") and d[4] == "1" and d[5] in "3456789":
            return _MOBILE0086
        if resident_id_is_valid(d):  # positions 7–12 a date YYMMDD of the 1900s
            # A 注册号 (6-digit authority, 8-digit sequence, GS 15 check digit) can read so
            # too: 个体 sequences start 6–9, a "birth year" 196x–199x. Kept only when a label
            # says so and the check digit is right. The check alone is not enough: one old ID
            # in ten passes it by chance, and codes.reg_no_is_valid (any 15 digits) passes all.
            # (publishing.clean rejects the same codes in the 注册号 column.)
            if label == _REG and single and reg_no_check_ok(d):
                return _NOT_PERSONAL
            return _ID
    elif n == 12:
        if d[:2] == "01" and d[2] in "3456789":
            return _MOBILE0
        if single and _LANDLINE.fullmatch(d):
            return _NOT_PERSONAL
        # One group of 12 digits starting like a mobile: most likely a mobile with a digit typed
        # twice (139001510151), masked as one, 3 + 4 shown, label or not (as before the glued
        # rule). What is masked wrongly (a 河北 区划 code 130102001001, an invoice code
        # 137001900111) loses little; a mobile shown would be a leak. A time stamp
        # YYYYMMDDhhmm of the 1900s is left alone.
        if single and d[0] == "1" and d[1] in "3456789" and not _compact_datetime(d):
            return _MOBILE
    elif n == 13:
        if d[:3] == "861" and d[3] in "3456789":
            return _MOBILE86
    elif n >= 16:
        return _BANK if single or n <= _MAX_GROUPED else _UNKNOWN
    elif n == 10 and single and d[:3] in ("400", "800"):
        return _NOT_PERSONAL
    if single and 12 <= n <= 15:
        return _glued_mobile(d, label)
    return _UNKNOWN


def _replace(string: str, offset: int, stop: int, reading: _Reading) -> str:
    """Mask string[offset:stop], a stretch matched by reading.candidate (maybe from the stars
    before it on: _masked_start)."""
    text = string[offset:stop]
    if reading.other is not None and reading.other.search(text) is None:
        return text  # digits only: the first pass has read them
    x = text[-1] in _X_SET
    body = text[:-1] if x else text
    # One group of digits: the usual case (in the first pass; the second may read it trimmed).
    if reading.other is None and reading.group.fullmatch(body):
        if len(body) == 17 and not x and _uscc_not_id(body.translate(_ASCII) + string[stop:stop + 1]):
            return text  # a USCC whose check character is a letter (91370602000000004W)
        label = _label_before(string, offset) if 12 <= len(body) <= 15 else None
        kind = _classify(body.translate(_ASCII), x, True, label)
        if not kind:
            return text
        end = len(body) + 1 if x and len(body) == 17 else len(body)  # 17 digits + X: an ID
        head, tail = kind
        return text[:head] + "*" * (end - tail - head) + text[end - tail :]
    label = _label_before(string, offset)  # a 注册号 or phone label, a letter before it

    defer = reading.other is None and "*" in text  # maybe, to the second pass (below)

    def replace_run(m: re.Match[str]) -> str:
        start, end = offset + m.start(), offset + m.end()
        if defer and "*" in m.group() and _other_digit_beside(string, start, end):
            return m.group()  # left to the second pass, which reads it whole
        beside = (string[start - 1 : start], string[end : end + 1])
        return _replace_run(m, reading, label if m.start() == 0 else None, beside)

    return reading.run.sub(replace_run, text)


def _other_digit_beside(s: str, start: int, end: int) -> bool:
    """Is a digit of another form joined to the run s[start:end] (张三62170_*****1838)? Then the
    first pass leaves a run with stars to the second one: the number masked before may have
    been read there with that digit (三62170_030921838 an old ID), which the first one cannot
    see, and taken its stars for stray ones."""
    return (
        _OTHER_AFTER.match(s, end) is not None
        or _OTHER_BEFORE.search(s, max(0, start - _OTHER_WINDOW), start) is not None
    )


def _replace_run(
    match: re.Match[str],
    reading: _Reading,
    label: str | None = None,
    beside: tuple[str, str] = ("", ""),
) -> str:
    """Mask one run (as matched by reading.run) with at least 11 digits; label: what stands
    right before it (_label_before); beside: the characters before and after it."""
    text = match.group()
    if len(text) < 11 or (reading.other is not None and reading.other.search(text) is None):
        return text
    if _INVISIBLE.search(text) is None:
        run, index = text, None
    else:  # analyse the run without invisible characters, mask the same digits in place
        index = [i for i, ch in enumerate(text) if not _INVISIBLE.match(ch)]
        run = "".join(text[i] for i in index)
    if reading.other is None:
        positions = _positions(run, reading, label)
    else:
        positions = _trimmed_positions(run, reading, label, beside)
    if not positions:
        return text
    chars = list(text)
    for p in positions:
        chars[p if index is None else index[p]] = "*"
    return "".join(chars)


def _trimmed_positions(
    run: str, reading: _Reading, label: str | None, beside: tuple[str, str]
) -> list[int]:
    """The positions to mask in a run of the second pass, read as it stands and without one or
    two characters at either end that may belong to what stands beside it (_trimmable:
    王五一三九〇〇一五一〇一五 is 王五 and a mobile). The cheapest reading is taken, characters
    left out counted as unexplained digits; on a tie the one masking the most, else as it
    stands (三七〇六…一二三三 after 当事人 stays an ID, not 17 digits of a card)."""
    cost, best = _cut(run, reading, label)
    groups = [m.span() for m in reading.group.finditer(run)]
    x = run[-1] in _X_SET
    for k in (1, 2):
        readings = []
        if groups[0][1] - groups[0][0] > k and _trimmable(run[:k], beside[0], head=True):
            readings.append((k, len(run)))
        last = groups[-1]
        if (
            not x
            and last[1] == len(run)
            and last[1] - last[0] > k
            and _trimmable(run[-k:], beside[1])
        ):
            readings.append((0, len(run) - k))
        for start, end in readings:
            c, trimmed = _cut(run[start:end], reading)
            if (c + k, -len(trimmed)) < (cost, -len(best)):
                cost, best = c + k, [start + p for p in trimmed]
    return best


def _trimmable(chars: str, beside: str, head: bool = False) -> bool:
    """May chars, at an end of a run, belong to what stands beside it rather than to a number?
    Chinese numerals next to a letter (王五一三九…, …一〇一五一次: a numeral is a word's
    character too), or a circled digit at the head (a list mark: ①一三九…)."""
    if beside.isalpha() and all(ch in _CHINESE_DIGITS for ch in chars):
        return True
    return head and len(chars) == 1 and _CIRCLED_DIGIT.match(chars) is not None


def _positions(run: str, reading: _Reading = _PLAIN, label: str | None = None) -> list[int]:
    """Indexes of the characters of a run (without invisible characters) to mask: the run is
    cut into pieces, each a number, a date or an unexplained group (see the module docstring).
    label: what stands right before the run (_label_before)."""
    return _cut(run, reading, label)[1]


def _cut(run: str, reading: _Reading, label: str | None = None) -> tuple[int, list[int]]:
    """_positions, and the cost of the cut (its unexplained digits + …, as below)."""
    x = run[-1] in _X_SET
    body = run[:-1] if x else run
    # Groups of digits, and of stars (mask_text's own output: 139****1015 is three groups).
    starred = "*" in body  # a number masked before in it, maybe
    tokens = (reading.token if starred else reading.group).finditer(body)
    groups = [(m.start(), m.end()) for m in tokens]
    digits = [body[s:e].translate(_ASCII) for s, e in groups]
    sizes = [e - s for s, e in groups]
    n = len(groups)
    stars = [d[0] == "*" for d in digits] if starred else [False] * n
    count = (
        sum(s for s, star in zip(sizes, stars, strict=True) if not star) if starred else sum(sizes)
    )
    if count < 11:
        return count, []
    seps = [body[groups[k][1] : groups[k + 1][0]] for k in range(n - 1)]
    commas = [not _LIST_SET.isdisjoint(sep) for sep in seps]  # a list separator in it
    enums = [not _ENUMERATION_SET.isdisjoint(sep) for sep in seps]  # a 、 in it
    if len(set(seps)) == 1 and not starred:  # one separator throughout
        kind = _whole(x, digits, sizes, commas[0], enums[0])
        if kind:  # one grouped number in a usual grouping: no other cut can be better
            return 0, _piece_positions(body, x, groups, 0, n, kind)
    breaks = [sep.isspace() for sep in seps]  # whitespace only (a run holds no other spaces)
    # Where a number broken at odd points may start or end: whitespace, or a list separator
    # (13 900151015，2023-10-01: items of a list), not a dash or a dot (1,200.00⏎13 900151).
    edges = [b or c for b, c in zip(breaks, commas, strict=True)] if True in breaks else breaks
    limit = [n] * (n + 1)  # limit[i]: the first star group from group i on
    for i in range(n - 1, -1, -1) if starred else ():
        limit[i] = i if stars[i] else limit[i + 1]
    # cost[i]: the cost of the best cut of groups[i:]; cut[i]: its first piece (end group,
    # kind), kind _UNKNOWN for an unexplained group. A cost: unexplained digits + _IRREGULAR
    # per piece in an unusual grouping + _MIXED per piece with different separators + ...;
    # then the most digits masked; then the fewest pieces; then the longest first piece.
    cost: list[tuple[int, int, int]] = [(0, 0, 0)] * (n + 1)
    cut: list[tuple[int, Any]] = [(n, _UNKNOWN)] * n
    best: tuple[int, int, int]
    choice: tuple[int, Any]  # (end group, kind): kind _NOT_PERSONAL (None) or a reading
    for i in range(n - 1, -1, -1):
        c, v, k = cost[i + 1]
        if stars[i]:  # stars of no number masked before (written so: 3*5, ***)
            best, choice = (c + _STRAY_STARS, v, k + 1), (i + 1, _UNKNOWN)
        else:
            best, choice = (c + sizes[i], v, k + 1), (i + 1, _UNKNOWN)  # group i unexplained
            top = limit[i]  # a piece of digits ends before the next star group
            end = (
                _date_end(digits, sizes, seps, i)
                or _money_end(digits, sizes, seps, i)
                or _years_end(digits, seps, i)
            )
            if end and end <= top:  # a date, an amount of money or a list of years
                c, v, k = cost[end]
                if (c, v, k + 1) <= best:
                    best, choice = (c, v, k + 1), (end, _NOT_PERSONAL)
            end = _split_id_end(sizes, i, x)
            if (
                end
                and any(commas[i : end - 1])
                and (sizes[i + 1] == 2 or len(set(seps[i : end - 1])) > 1)
            ):  # with commas only 6-4-2-2-4, one separator: else a list (227423, 2021-01-28)
                end = 0
            if end and end <= top:  # an ID with its birth date in year, month, day groups
                d = "".join(digits[i:end])
                x_here = x and end == n
                kind = _classify(d, x_here, False)
                if any(enums[i : end - 1]) and not _enumerated(kind, d, x_here):
                    kind = _UNKNOWN
                if kind:
                    c, v, k = cost[end]
                    usual = d[:2] in _PROVINCES and (len(d) == 15 or _plausible_birth(d[6:14]))
                    here = (
                        c
                        + (0 if usual else _IRREGULAR)
                        + (_MIXED if len(set(seps[i : end - 1])) > 1 else 0),
                        v - (_width(d, x_here) - kind[0] - kind[1]),
                        k + 1,
                    )
                    if here <= best:
                        best, choice = here, (end, kind)
            for end, kind, extra, masked in _broken(digits, breaks, edges, i, x, top):
                c, v, k = cost[end]  # a number broken at odd points
                here = (c + extra, v - masked, k + 1)
                if here <= best:
                    best, choice = here, (end, kind)
            d = ""
            for j in range(i + 1, min(top, i + _MAX_PIECE_GROUPS) + 1):  # the piece groups[i:j]
                last = j - 1
                if last > i:  # the previous last group is now an inner one
                    inner = sizes[last - 1]
                    if not (3 <= inner <= _MAX_GROUP or (last - 1 == i and digits[i] == "86")):
                        break
                d += digits[last]
                x_here = x and j == n
                long_tail = False
                if j == i + 1:
                    kind = _classify(d, x_here, True, _group_label(label, i))
                    regular = True
                else:
                    long_tail = sizes[last] > _MAX_GROUP
                    if (long_tail and not _card_print(body, groups, digits, i, j)) or (
                        len(d) > _MAX_GROUPED
                    ):
                        break
                    kind = _classify(d, x_here, False)
                    if (
                        (
                            kind is _UNKNOWN
                            and d[0] in "048"
                            and not any(commas[i:last])  # 027，20230501: a list, no landline
                            and _is_landline(digits[i:j])
                        )
                        or (kind is _BANK and d[0] in "12" and _dates_only(digits[i:j]))
                    ):
                        kind = _NOT_PERSONAL
                    regular = (
                        long_tail
                        or not kind
                        or _regular(kind, _shape(sizes[i:j], x_here, d), digits[i])
                    )
                    if (
                        kind
                        and not long_tail
                        and any(commas[i:last])
                        and (
                            len(set(seps[i:last])) > 1
                            or not _comma_regular(kind, _shape(sizes[i:j], x_here, d), digits[i:j])
                            or (any(enums[i:last]) and not _enumerated(kind, d, x_here))
                        )
                    ):
                        continue  # a comma joins groups of a number only in its usual grouping,
                        # the same separator throughout (2016 2017 2018，2001-05-28: a list)
                if kind is _UNKNOWN:
                    continue
                c, v, k = cost[j]
                here = (
                    c
                    + (0 if regular else _IRREGULAR)
                    + (_MIXED if j > i + 2 and len(set(seps[i:last])) > 1 else 0)
                    + (_CARD_PRINT if long_tail else 0)
                    + (_LONG_ACCOUNT if len(d) > 19 else 0),
                    v - (_width(d, x_here) - kind[0] - kind[1] if kind else 0),
                    k + 1,
                )
                if here <= best:  # a tie goes to the longer piece
                    best, choice = here, (j, kind)
        if starred:  # a number masked before (mask_text's own output), read as it was then
            end, hidden = _masked_end(digits, stars, i, x, limit[i])
            if end:
                c, v, k = cost[end]
                here = (c, v - hidden, k + 1)
                if here <= best:
                    best, choice = here, (end, _NOT_PERSONAL)
        cost[i], cut[i] = best, choice
    positions: list[int] = []
    i = 0
    while i < n:
        j, kind = cut[i]
        if kind:
            positions.extend(_piece_positions(body, x, groups, i, j, kind))
        i = j
    return cost[0][0], positions


def _broken(
    digits: list[str], breaks: list[bool], edges: list[bool], i: int, x: bool, top: int
) -> list[tuple[int, Any, int, int]]:
    """Numbers broken at odd points by line breaks or spaces (370602198001⏎181233,
    13 900151015, 139 00 15 1015, 1 3 9 0 0 1 5 1 0 1 5), which no grouping explains, from
    group i on: whole tokens with only whitespace between and around them (breaks: per
    separator; not the 00 of 1,200.00⏎…), whose digits together are an ID, a mobile or a card
    (_broken_kind). Each as (end group, kind, cost, digits masked). At most _MAX_BROKEN groups
    unless each is one digit (spaced out): lists of small numbers join into anything
    (第1 3 5 7 9 11 13 15 17条). A card only from two groups or spaced digits: four tokens are
    too often a list that makes one (12315 13 2024 20230501). Not into group top (stars)."""
    n = len(digits)
    if i + 1 >= n or not breaks[i] or (i and not edges[i - 1]):
        return []
    found = []
    d, end = digits[i], i + 1
    spaced = len(d) == 1  # every group so far one digit
    while end < top and breaks[end - 1]:
        spaced = spaced and len(digits[end]) == 1
        d += digits[end]
        end += 1
        if len(d) > _BROKEN_LONGEST or (end - i > _MAX_BROKEN and not spaced):
            break
        if len(d) not in _BROKEN_SIZES or (end < n and not edges[end - 1]):
            continue
        x_here = x and end == n
        once = end == i + 2
        kind = _broken_kind(d, x_here, card=once or spaced)
        if not kind:
            continue
        width = _width(d, x_here)
        sure = _speaks(kind, d, width, digits[i:end], once)
        found.append((end, kind, 0 if sure else _BROKEN, width - sum(kind)))
    return found


def _speaks(kind: Any, d: str, width: int, groups: list[str], once: bool) -> bool:
    """Does a broken number's own structure speak for it, so that it costs nothing, whatever
    its pieces read as? An 18-character ID whose birth date speaks (_birth_speaks); an old
    15-digit ID with a real area code and a piece that reads as a landline (37 0602 8001181 23,
    3 706 02351126508); a card from two groups, one a card by itself but no ID by itself
    (6222021234567890⏎123; not 370602198001181233 1, an ID and a 1), or a UnionPay card with
    a piece that reads as a landline (62170 07064925440)."""
    if kind is _ID:
        if width == 18:
            return _birth_speaks(groups, d)
        return _real_area(d) and _landline_inside(groups)
    if kind is not _BANK or not once:
        return False
    longest = max(groups, key=len)
    if len(longest) >= 16:
        return _broken_kind(longest, False, card=False) is not _ID
    return d[:2] == "62" and _landline_inside(groups)


def _birth_speaks(groups: list[str], d: str) -> bool:
    """Does the birth date of an 18-character ID d (check character, province and birth date
    right), broken into these groups, speak for it? Not when a group by itself is a date
    YYYYMMDD of a year in a list that is not its birth date after a real area code, or is
    with a group that is a year: 5000 13 20230501 2025 and 13 2024 20230501 2019 are lists (500013 is no area code:
    no prefecture 00), 3706 02 19800118 1233 is an ID, and so is 370602 19800118 12 33."""
    if len(groups[0]) == 6:
        return True
    at = 0
    for g in groups:
        if len(g) == 8 and _is_year(g[:4]) and _plausible_birth(g):
            return at == 6 and _real_area(d) and not any(map(_is_year, groups))
        at += len(g)
    return True


def _is_year(group: str) -> bool:
    """A group that reads as a year in a list, or of a date in one (an ID's last 4 digits may
    be 2067, its pieces 20610215)."""
    return len(group) == 4 and _FIRST_YEAR <= int(group) <= _LAST_YEAR


def _real_area(d: str) -> bool:
    """Do the digits d start with an area code an ID may have: a province (GB/T 2260), then
    a prefecture other than 00 (a county code or a city's own, 370602, 370600, 441900)?"""
    return d[:2] in _PROVINCES and d[2:4] != "00"


def _landline_inside(groups: list[str]) -> bool:
    """Does a group, or do 2–3 groups in a row, read as a landline or a 400/800 number
    (_is_landline)?"""
    n = len(groups)
    return any(
        _is_landline(groups[a:b]) if b > a + 1 else _is_service_number(groups[a])
        for a in range(n)
        for b in range(a + 1, min(n, a + 3) + 1)
    )


def _is_service_number(group: str) -> bool:
    """One group that is a landline (05356612345) or a 400/800 number (4000370789)."""
    if len(group) == 10:
        return group[:3] in ("400", "800")
    return _LANDLINE.fullmatch(group) is not None


def _masked_end(digits: list[str], stars: list[bool], i: int, x: bool, k: int) -> tuple[int, int]:
    """A number mask_text has masked, starting at group i: its head digits, its stars (in one
    or more groups) and 4 tail characters (3 digits + X), of a width and head of a kind it
    masks (139****1015, 370602 ******** 1233, ****-****-****-5678). As (end group, stars), or
    (0, 0). A second run reads it as it was read the first time: its head and tail digits are
    no part of another number (1233 2019 2020 2021 after an ID is no card). k: the first star
    group from group i on."""
    n = len(digits)
    if k == n or k - i > _MAX_MASK_HEAD:
        return 0, 0
    head = "".join(digits[i:k])
    hidden = tail = 0
    start = k
    while k < n and stars[k]:
        if k - start == _MAX_MASK_STAR_GROUPS:
            return 0, 0  # more groups of stars than a spaced-out card leaves: none masked so
        hidden += len(digits[k])
        k += 1
    while k < n and not stars[k] and tail < 4:
        tail += len(digits[k])
        k += 1
    if tail == 3 and x and k == n:
        tail += 1  # the ID's X (after 4 digits, an X is a letter: tel138****5678x)
    if not hidden or tail != 4:
        return 0, 0
    width = len(head) + hidden + tail
    for pattern, widths in _MASKED_SHAPES.get(len(head), ()):
        if pattern.match(head) and (width in widths or (not widths and width >= 16)):
            return k, hidden
    return 0, 0


def _broken_kind(d: str, x: bool, card: bool) -> Any:
    """The kind of the digits d of a broken number (an X after them when x), judged strictly,
    as nothing in its grouping speaks for it: an 18-character ID with its check character, a
    province and a birth date; an old 15-digit ID with a province; a mobile; when card, 16–19
    digits as a card (not from a year 19xx/20xx on: no card starts so); else _UNKNOWN."""
    if (
        len(d) + x == 18
        and d[:2] in _PROVINCES
        and _plausible_birth(d[6:14])
        and resident_id_check_char(d[:17]) == ("X" if x else d[17])
    ):
        return _ID
    if len(d) == 15 and d[:2] in _PROVINCES and resident_id_is_valid(d):
        return _ID
    if len(d) == 11 and d[0] == "1" and d[1] in "3456789":
        return _MOBILE
    if card and 16 <= len(d) <= 19 and d[:2] not in ("19", "20"):
        return _BANK
    return _UNKNOWN


def _width(d: str, x: bool) -> int:
    """The characters of a number of digits d and maybe an X after it (17 + X: an ID)."""
    return 18 if x and len(d) == 17 else len(d)


def _shape(sizes: list[int], x: bool, d: str) -> tuple[int, ...]:
    """The grouping of a piece: its group sizes, an ID's X counted in the last group."""
    return (*sizes[:-1], sizes[-1] + 1) if x and len(d) == 17 else tuple(sizes)


def _card_print(body: str, groups: list, digits: list[str], i: int, j: int) -> bool:
    """May the two groups i, i+1 (the second longer than _MAX_GROUP) form one number? Only as
    cards print them: 6+10..15 or 4+10..15 digits (not a year 19xx/20xx then a number),
    joined by spaces and/or a dash, or an underscore or a comma (_PLAIN_SEP)."""
    size = groups[i + 1][1] - groups[i + 1][0]
    first = digits[i]
    return (
        j == i + 2
        and size <= 15
        and (len(first) == 6 or (len(first) == 4 and first[:2] not in ("19", "20")))
        and _PLAIN_SEP.fullmatch(body, groups[i][1], groups[i + 1][0]) is not None
    )


def _whole(x: bool, digits: list[str], sizes: list[int], comma: bool, enum: bool) -> Any:
    """The kind of a whole run of several groups when it is one grouped number in a usual
    grouping, else None."""
    if not 3 <= sizes[0] <= _MAX_GROUP and digits[0] != "86":
        return None
    if any(not 3 <= size <= _MAX_GROUP for size in sizes[1:-1]) or sizes[-1] > _MAX_GROUP:
        return None
    d = "".join(digits)
    if len(d) > _MAX_GROUPED:
        return None
    kind = _classify(d, x, False)
    if kind is _BANK and d[0] in "12" and _dates_only(digits):
        return None
    if not kind:
        return None
    shape = _shape(sizes, x, d)
    if enum and not _enumerated(kind, d, x):
        return None
    if comma:
        return kind if _comma_regular(kind, shape, digits) else None
    return kind if _regular(kind, shape, digits[0]) else None


def _piece_positions(body: str, x: bool, groups: list, i: int, j: int, kind: Any) -> list[int]:
    """The positions to mask of the piece groups[i:j], a number of this kind."""
    chars = [p for s, e in groups[i:j] for p in range(s, e)]
    if x and j == len(groups) and len(chars) == 17:
        chars.append(len(body))  # the ID's X
    return chars[kind[0] : len(chars) - kind[1]]


def _is_landline(digits: list[str]) -> bool:
    """A landline or service number, not personal data: an area code then 7–8 digits starting
    2–9 (in two groups after 010 and 02x: 010 6612 3456), or 400/800 then 7 digits."""
    if len(digits) > 3:
        return False
    rest = "".join(digits[1:])
    if _AREA.fullmatch(digits[0]):
        return (
            7 <= len(rest) <= 8
            and rest[0] in "23456789"
            and (len(digits) == 2 or len(digits[0]) == 3)
        )
    return digits[0] in ("400", "800") and len(rest) == 7


def _date_end(digits: list[str], sizes: list[int], seps: list[str], i: int) -> int:
    """The end group of a date starting at group i (2023-10-01, 2023.1.5, 2023/10/01: one
    punctuation character, the same twice, between the parts; or one group YYYYMMDD of
    1900–2099, 20230501), else 0."""
    if sizes[i] == 8:
        return i + 1 if _plausible_birth(digits[i]) else 0
    if (
        i + 2 < len(sizes)
        and sizes[i] == 4
        and sizes[i + 1] <= 2
        and sizes[i + 2] <= 2
        and seps[i] == seps[i + 1]
        and seps[i] in _DATE_SEPS
        and digits[i][:2] in ("19", "20")
    ):
        try:
            date(int(digits[i]), int(digits[i + 1]), int(digits[i + 2]))
        except ValueError:
            return 0
        return i + 3
    return 0


def _money_end(digits: list[str], sizes: list[int], seps: list[str], i: int) -> int:
    """The end group of an amount of money with thousands separators starting at group i
    (1,200,000 or 1，234，567.89: 1–3 digits, then groups of exactly 3 after one and the same
    comma, maybe a decimal point and 1–2 digits), else 0. Lists (12,13,14) have short groups,
    which never stand inside a number anyway."""
    n = len(sizes)
    if not (sizes[i] <= 3 and i + 1 < n and sizes[i + 1] == 3 and seps[i] in _COMMA_SET):
        return 0
    if digits[i][0] == "0" and sizes[i] > 1:
        return 0
    j = i + 1
    while j + 1 < min(n, i + _MAX_LIST) and sizes[j + 1] == 3 and seps[j] == seps[i]:
        j += 1
    if j + 1 < n and sizes[j + 1] <= 2 and seps[j] in _DECIMAL_POINTS:
        j += 1
    return j + 1


def _split_id_end(sizes: list[int], i: int, x: bool) -> int:
    """The end group of an ID written with its birth date in year, month and day groups
    starting at group i (370602 1980 01 18 1233, 6-4-2-2-4 or 6-4-2-2-3 + X; an old one
    370602 80 01 18 123, 6-2-2-2-3), else 0."""
    shape = tuple(sizes[i : i + 5])
    if shape == (6, 4, 2, 2, 4) or (shape == (6, 4, 2, 2, 3) and x and i + 5 == len(sizes)):
        return i + 5
    if shape == (6, 2, 2, 2, 3):
        return i + 5
    return 0


def _years_end(digits: list[str], seps: list[str], i: int) -> int:
    """The end group of a list of years starting at group i (2019,2020,2021 or 2019， 2020:
    19xx/20xx joined by one and the same comma), else 0."""
    j = i
    while (
        j < min(len(digits), i + _MAX_LIST)
        and len(digits[j]) == 4
        and digits[j][:2] in ("19", "20")
    ):
        if j > i and (seps[j - 1] != seps[i] or seps[i].strip() not in _LIST_SET):
            break
        j += 1
    return j if j >= i + 2 else 0


def _comma_regular(kind: Any, shape: tuple[int, ...], groups: list[str]) -> bool:
    """_regular for a piece (its digit groups) with a comma between groups. A comma is first a
    list separator (142，26751230; 101,102,103,104,105,106; 153，2006，2007): it joins the
    groups of a number only in the grouping numbers are written in, 3-4-4 for mobiles
    (139,0015,1015), groups of 4 or 6-8-4, 6-4-4-4, 6-6-6 for IDs and accounts
    (6222,0212,3456,7890,123; 370602,19800118,1233); a mobile not with two years 19xx/20xx
    (a birth year is a group of a 6-4-4-4 ID, any group of a card can read as a year)."""
    if kind in _MOBILE_SHAPES:
        if sum(len(g) == 4 and g[:2] in ("19", "20") for g in groups) >= 2:
            return False
        return shape in _COMMA_MOBILE_SHAPES and shape in _MOBILE_SHAPES[kind]
    return shape[0] in (4, 6) and _regular(kind, shape, groups[0])


def _enumerated(kind: Any, d: str, x: bool) -> bool:
    """May 、 join the groups of a number of this kind, d its digits (x: an X after them), in
    a grouping a comma may join? 、 is first the list separator of Chinese text (1、2、3,
    2023、2024, 房间1101、1102、1103、1104): only for a number whose digits speak for it: a
    mobile (139、0015、1015; not with a round hundred: 150、1000、2000件), an 18-character ID
    with its check character, a province and a birth date (370602、19800118、1233; not batch
    numbers 220314、220315、220316), a UnionPay card passing the Luhn check whose groups do not
    count (6222、0212、3456、7890; not 房间6201、6202、6203、6204)."""
    if kind in _MOBILE_SHAPES:
        return not (d.endswith("00") or d[-8:-4].endswith("00"))
    if kind is _ID:
        return (len(d) + x == 18 and d[:2] in _PROVINCES and _plausible_birth(d[6:14])
                and resident_id_check_char(d[:17]) == ("X" if x else d[17]))
    return (kind is _BANK and d[:2] == "62" and 16 <= len(d) <= 19 and _luhn(d)
            and not _counting(d))


def _luhn(d: str) -> bool:
    """The Luhn check every UnionPay card number passes."""
    total = 0
    for i, c in enumerate(reversed(d)):
        n = int(c) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _counting(d: str) -> bool:
    """Are d's groups of 4 a run of numbers that count up or down (6201 6202 6203 6204)?"""
    groups = [int(d[i:i + 4]) for i in range(0, len(d) - len(d) % 4, 4)]
    steps = {b - a for a, b in zip(groups, groups[1:], strict=False)}
    return len(steps) == 1 and 0 < abs(next(iter(steps))) <= 10


def _regular(kind: Any, shape: tuple[int, ...], first: str) -> bool:
    """Is shape (the sizes of the groups) a usual grouping for a number of this kind, first
    its first group? No card starts with 19 or 20 (2019 2020 6217 0968 is no card, nor
    20120513 12325726; Mastercard's 2-series starts at 2221), nor does an ID."""
    if kind in _MOBILE_SHAPES:
        return shape in _MOBILE_SHAPES[kind]
    if kind is _BANK and first[:2] in ("19", "20"):
        return False
    head = shape[:-1]
    return (min(head) == max(head) and shape[-1] <= head[0]) or shape in _NUMBER_SHAPES


def mask_text(s: str) -> str:
    """s with every ID number, mobile number and bank card number masked (s itself when there
    is nothing to mask)."""
    if len(s) < 11:
        return s
    masked = _mask_odd_joins(s)
    # One scan of ordinary text: a stretch of 11 digits of any form is needed for either pass.
    if _ANY.candidate.search(masked) is None:
        return s if masked == s else masked
    masked = _mask(masked, _PLAIN)
    if _OTHER_DIGIT.search(masked) is not None:  # some digit of another form
        masked = _mask(masked, _ANY)
    return s if masked == s else masked


def _mask_odd_joins(s: str) -> str:
    """s with the IDs and mobiles masked whose digit groups a colon or 一 joins (see Odd
    separators in the module docstring), else s."""
    return _ODD_JOINED.sub(_mask_odd_joined, s) if _ODD_SEP.search(s) else s


def _mask_odd_joined(match: re.Match[str]) -> str:
    """One stretch of digit groups joined by colons or 一, with its IDs and mobiles masked."""
    text = match.group()
    x = text[-1] in _X_SET
    body = text[:-1] if x else text
    groups = [m.span() for m in _PLAIN.group.finditer(body)]
    digits = [body[a:b].translate(_ASCII) for a, b in groups]
    chars = list(text)
    i = 0
    while i < len(groups):
        end, kind = _odd_number(digits, i, x)
        if kind:
            for p in _piece_positions(body, x, groups, i, end, kind):
                chars[p] = "*"
        i = end
    return "".join(chars)


def _odd_number(digits: list[str], i: int, x: bool) -> tuple[int, Any]:
    """The number of several groups starting at group i of a stretch joined by colons or 一
    (x: an X after its last group), as (end group, kind); else (i + 1, _UNKNOWN). Only what the
    digits speak for: a mobile in groups 3-4-4, an 18-character ID with its check character, a
    province and a birth date (the test 、 joins by, _enumerated)."""
    n = len(digits)
    if (
        i + 3 <= n
        and [len(g) for g in digits[i : i + 3]] == [3, 4, 4]
        and digits[i][:2] in _MOBILE_HEADS
    ):
        return i + 3, _MOBILE
    d = digits[i]
    for j in range(i + 1, n):
        d += digits[j]
        x_here = x and j == n - 1
        if len(d) + x_here > 18:
            break
        if len(d) + x_here == 18 and _enumerated(_ID, d, x_here):
            return j + 1, _ID
    return i + 1, _UNKNOWN


def _mask(s: str, reading: _Reading) -> str:
    """One pass of mask_text: the numbers written in reading's digits."""
    if "*" not in s:  # the usual case: no number masked before
        return reading.candidate.sub(lambda m: _replace(s, m.start(), m.end(), reading), s)
    out: list[str] = []
    done = 0
    for m in reading.candidate.finditer(s):
        start = _masked_start(s, m.start(), done)
        out += (s[done:start], _replace(s, start, m.end(), reading))
        done = m.end()
    if not out:
        return s
    out.append(s[done:])
    return "".join(out)


def _masked_start(s: str, start: int, floor: int) -> int:
    """start, or the first of the stars before it (and the separators between them) that
    end at s[start]: the head of an account number masked before (****-****-****-5678)."""
    at = start
    while at > floor and _STAR_OR_SEP.match(s, at - 1):
        at -= 1
    first = s.find("*", at, start)
    return start if first < 0 else first


# A JSON string escape: \uXXXX, or a backslash and one character (\n, \", \\ …).
_JSON_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{4}|.)", re.S)
_JSON_SHORT_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "/": "/",
                       '"': '"', "\\": "\\"}


def mask_escaped(text: str) -> str:
    """mask_text for the text of a JSON line that could not be parsed (a report shows it): its
    numbers are read with the JSON escapes decoded (\\uff11\\uff13\\uff19… is １３９…, and
    \\n a line break), the text is left as written, but a masked digit written as an escape
    becomes \\u**** (its length kept, so the column an error names still points right)."""
    masked = mask_text(text)
    if "\\" not in masked:
        return masked
    decoded: list[str] = []
    sources: list[tuple[int, int]] = []  # the span of the text each decoded character comes from
    at = 0
    for m in _JSON_ESCAPE.finditer(masked):
        decoded.extend(masked[at : m.start()])
        sources.extend((k, k + 1) for k in range(at, m.start()))
        escape = m.group()
        if len(escape) == 6:  # \uXXXX
            decoded.append(chr(int(escape[2:], 16)))
        else:
            decoded.append(_JSON_SHORT_ESCAPES.get(escape[1], escape[1]))
        sources.append(m.span())
        at = m.end()
    decoded.extend(masked[at:])
    sources.extend((k, k + 1) for k in range(at, len(masked)))
    plain = "".join(decoded)
    seen = mask_text(plain)
    if seen is plain:
        return masked
    out: list[str] = []
    for (start, end), before, after in zip(sources, plain, seen, strict=True):
        if before == after:
            out.append(masked[start:end])
        else:  # a digit masked: its escape too, \u**** (\* for a stray \5), the length kept
            kept = masked[start : end - 4 if end - start == 6 else end - 1]
            out.append(kept.ljust(end - start, "*"))
    return "".join(out)


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
