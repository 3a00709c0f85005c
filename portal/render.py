"""One page, two representations: a page's data is built once as a dict and rendered as HTML
(a Jinja template) or as JSON at its /api/v1 twin, linked both ways (Datasette's pattern).

Responses carry a weak ETag derived from the data (and, for HTML, the templates' version), so
a revalidation costs a query but no rendering; If-None-Match gets a 304.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from litestar import Request, Response
from litestar.response import Template
from litestar.serialization import encode_json

from portal.routes import html_twin, is_api, json_twin

PAGE_MAX_AGE = 60


@dataclass
class Page:
    template: str
    data: dict[str, Any]  # the page's data: exactly what the JSON twin returns
    context: dict[str, Any] = field(default_factory=dict)  # HTML-only extras (form options …)
    feeds: list[dict[str, str]] = field(default_factory=list)  # Atom autodiscovery
    next_url: str | None = None  # keyset / offset pagination: the next page's HTML path+query
    max_age: int = PAGE_MAX_AGE
    status_code: int = 200
    # The HTML page of a JSON-only resource (a section of that page), instead of its path twin.
    html_page: str | None = None


def _with_query(path: str, query: str) -> str:
    return f"{path}?{query}" if query else path


def _link(url: str, rel: str, media_type: str | None = None) -> str:
    return f'<{url}>; rel="{rel}"' + (f'; type="{media_type}"' if media_type else "")


def respond(request: Request, page: Page) -> Response:
    """The HTML page, or its JSON twin when the request came to an /api/v1 path."""
    body = encode_json(page.data)
    digest = hashlib.blake2b(body, digest_size=12).hexdigest()
    query = request.url.query or ""
    path = request.url.path
    api = is_api(path)
    links: list[str] = []
    if api:
        etag = f'W/"j{digest}"'
        html = page.html_page or _with_query(html_twin(path), query)
        links.append(_link(html, "alternate", "text/html"))
        if page.next_url:
            links.append(_link(json_twin_url(page.next_url), "next", "application/json"))
    else:
        # the HTML also shows the page's extras (form options, feeds): they count too
        extras = encode_json([page.context, page.feeds, page.next_url])
        digest = hashlib.blake2b(body + extras, digest_size=12).hexdigest()
        etag = f'W/"h{request.app.state.template_version}{digest}"'
        links.append(_link(_with_query(json_twin(path), query), "alternate", "application/json"))
        if page.next_url:
            links.append(_link(page.next_url, "next", "text/html"))
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={page.max_age}",
        "Link": ", ".join(links),
    }
    if page.status_code == 200 and etag_matches(request.headers.get("if-none-match"), etag):
        return Response(b"", status_code=304, headers=headers)
    if api:
        return Response(
            body, status_code=page.status_code, headers=headers, media_type="application/json"
        )
    context = {
        "page": page.data,
        "feeds": page.feeds,
        "next_url": page.next_url,
        "json_url": _with_query(json_twin(path), query),
        **page.context,
    }
    return Template(page.template, context=context, status_code=page.status_code, headers=headers)


def json_twin_url(html_url: str) -> str:
    path, _, query = html_url.partition("?")
    return _with_query(json_twin(path), query)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: If-None-Match with the weak comparison (or *)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return _opaque(etag) in {_opaque(t) for t in if_none_match.split(",")}


def _opaque(tag: str) -> str:
    """The entity tag without its weakness flag: If-None-Match uses the weak comparison."""
    return tag.strip().removeprefix("W/")
