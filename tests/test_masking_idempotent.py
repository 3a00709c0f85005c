"""Masking twice changes nothing (`disclosure scrub`: "a second run writes nothing"), and no
masked text shows a whole ID, mobile or bank number. Property tests over seeded random text
that mixes personal numbers, written every way the masker reads them, with dates, amounts,
decision numbers, landlines and lists (publishing.redact)."""

from __future__ import annotations

import gc
import random
from dataclasses import dataclass, field
from datetime import date

import pytest

from publishing.codes import resident_id_check_char
from publishing.redact import _luhn, mask_text
from tests.test_masking_splits import _fastest

CASES = 4000
NUMERALS = "〇一二三四五六七八九"
CHINESE = str.maketrans("0123456789", NUMERALS)
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
AREAS = ["370602", "370681", "370612", "110105", "440305", "320102"]
# What stands between the groups of a number written in groups: anything that joins the groups
# of a number, and list separators, which join them only in a number's usual grouping
# (139|0015|1015, not 1390015|1015: a list).
JOINS = [" ", "  ", "-", "\u2013", ".", "/", "_", "\u3000", " - ", "\u200b"]
LISTS = [",", "，", "|", "；", "~", ", ", "、"]
# Usual groupings by number of digits, with the separators they may be written with.
GROUPINGS = {
    11: [((3, 4, 4), JOINS + LISTS), ((3, 8), JOINS), ((7, 4), JOINS)],
    15: [((6, 2, 2, 2, 3), JOINS)],
    16: [((4, 4, 4, 4), JOINS + LISTS)],
    18: [((6, 8, 4), JOINS + LISTS), ((6, 4, 4, 4), JOINS + LISTS), ((6, 4, 2, 2, 4), JOINS)],
    19: [((4, 4, 4, 4, 3), JOINS + LISTS), ((6, 13), [" ", "-", "_", ","])],
}
# Other numbers: none of them is personal data, the masker leaves each alone.
OTHERS = [
    "0535-6612345",
    "010 6612 3456",
    "400-123-4567",
    "2023-10-01",
    "2023.10.01",
    "2023年5月1日",
    "20230501",
    "20230501-20240501",
    "2023.01.01~2023.12.31",
    "1,234.56",
    "1,200,000.00",
    "12,13,14",
    "2019,2020,2021",
    "2023、2024",
    "1、2、3",
    "第3、5条",
    "12315",
    "烟市监罚〔2025〕123号",
    "罚款5000元",
    "5000 13 20230501 2025",
]
PREFIXES = ["", "当事人", "手机", "身份证号", "账号", "联系人王五", "张三"]
# Between fragments: words and punctuation that end a number, a space or a line break.
JOINERS = ["，", "。", " 及 ", "元，", " ", "、", "\n", "；"]
SET_OFF = ["。", " 及 ", "元，"]  # what ends a number


@dataclass
class Text:
    """A generated text and, per personal number in it, the positions of its digits."""

    text: str = ""
    numbers: list[list[int]] = field(default_factory=list)

    def add(self, fragment: str, digits: list[int] | None = None) -> None:
        if digits is not None:
            self.numbers.append([len(self.text) + p for p in digits])
        self.text += fragment


def _digits(r: random.Random, n: int) -> str:
    return "".join(r.choice("0123456789") for _ in range(n))


def _id(r: random.Random) -> str:
    born = f"{r.randint(1935, 2008)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}"
    first17 = r.choice(AREAS) + born + _digits(r, 3)
    return first17 + resident_id_check_char(first17)


def _id_x(number: str) -> str:
    return number[:17] + resident_id_check_char(number[:17])


def _old_id(r: random.Random) -> str:
    born = f"{r.randint(35, 99)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}"
    return r.choice(AREAS) + born + _digits(r, 3)


def _mobile(r: random.Random) -> str:
    return "1" + r.choice("3456789") + _digits(r, 9)


def _card(r: random.Random) -> str:
    """A card number with its Luhn check digit, as every real one has."""
    head = r.choice(["6217", "6222", "6228", "621700", "6225"])
    body = head + _digits(r, r.choice([16, 19]) - len(head) - 1)
    return next(body + c for c in "0123456789" if _luhn(body + c))


