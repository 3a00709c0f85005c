"""USCC (GB 32100-2015), 注册号 and resident ID number (GB 11643) checks."""

from __future__ import annotations

import pytest

from publishing.codes import (
    USCC_ALPHABET,
    USCC_HEADS,
    normalize_code,
    reg_no_is_valid,
    resident_id_check_char,
    resident_id_is_valid,
    uscc_check_char,
    uscc_is_valid,
    uscc_problem,
)

# Real-world codes, checked by hand against the GB 32100 algorithm (and published by the
# entities themselves): Huawei, Alibaba (China), Tencent, and python-stdnum's own example.
REAL_USCCS = [
    "914403001922038216",
    "91330100716105852F",
    "9144030071526726XG",
    "91110000600037341L",
]


def make_uscc(first17: str) -> str:
    return first17 + uscc_check_char(first17)


@pytest.mark.parametrize("code", REAL_USCCS)
def test_real_world_usccs_are_valid(code):
    assert uscc_is_valid(code)


@pytest.mark.parametrize(
    "first17",
    [
        "A1370602MA3C0000",  # 16: completed below
        "N2370612012345678",
        "Y1370681MA3NPQRT",
        "91370634MA3C12345",  # historical 长岛县 area code
        "92370684MA3C1234X",  # historical 蓬莱市 area code, 个体工商户
        "11370600004455667",
        "51370600MJD123456",
    ],
)
def test_codes_starting_with_any_registration_authority_are_valid(first17):
    first17 = first17.ljust(17, "1")
    code = make_uscc(first17)
    assert uscc_is_valid(code)
    assert uscc_problem(code) is None


def test_every_check_character_value_is_reachable_and_only_the_right_one_passes():
    base = "9137060200000000"
    seen = set()
    for ch in USCC_ALPHABET:
        code = make_uscc(base + ch)
        seen.add(code[-1])
        wrong = [c for c in USCC_ALPHABET if c != code[-1]]
        assert not any(uscc_is_valid(code[:17] + c) for c in wrong)
    assert len(seen) == 31


def test_check_formula_is_the_contracts():
    weights = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    first17 = "91370602MA3C0000"[:16] + "1"
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, weights, strict=True))
    assert uscc_check_char(first17) == USCC_ALPHABET[(31 - total % 31) % 31]


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("91370602MA3C00000X", "统一社会信用代码校验位错误"),
        ("9137060200000000", "统一社会信用代码应为18位"),
        ("91370602MA3C0000IO", "统一社会信用代码含有非法字符"),
        ("B1370602000000001K", "第1位"),
        ("0137060200000000PK", "第1位"),
        ("913706A2000000001K", "第3—8位"),
    ],
)
def test_invalid_usccs_say_why(code, reason):
    assert not uscc_is_valid(code)
    assert reason in uscc_problem(code)


# GB 32100-2015 附录A: 登记管理部门代码 + 机构类别代码, every valid pair.
GB32100_PAIRS = [
    "11", "12", "13", "19",  # 机构编制: 机关, 事业单位, 中央编办直接管理机构编制的群众团体, 其他
    "21", "29",  # 外交
    "31", "32", "33", "34", "35", "39",  # 司法行政: 律师, 公证, 基层法律服务, 司法鉴定, 仲裁, 其他
    "41", "49",  # 文化
    "51", "52", "53", "59",  # 民政: 社会团体, 民办非企业单位, 基金会, 其他
    "61", "62", "69",  # 旅游
    "71", "72", "79",  # 宗教
    "81", "89",  # 工会
    "91", "92", "93",  # 工商: 企业, 个体工商户, 农民专业合作社
    "A1", "A9",  # 中央军委改革和编制办公室
    "N1", "N2", "N3", "N9",  # 农业: 组级, 村级, 乡镇级集体经济组织, 其他
    "Y1",  # 其他
]  # fmt: skip


def test_department_and_category_pairs_are_gb32100s():
    assert frozenset(GB32100_PAIRS) == USCC_HEADS


@pytest.mark.parametrize("head", GB32100_PAIRS)
def test_every_gb32100_pair_is_accepted(head):
    assert uscc_problem(make_uscc(f"{head}370602MA3C00011")) is None


@pytest.mark.parametrize(
    "head",
    [f + c for f in "123456789ANY" for c in USCC_ALPHABET if f + c not in GB32100_PAIRS],
)
def test_every_other_pair_is_rejected_whatever_the_check_character(head):
    code = make_uscc(f"{head}370602MA3C00011")
    assert uscc_problem(code) == "统一社会信用代码第1—2位(登记管理部门/机构类别代码)无效"
    assert not uscc_is_valid(code)
    # the pair is named before other faults of the code
    assert uscc_problem(code[:-1] + ("0" if code[-1] != "0" else "1")) == uscc_problem(code)
    assert "第1—2位" in uscc_problem(code[:4] + "A" + code[5:])


R_ID_LIKE = "统一社会信用代码第1—2位(登记管理部门/机构类别代码)无效(疑似身份证号)"


def test_a_resident_id_number_passing_the_uscc_check_is_not_a_uscc():
    """1 in 31 ID numbers pass the GB 32100 check too; 37… (山东) is no 登记管理部门/机构类别
    pair, so such an ID can no longer be taken for a USCC (and published as an entity code)."""
    ids = [
        rid
        for year in (1950, 1980, 2005)
        for seq in range(1000)
        if uscc_check_char((rid := _resident_id(f"370602{year}0116{seq:03d}"))[:17]) == rid[17]
    ]
    assert len(ids) > 60
    for rid in ids:
        assert resident_id_is_valid(rid) and not uscc_is_valid(rid)
        assert uscc_problem(rid) == R_ID_LIKE


def _resident_id(first17: str) -> str:
    return first17 + resident_id_check_char(first17)


def test_normalize_code_drops_invisible_characters():
    assert normalize_code("\ufeff9144\u200b0300\u200d7152\u20606726\u202exg\u202c") == (
        "9144030071526726XG"
    )
    assert uscc_is_valid(normalize_code("91440300\u00ad71526726XG"))


def test_normalize_code_nfkc_upper_no_spaces_or_hyphens():
    assert normalize_code("９１３７０６０２ｍａ３ｃ") == "91370602MA3C"
    assert normalize_code(" 9144-0300 7152 6726xg ") == "9144030071526726XG"
    assert normalize_code("914403001922038216\u3000") == "914403001922038216"
    assert uscc_is_valid(normalize_code("9144 0300－7152 6726 xg"))


def test_reg_no_is_15_digits():
    assert reg_no_is_valid("370602600123456")
    assert not reg_no_is_valid("37060260012345")
    assert not reg_no_is_valid("37060260012345A")
    assert not reg_no_is_valid("３７０６０２６００１２３４５６")  # normalise first


def test_resident_id_18_with_check_including_x():
    assert resident_id_check_char("11010519491231002") == "X"  # GB 11643 example
    assert resident_id_is_valid("11010519491231002X")
    assert resident_id_is_valid("11010519491231002x")
    assert not resident_id_is_valid("110105194912310021")
    first17 = "37060219900101123"
    good = first17 + resident_id_check_char(first17)
    assert resident_id_is_valid(good)
    # an area code newer than the birth year is fine (python-stdnum rejects it)
    newer = "37061419500101123"
    assert resident_id_is_valid(newer + resident_id_check_char(newer))


def test_resident_id_15_digits_with_plausible_date():
    assert resident_id_is_valid("370602900101123")
    assert not resident_id_is_valid("370602901301123")  # month 13
    assert not resident_id_is_valid("37060290010112")
    assert not resident_id_is_valid("37060290010112X")
