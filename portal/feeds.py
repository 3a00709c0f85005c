"""Atom and RSS feeds at their fixed URLs (DESIGN.md); the items are publishing.feeds queries.

    /feeds/{kind}.atom|.rss                kind: blacklist, penalty, credit_mark, return_pledge, all
    /feeds/{kind}/{district}.atom|.rss     district: 6-digit code or its name
    /feeds/blacklist/issues.atom|.rss      the blacklist by issue (期次): one item per issue;
                                           a fixed path, which Litestar matches before the
                                           district pattern (no district is called "issues")
    /entities/{uscc}/feed.atom|.rss        one entity's changes (empty, never 404, for a
                                           well-formed code with nothing published); with
                                           those under its 注册号 alone, whose feed redirects
                                           here (302: only while the link is published)
    /search/feed.atom|.rss?q=&kind=&district=   any search, newest records first

A change-log feed is paged by RFC 5005 archives: the current document links `prev-archive` to
`?before=SEQ`, the oldest seq it shows; an archive page holds the PAGE_SIZE events below SEQ
(fh:archive, `current`, `prev-archive`, `next-archive`). Events only ever get higher seqs, so an
archive page never gains items, but loses one when its record is withdrawn later: it is
cached for minutes only (ARCHIVE_MAX_AGE).

Each response carries an ETag (a digest of everything the document is made from) and a
Last-Modified (the newest instant it can have changed at: Page.modified; left out while that
instant's second is not over, see `settled`) and answers If-None-Match / If-Modified-Since
with 304; a rendered document is kept in memory under that digest, and a change-log feed's
digest under the newest change seq, so a repeat costs one index lookup. The issue feed is
cached the same way: every change of an entry (and of its issue's row) writes a change event.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

from litestar import HttpMethod, Request, Response, route
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy import Connection

from portal import routes
from portal.deps import connection
from portal.errors import bad_request
from portal.pages.entities import NOT_PUBLISHED
from portal.pages.search import RETRY_AFTER_S, UNAVAILABLE, read_query
from portal.render import etag_matches
from publishing import clock, read
from publishing.codes import normalize_code, reg_no_is_valid, uscc_problem
from publishing.contract import DISTRICTS, KIND_LABELS, KINDS, district_code
from publishing.feeds import (
    ALL,
    EMPTY_UPDATED,
    FEED_KINDS,
    ISSUE_FEED,
    ISSUE_LIMIT,
    PAGE_SIZE,
    RENDER_VERSION,
    FeedMeta,
    Page,
    Scope,
    read_issue_page,
    read_page,
    render_atom,
    render_rss,
    search_changed,
    search_page,
    tag_authority,
)
from publishing.read import newest_change
from publishing.search.base import SearchQuery, SearchUnavailable
from publishing.settings import get_settings
from publishing.shape import entity_url
from publishing.site import SITE_NAME

ATOM, RSS = "atom", "rss"
MEDIA_TYPES = {
    ATOM: "application/atom+xml; charset=utf-8",
    RSS: "application/rss+xml; charset=utf-8",
}
RENDER = {ATOM: render_atom, RSS: render_rss}
CURRENT_MAX_AGE = 60
MAX_SEQ = 2**63 - 1  # the change log's seq is a signed 64-bit integer on both databases
# A finished archive page: minutes, not a day. Its content still changes (a record withdrawn
# later, e.g. on a credit repair, must leave every public output, downstream caches too), while
# a long life buys little: readers reach archives through the current document, whose
# prev-archive link moves to a new `?before=` with new events, so an archive URL is seldom
# asked for twice.
ARCHIVE_MAX_AGE = 5 * CURRENT_MAX_AGE
_KIND_PAGES = {ALL: routes.HOME, "blacklist": routes.BLACKLIST, **routes.KIND_LISTING}


class LRU:
    """A small thread-safe LRU map."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, key: Any) -> Any | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get(self, key: Any, build: Callable[[], Any]) -> Any:
        value = self.peek(key)
        if value is None:
            value = build()
            self.put(key, value)
        return value


