"""Personal data the privacy red team saw published: a mobile glued to an area code or to a few
digits more, numbers split by Unicode line separators, by a colon or by 一 typed as a dash, and a
mobile written as JSON escapes in a malformed NDJSON line of the reject report. Masker-level
cases through the public functions, then the real publish path on SQLite and PostgreSQL: the
published record, the search index and the public search API, the --report JSON and stderr."""

from __future__ import annotations

import json
import re
import sys

import pytest
from sqlalchemy import select

from publishing.clean import Cleaner
from publishing.codes import reg_no_check_ok
from publishing.commit import RECORDS
from publishing.publish import publish
from publishing.redact import mask_escaped, mask_text
from publishing.rows import Reject
from publishing.search import SearchQuery, get_backend
from publishing.search.sync import sync
from publishing.sources import open_source
from publishing.sources.headers import RAW_LIMIT
from tests.factories import penalty_row, resident_id, uscc, write_csv
from tests.requests_support import make_client
from tests.test_cli import cli
from tests.test_input_edges import TODAY

ID = resident_id("19800118", "123")  # 370602198001181233
MOBILE = "13900151015"


def _reg_no(prefix: str) -> str:
    """A 15-digit 注册号 of a 河北/山西/内蒙古 authority with a right GS 15 check digit."""
    return next(c for n in range(1000) if reg_no_check_ok(c := f"{prefix}{n:03d}"))


HEBEI_REG_NO = _reg_no("130102000000")  # 130102000000001


# -- 1. a mobile glued to an area code or to a few digits more -------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("当事人联系电话053513900151016", "当事人联系电话0535139****1016"),  # 0535 + mobile
        ("经营者李某（电话1390015101712）", "经营者李某（电话139******1712）"),  # mobile + 2
        ("电话13900151015123", "电话139*******5123"),  # mobile + 3 (14 digits)
        ("电话139009910151234", "电话139********1234"),  # mobile + 4 (15 digits)
        ("电话01013900151015", "电话010139****1015"),  # Beijing's 010 + mobile
        ("电话02113900151015", "电话021139****1015"),
        ("电话0139001510151", "电话0139*****0151"),  # trunk 0 + mobile + 1
        ("电话86139001510151", "电话86139*****0151"),
        ("电话08613900151015", "电话086139****1015"),
        ("电话：130102000000002", "电话：130********0002"),  # after a phone label
    ],
)
def test_a_mobile_glued_to_an_area_code_or_to_digits_after_it_is_masked(text, masked):
    assert mask_text(text) == masked
    assert mask_text(masked) == masked


@pytest.mark.parametrize("mobile", ["13900151015", "15812345678", "18677778888", "19912312359"])
@pytest.mark.parametrize("head", ["", "0", "86", "086", "010", "027", "0535"])
@pytest.mark.parametrize("tail", ["", "0", "12", "123", "8001"])
def test_no_mobile_in_one_group_of_12_to_15_digits_is_shown(mobile, head, tail):
    text = head + mobile + tail
    if not 12 <= len(text) <= 15:
        return
    masked = mask_text(f"联系电话{text}。")
    assert mobile not in masked and masked.count("*") >= 4, masked


@pytest.mark.parametrize(
    "text",
    [
        f"注册号：{HEBEI_REG_NO}",  # a 河北 注册号 after its label, GS 15 check right
        f"工商注册号{HEBEI_REG_NO}，",
        f"注册号为{_reg_no('140105000000')}",  # 山西
        f"登记号 {_reg_no('150102000000')}",  # 内蒙古
        # Starting with a mobile: a 注册号 label says what it is, whatever its check digit
        "注册号：130102000000002",
        "时间戳19991231235959",  # YYYYMMDDhhmmss
        "时间戳199912312359",  # YYYYMMDDhhmm
        "座机053566123456",  # an area code, then a landline (starts 2–9)
        "座机0535-6612345转801",
        "文号370602202300123",  # 15 digits, no date, no mobile
        "金额1,390,015,101,712.00元",
    ],
)
def test_what_is_public_next_to_glued_mobiles_is_left_alone(text):
    assert mask_text(text) is text


def test_a_glued_mobile_masked_before_takes_no_digit_of_its_neighbours():
    for text in ("电话1390015101712 2019 2020 2021", "053513900151016 2019 2020 2021",
                 "01013900151015,2019,2020,2021"):
        once = mask_text(text)
        assert once != text
        assert once.endswith(" 2019 2020 2021") or once.endswith(",2019,2020,2021")
        assert mask_text(once) == once


# -- 2. Unicode line and paragraph separators between groups ---------------------------------

SPACES = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]  # U+2028, NEL, VT …


