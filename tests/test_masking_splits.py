"""Personal data that slipped past the masker (review B): numbers broken by a line break or a
space at an odd point, list columns split before masking, numbers typed into number columns,
and raw values in the reject report. Masker-level cases, then the real publish path on SQLite
and PostgreSQL, asserting on `disclosure export` and the --report JSON."""

from __future__ import annotations

import gc
import itertools
import json
import time

import pytest

from publishing.redact import mask_text
from tests.factories import (
    PENALTY_HEADER,
    blacklist_row,
    penalty_row,
    pledge_row,
    resident_id,
    write_csv,
    write_ndjson,
)
from tests.test_cli import cli

ID = resident_id("19800118", "123")  # 370602198001181233
ID_X = "11010519491231002X"
ID_15 = "370602800118123"
MOBILE = "13900151015"
CARD_19 = "6222021234567890123"
CARD_16 = "6222021234567890"
R_PERSONAL = "疑似个人信息(身份证号、手机号或银行卡号)，不予公示"


# -- the masker: a number broken once --------------------------------------------------------


@pytest.mark.parametrize("number", [ID, ID_X, ID_15, MOBILE, CARD_19, CARD_16])
@pytest.mark.parametrize("sep", ["\n", "\r\n", " ", "\u3000", "  "])
def test_a_number_broken_at_any_point_is_masked_as_the_whole_one(number, sep):
    whole = mask_text(number)
    for k in range(1, len(number) - (number[-1] == "X")):  # an X apart is a letter, no digit
        text = f"当事人{number[:k]}{sep}{number[k:]}，"
        assert mask_text(text) == f"当事人{whole[:k]}{sep}{whole[k:]}，", k


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("370602198001\n181233", "370602******\n**1233"),
        ("62220212\n34567890123", "********\n*******0123"),
        ("13 900151015", "13 9****1015"),
        ("139001510 15", "139****10 15"),
        ("37060219 8001181233", "370602** ******1233"),  # 8001181233 reads as an 800 number
        ("2023-05-01 370602198001\n181233", "2023-05-01 370602******\n**1233"),
        ("0535-6612345 13 900151015", "0535-6612345 13 9****1015"),
    ],
)
def test_broken_numbers_next_to_others(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        # the reviewer's "checked and fine" cases
        "烟市监罚〔2025〕123号",
        "烟芝市监罚字〔2023〕370602202300123号",
        "2023年5月1日至2024年4月30日",
        "20230501-20240501",
        "2023-05-01 13:45",
        "罚款1,200,000.00元",
        "货值金额 1 234 567 元",
        "客服电话 400-123-4567",
        "举报电话12315",
        "座机0535-6612345",
        "0535 661 2345",
        "坐标 121.447935,37.463822",
        "经纬度 37.4638 121.4479",
        "生产日期 20230512 保质期至 20240512",
        "批次号 20230512 20230513 20230514",
        # numbers next to each other that would join into a mobile, an ID or a card
        "2025年 13 家",
        "2025年\n13 12315",
        "罚款 1,200.00\n13 900151",  # the 00 after a decimal point starts no number
        "5000\r\n13 20230501  2025",  # an "ID" of four pieces, one a date: no
        "12315 13\u30002024 20230501\n2019 2020",
        "第1 3 5 7 9 11 13 15 17条",
        "1 2 3 4 5 6 7 8 9 10 11 12 13 14",
        "20230501 2025\n20240501 2026",
        "2019 123456789012",  # no card starts with a year
    ],
)
def test_other_numbers_are_not_joined(text):
    assert mask_text(text) == text


# -- the masker: a number broken more than once ------------------------------------------------


def _insert(text: str, points: tuple[int, ...], sep: str) -> str:
    """text with sep inserted at each of the points."""
    cuts = (0, *points, len(text))
    return sep.join(text[a:b] for a, b in itertools.pairwise(cuts))