# Rendered documents by digest: the digest covers every input, so an entry is never stale.
CACHE = LRU()
# Change-log feeds: (format, scope, before, newest change, day, base URL) → (digest, updated,
# max-age). Any change of any record writes a change event, so while the newest change and
# the day stay the same a feed is the same document: a repeat costs one index lookup instead
# of reading the page (50 items with their records) to recompute the digest.
ANSWERS = LRU(1024)


# -- URLs ---------------------------------------------------------------------------------


def _not_found(detail: str) -> NotFoundException:
    return NotFoundException(detail=detail)


def split_format(name: str) -> tuple[str, str]:
    """'penalty.atom' -> ('penalty', 'atom'); anything else is not a feed."""
    stem, dot, fmt = name.rpartition(".")
    if not dot or fmt not in RENDER:
        raise _not_found(f"没有这个订阅源：{name}（应以 .atom 或 .rss 结尾）。")
    return stem, fmt


def parse_kind(kind: str) -> str:
    if kind not in FEED_KINDS:
        raise _not_found(f"没有这类公示信息的订阅源：{kind}。可订阅：{'、'.join(FEED_KINDS)}。")
    return kind


def parse_district(value: str) -> str:
    code = district_code(value) if value else None
    if code is None:
        raise _not_found(f"未知的区市：{value}。")
    return code


def absolute(path: str) -> str:
    return get_settings().base_url.rstrip("/") + path


def feed_path(kind: str, fmt: str, district: str | None = None) -> str:
    return routes.feed_url(kind, district).removesuffix(".atom") + f".{fmt}"


def _tag(base_url: str, what: str) -> str:
    return f"tag:{tag_authority(base_url)},2026:{what}"


# -- documents ----------------------------------------------------------------------------


def kind_meta(scope: Scope, fmt: str, page: Page, before: int | None) -> FeedMeta:
    base_url = get_settings().base_url
    label = "全部公示信息" if scope.kind == ALL else KIND_LABELS[scope.kind]
    where = f" · {DISTRICTS[scope.district]}" if scope.district else ""
    path = feed_path(scope.kind, fmt, scope.district)
    html = routes.PATHS[_KIND_PAGES[scope.kind]]
    if scope.district and scope.kind in routes.KIND_LISTING:
        html += "?" + urlencode({"district": scope.district})
    what = f"feeds/{scope.kind}" + (f"/{scope.district}" if scope.district else "")
    return _meta(
        _tag(base_url, what),
        f"{label}{where} — {SITE_NAME}",
        f"烟台市市场监督管理局公示的{label}{where}：新增、更新与撤下（撤回、公示期满）。",
        path,
        html,
        fmt,
        page,
        before,
    )


def _meta(
    feed_id: str,
    title: str,
    subtitle: str,
    path: str,
    html: str,
    fmt: str,
    page: Page,
    before: int | None,
) -> FeedMeta:
    def at(b: int | None) -> str:
        return absolute(path + (f"?before={b}" if b else ""))

    return FeedMeta(
        id=feed_id,
        title=title,
        subtitle=subtitle,
        self_url=at(before),
        html_url=absolute(html),
        site_url=absolute("/"),
        current_url=at(None) if before else None,
        prev_archive=at(page.older) if page.older else None,
        next_archive=at(page.newer) if before and page.newer else None,
        archive=before is not None,
    )


def _http_date(value: datetime) -> str:
    return format_datetime(value.astimezone(UTC).replace(microsecond=0), usegmt=True)


