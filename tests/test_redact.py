"""Masking of personal data in any published text (data contract, "Personal data")."""

from __future__ import annotations

import random
import timeit

import pytest

from publishing.codes import resident_id_check_char, uscc_check_char, uscc_is_valid
from publishing.redact import mask_text, mask_value


def resident_id(first17: str = "37060219900101123") -> str:
    return first17 + resident_id_check_char(first17)


ID_X = "11010519491231002X"  # GB 11643's own example, check character X
ID_DIGIT = resident_id()


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (f"身份证号{ID_X}。", "身份证号110105********002X。"),
        ("身份证号11010519491231002x", "身份证号110105********002x"),
        (f"身份证{ID_DIGIT}", f"身份证370602********{ID_DIGIT[-4:]}"),
        ("旧身份证370602900101123", "旧身份证370602*****1123"),
        ("ID11010519491231002X,", "ID110105********002X,"),  # letters and commas are boundaries
    ],
)
def test_resident_id_numbers(text, masked):
    assert mask_text(text) == masked


def test_18_digits_with_a_wrong_check_are_masked_as_an_account_number():
    wrong = ID_DIGIT[:17] + str((int(ID_DIGIT[17]) + 1) % 10 if ID_DIGIT[17] != "X" else 0)
    assert mask_text(wrong) == "*" * 14 + wrong[-4:]


def test_id_written_in_groups():
    assert mask_text(f"证件 {ID_DIGIT[:6]} {ID_DIGIT[6:14]} {ID_DIGIT[14:]}") == (
        f"证件 370602 ******** {ID_DIGIT[14:]}"
    )
    grouped = f"{ID_X[:4]} {ID_X[4:8]} {ID_X[8:12]} {ID_X[12:16]} {ID_X[16:]}"
    assert mask_text(grouped) == "1101 05** **** **00 2X"
    assert mask_text("1101-0519-4912-3100-2X") == "1101-05**-****-**00-2X"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("电话13812345678", "电话138****5678"),
        ("手机:19912345678。", "手机:199****5678。"),
        ("tel13812345678x", "tel138****5678x"),
        ("138-1234-5678", "138-****-5678"),
        ("138 1234 5678", "138 **** 5678"),
        ("+8613812345678", "+86138****5678"),
        ("+86 138 1234 5678", "+86 138 **** 5678"),
        ("１３８１２３４５６７８", "１３８****５６７８"),  # full-width digits in free text
        ("13812345678、13987654321", "138****5678、139****4321"),
        ("13812345678 13987654321", "138****5678 139****4321"),
    ],
)
def test_mobile_numbers(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("账号6222021234567890123", "账号***************0123"),
        ("卡号 6222 0212 3456 7890 123 。", "卡号 **** **** **** ***0 123 。"),
        ("6222-0212-3456-7890", "****-****-****-7890"),
        ("账号6222021234567890", "账号************7890"),
        ("账号62220212345678901", "账号*************8901"),
    ],
)
def test_bank_card_numbers(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "罚款50000元，没收违法所得1234.56元",
        "2022-03-05 至 2023-04-06",
        "2022-03-05 2023-04-06",  # dates side by side are not glued into a card number
        "12812345678",  # not a mobile (12x)
        "1381234567",  # 10 digits
        "0535-6681234",  # landline
        "烟芝市监罚〔2023〕123号",
        "",
        "张三",
    ],
)
def test_other_numbers_are_left_alone(text):
    assert mask_text(text) == text


def test_text_without_candidates_is_returned_as_is():
    text = "当事人经营超过保质期的食品，案值1234元。"
    assert mask_text(text) is text


def test_mask_value_for_lists_dicts_and_numbers():
    assert mask_value(["张三", "13812345678"]) == ["张三", "138****5678"]
    assert mask_value(("a", "b")) == ["a", "b"]
    assert mask_value({"x": "13812345678"}) == {"x": "138****5678"}
    assert mask_value(13812345678) == "138****5678"  # a mobile typed into a numeric cell
    assert mask_value(13812345678.0) == "138****5678"
    assert mask_value(50000) == 50000
    assert mask_value(None) is None
    assert mask_value(True) is True


def test_mask_text_is_fast_on_ordinary_text():
    text = (
        "当事人于2023年5月6日在其经营场所内销售超过保质期的食品，案值1234元，违反了《中华人民共和国"
        "食品安全法》第三十四条第(十)项的规定。"
    )
    n = 20000
    per_call = timeit.timeit(lambda: mask_text(text), number=n) / n
    print(f"\nmask_text: {per_call * 1e9:.0f} ns per {len(text)}-character field")
    assert mask_text(text) == text


