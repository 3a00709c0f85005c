"""Helpers shared by the page modules: registering a page at both of its URLs, query values,
and the app's guard against characters no page can take (reject_unusable_characters)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from litestar import Request, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from portal import routes
from portal.api.schemas import GONE_RECORD, NO_ENTITY, TOO_MANY, documented, problem
from portal.errors import bad_request
from publishing.contract import district_code
from publishing.safetext import usable

API_TAGS = ["公示数据 (JSON)"]
GRADES = ("A", "B", "C", "D", "E")  # 信用风险分类
Next = Annotated[str | None, QueryParameter(name="next", description="上一页返回的 next 翻页令牌")]
# No path or query can hold what no stored text may (publishing.safetext.UNUSABLE: what XML 1.0
# cannot carry, NUL among them, which PostgreSQL text cannot store either).
UNUSABLE_DETAIL = "请求中含有不允许的控制字符（如 %00），请检查链接或输入内容。"
# The errors of the JSON twins, documented in the OpenAPI schema with the bodies they have
# (portal.errors): 400 and 429 (the rate limit of /api/) of every twin, and those of ERRORS.
BAD_PARAMETERS = problem(
    "参数不正确（格式或取值有误、翻页令牌无效，或含有控制字符）",
    {"status_code": 400, "detail": "翻页参数（next 或 before）无效，请从第一页重新浏览。"},
)
NOT_FOUND = problem("没有该记录", {"status_code": 404, "detail": "未找到该公示记录，请检查链接是否正确。"})
NO_ISSUE = problem("没有该期黑榜", {"status_code": 404, "detail": "未找到该期黑榜。"})
ERRORS: dict[str, dict[int, ResponseSpec]] = {
    routes.ENTITY: {404: NO_ENTITY},
    routes.RECORD: {404: NOT_FOUND, 410: GONE_RECORD},
    routes.BLACKLIST_ISSUE: {404: NO_ISSUE, 410: GONE_RECORD},
}


def twin(
    name: str,
    *,
    model: Any,
    summary: str,
    description: str = "",
    responses: dict[int, ResponseSpec] | None = None,
) -> Callable[[Callable], list[HTTPRouteHandler]]:
    """Register one handler at the page's path (HTML) and at its /api/v1 twin (JSON, documented
    in the OpenAPI schema). The handler returns render.respond(request, Page(...)), untyped (it
    is HTML or JSON): `model` (portal.api.schemas) documents the twin's 200, the page's data;
    `responses` the page's errors beyond ERRORS."""

    def register(fn: Callable) -> list[HTTPRouteHandler]:
        html = get(routes.PATHS[name], name=name, include_in_schema=False, sync_to_thread=True)(fn)
        api = get(
            routes.api_path(name),
            name=routes.api_name(name),
            summary=summary,
            description=description or None,
            tags=API_TAGS,
            responses={
                200: documented(model, summary),
                400: BAD_PARAMETERS,
                **ERRORS.get(name, {}),
                **(responses or {}),
                429: TOO_MANY,
            },
            sync_to_thread=True,
        )(fn)
        return [html, api]

    return register


async def reject_unusable_characters(request: Request) -> None:
    """before_request of every handler (portal.app): a path or query with a character that no
    XML document (feeds) or PostgreSQL text can hold is a bad request, not a server error."""
    params = request.query_params.multi_items()
    if not usable(request.url.path) or not all(usable(k) and usable(v) for k, v in params):
        raise bad_request(UNUSABLE_DETAIL)


def parse_district(value: str | None) -> str | None:
    if not value:
        return None
    code = district_code(value)
    if code is None:
        raise bad_request(f"未知的区市：{value}")
    return code


def parse_date(value: str | None, label: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise bad_request(f"{label}格式应为 YYYY-MM-DD（例如 2026-06-01），收到：{value}") from None


def encode_token(*parts: Any) -> str:
    """An opaque keyset token: base64url of the last row's sort key."""
    raw = json.dumps(parts, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, size: int) -> list[Any]:
    try:
        parts = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        parts = None
    if (
        not isinstance(parts, list)
        or len(parts) != size
        or not all(isinstance(p, str) and p and usable(p) for p in parts)
    ):
        raise bad_request("翻页参数（next 或 before）无效，请从第一页重新浏览。")
    return parts