def not_modified(request: Request, etag: str, updated: datetime | None) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present, else If-Modified-Since (ignored
    for a document without a modification date, §13.1.3)."""
    inm = request.headers.get("if-none-match")
    if inm is not None:
        return etag_matches(inm, etag)
    ims = request.headers.get("if-modified-since")
    if not ims or updated is None:
        return False
    try:
        since = parsedate_to_datetime(ims)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return updated.astimezone(UTC).replace(microsecond=0) <= since


def settled(updated: datetime | None, now: datetime) -> datetime | None:
    """updated, once the second it falls in is over; else None (no Last-Modified, and
    If-Modified-Since ignored). An HTTP date has whole seconds: a Last-Modified sent within
    that second could be followed by another change in it, which a client validating with
    If-Modified-Since alone would then never see (304). Apache's rule; the ETag still validates."""
    if updated is None or now < updated.replace(microsecond=0) + timedelta(seconds=1):
        return None
    return updated


def _digest(fmt: str, meta: FeedMeta, page: Page) -> str:
    return hashlib.blake2b(f"{fmt}|{page.key}|{meta!r}".encode(), digest_size=12).hexdigest()


def respond(request: Request, fmt: str, meta: FeedMeta, page: Page, max_age: int) -> Response:
    key = _digest(fmt, meta, page)
    return _answer(request, fmt, key, page.modified, max_age, lambda: RENDER[fmt](meta, page))


def _answer(
    request: Request,
    fmt: str,
    key: str,
    updated: datetime | None,
    max_age: int,
    build: Callable[[], bytes],
) -> Response:
    """The document (or 304); `updated` None: no Last-Modified, so only an ETag validates."""
    headers = {"ETag": f'W/"{key}"', "Cache-Control": f"public, max-age={max_age}"}
    updated = settled(updated, clock.now())
    if updated is not None:
        headers["Last-Modified"] = _http_date(updated)
    if not_modified(request, headers["ETag"], updated):
        return Response(b"", status_code=304, headers=headers)
    body = CACHE.get(key, build)
    return Response(body, media_type=MEDIA_TYPES[fmt], headers=headers)


def check_before(before: int | None) -> None:
    """An archive page's `before`: 404 below 1 (no such page), 400 beyond any seq."""
    if before is not None and before < 1:
        raise _not_found("没有这一页归档。")
    if before is not None and before > MAX_SEQ:
        raise bad_request(f"翻页参数 before 应为不大于 {MAX_SEQ} 的正整数，收到：{before}")


def _change_feed(
    request: Request,
    conn: Connection,
    scope: Scope,
    fmt: str,
    before: int | None,
    meta: Callable[[Page], FeedMeta],
) -> Response:
    check_before(before)
    base_url = get_settings().base_url
    state = (fmt, scope, before, newest_change(conn), clock.today(), base_url)

    def max_age(page: Page) -> int:
        archive_done = before is not None and page.newer is not None
        return ARCHIVE_MAX_AGE if archive_done else CURRENT_MAX_AGE

    return _cached_feed(
        request, fmt, state, lambda: read_page(conn, scope, base_url, before=before), meta, max_age
    )


def _cached_feed(
    request: Request,
    fmt: str,
    state: tuple,
    read_: Callable[[], Page],
    meta: Callable[[Page], FeedMeta],
    max_age: Callable[[Page], int],
) -> Response:
    """A document that stays the same while `state` does (its newest change, the day, the base
    URL): a repeat answers from ANSWERS and CACHE without reading the page."""
    known = ANSWERS.peek(state)
    if known is not None:
        key, updated, age = known
        body = CACHE.peek(key)
        if body is not None:
            return _answer(request, fmt, key, updated, age, lambda: body)
    page = read_()
    age = max_age(page)
    page_meta = meta(page)
    key = _digest(fmt, page_meta, page)
    ANSWERS.put(state, (key, page.modified, age))
    return _answer(request, fmt, key, page.modified, age, lambda: RENDER[fmt](page_meta, page))


# -- handlers -----------------------------------------------------------------------------

# GET and HEAD (the server sends HEAD's headers only); feeds are not part of the JSON API schema.
_OPTS: dict[str, Any] = {
    "http_method": [HttpMethod.GET, HttpMethod.HEAD],
    "sync_to_thread": True,
    "include_in_schema": False,
}


