"""`disclosure scrub`: personal data stored under older cleaning rules leaves every output.

Published through the real pipeline, then personal data is planted the way an older release
stored it (records.data and entity rows written directly, the search index and the open-data
files built from them); the command runs as a user runs it (a real process), and every output is
read through the portal, the CLI and the files on disk.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from sqlalchemy import delete, func, insert, select, update

from publishing import opendata
from publishing.codes import reg_no_check_ok, reg_no_is_id_like
from publishing.commit import ENTITIES, EVENTS, RECORDS
from publishing.models import Batch
from publishing.publish import publish
from publishing.search import SearchQuery, get_backend
from publishing.search.sync import reindex
from tests.factories import credit_mark_row, penalty_row, resident_id, uscc, write_csv
from tests.requests_support import make_client
from tests.test_cli import cli

BATCHES = Batch.__table__
PERSON_ID = resident_id("19800118", "123")
MOBILE = "13812345678"
BANK = "6222021234567890123"
FACTS = f"当事人法定代表人身份证{PERSON_ID}，手机{MOBILE}，收款账号{BANK}，经营超过保质期的食品。"


def _reg_no(prefix: str, id_like: bool) -> str:
    """A 15-digit 注册号 passing the GS 15 check (id_like False), or an old resident ID number
    that does not (id_like True: what the cleaner now rejects as personal data)."""
    for n in range(1000):
        code = f"{prefix}{n:03d}"
        if reg_no_is_id_like(code) if id_like else reg_no_check_ok(code):
            return code
    raise AssertionError(prefix)


REG_NO = _reg_no("370602000000", id_like=False)
ID_KEY = _reg_no("370602800118", id_like=True)  # born 1980-01-18
SECRETS = (PERSON_ID, MOBILE, BANK, ID_KEY)


def _publish(engine, path: Path) -> None:
    result = publish([path], engine=engine, show_progress=False)
    assert result.published, result.as_json()


def _record_id(engine, **where) -> str:
    query = select(RECORDS.c.id).where(*(RECORDS.c[k] == v for k, v in where.items()))
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()


def _plant(engine, record_id: str, **fields) -> None:
    """Store personal data in a record's data, as an older release stored it."""
    with engine.begin() as conn:
        data = conn.execute(select(RECORDS.c.data).where(RECORDS.c.id == record_id)).scalar_one()
        conn.execute(update(RECORDS).where(RECORDS.c.id == record_id)
                     .values(data={**data, **fields}))


def _rekey(engine, record_id: str, old: str, new: str) -> None:
    """The record's entity keyed by `new` (an ID number an older release took for a 注册号)."""
    with engine.begin() as conn:
        ent = conn.execute(select(ENTITIES).where(ENTITIES.c.id == old)).mappings().one()
        conn.execute(insert(ENTITIES).values({**ent, "id": new, "reg_no": new}))
        data = conn.execute(select(RECORDS.c.data).where(RECORDS.c.id == record_id)).scalar_one()
        conn.execute(update(RECORDS).where(RECORDS.c.id == record_id)
                     .values(entity_id=new, data={**data, "reg_no": new}))
        conn.execute(update(EVENTS).where(EVENTS.c.record_id == record_id).values(entity_id=new))
        conn.execute(delete(ENTITIES).where(ENTITIES.c.id == old))


@pytest.fixture
def planted(engine, tmp_path) -> dict[str, str]:
    """Published records of every state, with personal data planted; the search index and the
    open-data files built from the planted data (as they were before the rules changed)."""
    expired = penalty_row(2, 处罚决定日期="2025-01-10", 公示截止日期="2026-01-10")
    keyed = penalty_row(3, 统一社会信用代码="", 注册号=REG_NO)
    _publish(engine, write_csv(tmp_path / "p.csv", [penalty_row(1), expired, keyed],
                               header=[*expired, "注册号"]))
    _publish(engine, write_csv(tmp_path / "m1.csv", [credit_mark_row(4)]))
    _publish(engine, write_csv(tmp_path / "m2.csv", [credit_mark_row(4, 标注日期="2026-03-10")]))
    ids = {
        "active": _record_id(engine, entity_id=uscc(1)),
        "expired": _record_id(engine, entity_id=uscc(2)),
        "keyed": _record_id(engine, entity_id=REG_NO),
        "superseded": _record_id(engine, entity_id=uscc(4), status="superseded"),
        "mark": _record_id(engine, entity_id=uscc(4), status="active"),
    }
    _plant(engine, ids["active"], facts=FACTS, legal_rep=f"张三（手机{MOBILE}）")
    with engine.begin() as conn:  # uscc(4): no record of it in publication changes
        conn.execute(update(ENTITIES).where(ENTITIES.c.id.in_([uscc(1), uscc(4)]))
                     .values(legal_rep=f"张三（手机{MOBILE}）"))
    _plant(engine, ids["expired"], facts=FACTS)
    _plant(engine, ids["superseded"], reason=f"联系人手机{MOBILE}")
    _rekey(engine, ids["keyed"], REG_NO, ID_KEY)
    reindex(engine)
    opendata.build(engine)
    return ids


