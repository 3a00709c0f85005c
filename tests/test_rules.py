"""The publicity rules file (publishing/data/publicity.toml) as publishing.rules reads it."""

from __future__ import annotations

from datetime import date

import pytest

from publishing.requests import repair_moot
from publishing.rules import DEFAULT_RULES_FILE, load_rules

DECIDED = date(2026, 6, 1)


@pytest.mark.parametrize(
    ("severity", "domain", "until", "repairable", "moot"),
    [
        # repair from the day after the minimum period, which ends on the corresponding day
        ("轻微", "", date(2026, 9, 1), date(2026, 6, 2), False),
        ("一般", "", date(2027, 6, 1), date(2026, 9, 2), False),
        ("严重", "", date(2029, 6, 1), date(2027, 6, 2), False),
        # SAMR's 1-year minimum: before repair, and as publicity (a 轻微 food case left
        # publication at 3 months, though repairable only from 12): the publicity ends on the
        # minimum's last day, so there is nothing to repair early
        ("轻微", "食品", date(2027, 6, 1), date(2027, 6, 2), True),
        ("一般", "食品经营", date(2027, 6, 1), date(2027, 6, 2), True),
        ("轻微", "食品安全", date(2027, 6, 1), date(2027, 6, 2), True),
        ("一般", "药品经营", date(2027, 6, 1), date(2027, 6, 2), True),
        ("轻微", "特种设备安全", date(2027, 6, 1), date(2027, 6, 2), True),
        ("严重", "药品生产", date(2029, 6, 1), date(2027, 6, 2), False),  # longer anyway
        ("轻微", "价格", date(2026, 9, 1), date(2026, 6, 2), False),
        ("轻微", "医药广告", date(2026, 9, 1), date(2026, 6, 2), False),  # not a prefix: not covered
    ],
)
def test_penalty_publicity_and_repair_follow_severity_and_samrs_minimum(
    severity, domain, until, repairable, moot
):
    rules = load_rules(DEFAULT_RULES_FILE)
    fields = {"severity": severity, "domain": domain, "penalty_kinds": ["罚款"]}
    assert rules.publicity_until("penalty", DECIDED, fields) == until
    assert rules.repairable_from("penalty", DECIDED, fields) == repairable
    # repair is possible while the record is public, or moot: the publicity ends first
    assert (repairable > until) == moot
    rec = {"repairable_from": repairable.isoformat(), "publicity_until": until.isoformat()}
    assert repair_moot(rec) == moot


def test_a_licence_revoked_is_never_repairable_early():
    rules = load_rules(DEFAULT_RULES_FILE)
    fields = {"severity": "严重", "domain": "食品", "penalty_kinds": ["罚款", "吊销许可证件"]}
    assert rules.repairable_from("penalty", DECIDED, fields) is None


def test_a_longer_period_reaches_a_record_when_its_row_is_published_again(engine, tmp_path):
    """What publicity.toml and the README say: changed periods apply to a record when its row is
    published again; a longer one brings an expired record back, announced as added."""
    import copy

    from sqlalchemy import select

    from publishing.commit import EVENTS, RECORDS
    from publishing.publish import publish
    from publishing.rules import Rules
    from tests.factories import penalty_row, write_csv

    today = date(2026, 11, 28)
    shorter = copy.deepcopy(load_rules(DEFAULT_RULES_FILE).raw)
    shorter["penalty"]["domain_minimum"]["domains"] = []
    row = penalty_row(1, 处罚决定日期="2026-06-01", 失信程度="轻微", 领域="食品")
    path = write_csv(tmp_path / "p.csv", [row])
    for rules in (Rules(shorter), load_rules(DEFAULT_RULES_FILE)):
        result = publish([path], engine=engine, today=today, rules=rules, show_progress=False)
        assert result.published
    with engine.connect() as conn:
        record = conn.execute(select(RECORDS)).one()
        ops = list(conn.execute(select(EVENTS.c.op).order_by(EVENTS.c.seq)).scalars())
    assert (record.status, record.publicity_until) == ("active", date(2027, 6, 1))
    assert ops == ["add"]  # arrived expired (3 months), published with the longer period
