"""Numbers written in other digit forms (Chinese numerals, circled digits, the digits of other
scripts, mixed with ASCII ones) are masked like the digits they stand for, in the same mask
shape: a character per digit, the same head and tail shown (publishing.redact, "Digits")."""

from __future__ import annotations

import pytest

from publishing.redact import mask_text, mask_value
from tests.factories import resident_id

ID = resident_id("19800118", "123")  # 370602198001181233
ID_X = "11010519491231002X"
ID_15 = "370602800118123"
MOBILE = "13900151015"
CARD_16 = "6222021234567890"

CHINESE = str.maketrans("0123456789", "〇一二三四五六七八九")
CAPITAL = str.maketrans("0123456789", "零壹贰叁肆伍陆柒捌玖")
CIRCLED = str.maketrans("0123456789", "⓪①②③④⑤⑥⑦⑧⑨")
NEGATIVE_CIRCLED = str.maketrans("0123456789", "⓿❶❷❸❹❺❻❼❽❾")
BOLD = str.maketrans("0123456789", "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FORMS = [CHINESE, CAPITAL, CIRCLED, NEGATIVE_CIRCLED, BOLD, ARABIC_INDIC]


def _as_digits_show(masked: str, written: str) -> str:
    """The mask of the digit form applied to the written form: * where masked is *."""
    return "".join("*" if m == "*" else w for m, w in zip(masked, written, strict=True))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("number", [ID, ID_X, ID_15, MOBILE, CARD_16])
def test_a_number_in_another_digit_form_gets_the_mask_of_its_digits(form, number):
    written = number.translate(form)
    expected = _as_digits_show(mask_text(number), written)
    assert expected != written
    assert mask_text(f"当事人{written}，") == f"当事人{expected}，"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("一三九〇〇一五一〇一五", "一三九****一〇一五"),
        ("壹叁玖零零壹伍壹零壹伍", "壹叁玖****壹零壹伍"),
        ("幺三九零零幺五幺零幺五", "幺三九****幺零幺五"),  # 幺: a 1 read out in a phone number
        ("①③⑨⓪⓪①⑤①⓪①⑤", "①③⑨****①⓪①⑤"),
        ("三七〇六〇二一九八〇〇一一八一二三三", "三七〇六〇二********一二三三"),
        ("一一〇一〇五一九四九一二三一〇〇二X", "一一〇一〇五********〇〇二X"),
        # mixed forms
        ("139〇〇15一〇15", "139****一〇15"),
        ("１３９〇〇１５一〇１５", "１３９****一〇１５"),
        ("一3九0〇1五1〇1五", "一3九****1〇1五"),
        ("370602一九八〇〇一一八1233", "370602********1233"),
        # grouped, broken and spaced out, as digits are
        ("一三九 〇〇一五 一〇一五", "一三九 **** 一〇一五"),
        ("一三九-〇〇一五-一〇一五", "一三九-****-一〇一五"),
        ("一三九|〇〇一五|一〇一五", "一三九|****|一〇一五"),
        ("一三九\n〇〇\n一五\n一〇一五", "一三九\n**\n**\n一〇一五"),
        ("一 三 九 〇 〇 一 五 一 〇 一 五", "一 三 九 * * * * 一 〇 一 五"),
        ("139 〇〇15 一〇15", "139 **** 一〇15"),
        # a numeral of the word before (王五) or of a list mark (①) is no digit of the number
        ("联系人王五一三九〇〇一五一〇一五", "联系人王五一三九****一〇一五"),
        ("①一三九〇〇一五一〇一五", "①一三九****一〇一五"),
        ("张三13900151015", "张三139****1015"),
        ("张三 139 0015 1015", "张三 139 **** 1015"),
        ("一13900151015", "一139****1015"),
        # next to other numbers, each on its own
        ("2023-10-01 一三九〇〇一五一〇一五", "2023-10-01 一三九****一〇一五"),
        (
            "〇五三五-六六一二三四五 一三九〇〇一五一〇一五",
            "〇五三五-六六一二三四五 一三九****一〇一五",
        ),
    ],
)
def test_other_digit_forms(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "二〇二三年五月一日至二〇二四年四月三十日",
        "二〇二三.〇一.〇一~二〇二三.一二.三一",
        "人民币壹万贰仟叁佰肆拾伍元整",
        "第一三五七九条",
        "一二三四五六七八九〇一",  # 11 digits, not a mobile
        "一 二 三 四 五 六 七 八 九 十",
        "〇五三五-六六一二三四五",  # a landline
        "①2023年5月②2024年4月③2025年",
        "①销售过期食品；②未建立进货查验记录；③一二三一五投诉",
        "统一社会信用代码91370600MA3C12345X",
        "注册号三七〇六〇二六〇〇一一八一二一",  # a 注册号 after its label, as with digits
        "⑴⑵⑶⑷⑸⑹⑺⑻⑼⑽⑾",  # list marks, not digits
    ],
)
def test_other_digit_forms_that_are_not_personal_data(text):
    assert mask_text(text) == text


def test_ordinary_chinese_text_is_returned_as_is():
    text = (
        "当事人张三于二〇二三年五月一日在其经营场所内销售超过保质期的食品，违反了第三十四条的规定。"
    )
    assert mask_text(text) is text


def test_mask_value_masks_other_digit_forms_in_lists_and_dicts():
    assert mask_value(["王五", "一三九〇〇一五一〇一五"]) == ["王五", "一三九****一〇一五"]
    assert mask_value({"phone": "①③⑨⓪⓪①⑤①⓪①⑤"}) == {"phone": "①③⑨****①⓪①⑤"}
