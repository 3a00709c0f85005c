"""/requests/new — the objection (异议) and credit-repair (信用修复) form; /requests/{tracking_no}
— the applicant's view of a request (with the access code), and supplementing material;
/requests/lookup — the same view for an applicant who types the tracking number too.

Every page works without JavaScript: the form is filled in two steps (the entity's code, then
its records with what repair and objection would say about each), errors are shown next to each
field, and the receipt shows the access code once.

The access code never travels in a URL (where access logs and browser history would keep it):
the lookup form POSTs it and the status page is the answer to that POST. Nothing keeps it
afterwards (no cookie holding the code or standing in for it); leaving the page means typing it
again.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import parse_qsl

from litestar import Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.concurrency import sync_to_thread
from litestar.datastructures import FormMultiDict, UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import ClientException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser

from portal import request_guard as guard
from portal.errors import PageError
from portal.ratelimit import per_window, retry_in
from publishing import (
    clock,
    notices,
    read,
    request_codes,
    request_config,
    request_models,
    request_queries,
)
from publishing import requests as rq
from publishing.attachments import Upload
from publishing.request_models import MORE_INFO, OBJECTION, REPAIR

FIELDS_MAX = 64 * 1024  # a form's text: a 5,000-character reason is 45 KB URL-encoded
# The routes that take files (opt): their body limit follows requests.toml, set by upload_routes.
UPLOADS = {"uploads": True}
FRAMING = 1024 * 1024  # room for the multipart boundaries and part headers beside files and text
NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
PRIVATE = {**NO_STORE, "Referrer-Policy": "no-referrer"}  # the page shows the access code
FIELDS = ("type", "uscc", "contact_name", "mobile", "email", "reason", "commitment")
# Step 2 carries the code of the entity it shows: a mistyped or changed code sent from it keeps
# that entity (and so step 2, with everything typed and ticked) instead of falling back to step 1.
STEP_ENTITY = "entity_uscc"
STEP_ONE_FIELDS = ("type", "uscc")  # the only fields of step 1 an error summary can link to
LOOKUP_PATH = "/requests/lookup"
LOOKUP_PURPOSE = "status-lookup"  # the token of the lookup form that asks for the number too
# One answer for a wrong number and a wrong code: the form tells nobody which numbers exist.
NOT_FOUND = "受理编号或查询码不正确，请核对后重新输入。"
TOO_LARGE = (
    "表单文字内容超过 64 KB（附件请以 multipart/form-data 方式作为文件上传），未保存任何内容。"
)


# -- reading a form ---------------------------------------------------------------------------


def too_large() -> PageError:
    """The text of a form (everything but its files) is over FIELDS_MAX: 413, page or JSON."""
    return PageError(TOO_LARGE, status_code=413, payload={"errors": {"request": TOO_LARGE}})


def max_body() -> int:
    """The largest body a form with files may send: every file at its limit (requests.toml),
    the text, and the framing. Beyond it Litestar stops reading (413)."""
    config = request_config.load_config()
    return config.max_files * config.max_bytes + FIELDS_MAX + FRAMING


def upload_routes(handlers: list[Any]) -> list[Any]:
    """The handlers, those that take files given the body limit of today's requests.toml (read
    once per process, as the rest of it). Called when an app is made, before Litestar copies
    the handlers into its routes."""
    limit = max_body()
    for handler in handlers:
        if getattr(handler, "opt", {}).get("uploads"):
            handler.request_max_body_size = limit
    return handlers


def upload_limits() -> str:
    """The limits of a form's files, in words (from requests.toml)."""
    config = request_config.load_config()
    return f"每个文件不超过 {config.max_mb} MB，最多 {config.max_files} 个"


def _back_link(request: Request) -> tuple[str, str] | None:
    """The page an oversize form was sent from, built from the route (never the Referer):
    (url, label); None for the API."""
    name = request.route_handler.name
    if name == "request_submit":
        return "/requests/new", "返回申请表"
    if name == "request_supplement":
        number = request_codes.normalize_tracking_no(request.path_params.get("tracking_no"))
        if request_codes.valid_tracking_no(number):
            return f"/requests/{number}", "返回办理进度查询"
        return LOOKUP_PATH, "返回办理进度查询"
    return None


