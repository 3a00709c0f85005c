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
newer, id (ties keep their order across rebuilds). Exact hits come first and are found by
filter, not by ranking: the documents whose code equals the query, the entities whose code
starts with it, then those whose name (its name_key) equals it; they are fetched in the same
multi-search request and excluded from the ranked query, so totals, facets and pages stay exact.

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
is dropped only once the task list shows that exactly one swap took place. A rebuild stamps the
index with this code's format version (index_format; the document "format" of `<index>_meta`),
and sync rebuilds an index with an older stamp, or none, or with settings other than ours
(`outdated`): its documents lack what the searches use. Until then a code search on an index
without `code_prefix` (IndexOutdated) is sent as it was before that field existed, not failed.
`reconcile` compares counts and sampled documents with the database.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from itertools import accumulate, islice
from typing import Any, TypeVar

import meilisearch
from meilisearch.errors import (
    MeilisearchApiError,
    MeilisearchCommunicationError,
    MeilisearchTimeoutError,
)
from sqlalchemy import Engine, func, select

from publishing.contract import _DISTRICT_ALIASES, DISTRICT_SHORT, DISTRICTS
from publishing.search import index_format
from publishing.search.base import (
    FACETS,
    MATCH_CAP,
    Hit,
    SearchQuery,
    SearchResult,
    SearchUnavailable,
)
from publishing.search.highlight import doc_hit
from publishing.search.text import (
    CJK_CLASS,
    ParsedQuery,
    Term,
    name_key,
    name_texts,
    normalize,
    parse_query,
    runs,
    syllables,
)

log = logging.getLogger("publishing.search.meili")
T = TypeVar("T")

PRIMARY_KEY = "key"
DOC_FIELDS = (
    "id",
    "type",
    "title",
    "url",
    "entity_id",
    "district",
    "date",
    "status",
    "grade",
    "uscc",
    "reg_no",
    "names",
    "text",
    "data",
)
SEARCHABLE = ("codes", "name", "former", "py", "pyi", "body", "place")
FILTERABLE = (
    "type",
    "district",
    "status",
    "grade",
    "entity_id",
    "name_key",
    "uscc",
    "reg_no",
    "code_prefix",
)
SORTABLE = ("day",)
RANKING_RULES = (
    "sort",
    "words",
    "typo",
    "proximity",
    "attribute",
    "exactness",
    "type_rank:asc",
    "name_len:asc",
    "day:desc",
    "id:asc",  # ties: the same order after a rebuild as after incremental syncs
)
MAX_TOTAL_HITS = MATCH_CAP  # as the embedded backend: totals beyond it are lower bounds
PINYIN_MAX = 6  # joined pinyin of up to this many characters is one token
INITIALS_MAX = 10  # initials of up to this many characters
CODE_PREFIX_MIN = 8  # the shortest code prefix searched for (publishing.search.text.code_key)
META_SUFFIX = "_meta"  # `<index>_meta` holds the index's format stamp (index_format)
FORMAT_KEY = "format"
BATCH = 1000  # documents per write task
PIPELINE = 4  # write tasks enqueued ahead of the one waited for during a rebuild
# Searches: connect, read timeouts (s); an index's writes keep MeiliSearch(timeout=…).
SEARCH_TIMEOUT = (1.0, 2.5)
SEARCH_RETRIES = 2  # on connection errors, 429 and 5xx; never on a timeout
BREAKER_FAILURES = 3  # failed searches in a row that open the circuit breaker …
BREAKER_COOLDOWN = 10.0  # … for this many seconds
_CJK = re.compile(f"[{CJK_CLASS}]")
_VALID_KEY = re.compile(r"[A-Za-z0-9_-]{1,511}")