@route("/feeds/{name:str}", name="feed", **_OPTS)
def kind_feed(
    request: Request,
    conn: NamedDependency[Connection],
    name: FromPath[str],
    before: FromQuery[int | None] = None,
) -> Response:
    stem, fmt = split_format(name)
    scope = Scope(kind=parse_kind(stem))
    return _change_feed(
        request, conn, scope, fmt, before, lambda page: kind_meta(scope, fmt, page, before)
    )


@route("/feeds/{kind:str}/{name:str}", name="district_feed", **_OPTS)
def district_feed(
    request: Request,
    conn: NamedDependency[Connection],
    kind: FromPath[str],
    name: FromPath[str],
    before: FromQuery[int | None] = None,
) -> Response:
    stem, fmt = split_format(name)
    scope = Scope(kind=parse_kind(kind), district=parse_district(stem))
    return _change_feed(
        request, conn, scope, fmt, before, lambda page: kind_meta(scope, fmt, page, before)
    )


ISSUE_FEED_PATH = "/feeds/blacklist/issues"  # + .atom / .rss


def issue_feed(request: Request, conn: NamedDependency[Connection]) -> Response:
    """The blacklist by issue: one item per issue with entries in publication, newest first
    (publishing.feeds.read_issue_page). No archives: /blacklist lists every issue."""
    fmt = RSS if request.url.path.endswith(".rss") else ATOM
    base_url = get_settings().base_url
    state = (fmt, ISSUE_FEED, newest_change(conn), clock.today(), base_url)

    def meta(page: Page) -> FeedMeta:
        return FeedMeta(
            id=_tag(base_url, f"feeds/{ISSUE_FEED}"),
            title=f"食品安全“黑榜”（按期） — {SITE_NAME}",
            subtitle=(
                f"烟台市各级市场监督管理部门发布的食品安全“黑榜”，每期一条（最近 {ISSUE_LIMIT} 期）："
                "本期公示中的上榜主体、违法事实和处理结果；条目停止公示后随之更新。"
            ),
            self_url=absolute(f"{ISSUE_FEED_PATH}.{fmt}"),
            html_url=absolute(routes.PATHS[routes.BLACKLIST]),
            site_url=absolute("/"),
        )

    return _cached_feed(
        request,
        fmt,
        state,
        lambda: read_issue_page(conn, base_url),
        meta,
        lambda page: CURRENT_MAX_AGE,
    )


def entity_feed(
    request: Request,
    conn: NamedDependency[Connection],
    uscc: FromPath[str],
    before: FromQuery[int | None] = None,
) -> Response:
    fmt = RSS if request.url.path.endswith(".rss") else ATOM
    code = normalize_code(uscc)
    company = read.company_of(conn, code)
    if company is None:
        return _nothing_published_feed(request, code, fmt, before)
    entity, ids = company
    if entity["id"] != code:
        # The 注册号 of a company published with its USCC too: its feed is the USCC's, as its
        # profile is (portal.pages.entities); an archive position is of this feed only.
        return Redirect(
            routes.entity_feed_url(entity["id"]).removesuffix(".atom") + f".{fmt}",
            status_code=302,  # not 301: a reader keeps a 301 for good, the link can end
            headers={"Cache-Control": f"public, max-age={CURRENT_MAX_AGE}"},
        )
    name = entity["name"]
    scope = Scope(entity_id=code, linked=tuple(ids[1:]))

    def meta(page: Page) -> FeedMeta:
        return _entity_meta(
            code,
            fmt,
            page,
            before,
            f"{name} 信用信息变更 — {SITE_NAME}",
            f"{name}（统一社会信用代码/注册号 {code}）的公示信息：新增、更新与撤下。",
        )

    return _change_feed(request, conn, scope, fmt, before, meta)


def _entity_meta(
    code: str, fmt: str, page: Page, before: int | None, title: str, subtitle: str
) -> FeedMeta:
    """One feed id and one set of URLs per entity, whatever its feed holds now."""
    return _meta(
        _tag(get_settings().base_url, f"entities/{code}/feed"),
        title,
        subtitle,
        routes.entity_feed_url(code).removesuffix(".atom") + f".{fmt}",
        entity_url(code),
        fmt,
        page,
        before,
    )