def body_too_large(request: Request) -> PageError:
    """A body over the route's limit (Litestar's 413): with files, what the limits are and a
    way back to the form; a form of text only, as too_large."""
    if not request.route_handler.opt.get("uploads"):
        return too_large()
    detail = (
        f"上传内容过大，未保存任何内容。附件要求：{upload_limits()}。请压缩或减少文件后重新提交。"
    )
    back = _back_link(request)
    context = {"back_url": back[0], "back_label": back[1]} if back else {}
    return PageError(
        detail,
        status_code=413,
        payload={"errors": {"request": detail}},
        context=context,
        template="request_too_large.html",
    )


def _decoded(data: bytes | bytearray, charset: str | None) -> str:
    """A text part in its declared charset; an unknown one is read as UTF-8 (not a 500)."""
    try:
        return data.decode(charset or "utf-8", "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


async def read_form(request: Request) -> FormMultiDict:
    """The request's form, with at most FIELDS_MAX of text held in memory.

    Litestar's request.form() reads a URL-encoded body whole, and keeps a multipart text part
    in memory however long it is (only file parts spool to disk), both up to the route's limit
    (max_body). Here files stream to disk as before and text beyond FIELDS_MAX is refused."""
    try:
        return await _read_form(request)
    except RequestEntityTooLarge:
        raise body_too_large(request) from None


async def _read_form(request: Request) -> FormMultiDict:
    content_type, options = request.content_type
    if content_type == RequestEncodingType.URL_ENCODED:
        if (request.content_length or 0) > FIELDS_MAX:
            raise too_large()
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > FIELDS_MAX:
                raise too_large()
        return FormMultiDict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if content_type != RequestEncodingType.MULTI_PART:
        return FormMultiDict()  # as request.form(): no form, and nothing read
    boundary = options.get("boundary")
    if not boundary:
        raise ClientException("multipart boundary missing in Content-Type")
    items: list[tuple[str, Any]] = []
    try:
        await _multipart(request, boundary.encode(), items)
    except BaseException:
        await FormMultiDict(items).close()
        raise
    return FormMultiDict(items)


async def _multipart(request: Request, boundary: bytes, items: list[tuple[str, Any]]) -> None:
    """Litestar's multipart parsing (into `items`), with the text parts counted."""
    text = 0
    segment: MultipartSegment | None = None
    data: UploadFile | bytearray = bytearray()
    try:
        with PushMultipartParser(
            boundary, max_segment_count=request.app.multipart_form_part_limit
        ) as parser:
            async for chunk in request.stream():
                for part in parser.parse(chunk):
                    if isinstance(part, MultipartSegment):
                        segment, data = part, bytearray()
                        if part.filename:
                            data = UploadFile(
                                part.content_type or "text/plain",
                                part.filename,
                                headers=dict(part.headerlist),
                            )
                            items.append((part.name, data))  # closed with the others on error
                    elif isinstance(data, UploadFile):
                        await (data.seek(0) if part is None else data.write(part))
                    elif part is not None:
                        text += len(part)
                        if text > FIELDS_MAX:
                            raise too_large()
                        data.extend(part)
                    elif segment is not None:  # the end of a text part
                        items.append((segment.name, _decoded(data, segment.charset)))
                if parser.closed:
                    return
    except ParserLimitReached:
        raise ClientException("Too many parts in multipart/form-data") from None
    except ParserError as err:
        raise ClientException("Invalid multipart/form-data") from err


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


Company = tuple[dict[str, Any], list[str]]  # read.company_of: the entity, its records' ids


def _entity_step(conn, values: dict[str, Any], errors: dict[str, str]) -> Company | None:
    if not values.get("uscc"):
        return None
    code, problem = rq.check_code(values["uscc"])
    if problem:
        errors.setdefault("uscc", problem)
        return None
    values["uscc"] = code
    # An entity none of whose records is visible is, here as on its profile, never published;
    # a 注册号 linked to a USCC stands for that company, as on its profile.
    company = read.company_of(conn, code)
    if company is None:
        errors.setdefault("uscc", rq.no_entity(code))
    return company


def _shown_entity(conn, values: dict[str, Any]) -> Company | None:
    """The entity of the step 2 the form was sent from (its STEP_ENTITY field), while published;
    None for step 1, a GET, or a form without (or with a bad) STEP_ENTITY."""
    code, problem = rq.check_code(values.get(STEP_ENTITY) or "")
    return None if problem else read.company_of(conn, code)


def _code_problem(conn, typed: str, entity: dict[str, Any]) -> str | None:
    """What is wrong with the code sent from step 2 of `entity`; None when it is the entity's
    (or the other code of its company)."""
    code, problem = rq.check_code(typed)
    company = None if problem else read.company_of(conn, code)
    if company and company[0]["id"] == entity["id"]:
        return None
    what = problem or f"统一社会信用代码 {code} 与本页主体不一致"
    return f"{what}（本页主体的代码为 {entity['id']}）；如需为其他主体申请，请点击“更换主体”。"


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
    shown = _shown_entity(conn, values)
    problem = _code_problem(conn, values["uscc"], shown[0]) if shown else None
    if shown and problem:
        # Sent from step 2 with a mistyped or changed code: step 2 of the same entity again,
        # the code's problem first (as on the page) and beside the field.
        company: Company | None = shown
        errors = {"uscc": problem, **{k: v for k, v in errors.items() if k != "uscc"}}
    else:
        company = _entity_step(conn, values, errors)
    if company is None:  # step 1: the summary links only to fields it has
        errors = {k: v for k, v in errors.items() if k in STEP_ONE_FIELDS}
    entity, ids = company or (None, [])
    choices = rq.record_choices(conn, ids) if ids else []
    config = request_config.load_config()
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
        "max_mb": config.max_mb,
        "type_labels": request_models.TYPE_LABELS,
        "deadline_days": config.decision_days,
        "review_days": config.review_days,
        "retention_days": config.personal_data_days,
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
        "type": type if type in request_models.TYPE_LABELS else "",
        "uscc": uscc or "",
        "record_ids": list(record or []),
    }
    with engine.connect() as conn:
        if values["record_ids"] and not values["uscc"]:
            values["uscc"] = _entity_of(conn, values["record_ids"][0])
        cid, new = _client_id(request)
        context = form_context(
            conn, values, guard.issue_token(cid, "request"), errors=_step_one_errors(uscc, record)
        )
    return _form_response(request, context, 200, cid, new)


