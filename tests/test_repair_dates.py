"""Credit repair's first day (legal review): a period counted in months ends on the corresponding
day, that day included (民法典 art. 201-203), for the minimum publicity (最短公示期) as for the
publicity itself; repair may be asked from the day after the minimum period. A record whose
first repair day is not before the end of its publicity (food, drug, special equipment: 12 of
12 months) is refused as moot on every day, its last day of publicity included, and the record
page, the request form and the API say the same of each record. `disclosure expire --recompute`
brings a record stored with the previous release's date to the corrected one. Database tests
run on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from publishing import clock, read, request_config
from publishing.commit import EVENTS, RECORDS
from publishing.expire import expire
from publishing.plan import next_version
from publishing.publish import publish
from publishing.requests import repair_moot, repair_problem
from publishing.rules import DEFAULT_RULES_FILE, add_months, load_rules
from tests.factories import penalty_row, uscc, write_csv
from tests.requests_support import PDF, fields, files

RULES = load_rules(DEFAULT_RULES_FILE)
FINES = ["警告", "罚款"]
NOT_YET = "最短公示期未满"


def penalty(severity: str, domain: str) -> dict[str, Any]:
    return {"severity": severity, "domain": domain, "penalty_kinds": FINES}


def as_published(decided: date, data: dict[str, Any]) -> dict[str, Any]:
    """What repair_problem reads of a penalty published under the rules (its public shape)."""
    return {
        "kind": "penalty",
        "penalty_kinds": data["penalty_kinds"],
        "publicity_until": RULES.publicity_until("penalty", decided, data).isoformat(),
        "repairable_from": RULES.repairable_from("penalty", decided, data).isoformat(),
    }


def moot_text(until: date | str) -> str:
    return f"该记录将于 {until} 公示期满并自动停止公示，无需申请信用修复。"


def every_day(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


# -- the first repair day --------------------------------------------------------------------


@pytest.mark.parametrize(("decided", "severity", "last_refused", "first"), [
    (date(2026, 8, 31), "一般", date(2026, 11, 30), date(2026, 12, 1)),  # the review's case
    (date(2026, 6, 1), "一般", date(2026, 9, 1), date(2026, 9, 2)),
    (date(2026, 11, 30), "一般", date(2027, 2, 28), date(2027, 3, 1)),  # a shorter month
    (date(2026, 6, 1), "严重", date(2027, 6, 1), date(2027, 6, 2)),
    (date(2026, 6, 1), "轻微", date(2026, 6, 1), date(2026, 6, 2)),  # no minimum months
])
def test_the_first_repair_day_is_the_day_after_the_minimum_period(
    decided, severity, last_refused, first
):
    data = penalty(severity, "价格")
    assert RULES.repairable_from("penalty", decided, data) == first
    rec = as_published(decided, data)
    assert not repair_moot(rec)
    config = request_config.load_config()
    refused = repair_problem(rec, last_refused, RULES, config)
    assert refused and f"{NOT_YET}：{first} 起方可申请信用修复" in refused
    assert repair_problem(rec, first, RULES, config) is None


# -- 12 of 12 months: moot on every day ------------------------------------------------------


@pytest.mark.parametrize("stored", ["this release", "the previous release"])
@pytest.mark.parametrize(("severity", "domain"), [("一般", "食品"), ("轻微", "药品零售"),
                                                  ("一般", "特种设备")])
def test_a_food_drug_or_equipment_case_is_refused_as_moot_on_every_day(severity, domain, stored):
    decided = date(2026, 1, 31)
    data = penalty(severity, domain)
    until = RULES.publicity_until("penalty", decided, data)
    assert until == date(2027, 1, 31)
    rec = as_published(decided, data)
    assert rec["repairable_from"] == "2027-02-01"  # after the last day of publicity
    if stored == "the previous release":
        rec["repairable_from"] = until.isoformat()  # event + 12 months, as it was stored
    assert repair_moot(rec)
    config = request_config.load_config()
    for day in every_day(decided, until):  # the last day of publicity included
        assert repair_problem(rec, day, RULES, config) == moot_text(until), day


# -- the record page, the form and the API say the same --------------------------------------


def decided_for(first_repair: date, domain: str = "价格") -> tuple[str, date]:
    """A severity and a decision date whose first repair day is first_repair (一般's 3 months
    reach every day but those whose day before is a 29th-31st missing 3 months earlier; 严重's
    12 months reach those)."""
    for severity in ("一般", "严重"):
        for back in range(80, 400):
            decided = first_repair - timedelta(days=back)
            if RULES.repairable_from("penalty", decided, penalty(severity, domain)) == first_repair:
                return severity, decided
    raise AssertionError(f"no decision date repairable from {first_repair}")


def food_ending(last_day: date) -> date:
    """A food case's decision date whose publicity (12 months) ends on last_day."""
    for back in range(360, 372):
        decided = last_day - timedelta(days=back)
        if RULES.publicity_until("penalty", decided, penalty("一般", "食品")) == last_day:
            return decided
    pytest.skip(f"no 12-month period ends on {last_day}")  # 29 February only


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def record_page_says(client, record_id: str) -> str:
    page = client.get(f"/records/{record_id}")
    assert page.status_code == 200, page.text[:500]
    return _text(re.search(r"<dt>信用修复</dt><dd>(.*?)</dd>", page.text, re.S).group(1))


def form_says(client, code: str, record_id: str) -> str:
    page = client.get(f"/requests/new?uscc={code}")
    assert page.status_code == 200, page.text[:500]
    notes = re.search(rf'id="rec-{record_id}-notes">(.*?)</ul>', page.text, re.S).group(1)
    return _text(notes)