@pytest.mark.parametrize("number", [ID, ID_X, ID_15, MOBILE])
@pytest.mark.parametrize("sep", ["\n", " "])
@pytest.mark.parametrize("breaks", [2, 3])
def test_a_number_broken_more_than_once_is_masked_as_the_whole_one(number, sep, breaks):
    whole = mask_text(number)
    for points in itertools.combinations(range(1, len(number) - (number[-1] == "X")), breaks):
        text = f"当事人{_insert(number, points, sep)}，"
        assert mask_text(text) == f"当事人{_insert(whole, points, sep)}，", points


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("139 00 15 1015", "139 ** ** 1015"),
        ("手机13 9001 51015。", "手机13 9*** *1015。"),
        ("139\n00\n15\n1015", "139\n**\n**\n1015"),
        ("1 3 9 0 0 1 5 1 0 1 5", "1 3 9 * * * * 1 0 1 5"),  # spaced out
        (" ".join(ID), "3 7 0 6 0 2 * * * * * * * * 1 2 3 3"),
        (" ".join(CARD_16), "* * * * * * * * * * * * 7 8 9 0"),
        (f"{ID[:6]} {ID[6:14]} {ID[14:16]} {ID[16:]}", "370602 ******** 12 33"),
        (f"{ID[:3]}\n{ID[3:9]}\n{ID[9:]}", "370\n602***\n*****1233"),  # not an old ID + 370
        ("2023-05-01 139 00 15 1015", "2023-05-01 139 ** ** 1015"),
        ("0535-6612345 139 00 15 1015", "0535-6612345 139 ** ** 1015"),
        ("罚款 1,200.00\n139 00 15 1015", "罚款 1,200.00\n139 ** ** 1015"),
        ("6222 0212 3456 7890 123", "**** **** **** ***0 123"),  # a card print, as it was
    ],
)
def test_numbers_broken_more_than_once(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "各项得分 13 25 36 48 120",  # five groups: a list, though 13253648120 reads as a mobile
        "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
        "第1 3 5 7 9 11 13 15 17 19 21 23条",
        "12315 13 2024 20230501",  # 19 digits: a card only from two groups
        "5000 13 20230501 2025",  # an ID with its check character, but 20230501 is a date
        "13 2024 20230501 2019",
        "2025 1 2 13 45",
        "139-00-15-1015 2025-1-2",  # punctuation between short groups: dates, not broken numbers
        "13.900151015",
    ],
)
def test_lists_of_small_numbers_are_not_joined(text):
    assert mask_text(text) == text


# -- the masker: a broken number whose pieces read as something else -------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # an ID whose birth date is a piece by itself, after a real area code (3706 02)
        ("3706 02 19800118 1233", "3706 02 ******** 1233"),
        ("身份证号3706\n02\n19800118\n1233。", "身份证号3706\n02\n********\n1233。"),
        ("44 0305 20081225 1048", "44 0305 ******** 1048"),
        ("4\n40305\n19891127\n7454", "4\n40305\n********\n7454"),
        ("1101 05 19491231 002X", "1101 05 ******** 002X"),
        ("1101 05 19920321 2067", "1101 05 ******** 2067"),  # 2067: no year in a list
        ("32010220 0 20610215X", "320102** * *****215X"),  # nor 20610215 a date in one
        # an old ID, or a UnionPay card, with a piece that reads as a landline (0602 8001181)
        ("37 0602 8001181 23", "37 0602 *****81 23"),
        ("旧证3 706 02351126508，", "旧证3 706 02*****6508，"),
        ("卡号62170  07064925440", "卡号*****  *******5440"),
        ("卡号621731511  4000370789", "卡号*********  ******0789"),  # a 400 number
        # no landline across a list separator (027，20230501)
        ("14 16 9869 027，20230501", "14 1* ***9 027，20230501"),
        # an ID and a mobile broken after its first digit, not a card from the ID
        ("370602198001181233 1\n390015\n10\n15", "370602********1233 1\n39****\n10\n15"),
        # a list separator before or after a broken number: the end of a list item
        ("手机13 900151015，2023-10-01", "手机13 9****1015，2023-10-01"),
        ("2023-10-01，13 900151015", "2023-10-01，13 9****1015"),
        ("370602198001\n181233；12315", "370602******\n**1233；12315"),
        ("12315|139 00 15 1015", "12315|139 ** ** 1015"),
    ],
)
def test_a_broken_number_whose_pieces_read_as_something_else(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "5000 13 20230501 2025",  # check character right, but 500013 is no area code
        "5000 13 20230501 1233",  # likewise (no year in it)
        "13 2024 20230501 2019",  # check character right, area code 132024, but years
        "3706 13 20230501 2025",
        "举报电话12315 05356612345",  # 16 digits, no UnionPay card
        "第3 0535 6612345号",
        "0535，6612345",
        "罚款 1,200.00\n13 900151",
    ],
)
def test_lists_with_a_date_or_a_landline_stay(text):
    assert mask_text(text) == text


