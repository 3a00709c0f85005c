"""The legal officer's review: supersession by an ended credit mark, SAMR's 1-year minimum by
领域, end dates before the record's date, affirmative 简易程序 variants, 不可提前修复 by penalty kind, and the
feed's word for a scheme switched to statistics only. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from types import SimpleNamespace

import pytest
from litestar.testing import TestClient
from lxml import etree
from sqlalchemy import select

from portal.app import create_app
from publishing import clock, creditcheck
from publishing.clean import R_PROCEDURE, R_SIMPLE, Cleaner
from publishing.commit import EVENTS, RECORDS
from publishing.expire import expire
from publishing.feeds import deletion_item
from publishing.publish import publish
from publishing.rows import CleanRow, SourceRow
from publishing.rules import DEFAULT_RULES_FILE, RulesError, add_months, load_rules, read_rules
from tests.factories import credit_mark_row, penalty_row, uscc, write_csv

TODAY = date(2026, 11, 27)
LIST = "经营异常名录"
MARK_HEADER = [*credit_mark_row(1), "有效期至", "操作"]


def run(engine, paths, **kw):
    kw.setdefault("today", TODAY)
    paths = paths if isinstance(paths, list) else [paths]
    return publish(paths, engine=engine, show_progress=False, **kw)


def mark(marked_on: str, until: str = "", op: str = "新增", n: int = 1) -> dict[str, str]:
    return credit_mark_row(n, 标注类型=LIST, 分类结果="", 标注日期=marked_on, 有效期至=until, 操作=op)


def publish_marks(engine, tmp_path, name: str, *rows: dict[str, str], **kw):
    result = run(engine, write_csv(tmp_path / name, list(rows), header=MARK_HEADER), **kw)
    assert result.published, result.as_json()
    return result


def marks(engine) -> dict[str, str]:
    """Status of each stored mark by its 标注日期."""
    with engine.connect() as conn:
        rows = conn.execute(select(RECORDS.c.event_date, RECORDS.c.status)
                            .where(RECORDS.c.kind == "credit_mark"))
        return {day.isoformat(): status for day, status in rows}


def mark_events(engine) -> list[tuple[str, str | None, str]]:
    with engine.connect() as conn:
        query = (select(EVENTS.c.op, EVENTS.c.reason, RECORDS.c.event_date)
                 .join(RECORDS, RECORDS.c.id == EVENTS.c.record_id)
                 .where(RECORDS.c.kind == "credit_mark").order_by(EVENTS.c.seq))
        return [(op, reason, day.isoformat()) for op, reason, day in conn.execute(query)]


def listed(engine, n: int = 1) -> bool:
    with engine.connect() as conn:
        [result] = creditcheck.check(conn, [uscc(n)], today=TODAY, rules=load_rules())["results"]
    return result["listed"]


# -- 1. an ended newer mark supersedes the older one ------------------------------------------


def test_a_newer_mark_that_arrives_ended_supersedes_the_current_one(engine, tmp_path):
    publish_marks(engine, tmp_path, "p1.csv", mark("2025-03-01"))
    assert listed(engine)
    report = publish_marks(engine, tmp_path, "p2.csv", mark("2026-01-01", "2026-06-30")).as_json()
    assert report["superseded"] == 1 and report["stored_expired"] == 1
    assert marks(engine) == {"2025-03-01": "superseded", "2026-01-01": "expired"}
    # announced as a supersession is when the newer mark is current
    assert mark_events(engine) == [("add", None, "2025-03-01"),
                                   ("withdraw", "superseded", "2025-03-01")]
    assert not listed(engine)


def test_the_older_mark_arriving_after_an_ended_newer_one_is_superseded(engine, tmp_path):
    publish_marks(engine, tmp_path, "p2.csv", mark("2026-01-01", "2026-06-30"))
    result = publish_marks(engine, tmp_path, "p1.csv", mark("2025-03-01"))
    assert result.events == 0 and result.as_json()["stored_superseded"] == 1
    assert marks(engine) == {"2025-03-01": "superseded", "2026-01-01": "expired"}
    assert mark_events(engine) == []
    assert not listed(engine)


def test_a_withdrawn_ended_mark_supersedes_nothing(engine, tmp_path):
    """Withdrawn (a file's 撤销; a snapshot alike) as before: the mark should never have been
    published, and the mark it superseded is current again, as after an active newer mark."""
    publish_marks(engine, tmp_path, "p1.csv", mark("2025-03-01"))
    publish_marks(engine, tmp_path, "p2.csv", mark("2026-01-01", "2026-06-30"))
    report = publish_marks(engine, tmp_path, "w.csv",
                           mark("2026-01-01", "2026-06-30", op="撤销")).as_json()
    assert report["withdrawn_quietly"] == 1 and report["restored"] == 1
    assert marks(engine) == {"2025-03-01": "active", "2026-01-01": "withdrawn"}
    assert mark_events(engine)[-1] == ("add", None, "2025-03-01")
    assert listed(engine)
    # the withdrawn mark sent again stays withdrawn, and so supersedes nothing
    again = publish_marks(engine, tmp_path, "p2b.csv", mark("2026-01-01", "2026-06-30"))
    assert again.events == 0 and again.as_json()["unchanged"] == 1
    assert marks(engine) == {"2025-03-01": "active", "2026-01-01": "withdrawn"}


def test_a_snapshot_without_the_ended_mark_restores_the_one_it_superseded(engine, tmp_path):
    publish_marks(engine, tmp_path, "p1.csv", mark("2025-03-01"))
    publish_marks(engine, tmp_path, "p2.csv", mark("2026-01-01", "2026-06-30"))
    report = publish_marks(engine, tmp_path, "s.csv", mark("2025-03-01"),
                           mode="snapshot").as_json()
    assert report["withdrawn_quietly"] == 1 and report["restored"] == 1
    assert marks(engine) == {"2025-03-01": "active", "2026-01-01": "withdrawn"}
    assert listed(engine)


def test_withdrawing_the_newest_mark_does_not_restore_one_an_ended_mark_superseded(
        engine, tmp_path):
    publish_marks(engine, tmp_path, "a.csv", mark("2025-03-01"))
    publish_marks(engine, tmp_path, "b.csv", mark("2026-01-01", "2026-06-30"))
    publish_marks(engine, tmp_path, "c.csv", mark("2026-08-01"))
    assert marks(engine) == {"2025-03-01": "superseded", "2026-01-01": "expired",
                             "2026-08-01": "active"}
    report = publish_marks(engine, tmp_path, "w.csv", mark("2026-08-01", op="撤销")).as_json()
    assert report["withdrawn"] == 1 and report.get("restored", 0) == 0
    # the ended mark is the group's newest left: it still supersedes the 2025 one
    assert marks(engine) == {"2025-03-01": "superseded", "2026-01-01": "expired",
                             "2026-08-01": "withdrawn"}
    assert not listed(engine)


def test_an_ended_mark_superseded_by_a_newer_one_stays_expired(engine, tmp_path):
    publish_marks(engine, tmp_path, "a.csv", mark("2026-08-01"))
    publish_marks(engine, tmp_path, "b.csv", mark("2026-01-01", "2026-06-30"))
    assert marks(engine) == {"2026-01-01": "expired", "2026-08-01": "active"}


# -- 2. SAMR's minimum: a 领域 that contains a listed term --------------------------------------


@pytest.mark.parametrize("domain", [
    "食品", "食品经营", "保健食品", "特殊食品", "网络食品", "餐饮服务", "食用农产品", "食盐",
    "药品零售", "疫苗", "特种设备", "电梯", "锅炉", "压力容器", "压力管道", "气瓶", "起重机械",
    "客运索道", "大型游乐设施", "场（厂）内专用机动车辆", "场(厂)内专用机动车辆", "药品、医疗器械、化妆品",
])
def test_a_domain_containing_a_listed_term_waits_a_year(domain):
    rules = load_rules()
    fields = {"severity": "轻微", "domain": domain, "penalty_kinds": ["罚款"]}
    decided = date(2026, 1, 31)
    # the year ends 2027-01-31, that day included: public through it, repair from the next day
    assert rules.repairable_from("penalty", decided, fields) == date(2027, 2, 1)
    assert rules.publicity_until("penalty", decided, fields) == date(2027, 1, 31)


@pytest.mark.parametrize("domain", ["医疗器械", "化妆品", "价格", "Food", ""])
def test_other_domains_follow_the_severity(domain):
    fields = {"severity": "轻微", "domain": domain, "penalty_kinds": ["罚款"]}
    # 轻微: no minimum months; repair from the day after the decision
    assert load_rules().repairable_from("penalty", date(2026, 1, 31), fields) == date(2026, 2, 1)


def test_a_published_penalty_of_a_covered_domain_gets_the_minimum(engine, tmp_path):
    row = penalty_row(1, 失信程度="轻微", 领域="保健 食品", 处罚决定日期="2026-01-31")
    assert run(engine, write_csv(tmp_path / "p.csv", [row])).published
    with engine.connect() as conn:
        until, repairable = conn.execute(select(RECORDS.c.publicity_until,
                                                RECORDS.c.repairable_from)).one()
    assert until == add_months(date(2026, 1, 31), 12)
    assert repairable == until + timedelta(days=1)  # the minimum ends with the publicity


def test_a_term_of_only_spaces_is_refused(tmp_path):
    """A term of spaces would be contained in every penalty kind (and 领域)."""
    path = tmp_path / "publicity.toml"
    text = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
    path.write_text(text.replace('penalty_kinds = ["吊销"', 'penalty_kinds = [" ", "吊销"'),
                    encoding="utf-8")
    with pytest.raises(RulesError, match="penalty.never_repairable.penalty_kinds"):
        read_rules(path)


# -- 3. an end of publicity before the record's date ------------------------------------------

PENALTY = {"uscc": uscc(1), "entity_name": "烟台测试1有限公司", "district": "芝罘区",
           "decision_no": "烟芝市监罚〔2026〕1号", "violation_type": "违法", "facts": "事实",
           "basis": "依据", "penalty_kinds": "罚款", "authority": "烟台市芝罘区市场监督管理局",
           "decided_on": "2026-06-01"}
BLACKLIST = {"uscc": uscc(1), "entity_name": "烟台测试1有限公司", "district": "芝罘区",
             "issue_no": "2026年第9期", "publisher": "烟台市芝罘区市场监督管理局",
             "issued_on": "2026-09-01", "violation": "事实"}
MARK = {"uscc": uscc(1), "entity_name": "烟台测试1有限公司", "district": "芝罘区",
        "scheme": LIST, "marked_on": "2026-01-10"}


def clean(kind: str, values: dict, headers: dict | None = None):
    return Cleaner(kind, TODAY, "f.csv", headers=headers).clean(SourceRow("f.csv", 2, values))


@pytest.mark.parametrize(("kind", "values", "key", "reason"), [
    ("penalty", {**PENALTY, "publicity_until": "2026-05-31"}, "publicity_until",
     "公示截止日期早于处罚决定日期"),
    ("blacklist", {**BLACKLIST, "publicity_until": "2026-08-31"}, "publicity_until",
     "公示截止日期早于发布日期"),
    ("credit_mark", {**MARK, "valid_until": "2026-01-09"}, "valid_until", "有效期至早于标注日期"),
])
def test_an_end_before_the_records_date_is_rejected(kind, values, key, reason):
    [reject] = clean(kind, values)
    assert (reject.row, reject.column, reject.value, reject.reason) == (2, key, values[key], reason)
    # the same day, or later (even before today), is an end as given
    start = values[{"penalty": "decided_on", "blacklist": "issued_on",
                    "credit_mark": "marked_on"}[kind]]
    for end in (start, "2026-09-02"):
        result = clean(kind, {**values, key: end})
        assert isinstance(result, CleanRow), result
        assert result.publicity_until == date.fromisoformat(end)


def test_the_reject_names_the_column_as_the_file_does(engine, tmp_path):
    header = [*penalty_row(1), "公示截止日期"]
    rows = [penalty_row(1), penalty_row(2, 公示截止日期="2026年5月1日")]
    result = run(engine, write_csv(tmp_path / "p.csv", rows, header=header), accept_partial=True)
    [reject] = result.as_json()["rejected"]
    assert reject == {"row": 3, "column": "公示截止日期", "value": "2026年5月1日",
                      "reason": "公示截止日期早于处罚决定日期"}


# -- 4. every affirmative 简易 procedure -----------------------------------------------------


@pytest.mark.parametrize("procedure", ["简易", "简易程序", "适用简易程序", "简易程序（当场）",
                                       "简易(当场处罚)", "简易程序案件", "简 易 程 序",
                                       "简\u3000易\xa0程序 ( 当场 )", "适用简易程序（）"])
def test_every_simplified_procedure_is_never_published(procedure):
    [reject] = clean("penalty", {**PENALTY, "procedure": procedure})
    assert reject.reason == R_SIMPLE and reject.never_published


@pytest.mark.parametrize("procedure", ["特别程序", "简易程序转普通程序", "非简易程序",
                                       "简易程序（当场））", "简易程序案件（当场）补充"])
def test_a_procedure_that_only_mentions_simplified_gets_the_generic_reject(procedure):
    [reject] = clean("penalty", {**PENALTY, "procedure": procedure})
    assert reject.reason == R_PROCEDURE and not reject.never_published


def test_other_procedures_are_unchanged():
    assert clean("penalty", {**PENALTY, "procedure": "一般程序"}).fields["procedure"] == "普通"


def test_a_snapshot_withdraws_a_record_now_sent_with_a_simplified_variant(engine, tmp_path):
    rows = [penalty_row(n) for n in range(1, 13)]
    assert run(engine, write_csv(tmp_path / "a.csv", rows)).published
    later = [penalty_row(1, 程序类型="适用简易程序"), *rows[1:]]
    result = run(engine, write_csv(tmp_path / "b.csv", later), mode="snapshot",
                 accept_partial=True)
    report = result.as_json()
    assert result.published and not report.get("snapshot_withdrawals_skipped")
    assert report["withdrawn"] == 1
    with engine.connect() as conn:
        status = conn.execute(select(RECORDS.c.status).where(
            RECORDS.c.data["decision_no"].as_string() == "烟芝市监罚〔2026〕1号")).scalar_one()
    assert status == "withdrawn"


@pytest.mark.parametrize("procedure", ["简易程序转普通程序", "非简易程序"])
def test_a_snapshot_keeps_a_record_sent_with_a_procedure_that_only_mentions_it(
        engine, tmp_path, procedure):
    """Not a 简易 case: a rejected row that may be a record the bureau still publishes, so no
    record is withdrawn (README: snapshot_withdrawals_skipped)."""
    rows = [penalty_row(n) for n in range(1, 13)]
    assert run(engine, write_csv(tmp_path / "a.csv", rows)).published
    later = [penalty_row(1, 程序类型=procedure), *rows[2:]]  # record 2 is gone too
    result = run(engine, write_csv(tmp_path / "b.csv", later), mode="snapshot",
                 accept_partial=True)
    report = result.as_json()
    assert result.published and report["snapshot_withdrawals_skipped"]
    assert [r["reason"] for r in report["rejected"]] == [R_PROCEDURE]
    assert not report.get("withdrawn")
    with engine.connect() as conn:
        statuses = conn.execute(select(RECORDS.c.status).where(
            RECORDS.c.kind == "penalty")).scalars().all()
    assert statuses == ["active"] * 12


# -- 5. 不可提前修复 by a term within the penalty kind -------------------------------------------


@pytest.mark.parametrize(("kinds", "repairable"), [
    (["吊销食品经营许可证"], False),
    (["吊销许可证"], False),
    (["罚款", "吊销营业执照"], False),
    (["吊销许可证件"], False),
    (["责令停产停业整顿"], False),
    (["责令关闭"], False),
    (["限制从业"], False),
    (["限制开展生产经营活动"], False),
    (["暂扣许可证件"], True),
    (["警告", "罚款", "没收违法所得"], True),
])
def test_never_repairable_by_a_term_within_the_kind(kinds, repairable):
    fields = {"severity": "轻微", "domain": "价格", "penalty_kinds": kinds}
    found = load_rules().repairable_from("penalty", date(2026, 1, 31), fields)
    assert found == (date(2026, 2, 1) if repairable else None)


def test_a_published_penalty_with_a_licence_revoked_is_never_repairable(engine, tmp_path):
    row = penalty_row(1, 处罚种类="罚款、吊销食品经营许可证", 领域="价格")
    assert run(engine, write_csv(tmp_path / "p.csv", [row])).published
    with engine.connect() as conn:
        assert conn.execute(select(RECORDS.c.repairable_from)).scalar_one() is None


# -- 6. a scheme switched to statistics only leaves as a plain withdrawal ---------------------


def test_the_statistics_only_switch_is_a_plain_withdrawal_in_the_feed(engine, tmp_path):
    today = clock.today()
    rules = load_rules()
    keep = penalty_row(1, 处罚决定日期=today.isoformat())  # keeps the entity (and its feed)
    assert run(engine, write_csv(tmp_path / "p.csv", [keep]), today=today).published
    assert run(engine, write_csv(tmp_path / "m.csv", [credit_mark_row(1)]), today=today).published
    hidden = type(rules)({**rules.raw, "credit_mark": {"schemes": {"信用风险分类": {"public": False}}}})
    assert expire(engine, today=today, rules=hidden)["aggregate"] == 1
    with engine.connect() as conn:  # the change log keeps why
        assert conn.execute(select(EVENTS.c.reason).where(EVENTS.c.op == "withdraw")).scalar_one() \
            == "aggregate"
    with TestClient(create_app(engine)) as client:
        body = client.get(f"/entities/{uscc(1)}/feed.atom").content
    ns = {"at": "http://purl.org/atompub/tombstones/1.0"}
    [stone] = etree.fromstring(body).findall("at:deleted-entry", ns)
    assert stone.findtext("at:comment", namespaces=ns) == "已撤回"
    assert "统计" not in body.decode()


def test_the_tombstone_of_a_statistics_only_switch_says_what_a_file_withdrawal_says():
    row = dict(seq=9, id="cm-1", ev_version=2, at=datetime(2026, 11, 27, 10, 0), op="withdraw")
    aggregate = deletion_item(SimpleNamespace(**row, reason="aggregate"), "https://example.org", [])
    by_file = deletion_item(SimpleNamespace(**row, reason="file"), "https://example.org", [])
    assert aggregate.comment == by_file.comment == "已撤回"


def test_the_kinds_that_bar_repair_are_named_by_containment():
    """What a refused repair request names (publishing.requests.repair_problem)."""
    kinds = ["罚款", "吊销食品经营许可证", "暂扣许可证件", "责令停产停业整顿"]
    assert load_rules().never_repairable_in(kinds) == ["吊销食品经营许可证", "责令停产停业整顿"]
    assert load_rules().never_repairable_in(None) == []
