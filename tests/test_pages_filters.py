"""The filter forms of the listings and the search page: a bad filter value gets the listing
page back (400) with the form, the values entered and the error beside its field, where the
JSON twin keeps its plain 400; and the grade selects offer only the grades that some credit
mark published by entity has (none when 信用风险分类 is published only as statistics)."""

from __future__ import annotations

import pytest
from lxml import html as lhtml

from tests.api_helpers import api_client, publish_csv
from tests.factories import credit_mark_row, penalty_row
from tests.test_scheme_statistics import (  # noqa: F401 - fixtures: the scheme as statistics
    hidden_rules,
    published,
)

BAD_RANGE = "/penalties?from=2026-10-01&to=2026-01-01"


@pytest.fixture
def marks(engine, tmp_path):
    """Two penalties, and public credit marks graded B and D (the default rules)."""
    publish_csv(engine, tmp_path, "p.csv", [penalty_row(1), penalty_row(2)])
    rows = [credit_mark_row(3, 分类结果="B"), credit_mark_row(4, 分类结果="D")]
    publish_csv(engine, tmp_path, "c.csv", rows)


def _field(doc, field_id: str):
    [field] = doc.xpath(f'//*[@id="{field_id}"]')
    return field


def _options(doc, select_id: str) -> list[str]:
    return [o.get("value") for o in doc.xpath(f'//select[@id="{select_id}"]/option')]


def test_a_bad_date_range_gets_the_page_with_the_error_beside_the_field(engine, marks):
    with api_client(engine) as client:
        page = client.get(BAD_RANGE)
        api = client.get("/api/v1" + BAD_RANGE)
    assert page.status_code == 400 and "text/html" in page.headers["content-type"]
    doc = lhtml.fromstring(page.text)
    assert doc.xpath("//h1")[0].text_content() == "行政处罚"
    [form] = doc.xpath('//form[@class="filters"]')
    assert _field(form, "f-from").get("value") == "2026-10-01"
    assert _field(form, "f-to").get("value") == "2026-01-01"
    error = _field(doc, "e-from")
    assert "起始日期（2026-10-01）晚于结束日期（2026-01-01）" in error.text_content()
    assert _field(doc, "f-from").get("aria-invalid") == "true"
    assert _field(doc, "f-from").get("aria-describedby") == "e-from"
    assert _field(doc, "f-to").get("aria-invalid") is None
    assert doc.xpath('//*[@role="alert"]//a[@href="#f-from"]')
    assert not doc.xpath("//table")  # nothing is listed for a filter that cannot be used
    # the JSON twin: the error alone, as before
    assert api.status_code == 400 and "晚于结束日期" in api.json()["detail"]


def test_every_bad_field_is_named(engine, marks):
    with api_client(engine) as client:
        page = client.get("/credit-marks?district=火星&to=2026-13-01&grade=Z&category=其他")
    assert page.status_code == 400
    doc = lhtml.fromstring(page.text)
    for name, message in (
        ("district", "未知的区市：火星"),
        ("to", "结束日期格式"),
        ("grade", "分类结果应为"),
    ):
        assert message in _field(doc, f"e-{name}").text_content(), name
        assert _field(doc, f"f-{name}").get("aria-invalid") == "true", name
    assert _field(doc, "f-category").get("aria-invalid") is None
    assert 'value="其他" selected' in page.text  # the values entered stay in the form


def test_grade_selects_offer_the_grades_in_use(engine, marks):
    with api_client(engine) as client:
        search = lhtml.fromstring(client.get("/search").text)
        listing = lhtml.fromstring(client.get("/credit-marks").text)
        chosen = lhtml.fromstring(client.get("/credit-marks?grade=A").text)
    assert _options(search, "s-grade") == ["", "B", "D"]
    assert _options(listing, "f-grade") == ["", "B", "D"]
    # a grade asked for in the URL stays selected, though nothing has it
    assert _options(chosen, "f-grade") == ["", "A", "B", "D"]


def test_no_grade_select_when_the_graded_scheme_is_statistics_only(engine, published):  # noqa: F811 - fixture
    with api_client(engine) as client:
        search = client.get("/search").text
        listing = client.get("/credit-marks").text
    assert 'id="s-grade"' not in search and 'id="f-grade"' not in listing
    assert 'id="statistics"' in listing  # the scheme's figures are still there
    assert (
        "A类"
        in lhtml.fromstring(listing).xpath('//section[@id="statistics"]//thead')[0].text_content()
    )