# -- separators (review finding 1) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("身份证号370602–19800109–1238", "身份证号370602–********–1238"),  # en dash
        ("6217–0008–1234–5678", "****–****–****–5678"),
        ("139—0011—1011", "139—****—1011"),  # em dash
        ("139−0011−1011", "139−****−1011"),  # minus sign
        ("139‐0011‐1011", "139‐****‐1011"),  # U+2010 hyphen
        ("139‑0011‑1011", "139‑****‑1011"),  # U+2011 non-breaking hyphen
        ("139－0011－1011", "139－****－1011"),  # full-width hyphen-minus
        ("139\u30000011\u30001011", "139\u3000****\u30001011"),  # ideographic space
        ("１３９．００１１．１０１１", "１３９．****．１０１１"),  # full-width digits and dots
        ("139.0011.1011", "139.****.1011"),
        ("139/0023/1023", "139/****/1023"),
        ("139／0023／1023", "139／****／1023"),
        ("(139)0027-1027", "(139)****-1027"),
        ("139 - 0011 - 1011", "139 - **** - 1011"),
        ("139  0011  1011", "139  ****  1011"),
        ("139\t0011\t1011", "139\t****\t1011"),
        ("370602 - 19800109 - 1238", "370602 - ******** - 1238"),
    ],
)
def test_other_separators_between_groups(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("139\u200b0022\u200b1022", "139\u200b****\u200b1022"),
        ("1390\u200c011\u200d1011", "139*\u200c***\u200d1011"),  # anywhere, not only at groups
        ("370602198001\u2060091238", "370602******\u2060**1238"),
        ("3706\ufeff0219800109\u200b1238", "3706\ufeff02********\u200b1238"),
        ("139 \u200b0011\u200b 1011", "139 \u200b****\u200b 1011"),
        ("\ufeff13900111011\u2060", "\ufeff139****1011\u2060"),
    ],
)
def test_invisible_characters_inside_a_number_are_ignored(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "2023.10.01 至 2023.10.31",
        "2023/10/01—2023/12/31",
        "罚款1,234.56元",
        "罚款 12,345.67 元，没收 1,234.00 元",
        "0535–6612345 0535–6612346",  # two landlines
        "0535-6612345、0535 6612346",
        "电话(0535)6612345",
        "010 6612 3456",
        "400-123-4567",
        "2022-03-05 – 2023-04-06",
        "烟芝市监罚〔2023〕123号 2023-03-05 2023-04-06",
        "第1234.5678.9012号",
        "1.2.3.4.5.6.7.8.9.10.11",
    ],
)
def test_new_separators_do_not_glue_other_numbers(text):
    assert mask_text(text) == text


# -- neighbouring numbers (finding 2) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("0535-6612345 139 0015 1015", "0535-6612345 139 **** 1015"),
        ("139 0016 1016 139 0017 1017", "139 **** 1016 139 **** 1017"),
        ("6217 0012 1234 5678 139 0046 1046", "**** **** **** 5678 139 **** 1046"),
        ("139 0038 1038 6217 0099 1234 5678", "139 **** 1038 **** **** **** 5678"),
        ("(0535)6612345 13900151015", "(0535)6612345 139****1015"),
        ("400-123-4567 139 0015 1015", "400-123-4567 139 **** 1015"),
        ("010 6612 3456 139 0015 1015", "010 6612 3456 139 **** 1015"),
        ("2023-10-01 139-0015-1015", "2023-10-01 139-****-1015"),
        ("139-0015-1015 2023-10-01", "139-****-1015 2023-10-01"),
        ("6217 0012 1234 5678 6222 0212 3456 7891", "**** **** **** 5678 **** **** **** 7891"),
        (
            f"{ID_X[:6]} {ID_X[6:14]} {ID_X[14:]} 139 0015 1015",
            "110105 ******** 002X 139 **** 1015",
        ),
    ],
)
def test_neighbouring_numbers_are_each_masked_on_their_own(text, masked):
    assert mask_text(text) == masked


def _mobile(r: random.Random) -> str:
    return "1" + r.choice("3456789") + "".join(r.choice("0123456789") for _ in range(9))


def _card(r: random.Random) -> str:
    return r.choice(["6217", "6222", "6228"]) + "".join(r.choice("0123456789") for _ in range(12))


