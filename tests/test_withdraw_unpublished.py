"""A credit mark out of publication that the bureau withdraws (one superseded by a newer mark,
or one of a scheme published only as statistics, `public = false`: status aggregate) is
withdrawn, by a file's 撤销 row or by a snapshot that no longer holds it: quietly, since
nothing public changes, yet for good. A withdrawal of the newer mark does not restore it, the
statistics no longer count it, and a scheme made public again does not publish it. Checked in
the stored statuses, the change log and the public outputs, on SQLite and PostgreSQL.

A withdrawal of a record that was never published is rejected, naming the record: its key's
columns and cells as the file has them, as a duplicate's reject does."""

from __future__ import annotations

import pickle
from datetime import date

import pytest
from sqlalchemy import select

import publishing.publish as publish_module
from publishing.clean import Cleaner
from publishing.commit import RECORDS
from publishing.expire import expire
from publishing.plan import prepare
from publishing.publish import publish
from publishing.rows import SourceRow
from publishing.rules import DEFAULT_RULES_FILE, load_rules
from publishing.sources.headers import KeyMapper
from tests.factories import credit_mark_row, penalty_row, pledge_row, uscc, write_csv, write_ndjson
from tests.requests_support import wait_for
from tests.test_review_supersession import (
    HIDDEN,
    _changes,
    _head,
    _hide_risk_classes,
    _mark,
    _public,
    _statistics,
    reset_rules,  # noqa: F401 - fixture
)

LISTING = {"标注类型": "严重违法失信名单", "分类结果": ""}


def _publish(engine, tmp_path, name: str, *rows: dict[str, str], mode: str = "incremental") -> dict:
    path = write_csv(tmp_path / name, list(rows), header=list(rows[0]))
    result = publish([path], engine=engine, mode=mode, show_progress=False)
    assert result.published, result.as_json()
    return result.reports[0].counts


def _withdrawal(row: dict[str, str]) -> dict[str, str]:
    return {**row, "操作": "撤销"}


def _status(engine, record: str) -> str:
    with engine.connect() as conn:
        return conn.execute(select(RECORDS.c.status).where(RECORDS.c.id == record)).scalar_one()


# -- a superseded mark ----------------------------------------------------------------------------


def test_a_superseded_mark_withdrawn_by_a_file_is_not_restored(engine, client, tmp_path):
    older = credit_mark_row(1, 标注日期="2026-03-31", **LISTING)
    newer = credit_mark_row(1, 标注日期="2026-09-30", **LISTING)
    _publish(engine, tmp_path, "a.csv", older)
    assert _publish(engine, tmp_path, "b.csv", newer)["superseded"] == 1
    old, new = _mark(engine, 1, "2026-03-31"), _mark(engine, 1, "2026-09-30")
    head = _head(engine)

    counts = _publish(engine, tmp_path, "a_wd.csv", _withdrawal(older))
    assert (counts["withdrawn_quietly"], counts["withdrawn"], counts["unchanged"]) == (1, 0, 0)
    assert _status(engine, old) == "withdrawn" and _head(engine) == head  # nothing public changed
    assert _publish(engine, tmp_path, "a_wd2.csv", _withdrawal(older))["unchanged"] == 1

    counts = _publish(engine, tmp_path, "b_wd.csv", _withdrawal(newer))
    assert counts["withdrawn"] == 1 and not counts.get("restored")
    assert _status(engine, old) == "withdrawn"
    assert _public(client, old) is None and _public(client, new) is None
    assert _changes(client, head) == [(new, "withdraw")]


def test_a_superseded_mark_a_snapshot_leaves_out_is_not_restored(engine, client, tmp_path):
    older = credit_mark_row(2, 标注日期="2026-03-31", **LISTING)
    newer = credit_mark_row(2, 标注日期="2026-09-30", **LISTING)
    _publish(engine, tmp_path, "a.csv", older)
    _publish(engine, tmp_path, "b.csv", newer)
    old, new = _mark(engine, 2, "2026-03-31"), _mark(engine, 2, "2026-09-30")
    assert _status(engine, old) == "superseded"
    head = _head(engine)

    counts = _publish(engine, tmp_path, "s.csv", newer, mode="snapshot")
    assert (counts["withdrawn_quietly"], counts["withdrawn"], counts["unchanged"]) == (1, 0, 1)
    assert _status(engine, old) == "withdrawn" and _head(engine) == head

    _publish(engine, tmp_path, "b_wd.csv", _withdrawal(newer))
    assert _status(engine, old) == "withdrawn"
    assert _public(client, old) is None and _public(client, new) is None
    assert _changes(client, head) == [(new, "withdraw")]


# -- a statistics-only mark ----------------------------------------------------------------------


