"""A value holding a Unicode noncharacter (U+FFFE/U+FFFF, which XML 1.0 cannot carry, U+FDD0–
U+FDEF, U+nFFFE/U+nFFFF) is rejected by the import in every format, as a control character is:
the readers' quick scans (which decide whether a file's or a record's values are checked one by
one) look for them too. Published, U+FFFF made every feed showing the record a 500."""

from __future__ import annotations

import json
import re

import pytest

from publishing.publish import publish
from publishing.sources import csv_reader
from tests.factories import penalty_row, write_csv
from tests.test_feeds import TODAY

NAME = "烟台某某商贸有限公司"
CHARS = ["\uffff", "\ufffe", "\ufdd0", "\U0001fffe", "\U0010ffff"]


def _reason(char: str) -> str:
    return f"含控制字符 U+{ord(char):04X}（不可见字符），不是有效文本，请删除后重新导出"


def _rejects(engine, path) -> list[tuple[int, str]]:
    result = publish([path], engine=engine, show_progress=False, today=TODAY,
                     accept_partial=True)
    report = result.reports[0]
    assert report.accepted == 1, result.as_json()  # the clean row is published
    return [(r.row, r.reason) for r in report.rejected]


def _rows(char: str) -> list[dict[str, str]]:
    return [penalty_row(1, 当事人名称=NAME + char), penalty_row(2)]


@pytest.mark.parametrize("char", CHARS)
@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "gb18030"])
def test_a_csv_value_with_a_noncharacter_is_rejected(engine, tmp_path, char, encoding):
    path = write_csv(tmp_path / "p.csv", _rows(char), encoding=encoding)
    assert _rejects(engine, path) == [(2, _reason(char))]


@pytest.mark.parametrize("split", [1, 2])
def test_a_noncharacter_across_two_chunks_of_the_scan_is_found(
    engine, tmp_path, monkeypatch, split
):
    """The CSV scan reads the file in chunks: U+FFFF's bytes split over two are still found
    (chunks made small here, as a 1 MiB one would need a field longer than a CSV may hold)."""
    path = write_csv(tmp_path / "p.csv", _rows("\uffff"))
    at = path.read_bytes().index(b"\xef\xbf\xbf") + split
    monkeypatch.setattr(csv_reader, "_CHUNK", at)
    assert _rejects(engine, path) == [(2, _reason("\uffff"))]


def _mixed_case(text: str) -> str:
    """JSON's \\u escapes with their hex digits in alternating case (\\uFfFe): as valid."""
    return re.sub(r"\\u([0-9a-f]{4})",
                  lambda m: "\\u" + "".join(c.upper() if i % 2 else c
                                            for i, c in enumerate(m.group(1))), text)


@pytest.mark.parametrize("char", CHARS)
@pytest.mark.parametrize("escaped", [True, False, "mixed case"])
def test_an_ndjson_value_with_a_noncharacter_is_rejected(engine, tmp_path, char, escaped):
    records = [
        {"uscc": penalty_row(n)["统一社会信用代码"], "entity_name": NAME + (char if n == 1 else ""),
         "district": "芝罘区", "decision_no": f"烟芝市监罚〔2026〕{n}号", "procedure": "普通",
         "violation_type": "销售不合格产品", "facts": "事实", "basis": "依据",
         "penalty_kinds": "警告", "authority": "烟台市芝罘区市场监督管理局",
         "decided_on": "2026-06-01"}
        for n in (1, 2)
    ]
    path = tmp_path / "p.ndjson"
    dumps = (lambda v: _mixed_case(json.dumps(v))) if escaped == "mixed case" else (
        lambda v: json.dumps(v, ensure_ascii=escaped))
    path.write_text("".join(dumps(r) + "\n" for r in records), encoding="utf-8")
    assert _rejects(engine, path) == [(1, _reason(char))]
    array = tmp_path / "p.json"
    array.write_text(dumps(records), encoding="utf-8")
    assert _rejects(engine, array) == [(1, _reason(char))]


def test_the_reviewed_file_is_refused(engine, tmp_path):
    """The review's file: publish (no --accept-partial) no longer succeeds with it."""
    path = write_csv(tmp_path / "p.csv", [penalty_row(1, 当事人名称=NAME + "\uffff")])
    result = publish([path], engine=engine, show_progress=False, today=TODAY)
    assert not result.published
    assert [r.reason for r in result.reports[0].rejected] == [_reason("\uffff")]