def test_no_number_shows_more_digits_than_its_mask_allows_next_to_others():
    # Mobiles and 16-digit cards in the usual groupings, with separators of every kind, next
    # to each other and to landlines, dates and money: never more than 7 (mobile) or 4 (card)
    # digits of one shown, and the other numbers untouched.
    r = random.Random(20261127)
    groupings = {11: [(3, 4, 4), (3, 8), (7, 4), (11,)], 16: [(4, 4, 4, 4), (16,)]}
    separators = [" ", "-", "\u2013", "\u2014", "\u2212", "\uff0d", "\u3000", ".", "/", " - ", "  "]
    others = ["0535-6612345", "010 6612 3456", "2023-10-01", "2023.10.01", "1,234.56"]
    for _ in range(300):
        text, numbers, kept = "", [], []
        for _ in range(r.randint(2, 3)):
            if r.random() < 0.3:
                other = r.choice(others)
                kept.append((len(text), other))
                text += other
            else:
                number = r.choice([_mobile, _card])(r)
                sep, grouping, at = r.choice(separators), r.choice(groupings[len(number)]), 0
                positions = []
                for size in grouping:
                    text += sep if at else ""
                    positions += range(len(text), len(text) + size)
                    text += number[at : at + size]
                    at += size
                numbers.append((positions, 7 if len(number) == 11 else 4))
            text += r.choice([" ", "  ", "\t", "，"])
        masked = mask_text(text)
        for positions, shown in numbers:
            assert sum(masked[p] != "*" for p in positions) <= shown, (text, masked)
        for at, other in kept:
            assert masked[at : at + len(other)] == other, (text, masked)


# -- card groupings and long numbers (findings 3 and 4) -------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("621700 0912345678901", "****** *********8901"),  # 6+13 as printed on UnionPay cards
        ("6217 001112345678901", "**** ***********8901"),  # 4+15
        ("6217-001112345678901", "****-***********8901"),
        ("621700151234567890123", "*****************0123"),  # 21 digits
        ("6217 0007 1234 5678 9012", "**** **** **** **** 9012"),  # 20 digits
        ("6217 0007 1234 5678 9012 1", "**** **** **** **** *012 1"),
        ("37060219800122123113900451045", "*************************1045"),  # ID + mobile
        ("123456789012345678901234", "********************1234"),  # any run of 16 or more
    ],
)
def test_card_groupings_and_long_numbers(text, masked):
    assert mask_text(text) == masked


def test_a_year_before_a_long_number_is_not_taken_for_a_card_group():
    assert mask_text("(2023)370602202300123") == "(2023)370602202300123"
    assert mask_text("2023-370602202300123") == "2023-370602202300123"


# -- trunk 0 (finding 5) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("013900181018", "0139****1018"),
        ("0139 0018 1018", "0139 **** 1018"),
        ("0139-0018-1018", "0139-****-1018"),
        ("008613812345678", "0086138****5678"),
    ],
)
def test_mobile_with_a_trunk_0_or_0086(text, masked):
    assert mask_text(text) == masked


# -- over-masking (finding 6) -------------------------------------------------------------------


def test_15_digits_without_a_real_birth_date_are_not_an_id():
    # Masked, two different decision numbers became one and one record took the other's case.
    first, second = (
        "鲁烟芝市监处罚〔2023〕370602202300123号",
        "鲁烟芝市监处罚〔2023〕370602202300124号",
    )
    assert mask_text(first) == first and mask_text(second) == second
    assert mask_text("370602991231123") == "370602*****1123"  # 1999-12-31
    assert mask_text("370602990231123") == "370602990231123"  # 1999-02-31


def test_a_valid_uscc_is_left_alone_unless_it_is_also_an_id():
    assert uscc_is_valid("913706000000001009")
    assert mask_text("统一社会信用代码913706000000001009") == "统一社会信用代码913706000000001009"
    also_id = next(
        code
        for n in range(1, 10_000)
        if resident_id_check_char((code := _uscc(n))[:17]) == code[17]
    )
    assert mask_text(also_id) == also_id[:6] + "********" + also_id[-4:]


def _uscc(n: int) -> str:
    first17 = f"91370602{n:09d}"
    return first17 + uscc_check_char(first17)


@pytest.mark.parametrize(
    "code",
    [
        "370602198001000082",  # a mistyped ID (wrong check, a birth date) that passes GB 32100
        "622202123456700012",  # an account number starting like a UnionPay card
    ],
)
def test_a_uscc_lookalike_that_is_more_likely_personal_is_still_masked(code):
    assert uscc_is_valid(code) and resident_id_check_char(code[:17]) != code[17]
    assert mask_text(code) == "*" * 14 + code[-4:]


def test_text_with_dates_and_money_only_takes_the_fast_path():
    text = "当事人于2023-05-06至2023.06.07期间销售超过保质期的食品，罚款1,234.56元。"
    assert mask_text(text) is text
