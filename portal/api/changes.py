"""/api/v1/changes — the change log, paged by cursor, for copies that must stay in step."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from litestar import Response, get
from litestar.di import NamedDependency, Provide
from litestar.enums import MediaType
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Parameter
from sqlalchemy import Connection

from portal.api.schemas import API_TAG, BAD_REQUEST, TOO_MANY, ChangesPage, CursorConflict, Kind
from portal.errors import PageError
from portal.request_guard import api_key_holder
from publishing import changes

PATH = "/api/v1/changes"
# Without an API key a page is at most this many events (page_limit)
ANONYMOUS_MAX_LIMIT = changes.DEFAULT_LIMIT
DESCRIPTION = f"""变更日志：每一次公示记录的新增（add）、变更（change）、撤销（withdraw）和公示期满（expire），
按 seq 递增排列。seq 递增但不保证连续（试运行或未成功的发布会占用序号；按 kind 过滤时也会跳过其他类别），
出现间隔不代表漏掉了事件，请只按 `next` 继续。

同步方法：从 `since=0` 开始，把返回的 `next` 作为下一次请求的 `since`，直到 `has_more` 为 false；
之后定期用最新的 `next` 轮询。按顺序应用事件：`record` 不为 null 的事件写入（以 `record_id` 为键），
`record` 为 null 的事件删除该 `record_id`。这样得到的副本与公示中的记录完全一致。
从开放数据快照开始的，以 /open-data/index.json 的 `cursor` 作为第一次请求的 `since`。
每页条数由 `limit` 指定（默认 {changes.DEFAULT_LIMIT}）：带 API 密钥（请求头 X-API-Key）最多 {changes.MAX_LIMIT}；
不带密钥时每页最多 {ANONYMOUS_MAX_LIMIT} 条，更大的 `limit` 按 {ANONYMOUS_MAX_LIMIT} 处理（不报错），
请以 `has_more` 判断是否还有下一页，不要以条数判断。

`next` 是游标字符串（形如 `2602.3f9c0a1b2c4d5e6f`：seq 加上该 seq 对应事件的标识），请原样保存、
原样传回，不要自行拼接或比较大小。为兼容旧客户端，`since` 仍可为纯整数 seq，但纯整数无法发现下述
第二种情况，请尽快改用 `next` 返回的游标。

`record` 是该记录**当前**的公示内容：若某条 add/change 所涉记录之后已停止公示（撤销、期满，
或公示截止日期已过），`record` 为 null，后面一定还有相应的撤销或期满事件。

数据库从较早的备份恢复后，此后的 seq 会重新分配给其他事件，副本可能含有已不存在的记录，
接口返回 409，`head` 为当前最新 seq：
- `status` 为 `cursor_ahead`：游标的 seq 大于最新的 seq；
- `status` 为 `cursor_unknown`：游标的 seq 仍在日志范围内，但该 seq 上已不是游标所标识的事件。

