"""A credit mark corrected on an upheld objection takes the place among its scheme's marks that
the publication of files would give it: a corrected 标注日期 can make it older than the mark it
had superseded (which is current again) or newer than the one that superseded it; a corrected
标注类型 moves it to that scheme's marks (superseding or superseded there, and the mark it had
superseded in the old scheme current again), out of publication into the statistics when that
scheme is published only as statistics (`public = false`), and back out of them. Checked in the
public outputs (record pages, API, change log, statistics), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from publishing import users
from publishing.commit import EVENTS, RECORDS
from publishing.expire import expire
from publishing.publish import publish
from publishing.rules import load_rules
from tests.api_helpers import api_client
from tests.factories import credit_mark_row, uscc, write_csv
from tests.requests_support import submit_request
from tests.test_scheme_statistics import hide_scheme

PASSWORD = "correct horse battery staple"
HIDDEN = "信用风险分类"  # published only as statistics where the rules say so (hidden_rules)
HEADER = [*credit_mark_row(1), "有效期至"]


@pytest.fixture
def bearer(engine):
    users.add_user(engine, "wang", "approver", PASSWORD)
    return {"Authorization": f"Bearer {users.new_token(engine, 'wang')}"}


def _hide_risk_classes(tmp_path, monkeypatch) -> None:
    """Rules (DISCLOSURE_RULES_FILE) that publish 信用风险分类 only as statistics."""
    hide_scheme(tmp_path, monkeypatch, HIDDEN)


@pytest.fixture
def reset_rules():
    yield
    load_rules.cache_clear()


def _publish(engine, tmp_path, name: str, *rows: dict[str, str]) -> dict:
    result = publish([write_csv(tmp_path / name, list(rows), header=HEADER)], engine=engine,
                     show_progress=False)
    assert result.published, result.as_json()
    return result.reports[0].counts


def _mark(engine, n: int, marked_on: str) -> str:
    """The id of entity n's mark of that 标注日期."""
    with engine.connect() as conn:
        return conn.execute(select(RECORDS.c.id).where(
            RECORDS.c.entity_id == uscc(n),
            RECORDS.c.event_date == date.fromisoformat(marked_on))).scalar_one()


def _correct(client, bearer, tracking: str, corrections: dict) -> dict:
    done = client.post(
        f"/api/v1/review/requests/{tracking}/decision",
        json={"decision": "approve", "outcome": "correct", "reason": "异议成立，予以更正。",
              "corrections": corrections},
        headers=bearer,
    )
    assert done.status_code == 200, done.text
    return done.json()


def _public(client, record: str) -> dict | None:
    """The record as the API gives it, None when it is not published."""
    response = client.get(f"/api/v1/records/{record}")
    if response.status_code == 410:
        assert client.get(f"/records/{record}").status_code == 410
        return None
    assert response.status_code == 200, response.text
    return response.json()["record"]


def _events(engine, record: str) -> list[tuple]:
    with engine.connect() as conn:
        query = (select(EVENTS.c.op, EVENTS.c.reason).where(EVENTS.c.record_id == record)
                 .order_by(EVENTS.c.seq))
        return [tuple(e) for e in conn.execute(query)]


def _changes(client, since: int) -> list[tuple]:
    body = client.get("/api/v1/changes", params={"since": since}).json()
    return [(c["record_id"], c["op"]) for c in body["changes"]]


def _head(engine) -> int:
    with engine.connect() as conn:
        return max(conn.execute(select(EVENTS.c.seq)).scalars(), default=0)


def _statistics(engine) -> dict[str, int]:
    """Scheme → marks counted in the statistics (a fresh portal: its figures are cached)."""
    with api_client(engine) as client:
        body = client.get("/api/v1/credit-marks/statistics").json()
    return {s["scheme"]: s["total"] for s in body["schemes"]}


# -- a corrected 标注日期 -------------------------------------------------------------------------


