"""A filtered listing tells how many records match: counted up to read.COUNT_CAP (a lower bound
above it, `capped`), visible records only; unfiltered and district-only listings keep the exact
totals of the statistics cache; a filter that cannot be used shows no count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from lxml import html as lhtml
from sqlalchemy import event, select

from publishing import clock, read
from publishing.commit import RECORDS
from tests.api_helpers import api_client, publish_csv
from tests.factories import credit_mark_row, penalty_row

TODAY = clock.today()  # the portal's today: publicity is judged against the real date


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


@pytest.fixture
def penalties(engine, tmp_path):
    """Penalties: 食品 on three dates (two within the last 90 days), 药品 twice, one 食品 in
    莱山区; and public credit marks graded B (two) and D (one)."""
    rows = [
        penalty_row(1, 处罚决定日期=day(-10)),
        penalty_row(2, 处罚决定日期=day(-50)),
        penalty_row(3, 处罚决定日期=day(-200)),
        penalty_row(4, 领域="药品", 处罚决定日期=day(-20)),
        penalty_row(5, 领域="药品", 处罚决定日期=day(-300)),
        penalty_row(6, 所属区市="莱山区", 处罚决定日期=day(-30)),
    ]
    publish_csv(engine, tmp_path, "p.csv", rows, today=TODAY)
    marks = [credit_mark_row(7), credit_mark_row(8), credit_mark_row(9, 分类结果="D")]
    publish_csv(engine, tmp_path, "c.csv", marks, today=TODAY)


def _caption(page) -> str:
    assert page.status_code == 200, page.text
    [caption] = lhtml.fromstring(page.text).xpath('//caption[@id="list-caption"]')
    return caption.text_content()


def _listed(client, path: str) -> tuple[str, dict]:
    """The listing's caption and its JSON twin's body."""
    caption = _caption(client.get(path))
    api = client.get("/api/v1" + path)
    assert api.status_code == 200, api.text
    return caption, api.json()


def test_a_category_filter_is_counted(engine, penalties):
    with api_client(engine) as client:
        food, food_json = _listed(client, "/penalties?category=食品")
        drugs, drugs_json = _listed(client, "/penalties?category=药品")
        food_here, _ = _listed(client, "/penalties?category=食品&district=370602")
    assert food == "行政处罚（共 4 条）"
    assert (food_json["total"], food_json["capped"], len(food_json["records"])) == (4, False, 4)
    assert drugs == "行政处罚（共 2 条）" and (drugs_json["total"], drugs_json["capped"]) == (2, False)
    assert food_here == "行政处罚（共 3 条）"  # 芝罘区: not the 莱山区 one


def test_a_date_filter_and_a_grade_are_counted(engine, penalties):
    with api_client(engine) as client:
        recent, recent_json = _listed(client, f"/penalties?from={day(-90)}")
        window, _ = _listed(client, f"/penalties?from={day(-250)}&to={day(-40)}")
        graded, graded_json = _listed(client, "/credit-marks?grade=B")
    assert recent == "行政处罚（共 4 条）" and (recent_json["total"], recent_json["capped"]) == (4, False)
    assert window == "行政处罚（共 2 条）"  # the 50- and the 200-day-old ones
    assert graded == "信用标注（共 2 条）" and graded_json["total"] == 2


def test_the_count_stops_at_the_cap(engine, tmp_path, monkeypatch):
    rows = [penalty_row(n, 处罚决定日期=day(-n)) for n in range(1, 8)]  # 7 食品 penalties
    rows.append(penalty_row(8, 领域="药品"))
    publish_csv(engine, tmp_path, "p.csv", rows, today=TODAY)
    monkeypatch.setattr(read, "COUNT_CAP", 5)
    with api_client(engine) as client:
        food, food_json = _listed(client, "/penalties?category=食品")
        five, five_json = _listed(client, f"/penalties?category=食品&from={day(-5)}")
        six, six_json = _listed(client, f"/penalties?category=食品&from={day(-6)}")
        everything, everything_json = _listed(client, "/penalties")
    assert food == "行政处罚（超过 5 条）"
    assert (food_json["total"], food_json["capped"], len(food_json["records"])) == (5, True, 7)
    assert five == "行政处罚（共 5 条）" and (five_json["total"], five_json["capped"]) == (5, False)
    assert six == "行政处罚（超过 5 条）" and (six_json["total"], six_json["capped"]) == (5, True)
    # unfiltered: the statistics cache's exact total, never capped
    assert everything == "行政处罚（共 8 条）"
    assert (everything_json["total"], everything_json["capped"]) == (8, False)


def test_withdrawn_and_ended_records_are_not_counted(engine, tmp_path):
    header = [*penalty_row(1), "公示截止日期", "操作"]
    rows = [
        penalty_row(1, 处罚决定日期=day(-10)),
        penalty_row(2, 处罚决定日期=day(-20)),
        penalty_row(3, 处罚决定日期=day(-30)),
        # published before its publicity ended, not yet expired by `disclosure expire`
        penalty_row(4, 处罚决定日期=day(-400), 公示截止日期=day(-1)),
    ]
    publish_csv(engine, tmp_path, "p.csv", rows, header=header, today=TODAY - timedelta(days=5))
    withdraw = [penalty_row(2, 处罚决定日期=day(-20), 操作="撤销")]
    publish_csv(engine, tmp_path, "w.csv", withdraw, header=header, today=TODAY)
    with engine.connect() as conn:  # the ended one is still active: only the date hides it
        active = conn.execute(select(RECORDS.c.id).where(RECORDS.c.status == "active")).all()
    assert len(active) == 3
    with api_client(engine) as client:
        food, food_json = _listed(client, "/penalties?category=食品")
        dated, _ = _listed(client, f"/penalties?from={day(-500)}")
    assert food == "行政处罚（共 2 条）" and food_json["total"] == 2
    assert dated == "行政处罚（共 2 条）"


def test_district_only_and_unfiltered_keep_the_exact_totals(engine, penalties):
    with api_client(engine) as client:
        everything, everything_json = _listed(client, "/penalties")
        here, here_json = _listed(client, "/penalties?district=370613")
    assert everything == "行政处罚（共 6 条）" and everything_json["capped"] is False
    assert here == "行政处罚（共 1 条）" and (here_json["total"], here_json["capped"]) == (1, False)


def test_an_invalid_filter_shows_no_count(engine, penalties):
    with api_client(engine) as client:
        page = client.get(f"/penalties?category=食品&from={day(0)}&to={day(-30)}")
        api = client.get(f"/api/v1/penalties?category=食品&from={day(0)}&to={day(-30)}")
    assert page.status_code == 400
    assert "条）" not in page.text and not lhtml.fromstring(page.text).xpath("//caption")
    assert api.status_code == 400 and "total" not in api.json()


def test_the_api_documents_total_and_capped(engine):
    with api_client(engine) as client:
        schema = client.get("/schema/openapi.json").json()
    description = schema["paths"]["/api/v1/penalties"]["get"]["description"]
    assert "`capped`" in description and f"{read.COUNT_CAP:,}" in description


def test_the_count_reads_at_most_cap_plus_one_rows(engine, penalties):
    """The bound is what keeps a broad filter cheap at a million records: the statement itself
    stops after cap + 1 rows (the result alone cannot show it)."""
    statements: list[tuple[str, object]] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if "count(" in statement.lower():  # not the connection's own setup
            values = parameters.values() if isinstance(parameters, dict) else parameters
            statements.append((statement, list(values)))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        with engine.connect() as conn:
            flt = read.ListFilter(kind="penalty", category="食品")
            assert read.count_records(conn, flt, cap=2) == (2, True)
            assert read.count_records(conn, flt) == (4, False)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    [(capped_sql, capped_params), (sql, params)] = statements
    assert "LIMIT" in capped_sql.upper() and "LIMIT" in sql.upper()
    assert 3 in capped_params and read.COUNT_CAP + 1 in params
