"""Personal data that slipped past the masker (review B): numbers broken by a line break or a
space at an odd point, list columns split before masking, numbers typed into number columns,
and raw values in the reject report. Masker-level cases, then the real publish path on SQLite
and PostgreSQL, asserting on `disclosure export` and the --report JSON."""

from __future__ import annotations

import json

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
    persons = f"王五、赵六（{ID[:6]},{ID[6:14]},{ID[14:]}）、钱七\n139\n1501\n0507"
    path = write_csv(tmp_path / "b.csv", [blacklist_row(1, 责任人员=persons)])
    assert _publish(database_url, tmp_path, path).returncode == 0

    [record] = _export(database_url, tmp_path, "blacklist")
    assert record["responsible_persons"] == [
        "王五",
        "赵六（370602,********,1233）",
        "钱七",
        "139 **** 0507",
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
