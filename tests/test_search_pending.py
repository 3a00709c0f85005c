"""A superseded credit mark withdrawn by a file's 撤销 row or left out of a snapshot writes no
change event (nothing public changed), yet its entity is merged again without it: the writer
notes the record in search_pending, the search sync refreshes the entity's document and deletes
the note, and a rebuild clears the notes it covers. Through the embedded index and the public
search API, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from publishing.commit import EVENTS, PENDING
from publishing.publish import publish
from publishing.search.sync import reindex, sync
from tests.factories import credit_mark_row, uscc, write_csv
from tests.test_cli import cli

FORMER, CURRENT = "烟台旧名九十有限公司", "烟台新名九十有限公司"
ENTITY = uscc(90)
OLDER = credit_mark_row(90, 主体名称=FORMER, 标注日期="2025-01-10")
NEWER = credit_mark_row(90, 主体名称=CURRENT, 分类结果="C", 标注日期="2026-01-10")


def _publish(engine, tmp_path, name: str, row: dict[str, str], mode: str = "incremental") -> dict:
    path = write_csv(tmp_path / name, [row], header=list(row))
    result = publish([path], engine=engine, mode=mode, show_progress=False)
    assert result.published, result.as_json()
    return result.reports[0].counts


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _found(client, name: str) -> bool:
    hits = client.get("/api/v1/search", params={"q": name}).json()["hits"]
    return f"/entities/{ENTITY}" in {h["url"] for h in hits}


def _superseded_then_withdrawn(engine, tmp_path, client, how: str) -> None:
    """The entity found by the name only its older, superseded mark gave it; then that mark
    withdrawn quietly, by a file's 撤销 row or by a snapshot holding only the newer mark."""
    _publish(engine, tmp_path, "a.csv", OLDER)
    assert _publish(engine, tmp_path, "b.csv", NEWER)["superseded"] == 1
    sync(engine)
    assert _found(client, FORMER) and _count(engine, PENDING) == 0
    events = _count(engine, EVENTS)
    if how == "file":
        counts = _publish(engine, tmp_path, "a_wd.csv", {**OLDER, "操作": "撤销"})
    else:
        counts = _publish(engine, tmp_path, "s.csv", NEWER, mode="snapshot")
    assert counts["withdrawn"] == 1
    assert _count(engine, EVENTS) == events  # nothing public changed: no event
    assert _count(engine, PENDING) == 1  # noted in the publish's transaction


@pytest.mark.parametrize("how", ["file", "snapshot"])
def test_sync_refreshes_the_entity_of_a_mark_withdrawn_without_an_event(
    engine, client, tmp_path, how
):
    _superseded_then_withdrawn(engine, tmp_path, client, how)
    assert sync(engine) == 0  # no event to apply, yet the note is
    assert not _found(client, FORMER)
    assert _found(client, CURRENT)
    assert _count(engine, PENDING) == 0
    sync(engine)  # nothing left to apply again
    assert not _found(client, FORMER) and _found(client, CURRENT)


def test_a_rebuild_clears_the_notes_it_covers(engine, client, tmp_path):
    _superseded_then_withdrawn(engine, tmp_path, client, "file")
    reindex(engine)
    assert _count(engine, PENDING) == 0
    assert not _found(client, FORMER) and _found(client, CURRENT)


def test_the_publish_command_syncs_a_withdrawal_without_an_event(
    engine, database_url, client, tmp_path
):
    """`disclosure publish` brings search up to date after it, also when the publication
    wrote no change event but withdrew a record quietly."""
    _publish(engine, tmp_path, "a.csv", OLDER)
    _publish(engine, tmp_path, "b.csv", NEWER)
    sync(engine)
    assert _found(client, FORMER)
    row = {**OLDER, "操作": "撤销"}
    run = cli(database_url, "publish", str(write_csv(tmp_path / "a_wd.csv", [row], header=list(row))),
              tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "撤回 1" in run.stdout, run.stdout
    assert _count(engine, PENDING) == 0
    assert not _found(client, FORMER) and _found(client, CURRENT)
