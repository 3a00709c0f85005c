"""An entity's name, former names and other fields are the merge of its records that are not
withdrawn: a record withdrawn by a file (操作=撤销) or on a credit repair no longer names the
entity (profile, search), while a newer record that stays published still renames it. On
SQLite and PostgreSQL, through the real publish and review paths."""

from __future__ import annotations

import io
from datetime import date

from sqlalchemy import select

from publishing import requests as rq
from publishing import review, users
from publishing.attachments import Upload
from publishing.commit import RECORDS
from publishing.publish import publish
from publishing.search.base import SearchQuery
from publishing.search.embedded import EmbeddedSearch
from publishing.search.sync import sync
from tests.api_helpers import api_client
from tests.factories import penalty_row, uscc, write_csv
from tests.requests_support import PDF, months_ago

TODAY = date(2026, 11, 27)
X = uscc(1)
OLD = "烟台海岸食品有限公司"  # the entity's name on its older records
NEW = "蓬莱蓝湾餐饮管理部"  # the name of its newest-dated record


def _row(n: int, name: str, day: str, **over: str) -> dict[str, str]:
    """A penalty of entity X (decision number n) under the name, decided on the day."""
    return penalty_row(n, 统一社会信用代码=X, 当事人名称=name, 处罚决定日期=day, **over)


def _publish(engine, path, today: date | None = TODAY) -> None:
    result = publish([path], engine=engine, today=today, show_progress=False)
    assert result.published, result.as_json()


def _withdraw(engine, tmp_path, name: str, row: dict[str, str]) -> None:
    _publish(engine, write_csv(tmp_path / name, [{**row, "操作": "撤销"}]))


def _entity(engine) -> dict:
    with api_client(engine) as client:
        response = client.get(f"/api/v1/entities/{X}")
    assert response.status_code == 200, response.text
    body = response.json()
    return body.get("entity", body)


def _names(engine) -> tuple[str, list[str]]:
    ent = _entity(engine)
    return ent["name"], ent["former_names"]


def _finds_entity(index: EmbeddedSearch, q: str) -> bool:
    hits = index.search(SearchQuery(q=q, types=("entity",), limit=50)).hits
    return X in {h.id for h in hits}


def test_a_withdrawn_newest_record_gives_the_entity_its_name_back(engine, tmp_path):
    older = [_row(1, OLD, "2026-06-01"), _row(2, OLD, "2026-09-01")]
    _publish(engine, write_csv(tmp_path / "a.csv", older))
    newest = _row(3, NEW, "2026-11-25")
    _publish(engine, write_csv(tmp_path / "b.csv", [newest]))
    assert _names(engine) == (NEW, [OLD])
    index = EmbeddedSearch(engine)
    index.rebuild([])
    sync(engine, index)
    assert _finds_entity(index, NEW)

    _withdraw(engine, tmp_path, "c.csv", newest)  # published in error
    ent = _entity(engine)
    assert (ent["name"], ent["former_names"]) == (OLD, [])
    sync(engine, index)  # the withdrawal's change event brings the entity's document along
    assert not _finds_entity(index, NEW)
    assert _finds_entity(index, OLD)


def test_a_newer_record_that_stays_published_still_renames_the_entity(engine, tmp_path):
    _publish(engine, write_csv(tmp_path / "a.csv", [_row(1, OLD, "2026-06-01"), _row(2, OLD, "2026-09-01")]))
    _publish(engine, write_csv(tmp_path / "b.csv", [_row(3, NEW, "2026-11-25")]))
    _withdraw(engine, tmp_path, "c.csv", _row(1, OLD, "2026-06-01"))  # an older one goes
    assert _names(engine) == (NEW, [OLD])  # record 2 still carries the former name
    _withdraw(engine, tmp_path, "d.csv", _row(2, OLD, "2026-09-01"))
    assert _names(engine) == (NEW, [])  # no published record carries it any more


def test_republishing_a_withdrawn_record_renames_the_entity_again(engine, tmp_path):
    _publish(engine, write_csv(tmp_path / "a.csv", [_row(1, OLD, "2026-06-01")]))
    newest = _row(3, NEW, "2026-11-25")
    _publish(engine, write_csv(tmp_path / "b.csv", [newest]))
    _withdraw(engine, tmp_path, "c.csv", newest)
    assert _names(engine) == (OLD, [])
    _publish(engine, write_csv(tmp_path / "d.csv", [newest]))
    assert _names(engine) == (NEW, [OLD])


def test_a_record_withdrawn_on_a_credit_repair_no_longer_names_the_entity(engine, tmp_path):
    approver, _ = users.add_user(engine, "wang", "approver", "correct horse battery staple")
    rows = [_row(1, OLD, months_ago(9), 领域="价格"),
            _row(2, NEW, months_ago(6), 领域="广告")]  # repairable now
    _publish(engine, write_csv(tmp_path / "a.csv", rows), today=None)
    assert _names(engine) == (NEW, [OLD])
    index = EmbeddedSearch(engine)
    index.rebuild([])
    sync(engine, index)
    with engine.connect() as conn:  # the newest-dated record, which gave the name
        repaired = conn.execute(select(RECORDS.c.id).where(RECORDS.c.entity_id == X)
                                .order_by(RECORDS.c.event_date.desc())).scalars().first()
    sub = rq.Submission(type="repair", uscc=X, record_ids=[repaired], contact_name="张三",
                        mobile="13912345678", reason="已经全额缴纳罚款并完成整改，申请提前停止公示。",
                        commitment=True, attachments=[Upload("proof.pdf", io.BytesIO(PDF))])
    tracking = rq.submit(engine, sub).tracking_no
    review.act(engine, tracking, approver, "approve", "准予信用修复。", sync_search=False)

    assert _names(engine) == (OLD, [])
    sync(engine, index)
    assert not _finds_entity(index, NEW)
    assert _finds_entity(index, OLD)