def test_a_mark_corrected_to_an_older_date_gives_way_to_the_mark_it_superseded(
    engine, client, bearer, tmp_path
):
    _publish(engine, tmp_path, "a.csv", credit_mark_row(70, 分类结果="B", 标注日期="2024-01-01"))
    newer = credit_mark_row(70, 分类结果="C", 标注日期="2025-03-01")
    assert _publish(engine, tmp_path, "b.csv", newer)["superseded"] == 1
    old, new = _mark(engine, 70, "2024-01-01"), _mark(engine, 70, "2025-03-01")
    assert _public(client, old) is None and _public(client, new)["grade"] == "C"

    # Still the newer of the two: only the corrected mark changes.
    _correct(client, bearer, submit_request(engine, "objection", new, uscc(70)),
             {"marked_on": "2025-02-01"})
    assert _public(client, new)["marked_on"] == "2025-02-01"
    assert _public(client, old) is None and _events(engine, old) == [("add", None),
                                                                     ("withdraw", "superseded")]
    # Older than the mark it superseded: that one is the entity's current mark again.
    head = _head(engine)
    done = _correct(client, bearer, submit_request(engine, "objection", new, uscc(70)),
                    {"marked_on": "2023-06-01"})
    assert done["records"][0]["after"]["status"] == "superseded"
    assert _public(client, new) is None
    assert _public(client, old)["grade"] == "B"
    assert sorted(_changes(client, head)) == sorted([(new, "withdraw"), (old, "add")])
    assert _events(engine, new)[-1] == ("withdraw", "superseded")
    profile = client.get(f"/api/v1/entities/{uscc(70)}").json()
    assert [r["id"] for r in profile["records"]["credit_mark"]] == [old]


def test_a_superseded_mark_corrected_to_a_newer_date_supersedes_the_other(
    engine, client, bearer, tmp_path
):
    _publish(engine, tmp_path, "a.csv", credit_mark_row(71, 分类结果="B", 标注日期="2024-01-01"))
    old = _mark(engine, 71, "2024-01-01")
    tracking = submit_request(engine, "objection", old, uscc(71))  # while it was published
    _publish(engine, tmp_path, "b.csv", credit_mark_row(71, 分类结果="C", 标注日期="2025-03-01"))
    new = _mark(engine, 71, "2025-03-01")
    assert _public(client, old) is None
    head = _head(engine)
    done = _correct(client, bearer, tracking, {"marked_on": "2025-06-01"})
    assert done["records"][0]["after"]["status"] == "active"
    assert _public(client, old)["marked_on"] == "2025-06-01"
    assert _public(client, new) is None
    assert sorted(_changes(client, head)) == sorted([(old, "add"), (new, "withdraw")])


def test_a_mark_corrected_to_have_ended_still_supersedes_the_older_one(
    engine, client, bearer, tmp_path
):
    """A corrected 有效期至 in the past ends the newer mark; the older one it superseded stays
    superseded, as when a file brings the newer mark already ended (plan.SUPERSEDING)."""
    listing = {"标注类型": "经营异常名录", "分类结果": ""}
    _publish(engine, tmp_path, "a.csv", credit_mark_row(74, 标注日期="2025-03-01", **listing))
    _publish(engine, tmp_path, "b.csv",
             credit_mark_row(74, 标注日期="2026-01-01", 有效期至="2027-06-30", **listing))
    old, new = _mark(engine, 74, "2025-03-01"), _mark(engine, 74, "2026-01-01")
    assert _public(client, old) is None
    head = _head(engine)
    done = _correct(client, bearer, submit_request(engine, "objection", new, uscc(74)),
                    {"valid_until": "2026-06-30"})
    assert done["records"][0]["after"]["status"] == "expired"
    assert _public(client, new) is None and _public(client, old) is None
    assert _changes(client, head) == [(new, "expire")]
    assert _events(engine, old) == [("add", None), ("withdraw", "superseded")]


# -- a corrected 标注类型 -------------------------------------------------------------------------


