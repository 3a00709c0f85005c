"""Route names and paths in one place (the public URLs are fixed: see DESIGN.md).

Every HTML page at PATH has a JSON twin at API_PREFIX + PATH (the home page's twin is the API
root), linked both ways with `Link: <…>; rel="alternate"` headers.
"""

from __future__ import annotations

from publishing.shape import entity_url

API_PREFIX = "/api/v1"

HOME = "home"
SEARCH = "search"
ENTITY = "entity"
RECORD = "record"
BLACKLIST = "blacklist"
BLACKLIST_ISSUE = "blacklist_issue"
PENALTIES = "penalties"
CREDIT_MARKS = "credit_marks"
RETURN_PLEDGES = "return_pledges"
HEALTHZ = "healthz"
ROBOTS = "robots"
FAVICON = "favicon"

PATHS: dict[str, str] = {
    HOME: "/",
    SEARCH: "/search",
    ENTITY: "/entities/{uscc:str}",
    RECORD: "/records/{record_id:str}",
    BLACKLIST: "/blacklist",
    BLACKLIST_ISSUE: "/blacklist/{issue_id:str}",
    PENALTIES: "/penalties",
    CREDIT_MARKS: "/credit-marks",
    RETURN_PLEDGES: "/return-pledges",
}

# Listing pages: route name -> record kind.
LISTING_KINDS = {PENALTIES: "penalty", CREDIT_MARKS: "credit_mark", RETURN_PLEDGES: "return_pledge"}
KIND_LISTING = {kind: name for name, kind in LISTING_KINDS.items()}


def api_name(name: str) -> str:
    return f"api_{name}"


def api_path(name: str) -> str:
    path = PATHS[name]
    return API_PREFIX if path == "/" else API_PREFIX + path


def json_twin(html_path: str) -> str:
    """The JSON twin of a concrete HTML path: /entities/X -> /api/v1/entities/X."""
    return API_PREFIX if html_path == "/" else API_PREFIX + html_path


def html_twin(api_path_: str) -> str:
    """The HTML page of a concrete API path: /api/v1/entities/X -> /entities/X."""
    rest = api_path_[len(API_PREFIX) :] if api_path_.startswith(API_PREFIX) else api_path_
    return rest or "/"


def is_api(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def feed_url(kind: str, district: str | None = None) -> str:
    return f"/feeds/{kind}/{district}.atom" if district else f"/feeds/{kind}.atom"


def entity_feed_url(entity_id: str) -> str:
    return f"{entity_url(entity_id)}/feed.atom"
