"""/ — what is published, the latest blacklist issues, counts by kind and district."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from litestar import Request, Response
from litestar.di import NamedDependency
from sqlalchemy import Connection, Engine

from portal import routes, stats
from portal.api.schemas import HomePage
from portal.pages.common import twin
from portal.render import Page, respond
from publishing import read
from publishing.contract import DISTRICTS, KIND_LABELS, KINDS
from publishing.request_queries import public_figures

KIND_URLS = {
    "blacklist": "/blacklist",
    "penalty": "/penalties",
    "credit_mark": "/credit-marks",
    "return_pledge": "/return-pledges",
}
LATEST_ISSUES = 6
FIGURES_SECONDS = 60.0


class TimedFigures:
    """The requests' public figures (publishing.request_queries.public_figures) per database, computed
    at most once every `seconds` in a process.

    Requests are not in the change log, so stats.PublishedCache's stamp cannot tell when they
    change; a time limit can. The home page's figures may lag a submission or a decision by up
    to a minute (the review queue reads them live), and the requests table, which grows with
    every objection and repair, is aggregated once a minute per process instead of on every
    home-page request."""

    def __init__(
        self, seconds: float = FIGURES_SECONDS, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.timer = timer
        self._lock = threading.Lock()
        # by engine (one per database): tests and tools that open several never share figures
        self._kept: weakref.WeakKeyDictionary[Engine, tuple[float, dict[str, Any]]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, conn: Connection) -> dict[str, Any]:
        now = self.timer()
        with self._lock:
            kept = self._kept.get(conn.engine)
        if kept is None or now - kept[0] >= self.seconds:
            kept = (now, public_figures(conn))  # concurrent misses each compute: it is cheap
            with self._lock:
                self._kept[conn.engine] = kept
        return dict(kept[1])


request_figures = TimedFigures()


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
        "requests": request_figures.get(conn),  # objections and credit repair: counts only
    }


@twin(routes.HOME, model=HomePage, summary="首页数据：各类公示数量、各区市分布、最新黑榜")
def home(request: Request, conn: NamedDependency[Connection]) -> Response:
    data = home_data(conn, request.app.state.published_cache)
    feeds = [{"title": f"{KIND_LABELS[k]}（Atom）", "url": routes.feed_url(k)} for k in KINDS]
    return respond(request, Page("home.html", data, feeds=feeds))


route_handlers = [*home]
