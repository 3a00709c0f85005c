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


def test_a_uscc_whose_check_character_is_a_letter_is_left_alone():
    """Its 17 digits were masked as an account number (in free text and in reject values)."""
    code = next(c for n in range(1, 1000) if not (c := _uscc(n))[-1].isdigit())
    assert uscc_is_valid(code)
    assert mask_text(f"统一社会信用代码：{code}，") == f"统一社会信用代码：{code}，"
    # the same digits before a letter that makes no valid code: still an account number
    other = next(ch for ch in "ABCDEFGHJKLMNPQRTUWXY" if ch not in (code[-1], "X"))
    assert mask_text(code[:17] + other) == "*" * 13 + code[13:17] + other


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
    # The GB 32100 check character is right (codes.uscc_is_valid may reject the code anyway,
    # for its 登记管理部门/机构类别 pair), the GB 11643 one is not.
    assert uscc_check_char(code[:17]) == code[17] != resident_id_check_char(code[:17])
    assert mask_text(code) == "*" * 14 + code[-4:]


def test_text_with_dates_and_money_only_takes_the_fast_path():
    text = "当事人于2023-05-06至2023.06.07期间销售超过保质期的食品，罚款1,234.56元。"
    assert mask_text(text) is text


# -- birth date in year, month, day groups; more separators; 12 digits; dates; 注册号 ----------

ID_1980 = resident_id("37060219800118123")  # 370602198001181233


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("370602 1980 01 18 1233", "370602 **** ** ** 1233"),
        ("身份证号370602-1980-01-18-1233。", "身份证号370602-****-**-**-1233。"),
        ("370602.1980.01.18.1233", "370602.****.**.**.1233"),
        ("370602 1980-01-18 1233", "370602 ****-**-** 1233"),  # the date written as a date
        ("370602／1980／01／18／1233", "370602／****／**／**／1233"),
        ("370602_1980_01_18_1233", "370602_****_**_**_1233"),
        ("370602，1980，01，18，1233", "370602，****，**，**，1233"),
        ("110105 1949 12 31 002X", "110105 **** ** ** 002X"),
        ("370602 1980 01 18 1230", "****** **** ** ** 1230"),  # wrong check: an 18-digit number
        ("旧证 370602 80 01 18 123", "旧证 370602 ** ** *8 123"),  # 15 digits, 6-2-2-2-3
        ("370602 1980 01 18 1233 139 0015 1015", "370602 **** ** ** 1233 139 **** 1015"),
        ("2023-10-01 370602-1980-01-18-1233", "2023-10-01 370602-****-**-**-1233"),
    ],
)
def test_id_with_its_birth_date_in_year_month_day_groups(text, masked):
    assert ID_1980 == "370602198001181233"
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("139     0015     1015", "139     ****     1015"),
        ("139          0015          1015", "139          ****          1015"),
        (
            "139\u3000\u3000\u3000\u3000\u30000015 1015",
            "139\u3000\u3000\u3000\u3000\u3000**** 1015",
        ),
        ("370602      19800118      1233", "370602      ********      1233"),
        ("139     -     0015-1015", "139     -     ****-1015"),
        ("6222\t\t\t\t\t0212 3456 7890", "****\t\t\t\t\t**** **** 7890"),
    ],
)
def test_five_or_more_spaces_between_groups(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("139_0015_1015", "139_****_1015"),
        ("139＿0015＿1015", "139＿****＿1015"),
        ("6222_0212_3456_7890_123", "****_****_****_***0_123"),
        ("6222,0212,3456,7890,123", "****,****,****,***0,123"),
        ("卡号6222，0212，3456，7890，123。", "卡号****，****，****，***0，123。"),
        ("139,0015,1015", "139,****,1015"),
        ("139，0015，1015", "139，****，1015"),
        ("139, 0015, 1015", "139, ****, 1015"),
        ("370602,19800118,1233", "370602,********,1233"),
        ("1101,0519,4912,3100,2X", "1101,05**,****,**00,2X"),
        ("13900151015,13900161016", "139****1015,139****1016"),  # a list of mobiles
        ("13900151015，370602198001181233", "139****1015，370602********1233"),
        ("621700_0912345678901", "******_*********8901"),  # a card print, 6+13
        ("621700，0912345678901", "******，*********8901"),
        ("罚款1,200,000元，电话139,0015,1015", "罚款1,200,000元，电话139,****,1015"),
    ],
)
def test_underscore_and_comma_as_group_separators(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "1,200,000",
        "罚款1,200,000元",
        "罚款1，200，000元",
        "12,13,14",
        "第12，13，14条",
        "涉案金额12,345,678,901元",
        "涉案金额1,234,567,890.12元",
        "1,139,001,510.15",  # an amount whose digits after the 1 read as a mobile
        "案值139,001,510元",
        "100,200,300,400,500",
        "罚款 1,234.56 元，没收 12,345.67 元，共计 13,580.23 元",
        "2018,2019,2020,2021年",
        "2019，2020，2021，2022，2023年度",
        "第1,2,3,4,5,6,7,8,9,10,11项",
        "IMG_20230501_123456.jpg",
        "101,102,103,104,105,106",  # 18 digits in groups of 3: a list, not an ID
        "数量分别为142，26751230",  # 3-8 would be a mobile; with a comma, a list
        "185，19980122",
        "1596022,1661",  # 7-4 likewise
    ],
)
def test_commas_in_money_and_lists_are_left_alone(text):
    assert mask_text(text) == text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("139001510151", "139*****0151"),
        ("手机139001510151", "手机139*****0151"),
        ("电话：139001510151。", "电话：139*****0151。"),
        ("2023-10-01 139001510151", "2023-10-01 139*****0151"),
        ("1390015101511", "139******1511"),  # 13 digits: a mobile with a digit glued on
        ("联系电话1390015101511", "联系电话139******1511"),  # 13 digits: digits glued on
        # The label speaks for the whole run: a 12-digit group after a landline too.
        ("电话：0535-6612345 139001510151", "电话：0535-6612345 139*****0151"),
    ],
)
def test_a_12_digit_mistyped_mobile_is_masked(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "128001510151",  # 12x: no mobile starts so
        "199805011230",  # a time stamp YYYYMMDDhhmm
        "202405011230",
        "鲁烟市监罚〔2024〕123号",
        "鲁烟市监罚〔2024〕1390015号",
        "电话199805011230",  # a time stamp even after a phone label
    ],
)
def test_12_digits_that_are_not_a_mobile_are_left_alone(text):
    assert mask_text(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "20230501-20240501",
        "有效期20230501—20240501",
        "20230501 - 20240501",
        "20230501,20230612,20230703",  # batch numbers that are dates
        "2023.05.01-2024.05.01",
        "2023-05-01-2024-05-01",
        "2019 2020 2021 2022",
        "2019,2020,2021,2022年",
        "20230501 62220212",  # no card starts with 19 or 20
        "19990712  37622713",
        "2013 2014 20160512",
        "第153，2006，2007号",
        "227423, 2021-01-28 - 2011年",  # a number, then a date: no ID split 6-4-2-2-4
        "2016 2017 2018，2001-05-28",  # 201620172018200105 would pass the ID check
    ],
)
def test_date_ranges_and_year_lists_are_not_card_numbers(text):
    assert mask_text(text) == text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("2023050120240501", "************0501"),  # 16 digits without separators: masked
        ("62220212 20230501", "******** ****0501"),  # a card whose second half reads as a date
        ("20230501-20240501 139 0015 1015", "20230501-20240501 139 **** 1015"),
    ],
)
def test_cards_next_to_or_like_dates_are_still_masked(text, masked):
    assert mask_text(text) == masked


