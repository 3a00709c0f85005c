"""A JSON array is streamed: read CHUNK bytes, one element, at a time, never held whole, with
the rows, rejects and file-level messages (lines and columns included) of reading it whole.

Real files in tmp_path, read through open_source, publish() and the `disclosure publish` command
(SQLite and PostgreSQL); CHUNK is lowered so that elements, multi-byte characters and the BOM
straddle the reads. The messages are held to json's own, for the file decoded whole."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from publishing import publish as publish_module
from publishing.rows import SourceError, SourceFile
from publishing.sources import ERROR_KEY, json_reader, open_source
from publishing.sources.headers import RAW_KEY
from tests.factories import penalty_row, pledge_row, write_ndjson
from tests.test_cli import cli
from tests.test_input_edges import run

ROOT = Path(__file__).resolve().parent.parent
SMALL_CHUNKS = [1, 2, 3, 5, 7, 64]
BOM = b"\xef\xbb\xbf"
# Keys of several bytes a character, an emoji (4 bytes), escapes, a number as an element.
ODD_VALUES = ["烟台😀超市", 'a\\b"c', "\u00e9\u4e2d", "𠀀𠀁", "tab\there"]
SPECIAL = [3, 5, 11]  # objects of mixed_array() given a NaN, a lone surrogate, a control character


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def read(path: Path, kind: str | None = None) -> tuple[SourceFile, list[tuple[int, str]]]:
    source = open_source(path, kind)
    return source, [(row.row, repr(row.values)) for row in source.rows]


def reject_of(path: Path) -> tuple[int, str]:
    with pytest.raises(SourceError) as caught:
        read(path)
    return caught.value.reject.row, caught.value.reject.reason


def loaded_whole(data: bytes) -> tuple[int, str] | None:
    """The file-level reject of reading the file whole, in json's own words; None when it is
    an array."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return 0, f"JSON 文件不是 UTF-8 编码（第{error.start + 1}字节）"
    try:
        value = json.JSONDecoder().decode(text)
    except json.JSONDecodeError as error:
        return error.lineno, f"JSON 格式错误：{error.msg}（第{error.lineno}行第{error.colno}列）"
    return None if isinstance(value, list) else (0, "JSON 文件应为对象数组（[{…}, {…}]）")


def mixed_array() -> str:
    """Objects with multi-byte text, escapes, NaN, a lone surrogate and a control character,
    between elements that are not objects, some of them numbers, pretty-printed in part."""
    elements: list[Any] = []
    for n in range(1, 41):
        elements.append(pledge_row(n, entity_name=ODD_VALUES[n % len(ODD_VALUES)] + str(n)))
        if n % 7 == 0:
            elements += [-1500.25, "不是对象", None, [1, "二"]]
    parts = [json.dumps(e, ensure_ascii=n % 2 == 0) for n, e in enumerate(elements)]
    for at, value in zip(SPECIAL, ["NaN", '"商\\ud800场"', '"商\\u0001场"'], strict=True):
        parts[at] = json.dumps(elements[at], ensure_ascii=False).replace('"商场"', value)
    parts[12] = json.dumps(elements[12], ensure_ascii=False, indent=2)
    return "[\n" + ",\n".join(parts) + "\n]\n"


# -- the same rows, however the file is cut into reads ---------------------------------------


@pytest.mark.parametrize("chunk", SMALL_CHUNKS)
def test_elements_straddling_reads_give_the_same_rows(tmp_path, monkeypatch, chunk):
    path = write(tmp_path / "p.json", BOM + mixed_array().encode("utf-8"))
    whole_source, whole = read(path)  # one read holds the whole file
    monkeypatch.setattr(json_reader, "CHUNK", chunk)
    source, rows = read(path)
    assert rows == whole
    assert (source.kind, source.columns, source.ignored_columns) == (
        whole_source.kind,
        whole_source.columns,
        whole_source.ignored_columns,
    )
    # what the file holds: every element a row, the odd ones rejected as they were
    assert len(rows) == len(json.loads(path.read_text(encoding="utf-8-sig")))
    rejected = [row for row, values in rows if repr(ERROR_KEY) in values]
    assert len(rejected) == 5 * 4 + 1  # the elements that are not objects, the lone surrogate
    texts = [values for _, values in rows]
    assert "不是有效数值" in texts[3] and "代理项" in texts[5] and "U+0001" in texts[11]


