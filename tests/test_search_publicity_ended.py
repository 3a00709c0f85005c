"""A record past its publicity_until but not yet expired (the nightly `disclosure expire` late or
failing) is gone from the search and from the blacklist issue lists, as from its own page (410)
and its entity's profile (404), from 00:00 Beijing of the next day. On SQLite and PostgreSQL,
with both search backends (embedded; Meilisearch through the fake server at the HTTP boundary,
tests/fake_meili.py); the portal through Litestar's test client, the day moved by setting
publishing.clock.today."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from litestar.testing import TestClient
from lxml import etree
from sqlalchemy import select

from portal.app import create_app
from publishing import clock, read
from publishing.commit import RECORDS
from publishing.publish import publish
from publishing.search.sync import reindex
from tests.factories import blacklist_row, penalty_row, write_csv
from tests.search_backends import meili, search_backend  # noqa: F401 - fixtures

PUBLISHED_ON = clock.today()
ENDED_NO, SHOWN_NO = "烟芝市监罚〔2026〕71号", "烟芝市监罚〔2026〕72号"
ENDED_NAME, SHOWN_NAME = "烟台期满测试甲商行", "烟台期满测试乙商行"
COMMON = "期满测试"  # in both names: a search that finds both
ISSUE_ENDED, ISSUE_PART = "2026年第1期", "2026年第2期"
NS = {"a": "http://www.w3.org/2005/Atom"}


def _publish(engine, path) -> None:
    result = publish([path], engine=engine, show_progress=False, today=PUBLISHED_ON)
    assert result.published, result.as_json()


def _until(engine, **data: str) -> date:
    """The publicity_until of the one record whose data has these values."""
    conds = [RECORDS.c.data[key].as_string() == value for key, value in data.items()]
    with engine.connect() as conn:
        return conn.execute(select(RECORDS.c.publicity_until).where(*conds)).scalar_one()


@pytest.fixture
def ended_day(engine, tmp_path, search_backend, monkeypatch) -> date:  # noqa: F811 - fixture
    """Two penalties of two entities, the first decided ten months before the second, and two
    blacklist issues: the first's two entries end with the first penalty, one of the second's
    three too. Indexed, then the clock moved to the day after those ended: nothing expired."""
    penalties = [
        penalty_row(71, 当事人名称=ENDED_NAME, 行政处罚决定书文号=ENDED_NO, 处罚决定日期="2026-01-10"),
        penalty_row(72, 当事人名称=SHOWN_NAME, 行政处罚决定书文号=SHOWN_NO, 处罚决定日期="2026-11-10"),
    ]
    _publish(engine, write_csv(tmp_path / "p.csv", penalties))
    ended = _until(engine, decision_no=ENDED_NO)
    rows = [blacklist_row(n, issue=ISSUE_ENDED, 发布日期="2026-01-10", 公示截止日期=ended.isoformat())
            for n in (81, 82)]
    rows.append(blacklist_row(83, issue=ISSUE_PART, 公示截止日期=ended.isoformat()))
    rows += [blacklist_row(n, issue=ISSUE_PART, 公示截止日期="") for n in (84, 85)]
    _publish(engine, write_csv(tmp_path / "b.csv", rows))
    reindex(engine, search_backend)
    day = ended + timedelta(days=1)
    assert _until(engine, decision_no=SHOWN_NO) >= day
    monkeypatch.setattr(clock, "today", lambda: day)
    return day


@pytest.fixture
def client(engine, search_backend, ended_day):  # noqa: F811 - fixture
    app = create_app(engine)
    app.state.search_backend = search_backend
    with TestClient(app) as client:
        yield client


def _search(client, q: str) -> dict:
    answer = client.get("/api/v1/search", params={"q": q})
    assert answer.status_code == 200, answer.text[:300]
    return answer.json()


def _record_id(client, decision_no: str) -> str:
    with client.app.state.engine.connect() as conn:
        query = select(RECORDS.c.id).where(RECORDS.c.data["decision_no"].as_string() == decision_no)
        return conn.execute(query).scalar_one()


def test_a_record_past_its_publicity_is_not_found(client):
    ended_id = _record_id(client, ENDED_NO)
    assert client.get(f"/records/{ended_id}").status_code == 410  # the page says gone
    assert client.get("/entities/" + penalty_row(71)["统一社会信用代码"]).status_code == 404

    by_number = _search(client, ENDED_NO)
    assert ENDED_NO not in str(by_number["hits"]) and ended_id not in str(by_number["hits"])
    # counted out of the total; the page says why it is empty, and keeps the index's pages
    assert (by_number["total"], by_number["withheld"], by_number["pages"]) == (0, 1, 1)
    emptied = client.get("/search", params={"q": ENDED_NO}).text
    assert "本页有 1 条结果已公示期满" in emptied and "没有找到符合条件" not in emptied

    both = _search(client, COMMON)
    assert [h["title"].split(" · ")[0] for h in both["hits"]] == [SHOWN_NAME, SHOWN_NAME]
    assert {h["type"] for h in both["hits"]} == {"entity", "penalty"}
    assert (both["total"], both["withheld"]) == (2, 2)  # the ended record and its entity
    for hit in both["hits"]:
        assert client.get(hit["url"]).status_code == 200, hit

    page = client.get("/search", params={"q": COMMON})
    assert page.status_code == 200 and ENDED_NAME not in page.text and SHOWN_NAME in page.text
    assert ENDED_NAME not in client.get("/search", params={"q": ENDED_NO}).text


def test_the_search_feed_leaves_it_out(client):
    for q in (ENDED_NO, COMMON):
        answer = client.get("/search/feed.atom", params={"q": q})
        assert answer.status_code == 200, answer.text[:300]
        titles = [e.findtext("a:title", namespaces=NS)
                  for e in etree.fromstring(answer.content).findall("a:entry", NS)]
        assert not any(ENDED_NAME in t for t in titles), (q, titles)
        assert any(SHOWN_NAME in t for t in titles) == (q == COMMON), (q, titles)


def _issue_list(client) -> dict[str, int]:
    """/api/v1/blacklist: issue number → entries counted; /blacklist lists the same issues."""
    issues = client.get("/api/v1/blacklist").json()["issues"]
    html = client.get("/blacklist").text
    for issue in issues:
        assert issue["url"] in html
        assert client.get(f"/api/v1/blacklist/{issue['id']}").json()["issue"]["entry_count"] == (
            issue["entry_count"]
        )
    return {issue["issue_no"]: issue["entry_count"] for issue in issues}


def test_an_issue_lists_its_entries_in_publication_only(client, engine):
    assert _issue_list(client) == {ISSUE_PART: 2}
    with engine.connect() as conn:
        [gone] = [i for i in read.blacklist_issues(conn, today=PUBLISHED_ON) if i["issue_no"] == ISSUE_ENDED]
        assert gone["entry_count"] == 2  # before the day: listed, both entries
    assert ISSUE_ENDED not in client.get("/blacklist").text
    answer = client.get(f"/api/v1/blacklist/{gone['id']}")
    assert answer.status_code == 410
    assert [i["issue_no"] for i in client.get("/api/v1/").json()["latest_issues"]] == [ISSUE_PART]
