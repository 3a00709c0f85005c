"""Helpers shared by the page modules: registering a page at both of its URLs, query values."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from litestar import get
from litestar.handlers import HTTPRouteHandler
from litestar.params import QueryParameter

from portal import routes
from portal.errors import bad_request
from publishing.contract import district_code

API_TAGS = ["公示数据 (JSON)"]
GRADES = ("A", "B", "C", "D", "E")  # 信用风险分类
Next = Annotated[str | None, QueryParameter(name="next", description="上一页返回的 next 翻页令牌")]


def twin(
    name: str, *, summary: str, description: str = ""
) -> Callable[[Callable], list[HTTPRouteHandler]]:
    """Register one handler at the page's path (HTML) and at its /api/v1 twin (JSON, documented
    in the OpenAPI schema). The handler returns render.respond(request, Page(...))."""

    def register(fn: Callable) -> list[HTTPRouteHandler]:
        html = get(routes.PATHS[name], name=name, include_in_schema=False, sync_to_thread=True)(fn)
        api = get(
            routes.api_path(name),
            name=routes.api_name(name),
            summary=summary,
            description=description or None,
            tags=API_TAGS,
            sync_to_thread=True,
        )(fn)
        return [html, api]

    return register


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
        or not all(isinstance(p, str) for p in parts)
    ):
        raise bad_request("翻页参数（next 或 before）无效，请从第一页重新浏览。")
    return parts
