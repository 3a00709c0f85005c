"""Error pages: every error is a page (HTML) or a small JSON object under /api/, never a trace."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.response import Template

from portal.routes import is_api

log = logging.getLogger("portal")

TITLES = {
    400: "请求有误",
    404: "页面不存在",
    405: "不支持的请求方法",
    410: "该信息已停止公示",
    500: "服务器内部错误",
    503: "服务暂不可用",
}
CACHE = {
    400: "public, max-age=60",
    404: "public, max-age=60",
    # A withdrawn record can be published again (a corrected file, a restored credit mark, a
    # scheme made public): caches keep its 410 no longer than any other answer.
    410: "public, max-age=60",
}


class PageError(HTTPException):
    """An HTTP error with a message for the person and, for the API, a payload."""

    def __init__(
        self,
        detail: str,
        *,
        status_code: int,
        payload: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail=detail, status_code=status_code)
        self.payload = payload
        self.context = context or {}


def not_found(detail: str = "您访问的页面不存在。") -> NotFoundException:
    return NotFoundException(detail=detail)


def gone(record_id: str, detail: str) -> PageError:
    """A record (or issue) that was published and no longer is: 410, and no details. The
    API's body has the error shape (status_code, detail) besides its own id and status."""
    payload = {"id": record_id, "status": "gone", "status_code": 410, "detail": detail}
    return PageError(detail, status_code=410, payload=payload)


def bad_request(detail: str, **context: Any) -> PageError:
    return PageError(detail, status_code=400, context=context)


def handle_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status >= 500:
        log.exception("error serving %s", request.url.path, exc_info=exc)
    detail = exc.detail if isinstance(exc, HTTPException) and status < 500 else TITLES[500]
    if (
        status == 404
        and isinstance(exc, NotFoundException)
        and not isinstance(exc, PageError)
        and detail in ("Not Found", "")
    ):
        detail = "您访问的页面不存在。"
    if isinstance(exc, ValidationException):
        detail = (
            "请求参数格式不正确："
            + "、".join(
                str(e.get("key")) for e in (exc.extra or []) if isinstance(e, dict) and e.get("key")
            )
            if exc.extra
            else "请求参数格式不正确。"
        )
    headers = {"Cache-Control": CACHE.get(status, "no-store")}
    if isinstance(exc, HTTPException) and exc.headers:
        headers.update(exc.headers)
    payload = getattr(exc, "payload", None)
    if is_api(request.url.path):
        body = payload or {"status_code": status, "detail": detail}
        return Response(body, status_code=status, headers=headers)
    context = {
        "status": status,
        "title": TITLES.get(status, "出错了"),
        "detail": detail,
        "json_url": None,  # an error page has no data of its own to offer
        "feeds": [],
        **getattr(exc, "context", {}),
    }
    return Template("error.html", context=context, status_code=status, headers=headers)
