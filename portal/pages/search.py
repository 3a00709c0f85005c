"""/search — full-text search over entities and records (the derived search index), with
filters, facets with counts, highlighted hits and page= offsets. A query that looks like a
credit code but is not a valid one gets a page saying what is wrong, never "no results".
When the search backend cannot answer (SearchUnavailable: Meilisearch down, the embedded index
broken), the answer is 503 with Retry-After, except for an exact code: its profile comes from
the database, not the index.

The backend is asked first, and the database only afterwards (the exact code's profile): the
handler takes no `conn`, so a request waiting for a slow Meilisearch holds no pooled connection
(a burst of such searches emptied the pool and stalled every other page); the embedded backend
searches on the request's one connection anyway (portal.deps)."""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from litestar.response import Template
from sqlalchemy import Connection

from portal import routes
from portal.api.schemas import SearchPage, problem
from portal.deps import connection
from portal.errors import TITLES, bad_request
from portal.pages.common import GRADES, parse_district, twin
from portal.pages.listings import grade_options
from portal.render import Page, respond
from portal.routes import is_api
from portal.templating import STATUS_LABELS, TYPE_LABELS
from publishing import clock, read
from publishing.clean import drop_invisible
from publishing.codes import normalize_code, reg_no_is_valid, uscc_problem
from publishing.contract import DISTRICTS, KINDS
from publishing.models import ACTIVE
from publishing.search.base import SORTS, SearchQuery, SearchUnavailable

PER_PAGE = 20
MAX_PAGE = 50  # deep offsets are for the open-data downloads, not the search page
_CODE_LIKE = re.compile(r"^[0-9A-Z]{15,20}\Z")
_CODE_LENGTH = 18
_CODE_TOKEN = re.compile(r"(?<![0-9A-Z])[0-9A-Z]{18}(?![0-9A-Z])")
_REG_NO_TOKEN = re.compile(r"(?<![0-9A-Z])[0-9]{15}(?![0-9A-Z])")
_CODE_PART = re.compile(r"^(?=.*[0-9])[0-9A-Z]{4,}$")  # letters and digits only: part of a code
UNAVAILABLE = "搜索暂时不可用，请稍后再试。"
RETRY_AFTER_S = 30  # seconds a client waits before asking again when the search is down
UNAVAILABLE_SPEC = problem(
    "搜索后端暂时不可用（见 Retry-After 响应头）",
    {"status_code": 503, "detail": UNAVAILABLE},
)

log = logging.getLogger("portal")


def code_in_query(q: str) -> tuple[str | None, str | None]:
    """(code, problem) when the query looks like a USCC / 注册号, else (None, None)."""
    code = normalize_code(q)
    if not _CODE_LIKE.match(code) or sum(ch.isdigit() for ch in code) < 8:
        return _code_within(q), None
    if reg_no_is_valid(code):
        return code, None
    return code, uscc_problem(code)


def _code_within(q: str) -> str | None:
    """A valid USCC or 注册号 inside a longer query (统一社会信用代码：…, 注册号：…, a trailing
    comma, a second word): the query is that code."""
    text = unicodedata.normalize("NFKC", q).upper()
    for token in _CODE_TOKEN.findall(text):
        if uscc_problem(token) is None:
            return token
    for token in _REG_NO_TOKEN.findall(text):
        if reg_no_is_valid(token):
            return token
    return None


def _has_words(q: str) -> bool:
    """Whether the query holds anything to search for: punctuation alone matches nothing."""
    return any(ch.isalnum() for ch in q)


@dataclass(frozen=True)
class QueryMeaning:
    """What a typed q means to a search: the page and its feed (portal.feeds.search_feed) read
    it with read_query, so that the feed holds what the page finds."""

    q: str  # as shown and searched: trimmed, without invisible characters; "" if no words
    typed: bool  # something was typed (a q of punctuation only means nothing, yet was typed)
    code: str | None  # the USCC / 注册号 in it (code_in_query)
    problem: str | None  # what is wrong with it as a code
    partial: bool  # shorter than a USCC: searched as the start of one, its problem said after

    @property
    def wrong_code(self) -> bool:
        """A whole code that is not valid: nothing is searched, the page says what is wrong."""
        return self.problem is not None and not self.partial

    def searches(self, filtered: bool) -> bool:
        """Whether the page searches: not for a wrong code, nor with nothing asked (no words
        in q and no filter: the page shows the form alone)."""
        return not self.wrong_code and bool(self.q or filtered)

    @property
    def search_q(self) -> str:
        """What the backend is asked: the code in the query, else the query."""
        return self.code or self.q