def test_a_mark_corrected_into_a_statistics_only_scheme_leaves_publication(
    engine, client, bearer, tmp_path, monkeypatch, reset_rules
):
    _hide_risk_classes(tmp_path, monkeypatch)
    listing = {"标注类型": "经营异常名录", "分类结果": ""}
    _publish(engine, tmp_path, "a.csv", credit_mark_row(72, 标注日期="2025-01-01", **listing))
    _publish(engine, tmp_path, "b.csv", credit_mark_row(72, 标注日期="2026-01-10", **listing))
    old, mark = _mark(engine, 72, "2025-01-01"), _mark(engine, 72, "2026-01-10")
    assert _public(client, old) is None and _statistics(engine) == {}
    head = _head(engine)
    done = _correct(client, bearer, submit_request(engine, "objection", mark, uscc(72)),
                    {"scheme": HIDDEN, "grade": "B"})
    # Counted in the statistics only, announced as leaving publication; the older listing,
    # which it had superseded in its former scheme, is the entity's current mark again.
    assert done["records"][0]["after"]["status"] == "aggregate"
    assert _public(client, mark) is None and _statistics(engine) == {HIDDEN: 1}
    assert _events(engine, mark)[-1] == ("withdraw", "aggregate")
    assert _public(client, old)["scheme"] == "经营异常名录"
    assert sorted(_changes(client, head)) == sorted([(mark, "withdraw"), (old, "add")])
    # It left the listings' group: a newer listing supersedes the older one, not it.
    _publish(engine, tmp_path, "c.csv", credit_mark_row(72, 标注日期="2026-02-01", **listing))
    assert _public(client, old) is None and _statistics(engine) == {HIDDEN: 1}


def test_a_mark_corrected_out_of_a_statistics_only_scheme_is_published(
    engine, client, bearer, tmp_path, monkeypatch, reset_rules
):
    rows = [credit_mark_row(73, 分类结果="C", 标注日期="2026-01-10"),
            credit_mark_row(73, 标注类型="严重违法失信名单", 分类结果="", 标注日期="2025-05-01")]
    _publish(engine, tmp_path, "a.csv", *rows)
    mark, listed = _mark(engine, 73, "2026-01-10"), _mark(engine, 73, "2025-05-01")
    tracking = submit_request(engine, "objection", mark, uscc(73))  # while it was published
    _hide_risk_classes(tmp_path, monkeypatch)
    assert expire(engine)["aggregate"] == 1  # the bureau applies its new rules
    assert _public(client, mark) is None and _statistics(engine) == {HIDDEN: 1}
    head = _head(engine)
    done = _correct(client, bearer, tracking, {"scheme": "严重违法失信名单", "grade": ""})
    # Published again, as the newer mark of its new scheme: the older one is superseded.
    assert done["records"][0]["after"]["status"] == "active"
    assert _public(client, mark)["scheme"] == "严重违法失信名单"
    assert _public(client, listed) is None and _statistics(engine) == {}
    assert sorted(_changes(client, head)) == sorted([(mark, "add"), (listed, "withdraw")])
    assert _events(engine, listed)[-1] == ("withdraw", "superseded")


# -- the same file published again --------------------------------------------------------------


def _withdraw(client, bearer, tracking: str) -> dict:
    done = client.post(
        f"/api/v1/review/requests/{tracking}/decision",
        json={"decision": "approve", "outcome": "withdraw", "reason": "异议成立，予以撤下。"},
        headers=bearer,
    )
    assert done.status_code == 200, done.text
    return done.json()


