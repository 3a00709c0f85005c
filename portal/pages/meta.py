"""/healthz (liveness and readiness), /robots.txt, /favicon.ico."""

from __future__ import annotations

import logging

from litestar import Request, Response, get
from litestar.response import Redirect
from sqlalchemy.exc import SQLAlchemyError

from portal import routes
from portal.templating import static_url
from publishing import read

log = logging.getLogger("portal")
NO_STORE = {"Cache-Control": "no-store"}


@get(
    "/healthz",
    name=routes.HEALTHZ,
    sync_to_thread=True,
    summary="存活与就绪检查",
    description="数据库可连接且已建表时返回 200，否则 503。",
    tags=["运维"],
)
def healthz(request: Request) -> Response[dict[str, str]]:
    try:
        with request.app.state.engine.connect() as conn:
            read.database_ready(conn)
    except SQLAlchemyError as err:
        log.warning("readiness check failed: %s", err)
        return Response(
            {"status": "unavailable", "database": "unreachable"}, status_code=503, headers=NO_STORE
        )
    return Response({"status": "ok", "database": "ok"}, headers=NO_STORE)


ROBOTS = "User-agent: *\nAllow: /\nDisallow: /api/\n"


@get(
    "/robots.txt",
    name=routes.ROBOTS,
    sync_to_thread=False,
    include_in_schema=False,
    media_type="text/plain",
)
def robots() -> Response[str]:
    return Response(
        ROBOTS, media_type="text/plain", headers={"Cache-Control": "public, max-age=86400"}
    )


@get("/favicon.ico", name=routes.FAVICON, sync_to_thread=False, include_in_schema=False)
def favicon() -> Redirect:
    return Redirect(
        static_url("favicon.svg"),
        status_code=301,
        headers={"Cache-Control": "public, max-age=86400"},
    )


route_handlers = [healthz, robots, favicon]