def read_query(q: str) -> QueryMeaning:
    """The meaning of a q as typed (the page's and the search feed's one reading of it)."""
    typed = drop_invisible(q).strip()  # as the import drops them from the data
    clean = typed if _has_words(typed) else ""
    code, problem = code_in_query(clean) if clean else (None, None)
    # Shorter than a USCC, the query may be the start of one (searched for as such); what is
    # wrong with it as a whole code is said only when no code starts so.
    partial = problem is not None and len(code or "") < _CODE_LENGTH
    return QueryMeaning(clean, bool(typed), code, problem, partial)


def facet_labels(name: str, value: str) -> str:
    if name == "type":
        return TYPE_LABELS.get(value, value)
    if name == "district":
        return DISTRICTS.get(value, value)
    if name == "status":
        return STATUS_LABELS.get(value, value)
    if name == "grade":
        return f"{value}类"
    return value


def search_data(
    conn: Connection | Callable[[], Connection],
    backend: Any,
    *,
    q: str,
    kinds: list[str],
    district: str | None,
    status: str | None,
    grade: str | None,
    sort: str,
    page: int,
) -> dict[str, Any]:
    meaning = read_query(q)
    q = meaning.q
    if sort not in SORTS:
        raise bad_request(f"排序方式应为 {' / '.join(SORTS)} 之一")
    if page > MAX_PAGE:
        raise bad_request(f"搜索结果最多浏览 {MAX_PAGE} 页，请缩小查询范围。")
    district = parse_district(district)
    if status and status not in STATUS_LABELS:
        raise bad_request(f"未知的公示状态：{status}")
    if grade and grade not in GRADES:
        raise bad_request(f"分类结果应为 A–E 之一，收到：{grade}")
    kinds = [k for k in kinds if k]
    for k in kinds:
        if k not in TYPE_LABELS:
            raise bad_request(f"未知的信息类别：{k}")
    query = {
        "q": q,
        "kind": kinds,
        "district": district,
        "status": status or None,
        "grade": grade or None,
        "sort": sort,
        "page": page,
    }
    data: dict[str, Any] = {
        "query": query,
        "code": None,
        "code_problem": None,
        "exact_match": None,
        "total": 0,
        "capped": False,  # total is a lower bound: the search stopped counting
        "facets_capped": False,  # facet counts cover the newest `total` matches only
        "truncated": False,  # more matches than the pages show (MAX_PAGE)
        "code_hint": bool(_CODE_PART.match(normalize_code(q))),  # no match: say how codes are found
        "pages": 0,
        "withheld": 0,  # hits of this page past their publicity, not shown (expiry not run yet)
        "beyond_last_page": False,  # page is past the last one: no hits, though total is not 0
        "last_page_url": None,
        "search_unavailable": False,  # the index could not answer: only the exact code's profile
        "relaxed": False,  # nothing matched q as typed: these are its relaxed form's matches
        "per_page": PER_PAGE,
        "hits": [],
        "facets": {},
    }
    code, problem, partial = meaning.code, meaning.problem, meaning.partial
    if meaning.wrong_code:  # say what is wrong with the code instead of "no results"
        data.update(code=code, code_problem=problem)
        return data
    if not meaning.searches(bool(kinds or district or query["status"] or query["grade"])):
        return data  # nothing asked yet: the page shows the form and what can be searched
    exact = code if code and not partial else None
    if exact:
        # a whole valid code that finds nothing has no record published (search.html says so),
        # not a code to type differently
        data.update(code=exact, code_hint=False)
    try:
        result = backend.search(
            SearchQuery(
                q=meaning.search_q,
                types=tuple(kinds),
                district=district,
                status=query["status"],
                grade=query["grade"],
                sort=sort,
                limit=PER_PAGE,
                offset=(page - 1) * PER_PAGE,
            )
        )
    except SearchUnavailable:
        # the profile needs the database only (taken now, after the backend gave up)
        data["exact_match"] = _profile(conn, exact)
        if not data["exact_match"]:
            raise
        data["search_unavailable"] = True
        return data
    db = conn() if callable(conn) else conn  # the request's, now the backend has answered
    data["exact_match"] = _profile(db, exact)
    hits = shown_hits(db, result.hits)
    # hits whose publicity ended since the index last heard (the night's expiry not run yet):
    # the total leaves out those of this page; the pages stay the index's, so that a page
    # they emptied still leads to the others
    withheld = len(result.hits) - len(hits)
    total = max(0, result.total - withheld)
    if partial and not total:
        data.update(code=code, code_problem=problem)
        return data
    data["total"] = total
    data["relaxed"] = result.relaxed
    data["capped"] = result.capped
    data["facets_capped"] = result.facets_capped
    data["truncated"] = total > MAX_PAGE * PER_PAGE
    data["pages"] = min(MAX_PAGE, math.ceil(result.total / PER_PAGE))
    data["withheld"] = withheld
    if total and page > data["pages"]:
        data["beyond_last_page"] = True
        data["last_page_url"] = search_url(query, page=data["pages"])
    data["hits"] = [_hit(h) for h in hits]
    data["facets"] = {
        name: [
            {
                "value": value,
                "label": facet_labels(name, value),
                "count": n,
                "selected": _selected(query, name, value),
                "url": _facet_url(query, name, value),
            }
            for value, n in sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        for name, values in result.facets.items()
        if values
    }
    return data


def _profile(
    conn: Connection | Callable[[], Connection], code: str | None
) -> dict[str, Any] | None:
    """The published profile of an exact code, read once the backend has answered: `conn` is
    a connection or what takes one (the request's, portal.deps.connection). A 注册号 linked
    to a USCC stands for the company: the USCC's entity (read.company_of), as its profile."""
    if code is None:
        return None
    company = read.company_of(conn() if callable(conn) else conn, code)
    return company[0] if company else None


def shown_hits(conn: Connection, hits: list[Any]) -> list[Any]:
    """The hits whose page answers, in their order: a record past its publicity (is_visible)
    stays in the index until the nightly `disclosure expire` writes its event, hours later
    when that run is late, while its page answers 410 and its entity's profile 404 from
    00:00 of the next day. So each hit is checked against the database, by the pages' rules
    (read.visible_record_ids, read.entities_with_profile): two queries for a page of hits."""
    today = clock.today()
    entities = read.entities_with_profile(conn, [h.id for h in hits if h.type == "entity"], today)
    records = read.visible_record_ids(conn, [h.id for h in hits if h.type != "entity"], today)
    return [h for h in hits if h.id in (entities if h.type == "entity" else records)]


def _hit(hit: Any) -> dict[str, Any]:
    return {
        "id": hit.id,
        "type": hit.type,
        "type_label": TYPE_LABELS.get(hit.type, hit.type),
        "title": hit.title,
        "url": hit.url,
        "highlight": hit.highlight,
        "district_code": hit.district,
        "district": DISTRICTS.get(hit.district or "", None),
        "date": hit.date,
        "grade": hit.grade,
        "status": hit.status,
    }


_FACET_PARAM = {"type": "kind", "district": "district", "status": "status", "grade": "grade"}


def _selected(query: dict[str, Any], facet: str, value: str) -> bool:
    param = _FACET_PARAM.get(facet, facet)
    current = query.get(param)
    return value in current if isinstance(current, list) else current == value


def search_url(query: dict[str, Any], **change: Any) -> str:
    params = {**query, **change}
    pairs = [
        (k, v)
        for k, vs in params.items()
        for v in (vs if isinstance(vs, list) else [vs])
        if v not in (None, "", [])
        and not (k == "page" and v == 1)
        and not (k == "sort" and v == "relevance")
    ]
    return "/search?" + urlencode(pairs) if pairs else "/search"


def _facet_url(query: dict[str, Any], facet: str, value: str) -> str:
    param = _FACET_PARAM.get(facet, facet)
    if param == "kind":
        kinds = [k for k in query["kind"] if k != value] if value in query["kind"] else [value]
        return search_url(query, kind=kinds, page=1)
    return search_url(query, **{param: None if query.get(param) == value else value, "page": 1})


Q = Annotated[str, QueryParameter(description="关键词：企业名称、统一社会信用代码、决定书文号等")]
Kind = Annotated[
    list[str] | None,
    QueryParameter(
        description="信息类别（可多选）：entity, blacklist, penalty, credit_mark, return_pledge"
    ),
]
PageNo = Annotated[int, QueryParameter(ge=1, description="页码，从 1 开始")]


@twin(
    routes.SEARCH,
    model=SearchPage,
    summary="搜索市场主体与公示记录",
    description="q 形似统一社会信用代码但校验不通过时，返回 code_problem 说明原因。",
    responses={503: UNAVAILABLE_SPEC},
)
def search_page(
    request: Request,
    search_backend: NamedDependency[Any],
    q: Q = "",
    kind: Kind = None,
    district: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    grade: FromQuery[str | None] = None,
    sort: FromQuery[str] = "relevance",
    page: PageNo = 1,
) -> Response:
    try:
        data = search_data(
            lambda: connection(request),  # only after the backend answered
            search_backend,
            q=q,
            kinds=kind or [],
            district=district,
            status=status,
            grade=grade,
            sort=sort,
            page=page,
        )
    except SearchUnavailable as exc:
        log.warning("search unavailable: %s", exc)
        return unavailable(request, q)
    query = data["query"]
    next_url = search_url(query, page=page + 1) if page < data["pages"] else None
    context = {
        "prev_url": search_url(query, page=page - 1) if page > 1 else None,
        "first_url": search_url(query, page=1),
        "page_urls": [(n, search_url(query, page=n)) for n in _page_window(page, data["pages"])],
        "sorts": SORTS,
        "facets": shown_facets(data["facets"]),
        # the form's options (HTML only), read once the backend has answered
        "grade_options": [] if is_api(request.url.path) else _grade_options(request),
    }
    feed_url = search_feed_url(query)
    feeds = [{"title": "此搜索的更新（Atom）", "url": feed_url}] if feed_url else []
    max_age = 0 if data["search_unavailable"] else 30
    return respond(
        request,
        Page("search.html", data, context=context, feeds=feeds, next_url=next_url, max_age=max_age),
    )


def search_feed_url(query: dict[str, Any]) -> str | None:
    """The feed of this search (portal.feeds.search_feed) with the filters it takes: q, one
    record kind, the district. None when nothing is asked (no words, no filter: a query of
    punctuation only has no feed worth offering), or when the page filters in a way the feed
    cannot (several record kinds, entities only, a grade, a status other than 公示中, which
    every record of a feed has): that feed would hold records the page does not."""
    kinds = [k for k in query["kind"] if k in KINDS]  # a feed holds records, never entities
    if len(kinds) > 1 or (query["kind"] and not kinds) or query["grade"]:
        return None
    if query["status"] not in (None, ACTIVE):
        return None
    params = {"q": query["q"], "kind": kinds[0] if kinds else "", "district": query["district"]}
    params = {k: v for k, v in params.items() if v}
    return "/search/feed.atom?" + urlencode(params) if params else None


def shown_facets(facets: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The facets worth a click: one value alone narrows nothing (公示状态 counts the records
    only, so its one value would drop the entities), unless it is the one selected (to undo)."""
    return {
        name: values
        for name, values in facets.items()
        if len(values) > 1 or any(v["selected"] for v in values)
    }


def _grade_options(request: Request) -> list[str]:
    return grade_options(request.app.state.published_cache, connection(request))


def unavailable(request: Request, q: str) -> Response:
    """503 with Retry-After: the search backend cannot answer now (not a server error)."""
    headers = {"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store"}
    if is_api(request.url.path):
        body = {"status_code": 503, "detail": UNAVAILABLE}
        return Response(body, status_code=503, headers=headers)
    context = {
        "status": 503,
        "title": TITLES[503],
        "detail": UNAVAILABLE,
        "json_url": None,
        "feeds": [],
        "code": q,  # the query, kept in the form to try again
    }
    return Template("error.html", context=context, status_code=503, headers=headers)


def _page_window(page: int, pages: int, width: int = 2) -> list[int]:
    return list(range(max(1, page - width), min(pages, page + width) + 1))


route_handlers = [*search_page]
