"""The Litestar application factory: pages and their JSON twins, static files, OpenAPI at
/schema, error pages, security and caching headers."""

from __future__ import annotations

from typing import Any

from litestar import HttpMethod, Litestar, Router
from litestar.concurrency import sync_to_thread
from litestar.config.app import AppConfig
from litestar.datastructures import CacheControlHeader, ResponseHeader, State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.plugins import InitPluginProtocol
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from sqlalchemy import Engine

from portal.api import ApiPlugin
from portal.casework import route_handlers as casework_handlers
from portal.deps import connection_slots, provide_conn, provide_search
from portal.errors import handle_error
from portal.feeds import route_handlers as feed_handlers
from portal.observability import ObservabilityPlugin
from portal.pages import route_handlers
from portal.pages.common import reject_unusable_characters
from portal.security import add_security_headers
from portal.stats import PublishedCache
from portal.templating import STATIC_DIR, TEMPLATES_DIR, dir_version, make_environment

STATIC_CACHE = CacheControlHeader(public=True, max_age=31_536_000, immutable=True)


async def _warm(app: Litestar) -> None:
    await sync_to_thread(app.state.published_cache.warm)


def _allow_head(handler: Any) -> None:
    if isinstance(handler, HTTPRouteHandler) and HttpMethod.GET in handler.http_methods:
        handler.http_methods = {*handler.http_methods, HttpMethod.HEAD.value}


class HeadPlugin(InitPluginProtocol):
    """HEAD wherever GET is (as CORS advertises): the same handler and headers, and the server
    sends no body. Last of the plugins, so that it sees the routes the others add; a Router's
    handlers are its routes' (copies made when they were registered on it)."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        for item in app_config.route_handlers:
            if isinstance(item, Router):
                for route in item.routes:
                    for handler in route.route_handlers if isinstance(route, HTTPRoute) else ():
                        _allow_head(handler)
            else:
                _allow_head(item)
        return app_config


def _schema_router() -> Router:
    """/schema: the OpenAPI document describes the open data, so any site may read it too."""
    return Router(
        path="/schema",
        route_handlers=[],
        include_in_schema=False,
        response_headers=[ResponseHeader(name="Access-Control-Allow-Origin", value="*")],
    )


def create_app(engine: Engine | None = None) -> Litestar:
    if engine is None:
        from publishing.db import get_engine

        engine = get_engine()
    state = State(
        {
            "engine": engine,
            "connection_slots": connection_slots(engine),
            "published_cache": PublishedCache(engine),
            "template_version": dir_version(TEMPLATES_DIR),
        }
    )
    static = create_static_files_router(
        path="/static", directories=[STATIC_DIR], name="static", cache_control=STATIC_CACHE
    )
    return Litestar(
        route_handlers=[*route_handlers, *feed_handlers, *casework_handlers(), static],
        dependencies={
            "conn": Provide(provide_conn),
            "search_backend": Provide(provide_search),
        },
        state=state,
        on_startup=[_warm],
        template_config=TemplateConfig(
            engine=JinjaTemplateEngine.from_environment(make_environment())
        ),
        exception_handlers={HTTPException: handle_error, 500: handle_error},
        before_request=reject_unusable_characters,
        before_send=[add_security_headers],
        plugins=[ApiPlugin(), ObservabilityPlugin(), HeadPlugin()],
        openapi_config=OpenAPIConfig(
            title="烟台市市场监管信用信息公示 API",
            version="1",
            description="公示数据的 JSON 接口：每个页面在 /api/v1 下有同样数据的 JSON 版本。",
            openapi_router=_schema_router(),
            render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"]), YamlRenderPlugin()],
        ),
    )