def api_record(client, record_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/records/{record_id}")
    assert response.status_code == 200, response.text[:500]
    return response.json()["record"]


def api_says(client, code: str, record_id: str) -> tuple[int, str]:
    data = fields(uscc=code, record_ids=[record_id])
    response = client.post("/api/v1/requests", data=data,
                           files=files(("proof.pdf", PDF, "application/pdf")))
    if response.status_code == 201:
        return 201, ""
    return response.status_code, response.json()["errors"].get("record_ids", "")


def test_the_record_page_the_form_and_the_api_agree(engine, client, tmp_path):
    today = clock.today()
    tomorrow = today + timedelta(days=1)
    due_severity, due = decided_for(today)
    soon_severity, soon = decided_for(tomorrow)  # the minimum period ends today
    food = food_ending(today)
    rows = [
        penalty_row(81, 处罚决定日期=due.isoformat(), 失信程度=due_severity, 领域="价格"),
        penalty_row(82, 处罚决定日期=soon.isoformat(), 失信程度=soon_severity, 领域="价格"),
        penalty_row(83, 处罚决定日期=food.isoformat(), 失信程度="一般", 领域="食品"),
        penalty_row(84, 处罚决定日期=food.isoformat(), 失信程度="一般", 领域="食品"),
    ]
    assert publish([write_csv(tmp_path / "p.csv", rows)], engine=engine,
                   show_progress=False).published
    ids = stored_ids(engine, 81, 82, 83, 84)
    # 84 as the previous release stored it: repairable from its last day of publicity
    store_repairable_from(engine, ids[84], today)

    for n in (81, 82, 83, 84):
        api = api_record(client, ids[n])
        assert api["publicity_until"] >= today.isoformat()  # all public today
        expected_from = {81: today, 82: tomorrow, 83: tomorrow, 84: today}[n]
        assert api["repairable_from"] == expected_from.isoformat(), n

    assert record_page_says(client, ids[81]) == f"{today} 起可申请信用修复"
    assert f"可申请信用修复（自 {today} 起）" in form_says(client, uscc(81), ids[81])
    assert api_says(client, uscc(81), ids[81]) == (201, "")

    refused = f"{NOT_YET}：{tomorrow} 起方可申请信用修复"
    assert record_page_says(client, ids[82]) == f"{tomorrow} 起可申请信用修复"
    assert f"不可申请信用修复：{refused}" in form_says(client, uscc(82), ids[82])
    status, error = api_says(client, uscc(82), ids[82])
    assert status == 422 and refused in error

    for n in (83, 84):  # its last day of publicity: moot, whatever date is stored
        assert record_page_says(client, ids[n]) == f"{today} 公示期满，停止公示", n
        form = form_says(client, uscc(n), ids[n])
        assert f"{today} 公示期满，停止公示" in form and "可申请信用修复（" not in form, n
        status, error = api_says(client, uscc(n), ids[n])
        assert status == 422 and moot_text(today).rstrip("。") in error, n


def stored_ids(engine, *numbers: int) -> dict[int, str]:
    """Record ids by the number their row was made with (decision number, USCC)."""
    with engine.connect() as conn:
        by_entity = dict(conn.execute(select(RECORDS.c.entity_id, RECORDS.c.id)).all())
    return {n: by_entity[uscc(n)] for n in numbers}


def store_repairable_from(engine, record_id: str, day: date) -> None:
    """The record as the previous release published it: that repair date, and the content hash
    publishing its row computed with it."""
    with engine.begin() as conn:
        stored = conn.execute(select(RECORDS).where(RECORDS.c.id == record_id)).one()
        old = next_version(stored, stored.data, repairable_from=day)
        conn.execute(update(RECORDS).where(RECORDS.c.id == record_id).values(
            repairable_from=day, content_hash=old["content_hash"]))


# -- stored records: `disclosure expire --recompute` -----------------------------------------


def test_recompute_corrects_a_repair_date_stored_by_the_previous_release(
    engine, client, tmp_path
):
    today = clock.today()
    decided = today - timedelta(days=30)  # 一般: public, repairable in two months
    data = penalty("一般", "价格")
    first = RULES.repairable_from("penalty", decided, data)
    old = add_months(decided, 3)  # what the previous release stored
    assert first == old + timedelta(days=1)
    path = write_csv(tmp_path / "p.csv", [penalty_row(91, 处罚决定日期=decided.isoformat(),
                                                       失信程度="一般", 领域="价格")])
    assert publish([path], engine=engine, show_progress=False).published
    record_id = stored_ids(engine, 91)[91]
    store_repairable_from(engine, record_id, old)
    assert record_page_says(client, record_id) == f"{old} 起可申请信用修复"

    counts = expire(engine, recompute=True)
    assert counts["period_changed"] == 1 and counts["period_expired"] == 0
    with engine.connect() as conn:
        rec = read.record(conn, record_id)
        events = conn.execute(select(EVENTS.c.op, EVENTS.c.version)
                              .where(EVENTS.c.record_id == record_id)
                              .order_by(EVENTS.c.seq)).all()
    assert (rec["status"], rec["version"], rec["repairable_from"]) == (
        "active", 2, first.isoformat())
    assert [tuple(e) for e in events] == [("add", 1), ("change", 2)]  # a public field changed
    assert record_page_says(client, record_id) == f"{first} 起可申请信用修复"
    assert api_record(client, record_id)["repairable_from"] == str(first)
    # stored as publishing the row now stores it: a second run and the same file change nothing
    assert expire(engine, recompute=True)["period_changed"] == 0
    again = publish([path], engine=engine, show_progress=False)
    changed = sum(r.counts.get(k, 0) for r in again.reports
                  for k in ("added", "changed", "withdrawn", "expired"))
    assert changed == 0