两种情况都请清空副本，从 `since=0`（或 /open-data/index.json 的最新快照）重新同步，不要继续轮询原游标。
格式不正确的 `since` 返回 400。"""
RESYNC = {"resync_from": 0, "snapshot_index": "/open-data/index.json"}
CURSOR_CONFLICT = ResponseSpec(
    data_container=CursorConflict,
    description="游标与变更日志不符（数据库已从备份恢复）：请清空副本，从 since=0 或最新快照重新同步",
    examples=[
        Example(
            summary="cursor_ahead：游标超出最新 seq",
            value={
                "status_code": 409,
                "status": "cursor_ahead",
                "detail": "游标 2603 超出当前变更日志（最新 seq 为 2602）……",
                "since": 2603,
                "head": 2602,
                **RESYNC,
            },
        ),
        Example(
            summary="cursor_unknown：该 seq 上已是另一事件",
            value={
                "status_code": 409,
                "status": "cursor_unknown",
                "detail": "游标 2590.3f9c0a1b2c4d5e6f 所标识的事件已不在变更日志中……",
                "since": 2590,
                "cursor": "2590.3f9c0a1b2c4d5e6f",
                "head": 2602,
                **RESYNC,
            },
        ),
    ],
    generate_examples=False,
)
LIMIT_DESCRIPTION = (
    f"每页最多事件数。带 API 密钥（请求头 X-API-Key）最多 {changes.MAX_LIMIT}；不带密钥时每页最多 "
    f"{ANONYMOUS_MAX_LIMIT} 条，更大的值按 {ANONYMOUS_MAX_LIMIT} 处理（不报错），has_more 与 next 照常，"
    "继续翻页即可；还有下一页时 Link 头中的 limit 为实际采用的值"
)
SINCE_DESCRIPTION = (
    "游标：上一页返回的 next（形如 2602.3f9c0a1b2c4d5e6f，原样传回）；从头同步用 0。"
    "旧客户端的纯整数 seq 仍可使用，但无法发现数据库恢复后 seq 被重新分配"
)


@get(
    PATH,
    name="api_changes",
    sync_to_thread=True,
    tags=[API_TAG],
    summary="变更日志（游标分页）",
    description=DESCRIPTION,
    responses={400: BAD_REQUEST, 409: CURSOR_CONFLICT, 429: TOO_MANY},
    dependencies={"keyed": Provide(api_key_holder)},
)
def change_log(
    conn: NamedDependency[Connection],
    keyed: NamedDependency[bool],
    since: Annotated[
        str,
        Parameter(
            pattern=changes.CURSOR_PATTERN,
            max_length=40,
            description=SINCE_DESCRIPTION,
            examples=[Example(value="0"), Example(value="2602.3f9c0a1b2c4d5e6f")],
        ),
    ] = "0",
    limit: Annotated[
        int,
        Parameter(
            ge=1,
            le=changes.MAX_LIMIT,
            description=LIMIT_DESCRIPTION,
            examples=[Example(value=1000)],
        ),
    ] = changes.DEFAULT_LIMIT,
    kind: Annotated[
        Kind | None,
        Parameter(description="只看某一类信息的事件", examples=[Example(value="penalty")]),
    ] = None,
) -> Response[ChangesPage]:
    limit = page_limit(limit, keyed)
    try:
        body, end = changes.page_json(conn, since=since, limit=limit, kind=kind)
    except changes.BadCursor:
        # what the pattern lets through but no cursor is (a seq beyond 2**62, "0.MARK")
        raise ValidationException(
            "bad cursor", extra=[{"key": "since", "message": "not a cursor"}]
        ) from None
    except changes.CursorAhead as exc:
        raise _cursor_ahead(exc) from None
    except changes.CursorUnknown as exc:
        raise _cursor_unknown(exc) from None
    # Vary: a key's page and an anonymous one of the same URL may differ (page_limit)
    headers = {"Cache-Control": "public, max-age=5", "Vary": "X-API-Key"}
    if end["has_more"]:  # the limit applied, which a clamped request did not ask for
        query = {"since": end["next"], "limit": limit, **({"kind": kind} if kind else {})}
        headers["Link"] = f'<{PATH}?{urlencode(query)}>; rel="next"'
    return Response(body, media_type=MediaType.JSON, headers=headers)


def page_limit(asked: int, keyed: bool) -> int:
    """The page size applied: what was asked, up to ANONYMOUS_MAX_LIMIT without an API key
    (clamped, not refused: has_more and next page on as for any page). An anonymous page of
    10,000 events was 14 MB of JSON and 0.4-0.6 s of a worker; keys are issued to forwarding
    systems, counted and limited per key."""
    return asked if keyed else min(asked, ANONYMOUS_MAX_LIMIT)


def _cursor_ahead(exc: changes.CursorAhead) -> PageError:
    detail = (
        f"游标 {exc.cursor or exc.since} 超出当前变更日志（最新 seq 为 {exc.head}）：数据库已从较早的备份恢复，"
        "此后的 seq 将重新分配给其他事件。请清空副本，从 since=0 或最新快照重新同步。"
    )
    return _conflict("cursor_ahead", detail, exc.since, exc.cursor, exc.head)


def _cursor_unknown(exc: changes.CursorUnknown) -> PageError:
    detail = (
        f"游标 {exc.cursor} 所标识的事件已不在变更日志中（seq {exc.since} 现为另一事件或已不存在，"
        f"最新 seq 为 {exc.head}）：数据库已从较早的备份恢复，副本可能含有已不存在的记录。"
        "请清空副本，从 since=0 或最新快照重新同步。"
    )
    return _conflict("cursor_unknown", detail, exc.since, exc.cursor, exc.head)


def _conflict(status: str, detail: str, since: int, cursor: str | None, head: int) -> PageError:
    payload = {
        "status_code": 409,
        "status": status,
        "detail": detail,
        "since": since,
        **({"cursor": cursor} if cursor else {}),
        "head": head,
        **RESYNC,
    }
    return PageError(detail, status_code=409, payload=payload)


route_handlers = [change_log]
