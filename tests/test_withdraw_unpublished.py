"""A credit mark out of publication that the bureau withdraws (one superseded by a newer mark,
or one of a scheme published only as statistics, `public = false`: status aggregate) is
withdrawn, by a file's 撤销 row or by a snapshot that no longer holds it: quietly, since
nothing public changes, yet for good. A withdrawal of the newer mark does not restore it, the
statistics no longer count it, and a scheme made public again does not publish it. Checked in
the stored statuses, the change log and the public outputs, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from publishing.commit import RECORDS
from publishing.expire import expire
from publishing.publish import publish
from publishing.rules import DEFAULT_RULES_FILE, load_rules
from tests.factories import credit_mark_row, write_csv
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
    assert (counts["withdrawn"], counts["unchanged"]) == (1, 0)
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
    assert (counts["withdrawn"], counts["unchanged"]) == (1, 1)
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
    assert (counts["withdrawn"], counts["unchanged"]) == (1, 0)
    assert _status(engine, withdrawn) == "withdrawn" and _statistics(engine) == {HIDDEN: 2}
    counts = _publish(engine, tmp_path, "s.csv", rows[1], mode="snapshot")
    assert (counts["withdrawn"], counts["unchanged"]) == (1, 1)
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
