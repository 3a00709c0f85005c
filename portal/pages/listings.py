"""/penalties, /credit-marks, /return-pledges — listings of a kind with filters (district, date
range, category, grade), newest first, paged by an opaque keyset token (`next`). A bad filter
value is a 400: the JSON twin's error, or the page itself with the error beside its field."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from sqlalchemy import Connection

from portal import routes, stats
from portal.api.schemas import LISTING_MODELS, TOO_MANY
from portal.errors import PageError
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
from portal.routes import is_api
from publishing import clock, read
from publishing.contract import KIND_LABELS

PER_PAGE = 50
# 监管领域: the site's one word for a domain (the penalty file's header says 领域)
CATEGORY_LABELS = {"penalty": "监管领域", "credit_mark": "标注类型", "return_pledge": "经营类别"}

LISTING_DESCRIPTION = f"""按日期倒序；用返回的 next 令牌取下一页、prev 令牌（参数 before）取上一页（键集分页）。

`total` 为符合筛选条件的公示中记录数。按日期、{"/".join(CATEGORY_LABELS.values())}或分类结果筛选时最多计数到
{read.COUNT_CAP:,} 条：超过时 `total` 为 {read.COUNT_CAP:,}、`capped` 为 true（实际数量多于 `total`）；
否则 `capped` 为 false，`total` 为准确数量。"""

District = Annotated[str | None, QueryParameter(description="区市代码或名称，如 370602 或 芝罘区")]
Before = Annotated[str | None, QueryParameter(description="返回的 prev 翻页令牌：取其之前（较新）的一页")]
DateFrom = Annotated[str | None, QueryParameter(name="from", description="起始日期 YYYY-MM-DD（含）")]
DateTo = Annotated[str | None, QueryParameter(name="to", description="结束日期 YYYY-MM-DD（含）")]
Category = Annotated[str | None, QueryParameter(description="监管领域（行政处罚）/ 标注类型 / 经营类别")]
Grade = Annotated[str | None, QueryParameter(description="分类结果 A–E（信用标注的信用风险分类）")]


class FilterErrors(PageError):
    """Filter values that cannot be used, field → what is wrong (in the form's order): 400."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(next(iter(errors.values())), status_code=400)
        self.errors = errors


def parse_filters(
    kind: str,
    *,
    district: str | None,
    date_from: str | None,
    date_to: str | None,
    category: str | None,
    grade: str | None,
) -> read.ListFilter:
    """The listing's filter; FilterErrors names every field whose value is wrong."""
    errors: dict[str, str] = {}

    def parsed(field: str, parse: Any, *args: Any) -> Any:
        try:
            return parse(*args)
        except PageError as err:
            errors[field] = err.detail
            return None

    flt = read.ListFilter(
        kind=kind,
        district=parsed("district", parse_district, district),
        date_from=parsed("from", parse_date, date_from, "起始日期"),
        date_to=parsed("to", parse_date, date_to, "结束日期"),
        category=category or None,
        grade=(grade or "").upper() or None,
    )
    if flt.date_from and flt.date_to and flt.date_from > flt.date_to:
        errors["from"] = (
            f"起始日期（{flt.date_from}）晚于结束日期（{flt.date_to}），请检查日期范围。"
        )
    if flt.grade and flt.grade not in GRADES:
        errors["grade"] = f"分类结果应为 A–E 之一，收到：{grade}"
    if errors:
        raise FilterErrors(errors)
    return flt


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
    flt = parse_filters(
        kind,
        district=district,
        date_from=date_from,
        date_to=date_to,
        category=category,
        grade=grade,
    )
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
    if any((flt.date_from, flt.date_to, flt.category, flt.grade)):
        # not in the statistics: counted up to read.COUNT_CAP (a lower bound), once per change
        total, capped = filtered_counts(cache).get(conn, cache, flt)
    else:
        counts = stats.counts(cache, conn)
        total = (
            counts["by_district"][flt.district][kind] if flt.district else counts["by_kind"][kind]
        )
        capped = False
    return {
        "kind": kind,
        "kind_label": KIND_LABELS[kind],
        "filters": filters,
        "total": total,
        "capped": capped,  # total is a lower bound: counting stopped at read.COUNT_CAP
        "records": rows,
        "next": next_token,
        "next_url": _url(path, filters, next_token) if next_token else None,
        "prev": prev_token,
        "prev_url": _url(path, filters, prev_token, "before") if prev_token else None,
        "first_url": _url(path, filters, None) if newer else None,
    }


COUNTS_KEPT = 512  # filtered counts kept per process: a few hundred bytes each
Counted = tuple[int, bool]  # read.count_records: (count, capped)


class FilteredCounts:
    """read.count_records of the filters last asked for (at most `size`, least recently used
    dropped), each valid at the publication stamp it was counted at (change seq, batch, day):
    paging through a filter counts once, and any publish counts again. At a million records
    (SQLite) the count was most of a filtered page: 20–30 ms of 25–35 ms (p50)."""

    def __init__(self, size: int = COUNTS_KEPT) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[read.ListFilter, tuple[stats.Stamp, Counted]] = OrderedDict()

    def get(self, conn: Connection, cache: stats.PublishedCache, flt: read.ListFilter) -> Counted:
        # the stamp before the count: a count is never older than the stamp it is kept under
        stamp = cache.stamp(conn)
        with self._lock:
            entry = self._entries.get(flt)
            if entry is not None and entry[0] == stamp:
                self._entries.move_to_end(flt)
                return entry[1]
        counted = read.count_records(conn, flt)
        with self._lock:
            self._entries[flt] = (stamp, counted)
            self._entries.move_to_end(flt)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return counted


# one per app (its PublishedCache): apps on other databases (tests) share no counts
_filtered_counts: weakref.WeakKeyDictionary[stats.PublishedCache, FilteredCounts] = (
    weakref.WeakKeyDictionary()
)
_filtered_counts_lock = threading.Lock()


def filtered_counts(cache: stats.PublishedCache) -> FilteredCounts:
    with _filtered_counts_lock:
        counts = _filtered_counts.get(cache)
        if counts is None:
            counts = _filtered_counts[cache] = FilteredCounts()
        return counts


def invalid_listing_data(
    kind: str, entered: dict[str, str | None], errors: dict[str, str]
) -> dict[str, Any]:
    """The page of a listing whose filter has errors: no records, the form with the values
    as entered (to correct them) and the errors."""
    return {
        "kind": kind,
        "kind_label": KIND_LABELS[kind],
        "filters": entered,
        "errors": errors,
        "total": None,
        "capped": False,
        "records": [],
        "next": None,
        "next_url": None,
        "prev": None,
        "prev_url": None,
        "first_url": None,
    }


def grade_options(cache: stats.PublishedCache, conn: Connection) -> list[str]:
    """The grades (信用风险分类 A–E) of the credit marks published by entity now: the options
    of the grade filters, so none that lists nothing (a scheme published only as statistics,
    public = false, has none here). Five seeks of ix_records_kind_grade_date, once per change."""

    def compute(c: Connection) -> list[str]:
        used = (read.ListFilter(kind="credit_mark", grade=g) for g in GRADES)
        return [flt.grade for flt in used if read.list_records(c, flt, limit=1)]

    return cache.get(conn, "grades:credit_mark", compute)


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


def _data_or_errors(
    request: Request,
    conn: Connection,
    cache: stats.PublishedCache,
    kind: str,
    path: str,
    filters: dict[str, str | None],
    token: str | None,
    before: str | None,
) -> tuple[dict[str, Any], int]:
    """The listing's data and status: 200, or on the HTML page 400 with the errors of bad
    filter values (the JSON twin's 400 is the error alone, as before). `path` is the HTML
    page's: the JSON twin's data links to its own pages (next_url …), as its Link header does."""
    if is_api(request.url.path):
        path = routes.json_twin(path)
    try:
        data = listing_data(conn, cache, kind, path, token=token, before=before, **filters)
    except FilterErrors as err:
        if is_api(request.url.path):
            raise
        entered = {key.removeprefix("date_"): value for key, value in filters.items()}
        return invalid_listing_data(kind, entered, err.errors), 400
    return data, 200


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
        filters = {
            "district": district,
            "date_from": date_from,
            "date_to": date_to,
            "category": category,
            "grade": grade,
        }
        data, status = _data_or_errors(request, conn, cache, kind, path, filters, token, before)
        feeds = [{"title": f"{KIND_LABELS[kind]}（Atom）", "url": routes.feed_url(kind)}]
        code = data["filters"]["district"] if status == 200 else None  # else: as entered
        if code:
            feeds.append(
                {"title": f"{KIND_LABELS[kind]} · 本区市（Atom）", "url": routes.feed_url(kind, code)}
            )
        context = {
            "categories": stats.categories(cache, conn, kind),
            "category_label": CATEGORY_LABELS[kind],
            "grades": GRADES,
            "grade_options": grade_options(cache, conn) if kind == "credit_mark" else [],
            "listing_path": path,
        }
        if status != 200:  # its JSON twin is the error alone: no data to link to
            context["json_url"] = None
        if kind == "credit_mark":  # the schemes that are published only as these figures
            context["statistics"] = scheme_statistics(cache, conn)
            context["statistics_url"] = STATISTICS_PATH
        # Page.next_url is the HTML page's (respond makes the twin's Link from it)
        html_next = _url(path, data["filters"], data["next"]) if data["next"] else None
        page = Page(
            "listing.html",
            data,
            context=context,
            feeds=feeds,
            next_url=html_next,
            status_code=status,
        )
        return respond(request, page)

    listing.__name__ = f"{name}_listing"
    return twin(
        name,
        model=LISTING_MODELS[kind],
        summary=summary,
        description=LISTING_DESCRIPTION,
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