def _write(r: random.Random, number: str, strict: bool = True) -> tuple[str, list[int], bool]:
    """number written whole, in a usual grouping or broken by whitespace at odd points (only
    when strict: the structure of a number broken so speaks for it), in ASCII, full-width or
    Chinese digits; the positions of its digits; whether it is broken."""
    how = r.random()
    broken = strict and how >= 0.75
    if how < 0.35 or (how >= 0.75 and not broken):
        sizes: tuple[int, ...] = (len(number),)
        sep = ""
    elif not broken:
        sizes, seps = r.choice(GROUPINGS[len(number)])
        sep = r.choice(seps)
        if sep in LISTS and len(number) == 11 and _years_in(number, sizes) >= 2:
            sep = r.choice(JOINS)  # 139，1916，1965: a list with years, by design
        if sep == "、" and (not strict or (len(number) == 11 and "00" in number[5:7] + number[9:])):
            sep = r.choice(JOINS)  # 、 joins only a number that speaks for itself (not 150、1000)
    else:
        sizes = _broken_sizes(r, number)
        sep = r.choice([" ", "\n", "  "])
    form = r.random()
    if form < 0.1:
        number = number.translate(CHINESE)
    elif form < 0.15:
        number = number.translate(FULL_WIDTH)
    text, positions, at = "", [], 0
    for size in sizes:
        text += sep if at else ""
        positions += range(len(text), len(text) + size)
        text += number[at : at + size]
        at += size
    return text, positions, broken


def _broken_sizes(r: random.Random, number: str) -> tuple[int, ...]:
    """The sizes of the pieces of number broken at 1–3 odd points (a card at one: four pieces
    are too often a list that reads as one). Not a number without a check character (a
    mobile, an old ID) with pieces that read as a date (19511126 335, 3201027 20220221) or a
    400/800 number (1 8006652733, 1 400 6410632): nothing in its digits speaks for it then."""
    while True:
        breaks = 1 if len(number) in (16, 19) else r.randint(1, 3)
        points = sorted(r.sample(range(1, len(number) - 1), breaks))
        cuts = list(zip([0, *points], [*points, len(number)], strict=True))
        pieces = [number[a:b] for a, b in cuts]
        if len(number) in (11, 15) and _reads_otherwise(pieces):
            continue
        if len(number) == 18 and _birth_date_alone_with_a_year(pieces):
            continue
        return tuple(b - a for a, b in cuts)


def _years_in(number: str, sizes: tuple[int, ...]) -> int:
    """The groups of number in this grouping that read as years 19xx/20xx."""
    at, years = 0, 0
    for size in sizes:
        group = number[at : at + size]
        years += size == 4 and group[:2] in ("19", "20")
        at += size
    return years


def _birth_date_alone_with_a_year(pieces: list[str]) -> bool:
    """An ID broken so that its birth date is a piece by itself (not after its 6-digit area
    code), and another piece reads as a year (3706 02 19800118 2019): a list of numbers."""
    return (
        len(pieces[0]) != 6
        and any(len(p) == 8 and _is_date(p) for p in pieces)
        and any(len(p) == 4 and p.isdigit() and 1900 <= int(p) <= 2039 for p in pieces)
    )


def _reads_otherwise(pieces: list[str]) -> bool:
    """Do pieces in a row read as a date YYYYMMDD or a 400/800 number?"""
    for a in range(len(pieces)):
        for b in range(a + 1, len(pieces) + 1):
            joined = "".join(pieces[a:b])
            if len(joined) == 10 and joined[:3] in ("400", "800"):
                return True
            if b == a + 1 and len(joined) == 8 and _is_date(joined):
                return True
    return False


def _is_date(yyyymmdd: str) -> bool:
    if yyyymmdd[:2] not in ("19", "20"):
        return False
    try:
        date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        return False
    return True


