"""Open data: data dictionary, streamed CSV/NDJSON downloads, snapshots with index.json and
daily deltas, the DCAT-AP catalog and the /open-data page, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import shutil
import tracemalloc
from datetime import UTC, date, datetime

import pytest

from publishing import opendata, opendata_catalog
from publishing.commit import EVENTS
from publishing.contract import KINDS
from publishing.expire import expire
from publishing.export import csv_lines, iter_public, ndjson_lines
from publishing.shape import public_fields
from tests.api_helpers import (
    api_client,
    bulk_penalties,
    publish_csv,
    publish_ndjson,
    published,
)
from tests.factories import blacklist_row, credit_mark_row, penalty_row, pledge_row


@pytest.fixture
def data(engine, tmp_path):
    publish_csv(engine, tmp_path, "p.csv", [penalty_row(i) for i in range(1, 8)])
    publish_csv(engine, tmp_path, "c.csv", [credit_mark_row(i) for i in range(1, 4)])
    publish_csv(engine, tmp_path, "b.csv", [blacklist_row(i) for i in range(1, 3)])
    publish_ndjson(engine, tmp_path, "r.ndjson", [pledge_row(1), pledge_row(2, model_unit="是")])
    return engine


def _export(engine, kind: str, fmt: str) -> bytes:
    records = iter_public(kind, engine)
    lines = csv_lines(kind, records) if fmt == "csv" else ndjson_lines(records)
    return "".join(lines).encode()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_data_dictionary_covers_every_field_of_every_kind(data):
    with api_client(data) as client:
        sets = {d["kind"]: d for d in client.get("/api/v1/open-data").json()["datasets"]}
    assert list(sets) == list(KINDS)
    for kind in KINDS:
        fields = sets[kind]["fields"]
        assert fields == opendata_catalog.dictionary(kind)
        assert [f["key"] for f in fields] == list(dict.fromkeys(public_fields(kind)))
        for f in fields:
            assert f["label"] and f["meaning"] and f["type"] in opendata_catalog.TYPE_LABELS, f
            assert any("\u4e00" <= ch <= "\u9fff" for ch in f["label"]), f
        # the declared JSON types hold for the published values
        for rec in iter_public(kind, data):
            for f in fields:
                value = rec[f["key"]]
                expected = {"integer": int, "array": list, "boolean": bool, "string": str}[
                    f["json_type"]
                ]
                assert value is None or isinstance(value, expected), (kind, f["key"], value)
    labels = {f["key"]: f["label"] for f in sets["penalty"]["fields"]}
    assert labels["decision_no"] == "行政处罚决定书文号" and labels["fine_yuan"] == "罚款金额(元)"


def test_csv_download_opens_in_excel(data):
    with api_client(data) as client:
        for kind in KINDS:
            r = client.get(f"/open-data/{kind}.csv")
            assert r.status_code == 200
            assert r.headers["content-type"] == "text/csv; charset=utf-8"
            assert r.headers["content-disposition"] == f'attachment; filename="{kind}.csv"'
            assert r.headers["access-control-allow-origin"] == "*"
            body = r.content
            assert body.startswith(b"\xef\xbb\xbf") and body == _export(data, kind, "csv")
            text = body.decode("utf-8-sig")
            assert text.count("\r\n") >= 1 and "\n" not in text.replace("\r\n", "")
            rows = list(csv.reader(io.StringIO(text, newline="")))
            assert rows[0] == public_fields(kind)
            assert len(rows) - 1 == sum(1 for _ in iter_public(kind, data))
    assert len(rows) == 3  # return pledges: 2 rows and the header


def test_ndjson_download_equals_the_export(data):
    with api_client(data) as client:
        for kind in KINDS:
            r = client.get(f"/open-data/{kind}.ndjson")
            assert r.status_code == 200 and r.headers["content-type"].startswith(
                "application/x-ndjson"
            )
            assert r.content == _export(data, kind, "ndjson")
            lines = r.content.decode().splitlines()
            assert [json.loads(x) for x in lines] == list(iter_public(kind, data))
        head = client.head("/open-data/penalty.ndjson")
        assert head.status_code == 200 and head.content == b""
        for bad in ("penalty.xlsx", "nope.csv", "penalty", "index.jsonx"):
            assert client.get(f"/open-data/{bad}").status_code == 404


def test_streaming_keeps_memory_flat(engine):
    bulk_penalties(engine, 20_000)
    tracemalloc.start()
    try:
        seen, first = 0, None
        for chunk in opendata.stream("penalty", "ndjson", engine):
            seen += chunk.count(b"\n")
            if first is None and seen >= 4_000:
                first = tracemalloc.get_traced_memory()[1]
                tracemalloc.reset_peak()
        rest = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen == 20_000
    # one keyset page (publishing.export.BATCH rows) and a chunk are held at a time, whatever
    # the total: the last 16,000 rows peak no higher than the first 4,000 did
    assert rest < first * 1.25 + 1_000_000, (first, rest)
    assert rest < 40_000_000


def test_index_checksums_and_row_counts_match_the_files(data, tmp_path):
    out = tmp_path / "od"
    index = opendata.build(data, out)
    # the first build (no index.json before it) names its build: see test_opendata_restore
    assert index["version"] == f"{index['seq']}-{index['build']}" and index["generated_at"]
    snaps = [f for f in index["files"] if f["type"] == "snapshot"]
    assert {(f["kind"], f["format"]) for f in snaps} == {
        (k, f) for k in KINDS for f in ("csv", "ndjson")
    }
    deltas = [f for f in index["files"] if f["type"] == "delta"]
    assert sum(d["events"] for d in deltas) == index["seq"]
    with api_client(data, opendata_dir=out) as client:
        served = client.get("/open-data/index.json")
        assert served.status_code == 200 and served.json() == index
        for f in index["files"]:
            raw = (out / f["path"]).read_bytes()
            assert (_sha(raw), len(raw)) == (f["sha256"], f["bytes"]), f["path"]
            r = client.get(f["url"])
            assert r.status_code == 200 and r.content == raw
            if f["type"] == "snapshot":
                content = gzip.decompress(raw)
                assert (_sha(content), len(content)) == (f["content_sha256"], f["content_bytes"])
                assert content == _export(data, f["kind"], f["format"])
                header = 1 if f["format"] == "csv" else 0
                assert content.count(b"\n") - header == f["rows"]
            else:
                events = [json.loads(x) for x in raw.decode().splitlines()]
                assert len(events) == f["events"]
                assert (events[0]["seq"], events[-1]["seq"]) == (f["from_seq"], f["to_seq"])
        for bad in (
            "/open-data/snapshots/x/penalty.csv.gz",
            "/open-data/snapshots/1/evil.gz",
            "/open-data/deltas/..%2Findex.json",
            "/open-data/deltas/2026-01-01.ndjson",
            f"/open-data/snapshots/{index['version']}/..%2Findex.json",
        ):
            assert client.get(bad).status_code == 404, bad


def test_download_is_the_snapshot_while_nothing_changed(data, tmp_path):
    out = tmp_path / "od"
    index = opendata.build(data, out)
    files = opendata.snapshot_files(index)
    with api_client(data, opendata_dir=out) as client:
        r = client.get("/open-data/penalty.csv")
        snap = files[("penalty", "csv")]
        assert r.headers["etag"] == f'"sha256-{snap["content_sha256"]}"'
        assert _sha(r.content) == snap["content_sha256"]
        assert int(r.headers["content-length"]) == snap["content_bytes"] == len(r.content)
        head = client.head("/open-data/penalty.csv")
        assert head.headers["content-length"] == r.headers["content-length"] and not head.content
        again = client.get("/open-data/penalty.csv", headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304
        page = client.get("/api/v1/open-data").json()
        pen = next(d for d in page["datasets"] if d["kind"] == "penalty")
        live = next(d for d in pen["downloads"] if d["url"] == "/open-data/penalty.csv")
        assert (
            live["sha256"] == snap["content_sha256"]
            and live["rows"] == 7
            and pen["snapshot_current"]
        )
        publish_csv(data, tmp_path, "more.csv", [penalty_row(50)])
        r = client.get("/open-data/penalty.csv")
        assert "etag" not in r.headers and r.content == _export(data, "penalty", "csv")
        assert client.get("/open-data/credit_mark.csv").headers["etag"]  # that kind is unchanged
        page = client.get("/api/v1/open-data").json()
        pen = next(d for d in page["datasets"] if d["kind"] == "penalty")
        assert not pen["snapshot_current"]  # (row_count: the portal's counts, refreshed apart)
        assert (
            next(d for d in pen["downloads"] if d["url"] == "/open-data/penalty.csv")["sha256"]
            is None
        )


def test_build_is_incremental(data, tmp_path):
    out = tmp_path / "od"
    first = opendata.build(data, out)
    assert opendata.build(data, out) == first  # nothing new: nothing rewritten
    publish_csv(data, tmp_path, "more.csv", [penalty_row(50)])
    second = opendata.build(data, out)
    assert second["seq"] == first["seq"] + 1
    [d1] = [f for f in first["files"] if f["type"] == "delta"]
    [d2] = [f for f in second["files"] if f["type"] == "delta"]
    assert d2["date"] == d1["date"] and d2["from_seq"] == d1["from_seq"]
    assert (d2["events"], d2["to_seq"]) == (d1["events"] + 1, second["seq"])
    # only the newest snapshot is kept: an older one may hold records withdrawn since
    assert [p.name for p in (out / "snapshots").iterdir()] == [second["version"]]


def test_dcat_catalog_names_every_dataset_and_distribution(data, tmp_path):
    out = tmp_path / "od"
    with api_client(data, opendata_dir=out) as client:
        before = client.get("/open-data/catalog.jsonld")
        opendata.build(data, out)
        r = client.get("/open-data/catalog.jsonld")
    assert before.status_code == 200
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/ld+json")
    cat = json.loads(r.content)
    ctx = cat["@context"]
    assert ctx["dcat"] == "http://www.w3.org/ns/dcat#" and ctx["dct"] == "http://purl.org/dc/terms/"
    _check_prefixes(cat, ctx)
    assert cat["@type"] == "dcat:Catalog"
    assert cat["dct:publisher"]["foaf:name"]["@value"] == "烟台市市场监督管理局"
    assert cat["dct:license"]["@id"].endswith("/open-data#licence")
    datasets = {d["dct:identifier"]: d for d in cat["dcat:dataset"]}
    assert list(datasets) == list(KINDS)
    for kind, ds in datasets.items():
        assert ds["@type"] == "dcat:Dataset" and ds["dct:license"] and ds["dct:publisher"]
        assert ds["dct:modified"]["@type"] == "xsd:dateTime"
        urls = {d["dcat:downloadURL"]["@id"]: d for d in ds["dcat:distribution"]}
        base = "http://127.0.0.1:8000/open-data/"
        assert base + f"{kind}.csv" in urls and base + f"{kind}.ndjson" in urls
        snaps = [d for u, d in urls.items() if "/snapshots/" in u]
        assert len(snaps) == 2
        for dist in ds["dcat:distribution"]:
            assert dist["@type"] == "dcat:Distribution"
            assert dist["dcat:mediaType"]["@id"].startswith(
                "https://www.iana.org/assignments/media-types/"
            )
            assert int(dist["dcat:byteSize"]["@value"]) > 0
            assert len(dist["spdx:checksum"]["spdx:checksumValue"]["@value"]) == 64
    assert {d["@id"] for d in cat["dcat:service"]["dcat:servesDataset"]} == {
        d["@id"] for d in cat["dcat:dataset"]
    }
    assert [
        d
        for d in json.loads(before.content)["dcat:dataset"][0]["dcat:distribution"]
        if "spdx:checksum" in d
    ] == []  # no snapshot yet: nothing claimed


def _check_prefixes(node, ctx) -> None:
    """Every compact IRI (key or @type/@id value) uses a prefix the @context defines."""
    if isinstance(node, list):
        for x in node:
            _check_prefixes(x, ctx)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key != "@context" and not key.startswith("@"):
                assert key.split(":", 1)[0] in ctx, key
            if (
                key in ("@type", "@id")
                and isinstance(value, str)
                and ":" in value
                and "://" not in value
            ):
                assert value.split(":", 1)[0] in ctx, value
            if key != "@context":
                _check_prefixes(value, ctx)


def test_open_data_page(data, tmp_path):
    out = tmp_path / "od"
    opendata.build(data, out)
    with api_client(data, opendata_dir=out) as client:
        r = client.get("/open-data")
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        assert '</api/v1/open-data>; rel="alternate"' in r.headers["link"]
        assert "access-control-allow-origin" not in r.headers  # a page, not the API
        html = r.text
        assert opendata_catalog.LICENCE_TITLE in html and "个人信息" in html
        for kind in KINDS:
            assert f'href="/open-data/{kind}.csv"' in html and f'id="{kind}"' in html
        assert "行政处罚决定书文号" in html and "SHA-256" in html
        body = client.get("/api/v1/open-data").json()
        assert body["licence"]["text"] == list(opendata_catalog.LICENCE_TEXT)
        assert body["snapshot"]["version"] == body["datasets"][0]["snapshot_version"]
        assert {d["kind"]: d["row_count"] for d in body["datasets"]} == {
            "blacklist": 2,
            "penalty": 7,
            "credit_mark": 3,
            "return_pledge": 2,
        }


# -- withdrawn records leave the open-data files ------------------------------------------

PENALTY_WITH_OP = [*penalty_row(1), "操作"]
# The withdrawn penalty's own content: its decision number and its facts.
GONE_MARKERS = ("烟芝市监罚〔2026〕2号", "案值2元")


def _backdate(engine) -> None:
    """The events so far happened days ago: their delta file is an earlier day's, which a
    withdrawal today must rewrite too."""
    with engine.begin() as conn:
        conn.execute(EVENTS.update().values(at=datetime(2026, 11, 20, 2, 0, tzinfo=UTC)))


def _withdraw_penalty_2(engine, tmp_path) -> str:
    [rec] = [r for r in iter_public("penalty", engine) if r["decision_no"].endswith("〕2号")]
    publish_csv(engine, tmp_path, "w.csv", [penalty_row(2, 操作="撤销")], header=PENALTY_WITH_OP)
    return rec["id"]


def _all_changes(client) -> dict[int, dict]:
    r = client.get("/api/v1/changes", params={"since": 0, "limit": 10_000})
    assert r.status_code == 200 and not r.json()["has_more"]
    return {item["seq"]: item for item in r.json()["changes"]}


def _on_disk(out) -> dict[str, str]:
    """Every file under the open-data directory, as text (gzip decompressed)."""
    return {
        str(path.relative_to(out)): (
            gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        ).decode("utf-8-sig")
        for path in out.rglob("*")
        if path.is_file() and path.name != ".lock"
    }


def _assert_only_public(client, engine, out) -> dict:
    """What a build leaves: one snapshot holding exactly the published records, and delta lines
    that equal the /api/v1/changes items, with a record only while it is published."""
    index = json.loads((out / "index.json").read_text())
    assert [p.name for p in (out / "snapshots").iterdir()] == [index["version"]]
    public = published(engine)
    changes = _all_changes(client)
    for f in index["files"]:
        raw = client.get(f["url"]).content
        if f["type"] == "snapshot" and f["format"] == "ndjson":
            ids = {json.loads(x)["id"] for x in gzip.decompress(raw).decode().splitlines()}
            assert ids == {i for i, r in public.items() if r["kind"] == f["kind"]}
        elif f["type"] == "delta":
            for line in raw.decode().splitlines():
                item = json.loads(line)
                assert item == changes[item["seq"]]
                assert item["record"] is None or item["record_id"] in public
    return index


def test_withdrawn_record_leaves_every_open_data_file(data, tmp_path):
    _backdate(data)
    out = tmp_path / "od"
    first = opendata.build(data, out)
    old_url = f"/open-data/snapshots/{first['version']}/penalty.csv.gz"
    assert all(m in "".join(_on_disk(out).values()) for m in GONE_MARKERS)  # (the markers work)
    record_id = _withdraw_penalty_2(data, tmp_path)
    second = opendata.build(data, out)
    with api_client(data, opendata_dir=out) as client:
        _assert_only_public(client, data, out)
        text = _on_disk(out)
        assert not [(name, m) for name, body in text.items() for m in GONE_MARKERS if m in body]
        lines = [
            json.loads(x) for x in text[f"deltas/{first['files'][-1]['date']}.ndjson"].splitlines()
        ]
        assert first["files"][-1]["date"] == "2026-11-20" != second["files"][-1]["date"]
        [add] = [x for x in lines if x["record_id"] == record_id and x["op"] == "add"]
        assert add["record"] is None and add["seq"] <= first["seq"]  # an already-written line
        # the old snapshot is gone, pointing at the newest one
        newest = f"/open-data/snapshots/{second['version']}/penalty.csv.gz"
        gone = client.get(old_url)
        assert gone.status_code == 410 and newest in gone.text
        assert gone.headers["link"] == f'<{newest}>; rel="latest-version"'
        assert (
            client.get(
                f"/open-data/snapshots/{second['seq']}-{second['build'] + 1}/penalty.csv.gz"
            ).status_code
            == 404
        )
        # bounded caching with an ETag, never immutable
        snap = client.get(newest)
        assert snap.status_code == 200 and snap.headers["cache-control"] == "public, max-age=3600"
        sha = opendata.snapshot_files(second)[("penalty", "csv")]["sha256"]
        assert snap.headers["etag"] == f'"sha256-{sha}"'
        again = client.get(newest, headers={"If-None-Match": snap.headers["etag"]})
        assert again.status_code == 304 and again.headers["cache-control"] == "public, max-age=3600"
        delta = client.get(second["files"][-1]["url"])
        assert delta.headers["cache-control"] == "public, max-age=300" and delta.headers["etag"]
        assert (
            client.get(
                second["files"][-1]["url"], headers={"If-None-Match": delta.headers["etag"]}
            ).status_code
            == 304
        )
        # expiry takes records out the same way
        assert sum(expire(data, today=date(2028, 1, 1)).values()) > 0
        opendata.build(data, out)
        _assert_only_public(client, data, out)


def test_withdrawal_before_the_next_build(data, tmp_path):
    _backdate(data)
    out = tmp_path / "od"
    index = opendata.build(data, out)
    assert not opendata.needs_build(data, out)
    record_id = _withdraw_penalty_2(data, tmp_path)
    assert opendata.needs_build(data, out)
    files = opendata.snapshot_files(index)
    with api_client(data, opendata_dir=out) as client:
        r = client.get(files[("penalty", "ndjson")]["url"])
        assert (
            r.status_code == 410
            and r.headers["link"] == '</open-data/penalty.ndjson>; rel="latest-version"'
        )
        assert client.get(files[("credit_mark", "ndjson")]["url"]).status_code == 200
        changes = _all_changes(client)
        for f in index["files"]:
            if f["type"] == "delta":
                served = client.get(f["url"])
                assert served.headers["cache-control"] == "no-store"
                assert not any(m in served.text for m in GONE_MARKERS)
                for line in served.text.splitlines():
                    item = json.loads(line)
                    if item["record_id"] == record_id:
                        assert item == changes[item["seq"]] and item["record"] is None
    opendata.build(data, out)
    assert not opendata.needs_build(data, out)


def test_files_of_an_older_build_are_rewritten(data, tmp_path):
    """An index written before delta lines followed the change log (no "delta_lines"): the
    next build rewrites every kept day and deletes the older snapshots, even with no new event."""
    _backdate(data)
    out = tmp_path / "od"
    first = opendata.build(data, out)
    frozen = {p.name: p.read_bytes() for p in (out / "deltas").iterdir()}
    shutil.copytree(out / "snapshots" / first["version"], tmp_path / "old-snapshot")
    _withdraw_penalty_2(data, tmp_path)
    second = opendata.build(data, out)
    # the state the older code left: lines frozen as first written, old snapshots kept
    for name, body in frozen.items():
        (out / "deltas" / name).write_bytes(body)
    shutil.copytree(tmp_path / "old-snapshot", out / "snapshots" / first["version"])
    del second["delta_lines"]
    (out / "index.json").write_text(json.dumps(second, ensure_ascii=False))
    assert opendata.build(data, out)["delta_lines"] == opendata.DELTA_LINES
    text = "".join(_on_disk(out).values())
    assert not [m for m in GONE_MARKERS if m in text]
    with api_client(data, opendata_dir=out) as client:
        _assert_only_public(client, data, out)


def test_index_is_linked_only_once_built(data, tmp_path):
    out = tmp_path / "od"
    with api_client(data, opendata_dir=out) as client:
        html = client.get("/open-data").text
        assert "/open-data/index.json" not in html and "快照尚未生成" in html
        assert client.get("/api/v1/open-data").json()["index_url"] is None
        missing = client.get("/open-data/index.json")
        # the command that builds it (`disclosure export` only writes a file of records)
        assert missing.status_code == 404 and "disclosure opendata" in missing.text
        opendata.build(data, out)
        html = client.get("/open-data").text
        assert 'href="/open-data/index.json"' in html and "快照尚未生成" not in html
        assert client.get("/api/v1/open-data").json()["index_url"] == "/open-data/index.json"


def test_an_empty_database_does_not_replace_published_files(data, tmp_path):
    """A mistyped database path makes an empty SQLite database: built from it, every snapshot
    was emptied and index.json told mirrors to clear their copies (exit 0)."""
    from publishing.db import make_engine, upgrade

    out = tmp_path / "od"
    opendata.build(data, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    wrong = make_engine(f"sqlite:///{tmp_path / 'typo.db'}")
    upgrade(wrong)
    with pytest.raises(opendata.EmptyChangeLog, match="请检查数据库地址"):
        opendata.build(wrong, out)
    wrong.dispose()
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    # a database that has published nothing builds where no files are yet
    assert opendata.build(make_engine(f"sqlite:///{tmp_path / 'typo.db'}"), tmp_path / "new")["seq"] == 0


def test_a_name_with_a_final_newline_is_not_a_download(data):
    """"$" matched before a final newline: `penalty.csv%0A` was served with the name in its
    Content-Disposition, which the server refused mid-response (behind nginx, three such
    requests marked every portal process failed)."""
    with api_client(data) as client:
        for bad in ("penalty.csv%0A", "penalty.ndjson%0A", "deltas/2026-01-01.ndjson%0A",
                    "snapshots/1%0A/penalty.csv.gz"):
            assert client.get(f"/open-data/{bad}").status_code == 404, bad
        r = client.get("/open-data/penalty.csv")
        assert r.headers["content-disposition"] == 'attachment; filename="penalty.csv"'
    with api_client(data) as client:
        assert client.get("/records/pn-0123456789abcdef%0A").status_code == 404
