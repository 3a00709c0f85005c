"""/api/v1/changes — the change log, paged by cursor, for copies that must stay in step."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Parameter
from sqlalchemy import Connection

from portal.api.schemas import API_TAG, BAD_REQUEST, TOO_MANY, ChangesPage, Kind, problem
from portal.errors import PageError
from publishing import changes

PATH = "/api/v1/changes"
DESCRIPTION = """变更日志：每一次公示记录的新增（add）、变更（change）、撤销（withdraw）和公示期满（expire），
按 seq 递增排列。

同步方法：从 `since=0` 开始，把返回的 `next` 作为下一次请求的 `since`，直到 `has_more` 为 false；
之后定期用最新的 `next` 轮询。按顺序应用事件：`record` 不为 null 的事件写入（以 `record_id` 为键），
`record` 为 null 的事件删除该 `record_id`。这样得到的副本与公示中的记录完全一致。

`record` 是该记录**当前**的公示内容：若某条 add/change 所涉记录之后已停止公示（撤销、期满，
或公示截止日期已过），`record` 为 null，后面一定还有相应的撤销或期满事件。

`since` 大于最新的 seq 时返回 409（`status` 为 `cursor_ahead`，`head` 为当前最新 seq）：
这说明数据库已从较早的备份恢复，此后的 seq 会重新分配给其他事件，副本可能含有已不存在的记录。
请清空副本，从 `since=0`（或 /open-data/index.json 的最新快照）重新同步，不要继续轮询原游标。"""
CURSOR_AHEAD = problem(
    "游标超出变更日志（数据库已从备份恢复）：请清空副本，从 since=0 或最新快照重新同步",
    {
        "status_code": 409,
        "status": "cursor_ahead",
        "detail": "游标 2603 超出当前变更日志（最新 seq 为 2602）……",
        "since": 2603,
        "head": 2602,
        "resync_from": 0,
        "snapshot_index": "/open-data/index.json",
    },
)


@get(
    PATH,
    name="api_changes",
    sync_to_thread=True,
    tags=[API_TAG],
    summary="变更日志（游标分页）",
    description=DESCRIPTION,
    responses={400: BAD_REQUEST, 409: CURSOR_AHEAD, 429: TOO_MANY},
)
def change_log(
    conn: NamedDependency[Connection],
    since: Annotated[
        int,
        Parameter(
            ge=0,
            le=2**62,
            description="游标：上一页返回的 next；从头同步用 0",
            examples=[Example(value=0), Example(value=1200)],
        ),
    ] = 0,
    limit: Annotated[
        int,
        Parameter(
            ge=1, le=changes.MAX_LIMIT, description="每页最多事件数", examples=[Example(value=1000)]
        ),
    ] = changes.DEFAULT_LIMIT,
    kind: Annotated[
        Kind | None,
        Parameter(description="只看某一类信息的事件", examples=[Example(value="penalty")]),
    ] = None,
) -> Response[ChangesPage]:
    try:
        data = changes.page(conn, since=since, limit=limit, kind=kind)
    except changes.CursorAhead as exc:
        raise _cursor_ahead(exc) from None
    headers = {"Cache-Control": "public, max-age=5"}
    if data["has_more"]:
        query = {"since": data["next"], "limit": limit, **({"kind": kind} if kind else {})}
        headers["Link"] = f'<{PATH}?{urlencode(query)}>; rel="next"'
    return Response(data, headers=headers)


def _cursor_ahead(exc: changes.CursorAhead) -> PageError:
    detail = (
        f"游标 {exc.since} 超出当前变更日志（最新 seq 为 {exc.head}）：数据库已从较早的备份恢复，"
        "此后的 seq 将重新分配给其他事件。请清空副本，从 since=0 或最新快照重新同步。"
    )
    payload = {
        "status_code": 409,
        "status": "cursor_ahead",
        "detail": detail,
        "since": exc.since,
        "head": exc.head,
        "resync_from": 0,
        "snapshot_index": "/open-data/index.json",
    }
    return PageError(detail, status_code=409, payload=payload)


route_handlers = [change_log]
