"""Objections and credit repair in the portal: the request form and status pages, the intake
and decision API, and the /review back office (registered by portal.app)."""

from __future__ import annotations

from typing import Any


def route_handlers() -> list[Any]:
    from portal import requests_api, requests_pages, review

    handlers = [*requests_pages.route_handlers, *requests_api.route_handlers]
    return [*requests_pages.upload_routes(handlers), review.router()]
