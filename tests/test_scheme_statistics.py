"""A credit-mark scheme switched off in the publicity rules (`public = false`) is published only
as aggregate statistics: the /credit-marks page's statistics section and
/api/v1/credit-marks/statistics count its marks in publication by grade × district, and name no
entity. And the counts of the home page and the listings are of what is in publication today,
also before the nightly expiry has run."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
from lxml import html
from sqlalchemy import func, select

from publishing import clock, read
from publishing.commit import RECORDS
from publishing.contract import DISTRICTS, KINDS, district_code
from publishing.db import analyze, make_engine, upgrade
from publishing.publish import publish
from publishing.rules import DEFAULT_RULES_FILE, load_rules
from publishing.sample import generate
from publishing.settings import get_settings
from tests.api_helpers import api_client, publish_csv
from tests.conftest import PG_ADMIN_URL, _worker
from tests.factories import credit_mark_row, penalty_row
from tests.test_query_plans import _admin, _admin_on, _record_reads, _statements

TODAY = clock.today()
SCHEME = "信用风险分类"
STATISTICS_NOTE = "按规定仅公开统计数据，不公开具体企业"
MARK_HEADER = [*credit_mark_row(1), "有效期至"]
# (grade, district as the source writes it) of the hidden scheme's marks, entities 1…
HIDDEN = [
    ("A", "芝罘区"), ("A", "芝罘区"), ("B", "芝罘区"), ("C", "莱山区"), ("E", "莱山区"),
    ("B", "开发区"), ("D", "370614"), ("A", "市本级"), ("B", "莱山区"), ("C", "芝罘区"),
]


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


def hide_scheme(tmp_path, monkeypatch, scheme: str = SCHEME) -> Path:
    """A rules file (DISCLOSURE_RULES_FILE) that publishes `scheme` only as statistics."""
    text = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
    public = f'[credit_mark.schemes."{scheme}"]\npublic = true'
    assert public in text
    path = tmp_path / "rules.toml"
    path.write_text(text.replace(public, public.replace("true", "false")), encoding="utf-8")
    monkeypatch.setenv("DISCLOSURE_RULES_FILE", str(path))
    get_settings.cache_clear()
    load_rules.cache_clear()
    assert not load_rules().scheme_is_public(scheme)
    return path


@pytest.fixture
def hidden_rules(engine, tmp_path, monkeypatch):
    """信用风险分类 published only as statistics."""
    yield hide_scheme(tmp_path, monkeypatch)
    load_rules.cache_clear()


def hidden_rows() -> list[dict[str, str]]:
    """The hidden scheme's marks, one whose validity ended yesterday (still `aggregate` until
    the expiry job runs, yet out of its publicity) among them."""
    rows = [
        credit_mark_row(n, 分类结果=grade, 所属区市=district, 有效期至="")
        for n, (grade, district) in enumerate(HIDDEN, start=1)
    ]
    rows.append(credit_mark_row(11, 分类结果="A", 所属区市="芝罘区", 有效期至=day(-1)))
    return rows


def expected(rows: list[dict[str, str]]) -> Counter:
    """(grade, district code) → number of the rows in publication today."""
    return Counter(
        (r["分类结果"], district_code(r["所属区市"]))
        for r in rows
        if not r["有效期至"] or r["有效期至"] >= TODAY.isoformat()
    )


@pytest.fixture
def published(engine, tmp_path, hidden_rules):
    """The hidden scheme's marks (published a month ago, when all were valid) and a public
    mark (严重违法失信名单) of entity 50, which the listing shows."""
    rows = hidden_rows()
    publish_csv(engine, tmp_path, "c.csv", rows, header=MARK_HEADER, today=TODAY - timedelta(days=30))
    public = credit_mark_row(50, 标注类型="严重违法失信名单", 分类结果="", 有效期至="")
    publish_csv(engine, tmp_path, "l.csv", [public], header=MARK_HEADER)
    return rows


def api_cells(scheme: dict) -> Counter:
    return Counter(
        {
            (grade, d["district_code"]): n
            for d in scheme["by_district"]
            for grade, n in d["by_grade"].items()
            if n
        }
    )


def page_cells(page: str) -> tuple[Counter, list[str]]:
    """(grade, district code) → the figure of the page's statistics table, and its columns."""
    doc = html.fromstring(page)
    [table] = doc.xpath('//section[@id="statistics"]//table')
    columns = [th.text_content().strip() for th in table.xpath("./thead/tr/th")][1:]
    codes = {name: code for code, name in DISTRICTS.items()}
    cells: Counter = Counter()
    for tr in table.xpath("./tbody/tr"):
        code = codes[tr.xpath("./th")[0].text_content().strip()]
        for column, td in zip(columns, tr.xpath("./td"), strict=True):
            if column != "合计" and int(td.text_content().replace(",", "")):
                cells[(column.removesuffix("类"), code)] = int(td.text_content())
    return cells, columns


