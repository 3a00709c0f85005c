"""/api/v1/changes — the change log, paged by cursor, for copies that must stay in step."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Parameter
from sqlalchemy import Connection

from portal.api.schemas import API_TAG, BAD_REQUEST, TOO_MANY, ChangesPage, Kind
from publishing import changes

PATH = "/api/v1/changes"
DESCRIPTION = """变更日志：每一次公示记录的新增（add）、变更（change）、撤销（withdraw）和公示期满（expire），
按 seq 递增排列。

同步方法：从 `since=0` 开始，把返回的 `next` 作为下一次请求的 `since`，直到 `has_more` 为 false；
之后定期用最新的 `next` 轮询。按顺序应用事件：`record` 不为 null 的事件写入（以 `record_id` 为键），
`record` 为 null 的事件删除该 `record_id`。这样得到的副本与公示中的记录完全一致。

`record` 是该记录**当前**的公示内容：若某条 add/change 所涉记录之后已停止公示，`record` 为 null，
后面一定还有相应的撤销或期满事件。"""


@get(
    PATH,
    name="api_changes",
    sync_to_thread=True,
    tags=[API_TAG],
    summary="变更日志（游标分页）",
    description=DESCRIPTION,
    responses={400: BAD_REQUEST, 429: TOO_MANY},
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
    data = changes.page(conn, since=since, limit=limit, kind=kind)
    headers = {"Cache-Control": "public, max-age=5"}
    if data["has_more"]:
        query = {"since": data["next"], "limit": limit, **({"kind": kind} if kind else {})}
        headers["Link"] = f'<{PATH}?{urlencode(query)}>; rel="next"'
    return Response(data, headers=headers)


route_handlers = [change_log]
