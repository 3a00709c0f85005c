"""Listings filtered by category and grade (read through ix_records_kind_category_date and
ix_records_kind_grade_date, the other filters checked in the index) list exactly what a plain
filter over every record lists, page by page; the categories in use (a loose scan of the
category index, one seek per category) are those a GROUP BY over the visible records gives."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from publishing import read
from publishing.commit import RECORDS
from publishing.expire import expire
from publishing.publish import publish
from publishing.sample import generate
from tests.api_helpers import TODAY, publish_csv
from tests.factories import penalty_row

SOON = TODAY + timedelta(days=10)  # the publicity of a "测试甲" record ends the day before
LATER = TODAY + timedelta(days=30)


@pytest.fixture
def world(engine, tmp_path):
    """The sample world (all four kinds, grades, expired penalties) and two domains of one
    record each: 测试甲 is visible until SOON, 测试乙 is expired (status) by LATER."""
    generate(tmp_path / "sample", 400, seed=11, today=TODAY)
    result = publish(
        sorted((tmp_path / "sample").iterdir()), engine=engine, today=TODAY, show_progress=False
    )
    assert result.published
    ending = {"公示截止日期": (SOON - timedelta(days=1)).isoformat()}
    rows = [penalty_row(901, 领域="测试甲", **ending), penalty_row(902, 领域="测试乙", **ending)]
    publish_csv(engine, tmp_path, "domains.csv", rows)
    return engine


def _all_rows(conn) -> list[Any]:
    cols = (
        RECORDS.c.id,
        RECORDS.c.kind,
        RECORDS.c.status,
        RECORDS.c.publicity_until,
        RECORDS.c.event_date,
        RECORDS.c.category,
        RECORDS.c.grade,
        RECORDS.c.district,
    )
    return conn.execute(select(*cols)).all()


def _expected(rows: list[Any], flt: read.ListFilter, today: date) -> list[str]:
    """The listing by brute force: every record tested, newest first."""
    hits = [
        r for r in rows
        if r.kind == flt.kind and r.status == "active"
        and (r.publicity_until is None or r.publicity_until >= today)
        and all(getattr(r, f) == getattr(flt, f) for f in ("category", "grade", "district")
                if getattr(flt, f) is not None)
        and (flt.date_from is None or r.event_date >= flt.date_from)
        and (flt.date_to is None or r.event_date <= flt.date_to)
    ]  # fmt: skip
    hits.sort(key=lambda r: (r.event_date, r.id), reverse=True)
    return [r.id for r in hits]


def _pages(conn, flt: read.ListFilter, today: date, limit: int) -> list[str]:
    """Every page of the listing, following the keyset; each page also found again backwards
    from the next one (the previous-page link)."""
    ids: list[str] = []
    after, previous = None, None
    while True:
        page = read.list_records(conn, flt, after=after, limit=limit, today=today)
        if previous is not None and page:
            first = (date.fromisoformat(page[0]["date"]), page[0]["id"])
            back = read.list_records(conn, flt, before=first, limit=limit, today=today)
            assert [r["id"] for r in back] == previous
        ids += [r["id"] for r in page]
        if len(page) < limit:
            return ids
        previous = [r["id"] for r in page]
        after = (date.fromisoformat(page[-1]["date"]), page[-1]["id"])


def _filters(rows: list[Any]) -> list[read.ListFilter]:
    """Category, grade, both, each with a district, and combinations that match nothing."""
    graded = next(r for r in rows if r.grade)
    flts = []
    for kind in ("penalty", "credit_mark", "return_pledge"):
        mine = [r for r in rows if r.kind == kind and r.status == "active" and r.category]
        for r in (mine[0], mine[-1]):
            flts += [
                read.ListFilter(kind, category=r.category),
                read.ListFilter(kind, category=r.category, district=r.district),
            ]
        flts.append(read.ListFilter(kind, category="不存在"))
    grade, category, district = graded.grade, graded.category, graded.district
    return [
        *flts,
        read.ListFilter("credit_mark", grade=grade),
        read.ListFilter("credit_mark", grade=grade, district=district),
        read.ListFilter("credit_mark", category=category, grade=grade),
        read.ListFilter("credit_mark", category=category, grade=grade, district=district),
        read.ListFilter("credit_mark", category="严重违法失信名单", grade=grade),  # none
        read.ListFilter("penalty", category="食品", date_from=TODAY - timedelta(days=400)),
    ]  # fmt: skip


def test_filtered_listings_list_what_a_plain_filter_does(world):
    with world.connect() as conn:
        rows = _all_rows(conn)
        flts = _filters(rows)
        found = 0
        for flt in flts:
            expected = _expected(rows, flt, TODAY)
            assert _pages(conn, flt, TODAY, limit=7) == expected, flt
            found += bool(expected)
        assert found == len(flts) - 4  # all but the four meant to match nothing
        category = read.ListFilter("penalty", category="测试甲")
        assert _pages(conn, category, TODAY, 7) == _expected(rows, category, TODAY) != []
        assert _pages(conn, category, SOON, 7) == []  # past its publicity: not listed


def _group_by(conn, kind: str, today: date) -> list[str]:
    """The categories in use as a plain GROUP BY over the kind's visible records."""
    rows = conn.execute(
        select(RECORDS.c.category)
        .where(RECORDS.c.kind == kind, read.in_publication(today), RECORDS.c.category.is_not(None))
        .group_by(RECORDS.c.category)
        .order_by(RECORDS.c.category)
    ).scalars()
    return [c for c in rows if c]


def _same_as_group_by(conn, *days: date) -> None:
    for today in days:
        for kind in ("penalty", "credit_mark", "return_pledge", "blacklist"):
            assert read.categories(conn, kind, today=today) == _group_by(conn, kind, today)


def test_categories_are_those_of_the_visible_records(world, tmp_path):
    with world.connect() as conn:
        _same_as_group_by(conn, TODAY, SOON)
        assert "测试甲" in read.categories(conn, "penalty", today=TODAY)
        # still active, but its publicity has ended: its filter would list nothing
        assert "测试甲" not in read.categories(conn, "penalty", today=SOON)
    expire(world, today=LATER)  # 测试甲 and 测试乙 leave publication (status: expired)
    until = (LATER + timedelta(days=5)).isoformat()
    publish_csv(world, tmp_path, "again.csv", [penalty_row(903, 领域="测试甲", 公示截止日期=until)],
                today=LATER)  # fmt: skip
    with world.connect() as conn:
        _same_as_group_by(conn, LATER, LATER + timedelta(days=5), LATER + timedelta(days=6))
        penalty = read.categories(conn, "penalty", today=LATER)
        assert "测试甲" in penalty and "测试乙" not in penalty  # only an expired record left
        assert len(penalty) > 5 and len(read.categories(conn, "credit_mark", today=LATER)) > 1
