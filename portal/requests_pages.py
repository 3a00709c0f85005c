"""/requests/new — the objection (异议) and credit-repair (信用修复) form; /requests/{tracking_no}
— the applicant's view of a request (with the access code), and supplementing material.

Every page works without JavaScript: the form is filled in two steps (the entity's code, then
its records with what repair and objection would say about each), errors are shown next to each
field, and the receipt shows the access code once.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.concurrency import sync_to_thread
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from portal import request_guard as guard
from publishing import read
from publishing import requests as rq
from publishing.attachments import Upload
from publishing.request_models import MORE_INFO, OBJECTION, REPAIR

MAX_BODY = 55 * 1024 * 1024  # 5 files of 10 MB and the fields
NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
PRIVATE = {**NO_STORE, "Referrer-Policy": "no-referrer"}  # the access code is in the URL
FIELDS = ("type", "uscc", "contact_name", "mobile", "email", "reason", "commitment")


def getall(form: Any, name: str) -> list[Any]:
    """Every value of a repeated form field (none when the field is absent)."""
    try:
        values = form.getall(name)
    except KeyError:
        return []
    return values if isinstance(values, list) else [values]


def uploads_of(form: Any, name: str = "attachments") -> list[Upload]:
    files = getall(form, name)
    return [Upload(f.filename or "", f.file) for f in files if isinstance(f, UploadFile)]


def form_submission(form: Any, channel: str, idem_key: str | None) -> rq.Submission:
    def text(name: str) -> str:
        value = form.get(name)
        return value if isinstance(value, str) else ""

    ids = getall(form, "record_ids")
    return rq.Submission(
        type=text("type"),
        uscc=text("uscc"),
        record_ids=[i for i in ids if isinstance(i, str)],
        contact_name=text("contact_name"),
        mobile=text("mobile"),
        email=text("email"),
        reason=text("reason"),
        commitment=text("commitment"),
        attachments=uploads_of(form),
        channel=channel,
        idem_key=idem_key,
    )


# -- the form -------------------------------------------------------------------------------


def _entity_step(conn, values: dict[str, Any], errors: dict[str, str]) -> dict[str, Any] | None:
    if not values.get("uscc"):
        return None
    code, problem = rq.check_code(values["uscc"])
    if problem:
        errors.setdefault("uscc", problem)
        return None
    values["uscc"] = code
    entity = read.entity(conn, code)
    if entity is None:
        errors.setdefault("uscc", f"本系统没有统一社会信用代码为 {code} 的主体的公示信息")
    return entity


def form_context(
    conn,
    values: dict[str, Any],
    token: str,
    *,
    errors: dict[str, str] | None = None,
    record_problems: dict[str, str] | None = None,
    notice: str | None = None,
    banner: str | None = None,
) -> dict[str, Any]:
    errors = dict(errors or {})
    entity = _entity_step(conn, values, errors)
    choices = rq.record_choices(conn, entity["id"]) if entity else []
    config = rq.load_config()
    return {
        "values": values,
        "errors": errors,
        "record_problems": record_problems or {},
        "entity": entity,
        "choices": choices,
        "token": token,
        "notice": notice,
        "banner": banner,
        "commitment_text": config.commitment,
        "max_files": config.max_files,
        "max_mb": config.max_bytes // 1048576,
        "type_labels": rq.TYPE_LABELS,
        "deadline_days": config.decision_days,
        "review_days": config.review_days,
        "token_field": guard.TOKEN_FIELD,
        "honeypot_field": guard.HONEYPOT_FIELD,
        "json_url": None,
        "feeds": [],
    }


def _client_id(request: Request) -> tuple[str, bool]:
    cid = request.cookies.get(guard.CLIENT_COOKIE)
    return (cid, False) if cid else (guard.new_client_id(), True)


def _form_response(
    request: Request, context: dict[str, Any], status: int, cid: str, new_cookie: bool
) -> Template:
    cookies = [guard.client_cookie(cid, "/requests")] if new_cookie else []
    return Template(
        "requests_new.html", context=context, status_code=status, headers=NO_STORE, cookies=cookies
    )


@get("/requests/new", name="request_form", include_in_schema=False)
@guard.threaded
def request_form(
    request: Request,
    type: FromQuery[str | None] = None,  # noqa: A002
    uscc: FromQuery[str | None] = None,
    record: FromQuery[list[str] | None] = None,
) -> Template:
    engine = request.app.state.engine
    values: dict[str, Any] = {
        **dict.fromkeys(FIELDS, ""),
        "type": type if type in rq.TYPE_LABELS else "",
        "uscc": uscc or "",
        "record_ids": list(record or []),
    }
    with engine.connect() as conn:
        if values["record_ids"] and not values["uscc"]:
            rec = read.record(conn, values["record_ids"][0]) if values["record_ids"][0] else None
            values["uscc"] = (rec or {}).get("entity_id") or ""
        cid, new = _client_id(request)
        context = form_context(conn, values, guard.issue_token(cid, "request"))
    return _form_response(request, context, 200, cid, new)


def _values(form: Any) -> dict[str, Any]:
    values = {k: (form.get(k) if isinstance(form.get(k), str) else "") for k in FIELDS}
    values["record_ids"] = [i for i in getall(form, "record_ids") if isinstance(i, str)]
    return values


@post(
    "/requests/new", name="request_submit", request_max_body_size=MAX_BODY, include_in_schema=False
)
async def request_submit(request: Request) -> Response | Template:
    engine = request.app.state.engine
    cid, new = _client_id(request)
    wait = await guard.over_limit(request, "submit")
    if wait:
        return _plain_page(
            "提交过于频繁",
            f"同一网络地址提交申请过于频繁，请在 {wait} 秒后再试。",
            429,
            {"Retry-After": str(wait)},
        )
    form = await request.form()
    values = _values(form)

    def render(status: int, **kw: Any) -> Template:
        with engine.connect() as conn:
            context = form_context(conn, values, guard.issue_token(cid, "request"), **kw)
        return _form_response(request, context, status, cid, new)

    if guard.honeypot_filled(form):
        return await sync_to_thread(render, 400, banner="提交未被受理：表单中有不应填写的内容。")
    nonce, problem = guard.check_token(
        form.get(guard.TOKEN_FIELD), request.cookies.get(guard.CLIENT_COOKIE), "request"
    )
    if problem:
        return await sync_to_thread(render, 403, banner=problem + "（本次提交未保存任何内容。）")
    sub = form_submission(form, "web", f"form:{nonce}")
    try:
        receipt = await sync_to_thread(rq.submit, engine, sub)
    except rq.IntakeError as err:
        banner = "提交未成功，未保存任何内容。请按提示修改后重新提交" + (
            "，并重新选择附件。" if sub.attachments else "。"
        )
        if err.status == 409:
            banner = err.errors.get("idempotency_key", banner)
        return await sync_to_thread(
            render, err.status, errors=err.errors, record_problems=err.records, banner=banner
        )
    context = {
        "receipt": receipt.as_json(),
        "replayed": receipt.replayed,
        "access_code": rq.format_code(receipt.access_code) if receipt.access_code else None,
        "type_label": rq.TYPE_LABELS[receipt.type],
        "json_url": None,
        "feeds": [],
    }
    background = (
        None
        if receipt.replayed
        else BackgroundTask(sync_to_thread, rq.send_confirmation, engine, receipt.tracking_no)
    )
    return Template(
        "request_receipt.html",
        context=context,
        status_code=200 if receipt.replayed else 201,
        headers=PRIVATE,
        background=background,
    )


def _plain_page(
    title: str, detail: str, status: int, headers: dict[str, str] | None = None
) -> Template:
    return Template(
        "error.html",
        context={
            "status": status,
            "title": title,
            "detail": detail,
            "json_url": None,
            "feeds": [],
        },
        status_code=status,
        headers={**NO_STORE, **(headers or {})},
    )


# -- status and supplements -------------------------------------------------------------------


def status_context(conn, view: dict[str, Any], code: str) -> dict[str, Any]:
    records = []
    for rid in view["record_ids"]:
        rec = read.record(conn, rid)
        records.append({"id": rid, "record": rec, "visible": bool(rec and read.is_visible(rec))})
    return {
        "view": view,
        "records": records,
        "code": code,
        "json_url": None,
        "feeds": [],
        "api_url": f"/api/v1/requests/{view['tracking_no']}?{urlencode({'code': code})}",
        "more_info": view["status"] == MORE_INFO,
    }


@get("/requests/{tracking_no:str}", name="request_status", include_in_schema=False)
async def request_status(
    request: Request, tracking_no: FromPath[str], code: FromQuery[str | None] = None
) -> Template:
    if code is None:
        return _lookup_page(tracking_no, None, 200)
    wait = await guard.over_limit(request, "status")
    if wait:
        return _plain_page(
            "查询过于频繁", f"查询过于频繁，请在 {wait} 秒后再试。", 429, {"Retry-After": str(wait)}
        )
    cid, new = _client_id(request)

    def render() -> Template:
        with request.app.state.engine.connect() as conn:
            view = rq.applicant_view(conn, tracking_no, code)
            if view is None:
                return _lookup_page(tracking_no, "受理编号或查询码不正确，请核对后重新输入。", 404)
            context = status_context(conn, view, rq.normalize_access_code(code))
        context.update(
            token=guard.issue_token(cid, f"supplement:{tracking_no}"),
            token_field=guard.TOKEN_FIELD,
            errors={},
            notice=None,
        )
        cookies = [guard.client_cookie(cid, "/requests")] if new else []
        return Template("request_status.html", context=context, headers=PRIVATE, cookies=cookies)

    return await sync_to_thread(render)


def _lookup_page(tracking_no: str, error: str | None, status: int) -> Template:
    return Template(
        "request_lookup.html",
        status_code=status,
        headers=PRIVATE,
        context={"tracking_no": tracking_no, "error": error, "json_url": None, "feeds": []},
    )


@post(
    "/requests/{tracking_no:str}/supplement",
    name="request_supplement",
    request_max_body_size=MAX_BODY,
    include_in_schema=False,
)
async def request_supplement(request: Request, tracking_no: FromPath[str]) -> Template:
    engine = request.app.state.engine
    wait = await guard.over_limit(request, "submit")
    if wait:
        return _plain_page(
            "提交过于频繁", f"请在 {wait} 秒后再试。", 429, {"Retry-After": str(wait)}
        )
    form = await request.form()
    code = form.get("code") if isinstance(form.get("code"), str) else ""
    cid = request.cookies.get(guard.CLIENT_COOKIE)
    _, problem = guard.check_token(form.get(guard.TOKEN_FIELD), cid, f"supplement:{tracking_no}")
    errors: dict[str, str] = {}
    notice = None
    status = 200
    if problem:
        errors["form"], status = problem, 403
    else:
        note = form.get("note") if isinstance(form.get("note"), str) else ""
        try:
            await sync_to_thread(rq.supplement, engine, tracking_no, code, note, uploads_of(form))
            notice = "补正材料已收到，办理期限自今日起重新计算。"
        except rq.IntakeError as err:
            errors, status = err.errors, err.status

    def render() -> Template:
        with engine.connect() as conn:
            view = rq.applicant_view(conn, tracking_no, code)
            if view is None:
                return Template(
                    "request_lookup.html",
                    status_code=404,
                    headers=PRIVATE,
                    context={
                        "tracking_no": tracking_no,
                        "error": "受理编号或查询码不正确。",
                        "json_url": None,
                        "feeds": [],
                    },
                )
            context = status_context(conn, view, rq.normalize_access_code(code))
        context.update(
            token=guard.issue_token(cid or "", f"supplement:{tracking_no}"),
            token_field=guard.TOKEN_FIELD,
            errors=errors,
            notice=notice,
        )
        return Template("request_status.html", context=context, status_code=status, headers=PRIVATE)

    return await sync_to_thread(render)


route_handlers = [request_form, request_submit, request_status, request_supplement]
__all__ = ["OBJECTION", "REPAIR", "form_submission", "route_handlers", "uploads_of"]
