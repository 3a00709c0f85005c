"""CSV injection: text a spreadsheet would run as a formula (= + - @, tab, CR at the start) is
written to every CSV output with a leading ' (OWASP); NDJSON and the API keep it as published.
On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import gzip
import io
import json

import pytest

from publishing import opendata
from publishing.export import csv_lines, iter_public, ndjson_lines
from publishing.shape import public_fields
from tests.api_helpers import api_client, publish_csv, publish_ndjson
from tests.factories import penalty_row, pledge_row
from tests.test_cli import cli

LINK = '=HYPERLINK("http://evil.example/x","点击")'
# field -> (as published, as a CSV cell)
PLEDGE = {
    "address": (LINK, "'" + LINK),
    "conditions": ("+1+2", "'+1+2"),
    "exclusions": ("@SUM(1,2)", "'@SUM(1,2)"),
}
PLEDGE_PLAIN = {  # not formulas: as they are
    "address": ('＝HYPERLINK("http://evil.example/y")', '＝HYPERLINK("http://evil.example/y")'),
    "conditions": ("1+2", "1+2"),
    "exclusions": ("＠SUM(1,2)", "＠SUM(1,2)"),
}
PENALTY = {
    "facts": (
        '=HYPERLINK("http://evil.example/p","详情")',
        '\'=HYPERLINK("http://evil.example/p","详情")',
    ),
    "violation_type": ("-经营超过保质期的食品", "'-经营超过保质期的食品"),
    "basis": ("@SUM(1,2)", "'@SUM(1,2)"),
}


@pytest.fixture
def hostile(engine, tmp_path):
    publish_ndjson(
        engine,
        tmp_path,
        "r.ndjson",
        [
            pledge_row(1, **{k: v[0] for k, v in PLEDGE.items()}),
            pledge_row(2, **{k: v[0] for k, v in PLEDGE_PLAIN.items()}),
        ],
    )
    publish_csv(
        engine,
        tmp_path,
        "p.csv",
        [
            penalty_row(
                1,
                违法事实=PENALTY["facts"][0],
                违法行为类型=PENALTY["violation_type"][0],
                处罚依据=PENALTY["basis"][0],
            )
        ],
    )
    return engine


def _rows(text: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff")
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = next(reader)
    return [dict(zip(header, row, strict=True)) for row in reader]


def _check_csv(text: str, kind: str, engine) -> None:
    """The CSV's cells are the quoted forms; everything else as the public record has it."""
    rows = {r["id"]: r for r in _rows(text)}
    records = {rec["id"]: rec for rec in iter_public(kind, engine)}
    assert rows.keys() == records.keys()
    expected = [PLEDGE, PLEDGE_PLAIN] if kind == "return_pledge" else [PENALTY]
    for rec in records.values():
        cells = rows[rec["id"]]
        fields = next(f for f in expected if rec[next(iter(f))] == next(iter(f.values()))[0])
        for key, (published, cell) in fields.items():
            assert rec[key] == published  # the record itself keeps the text
            assert cells[key] == cell, (key, cells[key])
        # numbers stay numbers (the int columns, the money text)
        assert cells["version"] == str(rec["version"])
        if kind == "return_pledge":
            assert cells["return_days"] == "7"
        else:
            assert cells["fine_yuan"] == rec["fine_yuan"] == "5000.00"


def test_export_quotes_formulas(hostile):
    for kind in ("return_pledge", "penalty"):
        _check_csv("".join(csv_lines(kind, iter_public(kind, hostile))), kind, hostile)
        # NDJSON is not a spreadsheet: the published text as it is
        lines = "".join(ndjson_lines(iter_public(kind, hostile))).splitlines()
        assert [json.loads(x) for x in lines] == list(iter_public(kind, hostile))
    pledge = next(
        r
        for r in _rows("".join(csv_lines("return_pledge", iter_public("return_pledge", hostile))))
        if r["address"].startswith("'")
    )
    assert pledge["address"] == '\'=HYPERLINK("http://evil.example/x","点击")'


