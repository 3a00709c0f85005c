"""The intake as an API, for systems that forward applications (信用中国 and others), and the
reviewers' decision endpoint. Fixed URLs (other systems integrate with them):

    POST /api/v1/requests                                   multipart form, like /requests/new
    GET  /api/v1/requests/{tracking_no}                     X-Access-Code: ACCESS_CODE
    POST /api/v1/review/requests/{tracking_no}/decision     Authorization: Bearer TOKEN

The access code goes in a header, not the URL, where access logs and histories keep it. The
older `?code=` still answers, marked deprecated (Deprecation header), for the systems built on it.

Errors are JSON naming each field at fault: {"errors": {"uscc": "统一社会信用代码校验位错误"}}.
No cookies, so no CSRF token; the intake is rate limited per IP and an Idempotency-Key header
makes a retried submission return the first one's receipt instead of a second request.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.concurrency import sync_to_thread
from litestar.openapi.spec import (
    Example,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from litestar.params import FromPath, HeaderParameter

from portal import request_guard as guard
from portal.api.schemas import (
    DecisionResult,
    FieldErrors,
    Problem,
    RequestReceipt,
    RequestStatus,
    ReviewedRequest,
    documented,
    field_errors,
)
from portal.ratelimit import retry_in
from portal.requests_pages import TOO_LARGE, UPLOADS, form_submission, read_form
from portal.review import decision_problems
from publishing import notices, request_codes, request_queries, review, users
from publishing import requests as rq

TAGS = ["异议与信用修复"]
NO_STORE = {"Cache-Control": "no-store"}
# RFC 9745: `?code=` deprecated since 2026-11-28 (00:00 UTC); the header replaces it.
CODE_IN_QUERY = {"Deprecation": "@1795824000", "Link": '</schema>; rel="deprecation"'}
INTAKE_DOC = """multipart/form-data 字段：`type`(objection | repair)、`uscc`、`record_ids`（可重复）、
`contact_name`、`mobile`、`email`（可选）、`reason`、`commitment`（信用修复须为 "true"）、文件 `attachments`
（可重复；PDF/JPG/PNG，单个 ≤ 10 MB，最多 5 个，按文件内容判断类型）。可选请求头 `Idempotency-Key`：
同一键重复提交返回首次的受理回执（200），不会重复受理。成功返回 201 与 `tracking_no`、`access_code`
（只返回这一次）、状态和期限；有误返回 4xx 与 `{"errors": {字段: 说明}}`。文件以外的文字字段合计
不超过 64 KB（否则 413）。"""


# -- OpenAPI documentation: the handlers read their bodies themselves and answer dicts --------

RATE_LIMITED = documented(
    FieldErrors | Problem,
    "请求过于频繁（见 Retry-After）：本接口自身的限额为 {\"errors\": …}，/api/ 的总限额为 {status_code, detail}",
    [Example(value={"errors": {"request": "提交过于频繁，请在 30 秒后再试"}})],
)
BAD_API_KEY = {"status_code": 401, "detail": "X-API-Key 无效或已停用。"}


def _string(description: str, **kw: Any) -> Schema:
    return Schema(type=OpenAPIType.STRING, description=description, **kw)


INTAKE_FORM = Schema(
    type=OpenAPIType.OBJECT,
    required=["type", "uscc", "record_ids", "contact_name", "mobile", "reason"],
    properties={
        "type": _string("objection（异议）或 repair（信用修复）", enum=["objection", "repair"]),
        "uscc": _string("统一社会信用代码或注册号", examples=["91370602MA3CFQ2W8P"]),
        "record_ids": Schema(
            type=OpenAPIType.ARRAY,
            items=_string("记录编号", examples=["pn-3f9c0a1b2c4d5e6f"]),
            description="申请涉及的公示记录（字段可重复）",
        ),
        "contact_name": _string("联系人姓名", examples=["王建国"]),
        "mobile": _string("联系人手机号码", examples=["13912345678"]),
        "email": _string("电子邮箱（可选）", examples=["wangjg@example.com"]),
        "reason": _string("申请理由，10–5000 字"),
        "commitment": _string('守信承诺：信用修复须为 "true"', examples=["true"]),
        "attachments": Schema(
            type=OpenAPIType.ARRAY,
            items=Schema(type=OpenAPIType.STRING, content_media_type="application/octet-stream"),
            description="PDF/JPG/PNG，单个 ≤ 10 MB，最多 5 个（字段可重复）",
        ),
    },
)
DECISION_BODY = Schema(
    type=OpenAPIType.OBJECT,
    required=["decision", "reason"],
    properties={
        "decision": _string("approve（批准）或 reject（驳回）", enum=["approve", "reject"]),
        "outcome": Schema(
            type=[OpenAPIType.STRING, OpenAPIType.NULL],
            enum=["withdraw", "correct", None],
            description="批准异议时：撤下（withdraw）或更正（correct）记录",
        ),
        "reason": _string("理由，2–5000 字", examples=["已履行行政处罚决定，公示满三个月"]),
        "corrections": Schema(
            type=[OpenAPIType.OBJECT, OpenAPIType.NULL],
            description="更正异议：记录编号 → {字段: 更正后的值}，或对全部所选记录的 {字段: 值}",
        ),
        "expected_status": Schema(
            type=[OpenAPIType.STRING, OpenAPIType.NULL],
            enum=[*review.STATUSES, None],
            description="可选的前提条件：作出决定所依据的申请状态；申请已不在该状态时不作决定，返回 409",
        ),
        "expected_version": Schema(
            type=[OpenAPIType.INTEGER, OpenAPIType.NULL],
            minimum=0,
            description="可选的前提条件：作出决定所依据的申请版本（办理步骤的条数，即审核页面表单的"
            " expected_version）；其后有新的办理步骤（如申请人补正材料）时不作决定，返回 409",
        ),
    },
)


@dataclass
class IntakeOperation(Operation):
    """The intake reads its form itself (portal.requests_pages.read_form bounds the text it
    holds): the form is documented here."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            content={
                "multipart/form-data": OpenAPIMediaType(schema=INTAKE_FORM),
                "application/x-www-form-urlencoded": OpenAPIMediaType(schema=INTAKE_FORM),
            },
        )


