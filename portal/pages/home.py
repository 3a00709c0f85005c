"""/ — what is published, the latest blacklist issues, counts by kind and district."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.di import NamedDependency
from sqlalchemy import Connection

from portal import routes, stats
from portal.pages.common import twin
from portal.render import Page, respond
from publishing import read
from publishing.contract import DISTRICTS, KIND_LABELS, KINDS
from publishing.requests import public_figures

KIND_URLS = {
    "blacklist": "/blacklist",
    "penalty": "/penalties",
    "credit_mark": "/credit-marks",
    "return_pledge": "/return-pledges",
}
LATEST_ISSUES = 6


def home_data(conn: Connection, cache: stats.PublishedCache) -> dict[str, Any]:
    counts = stats.counts(cache, conn)
    return {
        "kinds": [
            {
                "kind": k,
                "label": KIND_LABELS[k],
                "count": counts["by_kind"].get(k, 0),
                "url": KIND_URLS[k],
            }
            for k in KINDS
        ],
        "districts": [
            {
                "code": code,
                "name": name,
                "counts": counts["by_district"][code],
                "total": sum(counts["by_district"][code].values()),
            }
            for code, name in DISTRICTS.items()
        ],
        "latest_issues": read.blacklist_issues(conn, limit=LATEST_ISSUES),
        "requests": public_figures(conn),  # objections and credit repair: counts only
    }


@twin(routes.HOME, summary="首页数据：各类公示数量、各区市分布、最新黑榜")
def home(request: Request, conn: NamedDependency[Connection]) -> Response:
    data = home_data(conn, request.app.state.published_cache)
    feeds = [{"title": f"{KIND_LABELS[k]}（Atom）", "url": routes.feed_url(k)} for k in KINDS]
    return respond(request, Page("home.html", data, feeds=feeds))


route_handlers = [*home]