def _state(engine) -> dict:
    """Everything scrub may write: records, entities, events, batches."""
    with engine.connect() as conn:
        return {
            "records": [tuple(r) for r in conn.execute(select(RECORDS).order_by(RECORDS.c.id))],
            "entities": [tuple(r) for r in conn.execute(select(ENTITIES).order_by(ENTITIES.c.id))],
            "events": conn.execute(select(func.count()).select_from(EVENTS)).scalar_one(),
            "batches": conn.execute(select(func.count()).select_from(BATCHES)).scalar_one(),
        }


def _snapshot_text(tmp_path: Path) -> str:
    out = tmp_path / "var" / "opendata"
    index = opendata.load_index(out)
    assert index is not None
    files = [out / f["path"] for f in index["files"]]
    return "".join(gzip.decompress(p.read_bytes()).decode() if p.suffix == ".gz"
                   else p.read_text(encoding="utf-8") for p in files)


def _outputs(client, engine, database_url, tmp_path, ids) -> dict[str, str]:
    """Every public output, as text."""
    out = {
        f"{path} {kind}": client.get(path).text
        for kind, rid in ids.items()
        for path in (f"/records/{rid}", f"/api/v1/records/{rid}")
    }
    for path in ("/entities/" + uscc(1), "/api/v1/entities/" + uscc(1),
                 "/api/v1/changes?since=0", "/feeds/all.atom", "/feeds/penalty.rss",
                 "/feeds/credit_mark.atom", "/open-data/penalty.csv", "/open-data/penalty.ndjson",
                 "/open-data/credit_mark.ndjson"):
        out[path] = client.get(path).text
    # Answers that repeat the question (a search, a profile asked for by code) count only for
    # what they found.
    index = get_backend(engine)  # the embedded index: its documents, whole
    for q in ("烟台市芝罘区测试", "烟台测试4有限公司", *SECRETS):
        out[f"search {q}"] = json.dumps(
            client.get("/api/v1/search", params={"q": q}).json()["hits"], ensure_ascii=False)
        hits = index.search(SearchQuery(q=q, limit=50)).hits
        out[f"index {q}"] = json.dumps([h.doc for h in hits], ensure_ascii=False, default=str)
        if q in SECRETS:  # found by it: the index still holds it, whatever the hit shows
            out[f"found by {q}"] = q if hits else ""
    profile = client.get("/api/v1/entities/" + ID_KEY)
    out["profile of the ID key"] = profile.text if profile.status_code == 200 else ""
    for kind in ("penalty", "credit_mark"):
        export = cli(database_url, "export", "--kind", kind, tmp_path=tmp_path)
        assert export.returncode == 0, export.stderr
        out[f"export {kind}"] = export.stdout
    out["open-data files"] = _snapshot_text(tmp_path)
    return out


def _leaks(outputs: dict[str, str]) -> list[tuple[str, str]]:
    return [(where, s) for where, text in outputs.items() for s in SECRETS if s in text]