@pytest.mark.parametrize("sep", SPACES, ids=[f"U+{ord(c):04X}" for c in SPACES])
def test_every_kind_of_whitespace_joins_digit_groups_as_a_space_does(sep):
    text = f"公民身份号码370602{sep}19800118{sep}1233，手机139{sep}0015{sep}1015"
    assert mask_text(text) == mask_text(text.replace(sep, " ")).replace(" ", sep)
    assert mask_text(text) == (f"公民身份号码370602{sep}********{sep}1233，"
                               f"手机139{sep}****{sep}1015")


def test_the_reviewers_line_separator_case():
    text = "公民身份号码370602\u202819800118\u20281233，手机139\u20280015\u20281015"
    masked = mask_text(text)
    assert "19800118" not in masked and "0015" not in masked


# -- 3. a colon or 一 between groups -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("身份证号：370602：198001181233", "身份证号：370602：********1233"),
        ("身份证号370602:19800118:1233", "身份证号370602:********:1233"),
        ("身份证号370602 ： 19800118002X", "身份证号370602 ： ********002X"),
        ("身份证号370602一198001181233号", "身份证号370602一********1233号"),
        ("手机139一0015一1015", "手机139一****一1015"),
        ("手机139:0015:1015", "手机139:****:1015"),
        ("手机１３９：００１５：１０１５", "手机１３９：****：１０１５"),
        ("时间12:30，手机139∶0015∶1015", "时间12:30，手机139∶****∶1015"),
    ],
)
def test_a_colon_or_yi_joins_the_groups_of_an_id_or_a_mobile(text, masked):
    assert mask_text(text) == masked
    assert mask_text(masked) == masked


@pytest.mark.parametrize(
    "text",
    [
        "营业时间9:00一18:00，12：00一13：00午休",
        "2024-01-05 09:30:00一2024-01-06 10:00:00",
        "比例1:1000，第1一3条，比分13:0015:1015",
        "身份证号370602：198001181234",  # check character wrong: no ID joined (nor a time stamp)
        "电话0535一6612345",  # a landline
        "编号139:00151:015",  # no 3-4-4 grouping
        "《食品安全法》第一百二十四条第一款",
    ],
)
def test_times_ratios_and_numerals_are_not_joined(text):
    assert mask_text(text) is text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("电话：一三九〇〇一五一〇一五", "电话：一三九****一〇一五"),
        ("电话139〇〇一五一〇一五", "电话139****一〇一五"),
        ("139****一〇15", "139****一〇15"),
        ("王五一三九〇〇一五一〇一五", "王五一三九****一〇一五"),
    ],
)
def test_chinese_numeral_mobiles_are_masked_as_before(text, masked):
    assert mask_text(text) == masked


# -- 4. JSON escapes in a reject's value ------------------------------------------------------

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ESCAPED_MOBILE = MOBILE.translate(FULL_WIDTH).encode("unicode_escape").decode()  # \uff11\uff13…


def test_a_mobile_written_as_json_escapes_is_masked_and_the_text_keeps_its_length():
    line = f'{{"uscc":"x","mobile":"{ESCAPED_MOBILE}", broken'
    masked = mask_escaped(line)
    assert len(masked) == len(line)
    assert masked == line.replace(ESCAPED_MOBILE[18:42], "\\u****" * 4)
    assert mask_escaped(masked) == masked
    assert mask_escaped('{"a":"139\\n0015\\n1015"}') == '{"a":"139\\n****\\n1015"}'
    # A mobile with digits glued on is masked after a phone label only: a JSON key is one.
    assert mask_escaped('{"tel":"\\u0031\\u0033\\u00390015101512"}') \
        == '{"tel":"\\u0031\\u0033\\u0039******1512"}'
    for plain in ('{"a":"\\u829d\\u7f58\\u533a"}', "\\u12 \\\\u0031 \\", "no escape"):
        assert mask_escaped(plain) == plain


def test_a_rejects_value_is_masked_through_json_escapes():
    line = f'{{"mobile":"{ESCAPED_MOBILE}" broken'
    reject = Reject("a.ndjson", 2, None, line, "JSON 格式错误")
    assert "\\u****" in reject.value and _decoded(reject.value) == mask_text(_decoded(reject.value))