def test_cli_export_quotes_formulas(hostile, database_url, tmp_path):
    out = tmp_path / "r.csv"
    run = cli(
        database_url,
        "export",
        "--kind",
        "return_pledge",
        "--format",
        "csv",
        "--out",
        str(out),
        tmp_path=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    raw = out.read_bytes()
    assert raw.count(b"'=HYPERLINK(") == 1 and b",=HYPERLINK(" not in raw
    _check_csv(raw.decode("utf-8"), "return_pledge", hostile)
    nd = cli(
        database_url, "export", "--kind", "return_pledge", "--format", "ndjson", tmp_path=tmp_path
    )
    assert nd.returncode == 0, nd.stderr
    assert {json.loads(x)["address"] for x in nd.stdout.splitlines()} == {
        PLEDGE["address"][0],
        PLEDGE_PLAIN["address"][0],
    }


def test_open_data_files_quote_formulas(hostile, tmp_path):
    out = tmp_path / "od"
    index = opendata.build(hostile, out)
    files = opendata.snapshot_files(index)
    with api_client(hostile, opendata_dir=out) as client:
        for kind in ("return_pledge", "penalty"):
            live = client.get(f"/open-data/{kind}.csv")
            assert live.status_code == 200
            _check_csv(live.content.decode("utf-8"), kind, hostile)
            snap = files[(kind, "csv")]
            raw = (out / snap["path"]).read_bytes()
            content = gzip.decompress(raw)
            _check_csv(content.decode("utf-8"), kind, hostile)
            # index.json describes the bytes written, quote included
            assert content == live.content
            assert (len(raw), len(content)) == (snap["bytes"], snap["content_bytes"])
            nd = client.get(f"/open-data/{kind}.ndjson")
            assert [json.loads(x) for x in nd.content.decode().splitlines()] == list(
                iter_public(kind, hostile)
            )
            nd_snap = gzip.decompress((out / files[(kind, "ndjson")]["path"]).read_bytes())
            assert nd_snap == nd.content
        # the API gives the text as published
        for rec in iter_public("return_pledge", hostile):
            body = client.get(f"/api/v1/records/{rec['id']}").json()["record"]
            assert body["address"] in (PLEDGE["address"][0], PLEDGE_PLAIN["address"][0])
            assert body["address"] == rec["address"]
        pen = next(iter_public("penalty", hostile))
        assert (
            client.get(f"/api/v1/records/{pen['id']}").json()["record"]["facts"]
            == (PENALTY["facts"][0])
        )


def test_snapshots_of_an_older_csv_form_are_built_again(hostile, tmp_path):
    """Files built before the quoting (no csv_cells marker) are rebuilt at the next build, and
    the worker is told to build at once, though the change log has not moved."""
    out = tmp_path / "od"
    first = opendata.build(hostile, out)
    assert opendata.build(hostile, out)["version"] == first["version"]  # nothing to do
    assert not opendata.needs_build(hostile, out)
    older = {k: v for k, v in first.items() if k != "csv_cells"}
    (out / opendata.INDEX_NAME).write_text(json.dumps(older), encoding="utf-8")
    assert opendata.needs_build(hostile, out)
    rebuilt = opendata.build(hostile, out)
    assert rebuilt["version"] != first["version"] and rebuilt["csv_cells"] == opendata.CSV_CELLS
    assert not opendata.needs_build(hostile, out)


def test_tab_cr_and_negative_numbers(hostile):
    """Cells the pipeline would not let through (leading tab/CR, a negative figure): csv_lines
    quotes the text and leaves a number a number."""
    rec = next(iter_public("return_pledge", hostile))
    rec = {
        **rec,
        "conditions": "\tcmd",
        "exclusions": "\r=1",
        "refund_days": -3,
        "category": ["-a", "b"],
    }
    rows = _rows("".join(csv_lines("return_pledge", iter([rec]))))
    assert [rows[0][k] for k in ("conditions", "exclusions", "refund_days", "category")] == [
        "'\tcmd",
        "'\r=1",
        "-3",
        "'-a;b",
    ]
    assert list(rows[0]) == public_fields("return_pledge")
