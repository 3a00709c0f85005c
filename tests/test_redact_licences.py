"""Public identifiers that read like a mobile glued to digits are not masked: 食品经营许可证 numbers
(JY1 + province 37 …), 仅销售预包装食品 filing numbers (YB1…), 食品生产许可证 numbers (SC1…) and
unlabeled case or report numbers of 13–15 digits starting 13–19. A glued mobile is still masked
after a phone label, or after a trunk or area-code prefix. Masker-level cases, then the real
publish path and `disclosure scrub` (dry run) on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from publishing.commit import RECORDS
from publishing.publish import publish
from publishing.redact import mask_text
from publishing.scrub import scrub
from tests.factories import penalty_row, write_csv

JY = "JY13706020012345"  # 食品经营许可证: JY, 1 (预包装/散装), 37 山东, 0602 芝罘 …
YB = "YB13706020012345"  # 仅销售预包装食品备案
SC = "SC13137068200123"  # 食品生产许可证: SC, 131 (粮食加工品), 37 06 82 …
CASE_NO = "13706022024001"  # an unlabeled case number: 370602, 2024, 001

PUBLIC = [
    f"食品经营许可证编号{JY}",
    f"食品经营许可证编号：{JY}，",
    f"许可证编号 {JY}",
    f"许可证号：{JY}",
    f"许可证号{YB}",
    f"仅销售预包装食品备案编号：{YB}。",
    f"食品生产许可证编号{SC}",
    f"许可证号：{SC}；{JY}",
    "许可证号：ＪＹ１３７０６０２００１２３４５",  # full width
    f"经营者（{JY}）",
    f"{JY}",
    "许可证号JY053513900151016",  # a letter before an area-code prefix: a code too
    f"案件编号：{CASE_NO}",
    f"案件编号{CASE_NO}",
    f"报告编号：{CASE_NO}1",  # 15 digits
    "检验报告编号1390015101234",  # 13 digits
    "Hotel1390015101712",  # tel inside a word is no label
]


@pytest.mark.parametrize("text", PUBLIC)
def test_licence_and_case_numbers_are_left_alone(text):
    assert mask_text(text) is text


MASKED = [
    ("电话1390015101712", "电话139******1712"),
    ("联系电话：1390015101712", "联系电话：139******1712"),
    ("手机号13900151015123", "手机号139*******5123"),
    ("电话号码 139009910151234", "电话号码 139********1234"),
    ("联系人电话1390015101712", "联系人电话139******1712"),
    ("联系方式：1390015101712", "联系方式：139******1712"),
    ("Tel1390015101712", "Tel139******1712"),  # a label, though a letter is glued on
    ("TEL: 1390015101712", "TEL: 139******1712"),
    ("tel.1390015101712", "tel.139******1712"),
    ("Mobile：1390015101712", "Mobile：139******1712"),
    # A trunk or area-code prefix cannot start a case number: masked without a label.
    ("当事人053513900151016", "当事人0535139****1016"),
    ("053513900151016", "0535139****1016"),
    ("案件编号：01013900151015", "案件编号：010139****1015"),
    ("联系人0139001510151", "联系人0139*****0151"),
    # A licence number beside a labelled mobile: each read on its own.
    (f"许可证号{JY}，电话1390015101712", f"许可证号{JY}，电话139******1712"),
    # A plain 11-digit mobile after a letter is still a mobile.
    ("ABC13900151015", "ABC139****1015"),
]


@pytest.mark.parametrize(("text", "masked"), MASKED)
def test_a_glued_mobile_after_a_phone_label_or_a_prefix_is_masked(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize("text", PUBLIC + [masked for _, masked in MASKED])
def test_masking_twice_changes_nothing(text):
    once = mask_text(text)
    assert mask_text(once) == once


# -- end to end: publish, then scrub -----------------------------------------------------------

LICENCE_FACTS = f"当事人持有食品经营许可证（许可证编号：{JY}），{SC}生产的食品超过保质期。"
CASE_FACTS = f"案件编号：{CASE_NO}，当事人经营超过保质期的食品。"
PHONE_FACTS = "当事人（联系电话1390015101712）经营超过保质期的食品。"


def _facts(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {r.data["decision_no"]: r.data["facts"]
                for r in conn.execute(select(RECORDS.c.data))}


def test_a_licence_number_is_published_and_scrub_leaves_it(engine, tmp_path):
    rows = [penalty_row(1, 违法事实=LICENCE_FACTS), penalty_row(2, 违法事实=CASE_FACTS),
            penalty_row(3, 违法事实=PHONE_FACTS), penalty_row(4)]
    result = publish([write_csv(tmp_path / "p.csv", rows)], engine=engine, show_progress=False)
    assert result.published, result.as_json()
    facts = _facts(engine)
    assert facts["烟芝市监罚〔2026〕1号"] == LICENCE_FACTS
    assert facts["烟芝市监罚〔2026〕2号"] == CASE_FACTS
    assert "1390015101712" not in facts["烟芝市监罚〔2026〕3号"]
    assert "139******1712" in facts["烟芝市监罚〔2026〕3号"]
    # A record an older release stored with a licence number in it (before the glued-mobile
    # rule): today's masking wants it as it is.
    with engine.begin() as conn:
        row = conn.execute(select(RECORDS.c.id, RECORDS.c.data)
                           .where(RECORDS.c.entity_id == rows[3]["统一社会信用代码"])).one()
        conn.execute(update(RECORDS).where(RECORDS.c.id == row.id)
                     .values(data={**row.data, "facts": f"许可证号：{YB}，{LICENCE_FACTS}"}))
    dry = scrub(engine, dry_run=True)
    assert dry.items == [] and not dry.counts and not dry.wrote, dry.as_json()
