"""The Meilisearch backend: the same documents (publishing.search.documents) in a Meilisearch index.

Chinese text. Meilisearch segments Chinese with jieba (without HMM: a pair of characters that is
not a dictionary word becomes two one-character words), normalises it per version, and matches
query words as words or word prefixes only (meilisearch/charabia#338), so "区好运" would not find
"芝罘区好运来". We therefore never let Meilisearch see Chinese: every searchable field holds
tokens we make ourselves, spelled in ASCII ("c" + five hex digits per character: 樟宇 →
c06a1f05b87): each run's overlapping bigrams, then each of its characters. A query is converted
the same way: a Chinese run becomes the phrase of its bigram tokens ("c… c… c…"), so any 2+
character part of a name matches across jieba's word boundaries, and a single character the
phrase of its own token. Latin words and pinyin are plain words. Names are tokenised as in the
embedded index (text.name_texts): across their brackets and without an inner bracketed part
(通百鑫（烟台）调味品 as 通百鑫烟台调味品 and 通百鑫调味品).

Meilisearch matches only the last word of a query as a prefix, and expands a prefix longer than
4 bytes to at most 1,000 words of the index (milli's MAX_PREFIX_COUNT); it reads at most 10 query
words. So nothing that must be found completely relies on a prefix: single characters are words
of their own (not prefixes of the bigrams), and a code (USCC / 注册号) prefix is a filter on
`code_prefix`, the 8- to 17-character prefixes of an entity's codes (records are found by their
exact code only, as in the embedded backend).

Pinyin is indexed as the joined pinyin of every 1–6 consecutive characters of a name
("yan", "yantai", "yantaizhang", "zhangyu" …) and initials of every 2–10 consecutive characters
("yt", "ytzy" …), so "yantaizhangyu", "zhangyu", "ytzy" and the prefix "yantaizh" are single
words that need no splitting at query time. Pinyin of more than 6 characters is sent as
overlapping words of up to 6 syllables each, cut where every reading of it has a syllable
boundary (yantaihaoyunlaichaoshi → yantaihaoyunlai yunlaichaoshi: hao may be ha o, chao cha o).

Ranking: ranking rules are sort (only when a sort is asked for, so "newest first" is strict),
words, typo, proximity, attribute (searchable attributes in the order codes, name, former names,
pinyin, initials, text, place), exactness, then custom: entities before records, shorter name,
newer, id (ties keep their order across rebuilds): a name that holds a latin word ranks above
one whose pinyin or initials only spell it (attribute), as in the embedded backend. Exact hits
come first and are found by filter, not by ranking: the documents whose code equals the query,
the entities whose code starts with it, then the entities whose name (its name_key) equals it,
those whose 曾用名 does (`former_key`), and the records published under that name; they are
fetched in the same multi-search request and excluded from the ranked query, so totals, facets
and pages stay exact. A query that finds nothing is searched again as the embedded backend
does (base.when_unfound: without its administrative prefix, then relaxed).

District short names (芝罘 → 芝罘区, 开发区 → 烟台经济技术开发区) already match as parts of the full
name; the other aliases (高新区, 烟台开发区, 市本级 …) are indexed with each document in the
`place` field. Meilisearch's `synonyms` setting cannot do this: it expands query words, not the
phrases our Chinese queries are made of.

Searches answer quickly or not at all: a short timeout (SEARCH_TIMEOUT), no retry of a timed-out
search, and a circuit breaker (after BREAKER_FAILURES failed searches in a row, searches fail at
once for BREAKER_COOLDOWN seconds); a search that cannot be answered raises SearchUnavailable.

Writes go in batches, each a Meilisearch task that is waited for (so a failed task fails the
sync and its cursor does not move); idempotent requests are retried with exponential backoff on
connection errors, timeouts, 429 and 5xx. Requests that enqueue a task that must not run twice
(index creation and deletion, swap-indexes) are sent once: when the reply is lost, the task is
looked up in the task list. `rebuild` fills a new index (`<index>_v<ms>`) and swaps it with the
live one (swap-indexes), so searches never see a half-built index; the new index's former self
is dropped only once the task list shows that exactly one swap took place (the sync cursors
move after the swap; a rebuild that dies in between leaves sync a record of where it started:
publishing.search.sync). A rebuild stamps the
index with this code's format version (index_format; the document "format" of `<index>_meta`),
and sync rebuilds an index with an older stamp, or none, or with settings other than ours
(`outdated`): its documents lack what the searches use. Until then a search on an index
without `code_prefix` or `former_key` (IndexOutdated) is sent as it was before those fields
existed, not failed.
`reconcile` compares counts and sampled documents with the database.

The settings, documents and queries described above are made by
publishing.search.meili_encoding; this module sends them: the client, its retries and circuit
breaker, rebuilds and reconcile.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import meilisearch
from meilisearch.errors import (
    MeilisearchApiError,
    MeilisearchCommunicationError,
    MeilisearchTimeoutError,
)
from sqlalchemy import Engine, func, select

from publishing.search import index_format, meili_encoding
from publishing.search.base import (
    FACETS,
    Hit,
    SearchQuery,
    SearchResult,
    SearchUnavailable,
    batched,
    when_unfound,
)
from publishing.search.highlight import doc_hit
from publishing.search.text import (
    ParsedQuery,
    parse_query,
)

log = logging.getLogger("publishing.search.meili")
T = TypeVar("T")

META_SUFFIX = "_meta"  # `<index>_meta` holds the index's format stamp (index_format)
FORMAT_KEY = "format"
BATCH = 1000  # documents per write task
PIPELINE = 4  # write tasks enqueued ahead of the one waited for during a rebuild
# Searches: connect, read timeouts (s); an index's writes keep MeiliSearch(timeout=…).
SEARCH_TIMEOUT = (1.0, 2.5)
SEARCH_RETRIES = 2  # on connection errors, 429 and 5xx; never on a timeout
BREAKER_FAILURES = 3  # failed searches in a row that open the circuit breaker …
BREAKER_COOLDOWN = 10.0  # … for this many seconds


# -- reconcile -------------------------------------------------------------------------------


@dataclass
class ReconcileReport:
    database: int  # documents the database says there should be
    index: int  # documents in Meilisearch
    pending: int  # change events the index has not applied yet
    sampled: int
    missing: list[str] = field(default_factory=list)  # sampled ids not in the index
    different: list[str] = field(default_factory=list)  # sampled ids whose document differs

    @property
    def ok(self) -> bool:
        return self.database == self.index and not self.missing and not self.different

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "database": self.database,
            "index": self.index,
            "pending": self.pending,
            "sampled": self.sampled,
            "missing": self.missing,
            "different": self.different,
        }


class MeiliTaskFailed(RuntimeError):
    pass


class IndexOutdated(SearchUnavailable):
    """The live index lacks a filter that the search uses: it was built by an older version
    (the next sync rebuilds it, see index_format)."""


class CircuitBreaker:
    """After `failures` failed searches in a row, searches fail at once for `cooldown` seconds;
    then one search at a time tries again (the others still fail at once), and a success
    closes the breaker. Shared by the threads of a process."""

    def __init__(self, failures: int = BREAKER_FAILURES, cooldown: float = BREAKER_COOLDOWN):
        self.failures = failures
        self.cooldown = cooldown
        self._failed = 0
        self._until = 0.0
        self._lock = threading.Lock()

    def enter(self) -> None:
        """Before a search: raise SearchUnavailable while the breaker is open."""
        with self._lock:
            if self._failed < self.failures:
                return
            now = time.monotonic()
            if now < self._until:
                raise SearchUnavailable("meilisearch: failing fast after repeated failures")
            self._until = now + self.cooldown  # this search tries; the others fail meanwhile

    def succeeded(self) -> None:
        with self._lock:
            self._failed = 0

    def failed(self) -> None:
        with self._lock:
            self._failed += 1
            if self._failed >= self.failures:
                self._until = time.monotonic() + self.cooldown


# -- the backend -----------------------------------------------------------------------------


class MeiliSearch:
    """SearchBackend over a Meilisearch index (the official client; one client per thread, as
    the client's request headers are shared state)."""

    name = "meilisearch"

    def __init__(
        self,
        url: str,
        key: str | None = None,
        index: str = "disclosure",
        *,
        timeout: float = 10.0,
        task_timeout: float = 300.0,
        retries: int = 5,
        backoff: float = 0.2,
        batch: int = BATCH,
        search_timeout: tuple[float, float] = SEARCH_TIMEOUT,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.uid = index
        self.timeout = timeout
        self.task_timeout = task_timeout
        self.retries = retries
        self.backoff = backoff
        self.batch = batch
        self.search_timeout = search_timeout
        self.breaker = breaker or CircuitBreaker()
        self._local = threading.local()
        self._ready = False

    # -- plumbing --------------------------------------------------------------------------
    @property
    def client(self) -> meilisearch.Client:
        """The client for writes and checks (timeout: `timeout`)."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = meilisearch.Client(
                self.url, self.key, timeout=self.timeout
            )
        return client

    @property
    def search_client(self) -> meilisearch.Client:
        """The client for searches and pings: (connect, read) timeouts of `search_timeout`."""
        client = getattr(self._local, "search_client", None)
        if client is None:
            # requests takes a (connect, read) pair where the client's type hint says int
            timeout: Any = self.search_timeout
            client = self._local.search_client = meilisearch.Client(
                self.url, self.key, timeout=timeout
            )
        return client

    def _call(
        self,
        fn: Callable[..., T],
        *args: Any,
        retries: int | None = None,
        timeouts: bool = True,
        **kwargs: Any,
    ) -> T:
        """fn(*args, **kwargs), retried with exponential backoff (and jitter) on connection
        errors, 429 and 5xx, and on timeouts unless `timeouts` is False."""
        attempts = (self.retries if retries is None else retries) + 1
        for attempt in range(attempts):
            try:
                return fn(*args, **kwargs)
            except MeilisearchCommunicationError as err:
                error: Exception = err
            except MeilisearchTimeoutError as err:
                if not timeouts:
                    raise
                error = err
            except MeilisearchApiError as err:
                if err.status_code != 429 and err.status_code < 500:
                    raise
                error = err
            if attempt == attempts - 1:
                raise error
            delay = self.backoff * (2**attempt) * (0.5 + random.random())
            log.warning(
                "meilisearch: %s; retrying in %.2fs (%d/%d)",
                error,
                delay,
                attempt + 1,
                attempts - 1,
            )
            time.sleep(delay)
        raise AssertionError("unreachable")

    def _wait(self, task_uid: int) -> None:
        """Wait for a task; raise when it failed."""
        # a task that takes longer than task_timeout is an error here, not a reason to retry
        task = self._call(
            self.client.wait_for_task,
            task_uid,
            timeouts=False,
            timeout_in_ms=int(self.task_timeout * 1000),
            interval_in_ms=20,
        )
        if task.status != "succeeded":
            raise MeiliTaskFailed(
                f"meilisearch task {task_uid} ({task.type}) {task.status}: {task.error}"
            )

    def _post(self, path: str, body: Any) -> int:
        """POST an idempotent write (documents, deletions by id); returns its task's uid."""
        return self._call(self.client.http.post, path, body)["taskUid"]

    def _enqueue_once(
        self, send: Callable[[], Any], kind: str, match: Callable[[dict[str, Any]], bool]
    ) -> int:
        """The uid of the task of a request that must not be repeated (index creation and
        deletion, swap-indexes): a retry after a lost reply would enqueue it twice (a second
        swap swaps the old index back in). Sent once; when its reply is lost (connection error,
        timeout, 5xx), the task list says whether it was enqueued all the same."""
        before = self._last_task()
        try:
            return send()["taskUid"]
        except (MeilisearchCommunicationError, MeilisearchTimeoutError, MeilisearchApiError) as err:
            if isinstance(err, MeilisearchApiError) and err.status_code < 500:
                raise
            for attempt in range(3):  # a request whose reply timed out may still be arriving
                task = next((t for t in self._tasks(kind, before) if match(t)), None)
                if task is not None:
                    log.warning("meilisearch: %s; it was enqueued all the same", err)
                    return task["uid"]
                time.sleep(self.backoff * 2**attempt)
            raise

    def _last_task(self) -> int:
        found = self._call(self.client.http.get, "tasks?limit=1")["results"]
        return found[0]["uid"] if found else -1

    def _tasks(self, kind: str, after: int) -> list[dict[str, Any]]:
        """The newest tasks of a type (up to 100) enqueued after task `after`, newest first."""
        found = self._call(self.client.http.get, f"tasks?types={kind}&limit=100")["results"]
        return [t for t in found if t["uid"] > after]

    def _exists(self, uid: str) -> bool:
        try:
            self._call(self.client.get_raw_index, uid)
        except MeilisearchApiError as err:
            if err.code == "index_not_found" or err.status_code == 404:
                return False
            raise
        return True

    def _create(self, uid: str) -> None:
        """Create an index with our settings and wait until both are done."""
        body = {"uid": uid, "primaryKey": meili_encoding.PRIMARY_KEY}
        self._wait(
            self._enqueue_once(
                lambda: self.client.http.post("indexes", body),
                "indexCreation",
                lambda t: t.get("indexUid") == uid,
            )
        )
        self._wait(
            self._call(
                self.client.http.patch, f"indexes/{uid}/settings", meili_encoding.settings_payload()
            )["taskUid"]
        )

    def ensure_index(self) -> None:
        """The live index exists, with our settings (updated when they changed)."""
        if self._ready:
            return
        if not self._exists(self.uid):
            self._create(self.uid)
        else:
            current = self._call(self.client.http.get, f"indexes/{self.uid}/settings")
            if _differs(meili_encoding.settings_payload(), current):
                log.warning("meilisearch: updating the settings of %s", self.uid)
                self._wait(
                    self._call(
                        self.client.http.patch,
                        f"indexes/{self.uid}/settings",
                        meili_encoding.settings_payload(),
                    )["taskUid"]
                )
        self._ready = True

    def _add(self, uid: str, docs: list[dict[str, Any]]) -> int:
        return self._post(f"indexes/{uid}/documents", [meili_encoding.index_doc(d) for d in docs])

    # -- writing ---------------------------------------------------------------------------
    def upsert(self, docs: Iterable[dict[str, Any]]) -> None:
        self.ensure_index()
        tasks = [self._add(self.uid, chunk) for chunk in batched(docs, self.batch)]
        for uid in tasks:
            self._wait(uid)

    def delete(self, doc_ids: Iterable[str]) -> None:
        self.ensure_index()
        tasks = [
            self._post(
                f"indexes/{self.uid}/documents/delete-batch",
                [meili_encoding.doc_key(i) for i in chunk],
            )
            for chunk in batched(doc_ids, self.batch * 10)
        ]
        for uid in tasks:
            self._wait(uid)

    def rebuild(self, docs: Iterable[dict[str, Any]]) -> int:
        """Fill a new index, check its count, swap it with the live one, drop the old one."""
        new = f"{self.uid}_v{time.time_ns() // 1_000_000}"
        self._drop_stale_builds(keep=new)
        self._create(new)
        count = 0
        pending: list[int] = []
        try:
            for chunk in batched(docs, self.batch):
                pending.append(self._add(new, chunk))
                count += len(chunk)
                while len(pending) > PIPELINE:
                    self._wait(pending.pop(0))
            for uid in pending:
                self._wait(uid)
            indexed = self._call(self.client.http.get, f"indexes/{new}/stats")["numberOfDocuments"]
            if indexed != count:
                raise MeiliTaskFailed(
                    f"rebuild of {self.uid}: {indexed} documents indexed, {count} sent"
                )
            if not self._exists(self.uid):
                self._create(self.uid)
            self._swap(new)
        except BaseException:
            # `new` holds the new documents (no swap) or the old ones (a swap): not live
            # either way. The cursors have not moved: a sync's rebuild left a record of where
            # it started, and the next sync moves them back there, which suits either index.
            self._drop(new)
            raise
        self._ready = True
        self._drop(new)  # now the old documents
        self.stamp_format()
        return count

    def _swap(self, new: str) -> None:
        """Swap `new` with the live index, and make sure it was swapped exactly once (twice
        would leave the old documents live and the new ones in `new`, about to be dropped)."""
        swaps = [{"indexes": [self.uid, new]}]
        self._wait(
            self._enqueue_once(
                lambda: self.client.http.post("swap-indexes", swaps),
                "indexSwap",
                lambda t: _swaps(t, new),
            )
        )
        done = [t for t in self._tasks("indexSwap", -1) if _swaps(t, new)]
        if [t["status"] for t in done] != ["succeeded"]:
            raise MeiliTaskFailed(
                f"rebuild of {self.uid}: swap tasks with {new}: {[t['status'] for t in done]}"
            )

    def _drop(self, uid: str) -> None:
        try:
            self._wait(
                self._enqueue_once(
                    lambda: self.client.http.delete(f"indexes/{uid}"),
                    "indexDeletion",
                    lambda t: t.get("indexUid") == uid,
                )
            )
        except Exception as err:  # noqa: BLE001 - leftovers are dropped by the next rebuild
            log.warning("meilisearch: could not delete index %s: %s", uid, err)

    def _drop_stale_builds(self, keep: str) -> None:
        """Indexes left by a rebuild that died before its swap."""
        stale = re.compile(re.escape(self.uid) + r"_v\d+")
        found = self._call(self.client.http.get, "indexes?limit=1000")["results"]
        for info in found:
            if stale.fullmatch(info["uid"]) and info["uid"] != keep:
                self._drop(info["uid"])

    def drop(self) -> None:
        """Delete the live index and its stamp (tests, decommissioning)."""
        self._drop(self.uid)
        if self._exists(self.meta_uid):
            self._drop(self.meta_uid)
        self._ready = False

    # -- format ----------------------------------------------------------------------------
    @property
    def meta_uid(self) -> str:
        """The index that holds the live index's format stamp (a document per index, so that
        the stamp goes with the Meilisearch data: an emptied server is rebuilt)."""
        return f"{self.uid}{META_SUFFIX}"

    def format_version(self) -> int | None:
        """The format version (index_format) of the live index; None: not stamped."""
        path = f"indexes/{self.meta_uid}/documents/{FORMAT_KEY}"
        try:
            stamp = self._call(self.client.http.get, path)
        except MeilisearchApiError as err:
            if err.code in ("document_not_found", "index_not_found"):
                return None
            raise
        return stamp.get("version") if stamp.get("index") == self.uid else None

    def stamp_format(self) -> None:
        """Stamp the live index with this code's format version (after its rebuild's swap: a
        crash between the two costs one more rebuild, never a stamp on an old index)."""
        if not self._exists(self.meta_uid):
            body = {"uid": self.meta_uid, "primaryKey": meili_encoding.PRIMARY_KEY}
            self._wait(
                self._enqueue_once(
                    lambda: self.client.http.post("indexes", body),
                    "indexCreation",
                    lambda t: t.get("indexUid") == self.meta_uid,
                )
            )
        stamp = {
            meili_encoding.PRIMARY_KEY: FORMAT_KEY,
            "index": self.uid,
            "version": index_format.FORMAT_VERSION,
        }
        self._wait(self._post(f"indexes/{self.meta_uid}/documents", [stamp]))

    def outdated(self) -> bool:
        """Whether the live index has settings other than ours: it was built by another version
        of this backend, and its documents lack what our searches use (code_prefix came with
        its filter), so it must be rebuilt (sync does), not only given our settings."""
        try:
            current = self._call(self.client.http.get, f"indexes/{self.uid}/settings")
        except MeilisearchApiError as err:
            if err.code == "index_not_found":
                return False
            raise
        if not _differs(meili_encoding.settings_payload(), current):
            return False
        log.warning("meilisearch: %s was built with other settings: it needs a rebuild", self.uid)
        return True

    # -- reading ---------------------------------------------------------------------------
    def ping(self) -> bool:
        try:
            return self.search_client.health().get("status") == "available"
        except Exception:  # noqa: BLE001 - unreachable is an answer here
            return False

    def count(self) -> int:
        try:
            stats = self._call(self.client.http.get, f"indexes/{self.uid}/stats")
        except MeilisearchApiError as err:
            if err.code == "index_not_found":
                return 0
            raise
        return stats["numberOfDocuments"]

    def documents(self) -> Iterator[dict[str, Any]]:
        """Every stored document (for checks and debugging)."""
        offset = 0
        while True:
            body = {
                "offset": offset,
                "limit": self.batch,
                "fields": list(meili_encoding.DOC_FIELDS),
            }
            try:
                page = self._call(
                    self.client.http.post, f"indexes/{self.uid}/documents/fetch", body
                )
            except MeilisearchApiError as err:
                if err.code == "index_not_found":
                    return
                raise
            yield from (meili_encoding.stored_doc(d) for d in page["results"])
            offset += len(page["results"])
            if not page["results"] or offset >= page["total"]:
                return

    def get(self, doc_id: str) -> dict[str, Any] | None:
        key, fields = meili_encoding.doc_key(doc_id), ",".join(meili_encoding.DOC_FIELDS)
        path = f"indexes/{self.uid}/documents/{key}?fields={fields}"
        try:
            return meili_encoding.stored_doc(self._call(self.client.http.get, path))
        except MeilisearchApiError as err:
            if err.code in ("document_not_found", "index_not_found"):
                return None
            raise

    def search(self, query: SearchQuery) -> SearchResult:
        started = time.perf_counter()
        pq = parse_query(query.q)
        legacy = False
        try:
            result = self._search(query, pq, started)
        except IndexOutdated as err:
            if meili_encoding.exact_tiers(pq) == meili_encoding.exact_tiers(pq, legacy=True):
                raise
            # Until the sync has rebuilt it, an index without `code_prefix` or `former_key` is
            # asked as it was before those fields existed (a code as a prefix word, the name
            # alone as the exact name), instead of failing.
            log.info("meilisearch: %s; searched as on the older index", err)
            legacy = True
            result = self._search(query, pq, started, legacy=True)
        # found nothing: unprefixed, then relaxed (as the embedded backend: base.when_unfound)
        return when_unfound(pq, result, lambda other: self._search(query, other, started, legacy))

    def _search(
        self, query: SearchQuery, pq: ParsedQuery, started: float, legacy: bool = False
    ) -> SearchResult:
        q = meili_encoding.query_string(pq, legacy)
        base = meili_encoding.query_filters(query)
        relevance = bool(q) and query.sort != "date"
        tiers = meili_encoding.exact_tiers(pq, legacy) if relevance else []
        common: dict[str, Any] = {
            "indexUid": self.uid,
            "attributesToRetrieve": list(meili_encoding.DOC_FIELDS),
        }
        if query.facets:
            common["facets"] = list(FACETS)
        requests: list[dict[str, Any]] = []
        for i, tier in enumerate(tiers):
            filters = [*base, f"({tier})", *(f"NOT ({t})" for t in tiers[:i])]
            requests.append(
                {
                    **common,
                    "q": "",
                    "filter": filters,
                    "hitsPerPage": query.offset + query.limit,
                    "page": 1,
                }
            )
        main: dict[str, Any] = {**common, "q": q, "matchingStrategy": "all"}
        if legacy and relevance and pq.code:  # records by their exact code only (its tier)
            base = [*base, 'type = "entity"']
        if base or tiers:
            main["filter"] = [*base, *(f"NOT ({t})" for t in tiers)]
        if not relevance:
            main["sort"] = ["day:desc"]
        paging, skip = meili_encoding.window(query.offset, query.limit)
        results = self._multi([*requests, {**main, **paging}])
        if results is None:
            return SearchResult(
                total=0,
                hits=[],
                facets={f: {} for f in FACETS} if query.facets else {},
                query=query,
            )
        exact_hits = [h for r in results[:-1] for h in r["hits"]]
        n_exact = sum(r["totalHits"] for r in results[:-1])
        page = exact_hits[query.offset : query.offset + query.limit]
        main_hits = results[-1]["hits"][skip:]
        if n_exact:
            main_offset = max(0, query.offset - n_exact)
            main_limit = query.limit - len(page)
            if query.offset and main_limit > 0:
                paging, skip = meili_encoding.window(main_offset, main_limit)
                main_hits = self._multi([{**main, **paging, "facets": []}])[-1]["hits"][skip:]
            main_hits = main_hits[:main_limit]
        page += main_hits[: query.limit - len(page)]
        total = n_exact + results[-1]["totalHits"]
        facets = _merge_facets(results) if query.facets else {}
        hits = [self._hit(meili_encoding.stored_doc(h), pq) for h in page]
        return SearchResult(
            total=total,
            hits=hits,
            facets=facets,
            capped=any(r["totalHits"] >= meili_encoding.MAX_TOTAL_HITS for r in results),
            took_ms=round((time.perf_counter() - started) * 1000, 2),
            query=query,
        )

    def _multi(self, queries: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """The results of a multi-search; SearchUnavailable when Meilisearch does not answer
        in time, fails (5xx, 429) or the circuit breaker is open. A timed-out search is not
        retried: its request threads would wait twice as long for an overloaded server."""
        self.breaker.enter()
        try:
            body = self._call(
                self.search_client.multi_search, queries, retries=SEARCH_RETRIES, timeouts=False
            )
        except (MeilisearchCommunicationError, MeilisearchTimeoutError) as err:
            self.breaker.failed()
            raise SearchUnavailable(f"meilisearch: {err}") from err
        except MeilisearchApiError as err:
            if err.status_code == 429 or err.status_code >= 500:
                self.breaker.failed()
                raise SearchUnavailable(f"meilisearch: {err}") from err
            self.breaker.succeeded()  # it answered
            if err.code == "index_not_found":
                log.warning(
                    "meilisearch: index %s does not exist yet (run disclosure reindex)", self.uid
                )
                return None
            if err.code == "invalid_search_filter" and "not filterable" in str(err):
                log.warning("meilisearch: %s is outdated (the next sync rebuilds it)", self.uid)
                raise IndexOutdated(f"meilisearch: {err}") from err
            raise
        self.breaker.succeeded()
        return body["results"]

    @staticmethod
    def _hit(doc: dict[str, Any], pq: ParsedQuery) -> Hit:
        return doc_hit(doc, pq)

    # -- checks ----------------------------------------------------------------------------
    def reconcile(
        self, engine: Engine, sample: int = 200, seed: int | None = None
    ) -> ReconcileReport:
        """Counts, and about `sample` random documents, compared between the database and the
        index. Events not yet synced (`pending`) show up as differences: sync first."""
        from publishing.models import ACTIVE, Entity, Record
        from publishing.search.documents import load_entity_docs, load_record_docs
        from publishing.search.sync import backlog

        ents, recs = Entity.__table__, Record.__table__
        rng = random.Random(seed)
        with engine.connect() as conn:
            n_ent = conn.execute(select(func.count()).select_from(ents)).scalar_one()
            kinds = dict(
                conn.execute(
                    select(recs.c.kind, func.count())
                    .where(recs.c.status == ACTIVE)
                    .group_by(recs.c.kind)
                ).all()
            )
            lag = backlog(conn, self).behind
            rec_ids = _sample_records(conn, kinds, sample, rng)
            docs = load_record_docs(conn, rec_ids)
            # entities: those of the sampled records (every entity has records), up to a share
            owners = sorted({d["entity_id"] for d in docs.values() if d and d["entity_id"]})
            share = max(1, round(sample * n_ent / max(1, n_ent + sum(kinds.values()))))
            docs.update(load_entity_docs(conn, rng.sample(owners, min(share, len(owners)))))
        report = ReconcileReport(
            database=n_ent + sum(kinds.values()),
            index=self.count(),
            pending=max(0, lag),
            sampled=len(docs),
        )
        for doc_id, doc in sorted(docs.items()):
            if doc is None:
                continue
            got = self.get(doc_id)
            if got is None:
                report.missing.append(doc_id)
            elif got != meili_encoding.stored_doc(meili_encoding.json_clean(doc)):
                report.different.append(doc_id)
        return report


def _sample_records(conn: Any, kinds: dict[str, int], want: int, rng: random.Random) -> list[str]:
    """About `want` random active record ids: record ids are "<kind prefix>-<hash>", so the
    first active id at or after a random hash of a kind (chosen by its share) is a random
    record; each draw is one short scan of the primary key."""
    from publishing.contract import KIND_PREFIX
    from publishing.models import ACTIVE, Record

    recs = Record.__table__
    found: set[str] = set()
    if not kinds:
        return []
    names, weights = list(kinds), list(kinds.values())
    for _ in range(want * 3):
        if len(found) >= min(want, sum(weights)):
            break
        kind = rng.choices(names, weights)[0]
        pivot = f"{KIND_PREFIX[kind]}-{rng.getrandbits(64):016x}"
        hit = conn.execute(
            select(recs.c.id)
            .where(recs.c.id >= pivot, recs.c.kind == kind, recs.c.status == ACTIVE)
            .order_by(recs.c.id)
            .limit(1)
        ).scalar()
        if hit is None:  # past the last one: wrap around
            hit = conn.execute(
                select(recs.c.id)
                .where(recs.c.kind == kind, recs.c.status == ACTIVE)
                .order_by(recs.c.id)
                .limit(1)
            ).scalar()
        if hit is not None:
            found.add(hit)
    return sorted(found)


def _swaps(task: dict[str, Any], uid: str) -> bool:
    """Whether a task swaps index `uid`."""
    swaps = (task.get("details") or {}).get("swaps") or ()
    return any(uid in (s.get("indexes") or ()) for s in swaps)


def _merge_facets(results: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    out: dict[str, Counter] = {f: Counter() for f in FACETS}
    for r in results:
        for facet, counts in (r.get("facetDistribution") or {}).items():
            out[facet].update(counts)
    return {f: dict(c.most_common()) for f, c in out.items()}


_ORDERED = ("searchableAttributes", "rankingRules", "displayedAttributes")


def _differs(want: dict[str, Any], have: dict[str, Any]) -> bool:
    """Whether the index's settings differ from ours in anything we set (Meilisearch returns
    the set-like settings, e.g. filterable attributes, sorted: only order-bearing lists are
    compared in order), so that a restart does not update settings, which reindexes."""
    for key, value in want.items():
        current = have.get(key)
        if isinstance(value, dict):
            if not isinstance(current, dict) or _differs(value, current):
                return True
        elif isinstance(value, list) and key not in _ORDERED:
            if sorted(map(str, current or [])) != sorted(map(str, value)):
                return True
        elif current != value:
            return True
    return False