def _step_one_errors(uscc: str | None, record: list[str] | None) -> dict[str, str]:
    """Step 1 sent with the code left blank (`?uscc=`): say so, rather than show the same form
    again without a word. A first visit (no `uscc` at all) is not an error."""
    if uscc is None or record:
        return {}
    code, problem = rq.check_code(uscc)  # other codes: _entity_step says what is wrong
    return {"uscc": problem} if problem and not code else {}


def _entity_of(conn, record_id: str) -> str:
    """The entity of a visible record, to prefill the form; "" for any other record id. The
    ids of withdrawn records are public (feed tombstones): naming their entity would tie a
    repaired record to its company."""
    rec = read.record(conn, record_id) if record_id else None
    return (rec["entity_id"] or "") if rec and read.is_visible(rec) else ""


def _values(form: Any) -> dict[str, Any]:
    values = {k: (form.get(k) if isinstance(form.get(k), str) else "") for k in FIELDS}
    values["record_ids"] = [i for i in getall(form, "record_ids") if isinstance(i, str)]
    values[STEP_ENTITY] = _text(form, STEP_ENTITY)
    return values


def _submit(engine: Any, sub: rq.Submission, values: dict[str, Any]) -> rq.Receipt:
    """rq.submit, except for a form sent from step 2 with a mistyped or changed code: that one
    is only checked, with the code of step 2's entity so that what is said of the records and
    the other fields is right for it, and never stored (IntakeError, the code's problem
    included)."""
    with engine.connect() as conn:
        shown = _shown_entity(conn, values)
        problem = _code_problem(conn, sub.uscc, shown[0]) if shown else None
        if shown and problem:
            checked = dataclasses.replace(sub, uscc=shown[0]["id"])
            try:
                rq.validate(conn, checked, clock.beijing_date(clock.now()))
            except rq.IntakeError as err:
                raise rq.IntakeError({"uscc": problem, **err.errors}, err.records) from None
            raise rq.IntakeError({"uscc": problem})
    return rq.submit(engine, sub)