def _decoded(text: str) -> str:
    """text with its \\uXXXX escapes read (as the red team's scanner reads a report)."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m[1], 16)), text)


GOOD_LINE = json.dumps({
    "uscc": uscc(1), "entity_name": "烟台测试1有限公司", "district": "芝罘区",
    "decision_no": "烟市监罚〔2026〕1号", "violation_type": "x", "facts": "y", "basis": "z",
    "penalty_kinds": "罚款", "authority": "烟台市市场监督管理局", "decided_on": "2026-06-01"})


@pytest.mark.parametrize("digits_before_cut", range(4, 11))
def test_a_malformed_lines_escaped_mobile_is_masked_before_the_report_cuts_it(
    tmp_path, digits_before_cut
):
    head = f'{{"uscc":"{uscc(2)}","facts":"'
    pad = "x" * (RAW_LIMIT - len(head) - 6 * digits_before_cut)  # the cut: in the mobile
    path = tmp_path / "p.ndjson"
    path.write_text(f'{GOOD_LINE}\n{head}{pad}{ESCAPED_MOBILE}", broken\n', encoding="utf-8")
    row = list(open_source(path).rows)[1]
    [reject] = Cleaner("penalty", TODAY, "p.ndjson").clean(row)
    shown = mask_text(MOBILE)[:digits_before_cut]  # 139****101
    escaped = "".join("\\u****" if c == "*" else _escape(c.translate(FULL_WIDTH)) for c in shown)
    assert reject.value.endswith(escaped + "…"), reject.value[-70:]


def _escape(text: str) -> str:
    return text.encode("unicode_escape").decode()


def test_the_report_and_stderr_show_no_mobile_of_a_malformed_ndjson_line(
    engine, database_url, tmp_path
):
    path = tmp_path / "p.ndjson"
    path.write_text(GOOD_LINE + "\n"
                    + f'{{"uscc":"{uscc(2)}","mobile":"{ESCAPED_MOBILE}", broken\n',
                    encoding="utf-8")
    report = tmp_path / "r.json"
    done = cli(database_url, "publish", str(path), "--accept-partial", "--report", str(report),
               tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    [rejected] = json.loads(report.read_text(encoding="utf-8"))["rejected"]
    assert rejected["row"] == 2 and "\\u****" in rejected["value"]
    for text in (rejected["value"], done.stdout, done.stderr, report.read_text(encoding="utf-8")):
        shown = _decoded(text.replace("\\\\", "\\")).translate(
            str.maketrans("０１２３４５６７８９", "0123456789"))
        assert MOBILE not in shown and MOBILE[:7] not in shown


# -- end to end: published records and search --------------------------------------------------

# (the text as the bureau's file has it, the raw number in it)
LEAKS = [
    ("当事人联系电话053513900151016，经营者未能提供进货凭证。", "13900151016"),
    ("经营者李某（电话1390015101712）在其店内销售过期食品。", "1390015101712"),
    ("公民身份号码370602\u202819800118\u20281233。", ID),
    ("手机139\u20290015\u00851017。", "13900151017"),
    ("当事人赵某，身份证号：370602：198001181233。", ID),
    ("经营者电话139一0015一1019。", "13900151019"),
]


def test_published_records_and_search_hold_no_raw_number(engine, tmp_path):
    rows = [penalty_row(n, 违法事实=text) for n, (text, _) in enumerate(LEAKS, start=1)]
    rows.append(penalty_row(9, 违法事实=f"注册号：{HEBEI_REG_NO}，经营过期食品。"))
    result = publish([write_csv(tmp_path / "p.csv", rows)], engine=engine, show_progress=False)
    assert result.published, result.as_json()
    sync(engine)
    with engine.connect() as conn:
        facts = {r.data["decision_no"]: r.data["facts"]
                 for r in conn.execute(select(RECORDS.c.data))}
    for n, (text, raw) in enumerate(LEAKS, start=1):
        published = facts[f"烟芝市监罚〔2026〕{n}号"]
        assert published != text and "*" in published
        digits = re.sub(r"[^0-9*]", "", published)
        assert raw not in digits and raw not in json.dumps(facts, ensure_ascii=False), published
    assert f"注册号：{HEBEI_REG_NO}" in facts["烟芝市监罚〔2026〕9号"]  # public: kept
    index = get_backend(engine)
    with make_client(engine) as client:
        for text, raw in LEAKS:
            for q in {raw, re.sub(r"[^0-9]", "", text)}:
                assert index.search(SearchQuery(q=q, limit=50)).hits == [], q
                found = client.get("/api/v1/search", params={"q": q}).json()["hits"]
                assert found == [], q
        assert index.search(SearchQuery(q=HEBEI_REG_NO, limit=50)).hits  # what stays is found


@pytest.mark.parametrize("text", [
    f"当事人{HEBEI_REG_NO}",  # no label: read as a mobile with digits glued on
    "电话/传真：1390015101712",
    "联系人及电话：张三1390015101712",
    "手机（微信同号）：1390015101712",
    "Tel/Fax: 13900151015123",
    "举报人张三1390015101712反映",
])
def test_a_mobile_with_digits_glued_on_is_masked_whatever_its_label(text):
    """Phone labels come in too many forms to wait for one: only an identifier label (案件编号,
    注册号 …) or a letter glued on (JY137…) keeps such digits public."""
    masked = mask_text(text)
    assert masked != text and "0015101" not in masked and "0000000" not in masked, masked