def test_statistics_are_the_counts_of_the_marks_in_publication(published, engine):
    want = expected(published)
    with api_client(engine) as client:
        r = client.get("/api/v1/credit-marks/statistics")
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "public, max-age=60" and r.headers["etag"]
        assert '</credit-marks>; rel="alternate"' in r.headers["link"]
        again = client.get("/api/v1/credit-marks/statistics", headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304
        body = r.json()
        page = client.get("/credit-marks")
        assert page.status_code == 200
        listing = client.get("/api/v1/credit-marks").json()

    assert body["date"] == TODAY.isoformat() and body["note"] == STATISTICS_NOTE
    [scheme] = body["schemes"]
    assert scheme["scheme"] == SCHEME and scheme["grades"] == ["A", "B", "C", "D", "E"]
    assert api_cells(scheme) == want
    assert scheme["total"] == sum(want.values())
    assert scheme["by_grade"] == {g: sum(n for (grade, _), n in want.items() if grade == g)
                                  for g in "ABCDE"}
    by_district = {d["district_code"]: d["count"] for d in scheme["by_district"]}
    assert list(by_district) == list(DISTRICTS)  # every district, in the table's order
    assert by_district == {c: sum(n for (_, code), n in want.items() if code == c) for c in DISTRICTS}

    cells, columns = page_cells(page.text)
    assert columns == ["A类", "B类", "C类", "D类", "E类", "合计"]
    assert cells == want
    assert f"{SCHEME}{STATISTICS_NOTE}" in page.text
    assert f"共 {sum(want.values())} 条" in page.text
    assert [r["scheme"] for r in listing["records"]] == ["严重违法失信名单"]

    for row in published:  # no entity of the hidden scheme, in the page or the API
        for output in (page.text, r.text, str(listing)):
            assert row["主体名称"] not in output and row["统一社会信用代码"] not in output


def test_no_statistics_while_every_scheme_is_public(engine, tmp_path):
    publish_csv(engine, tmp_path, "c.csv", hidden_rows(), header=MARK_HEADER)
    with api_client(engine) as client:
        body = client.get("/api/v1/credit-marks/statistics").json()
        page = client.get("/credit-marks").text
    assert body["schemes"] == []
    assert 'id="statistics"' not in page and STATISTICS_NOTE not in page


def test_a_scheme_made_public_again_leaves_the_statistics(published, engine, hidden_rules):
    from publishing.expire import expire

    expire(engine, today=TODAY, rules=load_rules(DEFAULT_RULES_FILE))
    with engine.connect() as conn:
        assert read.scheme_statistics(conn, TODAY) == []
        assert read.categories(conn, "credit_mark", TODAY) == ["严重违法失信名单", SCHEME]


def test_expiry_takes_ended_marks_out_of_the_statistics_silently(published, engine, hidden_rules):
    """`disclosure expire` expires a statistics-only mark past its end, without an event (it
    was never published one by one); a scheme made public again then announces only the marks
    still in publication (the ended one was added, past its end, before)."""
    from publishing.commit import EVENTS
    from publishing.expire import expire

    ended = [r for r in published if r["有效期至"]]
    with engine.connect() as conn:
        [ended_id] = conn.execute(
            select(RECORDS.c.id).where(RECORDS.c.entity_id == ended[0]["统一社会信用代码"])
        ).scalars()
        seq = conn.execute(select(func.max(EVENTS.c.seq))).scalar()
    counts = expire(engine, today=TODAY)
    assert counts["expired_statistics"] == 1 and counts["expired"] == 0
    counts = expire(engine, today=TODAY, rules=load_rules(DEFAULT_RULES_FILE))
    assert counts["republished"] == sum(expected(published).values())
    with engine.connect() as conn:
        status = conn.execute(select(RECORDS.c.status).where(RECORDS.c.id == ended_id)).scalar()
        announced = conn.execute(select(EVENTS.c.record_id).where(EVENTS.c.seq > seq)).scalars().all()
    assert status == "expired"
    assert ended_id not in announced and len(announced) == counts["republished"]


def test_counts_leave_out_records_past_their_publicity(engine, tmp_path):
    """A penalty whose publicity ended yesterday stays `active` until `disclosure expire`
    runs; the pages already treat it as gone, and so do the counts (home page, listings)."""
    rows = [
        penalty_row(1, 公示截止日期=""),
        penalty_row(2, 所属区市="莱山区", 公示截止日期=""),
        penalty_row(3, 所属区市="莱山区", 公示截止日期=day(-1)),
        penalty_row(4, 公示截止日期=day(0)),  # its last day: still in publication
    ]
    header = [*penalty_row(1), "公示截止日期"]
    publish_csv(engine, tmp_path, "p.csv", rows, header=header, today=TODAY - timedelta(days=30))
    shown = Counter(
        district_code(r["所属区市"])
        for r in rows
        if not r["公示截止日期"] or r["公示截止日期"] >= TODAY.isoformat()
    )
    with engine.connect() as conn:
        counts = read.counts(conn)
        listed = read.list_records(conn, read.ListFilter(kind="penalty"), today=TODAY)
        assert counts["by_kind"]["penalty"] == sum(shown.values()) == len(listed)
        assert {c: k["penalty"] for c, k in counts["by_district"].items() if k["penalty"]} == shown
        later = read.counts(conn, TODAY + timedelta(days=1))
        assert later["by_kind"]["penalty"] == 2  # the last day of no. 4 has passed too
    with api_client(engine) as client:
        home = client.get("/api/v1").json()
        listing = client.get("/api/v1/penalties").json()
        district = client.get("/api/v1/penalties?district=莱山区").json()
    assert next(k["count"] for k in home["kinds"] if k["kind"] == "penalty") == len(listed)
    laishan = next(d for d in home["districts"] if d["name"] == "莱山区")
    assert laishan["counts"]["penalty"] == laishan["total"] == shown["370613"] == 1
    assert listing["total"] == len(listing["records"]) == len(listed)
    assert district["total"] == len(district["records"]) == 1


# -- query plans: a sample world with the scheme switched off ---------------------------------

PLAN_DAY = date(2026, 11, 27)


@pytest.fixture(scope="module", params=("sqlite", "postgresql"))
def world(request, tmp_path_factory):
    """The sample world (20,000 entities: ~19,000 hidden marks of ~33,000 records) published
    with the scheme switched off, 50 hidden marks whose validity has ended, analyzed."""
    out = tmp_path_factory.mktemp("statistics-plans")
    rules = out / "rules.toml"
    text = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
    rules.write_text(text.replace(f'"{SCHEME}"]\npublic = true', f'"{SCHEME}"]\npublic = false'))
    hidden = load_rules(rules)
    generate(out / "sample", 20_000, seed=7, today=PLAN_DAY)
    if request.param == "sqlite":
        engine, name = make_engine(f"sqlite:///{out / 'plans.db'}"), None
    else:
        name = f"disclosure_statistics_plans_{_worker()}"
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
        engine = make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    upgrade(engine)
    files = sorted((out / "sample").iterdir())
    assert publish(files, engine=engine, today=PLAN_DAY, rules=hidden, show_progress=False).published
    ended = [credit_mark_row(900_000 + n, 有效期至=str(PLAN_DAY - timedelta(days=1)))
             for n in range(50)]
    publish_csv(engine, out, "ended.csv", ended, header=MARK_HEADER,
                today=PLAN_DAY - timedelta(days=30), rules=hidden)
    analyze(engine)
    if name:  # the steady state (see tests/test_query_plans.py)
        _admin_on(engine, "VACUUM")
    yield engine
    engine.dispose()
    if name:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def plans(engine, call) -> list[tuple[str, list[str]]]:
    """(statement, how it reads the records) of each statement `call` sends; none of them
    scans a whole table (tests/test_query_plans.py's check)."""
    return [(s, _record_reads(engine, s, p)) for s, p in _statements(engine, call)]


def test_statistics_read_the_covering_index_and_the_ended_marks_by_seeks(world):
    """No full scan: the marks are counted in ix_records_kind_category_date alone (no read of
    their rows), the ended ones found in ix_records_status_until (counted, then read)."""
    with world.connect() as conn:
        [scheme] = read.scheme_statistics(conn, PLAN_DAY)
    assert scheme["scheme"] == SCHEME and scheme["total"] > 10_000
    checked = plans(world, lambda c: read.scheme_statistics(c, PLAN_DAY))
    [grouped] = [reads for statement, reads in checked if "GROUP BY" in statement]
    if world.dialect.name == "sqlite":
        assert grouped == ["SEARCH records USING COVERING INDEX ix_records_kind_category_date"
                           " (kind=? AND category=? AND status=?)"], grouped
    else:
        assert len(grouped) == 1 and "Index Only Scan ix_records_kind_category_date" in grouped[0]
    ended = [reads for _, reads in checked if any("ix_records_status_until" in r for r in reads)]
    assert len(ended) == 2, checked


def test_counts_read_covering_indexes_and_the_ended_records_by_seeks(world):
    later = PLAN_DAY + timedelta(days=60)  # penalties ended meanwhile, not yet expired
    with world.connect() as conn:
        counted = read.counts(conn, later)
        shown = conn.execute(select(func.count()).where(read.in_publication(later))).scalar_one()
        active = conn.execute(select(func.count()).where(RECORDS.c.status == "active")).scalar_one()
    assert sum(counted["by_kind"].values()) == shown < active
    checked = plans(world, lambda c: read.counts(c, later))
    assert len(checked) == len(KINDS) + 2, checked  # a query per kind; the ended: counted, read
    for _, reads in checked[: len(KINDS)]:
        assert len(reads) == 1 and "ix_records_kind_district_date" in reads[0], reads
    for _, reads in checked[len(KINDS):]:
        assert len(reads) == 1 and "ix_records_status_until" in reads[0], reads