def realistic(r: random.Random) -> Text:
    """Free text: a word, then 1–4 fragments, personal numbers (IDs, old IDs, mobiles, cards)
    and other numbers, with punctuation or a space between them. A number broken at odd
    points is read as whole tokens only, set off from other numbers by what ends a number (a
    list of small numbers joins into anything), and not right after a letter (a numeral may
    end a word: 王五一三九…)."""
    fragments = []
    for _ in range(r.randint(1, 4)):
        if r.random() < 0.4:
            fragments.append((r.choice(OTHERS), None, False))
            continue
        make = r.choice([_id, _id, _old_id, _mobile, _mobile, _card])
        number = make(r)
        strict = True
        if make is _id and r.random() < 0.1:
            number = number[:17] + "X"  # masked as an ID whatever its check (but broken)
            strict = number == _id_x(number)
        fragments.append(_write(r, number, strict))
    out = Text()
    prefix = r.choice(PREFIXES)
    out.add(prefix + ("：" if prefix and fragments[0][2] else ""))
    for k, (text, positions, broken) in enumerate(fragments):
        if k:
            apart = broken or fragments[k - 1][2]
            joiner = r.choice(SET_OFF if apart else JOINERS)
            if joiner[0].isalpha() and out.text[-1] in NUMERALS:
                joiner = "，" + joiner  # 三七〇六…三七九元: the 九 of 九元, a word's numeral
            out.add(joiner)
        out.add(text, positions)
    out.add(r.choice(["", "。", "，"]))
    return out


def _cases(seed: int, n: int = CASES) -> list[Text]:
    r = random.Random(seed)
    return [realistic(r) for _ in range(n)]


@pytest.mark.parametrize("seed", [20261128, 7, 1984])
def test_masking_twice_changes_nothing(seed):
    failures = []
    for case in _cases(seed):
        once = mask_text(case.text)
        if mask_text(once) != once:
            failures.append((case.text, once, mask_text(once)))
    assert not failures, failures[:5]


@pytest.mark.parametrize("seed", [20261128, 7, 1984])
def test_no_masked_text_shows_a_whole_personal_number(seed):
    failures = []
    for case in _cases(seed):
        masked = mask_text(case.text)
        for positions in case.numbers:
            if all(masked[p] != "*" for p in positions):
                number = "".join(case.text[p] for p in positions)
                failures.append((case.text, masked, number))
    assert not failures, failures[:5]


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # the kept head or tail of a number masked before is no part of another number
        ("370602********1233,2019,2020,2021", "370602********1233,2019,2020,2021"),
        ("************0090,2019,2020,2021", "************0090,2019,2020,2021"),
        ("139 **** 1015 2019 2020 2021", "139 **** 1015 2019 2020 2021"),
        ("190****9607,2019,2020,2021", "190****9607,2019,2020,2021"),
        ("440305********1316 6228766", "440305********1316 6228766"),
        ("370602********7960 37060219540723", "370602********7960 37060219540723"),
        ("110105********002X 139", "110105********002X 139"),
        ("****-****-****-5678 2019 2020 2021", "****-****-****-5678 2019 2020 2021"),
        ("370602 **** ** ** 1233 6217 0012", "370602 **** ** ** 1233 6217 0012"),
        ("**** **** **** ***0 123 2019", "**** **** **** ***0 123 2019"),
        ("1 3 9 * * * * 1 0 1 5 2019 2020 2021", "1 3 9 * * * * 1 0 1 5 2019 2020 2021"),
        ("12,13,14370602–199****1434X", "12,13,14370602–199****1434X"),  # an X after 4: a letter
        # read with a numeral before it the first time (三62170_030921838, an old ID)
        ("张三62170_*****1838_4669769", "张三62170_*****1838_4669769"),
        # a new number beside one masked before is still masked
        ("139****1015 370602198001181233", "139****1015 370602********1233"),
        ("370602********1233 13900151015", "370602********1233 139****1015"),
        ("************7890，139 0015 1015", "************7890，139 **** 1015"),
        # stars written in the text are no masked number: what stands beside them is read
        ("**13900151015**", "**139****1015**"),
        ("电话13900151015*", "电话139****1015*"),
        ("1390015*1015 6222021234567890", "1390015*1015 ************7890"),
    ],
)
def test_a_number_masked_before_is_read_as_it_was(text, masked):
    assert mask_text(text) == masked
    assert mask_text(masked) == masked


@pytest.mark.slow
@pytest.mark.parametrize(
    "piece",
    ["* ", "*1 ", "139****1015 ", "1 * * * "],
    ids=["stars", "stars and digits", "masked mobiles", "spaced stars"],
)
def test_reading_stars_is_linear_time(piece):
    def field(n: int) -> str:
        return "1 " * 11 + piece * n + "1234"

    small, large = field(60), field(960)
    mask_text(small)
    gc.disable()
    try:
        ratio = _fastest(large, 2) / _fastest(small, 5)
    finally:
        gc.enable()
    assert ratio < 40, ratio  # 16 when linear, 256 when quadratic