def settings_payload() -> dict[str, Any]:
    """The index settings (PATCH /indexes/{uid}/settings)."""
    return {
        "searchableAttributes": list(SEARCHABLE),
        "filterableAttributes": list(FILTERABLE),
        "sortableAttributes": list(SORTABLE),
        "rankingRules": list(RANKING_RULES),
        "displayedAttributes": ["*"],
        # Typos only in pinyin: our Chinese tokens are hex spellings (one "typo" there is another
        # character) and codes must match exactly.
        "typoTolerance": {
            "enabled": True,
            "disableOnAttributes": [a for a in SEARCHABLE if a != "py"],
        },
        "pagination": {"maxTotalHits": MAX_TOTAL_HITS},
        "faceting": {"maxValuesPerFacet": 100},
    }


# -- documents -------------------------------------------------------------------------------


def encode(token: str) -> str:
    """An index token as Meilisearch sees it: Chinese spelled in hex, anything else as is."""
    if token and _CJK.match(token):
        return "c" + "".join(f"{ord(ch):05x}" for ch in token)
    return token


def index_tokens(norm: str, chars: bool = True) -> list[str]:
    """A normalised text's tokens: a Chinese run's bigrams, then each of its characters (a
    single-character query is then a word, not a prefix that Meilisearch would expand to at
    most 1,000 bigrams or match only as the query's last word; without `chars`, a run of one
    character only); other runs as they are."""
    out: list[str] = []
    for run, cjk in runs(norm):
        if cjk:
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
            if chars or len(run) == 1:
                out.extend(run)
        else:
            out.append(run)
    return out


def grams(text: str, chars: bool = True) -> str:
    """The tokens of a text (index_tokens of its normalised form), encoded, space-separated."""
    return " ".join(encode(t) for t in index_tokens(normalize(text), chars))


def name_grams(name: str) -> str:
    """The tokens of a name as grams() makes them, of each of its text.name_texts (通百鑫（烟台）
    调味品 as 通百鑫烟台调味品 and 通百鑫调味品): Meilisearch never sees the brackets, its own
    tokenizer cannot bridge them."""
    return " ".join(grams(t) for t in name_texts(normalize(name)))


def pinyin_tokens(names: Iterable[str]) -> tuple[list[str], list[str]]:
    """Joined pinyin and initials of every run of consecutive characters of the names."""
    py: dict[str, None] = {}
    pyi: dict[str, None] = {}
    for name in names:
        items = syllables(normalize(name))
        initials = [s[0] for s in items if s]
        for i in range(len(items)):
            for k in range(1, PINYIN_MAX + 1):
                if i + k <= len(items):
                    py["".join(items[i : i + k])] = None
            for k in range(2, INITIALS_MAX + 1):
                if i + k <= len(initials):
                    pyi["".join(initials[i : i + k])] = None
    return list(py), list(pyi)


def code_prefixes(codes: Iterable[str | None]) -> list[str]:
    """The prefixes of the codes that a code query may be (CODE_PREFIX_MIN characters up to
    one short of the whole code, which is matched exactly)."""
    out: dict[str, None] = {}
    for code in filter(None, codes):
        for n in range(CODE_PREFIX_MIN, len(code)):
            out[code[:n]] = None
    return list(out)


def _place_names() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {
        code: [name, DISTRICT_SHORT.get(code, name)] for code, name in DISTRICTS.items()
    }
    for alias, code in _DISTRICT_ALIASES.items():
        out.setdefault(code, []).append(alias)
    return {code: list(dict.fromkeys(names)) for code, names in out.items()}


PLACES = _place_names()


def doc_key(doc_id: str) -> str:
    """The Meilisearch primary key of a document id (ids are URL-safe already: kept as is)."""
    if _VALID_KEY.fullmatch(doc_id):
        return doc_id
    return "x" + doc_id.encode().hex()[:500]


def _json_clean(doc: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(doc, ensure_ascii=False, default=str))


def _day(iso: str | None) -> int | None:
    try:
        return date.fromisoformat(iso[:10]).toordinal() if iso else None
    except ValueError:
        return None