@pytest.mark.parametrize("chunk", range(1, 9))
def test_a_multi_byte_character_split_across_reads(tmp_path, monkeypatch, chunk):
    names = ["烟台😀超市", "é", "𠀀中", "😀😀😀"]
    rows = [pledge_row(n, entity_name=name) for n, name in enumerate(names, start=1)]
    path = write(tmp_path / "p.json", BOM + json.dumps(rows, ensure_ascii=False).encode())
    monkeypatch.setattr(json_reader, "CHUNK", chunk)
    source = open_source(path)
    assert [row.values["entity_name"] for row in source.rows] == names


@pytest.mark.parametrize("chunk", range(1, 9))
def test_a_number_cut_by_a_read_is_read_whole(tmp_path, monkeypatch, chunk):
    # "-1500." of "-1500.25" reads as -1500 (the "." is left): the read must go on.
    numbers = "[-1500.25,1E+2,10,-2e-3,0.5,123456789,1e400,-0.0,7]"
    monkeypatch.setattr(json_reader, "CHUNK", chunk)
    rows = list(open_source(write(tmp_path / "p.json", numbers), "return_pledge").rows)
    assert [row.values[RAW_KEY] for row in rows] == [json.dumps(n) for n in json.loads(numbers)]


def test_the_bom_is_dropped_once(tmp_path, monkeypatch):
    monkeypatch.setattr(json_reader, "CHUNK", 1)
    path = write(tmp_path / "p.json", BOM + json.dumps([pledge_row(1)]).encode())
    assert [row.values["uscc"] for row in open_source(path).rows] == [pledge_row(1)["uscc"]]
    twice = BOM + BOM + b"[]"
    assert (
        reject_of(write(path, twice))
        == loaded_whole(twice)
        == (1, "JSON 格式错误：Expecting value（第1行第1列）")
    )


# -- file-level rejects: json's message, line and column, as for the file read whole ---------


def big_array(count: int = 3000) -> str:
    """One record a line, the first on line 2."""
    return (
        "[\n"
        + ",\n".join(json.dumps(pledge_row(n), ensure_ascii=False) for n in range(1, count + 1))
        + "\n]\n"
    )


