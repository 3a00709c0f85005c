"""Source readers: formats, encodings, header matching, kind detection, row numbering, streaming.

Every fixture is a real file written to tmp_path (CSV in each contract encoding, XLSX through
openpyxl, JSON, NDJSON) and read back through open_source.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import tracemalloc
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from publishing.clean import BadValue
from publishing.rows import SourceError, SourceFile, SourceRow
from publishing.sources import ERROR_KEY, json_reader, open_source, xlsx_reader
from publishing.sources.headers import RAW_KEY

USCC = "91370602MA3C8GR03X"

# Minimal valid header + one row per kind (Chinese headers, as the bureau exports them).
KIND_TABLES: dict[str, tuple[list[str], list[str]]] = {
    "blacklist": (
        ["统一社会信用代码", "主体名称", "所属区市", "期次", "发布单位", "发布日期", "违法事实"],
        [
            USCC,
            "好运来超市",
            "芝罘区",
            "2022年第3期",
            "烟台市芝罘区市场监督管理局",
            "2022-03-05",
            "销售过期食品",
        ],
    ),
    "penalty": (
        [
            "统一社会信用代码",
            "当事人名称",
            "所属区市",
            "行政处罚决定书文号",
            "违法行为类型",
            "违法事实",
            "处罚依据",
            "处罚种类",
            "处罚机关",
            "处罚决定日期",
        ],
        [
            USCC,
            "好运来超市",
            "芝罘区",
            "烟芝市监罚〔2022〕12号",
            "食品安全",
            "销售过期食品",
            "食品安全法第一百二十四条",
            "罚款",
            "烟台市芝罘区市场监督管理局",
            "2022-04-01",
        ],
    ),
    "credit_mark": (
        ["统一社会信用代码", "企业名称", "区市", "标注类型", "分类结果", "标注日期"],
        [USCC, "好运来超市", "芝罘区", "信用风险分类", "A", "2023-01-10"],
    ),
    "return_pledge": (
        ["统一社会信用代码", "商户名称", "辖区", "经营类别", "退货期限(天)", "承诺日期"],
        [USCC, "好运来超市", "芝罘区", "超市", "7", "2023-03-15"],
    ),
}
BLACKLIST_HEADER, BLACKLIST_ROW = KIND_TABLES["blacklist"]
PENALTY_HEADER, PENALTY_ROW = KIND_TABLES["penalty"]
BLACKLIST_KEYS = [
    "uscc",
    "entity_name",
    "district",
    "issue_no",
    "publisher",
    "issued_on",
    "violation",
]


def write_csv(path: Path, rows: Sequence[Sequence[Any]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as stream:
        csv.writer(stream).writerows(rows)
    return path


def write_xlsx(path: Path, rows: Sequence[Sequence[Any]], merge: str | None = None) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(list(row))
    if merge:
        sheet.merge_cells(merge)
    workbook.save(path)
    return path


def read_all(path: Path, **kwargs: Any) -> tuple[SourceFile, list[SourceRow]]:
    source = open_source(path, **kwargs)
    return source, list(source.rows)


def source_error(path: Path, **kwargs: Any) -> SourceError:
    with pytest.raises(SourceError) as info:
        read_all(path, **kwargs)
    return info.value


# --- CSV encodings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "recorded"),
    [
        ("utf-8", "utf-8-sig"),
        ("utf-8-sig", "utf-8-sig"),
        ("gbk", "gb18030"),
        ("gb18030", "gb18030"),
    ],
)
def test_csv_encodings(tmp_path: Path, encoding: str, recorded: str) -> None:
    path = write_csv(tmp_path / "黑榜.csv", [BLACKLIST_HEADER, BLACKLIST_ROW], encoding)
    source, rows = read_all(path)
    assert source.encoding == recorded
    assert source.format == "csv"
    assert source.kind == "blacklist"
    assert source.columns["统一社会信用代码"] == "uscc"  # no BOM left on the first header
    assert rows == [SourceRow("黑榜.csv", 2, dict(zip(BLACKLIST_KEYS, BLACKLIST_ROW, strict=True)))]


def test_csv_gb18030_only_character(tmp_path: Path) -> None:
    name = "𠀀㐀好运来超市"  # U+20000 has no GBK code: only GB18030 carries it
    with pytest.raises(UnicodeEncodeError):
        name.encode("gbk")
    row = [USCC, name, *BLACKLIST_ROW[2:]]
    path = write_csv(tmp_path / "a.csv", [BLACKLIST_HEADER, row], "gb18030")
    source, rows = read_all(path)
    assert source.encoding == "gb18030"
    assert rows[0].values["entity_name"] == name


def test_csv_non_utf8_byte_after_first_chunk_falls_back_to_gb18030(tmp_path: Path) -> None:
    # The whole file is trial-decoded, not just its head: one GBK name deep in the file counts.
    ascii_row = [USCC, "Haoyunlai", "370602", "3", "AMR", "2022-03-05", "expired"]
    last = [USCC, "烟台福山食品店", *BLACKLIST_ROW[2:]]
    path = write_csv(tmp_path / "a.csv", [BLACKLIST_KEYS, *[ascii_row] * 30_000, last], "gbk")
    assert path.stat().st_size > 1 << 20  # past the first 1 MiB decoding chunk
    source, rows = read_all(path)
    assert source.encoding == "gb18030"
    assert rows[-1].values["entity_name"] == "烟台福山食品店"
    assert rows[-1].row == 30_002


def test_csv_undecodable_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(",".join(BLACKLIST_HEADER).encode() + b"\n\xff\xff\n")
    assert "无法识别文件编码" in source_error(path).reject.reason


def test_tab_separated_txt(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("\n".join("\t".join(r) for r in (BLACKLIST_HEADER, BLACKLIST_ROW)) + "\n")
    source, rows = read_all(path)
    assert source.kind == "blacklist"
    assert rows[0].values["entity_name"] == "好运来超市"


def test_excel_unicode_text_export(tmp_path: Path) -> None:
    # Excel's "Unicode text (*.txt)": UTF-16 with BOM, tab-separated.
    path = tmp_path / "a.txt"
    text = "\r\n".join("\t".join(r) for r in (BLACKLIST_HEADER, BLACKLIST_ROW))
    path.write_bytes(text.encode("utf-16"))
    source, rows = read_all(path)
    assert source.encoding == "utf-16"
    assert rows[0].values == dict(zip(BLACKLIST_KEYS, BLACKLIST_ROW, strict=True))


def test_csv_syntax_error_becomes_an_error_row(tmp_path: Path) -> None:
    huge = [*BLACKLIST_ROW[:6], "事" * 200_000]  # beyond the csv module's field size limit
    path = write_csv(tmp_path / "a.csv", [BLACKLIST_HEADER, BLACKLIST_ROW, huge, BLACKLIST_ROW])
    _, rows = read_all(path)
    assert [r.row for r in rows] == [2, 3, 4]
    assert rows[1].values[ERROR_KEY].startswith("CSV 格式错误：字段过长")
    assert rows[1].values[RAW_KEY].startswith(",".join(BLACKLIST_ROW[:6]))
    assert len(rows[1].values[RAW_KEY]) == 1001  # cut for the report
    assert rows[2].values["entity_name"] == "好运来超市"


def csv_text(*lines: str) -> str:
    return "\n".join([",".join(PENALTY_HEADER), *lines]) + "\n"


def test_csv_unclosed_quote_is_an_error_row_naming_the_lines_it_swallowed(tmp_path: Path) -> None:
    """Lax, the csv module reads an unclosed quote as one field up to the end of the file: the
    rows after it vanished without a trace."""
    good = ",".join(PENALTY_ROW)
    broken = good.replace("好运来超市", '"好运来超市')
    path = tmp_path / "a.csv"
    path.write_text(csv_text(good, broken, good.replace("12号", "13号"), good.replace("12号", "14号")),
                    encoding="utf-8")
    _, rows = read_all(path)
    assert [r.row for r in rows] == [2, 3]  # rows before the broken one keep their numbers
    assert rows[0].values["entity_name"] == "好运来超市"
    reason = rows[1].values[ERROR_KEY]
    assert reason.startswith("CSV 格式错误：引号未闭合：从本行（文件第3行）起到文件末尾（第5行）")
    assert rows[1].values[RAW_KEY].startswith(broken) and "14号" in rows[1].values[RAW_KEY]


def test_csv_row_with_more_fields_than_the_header_is_an_error_row(tmp_path: Path) -> None:
    """An unquoted comma shifts every later field one column on: which value belongs where is
    unknown, so the row is refused, never read with its last fields dropped."""
    good = ",".join(PENALTY_ROW)
    shifted = good.replace("好运来超市", "好运来,超市")
    trailing = good + ",,"  # empty fields after the last column: a spreadsheet's habit, harmless
    path = tmp_path / "a.csv"
    path.write_text(csv_text(shifted, trailing), encoding="utf-8")
    _, rows = read_all(path)
    assert [r.row for r in rows] == [2, 3]
    width = len(PENALTY_ROW)
    assert rows[0].values[ERROR_KEY].startswith(f"本行有 {width + 1} 个字段，多于表头的 {width} 列")
    assert rows[0].values[RAW_KEY] == shifted
    assert rows[1].values["entity_name"] == "好运来超市"


def test_csv_text_after_a_closing_quote_is_an_error_not_glued_on(tmp_path: Path) -> None:
    good = ",".join(PENALTY_ROW)
    broken = good.replace("好运来超市", '"烟台乙"x')
    path = tmp_path / "a.csv"
    path.write_text(csv_text(broken, good), encoding="utf-8")
    _, rows = read_all(path)
    assert [r.row for r in rows] == [2, 3]
    assert rows[0].values[ERROR_KEY].startswith("CSV 格式错误：引号用法错误")
    assert rows[0].values[RAW_KEY] == broken  # never 烟台乙x
    assert rows[1].values["entity_name"] == "好运来超市"


def test_quotes_inside_an_unquoted_field_are_text(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(csv_text(",".join(PENALTY_ROW).replace("好运来超市", '烟台"甲"超市')),
                    encoding="utf-8")
    _, rows = read_all(path)
    assert rows[0].values["entity_name"] == '烟台"甲"超市'


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1f", "\x7f", "\x0b"])
def test_csv_control_characters_become_bad_values(tmp_path: Path, char: str) -> None:
    path = tmp_path / "a.csv"
    row = ",".join(PENALTY_ROW).replace("好运来超市", f"好运来{char}超市")
    path.write_text(csv_text(row, ",".join(PENALTY_ROW)), encoding="utf-8")
    _, rows = read_all(path)
    bad = rows[0].values["entity_name"]
    assert isinstance(bad, BadValue) and bad.raw == f"好运来\\u{ord(char):04x}超市"  # visible
    assert f"U+{ord(char):04X}" in bad.reason
    assert rows[1].values["entity_name"] == "好运来超市"


def test_tabs_and_line_breaks_are_text(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(csv_text(",".join(PENALTY_ROW).replace("销售过期食品", '"销售\t过期\r\n食品"')),
                    encoding="utf-8")
    _, rows = read_all(path)
    assert rows[0].values["facts"] == "销售\t过期\r\n食品"


def test_json_and_ndjson_control_characters_become_bad_values(tmp_path: Path) -> None:
    records = [penalty_record(entity_name="好运来\u0000超市"), penalty_record(decision_no="二号"),
               penalty_record(decision_no="三号", penalty_kinds=["罚款", "警\u0001告"])]
    array = tmp_path / "a.json"
    array.write_text(json.dumps(records), encoding="utf-8")
    ndjson = tmp_path / "a.ndjson"
    ndjson.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    for path in (array, ndjson):
        _, rows = read_all(path)
        assert rows[0].values["entity_name"].raw == "好运来\\u0000超市"
        assert rows[1].values["entity_name"] == "好运来超市"
        assert isinstance(rows[2].values["penalty_kinds"], BadValue)


# --- headers ---------------------------------------------------------------------------------


def test_headers_match_after_nfkc_trim_and_space_removal(tmp_path: Path) -> None:
    header = [
        " 统一 社会信用代码 ",
        "当事人名称",
        "所属区市",
        "决定书文号",
        "违法行为类型",
        "主要违法事实",
        "处罚依据",
        "处罚类别",
        "作出处罚决定机关",
        "决定日期",
        "罚款金额（万元）",
        "罚款金额(元)",
        "没收违法所得金额（元）",
    ]
    row = [*PENALTY_ROW, "1.5", "15,000元", "300"]
    path = write_csv(tmp_path / "a.csv", [header, row])
    source, rows = read_all(path)
    assert source.kind == "penalty"
    assert source.columns[" 统一 社会信用代码 ".strip()] == "uscc"
    assert source.columns["罚款金额（万元）"] == "fine_wan"
    assert source.columns["罚款金额(元)"] == "fine_yuan"
    values = rows[0].values
    assert values["uscc"] == USCC
    assert values["entity_name"] == "好运来超市"
    assert values["decision_no"] == "烟芝市监罚〔2022〕12号"
    assert values["facts"] == "销售过期食品"
    assert (values["fine_wan"], values["fine_yuan"], values["confiscated_yuan"]) == (
        "1.5",
        "15,000元",
        "300",
    )
    assert source.ignored_columns == []


def test_headers_match_with_invisible_characters_pasted_in(tmp_path: Path) -> None:
    header, row = KIND_TABLES["penalty"]
    pasted = ["\ufeff\u200b" + header[0], header[1][:2] + "\u200d" + header[1][2:], *header[2:-1],
              header[-1] + "\u2060"]
    source, rows = read_all(write_csv(tmp_path / "a.csv", [pasted, row]))
    assert source.kind == "penalty"
    assert source.ignored_columns == []
    assert rows[0].values["uscc"] == row[0]
    assert rows[0].values["entity_name"] == row[1]


def test_english_keys_as_csv_headers(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [BLACKLIST_KEYS, BLACKLIST_ROW])
    source, rows = read_all(path)
    assert source.kind == "blacklist"
    assert rows[0].values == dict(zip(BLACKLIST_KEYS, BLACKLIST_ROW, strict=True))


@pytest.mark.parametrize("kind", list(KIND_TABLES))
def test_kind_is_recognised_from_headers(tmp_path: Path, kind: str) -> None:
    header, row = KIND_TABLES[kind]
    csv_source = open_source(write_csv(tmp_path / "a.csv", [header, row]))
    xlsx_source = open_source(write_xlsx(tmp_path / "a.xlsx", [header, row]))
    assert csv_source.kind == xlsx_source.kind == kind


def test_given_kind_is_used(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [PENALTY_HEADER, PENALTY_ROW])
    assert open_source(path, kind="penalty").kind == "penalty"
    # Given the wrong kind, the file lacks that kind's required columns.
    reason = source_error(path, kind="blacklist").reject.reason
    assert reason.startswith("缺少必填列：") and "期次" in reason


def test_unrecognisable_kind_is_rejected_at_the_header_row(tmp_path: Path) -> None:
    header = ["统一社会信用代码", "主体名称", "所属区市", "备注"]
    path = write_csv(tmp_path / "a.csv", [["某某名单"], header, [USCC, "好运来", "芝罘区", ""]])
    reject = source_error(path).reject
    assert reject.reason.startswith("无法识别数据种类")
    assert "--kind" in reject.reason
    assert (reject.file, reject.row, reject.column, reject.value) == ("a.csv", 2, None, None)


def test_no_header_row_at_all(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [["x", "y"], ["1", "2"]])
    assert source_error(path).reject.reason.startswith("无法识别数据种类")
    assert source_error(path, kind="penalty").reject.reason.startswith("找不到表头行")


def test_unknown_and_forbidden_columns_are_listed_and_never_read(tmp_path: Path) -> None:
    secrets = [
        "370602199001011234",
        "0535-6661234",
        "13812345678",
        "芝罘区幸福街1号3单元",
        "6222020200112233445",
        "13912345678",
    ]
    header = [
        "序号",
        *BLACKLIST_HEADER,
        "身份证号",
        "联系电话",
        "手机",
        "家庭住址",
        "银行账号",
        "手 机 号 码",
    ]
    path = write_csv(tmp_path / "a.csv", [header, ["1", *BLACKLIST_ROW, *secrets]])
    source, rows = read_all(path)
    assert source.ignored_columns == [
        "序号",
        "身份证号",
        "联系电话",
        "手机",
        "家庭住址",
        "银行账号",
        "手 机 号 码",
    ]
    assert list(rows[0].values) == BLACKLIST_KEYS
    assert not any(secret in repr(rows) for secret in secrets)


def test_duplicate_headers_first_wins(tmp_path: Path) -> None:
    header = [*BLACKLIST_HEADER, "企业名称", "uscc"]
    path = write_csv(tmp_path / "a.csv", [header, [*BLACKLIST_ROW, "别的名称", "X"]])
    source, rows = read_all(path)
    assert rows[0].values["entity_name"] == "好运来超市"
    assert rows[0].values["uscc"] == USCC
    assert source.ignored_columns == ["企业名称", "uscc"]
    assert "企业名称" not in source.columns


@pytest.mark.parametrize(
    ("drop", "missing"),
    [
        ("主体名称", "缺少必填列：主体名称"),
        ("统一社会信用代码", "缺少必填列：统一社会信用代码（或注册号）"),
        ("发布日期", "缺少必填列：发布日期"),
    ],
)
def test_missing_required_column(tmp_path: Path, drop: str, missing: str) -> None:
    i = BLACKLIST_HEADER.index(drop)
    header = BLACKLIST_HEADER[:i] + BLACKLIST_HEADER[i + 1 :]
    row = BLACKLIST_ROW[:i] + BLACKLIST_ROW[i + 1 :]
    path = write_csv(tmp_path / "a.csv", [["标题"], header, row])
    reject = source_error(path).reject
    assert reject.reason == missing
    assert reject.row == 2


def test_reg_no_stands_in_for_uscc(tmp_path: Path) -> None:
    header = ["注册号", *BLACKLIST_HEADER[1:]]
    path = write_csv(tmp_path / "a.csv", [header, ["370602600123456", *BLACKLIST_ROW[1:]]])
    _, rows = read_all(path)
    assert rows[0].values["reg_no"] == "370602600123456"
    assert "uscc" not in rows[0].values


def test_optional_money_columns_are_optional(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [PENALTY_HEADER, PENALTY_ROW])
    _, rows = read_all(path)
    assert "fine_yuan" not in rows[0].values and "fine_wan" not in rows[0].values


# --- CSV rows --------------------------------------------------------------------------------


def test_csv_row_numbers_blank_rows_values_and_trailing_footer(tmp_path: Path) -> None:
    a = [USCC, " 好运来超市 ", *BLACKLIST_ROW[2:]]
    b = [USCC, "福山食品店", "福山区", "2022年第3期", "发布单位", "2022-03-05", "第一行\n第二行"]
    short = [USCC, "短行", "芝罘区"]
    rows_in = [
        ["2022年第3期食品安全“黑榜”"],  # 1: title
        BLACKLIST_HEADER,  # 2: header
        a,  # 3
        [],  # 4: blank line
        ["", " ", ""],  # 5: blank cells
        b,  # 6: a quoted multi-line cell is still one spreadsheet row
        short,  # 7
        ["合计", "3"],  # 8: trailing footer
        ["备注：数据来源于各区市局"],  # 9: trailing footer
        [],
    ]
    path = write_csv(tmp_path / "a.csv", rows_in)
    _, rows = read_all(path, display_name="上传的黑榜.csv")
    assert [r.row for r in rows] == [3, 6, 7]
    assert {r.file for r in rows} == {"上传的黑榜.csv"}
    assert rows[0].values["entity_name"] == "好运来超市"
    assert rows[1].values["violation"] == "第一行\n第二行"
    assert rows[2].values["issue_no"] is None  # cells missing from a short row are None


def test_footer_followed_by_data_is_not_dropped(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [BLACKLIST_HEADER, ["合计", "1"], BLACKLIST_ROW])
    _, rows = read_all(path)
    assert [r.row for r in rows] == [2, 3]
    assert rows[0].values["uscc"] == "合计"


def test_row_with_only_unread_columns_is_blank(tmp_path: Path) -> None:
    header = ["序号", *BLACKLIST_HEADER, "联系电话"]
    rows_in = [header, ["1", *BLACKLIST_ROW, ""], ["2"], ["3", *[""] * 7, "13812345678"]]
    _, rows = read_all(write_csv(tmp_path / "a.csv", rows_in))
    assert [r.row for r in rows] == [2]


def test_empty_cells_become_none(tmp_path: Path) -> None:
    row = [USCC, "好运来超市", "芝罘区", "  ", "", "2022-03-05", "x"]
    _, rows = read_all(write_csv(tmp_path / "a.csv", [BLACKLIST_HEADER, row]))
    assert rows[0].values["issue_no"] is None
    assert rows[0].values["publisher"] is None


# --- XLSX ------------------------------------------------------------------------------------


def test_xlsx_title_rows_blank_rows_footers_and_raw_values(tmp_path: Path) -> None:
    header = [*BLACKLIST_HEADER, "注册号"]
    path = write_xlsx(
        tmp_path / "黑榜.xlsx",
        [
            ['2022年第3期食品安全"黑榜"'],  # 1: merged title
            ["烟台市市场监督管理局 2022年3月"],  # 2: second title row
            header,  # 3
            [
                USCC,
                " 好运来超市 ",
                "芝罘区",
                "2022年第3期",
                "发布单位",
                dt.date(2022, 3, 5),
                "过期",
                370602600123456,
            ],  # 4
            [],  # 5: blank
            [None, None, None],  # 6: blank
            [
                "91370602MA3C8GR03X",
                "福山店",
                "福山区",
                3,
                "发布单位",
                dt.datetime(2022, 3, 5, 9, 30),
                "过期",
                None,
            ],  # 7
            ["合计", None, None, None, None, None, None, None],  # 8
            ["备注：以上数据截至3月", None],  # 9
        ],
        merge="A1:H1",
    )
    source, rows = read_all(path)
    assert source.format == "xlsx" and source.encoding is None
    assert source.kind == "blacklist"
    assert [r.row for r in rows] == [4, 7]
    first, second = (r.values for r in rows)
    assert first["entity_name"] == "好运来超市"
    assert first["issued_on"] == dt.date(2022, 3, 5)
    assert first["reg_no"] == "370602600123456"  # long integral float → digits, no ".0"
    assert second["issued_on"] == dt.datetime(2022, 3, 5, 9, 30)
    assert second["issue_no"] == 3.0  # small numbers stay raw for cleaning
    assert second["reg_no"] is None


def test_xlsx_single_title_row_and_leading_blank_rows(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "a.xlsx", [[], [], ["行政处罚案件"], PENALTY_HEADER, PENALTY_ROW])
    source, rows = read_all(path)
    assert source.kind == "penalty"
    assert [r.row for r in rows] == [5]
    assert rows[0].values["decided_on"] == "2022-04-01"


def test_xlsx_header_detection_with_given_kind(tmp_path: Path) -> None:
    # A title row naming a single column is not the header.
    path = write_xlsx(tmp_path / "a.xlsx", [["期次"], BLACKLIST_HEADER, BLACKLIST_ROW])
    _, rows = read_all(path, kind="blacklist")
    assert [r.row for r in rows] == [3]


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_a_key_value_title_row_above_the_header_is_not_the_header(tmp_path: Path, fmt: str) -> None:
    """Title rows that name two columns (发布单位 … 发布日期 …) come before the real header:
    the row naming the most columns is the header (the first such row was taken, and the file
    was unreadable)."""
    rows = [['2026年第11期食品安全"黑榜"'],
            ["发布单位", "烟台市牟平区市场监督管理局", "发布日期", "2026-08-01"],
            BLACKLIST_HEADER, BLACKLIST_ROW]
    path = tmp_path / f"黑榜.{fmt}"
    if fmt == "xlsx":
        write_xlsx(path, rows)
    else:
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            csv.writer(fh).writerows(rows)
    source, read = read_all(path)
    assert source.kind == "blacklist"
    assert [r.row for r in read] == [4] and read[0].values["entity_name"]


def test_xlsx_unknown_and_forbidden_columns(tmp_path: Path) -> None:
    header = [*PENALTY_HEADER, "联系电话", "附件"]
    path = write_xlsx(tmp_path / "a.xlsx", [header, [*PENALTY_ROW, "13812345678", "x.pdf"]])
    source, rows = read_all(path)
    assert source.ignored_columns == ["联系电话", "附件"]
    assert "13812345678" not in repr(rows)


@pytest.mark.parametrize("chunk", [1 << 22, 7, 64])  # the scan's chunks split t="e" too
def test_xlsx_error_cells_become_bad_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            chunk: int) -> None:
    """calamine reads #N/A, #VALUE! … as "", like a blank cell: the value silently vanished."""
    monkeypatch.setattr(xlsx_reader, "_CHUNK", chunk)
    header = [*PENALTY_HEADER, "罚款金额(元)"]
    path = write_xlsx(
        tmp_path / "a.xlsx",
        [
            ["行政处罚案件"],
            [],
            [None, *header],  # the used range starts in column B
            [None, *PENALTY_ROW[:-1], "#N/A", "#VALUE!"],  # openpyxl writes these as error cells
            [None, *PENALTY_ROW, 500],
            [None, *PENALTY_ROW[:-1], "#DIV/0!", ""],
        ],
    )
    _, rows = read_all(path)
    assert [r.row for r in rows] == [4, 5, 6]
    first, second, third = (r.values for r in rows)
    assert first["decided_on"] == BadValue("#N/A", "单元格为 Excel 错误值 #N/A（公式出错或引用无效）")
    assert first["fine_yuan"].raw == "#VALUE!"
    assert second["decided_on"] == "2022-04-01" and second["fine_yuan"] == 500
    assert third["decided_on"].raw == "#DIV/0!" and third["fine_yuan"] is None