@dataclass
class DecisionOperation(Operation):
    """The decision endpoint reads its JSON itself (its errors are {"errors": …}, not
    Litestar's validation errors): the body is documented here."""

    def __post_init__(self) -> None:
        example = {"decision": "approve", "outcome": "withdraw", "reason": "已依法纠正失信行为"}
        self.request_body = RequestBody(
            required=True,
            content={
                "application/json": OpenAPIMediaType(
                    schema=DECISION_BODY, examples={"approve": Example(value=example)}
                )
            },
        )


def errors(
    status: int, fields: dict[str, str], headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    return Response(
        {"errors": fields, **extra}, status_code=status, headers={**NO_STORE, **(headers or {})}
    )


@post(
    "/api/v1/requests",
    name="api_request_submit",
    opt=UPLOADS,
    tags=TAGS,
    summary="提交异议或信用修复申请",
    description=INTAKE_DOC,
    status_code=201,
    operation_class=IntakeOperation,
    responses={
        201: documented(RequestReceipt, "已受理：受理回执（Location 响应头为状态查询接口）"),
        200: documented(
            RequestReceipt,
            "同一 Idempotency-Key 重复提交：首次的受理回执（Idempotent-Replayed: true；"
            "查询码无法再次给出时 access_code 为 null）",
        ),
        400: documented(
            FieldErrors | Problem,
            "Idempotency-Key 过长（{\"errors\": …}），或表单无法解析（{status_code, detail}）",
        ),
        409: field_errors(
            "该 Idempotency-Key 已用于提交另一份申请",
            {"errors": {"idempotency_key": "该表单（或 Idempotency-Key）已用于提交另一份申请"}, "records": {}},
        ),
        413: field_errors("文件以外的文字字段合计超过 64 KB", {"errors": {"request": TOO_LARGE}}),
        415: field_errors("不是表单", {"errors": {"request": "请以 multipart/form-data 提交"}}),
        422: field_errors(
            "申请有误：errors 为各字段的问题，records 为所选各记录的问题",
            {
                "errors": {"uscc": "统一社会信用代码校验位错误", "reason": "请说明申请理由（至少10个字）"},
                "records": {},
            },
        ),
        429: RATE_LIMITED,
    },
)
async def api_submit(request: Request) -> Response:
    # Forwarding systems hold an API key: portal.ratelimit applies its (higher) limit instead.
    wait = (
        None if await guard.api_key_holder(request) else await guard.over_limit(request, "submit")
    )
    if wait:
        return errors(
            429, {"request": f"提交过于频繁，请{retry_in(wait)}再试"}, {"Retry-After": str(wait)}
        )
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        return errors(415, {"request": "请以 multipart/form-data 提交"})
    form = await read_form(request)  # text over 64 KB: 413
    key = (request.headers.get("idempotency-key") or "").strip()
    if len(key) > 200:
        return errors(400, {"idempotency_key": "Idempotency-Key 不超过200个字符"})
    # Keys are the client's own: scoped by its API key (or, without one, its address).
    holder = request.headers.get("x-api-key")
    scope = (
        "key:" + hashlib.sha256(holder.encode()).hexdigest()[:16]
        if holder
        else guard.client_ip(request)
    )
    sub = form_submission(form, "api", f"api:{scope}:{key}" if key else None)
    try:
        receipt = await sync_to_thread(rq.submit, request.app.state.engine, sub)
    except rq.IntakeError as err:
        return errors(err.status, err.errors, records=err.records)
    background = (
        None
        if receipt.replayed
        else BackgroundTask(
            sync_to_thread, notices.send_confirmation, request.app.state.engine, receipt.tracking_no
        )
    )
    headers = {**NO_STORE, "Location": f"/api/v1/requests/{receipt.tracking_no}"}
    if receipt.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(
        receipt.as_json(),
        status_code=200 if receipt.replayed else 201,
        headers=headers,
        background=background,
    )


@get(
    "/api/v1/requests/{tracking_no:str}",
    name="api_request_status",
    tags=TAGS,
    summary="查询申请办理状态",
    description="请求头 `X-Access-Code` 提供受理时返回的查询码；编号或查询码不正确均返回 404。"
    "查询参数 `?code=` 已弃用（仍可用，响应带 `Deprecation` 头）：网址会被记入访问日志。",
    responses={
        200: documented(RequestStatus, "申请的办理状态与步骤"),
        404: field_errors("受理编号或查询码不正确", {"errors": {"code": "受理编号或查询码不正确"}}),
        429: RATE_LIMITED,
    },
)
async def api_status(
    request: Request,
    tracking_no: FromPath[str],
    access_code: Annotated[
        str | None, HeaderParameter(name="X-Access-Code", description="受理时返回的查询码")
    ] = None,
) -> Response:
    wait = await guard.over_limit(request, "status")
    if wait:
        return errors(
            429, {"request": f"查询过于频繁，请{retry_in(wait)}再试"}, {"Retry-After": str(wait)}
        )
    headers = {**NO_STORE, "Referrer-Policy": "no-referrer"}
    if access_code is None and "code" in request.query_params:
        access_code = request.query_params["code"]
        headers.update(CODE_IN_QUERY)
    number = request_codes.normalize_tracking_no(tracking_no)  # as typed: yx…, full-width, spaces
    view = await sync_to_thread(_view, request.app.state.engine, number, access_code or "")
    if view is None:
        return errors(404, {"code": "受理编号或查询码不正确"}, headers)
    return Response(view, headers=headers)


def _view(engine: Any, tracking_no: str, code: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        return request_queries.applicant_view(conn, tracking_no, code)


def bearer_user(request: Request) -> users.Principal | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    with request.app.state.engine.connect() as conn:
        return users.token_user(conn, token.strip())


async def refused_bearer(request: Request) -> Response:
    """401 for a missing or unknown token; only failed attempts count against the limit."""
    wait = await guard.over_limit(request, "login")
    if wait:
        return errors(429, {"authorization": "请求过于频繁"}, {"Retry-After": str(wait)})
    return errors(
        401,
        {"authorization": "缺少或无效的 Bearer 令牌"},
        {"WWW-Authenticate": 'Bearer realm="review"'},
    )


UNAUTHORIZED = documented(
    FieldErrors | Problem,
    "缺少或无效的 Bearer 令牌（WWW-Authenticate: Bearer），或无效的 X-API-Key（{status_code, detail}）",
    [
        Example(value={"errors": {"authorization": "缺少或无效的 Bearer 令牌"}}),
        Example(value=BAD_API_KEY),
    ],
)
NO_SUCH_REQUEST = field_errors(
    "没有该申请", {"errors": {"tracking_no": "没有受理编号为 YX20261127-000042 的申请"}}
)


@get(
    "/api/v1/review/requests/{tracking_no:str}",
    name="api_review_request",
    tags=TAGS,
    summary="审核人员查看申请（含 version）",
    description="请求头 `Authorization: Bearer TOKEN`。返回申请的办理状态与步骤（不含申请人联系方式）"
    "及 `version`（办理步骤的条数）：作决定时以 `expected_status` 与 `expected_version` 提交，"
    "申请其后有变化则不作决定（409）。",
    security=[{"ReviewToken": []}],
    responses={
        200: documented(ReviewedRequest, "申请的办理状态、步骤与 version"),
        401: UNAUTHORIZED,
        404: NO_SUCH_REQUEST,
        429: RATE_LIMITED,
    },
)
async def api_review_request(request: Request, tracking_no: FromPath[str]) -> Response:
    engine = request.app.state.engine
    user = await sync_to_thread(bearer_user, request)
    if user is None:
        return await refused_bearer(request)
    number = request_codes.normalize_tracking_no(tracking_no)

    def read() -> dict[str, Any] | None:
        with engine.connect() as conn:
            return review.reviewer_view(conn, number)

    view = await sync_to_thread(read)
    if view is None:
        return errors(404, {"tracking_no": f"没有受理编号为 {number} 的申请"})
    return Response(view, headers=NO_STORE)


@post(
    "/api/v1/review/requests/{tracking_no:str}/decision",
    name="api_review_decision",
    tags=TAGS,
    summary="审核决定（批准或驳回）",
    status_code=200,
    description="请求头 `Authorization: Bearer TOKEN`（`disclosure users token NAME` 生成）；JSON "
    '`{"decision": "approve" | "reject", "outcome": "withdraw" | "correct", '
    '"reason": "…", "corrections": {字段: 值}, "expected_status": "…", "expected_version": N}`。'
    "批准的信用修复撤下记录；成立的异议撤下（withdraw）或更正（correct）记录。"
    "可选的 `expected_status`（如 `accepted`）与 `expected_version`（办理步骤的条数）是前提条件："
    "申请在此之后已有变化（他人已办理、申请人已补正材料）时不作任何决定，返回 409，"
    "请重新查看申请后再决定。",
    operation_class=DecisionOperation,
    security=[{"ReviewToken": []}],
    responses={
        200: documented(DecisionResult, "决定已记录：申请的新状态与各记录的变化"),
        400: field_errors("请求体不是 JSON 对象", {"errors": {"request": "请求体应为 JSON 对象"}}),
        401: UNAUTHORIZED,
        403: field_errors("该角色无权作出此决定", {"errors": {"decision": "角色 reviewer 无权批准"}}),
        404: NO_SUCH_REQUEST,
        409: field_errors(
            "申请当前的状态不能作此决定，或申请已不是 expected_status / expected_version 所示的状态",
            {"errors": {"status": "该申请当前状态为“异议不成立”，不能批准"}},
            {
                "errors": {
                    "status": "该申请在您打开页面后已有变化（申请人已补正材料、"
                    "当前状态：“已接收，待初审”），请刷新页面查看后再办理。"
                }
            },
        ),
        422: field_errors(
            "决定内容有误",
            {"errors": {"decision": "decision 应为 approve 或 reject"}},
            {"errors": {"reason": "请填写理由"}},
        ),
        429: RATE_LIMITED,
    },
)
async def api_decision(request: Request, tracking_no: FromPath[str]) -> Response:
    engine = request.app.state.engine
    user = await sync_to_thread(bearer_user, request)
    if user is None:
        return await refused_bearer(request)
    try:
        data = await request.json()
    except Exception:  # noqa: BLE001 - any unreadable body (nested too deep too) is the same error
        data = None
    if not isinstance(data, dict):
        return errors(400, {"request": "请求体应为 JSON 对象"})
    decision = data.get("decision")
    if decision not in ("approve", "reject"):
        return errors(422, {"decision": "decision 应为 approve 或 reject"})
    corrections = data.get("corrections")  # its type, like the reason's, review.act checks
    if problems := decision_problems(data.get("reason"), corrections):
        return errors(422, problems)

    def decide() -> Response:
        try:
            result = review.act(
                engine,
                tracking_no,
                user,
                decision,
                "" if data.get("reason") is None else data["reason"],  # review.act checks its type
                outcome=data.get("outcome") or None,
                corrections=corrections,
                # optional preconditions: the request as the caller last saw it
                expected_status=data.get("expected_status"),
                expected_version=data.get("expected_version"),
            )
        except review.ReviewError as err:
            return errors(err.status, err.errors)
        with engine.connect() as conn:
            body = review.decision_json(conn, tracking_no)
        body.update(records=result.records, search_synced=result.search_synced)
        return Response(body, headers=NO_STORE)

    return await sync_to_thread(decide)


route_handlers = [api_submit, api_status, api_review_request, api_decision]