def broken_files() -> dict[str, bytes]:
    big = big_array()
    lines = big.split("\n")
    middle = lines.copy()
    middle[1500] = middle[1500].replace('"return_days": 7', '"return_days": }')
    missing_comma = lines.copy()
    missing_comma[2500] = missing_comma[2500].rstrip(",")
    cut = big.encode()[: len(big.encode()) * 2 // 3]
    record = json.dumps(pledge_row(1), ensure_ascii=False)
    return {
        "early": f"[{record},\n{record}\n{record}]".encode(),
        "middle": "\n".join(middle).encode(),
        "missing-comma": "\n".join(missing_comma).encode(),
        "truncated-in-an-element": cut,
        "truncated-in-a-string": big.encode()[: big.encode().index("烟台测试2000".encode())],
        "truncated-after-an-element": big.encode()[: big.encode().rindex(b"}") + 1],
        "trailing-comma": f"[{record},]".encode(),
        "trailing-garbage": (big + " x").encode(),
        "a-second-close": (big + "\n  ]").encode(),
        "ndjson-in-a-json-file": "\n".join([record, record]).encode(),
        "an-object": record.encode(),
        "whitespace-only": b"  \n\t",
        "not-utf8-deep-in-the-file": big.encode().replace("烟台测试2999".encode(), b"\xff", 1),
        "not-utf8-after-a-syntax-error": ("[1 2]" + big).encode() + b"\xe4\xb8",
        "bom-and-not-utf8": BOM + big.encode()[:5000] + b"\xc0" + big.encode()[5000:],
        "a-character-cut-at-the-end": big.encode()[:-4] + "烟".encode()[:2],
    }


@pytest.mark.parametrize("chunk", [5, 4096, 1 << 30])
@pytest.mark.parametrize("case", list(broken_files()))
def test_a_broken_file_is_rejected_as_when_read_whole(tmp_path, monkeypatch, case, chunk):
    data = broken_files()[case]
    expected = loaded_whole(data)
    assert expected is not None
    monkeypatch.setattr(json_reader, "CHUNK", chunk)
    assert reject_of(write(tmp_path / "p.json", data)) == expected


def test_syntax_errors_name_their_line(tmp_path, monkeypatch):
    monkeypatch.setattr(json_reader, "CHUNK", 4096)
    files = broken_files()
    found = {
        case: reject_of(write(tmp_path / "p.json", files[case]))[0]
        for case in ("early", "middle", "missing-comma", "trailing-garbage")
    }
    assert found == {"early": 3, "middle": 1501, "missing-comma": 2502, "trailing-garbage": 3003}
    row, reason = reject_of(write(tmp_path / "p.json", files["truncated-in-an-element"]))
    assert 2000 < row < 2010 and reason.startswith("JSON 格式错误")


def test_whitespace_after_the_array_is_fine(tmp_path):
    path = write(tmp_path / "p.json", " \r\n[ " + json.dumps(pledge_row(1)) + " ]\n\n \t")
    _, rows = read(path)
    assert len(rows) == 1


@pytest.mark.parametrize("text", ["[]", " [ \n ] \n"])
def test_an_empty_array(tmp_path, text):
    path = write(tmp_path / "p.json", text)
    assert reject_of(path) == (0, "无法识别数据种类：文件中没有任何记录")
    assert read(path, kind="return_pledge")[1] == []


def test_elements_that_are_not_objects_are_rejected_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(json_reader, "CHUNK", 3)
    elements = [1, pledge_row(1), "x", None, [1, 2], True, -2.5e3, pledge_row(2)]
    path = write(tmp_path / "p.json", json.dumps(elements))
    rows = list(open_source(path).rows)
    assert [row.row for row in rows] == list(range(1, 9))
    assert [(row.values.get(ERROR_KEY), row.values.get(RAW_KEY)) for row in rows] == [
        ("不是 JSON 对象（是数字）", "1"),
        (None, None),
        ("不是 JSON 对象（是字符串）", '"x"'),
        ("不是 JSON 对象（是null）", "null"),
        ("不是 JSON 对象（是数组）", "[1, 2]"),
        ("不是 JSON 对象（是布尔值）", "true"),
        ("不是 JSON 对象（是数字）", "-2500.0"),
        (None, None),
    ]


def test_a_control_character_written_as_a_short_escape_is_a_bad_value(tmp_path):
    # \b and \f are control characters too: never looked for, they were published as they were.
    line = json.dumps(pledge_row(1), ensure_ascii=False).replace('"商场"', '"商\\b场"')
    for path in (write(tmp_path / "p.json", f"[{line}]"), write(tmp_path / "p.ndjson", line)):
        [row] = open_source(path).rows
        assert "含控制字符 U+0008" in repr(row.values["category"]), path


def test_a_file_changed_after_the_check_ends_in_a_rejected_row(tmp_path, monkeypatch):
    # Raised, the error would end publish's cleaning process rather than be reported.
    monkeypatch.setattr(json_reader, "CHUNK", 64)
    path = write(tmp_path / "p.json", json.dumps([pledge_row(n) for n in (1, 2, 3)]))
    source = open_source(path)
    write(path, path.read_bytes()[:-30])
    rows = list(source.rows)
    assert [row.row for row in rows] == [1, 2, 3]
    assert (
        rows[2].values[ERROR_KEY].startswith("文件在读取期间被改动，此处起无法读取：JSON 格式错误")
    )


# -- the kind from the first records; keys first seen later are ignored, and reported ---------


def test_keys_after_the_sample_are_classified_as_the_rows_stream(tmp_path, monkeypatch):
    monkeypatch.setattr(json_reader, "SAMPLE_RECORDS", 2)
    rows = [pledge_row(1), pledge_row(2), pledge_row(3, 经办人="张三", 罚款金额元=1)]
    source = open_source(write(tmp_path / "p.json", json.dumps(rows, ensure_ascii=False)))
    assert source.ignored_columns == []
    assert len(list(source.rows)) == 3
    assert source.ignored_columns == ["经办人", "罚款金额元"]


def late_key_rows() -> list[dict]:
    rows = [pledge_row(n) for n in range(1, json_reader.SAMPLE_RECORDS + 6)]
    rows[-1]["经办人"] = "张三"
    return rows


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_late_keys_reach_the_reports_ignored_columns(engine, database_url, tmp_path, fmt):
    path = tmp_path / f"p.{fmt}"
    if fmt == "json":
        write(path, json.dumps(late_key_rows(), ensure_ascii=False))
    else:
        write_ndjson(path, late_key_rows())
    report = tmp_path / "r.json"
    done = cli(database_url, "publish", str(path), "--report", str(report), tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    assert (data["rows"], data["ignored_columns"]) == (len(late_key_rows()), ["经办人"])


def test_late_keys_of_a_file_cleaned_in_a_child_process(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(publish_module, "PARALLEL_MIN_BYTES", 0)
    path = write(tmp_path / "p.json", json.dumps(late_key_rows(), ensure_ascii=False))
    assert run(engine, path).reports[0].ignored_columns == ["经办人"]


# -- nesting as deep as the check at open allows is read with the rows too -------------------


def nested(depth: int) -> str:
    """A record with an (ignored) key holding arrays nested depth deep."""
    return "[" + json.dumps(pledge_row(1))[:-1] + ', "附件": ' + "[" * depth + "]" * depth + "}]"


def test_the_deepest_element_the_check_allows_is_read_in_a_cleaning_process(
    engine, tmp_path, monkeypatch
):
    # The rows are read deeper in the stack (publish's cleaning process) than the check at
    # open: read at the same depth, an element the check passed would fail halfway through.
    monkeypatch.setattr(publish_module, "PARALLEL_MIN_BYTES", 0)
    path = tmp_path / "p.json"
    low, high = 1, sys.getrecursionlimit()  # readable, unreadable
    while high - low > 1:
        middle = (low + high) // 2
        write(path, nested(middle))
        result = run(engine, path, dry_run=True)
        if result.unreadable:
            assert result.reports[0].rejected[0].reason == "JSON 数组或对象嵌套层数过多，无法读取"
            high = middle
        else:
            low = middle
    assert low > 500
    write(path, nested(low))
    result = run(engine, path, dry_run=True)
    assert result.publishable and result.reports[0].rows == 1


# -- flat memory -------------------------------------------------------------------------------

# Reads a source whole in a process of its own; prints its rows and its own peak (VmHWM: the
# peak of the memory map exec made, not the forking pytest worker's, as ru_maxrss would be).
READ_ALL = (
    "import re, sys; from pathlib import Path; from publishing.sources import open_source; "
    "source = open_source(Path(sys.argv[1])); rows = sum(1 for _ in source.rows); "
    "peak = re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read())[1]; "
    "print(rows, int(peak) * 1024)"
)


def test_a_large_json_array_is_read_in_flat_memory(tmp_path):
    path = tmp_path / "big.json"
    record = json.dumps(penalty_row(1), ensure_ascii=False)
    with path.open("w", encoding="utf-8") as stream:
        stream.write("[\n" + record)
        for _ in range(20):
            stream.write(f",\n{record}" * 10_000)
        stream.write("\n]\n")
    size = path.stat().st_size
    assert size > 100 << 20
    done = subprocess.run(
        [sys.executable, "-c", READ_ALL, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows, peak = map(int, done.stdout.split())
    assert rows == 200_001
    # Loaded whole, the peak was 4.5 times the file's size; streamed, it is the interpreter's.
    assert peak < size / 3, (peak, size)