REG_NO = "370602600118121"  # a 个体 注册号 with its GS 15 check digit; 600118 reads as 1960-01-18


@pytest.mark.parametrize(
    "text",
    [
        f"注册号{REG_NO}",
        f"工商注册号：{REG_NO}",
        f"个体工商户注册号: {REG_NO}，经营者张三",
        f"营业执照注册号（{REG_NO}）",
        f"登记号为{REG_NO}",
        f"注册号{REG_NO} 2023-10-01",
        "注册号：370602700503129",
        "370600228012345",  # 228012 is no date: not an ID in any case
        "110108000000016",  # GS 15's own example
    ],
)
def test_a_registration_number_after_its_label_is_left_alone(text):
    assert mask_text(text) == text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (REG_NO, "370602*****8121"),  # no label: it reads as an old ID, masked
        (f"经营者{REG_NO}", "经营者370602*****8121"),
        (f"身份证号{REG_NO}", "身份证号370602*****8121"),
        ("注册号370602600118123", "注册号370602*****8123"),  # wrong GS 15 check: maybe an ID
        (f"注册号/统一社会信用代码：{REG_NO}", "注册号/统一社会信用代码：370602*****8121"),
        (f"注册号{REG_NO[:14]}", f"注册号{REG_NO[:14]}"),  # 14 digits: nothing
        (f"注册号 {REG_NO[:6]} {REG_NO[6:]}", f"注册号 {REG_NO[:6]} *****8121"),
    ],
)
def test_a_15_digit_old_id_is_still_masked(text, masked):
    assert mask_text(text) == masked


def test_new_separators_and_id_groupings_next_to_money_dates_and_lists():
    # Mobiles, cards and IDs (birth date in one group or in three) with the new separators,
    # among amounts with thousands separators, date ranges and lists: never more than 7
    # (mobile), 4 (card) or 10 (ID) digits of one shown, and the other numbers untouched.
    r = random.Random(20261202)
    separators = ["_", ",", "，", "      ", " ", "-", ", ", "\t" * 5]
    others = ["1,200,000", "12,345.67", "20230501-20240501", "2019,2020,2021", "12,13,14"]
    groupings = {
        11: [(3, 4, 4), (11,)],
        16: [(4, 4, 4, 4), (16,)],
        18: [(6, 4, 2, 2, 4), (6, 8, 4), (18,)],
    }
    shown = {11: 7, 16: 4, 18: 10}
    for _ in range(300):
        text, numbers, kept = "", [], []
        for _ in range(r.randint(2, 3)):
            if r.random() < 0.3:
                other = r.choice(others)
                kept.append((len(text), other))
                text += other
            else:
                number = r.choice([_mobile, _card, _birth_id])(r)
                sep, grouping, at = r.choice(separators), r.choice(groupings[len(number)]), 0
                positions = []
                for size in grouping:
                    text += sep if at else ""
                    positions += range(len(text), len(text) + size)
                    text += number[at : at + size]
                    at += size
                numbers.append((positions, shown[len(number)]))
            text += r.choice(["；", " 及 ", "元，", "。"])
        masked = mask_text(text)
        for positions, most in numbers:
            assert sum(masked[p] != "*" for p in positions) <= most, (text, masked)
        for at, other in kept:
            assert masked[at : at + len(other)] == other, (text, masked)


def _birth_id(r: random.Random) -> str:
    born = f"{r.randint(1930, 2010)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}"
    return resident_id(f"370602{born}{r.randint(0, 999):03d}")
