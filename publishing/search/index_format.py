"""The search index's format version, and the lock that lets one process at a time rebuild it.

FORMAT_VERSION names what this code writes into a search index: the documents
(publishing.search.documents), their tokens and tags (text.py, embedded.index_row,
meili_encoding.index_doc) and the index settings (meili_encoding.settings_payload, the embedded
tables). Bump it with any change to those that a search relies on. A rebuild stamps the index with it (embedded:
a row of sync_cursors, "search-format:embedded", written in the transaction that swaps the new
tables in; Meilisearch: a document in the index `<index>_meta`, written after the swap), and
the search sync (publishing.search.sync) rebuilds an index stamped with an older version, or
none, before it applies anything to it: a deploy that changes the format needs no manual
`disclosure reindex`, and searches are answered by the old index until the new one is live.

History (what each version added):
  1  versions kept at all; the Meilisearch `code_prefix` filter, the embedded index's
     decision-number tags
  2  names tokenised across their punctuation and without an inner bracketed part
     (text.name_texts: 通百鑫（烟台）调味品 as 通百鑫烟台调味品 and 通百鑫调味品), both backends
  3  the pinyin and initials of a name without its inner bracketed part too (text.pinyin_items:
     tongbaixintiaoweipin, tbxtwp find 通百鑫（烟台）调味品), both backends
  4  an entity's 曾用名 as exact-name keys (embedded: a tag, embedded.former_tag; Meilisearch:
     the filterable `former_key`), so that a full 曾用名 ranks as an exact name
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import Engine

from publishing import locks

FORMAT_VERSION = 4
REBUILD_LOCK_ID = locks.SEARCH_REBUILD  # PostgreSQL advisory lock: one rebuilding process


def stamp_name(backend_name: str) -> str:
    """The sync_cursors row that holds the embedded index's format version."""
    return f"search-format:{backend_name}"


@contextlib.contextmanager
def rebuild_lock(engine: Engine, wait: bool) -> Iterator[bool]:
    """Held by the one process that rebuilds the index (sync or `disclosure reindex`); yields
    False when not `wait` and another process holds it. A session lock (PostgreSQL) or a file
    lock next to the database (SQLite), so that it is released when its process dies; not the
    index writers' lock (locks.SEARCH_INDEX), which the rebuild itself takes for its swap."""
    with locks.held(engine, REBUILD_LOCK_ID, "search-rebuild", wait) as got:
        yield got
