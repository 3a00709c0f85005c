"""Values that change only when something is published (counts, categories in use), cached
per process against the change log's newest sequence number, the newest batch (statistics-only
marks change without a change event) and the day.

Counts are served stale-while-revalidate on a busy portal: when the change log has moved on,
the old value is served while one background thread computes the new one (a fraction of a
second at a million records), but only while it is known to have been current a moment ago
(STALE_FOR). A process that has not looked for a while computes at once: its value may be from
before any number of publishes (0 records, shown beside the 50 listed). Other keys
(stale_ok=False), the categories among them (a few index seeks), are always current."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from publishing import clock, read
from publishing.contract import KINDS

log = logging.getLogger("portal")
Stamp = tuple[int, int, str]
# Seconds since a value was last seen current within which it may still be served, stale, while
# it is recomputed: how out of date a busy portal's counts can be, plus one recomputation.
STALE_FOR = 10.0


class PublishedCache:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[Stamp, Any]] = {}
        self._seen_current: dict[str, float] = {}  # key -> when its value last matched the stamp
        self._refreshing: set[str] = set()

    @staticmethod
    def stamp(conn: Connection) -> Stamp:
        return *read.publication_stamp(conn), clock.today().isoformat()

    def get(
        self,
        conn: Connection,
        key: str,
        compute: Callable[[Connection], Any],
        stale_ok: bool = False,
    ) -> Any:
        """The value for the current change-log position. stale_ok: an older value may be
        returned at once while a background thread computes the current one."""
        stamp = self.stamp(conn)
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == stamp:
                self._seen_current[key] = now
                return entry[1]
            if entry is not None and stale_ok and now - self._seen_current[key] <= STALE_FOR:
                self._refresh_in_background(key, compute)
                return entry[1]
        value = compute(conn)
        self._store(key, stamp, value)
        return value

    def _refresh_in_background(self, key: str, compute: Callable[[Connection], Any]) -> None:
        """Start one refresh thread for key unless one is running (call with the lock held)."""
        if key in self._refreshing:
            return
        self._refreshing.add(key)
        threading.Thread(
            target=self._refresh, args=(key, compute), daemon=True, name=f"refresh-{key}"
        ).start()

    def _store(self, key: str, stamp: Stamp, value: Any) -> None:
        """Keep value, computed at stamp (read before it was computed), unless a newer one is kept."""
        with self._lock:
            current = self._entries.get(key)
            if current is None or current[0] <= stamp:
                self._entries[key] = (stamp, value)
                self._seen_current[key] = time.monotonic()

    def _refresh(self, key: str, compute: Callable[[Connection], Any]) -> None:
        try:
            with self.engine.connect() as conn:
                stamp = self.stamp(conn)
                self._store(key, stamp, compute(conn))
        except SQLAlchemyError:
            log.exception("refreshing %s failed; the previous value is kept", key)
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def warm(self) -> None:
        """At startup: the counts and the categories (milliseconds: an index leads with the
        category), so that the first requests find them."""
        try:
            with self.engine.connect() as conn:
                counts(self, conn)
                for kind in KINDS:
                    categories(self, conn, kind)
        except SQLAlchemyError as err:  # not migrated yet, database down: /healthz tells
            log.warning("could not warm the statistics cache: %s", err)


def counts(cache: PublishedCache, conn: Connection) -> dict[str, Any]:
    return cache.get(conn, "counts", read.counts, stale_ok=True)


def categories(cache: PublishedCache, conn: Connection, kind: str) -> list[str]:
    """The categories in use, for a filter's options: current, since read.categories seeks
    them in ix_records_kind_category_date (~20 ms at a million records, once per change)."""
    return cache.get(conn, f"categories:{kind}", lambda c: read.categories(c, kind))
