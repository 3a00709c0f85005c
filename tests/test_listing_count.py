"""A filtered listing's total (共 N 条) is counted once per filter and publication: its next
pages reuse it (at a million records the count was most of the page's time), and a publish
counts again, so the total never lags what is listed. Observed on the real engine: the SQL
statements with count( that each request runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from lxml import html as lhtml
from sqlalchemy import event

from portal import stats
from portal.pages.listings import PER_PAGE, FilteredCounts
from publishing import clock, read
from tests.api_helpers import api_client, publish_csv
from tests.factories import penalty_row

TODAY = clock.today()  # the portal's today: publicity is judged against the real date
FOOD = PER_PAGE + 10  # 食品 penalties: two pages
FILTER = f"category=食品&from={(TODAY - timedelta(days=400)).isoformat()}"


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


@pytest.fixture
def penalties(engine, tmp_path):
    """FOOD 食品 penalties in 芝罘区 on FOOD days, and three 药品 ones."""
    rows = [penalty_row(n, 处罚决定日期=day(-n)) for n in range(1, FOOD + 1)]
    rows += [penalty_row(100 + n, 领域="药品", 处罚决定日期=day(-n)) for n in range(1, 4)]
    publish_csv(engine, tmp_path, "p.csv", rows, today=TODAY)


@contextmanager
def counting(engine) -> Iterator[list[str]]:
    """The listing counts (read.count_records) run on the engine, on any connection, while
    inside: its statements are those with count( and LIMIT (the cap). The statistics' counts
    (read.counts, refreshed in the background after a publish) have no LIMIT."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        if "count(" in statement.lower() and "limit" in statement.lower():
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _page(client, path: str) -> tuple[str, str | None]:
    """The listing's caption and its next page's link."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    doc = lhtml.fromstring(page.text)
    [caption] = doc.xpath('//caption[@id="list-caption"]')
    links = doc.xpath('//a[@rel="next"]/@href')
    return caption.text_content(), links[0] if links else None


def test_the_next_page_does_not_count_again(engine, penalties):
    with api_client(engine) as client, counting(engine) as counted:
        first, second_url = _page(client, f"/penalties?{FILTER}")
        assert first == f"行政处罚（共 {FOOD} 条）" and second_url
        assert len(counted) == 1  # the first page counts
        counted.clear()
        second, _ = _page(client, second_url)
        twin = client.get(f"/api/v1/penalties?{FILTER}").json()
        assert second == f"行政处罚（共 {FOOD} 条），续页"
        assert (twin["total"], twin["capped"]) == (FOOD, False)
        assert counted == []  # neither the next page nor the JSON twin counted again


def test_a_publish_counts_again(engine, penalties, tmp_path):
    with api_client(engine) as client, counting(engine) as counted:
        _, second_url = _page(client, f"/penalties?{FILTER}")
        assert _page(client, second_url)[0] == f"行政处罚（共 {FOOD} 条），续页"
        counted.clear()
        more = [penalty_row(999, 处罚决定日期=day(-3))]
        publish_csv(engine, tmp_path, "more.csv", more, today=TODAY)
        counted.clear()  # the publish's own statements
        # the page reached by the link from before the publish: the new total at once
        assert _page(client, second_url)[0] == f"行政处罚（共 {FOOD + 1} 条），续页"
        assert len(counted) == 1  # counted anew, once
        counted.clear()
        first, _ = _page(client, f"/penalties?{FILTER}")
        assert first == f"行政处罚（共 {FOOD + 1} 条）"
        assert counted == []


def test_filters_are_kept_apart_and_by_their_meaning(engine, penalties):
    food = f"/penalties?{FILTER}"
    with api_client(engine) as client, counting(engine) as counted:
        assert _page(client, f"{food}&district=芝罘区")[0] == f"行政处罚（共 {FOOD} 条）"
        assert _page(client, "/penalties?category=药品")[0] == "行政处罚（共 3 条）"
        assert client.get(f"/api/v1{food}&district=莱山区").json()["total"] == 0
        assert len(counted) == 3
        counted.clear()
        # the district's code is the same filter as its name: counted already
        assert _page(client, f"{food}&district=370602")[0] == f"行政处罚（共 {FOOD} 条）"
        assert counted == []


def test_only_the_latest_filters_are_kept(engine, penalties):
    """A bounded cache: the least recently used filter is counted again."""
    counts = FilteredCounts(size=2)
    cache = stats.PublishedCache(engine)
    food, drugs, grade = (
        read.ListFilter(kind="penalty", category="食品"),
        read.ListFilter(kind="penalty", category="药品"),
        read.ListFilter(kind="credit_mark", grade="B"),
    )
    with engine.connect() as conn, counting(engine) as counted:
        assert counts.get(conn, cache, food) == (FOOD, False)
        assert counts.get(conn, cache, drugs) == (3, False)
        assert counts.get(conn, cache, food) == (FOOD, False)  # kept: no count
        assert len(counted) == 2
        assert counts.get(conn, cache, grade) == (0, False)  # drugs, least recent, goes
        assert counts.get(conn, cache, food) == (FOOD, False)
        assert len(counted) == 3
        assert counts.get(conn, cache, drugs) == (3, False)
        assert len(counted) == 4
