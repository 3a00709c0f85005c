"""Search: documents from the public shape, an embedded index (SQLite FTS5 / PostgreSQL
tsvector) or Meilisearch, kept in sync from the change log (sync.py)."""

from __future__ import annotations

from sqlalchemy import Engine

from publishing.search.base import Hit, SearchBackend, SearchQuery, SearchResult

__all__ = ["Hit", "SearchBackend", "SearchQuery", "SearchResult", "get_backend"]


def get_backend(engine: Engine | None = None) -> SearchBackend:
    """The configured backend: Meilisearch when DISCLOSURE_MEILI_URL is set, else embedded."""
    from publishing.settings import get_settings

    settings = get_settings()
    if settings.meili_url:
        # publishing/search/meili.py: the same documents in Meilisearch (name "meilisearch")
        from publishing.search.meili import MeiliSearch

        return MeiliSearch(settings.meili_url, settings.meili_key, settings.meili_index)
    from publishing.db import get_engine
    from publishing.search.embedded import EmbeddedSearch

    return EmbeddedSearch(engine or get_engine())
