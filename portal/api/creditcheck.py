"""/api/v1/credit-check — is an entity on a published list now? GET one code, POST a batch."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, get, post
from litestar.concurrency import sync_to_thread
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Body, Parameter
from sqlalchemy import Connection

from portal.api.schemas import (
    API_TAG,
    TOO_MANY,
    CreditCheckRequest,
    CreditCheckResponse,
    problem,
)
from portal.errors import PageError, bad_request, handle_error
from publishing import creditcheck

PATH = "/api/v1/credit-check"
DESCRIPTION = f"""查询市场主体**当前**是否在公示名单上：食品安全黑榜、严重违法失信名单、经营异常名录等
列入名单类的信用标注，以及公示中的行政处罚（数量和决定书文号）。

每个代码先规范化（全角转半角、大写、去掉空格和连字符），再校验统一社会信用代码的校验位
（或 15 位注册号）。15 位注册号疑似身份证号或不符合 GS 15 校验规则时，`problem` 给出提示，
但仍照常查询。`as_of` 是答复所依据的公示版本（变更日志的 seq），可与 /api/v1/changes 对照。
批量查询一次最多 {creditcheck.MAX_BATCH} 个代码。

同一主体先以注册号、后又以统一社会信用代码（同时列明注册号）公示的，按任一代码查询，答复都
汇总两者的公示信息：任一列入名单即为 `listed`，行政处罚数量合计；`matched` 列出所汇总的主体，
`entity` 为其中有统一社会信用代码的一个。"""
DEEP_JSON_DETAIL = "请求体的 JSON 嵌套层数过多，无法读取。"
TOO_LARGE = problem(
    f"一次超过 {creditcheck.MAX_BATCH} 个代码",
    {
        "status_code": 413,
        "detail": f"一次最多查询 {creditcheck.MAX_BATCH} 个代码，收到 1500 个；请分批提交。",
    },
)
# The credit check's own 400s (portal.errors words them): no uscc; a body that is not JSON.
NO_CODE = problem(
    "缺少 uscc 参数，或其超过 64 个字符", {"status_code": 400, "detail": "缺少必填参数：uscc"}
)
NOT_JSON = problem(
    "请求体不是有效的 JSON，或缺少、不符合格式的字段",
    {"status_code": 400, "detail": "请求体不是有效的 JSON：第 5 个字节处有误。"},
)


@get(
    PATH,
    name="api_credit_check",
    tags=[API_TAG],
    summary="信用核查（单个代码）",
    description=DESCRIPTION,
    responses={400: NO_CODE, 429: TOO_MANY},
)
async def credit_check_one(
    conn: NamedDependency[Connection],
    uscc: Annotated[
        str,
        Parameter(
            description="统一社会信用代码（或注册号）",
            max_length=64,
            examples=[
                Example(value="913706021630401277"),
                Example(value="９１３７０６０２－１６３０４０１２７７"),
            ],
        ),
    ],
) -> Response[CreditCheckResponse]:
    # In a worker thread, like the batch: a database wait must not hold up the event loop.
    result = await sync_to_thread(creditcheck.check, conn, [uscc])
    return Response(result, headers={"Cache-Control": "public, max-age=60"})


def too_deep(request: Request, exc: RecursionError) -> Response:
    """The batch's handler of a RecursionError. Litestar parses a JSON body before it validates
    it, and the parser gives up on nesting deeper than the recursion limit with a RecursionError
    (a 500 otherwise): a bad request, answered as every other. (A handler of the route, not a
    before_request of its own: that would replace the app's guard, reject_unusable_characters.)"""
    return handle_error(request, bad_request(DEEP_JSON_DETAIL))


@post(
    PATH,
    name="api_credit_check_batch",
    status_code=200,
    tags=[API_TAG],
    summary=f"信用核查（批量，最多 {creditcheck.MAX_BATCH} 个）",
    description=DESCRIPTION,
    responses={400: NOT_JSON, 413: TOO_LARGE, 429: TOO_MANY},
    exception_handlers={RecursionError: too_deep},  # a body nested too deep: 400, not 500
)
async def credit_check_batch(
    conn: NamedDependency[Connection],
    data: Annotated[
        CreditCheckRequest,
        Body(
            description=f"要核查的代码，最多 {creditcheck.MAX_BATCH} 个",
            examples=[
                Example(
                    value={"uscc": ["913706021630401277", "91370602MA3C00000X", "370602600123459"]}
                )
            ],
        ),
    ],
) -> Response[CreditCheckResponse]:
    codes = data.uscc
    if len(codes) > creditcheck.MAX_BATCH:
        raise PageError(
            f"一次最多查询 {creditcheck.MAX_BATCH} 个代码，收到 {len(codes)} 个；请分批提交。",
            status_code=413,
        )
    if any(len(c) > 64 for c in codes):
        raise PageError("代码过长：每个代码不超过 64 个字符。", status_code=400)
    result = await sync_to_thread(creditcheck.check, conn, codes)
    return Response(result, headers={"Cache-Control": "no-store"})


route_handlers = [credit_check_one, credit_check_batch]