def test_scrub_removes_planted_personal_data_from_every_output(
    engine, database_url, tmp_path, planted
):
    ids = planted
    with make_client(engine) as client:
        before = _outputs(client, engine, database_url, tmp_path, ids)
        checked = client.get("/api/v1/credit-check", params={"uscc": ID_KEY}).json()
        assert checked["results"][0]["known"] is True
    # the planted data is out there: in pages, search, exports and the open-data files
    leaked_in = {where for where, _ in _leaks(before)}
    assert {f"/records/{ids['active']} active", "export penalty", "open-data files",
            f"search {MOBILE}", f"search {ID_KEY}", f"found by {MOBILE}",
            "profile of the ID key"} <= leaked_in, leaked_in

    # --dry-run: says what would change, writes nothing; the report names no value
    state = _state(engine)
    report = tmp_path / "dry.json"
    dry = cli(database_url, "scrub", "--dry-run", "--report", str(report), tmp_path=tmp_path)
    assert dry.returncode == 1, dry.stderr  # an ID number is an entity key: the operator's
    assert "未写入" in dry.stdout and ids["active"] in dry.stdout
    assert _state(engine) == state
    planned = json.loads(report.read_text(encoding="utf-8"))
    actions = {(i["id"], i["field"]): i["action"] for i in planned["items"]}
    assert actions == {
        (ids["active"], "facts"): "new_version",
        (ids["active"], "legal_rep"): "new_version",
        (ids["expired"], "facts"): "mask_in_place",
        (ids["superseded"], "reason"): "mask_in_place",
        (ids["keyed"], "entity_id"): "withdraw",
        (ids["keyed"], "reg_no"): "withdraw",
        (uscc(1), "legal_rep"): "mask_in_place",
        (uscc(4), "legal_rep"): "mask_in_place",
        ("370602*****" + ID_KEY[-4:], "reg_no"): "mask_in_place",
    }
    assert [(a["id"], a["field"]) for a in planned["attention"]] == [
        ("370602*****" + ID_KEY[-4:], "id")]
    for text in (report.read_text(encoding="utf-8"), dry.stdout, dry.stderr):
        assert not [s for s in SECRETS if s in text]

    run = cli(database_url, "scrub", "--report", str(report), tmp_path=tmp_path)
    assert run.returncode == 1, run.stderr
    assert "需人工处理" in run.stderr
    done = json.loads(report.read_text(encoding="utf-8"))
    assert done["items"] == planned["items"] and done["events"] == 2
    with engine.connect() as conn:
        events = conn.execute(select(EVENTS.c.record_id, EVENTS.c.op, EVENTS.c.version,
                                     EVENTS.c.reason).where(EVENTS.c.batch_id == done["batch_id"])
                              .order_by(EVENTS.c.record_id)).all()
        rows = {r.id: r for r in conn.execute(select(RECORDS))}
        entity_rows = conn.execute(select(ENTITIES)).mappings().all()
    assert sorted(map(tuple, events)) == sorted([(ids["active"], "change", 2, "scrub"),
                                                 (ids["keyed"], "withdraw", 2, "scrub")])
    assert (rows[ids["keyed"]].status, rows[ids["keyed"]].status_reason) == ("withdrawn", "scrub")
    assert rows[ids["expired"]].status == "expired" and rows[ids["expired"]].version == 1
    assert "138****5678" in rows[ids["active"]].data["facts"]
    # stored data holds no personal data but the key the operator is told about
    stored = json.dumps([r.data for r in rows.values()], ensure_ascii=False) + json.dumps(
        [{k: v for k, v in e.items() if k != "id"} for e in entity_rows], default=str,
        ensure_ascii=False)
    assert not [s for s in SECRETS if s in stored]

    with make_client(engine) as client:
        after = _outputs(client, engine, database_url, tmp_path, ids)
        assert client.get(f"/records/{ids['keyed']}").status_code == 410
        assert client.get("/entities/" + ID_KEY).status_code == 404
        checked = client.get("/api/v1/credit-check", params={"uscc": ID_KEY}).json()
        assert checked["results"][0]["known"] is False, checked
        assert "138****5678" in client.get(f"/records/{ids['active']}").text
    assert _leaks(after) == []
    assert f"records/{ids['active']}/v2" in after["/feeds/all.atom"]  # the masked version

    # twice: nothing to do, nothing written (the entity key is still reported)
    state = _state(engine)
    again = cli(database_url, "scrub", "--report", str(report), tmp_path=tmp_path)
    assert again.returncode == 1, again.stderr
    assert json.loads(report.read_text(encoding="utf-8"))["items"] == []
    assert _state(engine) == state


def test_a_scrubbed_superseded_mark_comes_back_masked(engine, database_url, tmp_path, planted):
    """A superseded mark is published again, as stored, when the newer one is withdrawn."""
    assert cli(database_url, "scrub", tmp_path=tmp_path).returncode == 1
    withdraw = credit_mark_row(4, 标注日期="2026-03-10", 操作="撤销")
    _publish(engine, write_csv(tmp_path / "w.csv", [withdraw]))
    with make_client(engine) as client:
        page = client.get(f"/records/{planted['superseded']}")
    assert page.status_code == 200
    assert "138****5678" in page.text and MOBILE not in page.text


def test_scrub_without_personal_data_writes_nothing(engine, database_url, tmp_path):
    _publish(engine, write_csv(tmp_path / "p.csv", [penalty_row(1)]))
    state = _state(engine)
    run = cli(database_url, "scrub", tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "未发现" in run.stdout
    assert _state(engine) == state
    unwritable = cli(database_url, "scrub", "--report", str(tmp_path / "no" / "r.json"),
                     tmp_path=tmp_path)
    assert unwritable.returncode == 2 and "无法写入" in unwritable.stderr


def test_open_data_built_before_a_scrub_is_not_served_unmasked(engine, planted):
    """Between the scrub's commit and the next open-data build (its own rebuild can fail), the
    files built from the unmasked content must not be served as they are."""
    from publishing.scrub import scrub

    scrub(engine)  # the scrub alone: no rebuild of search or open data
    with make_client(engine) as client:
        served = "".join(client.get(f"/open-data/penalty.{fmt}").text for fmt in ("csv", "ndjson"))
    assert served and not [s for s in (PERSON_ID, MOBILE, BANK) if s in served]