def test_xlsx_control_characters_become_bad_values(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "a.xlsx", [PENALTY_HEADER, PENALTY_ROW])
    # openpyxl refuses to write one; Excel writes it as an _x0000_ escape, which calamine reads
    rewritten = tmp_path / "b.xlsx"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(rewritten, "w") as out:
        for item in src.infolist():
            data = src.read(item.filename)
            out.writestr(item, data.replace("好运来超市".encode(), "好运来_x0000_超市".encode())
                         .replace(b"&#22909;&#36816;&#26469;&#36229;&#24066;",
                                  b"&#22909;&#36816;&#26469;_x0000_&#36229;&#24066;"))
    _, rows = read_all(rewritten)
    bad = rows[0].values["entity_name"]
    assert isinstance(bad, BadValue) and bad.raw == "好运来\\u0000超市" and "U+0000" in bad.reason


def test_not_an_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "a.xlsx"
    path.write_text("统一社会信用代码,主体名称\n")
    assert source_error(path).reject.reason.startswith("不是有效的 XLSX 文件")


def test_empty_xlsx_sheet(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "a.xlsx", [])
    assert "是空的" in source_error(path).reject.reason


# --- JSON and NDJSON -------------------------------------------------------------------------


def penalty_record(**changes: Any) -> dict[str, Any]:
    keys = [
        "uscc",
        "entity_name",
        "district",
        "decision_no",
        "violation_type",
        "facts",
        "basis",
        "penalty_kinds",
        "authority",
        "decided_on",
    ]
    return {**dict(zip(keys, PENALTY_ROW, strict=True)), **changes}