def well_formed(code: str) -> bool:
    """A normalised code that can be an entity's: a valid USCC or a 15-digit 注册号."""
    return reg_no_is_valid(code) or uscc_problem(code) is None


# Bump when the empty document changes shape (its ETag is made of this, the code and the URLs).
_NOTHING_PUBLISHED_VERSION = f"nothing-published-{RENDER_VERSION}"


def _nothing_published_feed(request: Request, code: str, fmt: str, before: int | None) -> Response:
    """The feed of a well-formed code with no visible record: valid, with no items and no name.

    A subscriber's reader keeps a working feed once the entity's last record is withdrawn or
    expires (a 404 reads as a broken subscription). The document is the same whether the code
    was ever on record or not, with no tombstones: the profile is gone "as if never published"
    (portal.pages.entities), and a feed that differed for a once-listed entity (a repaired one)
    would still tell that it was. No Last-Modified either: the instant its last record left
    would tell the same; the ETag validates. A malformed code has no feed (404, as before)."""
    if not well_formed(code):
        raise _not_found(NOT_PUBLISHED.format(code=code))
    check_before(before)
    if before is not None:  # an empty feed has no archives
        raise _not_found("没有这一页归档。")
    page = Page(items=[], newest_seq=0, updated=EMPTY_UPDATED, key=_NOTHING_PUBLISHED_VERSION)
    meta = _entity_meta(
        code,
        fmt,
        page,
        None,
        f"统一社会信用代码/注册号 {code} 信用信息变更 — {SITE_NAME}",
        f"统一社会信用代码/注册号为 {code} 的市场主体的公示信息：新增、更新与撤下。"
        "目前没有该主体公示中的信息。",
    )
    key = _digest(fmt, meta, page)
    return _answer(request, fmt, key, None, CURRENT_MAX_AGE, lambda: RENDER[fmt](meta, page))


def _search_changed(request: Request, backend: Any, kind: str) -> datetime | None:
    """publishing.feeds.search_changed, read before the search. The embedded index searches
    on the request's connection, open already; for Meilisearch a connection checked out for
    this read only, so that none is held while it searches (RequestConnection.get's reasoning:
    briefly, without a slot)."""
    if getattr(backend, "bound", None) is not None:
        return search_changed(connection(request), backend, kind)
    with request.app.state.engine.connect() as conn:
        return search_changed(conn, backend, kind)


def _found_records(backend: Any, q: str, types: tuple[str, ...], district: str | None) -> list[str]:
    """The ids of the newest records that the search page finds for q (read_query: the code in
    统一社会信用代码：…, no words in punctuation alone); none for a typed q the page searches
    nothing for (a wrong code, punctuation only without a filter), not every record of the
    site. SearchUnavailable: the backend cannot answer."""
    meaning = read_query(q)
    if meaning.typed and not meaning.searches(types != KINDS or district is not None):
        return []
    result = backend.search(
        SearchQuery(
            q=meaning.search_q,
            types=types,
            district=district,
            sort="date",
            limit=PAGE_SIZE,
            facets=False,
        )
    )
    return [h.id for h in result.hits if h.type in KINDS]


