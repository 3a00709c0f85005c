"""/penalties, /credit-marks, /return-pledges — listings of a kind with filters (district, date
range, category, grade), newest first, paged by an opaque keyset token (`next`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from sqlalchemy import Connection

from portal import routes, stats
from portal.errors import bad_request
from portal.pages.common import (
    GRADES,
    Next,
    decode_token,
    encode_token,
    parse_date,
    parse_district,
    twin,
)
from portal.render import Page, respond
from publishing import read
from publishing.contract import KIND_LABELS

PER_PAGE = 50
CATEGORY_LABELS = {"penalty": "领域", "credit_mark": "标注类型", "return_pledge": "经营类别"}

District = Annotated[str | None, QueryParameter(description="区市代码或名称，如 370602 或 芝罘区")]
Before = Annotated[str | None, QueryParameter(description="返回的 prev 翻页令牌：取其之前（较新）的一页")]
DateFrom = Annotated[str | None, QueryParameter(name="from", description="起始日期 YYYY-MM-DD（含）")]
DateTo = Annotated[str | None, QueryParameter(name="to", description="截止日期 YYYY-MM-DD（含）")]
Category = Annotated[str | None, QueryParameter(description="处罚领域 / 标注类型 / 经营类别")]
Grade = Annotated[str | None, QueryParameter(description="信用风险分类结果 A–E（信用标注）")]


def listing_data(
    conn: Connection,
    cache: stats.PublishedCache,
    kind: str,
    path: str,
    *,
    district: str | None,
    date_from: str | None,
    date_to: str | None,
    category: str | None,
    grade: str | None,
    token: str | None,
    before: str | None = None,
) -> dict[str, Any]:
    flt = read.ListFilter(
        kind=kind,
        district=parse_district(district),
        date_from=parse_date(date_from, "起始日期"),
        date_to=parse_date(date_to, "截止日期"),
        category=category or None,
        grade=(grade or "").upper() or None,
    )
    if flt.date_from and flt.date_to and flt.date_from > flt.date_to:
        raise bad_request(f"起始日期（{flt.date_from}）晚于截止日期（{flt.date_to}），请检查日期范围。")
    if flt.grade and flt.grade not in GRADES:
        raise bad_request(f"分类结果应为 A–E 之一，收到：{grade}")
    if before:  # the page before a record: older pages follow it, newer ones may precede it
        rows = read.list_records(conn, flt, before=_position(before), limit=PER_PAGE + 1)
        newer, more = len(rows) > PER_PAGE, True
        rows = rows[-PER_PAGE:]
    else:
        rows = read.list_records(conn, flt, after=_position(token), limit=PER_PAGE + 1)
        newer, more = bool(token), len(rows) > PER_PAGE
        rows = rows[:PER_PAGE]
    filters = {
        "district": flt.district,
        "from": _iso(flt.date_from),
        "to": _iso(flt.date_to),
        "category": flt.category,
        "grade": flt.grade,
    }
    next_token = encode_token(rows[-1]["date"], rows[-1]["id"]) if more and rows else None
    prev_token = encode_token(rows[0]["date"], rows[0]["id"]) if newer and rows else None
    total = None
    if not any((flt.date_from, flt.date_to, flt.category, flt.grade)):
        counts = stats.counts(cache, conn)
        total = (
            counts["by_district"][flt.district][kind] if flt.district else counts["by_kind"][kind]
        )
    return {
        "kind": kind,
        "kind_label": KIND_LABELS[kind],
        "filters": filters,
        "total": total,
        "records": rows,
        "next": next_token,
        "next_url": _url(path, filters, next_token) if next_token else None,
        "prev": prev_token,
        "prev_url": _url(path, filters, prev_token, "before") if prev_token else None,
        "first_url": _url(path, filters, None) if newer else None,
    }


def _position(token: str | None) -> tuple[date, str] | None:
    """The (date, id) a page token names."""
    if not token:
        return None
    day, record_id = decode_token(token, 2)
    return parse_date(day, "翻页参数"), record_id


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _url(path: str, filters: dict[str, Any], token: str | None, param: str = "next") -> str:
    params = {k: v for k, v in filters.items() if v}
    if token:
        params[param] = token
    return f"{path}?{urlencode(params)}" if params else path


def _listing(name: str, summary: str):
    kind = routes.LISTING_KINDS[name]
    path = routes.PATHS[name]

    def listing(
        request: Request,
        conn: NamedDependency[Connection],
        district: District = None,
        date_from: DateFrom = None,
        date_to: DateTo = None,
        category: Category = None,
        grade: Grade = None,
        token: Next = None,
        before: Before = None,
    ) -> Response:
        cache = request.app.state.published_cache
        data = listing_data(
            conn,
            cache,
            kind,
            path,
            district=district,
            date_from=date_from,
            date_to=date_to,
            category=category,
            grade=grade,
            token=token,
            before=before,
        )
        feeds = [{"title": f"{KIND_LABELS[kind]}（Atom）", "url": routes.feed_url(kind)}]
        if data["filters"]["district"]:
            code = data["filters"]["district"]
            feeds.append(
                {"title": f"{KIND_LABELS[kind]} · 本区市（Atom）", "url": routes.feed_url(kind, code)}
            )
        context = {
            "categories": stats.categories(cache, conn, kind),
            "category_label": CATEGORY_LABELS[kind],
            "grades": GRADES,
            "listing_path": path,
        }
        return respond(
            request,
            Page("listing.html", data, context=context, feeds=feeds, next_url=data["next_url"]),
        )

    listing.__name__ = f"{name}_listing"
    return twin(
        name,
        summary=summary,
        description="按日期倒序；用返回的 next 令牌取下一页、prev 令牌（参数 before）取上一页（键集分页）。",
    )(listing)


penalties = _listing(routes.PENALTIES, "行政处罚案件列表")
credit_marks = _listing(routes.CREDIT_MARKS, "信用标注列表")
return_pledges = _listing(routes.RETURN_PLEDGES, "线下无理由退货承诺单位列表")

route_handlers = [*penalties, *credit_marks, *return_pledges]