def test_json_array(tmp_path: Path) -> None:
    records = [
        penalty_record(fine_yuan=5000, entity_name=" 好运来超市 ", 身份证号="370602199001011234"),
        "not an object",
        {"统一社会信用代码": USCC, "当事人名称": "中文键", "罚款金额(万元)": 1.5, "附件": ""},
    ]
    path = tmp_path / "a.json"
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    source, rows = read_all(path)
    assert (source.kind, source.format) == ("penalty", "json")
    assert [r.row for r in rows] == [1, 2, 3]
    assert rows[0].values["fine_yuan"] == 5000
    assert rows[0].values["entity_name"] == "好运来超市"
    assert "身份证号" in source.ignored_columns and "附件" in source.ignored_columns
    assert "370602199001011234" not in repr(rows)
    assert rows[1].values == {ERROR_KEY: "不是 JSON 对象（是字符串）", RAW_KEY: '"not an object"'}
    assert rows[2].values == {"uscc": USCC, "entity_name": "中文键", "fine_wan": 1.5}


def test_json_file_level_errors(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('[{"uscc": 1},', encoding="utf-8")
    assert source_error(path).reject.reason.startswith("JSON 格式错误")
    path.write_text('{"uscc": "x"}', encoding="utf-8")
    assert source_error(path).reject.reason.startswith("JSON 文件应为对象数组")
    path.write_text(json.dumps([{"uscc": USCC, "entity_name": "x"}]), encoding="utf-8")
    assert source_error(path).reject.reason.startswith("无法识别数据种类")
    record = penalty_record()
    del record["facts"]
    path.write_text(json.dumps([record]), encoding="utf-8")
    assert source_error(path).reject.reason == "缺少必填列：违法事实"


def test_empty_json_array_needs_a_kind(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text("[]")
    assert source_error(path).reject.reason.startswith("无法识别数据种类")
    _, rows = read_all(path, kind="penalty")
    assert rows == []


def test_ndjson_bad_lines_become_error_rows(tmp_path: Path) -> None:
    lines = [
        json.dumps(penalty_record(), ensure_ascii=False),  # 1
        "",  # 2: blank, counted
        '{"uscc": "91370602MA3C8GR03X", "entity_name": ',  # 3: truncated
        "[1, 2]",  # 4: not an object
        json.dumps(penalty_record(decision_no="二号")),  # 5
    ]
    path = tmp_path / "a.ndjson"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode() + b"\n\xff\n")  # BOM, bad UTF-8
    source, rows = read_all(path)
    assert (source.kind, source.format) == ("penalty", "ndjson")
    assert [r.row for r in rows] == [1, 3, 4, 5, 6]
    assert rows[0].values["uscc"] == USCC  # the BOM does not spoil the first key
    assert rows[1].values[ERROR_KEY].startswith("JSON 格式错误")
    assert rows[1].values[RAW_KEY] == lines[2].strip()  # the line as written, for the report
    assert rows[2].values == {ERROR_KEY: "不是 JSON 对象（是数组）", RAW_KEY: "[1, 2]"}
    assert rows[3].values["decision_no"] == "二号"
    assert rows[4].values[ERROR_KEY].startswith("编码错误")
    assert rows[4].values[RAW_KEY] == "\ufffd"


def test_json_lone_surrogate_escapes_are_rejected_rows(tmp_path: Path) -> None:
    # "\ud800" alone is valid JSON but no text: stored or hashed, it crashed the publish.
    lone = penalty_record(entity_name="好运来\ud800超市")
    paired = penalty_record(decision_no="二号", entity_name="好运来\U0001f600超市")  # \ud83d\ude00
    ndjson = tmp_path / "a.ndjson"
    ndjson.write_text("\n".join(json.dumps(r) for r in (paired, lone, paired | {"decision_no": "三号"})))
    assert "\\ud800" in ndjson.read_text() and "\\ud83d\\ude00" in ndjson.read_text()
    _, rows = read_all(ndjson)
    assert rows[0].values["entity_name"] == "好运来\U0001f600超市"
    assert rows[1].values == {ERROR_KEY: json_reader.R_SURROGATE, RAW_KEY: json.dumps(lone)}
    assert rows[2].values["decision_no"] == "三号"
    array = tmp_path / "a.json"
    array.write_text(json.dumps([paired, lone]))
    _, rows = read_all(array)
    assert rows[0].values["entity_name"] == "好运来\U0001f600超市"
    assert rows[1].values == {ERROR_KEY: json_reader.R_SURROGATE, RAW_KEY: json.dumps(lone)}


def test_ndjson_keys_after_the_sample_are_still_classified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(json_reader, "SAMPLE_RECORDS", 1)
    lines = [penalty_record(), penalty_record(手机="13812345678", 罚款金额元=1)]
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in lines))
    source = open_source(path)
    assert source.ignored_columns == []
    rows = list(source.rows)
    assert source.ignored_columns == ["手机", "罚款金额元"]
    assert "13812345678" not in repr(rows)