@post("/requests/new", name="request_submit", opt=UPLOADS, include_in_schema=False)
async def request_submit(request: Request) -> Response | Template:
    engine = request.app.state.engine
    cid, new = _client_id(request)
    wait = await guard.over_limit(request, "submit")
    if wait:
        return _too_often("submit", wait)
    form = await read_form(request)
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
        receipt = await sync_to_thread(_submit, engine, sub, values)
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
        "access_code": (
            request_codes.format_code(receipt.access_code) if receipt.access_code else None
        ),
        "type_label": request_models.TYPE_LABELS[receipt.type],
        "attachments": receipt.attachments,
        "json_url": None,
        "feeds": [],
    }
    background = (
        None
        if receipt.replayed
        else BackgroundTask(sync_to_thread, notices.send_confirmation, engine, receipt.tracking_no)
    )
    return Template(
        "request_receipt.html",
        context=context,
        status_code=200 if receipt.replayed else 201,
        headers=PRIVATE,
        background=background,
    )


# What each per-IP limit of requests.toml counts, for its 429 page.
LIMITED = {
    "submit": ("提交过于频繁", "提交", "（提交未成功的也计入）"),
    "status": ("查询过于频繁", "查询", ""),
}


def _too_often(name: str, wait: int) -> Template:
    """The 429 page of the limit `name`: what the limit is, and when to try again in minutes
    when that is over a minute away."""
    title, verb, counted = LIMITED[name]
    requests, window = request_config.load_config().limits[name]
    detail = (
        f"同一网络地址{per_window(window)}最多{verb} {requests} 次{counted}，"
        f"请{retry_in(wait)}再试。"
    )
    return _plain_page(title, detail, 429, {"Retry-After": str(wait)})


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
    config = request_config.load_config()
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
        "more_info": view["status"] == MORE_INFO,
        "max_files": config.max_files,
        "max_mb": config.max_mb,
    }


def _status_page(
    engine: Any,
    tracking_no: str,
    code: str,
    cid: str,
    *,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    status: int = 200,
    ask_number: bool = False,
    note: str = "",
) -> Template:
    """The request as its applicant sees it, or the lookup form when number or code is wrong.
    note: the supplement's 说明 as typed, when sending it failed."""
    with engine.connect() as conn:
        view = request_queries.applicant_view(conn, tracking_no, code)
        if view is None:
            return _lookup_page(
                tracking_no, cid, NOT_FOUND, 404, invalid=True, ask_number=ask_number
            )
        context = status_context(conn, view, request_codes.normalize_access_code(code))
    context.update(
        token=guard.issue_token(cid, f"supplement:{tracking_no}"),
        token_field=guard.TOKEN_FIELD,
        errors=errors or {},
        notice=notice,
        note=note,
    )
    return Template("request_status.html", context=context, status_code=status, headers=PRIVATE)


def _lookup_purpose(tracking_no: str, ask_number: bool) -> str:
    return LOOKUP_PURPOSE if ask_number else f"status:{tracking_no}"


def _lookup_page(
    tracking_no: str,
    cid: str,
    error: str | None,
    status: int,
    *,
    new_cookie: bool = False,
    invalid: bool = False,
    ask_number: bool = False,
) -> Template:
    """The lookup form: of one number (/requests/{tracking_no}), or asking for the number too
    (ask_number, /requests/lookup). invalid: the error is about what was typed in."""
    return Template(
        "request_lookup.html",
        status_code=status,
        headers=PRIVATE,
        cookies=[guard.client_cookie(cid, "/requests")] if new_cookie else [],
        context={
            "tracking_no": tracking_no,
            "ask_number": ask_number,
            "action": LOOKUP_PATH if ask_number else f"/requests/{tracking_no}",
            "error": error,
            "invalid": invalid,
            "token": guard.issue_token(cid, _lookup_purpose(tracking_no, ask_number)),
            "token_field": guard.TOKEN_FIELD,
            "json_url": None,
            "feeds": [],
        },
    )


