"""Error pages: every error is a page (HTML) or a small JSON object under /api/, never a trace.

Details are said in Chinese: ours as raised; Litestar's own (English: "Method Not Allowed",
msgspec's "JSON is malformed: …", "Missing required query parameter …") are put in our words,
naming the parameter, the byte or the allowed methods where Litestar tells them."""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    SerializationException,
    ValidationException,
)
from litestar.response import Template

from portal.routes import is_api

log = logging.getLogger("portal")

TITLES = {
    400: "请求有误",
    404: "页面不存在",
    405: "不支持的请求方法",
    410: "该信息已停止公示",
    413: "提交内容过大",
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
# What Litestar's own client errors say, in Chinese (their details are English).
GENERIC = {
    400: "请求格式不正确，无法处理。",
    401: "需要有效的身份凭据。",
    403: "没有访问权限。",
    404: "您访问的页面不存在。",
    413: "请求内容过大。",
    415: "不支持该请求内容的格式。",
    429: "请求过于频繁，请稍后再试。",
}
# The routes that store what a person sends (a request, a supplement to one): when they fail
# for a server reason (disk full, database down) the answer says that nothing was stored and to
# send it again later, not only "服务器内部错误" (was it received? is the form wrong?). They
# store nothing unless all is stored (publishing.requests: one transaction, files removed).
SUBMISSION_ROUTES = frozenset({"request_submit", "request_supplement", "api_request_submit"})
NOT_SAVED_TITLE = "提交未成功"
NOT_SAVED = (
    "服务器暂时出现故障，本次提交未能完成，提交的内容（包括附件）均未保存。"
    "这不是您填写的内容有误，请稍后重新提交。"
)
BAD_PARAMS = "请求参数格式不正确"
NOT_JSON = "请求体不是有效的 JSON"
NOT_UTF8 = f"{NOT_JSON}：含有不是 UTF-8 编码的字节。"
_CJK = re.compile(r"[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]")
_BYTE = re.compile(r"\(byte (\d+)\)")  # msgspec: "JSON is malformed: … (byte 4)", 0-based
_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")
_MISSING_PARAM = re.compile(r"^Missing required (\w+) parameter")
_PARAM_KINDS = {"query": "参数", "header": "请求头", "cookie": "Cookie", "path": "路径参数"}


class PageError(HTTPException):
    """An HTTP error with a message for the person and, for the API, a payload."""

    def __init__(
        self,
        detail: str,
        *,
        status_code: int,
        payload: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        template: str = "error.html",
    ) -> None:
        super().__init__(detail=detail, status_code=status_code)
        self.payload = payload
        self.context = context or {}
        self.template = template  # the page's own (an error.html with more to say)


def not_found(detail: str = "您访问的页面不存在。") -> NotFoundException:
    return NotFoundException(detail=detail)


def gone(record_id: str, detail: str) -> PageError:
    """A record (or issue) that was published and no longer is: 410, and no details. The
    API's body has the error shape (status_code, detail) besides its own id and status."""
    payload = {"id": record_id, "status": "gone", "status_code": 410, "detail": detail}
    return PageError(detail, status_code=410, payload=payload)


def bad_request(detail: str, **context: Any) -> PageError:
    return PageError(detail, status_code=400, context=context)


# -- Litestar's errors in our words -------------------------------------------------------


def _byte_at(offset: int) -> str:
    return f"第 {offset + 1} 个字节处有误"  # counted from 1, as a person (or an editor) does


def malformed_json(message: str) -> str:
    """msgspec's decode error of a request body: where it broke, or that it ended too soon."""
    found = _BYTE.search(message)
    if found:
        return f"{NOT_JSON}：{_byte_at(int(found.group(1)))}。"
    if "truncated" in message:
        return f"{NOT_JSON}：内容不完整（为空或被截断）。"
    if "utf-8" in message.lower():  # msgspec 0.23: "Invalid UTF-8 encoded string" (undecodable)
        return NOT_UTF8
    return f"{NOT_JSON}。"


def undecodable(exc: Exception) -> PageError | None:
    """A body Litestar could not decode as UTF-8 (msgspec before 0.23 raises UnicodeDecodeError,
    uncaught): the client's bytes, so a 400, not a server error. Raised elsewhere it stays a 500."""
    if not isinstance(exc, UnicodeDecodeError) or exc.__traceback__ is None:
        return None
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    if not tb.tb_frame.f_globals.get("__name__", "").startswith("litestar."):
        return None
    # (no byte: the error's offset is within the string being decoded, not the body)
    return bad_request(NOT_UTF8)


def method_not_allowed(request: Request, exc: MethodNotAllowedException) -> str:
    allow = (exc.headers or {}).get("allow", "")  # Litestar's order varies: sorted, one text
    allowed = sorted(m.strip() for m in allow.split(",") if m.strip())
    text = f"不支持该请求方法：{request.method}。"
    return text + (f"此地址支持：{'、'.join(allowed)}。" if allowed else "")


def _problem(entry: dict[str, Any]) -> tuple[str, str | None]:
    """One of Litestar's validation errors: (what is wrong, the name it concerns)."""
    key = str(entry.get("key") or "") or None
    message = str(entry.get("message") or "")
    source = entry.get("source")
    if str(getattr(source, "value", source)) != "body":
        return BAD_PARAMS, key
    if key != "data":
        return "请求体字段格式不正确", key
    missing = _MISSING_FIELD.search(message)
    if missing:
        return "请求体缺少必填字段", missing.group(1)
    if message == "'data'":  # no body at all: the handler's `data` is missing
        return "缺少请求体", None
    return "请求体格式不正确", None


def invalid(exc: ValidationException) -> str:
    """Which parameters (or body fields) are missing or malformed, by name."""
    if isinstance(exc.__cause__, KeyError) and exc.__cause__.args:  # a required one missing
        kind = _MISSING_PARAM.match(str(exc.detail))
        what = _PARAM_KINDS.get(kind.group(1), "参数") if kind else "参数"
        return f"缺少必填{what}：{exc.__cause__.args[0]}"
    problems: dict[str, list[str]] = {}
    for entry in exc.extra or []:
        if isinstance(entry, dict):
            text, name = _problem(entry)
            names = problems.setdefault(text, [])
            if name and name not in names:
                names.append(name)
    if not problems:
        return f"{BAD_PARAMS}。"
    return "；".join(text + (f"：{'、'.join(n)}" if n else "") for text, n in problems.items())


def describe(request: Request, exc: Exception, status: int) -> str:
    """The detail said to the person (and in the API's {status_code, detail})."""
    if status >= 500 or not isinstance(exc, HTTPException):
        return TITLES[500]
    if isinstance(exc, PageError):
        return exc.detail
    if isinstance(exc, MethodNotAllowedException):
        return method_not_allowed(request, exc)
    if isinstance(exc, ValidationException):
        return invalid(exc)
    if isinstance(exc.__cause__, SerializationException):  # a JSON body that does not parse
        return malformed_json(str(exc.__cause__))
    if exc.detail and _CJK.search(exc.detail):  # ours, already in Chinese
        return exc.detail
    return GENERIC.get(status) or TITLES.get(status, "请求未能处理") + "。"


def _submission(request: Request) -> bool:
    """Whether the request went to a route that stores a submission (SUBMISSION_ROUTES)."""
    handler = request.scope.get("route_handler")  # absent when no route matched
    return getattr(handler, "name", None) in SUBMISSION_ROUTES


def handle_error(request: Request, exc: Exception) -> Response:
    exc = undecodable(exc) or exc
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status >= 500:
        log.exception("error serving %s", request.url.path, exc_info=exc)
    unsaved = status >= 500 and _submission(request)
    detail = NOT_SAVED if unsaved else describe(request, exc, status)
    headers = {"Cache-Control": CACHE.get(status, "no-store")}
    if isinstance(exc, HTTPException) and exc.headers:
        headers.update(exc.headers)  # e.g. a 405's Allow
    payload = getattr(exc, "payload", None)
    if is_api(request.url.path):
        body = payload or {"status_code": status, "detail": detail}
        return Response(body, status_code=status, headers=headers)
    context = {
        "status": status,
        "title": NOT_SAVED_TITLE if unsaved else TITLES.get(status, "出错了"),
        "detail": detail,
        "json_url": None,  # an error page has no data of its own to offer
        "feeds": [],
        **getattr(exc, "context", {}),
    }
    template = getattr(exc, "template", "error.html")
    return Template(template, context=context, status_code=status, headers=headers)
