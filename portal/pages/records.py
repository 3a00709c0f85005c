"""/records/{id} — one published record; gone (withdrawn, expired, superseded, held back) → 410."""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy import Connection

from portal import routes
from portal.api.schemas import RecordPage
from portal.errors import gone, not_found
from portal.pages.common import twin
from portal.render import Page, respond
from publishing import read

_ID = re.compile(r"^[a-z]{2}-[0-9a-f]{16}\Z")
GONE_DETAIL = "该记录已停止公示（已撤销、公示期满或已被更新），不再提供详细内容。"


def record_data(conn: Connection, record_id: str) -> dict[str, Any]:
    rec = read.record(conn, record_id) if _ID.match(record_id) else None
    if rec is None:
        raise not_found("未找到该公示记录，请检查链接是否正确。")
    if not read.is_visible(rec):
        raise gone(record_id, GONE_DETAIL)
    return {"record": rec, "objection_pending": read.objection_pending(conn, record_id=record_id)}


@twin(
    routes.RECORD,
    model=RecordPage,
    summary="一条公示记录",
    description='已撤销、公示期满或已被更新的记录返回 410 和 {"id": …, "status": "gone"}。',
)
def record_page(
    request: Request, conn: NamedDependency[Connection], record_id: FromPath[str]
) -> Response:
    data = record_data(conn, record_id)
    rec = data["record"]
    feeds = (
        [{"title": "该主体的信用信息变更（Atom）", "url": routes.entity_feed_url(rec["entity_id"])}]
        if rec.get("entity_id")
        else []
    )
    return respond(request, Page("record.html", data, feeds=feeds))


route_handlers = [*record_page]