# -- the masker: list separators (| ~ ;) ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("139|0015|1015", "139|****|1015"),
        ("139 | 0015 | 1015", "139 | **** | 1015"),
        ("139｜0015｜1015", "139｜****｜1015"),
        ("139¦0015¦1015", "139¦****¦1015"),
        ("139~0015~1015", "139~****~1015"),
        ("139～0015～1015", "139～****～1015"),
        ("139〜0015〜1015", "139〜****〜1015"),
        ("139;0015;1015", "139;****;1015"),
        ("139；0015；1015", "139；****；1015"),
        ("6222|0212|3456|7890|123", "****|****|****|***0|123"),
        (f"{ID[:6]}~{ID[6:14]}~{ID[14:]}", "370602~********~1233"),
        ("0535-6612345|13900151015", "0535-6612345|139****1015"),
        ("电话：0535-6612345；13900151015", "电话：0535-6612345；139****1015"),
        ("13900151015~13900161016", "139****1015~139****1016"),
        ("2023.01.01~2023.12.31 139~0015~1015", "2023.01.01~2023.12.31 139~****~1015"),
    ],
)
def test_list_separators_inside_a_number_in_its_usual_grouping(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "2023.01.01~2023.12.31",
        "2023-01-01～2023-12-31",
        "20230101~20231231",
        "2019~2022年",
        "2019|2020|2021|2022",
        "2019；2020；2021；2022",
        "2025.01.02；2025/1/2",
        "罚款1,000~5,000元",
        "1,200,000.00|1,300,000.00",
        "烟市监罚〔2025〕123号；烟市监罚〔2025〕124号",
        "0535-1234567；0535-7654321",
        "0535-6612345~6612350",
        "举报电话12315|12345|110",
        "1;2;3;4;5;6;7;8;9;10;11;12",
        "142；26751230",  # a list, as with a comma
        "10:30~11:30 13:00~17:30",
        "2023-05-01 13:45:20~2023-05-01 14:45:20",
        "130000~150000元",
    ],
)
def test_list_separators_do_not_glue_other_numbers(text):
    assert mask_text(text) == text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("139、0015、1015", "139、****、1015"),
        ("手机：139 、0015 、1015。", "手机：139 、**** 、1015。"),
        ("370602、19800118、1233", "370602、********、1233"),
        ("110105、19491231、002X", "110105、********、002X"),
        ("370602、1980、01、18、1233", "370602、****、**、**、1233"),
        ("6222、0212、3456、7894", "****、****、****、7894"),  # passes the Luhn check
        ("一三九、〇〇一五、一〇一五", "一三九、****、一〇一五"),
        ("13900151015、13900161016", "139****1015、139****1016"),
        ("2023、2024、139、0015、1015", "2023、2024、139、****、1015"),
        ("手机13 900151015、2023-10-01", "手机13 9****1015、2023-10-01"),
    ],
)
def test_an_enumeration_comma_inside_a_number_in_its_usual_grouping(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "1、2、3",
        "2023、2024",
        "2019、2020、2021、2022年",
        "第3、5条",
        "第1、3、5、7、9、11、13条",
        "12、13、14",
        "房间1101、1102、1103、1104",  # 4-4-4-4, but no card: it starts 11
        "房间6201、6202、6203、6204",  # starts 62, but its groups count
        "6222、0212、3456、7890",  # fails the Luhn check every UnionPay card passes
        "生产批号220314、220315、220316的产品",  # 18 digits, a check digit, no birth date
        "编号101、102、103、104、105、106",
        "370602、1980、01、18、1230",  # the ID check fails: no ID, and an account not so
        "370602、800118、123",  # an old ID's digits: too weak to join a list
        "数量150、1000、2000件",  # a mobile's shape, but round hundreds: quantities
        "批次20230501、20230502",
        "0535-6612345、0535 6612346",
        "1,234.56、62226336",
    ],
)
def test_an_enumeration_comma_separates_other_numbers(text):
    assert mask_text(text) == text


