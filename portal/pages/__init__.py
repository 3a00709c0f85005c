"""The portal's pages. Each module builds a page's data once (from the public shape) and
registers it at its fixed URL and at the /api/v1 JSON twin."""

from __future__ import annotations

from portal.pages import blacklist, entities, home, listings, meta, records, search

route_handlers = [
    *home.route_handlers,
    *search.route_handlers,
    *entities.route_handlers,
    *records.route_handlers,
    *blacklist.route_handlers,
    *listings.route_handlers,
    *meta.route_handlers,
]
