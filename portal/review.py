"""/review — the reviewers' back office: login (argon2, lockout), a queue sorted by due date
with overdue requests highlighted, one request with its records, attachments and history, and
the actions accept / ask for more material / approve / reject, each with a reason.

Sessions are Litestar's client-side cookie sessions (encrypted and signed with a key derived
from DISCLOSURE_SECRET_KEY; Secure, HttpOnly, SameSite=Strict, path /review). A session carries
the user's session epoch: logging out ends every session of the user. Forms carry a per-session
CSRF token. Attachments are served only here, to logged-in reviewers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, Router, get, post
from litestar.concurrency import sync_to_thread
from litestar.middleware import DefineMiddleware
from litestar.middleware.session.base import SessionMiddleware
from litestar.middleware.session.client_side import ClientSideSessionBackend, CookieBackendConfig
from litestar.params import FromPath, FromQuery
from litestar.response import File, Redirect, Template
from sqlalchemy import Connection

from portal import request_guard as guard
from portal.ratelimit import retry_in
from portal.requests_pages import FIELDS_MAX, read_form
from publishing import (
    audit,
    clock,
    read,
    request_config,
    request_models,
    request_queries,
    review,
    safetext,
    users,
)
from publishing.corrections import (
    correctable_fields,
    correction_label,
    identity_fields,
    issue_fields,
)
from publishing.db import writer_connection
from publishing.request_models import DECIDED_STATUSES, OBJECTION, OPEN_STATUSES, REPAIR

# Corrections are {field: value} or {record id: {field: value}}: anything nested deeper is none,
# and would reach the recursion limit of the code that cleans and masks them (a 500).
CORRECTIONS_DEPTH = 4
TOO_DEEP = "更正内容嵌套层数过多：应为 {字段: 值}，或 {记录编号: {字段: 值}}"
COOKIE = "review_session"
PAGE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"}
LOGIN_URL = "/review/login"


def session_config() -> CookieBackendConfig:
    from publishing.settings import get_settings

    secret = hashlib.sha256(("review-session:" + get_settings().secret_key).encode()).digest()
    hours = request_config.load_config().session_hours
    return CookieBackendConfig(
        secret=secret,
        key=COOKIE,
        path="/review",
        secure=True,
        httponly=True,
        samesite="strict",
        max_age=hours * 3600,
    )


class _ReviewSessions(SessionMiddleware):
    """The session middleware, its cipher built when the app starts (a Router holding a built
    backend cannot be copied, which Litestar does when it registers the router)."""

    def __init__(self, app: Any, config: CookieBackendConfig) -> None:
        super().__init__(app, backend=ClientSideSessionBackend(config=config))


def _base(**context: Any) -> dict[str, Any]:
    return {"json_url": None, "feeds": [], "flash": None, **context}


def _csrf(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return token


def _csrf_ok(request: Request, form: Any) -> bool:
    sent, kept = form.get("csrf"), request.session.get("csrf")
    return isinstance(sent, str) and bool(kept) and hmac.compare_digest(sent, kept)


def current_user(request: Request) -> users.Principal | None:
    s = request.session
    uid, epoch, started = s.get("uid"), s.get("epoch"), s.get("at")
    if not uid or started is None:
        return None
    if time.time() - float(started) > request_config.load_config().session_hours * 3600:
        return None
    with request.app.state.engine.connect() as conn:
        return users.session_user(conn, int(uid), int(epoch or 0))


def _to_login() -> Redirect:
    return Redirect(LOGIN_URL, status_code=303, headers=PAGE)


# -- login and logout -------------------------------------------------------------------------


def _login_page(
    request: Request, status: int = 200, error: str | None = None, name: str = ""
) -> Template:
    return Template(
        "review_login.html",
        status_code=status,
        headers=PAGE,
        context=_base(
            csrf=_csrf(request), error=error, name=name, lockout=request_config.load_config()
        ),
    )


@get("/login", name="review_login")
@guard.threaded
def login_page(request: Request) -> Response | Template:
    if current_user(request):
        return Redirect("/review", status_code=303, headers=PAGE)
    return _login_page(request)


@post("/login", name="review_login_submit", request_max_body_size=FIELDS_MAX)
async def login_submit(request: Request) -> Response | Template:
    form = await read_form(request)
    if not _csrf_ok(request, form):
        return _login_page(request, 403, "表单安全令牌无效或已过期，请重新登录。")
    wait = await guard.over_limit(request, "login")
    if wait:
        return _login_page(request, 429, f"登录尝试过于频繁，请{retry_in(wait)}再试。")
    name = form.get("name") if isinstance(form.get("name"), str) else ""
    password = form.get("password") if isinstance(form.get("password"), str) else ""
    config = request_config.load_config()
    result = await sync_to_thread(
        users.login,
        request.app.state.engine,
        name.strip(),
        password,
        failures=config.lockout_failures,
        minutes=config.lockout_minutes,
        account_failures=config.lockout_account_failures,
        source=guard.client_ip(request),
    )
    if result.user is None:
        if result.locked_until:  # this address, for this name (said alike for every name)
            until = result.locked_until.astimezone(clock.BEIJING).strftime("%H:%M")
            return _login_page(
                request,
                423,
                f"从本地址登录该用户名连续失败次数过多，已暂时锁定，请于 {until} 后再试。",
                name,
            )
        return _login_page(request, 401, "用户名或密码错误。", name)
    request.set_session(
        {
            "uid": result.user.id,
            "epoch": result.user.session_epoch,
            "at": time.time(),
            "csrf": secrets.token_urlsafe(24),
        }
    )
    return Redirect("/review", status_code=303, headers=PAGE)


@post("/logout", name="review_logout", request_max_body_size=FIELDS_MAX)
async def logout(request: Request) -> Response:
    form = await read_form(request)
    user = await sync_to_thread(current_user, request)
    if user and _csrf_ok(request, form):
        await sync_to_thread(users.logout, request.app.state.engine, user)
    request.clear_session()
    return _to_login()


# -- the queue and one request ----------------------------------------------------------------


QUEUE_PAGE_SIZE = 100


@get("/", name="review_queue")
@guard.threaded
def queue_page(
    request: Request, view: FromQuery[str] = "open", page: FromQuery[int] = 1
) -> Response | Template:
    user = current_user(request)
    if user is None:
        return _to_login()
    view = "decided" if view == "decided" else "open"
    statuses = DECIDED_STATUSES if view == "decided" else OPEN_STATUSES
    with request.app.state.engine.connect() as conn:
        total = request_queries.queue_count(conn, statuses)
        pages = max(1, -(-total // QUEUE_PAGE_SIZE))
        page = min(max(page, 1), pages)
        offset = (page - 1) * QUEUE_PAGE_SIZE
        items = request_queries.queue(conn, statuses, limit=QUEUE_PAGE_SIZE, offset=offset)
        figures = request_queries.public_figures(conn)
    return Template(
        "review_queue.html",
        headers=PAGE,
        context=_base(
            user=user,
            items=items,
            view=view,
            total=total,
            page=page,
            pages=pages,
            first=offset + 1,
            prev_url=_queue_url(view, page - 1) if page > 1 else None,
            next_url=_queue_url(view, page + 1) if page < pages else None,
            today=clock.today(),
            figures=figures,
            # the footnote explains a "*": only when a deadline on this page carries one
            fallback=any(q["review_fallback"] or q["decision_fallback"] for q in items),
            csrf=_csrf(request),
            flash=request.session.pop("flash", None),
        ),
    )


def _queue_url(view: str, page: int) -> str:
    query = [("view", view)] if view == "decided" else []
    if page > 1:
        query.append(("page", str(page)))
    return "/review" + (f"?{urlencode(query)}" if query else "")


def _detail_context(
    request: Request,
    user: users.Principal,
    tracking_no: str,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
):
    with request.app.state.engine.connect() as conn:
        req = request_queries.find(conn, tracking_no)
        if req is None:
            return None
        records = []
        for rid in req["record_ids"] or []:
            rec = read.record(conn, rid)
            records.append(
                {"id": rid, "record": rec, "visible": bool(rec and read.is_visible(rec))}
            )
        kinds = sorted({r["record"]["kind"] for r in records if r["record"]})
        context = _base(
            user=user,
            req=req,
            view=request_queries.public_view(conn, req),
            records=records,
            files=request_queries.files(conn, req["id"]),
            history=_history(conn, req["id"], tracking_no),
            # the other requests on the same records (anyone may file about a record, the same
            # applicant again too: those with this one's contact are marked)
            related=request_queries.related_requests(conn, req),
            open=req["status"] in OPEN_STATUSES,
            # the request as this page shows it, carried by its form (review.act's precondition)
            version=review.request_version(conn, req["id"]),
            errors=errors or {},
            values=values or {},
            fields={k: [(f, correction_label(k, f)) for f in correctable_fields(k)]
                    for k in kinds},
            fixed={k: [correction_label(k, f) for f in sorted(identity_fields(k))]
                   for k in kinds},
            issue_wide={k: [correction_label(k, f) for f in sorted(issue_fields(k))]
                        for k in kinds},
            csrf=_csrf(request),
            flash=request.session.pop("flash", None),
            today=clock.today(),
            actions=valid_actions(user, req["status"]),
            action_labels=review.ACTION_LABELS,
            type_labels=request_models.TYPE_LABELS,
            OBJECTION=OBJECTION,
            REPAIR=REPAIR,
            beijing=clock.BEIJING,
        )
    return context


def valid_actions(user: users.Principal, status: str) -> list[str]:
    """The actions the user may take on a request in `status` (review.TRANSITIONS): 受理 is not
    offered on a request already accepted, where it would only be refused."""
    return [a for a in review.ACTIONS if user.can(a) and status in review.TRANSITIONS[a][0]]


@get("/requests/{tracking_no:str}", name="review_request")
@guard.threaded
def request_page(request: Request, tracking_no: FromPath[str]) -> Response | Template:
    user = current_user(request)
    if user is None:
        return _to_login()
    context = _detail_context(request, user, tracking_no)
    if context is None:
        return _no_request(tracking_no)
    return Template("review_request.html", headers=PAGE, context=context)


def _no_request(tracking_no: str) -> Template:
    """The 404 page of a tracking number no request has."""
    return Template(
        "error.html",
        status_code=404,
        headers=PAGE,
        context=_base(
            status=404, title="没有该申请", detail=f"没有受理编号为 {tracking_no} 的申请。"
        ),
    )


def parse_corrections(text: str) -> dict[str, Any]:
    """`field=value` per line (or a JSON object) -> {field: value}; ValueError when unreadable."""
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except RecursionError:  # nested beyond the parser's depth: unreadable, not a crash
            raise ValueError("nested too deeply") from None
        if not isinstance(value, dict):
            raise ValueError("not an object")
        if nested_too_deep(value):
            raise ValueError("nested too deeply")
        return value
    out = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.replace("\uff1d", "=").partition("=")  # ＝ typed with an IME
        if not sep or not key.strip():
            raise ValueError(line)
        out[key.strip()] = value.strip()
    return out


@post("/requests/{tracking_no:str}", name="review_action", request_max_body_size=FIELDS_MAX)
async def action_submit(request: Request, tracking_no: FromPath[str]) -> Response | Template:
    user = await sync_to_thread(current_user, request)
    if user is None:
        return _to_login()
    form = await read_form(request)
    values = {
        k: form.get(k) if isinstance(form.get(k), str) else ""
        for k in ("action", "reason", "outcome", "corrections", "expected_status", "expected_version")
    }
    errors: dict[str, str] = {}
    status = 422
    if not _csrf_ok(request, form):
        errors["form"], status = "表单安全令牌无效或已过期，请刷新页面后重试。", 403
    elif unusable := decision_problems(values["reason"], values["corrections"]):
        errors = unusable
    else:
        try:
            corrections = parse_corrections(values["corrections"])
        except ValueError:
            corrections = None
            errors["corrections"] = "更正内容格式应为每行一个“字段=值”"
        else:  # a control character written as JSON writes it (\u0000)
            errors = decision_problems(None, corrections)
        if not errors:
            try:
                result = await sync_to_thread(
                    review.act,
                    request.app.state.engine,
                    tracking_no,
                    user,
                    values["action"],
                    values["reason"],
                    outcome=values["outcome"] or None,
                    corrections=corrections or None,
                    # a page shown before someone else's action or a supplement: refused (409)
                    expected_status=values["expected_status"],
                    expected_version=values["expected_version"],
                )
                label = review.ACTION_LABELS.get(values["action"], values["action"])
                request.session["flash"] = f"已{label}：{tracking_no}" + _notes(result)
                return Redirect(f"/review/requests/{tracking_no}", status_code=303, headers=PAGE)
            except review.ReviewError as err:
                errors, status = err.errors, err.status
    context = await sync_to_thread(_detail_context, request, user, tracking_no, errors, values)
    if context is None:
        return _no_request(tracking_no)
    return Template("review_request.html", status_code=status, headers=PAGE, context=context)


def nested_too_deep(value: Any, limit: int = CORRECTIONS_DEPTH) -> bool:
    """Whether objects and arrays nest more than `limit` deep in a parsed JSON value (walked
    without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def decision_problems(reason: Any, corrections: Any) -> dict[str, str]:
    """What review.act cannot take in a decision's reason and corrections (the form's text, or
    the API's JSON), by field: a character no stored text may hold (safetext.UNUSABLE: NUL …), which
    it would fail to store, or corrections nested too deep. Values of another type are left to
    review.act, which says what type they should be."""
    problems = {}
    if isinstance(reason, str) and not safetext.usable(reason):
        problems["reason"] = safetext.unusable_problem("理由")
    if isinstance(corrections, str | dict) and not safetext.usable(corrections):
        problems["corrections"] = safetext.unusable_problem("更正内容")
    elif isinstance(corrections, dict) and nested_too_deep(corrections):
        problems["corrections"] = TOO_DEEP
    return problems


def _notes(result: review.Outcome) -> str:
    """What the decision did not change in public, per record (already withdrawn …)."""
    notes = [f"记录 {c['id']}：{c['after']['note']}" for c in result.records if c["after"].get("note")]
    return "。" + "；".join(notes) if notes else ""


@get("/attachments/{attachment_id:int}", name="review_attachment")
@guard.threaded
def attachment_file(request: Request, attachment_id: FromPath[int]) -> Response:
    from publishing.attachments import download_name, path_of
    from publishing.settings import get_settings

    user = current_user(request)
    if user is None:
        return Response({"detail": "请先登录审核后台"}, status_code=401, headers=PAGE)
    with request.app.state.engine.connect() as conn:
        row = request_queries.attachment(conn, attachment_id)
    path = path_of(get_settings().attachments_dir, row["stored_name"]) if row else None
    if row is None or path is None or not path.exists():
        return Response({"detail": "没有该附件"}, status_code=404, headers=PAGE)
    with writer_connection(request.app.state.engine) as conn, conn.begin():
        audit.append(
            conn,
            actor=user.name,
            action="attachment.view",
            target_type="request",
            target_id=row["tracking_no"],
            after={"attachment": row["id"], "sha256": row["sha256"]},
        )
    return File(
        path=path,
        # the sniffed type names the extension: the applicant's ".html" on a PDF is not kept
        filename=download_name(row["file_name"], row["media_type"]),
        media_type=row["media_type"],
        content_disposition_type="attachment",
        headers={
            **PAGE,
            "Cache-Control": "private, no-store",
            "Content-Security-Policy": "sandbox; default-src 'none'",
        },
    )


def router() -> Router:
    """The /review router with its session middleware (built when the app is)."""
    return Router(
        path="/review",
        route_handlers=[
            login_page,
            login_submit,
            logout,
            queue_page,
            request_page,
            action_submit,
            attachment_file,
        ],
        middleware=[DefineMiddleware(_ReviewSessions, config=session_config())],
        include_in_schema=False,
    )


def _history(conn: Connection, request_id: int, tracking_no: str) -> list[dict[str, Any]]:
    """The request's audit entries, a supplement's with the note of its step (the audit log
    keeps only the note's length; entries written before that hold the note itself). Each
    supplement writes one step and one entry in one transaction: they pair up in order."""
    notes = iter([s["note"] for s in request_queries.steps(conn, request_id)
                  if s["action"] == "supplemented"])
    history = audit.for_target(conn, "request", tracking_no)
    for entry in sorted(history, key=lambda e: e["n"]):
        if entry["action"] != "request.supplement":
            continue
        note = next(notes, None)
        after = entry.get("after")
        if note and after is not None and "note" not in after:
            entry["after"] = {**after, "note": note}
    return history