def test_statistics_only_marks_are_withdrawn_by_a_file_and_a_snapshot(
    engine, client, tmp_path, monkeypatch, reset_rules  # noqa: F811 - fixture
):
    _hide_risk_classes(tmp_path, monkeypatch)
    rows = [credit_mark_row(n, 分类结果=grade) for n, grade in ((3, "A"), (4, "B"), (5, "C"))]
    assert _publish(engine, tmp_path, "a.csv", *rows)["stored_aggregate"] == 3
    dropped, kept, withdrawn = (_mark(engine, n, "2026-01-10") for n in (3, 4, 5))
    assert _statistics(engine) == {HIDDEN: 3}
    head = _head(engine)

    counts = _publish(engine, tmp_path, "wd.csv", _withdrawal(rows[2]))
    assert (counts["withdrawn_quietly"], counts["withdrawn"], counts["unchanged"]) == (1, 0, 0)
    assert _status(engine, withdrawn) == "withdrawn" and _statistics(engine) == {HIDDEN: 2}
    counts = _publish(engine, tmp_path, "s.csv", rows[1], mode="snapshot")
    assert (counts["withdrawn_quietly"], counts["withdrawn"], counts["unchanged"]) == (1, 0, 1)
    assert _status(engine, dropped) == "withdrawn" and _statistics(engine) == {HIDDEN: 1}
    assert _head(engine) == head  # never published one by one: no change event

    # The scheme made public again publishes only the mark the bureau still holds.
    assert expire(engine, rules=load_rules(DEFAULT_RULES_FILE))["republished"] == 1
    assert _public(client, kept)["grade"] == "B"
    assert _public(client, dropped) is None and _public(client, withdrawn) is None
    assert _changes(client, head) == [(kept, "add")]


def test_a_running_portal_follows_statistics_changed_without_an_event(
    engine, client, tmp_path, monkeypatch, reset_rules  # noqa: F811 - fixture
):
    """The portal caches its figures per change; a statistics-only mark withdrawn writes no
    change event, yet the same (long-running) portal must stop counting it."""
    _hide_risk_classes(tmp_path, monkeypatch)
    rows = [credit_mark_row(n, 分类结果=grade) for n, grade in ((3, "A"), (4, "B"))]
    _publish(engine, tmp_path, "a.csv", *rows)

    def total() -> int:
        body = client.get("/api/v1/credit-marks/statistics").json()
        return sum(s["total"] for s in body["schemes"])

    assert total() == 2
    head = _head(engine)
    _publish(engine, tmp_path, "wd.csv", _withdrawal(rows[1]))
    assert _head(engine) == head  # no change event to go by
    assert wait_for(lambda: total() == 1, seconds=5.0)


# -- a record never published ---------------------------------------------------------------------

NEVER_PUBLISHED = "要撤销的记录未曾公示"


def _rejected(engine, path, **kw) -> list[dict]:
    result = publish([path], engine=engine, show_progress=False, **kw)
    assert not result.published
    return result.as_json()["rejected"]


@pytest.mark.parametrize("in_a_process", [False, True])
def test_withdrawing_a_penalty_never_published_names_its_decision(engine, tmp_path, monkeypatch,
                                                                   in_a_process):
    """The decision number as the file has it ([2026], not the stored 〔2026〕), also when a
    cleaning process of its own reads the file."""
    if in_a_process:
        monkeypatch.setattr(publish_module, "PARALLEL_MIN_BYTES", 0)
    rows = [penalty_row(1), penalty_row(2, 行政处罚决定书文号="烟芝市监罚[2026]2号", 操作="撤销")]
    path = write_csv(tmp_path / "p.csv", rows, header=[*rows[0], "操作"])
    assert _rejected(engine, path) == [{"row": 3, "column": "行政处罚决定书文号",
                                        "value": "烟芝市监罚[2026]2号", "reason": NEVER_PUBLISHED}]


def test_withdrawing_a_mark_never_published_names_its_key(engine, tmp_path):
    row = _withdrawal(credit_mark_row(5, 监管领域="食品"))
    path = write_csv(tmp_path / "c.csv", [row], header=list(row))
    (reject,) = _rejected(engine, path)
    assert reject["column"] == "统一社会信用代码 / 标注类型 / 监管领域"
    assert reject["value"] == f"{uscc(5)} / 信用风险分类 / 食品"
    assert reject["reason"] == NEVER_PUBLISHED


def test_a_pledge_withdrawn_by_its_status_names_its_key(engine, tmp_path):
    path = write_ndjson(tmp_path / "r.ndjson", [pledge_row(5, status="撤销")])
    (reject,) = _rejected(engine, path)
    assert (reject["column"], reject["value"], reject["reason"]) == \
        ("uscc / address", f"{uscc(5)} / 烟台开发区长江路5号", NEVER_PUBLISHED)


def test_a_withdrawals_key_crosses_the_pipe():
    """A cleaning process that makes the stored form sends the key cells along."""
    mapper = KeyMapper("penalty")
    cleaner = Cleaner("penalty", date(2026, 11, 27), "p.csv",
                      headers={"decision_no": "决定书文号", "op": "操作"})

    def cleaned(row: dict[str, str]):
        return cleaner.clean(SourceRow("p.csv", 2, {k: v for h, v in row.items()
                                                    if (k := mapper.classify(h))}))

    clean = cleaned(penalty_row(6, 行政处罚决定书文号="烟芝市监罚[2026]6号", 操作="撤销"))
    prepared = prepare(clean, load_rules())
    assert prepared.key_cells == ("决定书文号", "烟芝市监罚[2026]6号")
    packed = pickle.loads(pickle.dumps(publish_module._pack(prepared), pickle.HIGHEST_PROTOCOL))
    assert publish_module._unpack(packed) == prepared
    assert prepare(cleaned(penalty_row(7)), load_rules()).key_cells is None  # an upsert's: none
