"""The open-data API: change log, credit check, open data (datasets, downloads, snapshots,
DCAT catalog), with CORS and rate limiting. Registered on the app by ApiPlugin:

    Litestar(..., plugins=[ApiPlugin()])
"""

from __future__ import annotations

from litestar.config.app import AppConfig
from litestar.openapi.spec import Components, SecurityScheme, Tag
from litestar.plugins import InitPluginProtocol

from portal.api import changes, creditcheck, opendata
from portal.api.cors import CorsMiddleware
from portal.api.schemas import API_TAG
from portal.ratelimit import KeyCache, RateLimitConfig, RateLimitMiddleware, make_limiter

route_handlers = [*changes.route_handlers, *creditcheck.route_handlers, *opendata.route_handlers]

TAGS = [
    Tag(name=API_TAG, description="变更日志（游标同步）、信用核查和开放数据集说明。"),
    Tag(name=opendata.DOWNLOAD_TAG, description="数据集下载、快照与每日增量文件、DCAT 数据目录。"),
]
API_KEY_SCHEME = SecurityScheme(
    type="apiKey",
    name="X-API-Key",
    security_scheme_in="header",
    description="可选。持有 API 密钥可获得更高的请求频率限额；无效或已停用的密钥返回 401。",
)
# the back office's API (the decision endpoint): a reviewer's token, not a public key
REVIEW_TOKEN_SCHEME = SecurityScheme(
    type="http",
    scheme="bearer",
    description="审核人员 API 令牌（disclosure users token NAME 生成）。",
)
RATE_NOTE = (
    "\n\n/api/ 下的接口按来源地址限制频率（订阅源和开放数据文件限额更宽）；每个响应带 "
    "RateLimit-Limit、RateLimit-Remaining、RateLimit-Reset，超出时返回 429 和 Retry-After。"
    "可选的 API 密钥（请求头 X-API-Key）提高限额。"
)


class ApiPlugin(InitPluginProtocol):
    """Adds the API's routes, CORS and rate-limit middleware, its state and OpenAPI details."""

    def __init__(self, config: RateLimitConfig | None = None) -> None:
        self.config = config or RateLimitConfig()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        from publishing.settings import get_settings

        limiter = make_limiter(get_settings().redis_url)
        app_config.route_handlers.extend(route_handlers)
        app_config.middleware.extend([CorsMiddleware(), RateLimitMiddleware()])
        app_config.state.update(
            {"rate_limits": self.config, "rate_limiter": limiter, "api_key_cache": KeyCache()}
        )
        app_config.on_shutdown.append(_close_limiter)
        oc = app_config.openapi_config
        if oc is not None:
            # a list of Components is merged by Litestar: add ours to it
            extra = Components(security_schemes={"ApiKey": API_KEY_SCHEME,
                                                 "ReviewToken": REVIEW_TOKEN_SCHEME})
            existing = oc.components
            oc.components = [*(existing if isinstance(existing, list) else [existing]), extra]
            oc.tags = [*(oc.tags or []), *TAGS]
            oc.security = [*(oc.security or []), {}, {"ApiKey": []}]
            oc.description = (oc.description or "") + RATE_NOTE
        return app_config


async def _close_limiter(app) -> None:
    limiter = app.state.get("rate_limiter")
    if limiter is not None:
        await limiter.aclose()


__all__ = ["ApiPlugin", "route_handlers"]
