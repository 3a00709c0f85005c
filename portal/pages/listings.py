"""/penalties, /credit-marks, /return-pledges — listings of a kind with filters (district, date
range, category, grade), newest first, paged by an opaque keyset token (`next`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from sqlalchemy import Connection

from portal import routes, stats
from portal.api.schemas import TOO_MANY
from portal.errors import bad_request
from portal.pages.common import (
    API_TAGS,
    BAD_PARAMETERS,
    GRADES,
    Next,
    decode_token,
    encode_token,
    parse_date,
    parse_district,
    twin,
)
from portal.render import Page, respond
from publishing import clock, read
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
        if kind == "credit_mark":  # the schemes that are published only as these figures
            context["statistics"] = scheme_statistics(cache, conn)
            context["statistics_url"] = STATISTICS_PATH
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


# -- the credit-mark schemes published only as statistics ----------------------------------

STATISTICS_PATH = routes.api_path(routes.CREDIT_MARKS) + "/statistics"
STATISTICS_NOTE = "按规定仅公开统计数据，不公开具体企业"
STATISTICS_DESCRIPTION = f"""公示规则中设为 `public = false` 的信用标注类型（如信用风险分类）{STATISTICS_NOTE}：
这些标注不出现在任何按企业的页面、接口、订阅源或下载中，只在这里（和 /credit-marks 页面）按分类结果和区市
公布公示中的标注数量。

`schemes` 每项为一个标注类型：`total` 为总数；`grades` 为分类结果 A–E（有标注没有分类结果的，另计
“{read.UNGRADED}”；该类型的标注都没有分类结果时为空列表），`by_grade` 为各分类结果的数量；`by_district`
为每个区市（含数量为 0 的）的数量及其各分类结果的数量。
所有标注类型都公开时 `schemes` 为空列表。`date` 为统计所依据的日期（北京时间；公示期已过的不计）。"""


class DistrictCounts(msgspec.Struct, kw_only=True):
    district_code: str | None
    district: str | None
    count: int
    by_grade: dict[str, int]


class SchemeCounts(msgspec.Struct, kw_only=True):
    scheme: str
    total: int
    grades: list[str]
    by_grade: dict[str, int]
    by_district: list[DistrictCounts]


class SchemeStatistics(msgspec.Struct, kw_only=True):
    date: str
    note: str
    schemes: list[SchemeCounts]


def scheme_statistics(cache: stats.PublishedCache, conn: Connection) -> dict[str, Any]:
    """read.scheme_statistics with its date, cached like the counts (it changes only when
    something is published, or with the day)."""

    def compute(c: Connection) -> dict[str, Any]:
        today = clock.today()
        schemes = read.scheme_statistics(c, today)
        return {"date": today.isoformat(), "note": STATISTICS_NOTE, "schemes": schemes}

    return cache.get(conn, "scheme_statistics", compute, stale_ok=True)


@get(
    STATISTICS_PATH,
    name="api_credit_mark_statistics",
    summary="仅公开统计数据的信用标注类型：按分类结果和区市统计的数量",
    description=STATISTICS_DESCRIPTION,
    tags=API_TAGS,
    responses={400: BAD_PARAMETERS, 429: TOO_MANY},
    sync_to_thread=True,
)
def credit_mark_statistics(
    request: Request, conn: NamedDependency[Connection]
) -> Response[SchemeStatistics]:
    """The JSON of the /credit-marks page's statistics section (its HTML), answered as every
    page's JSON twin is (render.respond: a weak ETag, If-None-Match → 304)."""
    data = scheme_statistics(request.app.state.published_cache, conn)
    page = Page("listing.html", data, html_page=routes.PATHS[routes.CREDIT_MARKS])
    return respond(request, page)


route_handlers = [*penalties, *credit_marks, *return_pledges, credit_mark_statistics]