def index_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """The Meilisearch document of a search document: its fields plus what is searched,
    filtered and ranked on."""
    out = _json_clean({k: doc.get(k) for k in DOC_FIELDS})
    names = [n for n in doc.get("names") or () if n]
    key = name_key(names[0]) if names else ""
    py, pyi = pinyin_tokens(names) if doc["type"] == "entity" else ([], [])
    out.update(
        {
            PRIMARY_KEY: doc_key(doc["id"]),
            "codes": [c for c in (doc.get("uscc"), doc.get("reg_no")) if c],
            # names as the embedded index has them: across and without brackets (name_texts)
            "name": name_grams(names[0]) if names else "",
            "former": [name_grams(n) for n in names[1:]],
            "py": py,
            "pyi": pyi,
            "body": [grams(value) for _, value in doc.get("text") or () if value],
            # district aliases are for names of places (高新区), not for single characters
            "place": [grams(n, chars=False) for n in PLACES.get(doc.get("district") or "", [])],
            "name_key": key or None,
            # entities only: a code prefix finds entities, as in the embedded backend
            "code_prefix": code_prefixes((doc.get("uscc"), doc.get("reg_no")))
            if doc["type"] == "entity"
            else [],
            "name_len": len(key),
            "type_rank": 0 if doc["type"] == "entity" else 1,
        }
    )
    # Every document has every custom-ranking field (Meilisearch leaves the order undefined
    # otherwise): no date is day 0, last when newest come first.
    out["day"] = _day(doc.get("date")) or 0
    return out


def stored_doc(hit: dict[str, Any]) -> dict[str, Any]:
    """The search document back from a Meilisearch document."""
    return {k: hit.get(k) for k in DOC_FIELDS}


# -- queries ---------------------------------------------------------------------------------


def phrase(parts: Iterable[str]) -> str:
    """A quoted phrase of index tokens: matched as adjacent words, never as a prefix."""
    return '"' + " ".join(encode(p) for p in parts) + '"'


def query_string(pq: ParsedQuery, legacy: bool = False) -> str:
    """The Meilisearch q of a parsed query (empty: a placeholder search). `legacy`: for an
    index built before `code_prefix` (IndexOutdated), a code is one word, matched exactly or
    as a prefix of a code, as searches were sent then."""
    if legacy and pq.code:
        return pq.code.lower()
    words: list[str] = []
    for term in pq.terms:
        if term.cjk:  # the phrase of its bigrams, or of its one character
            src = term.source
            words.append(phrase([src[i : i + 2] for i in range(len(src) - 1)] or [src]))
        elif pq.code:  # parts of a code are whole words: a code prefix is a filter (exact_tiers)
            words.append(phrase([term.source]))
        else:  # Meilisearch matches the last of these words as a prefix
            words.extend(pinyin_words(term))
    return " ".join(words)


def pinyin_words(term: Term) -> list[str]:
    """The words of a latin term: itself, unless a reading of it as pinyin has more syllables
    than one indexed token holds (PINYIN_MAX); then overlapping pieces of at most PINYIN_MAX
    syllables, cut where every reading has a syllable boundary (xian | xi an)."""
    readings = [sylls for sylls, _ in term.pinyin]
    if term.initials or not readings or max(map(len, readings)) <= PINYIN_MAX:
        return [term.source]
    ends = [set(accumulate(map(len, r))) for r in readings]
    cuts = sorted(set.intersection(*ends) | {0})

    def size(a: int, b: int) -> int:  # syllables between two cuts, in the longest reading
        return max(sum(cuts[a] < e <= cuts[b] for e in r) for r in ends)

    pieces: list[tuple[int, int]] = []
    i = 0
    while not pieces or pieces[-1][1] < len(cuts) - 1:
        j = i + 1
        while j + 1 < len(cuts) and size(i, j + 1) <= PINYIN_MAX:
            j += 1
        pieces.append((i, j))
        i = j - 1 if j - 1 > i else j  # the next piece overlaps this one by a syllable
    i, last = pieces[-1]
    while i > 0 and size(i - 1, last) <= PINYIN_MAX:  # the last piece as long as it can be
        i -= 1
    pieces[-1] = (i, last)
    return [term.source[cuts[a] : cuts[b]] for a, b in pieces]