def search_feed(
    request: Request,
    search_backend: NamedDependency[Any],
    q: FromQuery[str] = "",
    kind: FromQuery[str] = "",
    district: FromQuery[str] = "",
) -> Response:
    """A search as a feed: the newest matching published records (no archives). No `conn`:
    the records are read after the backend answered (connection(request)), so a slow
    Meilisearch holds no pooled connection (portal.pages.search). q means what it means to
    the search page (_found_records); no q at all: every record (of the kind and district)."""
    fmt = RSS if request.url.path.endswith(".rss") else ATOM
    q = q.strip()
    if kind and kind != ALL:
        parse_kind(kind)
    types = (kind,) if kind and kind != ALL else KINDS
    code = parse_district(district) if district else None
    changed = _search_changed(request, search_backend, kind if kind in KINDS else ALL)
    try:
        ids = _found_records(search_backend, q, types, code)
    except SearchUnavailable:  # a feed reader retries later; not a server error
        headers = {"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store"}
        return Response(
            UNAVAILABLE, status_code=503, media_type="text/plain; charset=utf-8", headers=headers
        )
    page = search_page(connection(request), ids, get_settings().base_url, changed=changed)
    params = {k: v for k, v in (("q", q), ("kind", kind), ("district", code)) if v}
    query = urlencode(params)
    what = " · ".join(
        p
        for p in (f"“{q}”" if q else "", KIND_LABELS.get(kind, ""), DISTRICTS.get(code or "", ""))
        if p
    )
    meta = FeedMeta(
        id=_tag(get_settings().base_url, "search" + (f"?{query}" if query else "")),
        title=f"搜索{what or '全部'} — {SITE_NAME}",
        subtitle=f"烟台市市场监管信用信息公示中符合搜索条件{what}的最新公示记录。",
        self_url=absolute(request.url.path + (f"?{query}" if query else "")),
        html_url=absolute(routes.PATHS[routes.SEARCH] + (f"?{query}" if query else "")),
        site_url=absolute("/"),
    )
    return respond(request, fmt, meta, page, CURRENT_MAX_AGE)


# -- /feeds: what can be subscribed to, in words (the feeds themselves are XML) ---------------

HELP_MAX_AGE = 3600
_HELP_KINDS = (*KINDS, ALL)


def help_context() -> dict[str, Any]:
    """The help page's feeds: each kind's (and all kinds') Atom and RSS URLs, absolute, as a
    feed reader takes them; the patterns of the district, entity and search feeds."""
    kinds = [
        {
            "kind": kind,
            "label": "全部公示信息" if kind == ALL else KIND_LABELS[kind],
            "atom": absolute(feed_path(kind, ATOM)),
            "rss": absolute(feed_path(kind, RSS)),
        }
        for kind in _HELP_KINDS
    ]
    district, name = next(iter(DISTRICTS.items()))
    issues = {fmt: absolute(f"{ISSUE_FEED_PATH}.{fmt}") for fmt in RENDER}
    return {
        "kinds": kinds,
        "issues": issues,
        "issue_limit": ISSUE_LIMIT,
        "district_example": absolute(feed_path("penalty", ATOM, district)),
        "district_name": name,
        "district_code": district,
        "entity_pattern": absolute(routes.entity_feed_url("统一社会信用代码")),
        "search_example": absolute(
            routes.PATHS[routes.SEARCH] + "/feed.atom?" + urlencode({"q": "食品"})
        ),
        "site": absolute("/"),
        "json_url": None,  # no JSON twin: the feeds are the data
        "feeds": [
            *({"title": f"{k['label']}（Atom）", "url": feed_path(k["kind"], ATOM)} for k in kinds),
            {"title": "食品安全黑榜·按期（Atom）", "url": f"{ISSUE_FEED_PATH}.{ATOM}"},
        ],
    }


@route(
    "/feeds",
    name="feeds_help",
    http_method=[HttpMethod.GET],
    sync_to_thread=False,
    include_in_schema=False,
)
def feeds_help() -> Template:
    return Template(
        "feeds.html",
        context=help_context(),
        headers={"Cache-Control": f"public, max-age={HELP_MAX_AGE}"},
    )


def _each_format(path: str, name: str, fn: Callable) -> list:
    """One handler per format (a handler with several paths breaks sync_to_thread here)."""
    return [route(f"{path}.{fmt}", name=f"{name}_{fmt}", **_OPTS)(fn) for fmt in RENDER]


route_handlers: list = [
    feeds_help,
    kind_feed,
    district_feed,
    *_each_format(ISSUE_FEED_PATH, "blacklist_issue_feed", issue_feed),
    *_each_format("/entities/{uscc:str}/feed", "entity_feed", entity_feed),
    *_each_format("/search/feed", "search_feed", search_feed),
]