# --- open_source errors ----------------------------------------------------------------------


def test_file_level_errors(tmp_path: Path) -> None:
    assert source_error(tmp_path / "missing.csv").reject.reason == "文件不存在"
    (tmp_path / "dir.csv").mkdir()
    assert "目录" in source_error(tmp_path / "dir.csv").reject.reason
    (tmp_path / "empty.csv").write_bytes(b"")
    assert source_error(tmp_path / "empty.csv").reject.reason == "文件是空的"
    (tmp_path / "old.xls").write_bytes(b"x")
    assert "不支持的文件格式" in source_error(tmp_path / "old.xls").reject.reason
    path = write_csv(tmp_path / "a.csv", [BLACKLIST_HEADER, BLACKLIST_ROW])
    assert "未知数据种类" in source_error(path, kind="nonsense").reject.reason
    error = source_error(tmp_path / "missing.csv", display_name="上传.csv")
    assert error.reject.file == "上传.csv"


# --- streaming -------------------------------------------------------------------------------


def write_big_csv(path: Path, count: int) -> Path:
    line = ",".join(BLACKLIST_ROW) + "\n"
    with path.open("w", encoding="utf-8") as stream:
        stream.write(",".join(BLACKLIST_HEADER) + "\n")
        for _ in range(count // 10_000):
            stream.write(line * 10_000)
    return path


def test_csv_is_streamed(tmp_path: Path) -> None:
    path = write_big_csv(tmp_path / "big.csv", 200_000)
    assert path.stat().st_size > 20 << 20
    tracemalloc.start()
    try:
        source = open_source(path)
        first = next(source.rows)
        _, peak_first = tracemalloc.get_traced_memory()
        count = 1 + sum(1 for _ in source.rows)
        _, peak_all = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert first.row == 2
    assert count == 200_000
    # The rows alone would take well over 100 MB as Python objects.
    assert peak_first < 20 << 20
    assert peak_all < 20 << 20


def test_ndjson_is_streamed(tmp_path: Path) -> None:
    path = tmp_path / "big.ndjson"
    line = json.dumps(penalty_record(), ensure_ascii=False) + "\n"
    with path.open("w", encoding="utf-8") as stream:
        for _ in range(10):
            stream.write(line * 10_000)
    tracemalloc.start()
    try:
        source = open_source(path)
        rows = source.rows
        for _ in range(20_000):
            next(rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 << 20
    assert sum(1 for _ in rows) == 80_000
