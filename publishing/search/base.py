"""The search interface: one small protocol, two backends (embedded, Meilisearch).

Search is a derived index over published data, rebuilt by `disclosure reindex` and kept in
sync from the change log (publishing/search/sync.py); the portal only queries it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Protocol, TypeVar

from publishing.search.text import ParsedQuery, parse_query, relaxed_query

T = TypeVar("T")


class SearchUnavailable(Exception):
    """The search backend cannot answer now (down, timing out, refusing; the embedded index
    broken until `disclosure reindex`): the portal says so (503) instead of failing as a
    server error."""


# Document types: "entity", or the record kind ("penalty", "blacklist", ...).
SORTS = ("relevance", "date")
FACETS = ("type", "district", "status", "grade")


@dataclass(frozen=True)
class SearchQuery:
    q: str = ""
    types: tuple[str, ...] = ()  # empty: everything
    district: str | None = None  # district code
    status: str | None = None
    grade: str | None = None
    sort: str = "relevance"
    limit: int = 20
    offset: int = 0
    facets: bool = True


@dataclass
class Hit:
    id: str  # entity id (USCC / reg_no) or record id
    type: str  # "entity" or a record kind
    title: str  # entity name (records: entity name + what the record is)
    url: str
    highlight: str  # HTML-safe snippet with <mark>…</mark> around matches
    district: str | None = None  # district code
    date: str | None = None
    grade: str | None = None
    status: str | None = None
    score: float = 0.0
    doc: dict[str, Any] = field(default_factory=dict)


# Matches ranked, counted and faceted per search, by every backend. A query with more matches
# is too broad for any order to find "the" company (a 2-character part of 300,000 names);
# the newest MATCH_CAP are shown, with "5000+" as the total. Halving it from 10,000 halved
# the time of such queries on a million entities (p95 29 → 17 ms in process).
MATCH_CAP = 5_000


@dataclass
class SearchResult:
    total: int
    hits: list[Hit]
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    took_ms: float = 0.0
    query: SearchQuery | None = None
    # True when the search stopped counting: total covers the first (newest) matches only,
    # and is a lower bound ("5000+").
    capped: bool = False
    # True when the facet counts, too, cover only those first matches (the embedded backend;
    # Meilisearch counts facets over every match).
    facets_capped: bool = False
    # True when the query as typed found nothing and these are the matches of its relaxed form
    # (text.relaxed_query: without a legal form such as 有限公司, its place name apart).
    relaxed: bool = False


class SearchBackend(Protocol):
    name: str

    def search(self, query: SearchQuery) -> SearchResult: ...

    def upsert(self, docs: Iterable[dict[str, Any]]) -> None: ...

    def delete(self, doc_ids: Iterable[str]) -> None: ...

    def rebuild(self, docs: Iterable[dict[str, Any]]) -> int:
        """Build a fresh index from all documents, then swap it in; returns the count."""
        ...

    def count(self) -> int: ...


def when_unfound(
    pq: ParsedQuery, result: SearchResult, search: Callable[[ParsedQuery], SearchResult]
) -> SearchResult:
    """A backend's answer to a query whose own search gave `result`: when that found nothing,
    the query without its administrative prefix (烟台市芝罘区… for 芝罘区…), then, when that
    finds nothing either, its relaxed form (marked `relaxed`). Only then: a query that finds
    something keeps its answers and their order, and pays for no second search."""
    if result.total == 0 and pq.unprefixed:
        result = search(parse_query(pq.unprefixed))
    relaxed = relaxed_query(pq) if result.total == 0 else None
    if relaxed is not None:
        found = search(relaxed)
        if found.total:
            found.relaxed = True
            return found
    return result


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size` (the last one shorter): the backends' write batches."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk
