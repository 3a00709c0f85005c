"""Masking of personal data in any published text (data contract, "Personal data")."""

from __future__ import annotations

import timeit

import pytest

from publishing.codes import resident_id_check_char
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
        "123456789012345678901234",  # inside a longer run: not a whole number of any kind
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