# -- the masker stays linear-time -------------------------------------------------------------


PATHOLOGICAL = {  # n times each piece, 、 between them
    "money and years, read from every group": ["139,", "2019,", "1，234，"],
    "broken and spaced-out numbers": ["1 ", "139 00 ", "一 "],
    "list separators and other digit forms": ["139|", "1;", "①", "一三九,"],
}


def _field(pieces: list[str], n: int) -> str:
    return "、".join(piece * n for piece in pieces)


def _fastest(text: str, repeat: int) -> float:
    """The least CPU time of mask_text(text) over repeat runs (CPU time: the machine is shared)."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        mask_text(text)
        times.append(time.process_time() - start)
    return min(times)


@pytest.mark.slow
@pytest.mark.parametrize("pieces", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_the_masker_is_linear_time_on_pathological_input(pieces):
    small, large = _field(pieces, 60), _field(pieces, 960)
    mask_text(small)  # warm up (the digit table fills as it is used)
    gc.disable()  # collections grow with the live objects: noise on a per-character measure
    try:
        ratio = _fastest(large, 2) / _fastest(small, 5)
    finally:
        gc.enable()
    assert ratio < 40, ratio  # 16 when linear, 256 when quadratic


# -- the real publish path --------------------------------------------------------------------


def _publish(database_url, tmp_path, *files, report=None):
    args = ["publish", *map(str, files), "--accept-partial"]
    if report is not None:
        args += ["--report", str(report)]
    return cli(database_url, *args, tmp_path=tmp_path)


def _export(database_url, tmp_path, kind: str) -> list[dict]:
    out = cli(database_url, "export", "--kind", kind, "--format", "ndjson", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def _digits(text: str) -> str:
    """text without anything but digits and X: a number broken any way shows up whole."""
    return "".join(ch for ch in text if ch.isdigit() or ch in "Xx")


def test_broken_numbers_are_masked_in_the_export(engine, database_url, tmp_path):
    facts = (
        f"当事人张三（身份证号{ID[:12]}\n{ID[12:]}，银行卡{CARD_19[:8]}\n{CARD_19[8:]}，"
        f"手机{MOBILE[:2]} {MOBILE[2:]}，另一手机{MOBILE[:9]} {MOBILE[9:]}）无证经营"
    )
    row = penalty_row(1, 法定代表人=f"李四 {ID[:12]} {ID[12:]}", 违法事实=facts)
    path = write_csv(tmp_path / "p.csv", [row])
    assert _publish(database_url, tmp_path, path).returncode == 0

    [record] = _export(database_url, tmp_path, "penalty")
    published = json.dumps(record, ensure_ascii=False)
    for number in (ID, CARD_19, MOBILE):
        assert number not in published.replace(" ", "").replace("\\n", "")
    assert record["legal_rep"] == "李四 370602****** **1233"
    assert record["facts"] == (
        "当事人张三（身份证号370602******\n**1233，银行卡********\n*******0123，"
        "手机13 9****1015，另一手机139****10 15）无证经营"
    )


def test_a_list_column_is_masked_before_it_is_split(engine, database_url, tmp_path):
    persons = (
        f"王五、赵六（{ID[:6]},{ID[6:14]},{ID[14:]}）、钱七\n139\n1501\n0507、孙八139、0015、1015"
    )
    path = write_csv(tmp_path / "b.csv", [blacklist_row(1, 责任人员=persons)])
    assert _publish(database_url, tmp_path, path).returncode == 0

    [record] = _export(database_url, tmp_path, "blacklist")
    assert record["responsible_persons"] == [
        "王五",
        "赵六（370602,********,1233）",
        "钱七",
        "139 **** 0507",
        "孙八139、****、1015",
    ]


def test_personal_data_in_a_number_column_rejects_the_row(engine, database_url, tmp_path):
    penalties = write_csv(
        tmp_path / "p.csv",
        [
            penalty_row(1),
            penalty_row(2, **{"罚款金额(元)": MOBILE}),
            penalty_row(3, **{"没收违法所得金额(元)": ID}),
        ],
        header=[*PENALTY_HEADER, "没收违法所得金额(元)"],
    )
    pledges = write_ndjson(
        tmp_path / "r.ndjson", [pledge_row(4), pledge_row(5, return_days=int(MOBILE))]
    )
    blacklist = write_csv(
        tmp_path / "b.csv", [blacklist_row(6), blacklist_row(7, issue=f"第{MOBILE}期")]
    )
    report = tmp_path / "report.json"
    assert (
        _publish(database_url, tmp_path, penalties, pledges, blacklist, report=report).returncode
        == 0
    )

    rejected = [
        (r["row"], r["column"], r["value"], r["reason"])
        for file in json.loads(report.read_text(encoding="utf-8"))
        for r in file["rejected"]
    ]
    assert rejected == [
        (3, "罚款金额(元)", "139****1015", R_PERSONAL),
        (4, "没收违法所得金额(元)", "370602********1233", R_PERSONAL),
        (2, "return_days", "139****1015", R_PERSONAL),
        (3, "期次", "第139****1015期", R_PERSONAL),
    ]
    exported = {
        kind: _export(database_url, tmp_path, kind)
        for kind in ("penalty", "return_pledge", "blacklist")
    }
    assert [len(records) for records in exported.values()] == [1, 1, 1]
    published = _digits(json.dumps(exported, ensure_ascii=False))
    assert MOBILE not in published and ID not in published


def test_reject_values_are_masked_in_the_report(engine, database_url, tmp_path):
    header = [
        "行政处罚决定书文号",
        "统一社会信用代码",
        "当事人名称",
        "所属区市",
        "违法行为类型",
        "违法事实",
        "处罚依据",
        "处罚种类",
        "处罚机关",
        "处罚决定日期",
        "身份证号",
        "联系电话",
    ]
    good = penalty_row(1)
    line = ",".join(
        [*(good[h] for h in header[:5]), '"经查"x', *(good[h] for h in header[6:10]), ID, MOBILE]
    )  # a quote out of place: a CSV syntax error
    path = tmp_path / "p.csv"
    path.write_text(",".join(header) + "\n" + line + "\n", encoding="utf-8")
    report = tmp_path / "report.json"
    result = _publish(database_url, tmp_path, path, report=report)

    [reject] = json.loads(report.read_text(encoding="utf-8"))["rejected"]
    assert reject["row"] == 2 and reject["reason"].startswith("CSV 格式错误")
    assert reject["value"].endswith(",370602********1233,139****1015")
    for text in (reject["value"], result.stderr):
        assert ID not in text and MOBILE not in text
    assert "370602********1233" in result.stderr