def test_a_corrected_mark_sent_again_supersedes_nothing(engine, client, bearer, tmp_path):
    """The file's uncorrected row is held back: it must not supersede the current mark of the
    group the correction took the mark out of."""
    newer = credit_mark_row(74, 分类结果="C", 标注日期="2025-06-30")
    _publish(engine, tmp_path, "a.csv", credit_mark_row(74, 分类结果="B", 标注日期="2025-03-31"))
    _publish(engine, tmp_path, "b.csv", newer)
    old, new = _mark(engine, 74, "2025-03-31"), _mark(engine, 74, "2025-06-30")
    _correct(client, bearer, submit_request(engine, "objection", new, uscc(74)),
             {"domain": "食品生产"})
    assert _public(client, new)["domain"] == "食品生产"
    assert _public(client, old)["grade"] == "B"  # current again: the corrected mark left
    head = _head(engine)
    assert _publish(engine, tmp_path, "b2.csv", newer)["held"] == 1
    assert _public(client, old)["grade"] == "B" and _public(client, new)["domain"] == "食品生产"
    assert _head(engine) == head


@pytest.mark.parametrize("correction", [{"domain": "食品生产"}, {"marked_on": "2025-04-30"}],
                         ids=["domain", "date"])
def test_the_platforms_export_with_the_corrected_values_is_the_corrected_mark(
    engine, client, bearer, tmp_path, correction
):
    """A mark's id is made of its scheme, domain and date, and a correction keeps the id: the
    export with the corrected values (another id) was added as a second current mark of the
    same group and date, beside the corrected one."""
    _publish(engine, tmp_path, "a.csv", credit_mark_row(78, 分类结果="B", 标注日期="2025-03-31"))
    mark = _mark(engine, 78, "2025-03-31")
    _correct(client, bearer, submit_request(engine, "objection", mark, uscc(78)), correction)
    fixed = {"domain": {"监管领域": "食品生产"}, "marked_on": {"标注日期": "2025-04-30"}}
    [column] = correction
    head = _head(engine)
    counts = _publish(engine, tmp_path, "b.csv",
                      credit_mark_row(78, 分类结果="B", 标注日期="2025-03-31") | fixed[column])
    assert (counts["held"], counts["added"]) == (1, 0)
    with engine.connect() as conn:
        assert conn.execute(select(RECORDS.c.id).where(RECORDS.c.entity_id == uscc(78))).scalars().all() \
            == [mark]
    assert _public(client, mark)["grade"] == "B" and _head(engine) == head


def test_a_mark_withdrawn_on_request_sent_again_supersedes_nothing(
    engine, client, bearer, tmp_path
):
    newer = credit_mark_row(75, 分类结果="C", 标注日期="2025-06-30")
    _publish(engine, tmp_path, "b.csv", newer)
    new = _mark(engine, 75, "2025-06-30")
    _withdraw(client, bearer, submit_request(engine, "objection", new, uscc(75)))
    assert _publish(engine, tmp_path, "a.csv",
                    credit_mark_row(75, 分类结果="B", 标注日期="2025-03-31"))["added"] == 1
    old = _mark(engine, 75, "2025-03-31")
    head = _head(engine)
    assert _publish(engine, tmp_path, "b2.csv", newer)["held"] == 1
    assert _public(client, old)["grade"] == "B" and _public(client, new) is None
    assert _head(engine) == head


def test_a_corrected_mark_sent_again_returns_among_the_marks_of_its_corrected_group(
    engine, client, bearer, tmp_path
):
    """Corrected into a group with a newer mark, it is superseded there; the file that brings
    it back (uncorrected: its former group) leaves it so, beside that newer mark."""
    food = credit_mark_row(76, 分类结果="C", 监管领域="食品生产", 标注日期="2025-06-30")
    general = credit_mark_row(76, 分类结果="B", 标注日期="2025-03-31")
    _publish(engine, tmp_path, "a.csv", food)
    _publish(engine, tmp_path, "b.csv", general)
    newer, mark = _mark(engine, 76, "2025-06-30"), _mark(engine, 76, "2025-03-31")
    done = _correct(client, bearer, submit_request(engine, "objection", mark, uscc(76)),
                    {"domain": "食品生产"})
    assert done["records"][0]["after"]["status"] == "superseded"
    head = _head(engine)
    assert _publish(engine, tmp_path, "b2.csv", general)["held"] == 1
    assert _public(client, mark) is None and _public(client, newer)["grade"] == "C"
    assert _head(engine) == head