def literal(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def query_filters(q: SearchQuery) -> list[str]:
    out: list[str] = []
    if q.types:
        out.append(f"type IN [{', '.join(literal(t) for t in q.types)}]")
    for key in ("district", "status", "grade"):
        value = getattr(q, key)
        if value:
            out.append(f"{key} = {literal(value)}")
    return out


def exact_tiers(pq: ParsedQuery, legacy: bool = False) -> list[str]:
    """Filters of the exact tiers, best first: the code, a code prefix (not on a `legacy`
    index, which lacks the field), then the name."""
    tiers = []
    if pq.code:
        tiers.append(f"uscc = {literal(pq.code)} OR reg_no = {literal(pq.code)}")
        if not legacy:  # entities only have code prefixes
            tiers.append(f"code_prefix = {literal(pq.code)}")
    if pq.name_key:
        tiers.append(f"name_key = {literal(pq.name_key)}")
    return tiers


def _window(offset: int, limit: int) -> tuple[dict[str, int], int]:
    """page/hitsPerPage (exact totals) covering [offset, offset + limit), and where the wanted
    hits start in that page."""
    if limit <= 0:
        return {"hitsPerPage": 0, "page": 1}, 0
    if offset % limit == 0:
        return {"hitsPerPage": limit, "page": offset // limit + 1}, 0
    return {"hitsPerPage": offset + limit, "page": 1}, offset


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
        body = {"uid": uid, "primaryKey": PRIMARY_KEY}
        self._wait(
            self._enqueue_once(
                lambda: self.client.http.post("indexes", body),
                "indexCreation",
                lambda t: t.get("indexUid") == uid,
            )
        )
        self._wait(
            self._call(self.client.http.patch, f"indexes/{uid}/settings", settings_payload())[
                "taskUid"
            ]
        )

    def ensure_index(self) -> None:
        """The live index exists, with our settings (updated when they changed)."""
        if self._ready:
            return
        if not self._exists(self.uid):
            self._create(self.uid)
        else:
            current = self._call(self.client.http.get, f"indexes/{self.uid}/settings")
            if _differs(settings_payload(), current):
                log.warning("meilisearch: updating the settings of %s", self.uid)
                self._wait(
                    self._call(
                        self.client.http.patch, f"indexes/{self.uid}/settings", settings_payload()
                    )["taskUid"]
                )
        self._ready = True

    def _add(self, uid: str, docs: list[dict[str, Any]]) -> int:
        return self._post(f"indexes/{uid}/documents", [index_doc(d) for d in docs])

    # -- writing ---------------------------------------------------------------------------
    def upsert(self, docs: Iterable[dict[str, Any]]) -> None:
        self.ensure_index()
        tasks = [self._add(self.uid, chunk) for chunk in _batched(docs, self.batch)]
        for uid in tasks:
            self._wait(uid)

    def delete(self, doc_ids: Iterable[str]) -> None:
        self.ensure_index()
        tasks = [
            self._post(f"indexes/{self.uid}/documents/delete-batch", [doc_key(i) for i in chunk])
            for chunk in _batched(doc_ids, self.batch * 10)
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
            for chunk in _batched(docs, self.batch):
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
            # Whether or not the swap took place, the live index matches a cursor that has
            # not moved: `new` holds the new documents (no swap) or the old ones (a swap).
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
            body = {"uid": self.meta_uid, "primaryKey": PRIMARY_KEY}
            self._wait(
                self._enqueue_once(
                    lambda: self.client.http.post("indexes", body),
                    "indexCreation",
                    lambda t: t.get("indexUid") == self.meta_uid,
                )
            )
        stamp = {PRIMARY_KEY: FORMAT_KEY, "index": self.uid, "version": index_format.FORMAT_VERSION}
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
        if not _differs(settings_payload(), current):
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
            body = {"offset": offset, "limit": self.batch, "fields": list(DOC_FIELDS)}
            try:
                page = self._call(
                    self.client.http.post, f"indexes/{self.uid}/documents/fetch", body
                )
            except MeilisearchApiError as err:
                if err.code == "index_not_found":
                    return
                raise
            yield from (stored_doc(d) for d in page["results"])
            offset += len(page["results"])
            if not page["results"] or offset >= page["total"]:
                return

    def get(self, doc_id: str) -> dict[str, Any] | None:
        path = f"indexes/{self.uid}/documents/{doc_key(doc_id)}?fields={','.join(DOC_FIELDS)}"
        try:
            return stored_doc(self._call(self.client.http.get, path))
        except MeilisearchApiError as err:
            if err.code in ("document_not_found", "index_not_found"):
                return None
            raise

    def search(self, query: SearchQuery) -> SearchResult:
        started = time.perf_counter()
        pq = parse_query(query.q)
        try:
            result = self._search(query, pq, started)
        except IndexOutdated as err:
            if not pq.code:
                raise
            # Until the sync has rebuilt it, an index without `code_prefix` is asked as it was
            # before that field existed (a code as a prefix word), instead of failing.
            log.info("meilisearch: %s; code searched as on the older index", err)
            return self._search(query, pq, started, legacy=True)
        if result.total == 0 and pq.unprefixed:
            # 烟台市芝罘区…: the name is 芝罘区… (as the embedded backend: text.ParsedQuery)
            result = self._search(query, parse_query(pq.unprefixed), started)
        return result

    def _search(
        self, query: SearchQuery, pq: ParsedQuery, started: float, legacy: bool = False
    ) -> SearchResult:
        q = query_string(pq, legacy)
        base = query_filters(query)
        relevance = bool(q) and query.sort != "date"
        tiers = exact_tiers(pq, legacy) if relevance else []
        common: dict[str, Any] = {"indexUid": self.uid, "attributesToRetrieve": list(DOC_FIELDS)}
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
        paging, skip = _window(query.offset, query.limit)
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
                paging, skip = _window(main_offset, main_limit)
                main_hits = self._multi([{**main, **paging, "facets": []}])[-1]["hits"][skip:]
            main_hits = main_hits[:main_limit]
        page += main_hits[: query.limit - len(page)]
        total = n_exact + results[-1]["totalHits"]
        facets = _merge_facets(results) if query.facets else {}
        hits = [self._hit(stored_doc(h), pq) for h in page]
        return SearchResult(
            total=total,
            hits=hits,
            facets=facets,
            capped=any(r["totalHits"] >= MAX_TOTAL_HITS for r in results),
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
        from publishing.models import ACTIVE, ChangeEvent, Entity, Record, SyncCursor
        from publishing.search.documents import load_entity_docs, load_record_docs
        from publishing.search.sync import cursor_name

        ents, recs = Entity.__table__, Record.__table__
        events, cursors = ChangeEvent.__table__, SyncCursor.__table__
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
            top = conn.execute(select(func.max(events.c.seq))).scalar() or 0
            seen = (
                conn.execute(
                    select(cursors.c.seq).where(cursors.c.name == cursor_name(self))
                ).scalar()
                or 0
            )
            rec_ids = _sample_records(conn, kinds, sample, rng)
            docs = load_record_docs(conn, rec_ids)
            # entities: those of the sampled records (every entity has records), up to a share
            owners = sorted({d["entity_id"] for d in docs.values() if d and d["entity_id"]})
            share = max(1, round(sample * n_ent / max(1, n_ent + sum(kinds.values()))))
            docs.update(load_entity_docs(conn, rng.sample(owners, min(share, len(owners)))))
        report = ReconcileReport(
            database=n_ent + sum(kinds.values()),
            index=self.count(),
            pending=max(0, top - seen),
            sampled=len(docs),
        )
        for doc_id, doc in sorted(docs.items()):
            if doc is None:
                continue
            got = self.get(doc_id)
            if got is None:
                report.missing.append(doc_id)
            elif got != stored_doc(_json_clean(doc)):
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


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk
