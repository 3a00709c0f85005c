"""/blacklist and /blacklist/{issue} — the food-safety "black list" issues and their entries."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy import Connection

from portal import routes
from portal.api.schemas import BlacklistIndex, BlacklistIssuePage
from portal.errors import gone, not_found
from portal.pages.common import twin
from portal.render import Page, respond
from publishing import read

FEED = [{"title": "食品安全黑榜（Atom）", "url": routes.feed_url("blacklist")}]


@twin(routes.BLACKLIST, model=BlacklistIndex, summary="食品安全黑榜各期列表")
def blacklist_index(request: Request, conn: NamedDependency[Connection]) -> Response:
    data = {"issues": read.blacklist_issues(conn)}
    return respond(request, Page("blacklist.html", data, feeds=FEED))


def issue_data(conn: Connection, issue_id: str) -> dict[str, Any]:
    issue = read.blacklist_issue(conn, issue_id)
    if issue is None:
        raise not_found("未找到该期黑榜。")
    entries = read.issue_entries(conn, issue_id)
    if not entries:
        raise gone(issue_id, "该期黑榜的全部条目已停止公示。")
    return {"issue": {**issue, "entry_count": len(entries)}, "entries": entries}


@twin(routes.BLACKLIST_ISSUE, model=BlacklistIssuePage, summary="一期食品安全黑榜及其条目")
def blacklist_issue(
    request: Request, conn: NamedDependency[Connection], issue_id: FromPath[str]
) -> Response:
    return respond(request, Page("blacklist_issue.html", issue_data(conn, issue_id), feeds=FEED))


route_handlers = [*blacklist_index, *blacklist_issue]