# -- a current mark withdrawn on request ----------------------------------------------------------


def test_a_wrong_mark_withdrawn_on_an_objection_gives_way_to_the_mark_it_superseded(
    engine, client, bearer, tmp_path
):
    """The objection says the newer mark was wrong: it never should have superseded the older
    one, which is current again, as when a file withdraws the newer mark."""
    _publish(engine, tmp_path, "a.csv", credit_mark_row(80, 分类结果="B", 标注日期="2024-01-01"))
    _publish(engine, tmp_path, "b.csv", credit_mark_row(80, 分类结果="D", 标注日期="2025-03-01"))
    old, new = _mark(engine, 80, "2024-01-01"), _mark(engine, 80, "2025-03-01")
    head = _head(engine)
    done = _withdraw(client, bearer, submit_request(engine, "objection", new, uscc(80)))
    after = done["records"][0]["after"]
    assert after["status"] == "withdrawn" and after["restored"] == old and old in after["note"]
    assert _public(client, new) is None and _public(client, old)["grade"] == "B"
    assert sorted(_changes(client, head)) == sorted([(new, "withdraw"), (old, "add")])
    profile = client.get(f"/api/v1/entities/{uscc(80)}").json()
    assert [r["id"] for r in profile["records"]["credit_mark"]] == [old]


def test_a_statistics_only_mark_withdrawn_on_an_objection_is_replaced_in_the_statistics(
    engine, client, bearer, tmp_path, monkeypatch, reset_rules
):
    """Filed while the mark was published; the bureau then publishes the scheme only as
    statistics: the older mark is counted in place of the withdrawn one, quietly."""
    _publish(engine, tmp_path, "a.csv", credit_mark_row(82, 分类结果="B", 标注日期="2024-01-01"))
    _publish(engine, tmp_path, "b.csv", credit_mark_row(82, 分类结果="D", 标注日期="2025-03-01"))
    old, new = _mark(engine, 82, "2024-01-01"), _mark(engine, 82, "2025-03-01")
    tracking = submit_request(engine, "objection", new, uscc(82))
    _hide_risk_classes(tmp_path, monkeypatch)
    assert expire(engine)["aggregate"] == 1
    assert _statistics(engine) == {HIDDEN: 1}
    head = _head(engine)
    done = _withdraw(client, bearer, tracking)
    assert done["records"][0]["after"]["restored"] == old
    assert _statistics(engine) == {HIDDEN: 1}  # the older mark is counted in its place
    with engine.connect() as conn:
        status = conn.execute(select(RECORDS.c.status).where(RECORDS.c.id == old)).scalar_one()
    assert status == "aggregate" and _head(engine) == head  # nothing published one by one


def test_statistics_count_an_entitys_current_mark_only(
    engine, tmp_path, monkeypatch, reset_rules
):
    """Two marks of one scheme and domain, published only as statistics: the newer supersedes
    the older there too (both were counted: one entity as B and as D)."""
    _hide_risk_classes(tmp_path, monkeypatch)
    _publish(engine, tmp_path, "a.csv", credit_mark_row(83, 分类结果="B", 标注日期="2024-01-01"))
    counts = _publish(engine, tmp_path, "b.csv",
                      credit_mark_row(83, 分类结果="D", 标注日期="2025-03-01"))
    assert counts["superseded"] == 1 and _statistics(engine) == {HIDDEN: 1}
    # an older one arriving later is superseded on arrival
    _publish(engine, tmp_path, "c.csv", credit_mark_row(83, 分类结果="C", 标注日期="2023-01-01"))
    assert _statistics(engine) == {HIDDEN: 1}
    with engine.connect() as conn:
        rows = conn.execute(select(RECORDS.c.event_date, RECORDS.c.status)
                            .where(RECORDS.c.entity_id == uscc(83))).all()
    assert sorted((str(d), s) for d, s in rows) == [
        ("2023-01-01", "superseded"), ("2024-01-01", "superseded"), ("2025-03-01", "aggregate")]