@get(LOOKUP_PATH, name="request_lookup", include_in_schema=False)
async def request_lookup(request: Request) -> Template:
    """The lookup form asking for the tracking number and the code (linked from the home page
    and the request form: an applicant without the receipt's link starts here)."""
    cid, new = _client_id(request)
    return _lookup_page("", cid, None, 200, new_cookie=new, ask_number=True)


@post(
    LOOKUP_PATH,
    name="request_lookup_submit",
    request_max_body_size=FIELDS_MAX,
    include_in_schema=False,
)
async def request_lookup_submit(request: Request) -> Template:
    """The status page of the number and code typed into /requests/lookup."""
    return await _answer_lookup(request, None)


@get("/requests/{tracking_no:str}", name="request_status", include_in_schema=False)
async def request_status(request: Request, tracking_no: FromPath[str]) -> Template:
    """The lookup form. A `?code=` is not looked at: the code is sent by POST only."""
    cid, new = _client_id(request)
    number = request_codes.normalize_tracking_no(tracking_no)
    return _lookup_page(number, cid, None, 200, new_cookie=new)


@post(
    "/requests/{tracking_no:str}",
    name="request_status_lookup",
    request_max_body_size=FIELDS_MAX,
    include_in_schema=False,
)
async def request_status_lookup(request: Request, tracking_no: FromPath[str]) -> Template:
    """The status page, as the answer to the lookup form (its code in the body, not the URL)."""
    return await _answer_lookup(request, tracking_no)


async def _answer_lookup(request: Request, tracking_no: str | None) -> Template:
    """The answer to a lookup form: of the number in the path, or (None) of the number typed
    into the form. Both count against the same per-IP limit on guessing codes."""
    wait = await guard.over_limit(request, "status")
    if wait:
        return _too_often("status", wait)
    cid, new = _client_id(request)
    form = await read_form(request)
    ask_number = tracking_no is None
    number = request_codes.normalize_tracking_no(
        _text(form, "tracking_no") if ask_number else tracking_no
    )
    _, problem = guard.check_token(
        form.get(guard.TOKEN_FIELD),
        request.cookies.get(guard.CLIENT_COOKIE),
        _lookup_purpose(number, ask_number),
    )
    if problem:
        return _lookup_page(number, cid, problem, 403, new_cookie=new, ask_number=ask_number)
    return await sync_to_thread(
        _status_page,
        request.app.state.engine,
        number,
        _text(form, "code"),
        cid,
        ask_number=ask_number,
    )


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@post(
    "/requests/{tracking_no:str}/supplement",
    name="request_supplement",
    opt=UPLOADS,
    include_in_schema=False,
)
async def request_supplement(request: Request, tracking_no: FromPath[str]) -> Template:
    engine = request.app.state.engine
    tracking_no = request_codes.normalize_tracking_no(tracking_no)
    wait = await guard.over_limit(request, "submit")
    if wait:
        return _too_often("submit", wait)
    form = await read_form(request)
    code = form.get("code") if isinstance(form.get("code"), str) else ""
    cid = request.cookies.get(guard.CLIENT_COOKIE)
    _, problem = guard.check_token(form.get(guard.TOKEN_FIELD), cid, f"supplement:{tracking_no}")
    note = _text(form, "note")
    errors: dict[str, str] = {}
    notice = None
    status = 200
    if problem:
        errors["form"], status = problem, 403
    else:
        try:
            await sync_to_thread(rq.supplement, engine, tracking_no, code, note, uploads_of(form))
            notice = "补正材料已收到，办理期限自今日起重新计算。"
        except rq.IntakeError as err:
            errors, status = err.errors, err.status
    return await sync_to_thread(
        _status_page,
        engine,
        tracking_no,
        code,
        cid or "",
        errors=errors,
        notice=notice,
        status=status,
        note=note if errors else "",  # typed again only when it was not received
    )


route_handlers = [
    request_form,
    request_submit,
    request_lookup,
    request_lookup_submit,
    request_status,
    request_status_lookup,
    request_supplement,
]
__all__ = [
    "OBJECTION",
    "REPAIR",
    "form_submission",
    "route_handlers",
    "uploads_of",
]
