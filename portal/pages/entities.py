"""/entities/{uscc} — an entity's credit profile: identity, badges, current credit marks and
every visible record grouped by kind on a timeline (paged on past read.PROFILE_LIMIT records)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath
from litestar.response import Redirect
from sqlalchemy import Connection, func, select

from portal import routes
from portal.api.schemas import EntityProfile
from portal.errors import bad_request, not_found
from portal.pages.common import Next, decode_token, encode_token, parse_date, twin
from portal.render import PAGE_MAX_AGE, Page, respond
from publishing import clock, read
from publishing.codes import normalize_code, reg_no_is_valid, uscc_problem
from publishing.commit import RECORDS
from publishing.rules import load_rules
from publishing.shape import entity_url


def check_code(raw: str) -> str:
    """The normalised USCC (or 注册号); a page saying what is wrong with anything else."""
    code = normalize_code(raw)
    if reg_no_is_valid(code):
        return code
    problem = uscc_problem(code)
    if problem:
        raise bad_request(
            f"{problem}：{raw}", code=raw, code_problem=problem, title="统一社会信用代码有误"
        )
    return code


def badges(
    conn: Connection, entity_ids: list[str], groups: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    list_schemes = set(load_rules().list_schemes())
    marks = groups.get("credit_mark", [])
    lists = sorted({m["scheme"] for m in marks if m.get("scheme") in list_schemes})
    return {
        "on_blacklist": bool(groups.get("blacklist")),
        "serious_dishonest": read.SERIOUS_LIST in lists,
        "lists": lists,
        "objection_pending": any(read.objection_pending(conn, entity_id=i) for i in entity_ids),
        "return_pledge": bool(groups.get("return_pledge")),
    }


# The kinds the badges and the credit-mark table are made of: an entity has few records of
# them, while its penalties may run to more than a page.
_SUMMARY_KINDS = ("blacklist", "credit_mark", "return_pledge")


CANONICAL = ResponseSpec(
    data_container=None,
    description="代码不是规范写法（全角、小写、空格、连字符）：Location 为规范代码的网址",
)
LINKED = ResponseSpec(
    data_container=None,
    description="已同时以统一社会信用代码公示的主体的注册号：Location 为该统一社会信用代码的档案"
    "（临时重定向：该关联只在统一社会信用代码的记录公示期间成立）",
)
NOT_PUBLISHED = "未查询到代码为 {code} 的市场主体的公示信息。本系统只收录有公示记录的主体。"


def profile_data(
    conn: Connection, code: str, token: str | None = None, api: bool = False
) -> dict[str, Any]:
    """The profile's data; `api`: of its JSON twin, whose links (next_url …) are the twin's."""
    entity = read.entity(conn, code)
    if entity is None:
        raise not_found(NOT_PUBLISHED.format(code=code))
    # The company's records published under its 注册号 alone, before it had a USCC, too.
    linked = read.profile_entities(conn, entity)
    ids = [code, *(e["id"] for e in linked)]
    after = None
    if token:
        last_date, last_id = decode_token(token, 2)
        after = (parse_date(last_date, "翻页参数"), last_id)
    records = read.entity_records(conn, ids, after=after, limit=read.PROFILE_LIMIT + 1)
    if not records and after is None:
        # Every record withdrawn (repaired, objected to), expired or superseded: a profile page
        # would still say the entity was once on record, and the portal only shows those that are.
        raise not_found(NOT_PUBLISHED.format(code=code))
    more = len(records) > read.PROFILE_LIMIT
    records = records[: read.PROFILE_LIMIT]
    groups = read.group_by_kind(records)
    whole = after is None and not more  # the usual profile: every record on one page
    summary = groups if whole else read.group_by_kind(
        read.entity_records(conn, ids, kinds=_SUMMARY_KINDS))
    next_token = encode_token(records[-1]["date"], records[-1]["id"]) if more else None
    path = routes.json_twin(entity["url"]) if api else entity["url"]
    return {
        "entity": entity,
        "linked_entities": linked,
        "badges": badges(conn, ids, summary),
        "credit_marks": summary.get("credit_mark", []),
        "records": groups,
        "record_count": len(records) if whole else read.entity_record_count(conn, ids),
        "page_count": len(records),
        "feed_url": routes.entity_feed_url(code),
        "next": next_token,
        "next_url": f"{path}?next={next_token}" if next_token else None,
        "first_url": path if after else None,
    }


def profile_ids(data: dict[str, Any]) -> list[str]:
    """The entity ids whose records the profile shows: its own, and its linked entities'."""
    return [data["entity"]["id"], *(e["id"] for e in data["linked_entities"])]


# The kinds the profile's header counts (行政处罚公示中 N 条 …): an entity with penalties in
# publicity is not "无列入名单信息".
_COUNTED_KINDS = ("blacklist", "penalty")


def kind_counts(conn: Connection, data: dict[str, Any]) -> dict[str, int]:
    """How many of the entity's visible records of each counted kind there are: read off the
    page when it holds them all, else counted (a profile paged past its first page)."""
    if data["next_url"] is None and data["first_url"] is None:
        return {k: len(data["records"].get(k, [])) for k in _COUNTED_KINDS}
    rows = conn.execute(
        select(RECORDS.c.kind, func.count())
        .where(
            RECORDS.c.entity_id.in_(profile_ids(data)),
            RECORDS.c.kind.in_(_COUNTED_KINDS),
            read.in_publication(clock.today()),
        )
        .group_by(RECORDS.c.kind)
    ).all()
    found = {kind: n for kind, n in rows}
    return {k: found.get(k, 0) for k in _COUNTED_KINDS}


@twin(
    routes.ENTITY,
    model=EntityProfile,
    summary="市场主体信用档案",
    description="按统一社会信用代码（或注册号）查询。代码格式或校验位错误返回 400 并说明原因。",
    responses={301: CANONICAL, 302: LINKED},
)
def entity_page(
    request: Request, conn: NamedDependency[Connection], uscc: FromPath[str], token: Next = None
) -> Response:
    code = check_code(uscc)
    # The 注册号 of a company published with its USCC too: its profile is the USCC's, which
    # holds the records of both (while that link is published: not for a day, as the spelling).
    owner = read.uscc_entity_of(conn, code) if reg_no_is_valid(code) else None
    if code != uscc or owner:  # 全角、小写、空格、连字符: one canonical URL
        base = routes.API_PREFIX if routes.is_api(request.url.path) else ""
        keep = f"?next={token}" if token and not owner else ""  # a position in this list only
        return Redirect(
            base + entity_url(owner or code) + keep,
            # a spelling is for good (301); the link to the USCC only while it is published
            status_code=302 if owner else 301,
            headers={"Cache-Control": f"public, max-age={PAGE_MAX_AGE if owner else 86400}"},
        )
    api = routes.is_api(request.url.path)
    data = profile_data(conn, code, token, api=api)
    feeds = [{"title": f"{data['entity']['name']} 信用信息变更（Atom）", "url": data["feed_url"]}]
    context = {} if api else {"counts": kind_counts(conn, data)}
    return respond(request, Page("entity.html", data, context=context, feeds=feeds))


route_handlers = [*entity_page]
