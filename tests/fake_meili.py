"""A small fake Meilisearch HTTP server for tests: a real HTTP server on a localhost port (in a
thread) that answers like the real API for the endpoints the backend uses, and records every
request. No Meilisearch server can be installed where these tests run; with DISCLOSURE_MEILI_URL
set the same tests run against a real one instead.

What it implements (Meilisearch v1.11 API shapes):
- indexes: create / get / list / delete, settings get / patch (unknown settings are a 400, as in
  Meilisearch), stats, global stats, health, version;
- documents: add-or-replace, delete-batch, fetch (offset, limit, fields, filter), get one;
- tasks: enqueued, then processed in order by a worker thread (optionally slowed down), so
  clients really wait for them; failures are failed tasks with Meilisearch's error codes;
- swap-indexes, dumps, snapshots (as tasks);
- search and multi-search: q with words and "quoted phrases", matchingStrategy "all" only,
  the last word matched as a prefix unless followed by a space, at most 10 query terms (milli's
  words limit: the rest is ignored, and no word is a prefix then); a prefix longer than 4 bytes
  matches at most 1,000 words of the index besides itself, the first in byte order (milli has a
  prefix database for prefixes up to 4 bytes only, and expands longer ones from the word list
  up to MAX_PREFIX_COUNT); filters (=, !=, >, >=, <, <=,
  IN, NOT IN, EXISTS, IS NULL, NOT, AND, OR, parentheses, arrays); facetDistribution; sort;
  offset/limit (estimatedTotalHits) and page/hitsPerPage (totalHits) capped at maxTotalHits;
  attributesToRetrieve; the ranking rules words, typo, proximity, attribute, sort, exactness and
  custom field:asc/desc, in the configured order, ties in insertion order.

What it does not: tokenising like charabia (a word is a run of letters and digits, lower-cased,
no Chinese segmentation), typo tolerance, synonyms, stop words, highlighting, federation. The
backend does not rely on any of these (it indexes its own ASCII tokens); a test that needs them
must run against a real server.

Failure injection: `fail(times, status=503)` answers the next matching requests with an error,
`fail(times, drop=True)` closes the connection without an answer, `fail(times, lose_reply=True)`
does what the request asks and then closes the connection without an answer (a reply lost on
the way back), `fail(times, repeat=True)` does it twice (a proxy that repeats a request),
`fail(times, delay=s)` answers late, `fail(times, during=fn)` calls fn when the request
arrives. GET /tasks filters by types, indexUids and statuses, newest first (limit, from).
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

SETTING_DEFAULTS: dict[str, Any] = {
    "displayedAttributes": ["*"],
    "searchableAttributes": ["*"],
    "filterableAttributes": [],
    "sortableAttributes": [],
    "rankingRules": ["words", "typo", "proximity", "attribute", "sort", "exactness"],
    "stopWords": [],
    "nonSeparatorTokens": [],
    "separatorTokens": [],
    "dictionary": [],
    "synonyms": {},
    "distinctAttribute": None,
    "proximityPrecision": "byWord",
    "typoTolerance": {
        "enabled": True,
        "minWordSizeForTypos": {"oneTypo": 5, "twoTypos": 9},
        "disableOnWords": [],
        "disableOnAttributes": [],
    },
    "faceting": {"maxValuesPerFacet": 100, "sortFacetValuesBy": {"*": "alpha"}},
    "pagination": {"maxTotalHits": 1000},
    "searchCutoffMs": None,
    "localizedAttributes": None,
}
BUILTIN_RULES = {"words", "typo", "proximity", "attribute", "sort", "exactness"}
_CUSTOM_RULE = re.compile(r"[A-Za-z0-9_.]+:(asc|desc)")
_DOC_ID = re.compile(r"[A-Za-z0-9_-]{1,511}")
_WORD = re.compile(r"\w+")
GAP = 8  # positions between the values of an array (a hard separator in Meilisearch)
WORDS_LIMIT = 10  # query terms read (milli's Search::words_limit)
PREFIX_DB_MAX_BYTES = 4  # longest prefix in milli's prefix database
MAX_PREFIX_COUNT = 1000  # words a longer prefix expands to (milli limits.rs)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, kind: str = "invalid_request"):
        super().__init__(message)
        self.status, self.code, self.message, self.kind = status, code, message, kind

    def body(self) -> dict[str, str]:
        return {
            "message": self.message,
            "code": self.code,
            "type": self.kind,
            "link": f"https://docs.meilisearch.com/errors#{self.code}",
        }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


# -- filters ---------------------------------------------------------------------------------

_FILTER_TOKEN = re.compile(
    r"""\s*(?:(\()|(\))|(\[)|(\])|(,)|(!=|>=|<=|=|>|<)|"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([^\s()\[\],=!<>]+))"""
)


class Filter:
    """A parsed filter expression: call it on a document."""

    def __init__(self, expr: Any, filterable: list[str]):
        self.filterable = filterable
        self.fn = self._parse_any(expr)

    def __call__(self, doc: dict[str, Any]) -> bool:
        return self.fn(doc)

    def _parse_any(self, expr: Any):
        if expr is None:
            return lambda d: True
        if isinstance(expr, str):
            return self._parse(expr)
        if isinstance(expr, list):
            parts = []
            for item in expr:
                if isinstance(item, list):
                    alts = [self._parse(x) for x in item]
                    parts.append(lambda d, alts=alts: any(f(d) for f in alts))
                else:
                    parts.append(self._parse(item))
            return lambda d: all(f(d) for f in parts)
        raise ApiError(400, "invalid_search_filter", "filter must be a string or an array")

    def _parse(self, text: str):
        pos, toks = 0, []
        text = text.strip()
        while pos < len(text):
            m = _FILTER_TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise ApiError(400, "invalid_search_filter", f"cannot parse filter {text!r}")
            pos = m.end()
            if m.group(7) is not None or m.group(8) is not None:
                raw = m.group(7) if m.group(7) is not None else m.group(8)
                toks.append(("str", re.sub(r"\\(.)", r"\1", raw)))
            else:
                toks.append(("sym", next(g for g in m.groups()[:6] + (m.group(9),) if g)))
        self._toks, self._i = toks, 0
        if not toks:
            return lambda d: True
        fn = self._or()
        if self._i != len(toks):
            raise ApiError(
                400, "invalid_search_filter", f"unexpected {toks[self._i][1]!r} in {text!r}"
            )
        return fn

    def _peek(self, upper: bool = True) -> str | None:
        if self._i >= len(self._toks):
            return None
        kind, value = self._toks[self._i]
        return value.upper() if upper and kind == "sym" else (value if kind == "sym" else None)

    def _take(self) -> tuple[str, str]:
        if self._i >= len(self._toks):
            raise ApiError(400, "invalid_search_filter", "filter ends too early")
        tok = self._toks[self._i]
        self._i += 1
        return tok

    def _or(self):
        parts = [self._and()]
        while self._peek() == "OR":
            self._take()
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda d: any(f(d) for f in parts))

    def _and(self):
        parts = [self._not()]
        while self._peek() == "AND":
            self._take()
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else (lambda d: all(f(d) for f in parts))

    def _not(self):
        if self._peek() == "NOT":
            self._take()
            inner = self._not()
            return lambda d: not inner(d)
        if self._peek() == "(":
            self._take()
            inner = self._or()
            if self._take()[1] != ")":
                raise ApiError(400, "invalid_search_filter", "missing )")
            return inner
        return self._condition()

    def _value(self) -> Any:
        kind, value = self._take()
        if kind == "sym":
            try:
                return float(value) if re.fullmatch(r"-?\d+(\.\d+)?", value) else value
            except ValueError:
                return value
        return value

    def _condition(self):
        kind, attr = self._take()
        if attr not in self.filterable:
            raise ApiError(
                400,
                "invalid_search_filter",
                f"Attribute `{attr}` is not filterable. Available filterable "
                f"attributes are: `{', '.join(self.filterable)}`.",
            )
        op = self._peek()
        if op in ("=", "!=", ">", ">=", "<", "<="):
            self._take()
            value = self._value()
            return lambda d: _compare(d.get(attr), op, value)
        if op == "IN" or op == "NOT":
            negate = op == "NOT"
            self._take()
            if negate:
                nxt = self._take()[1].upper()
                if nxt == "EXISTS":
                    return lambda d: attr not in d
                if nxt != "IN":
                    raise ApiError(400, "invalid_search_filter", f"unexpected NOT {nxt}")
            if self._take()[1] != "[":
                raise ApiError(400, "invalid_search_filter", "IN needs [")
            values = []
            while self._peek() != "]":
                values.append(self._value())
                if self._peek() == ",":
                    self._take()
            self._take()
            return lambda d: _compare(d.get(attr), "IN", values) != negate
        if op == "EXISTS":
            self._take()
            return lambda d: attr in d
        if op == "IS":
            self._take()
            negate = self._peek() == "NOT"
            if negate:
                self._take()
            if self._take()[1].upper() != "NULL":
                raise ApiError(400, "invalid_search_filter", "only IS NULL is supported")
            return lambda d: (attr in d and d[attr] is None) != negate
        raise ApiError(400, "invalid_search_filter", f"unexpected {op!r} after {attr}")


def _values(v: Any) -> list[Any]:
    if v is None:
        return []
    return list(v) if isinstance(v, list) else [v]


def _compare(have: Any, op: str, want: Any) -> bool:
    vals = _values(have)
    if op == "IN":
        wanted = {_norm(w) for w in want}
        return any(_norm(v) in wanted or _num_eq(v, wanted) for v in vals)
    if op == "=":
        return any(_norm(v) == _norm(want) or _num_eq(v, {want}) for v in vals)
    if op == "!=":
        return not any(_norm(v) == _norm(want) or _num_eq(v, {want}) for v in vals)
    nums = [v for v in vals if isinstance(v, int | float)]
    if not isinstance(want, int | float):
        return False
    return any({">": v > want, ">=": v >= want, "<": v < want, "<=": v <= want}[op] for v in nums)


def _num_eq(v: Any, wanted: set) -> bool:
    return isinstance(v, int | float) and any(isinstance(w, int | float) and w == v for w in wanted)


# -- an index --------------------------------------------------------------------------------


class Index:
    def __init__(self, uid: str, primary_key: str | None):
        self.uid = uid
        self.primary_key = primary_key
        self.settings = json.loads(json.dumps(SETTING_DEFAULTS))
        self.docs: dict[str, dict[str, Any]] = {}
        self.order: dict[str, int] = {}  # internal document ids: insertion order
        self._seq = itertools.count()
        self.created_at = self.updated_at = _now()
        self._postings: dict[str, list[tuple[str, int, int]]] | None = None
        self._vocab: list[str] = []

    def info(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "primaryKey": self.primary_key,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }

    def changed(self) -> None:
        self.updated_at = _now()
        self._postings = None

    def searchable(self) -> list[str]:
        attrs = self.settings["searchableAttributes"]
        if attrs == ["*"]:
            seen: dict[str, None] = {}
            for doc in self.docs.values():
                seen.update(dict.fromkeys(doc))
            return list(seen)
        return attrs

    def postings(self) -> dict[str, list[tuple[str, int, int]]]:
        """word → [(doc key, attribute rank, position)]"""
        if self._postings is None:
            out: dict[str, list[tuple[str, int, int]]] = {}
            for key, doc in self.docs.items():
                for rank, attr in enumerate(self.searchable()):
                    pos = 0
                    for value in _flatten(doc.get(attr)):
                        for w in words(str(value)):
                            out.setdefault(w, []).append((key, rank, pos))
                            pos += 1
                        pos += GAP
            self._postings = out
            self._vocab = sorted(out)
        return self._postings

    def prefixed(self, prefix: str) -> list[str]:
        """The words a prefix matches: all of them for a short prefix (milli's prefix
        database), else the prefix itself and at most MAX_PREFIX_COUNT others, in byte order
        (Python orders str by code point, which is UTF-8's byte order)."""
        self.postings()
        i = bisect.bisect_left(self._vocab, prefix)
        out = []
        others = 0
        short = len(prefix.encode()) <= PREFIX_DB_MAX_BYTES
        while i < len(self._vocab) and self._vocab[i].startswith(prefix):
            if self._vocab[i] != prefix:
                if not short and others >= MAX_PREFIX_COUNT:
                    break
                others += 1
            out.append(self._vocab[i])
            i += 1
        return out

    def stats(self) -> dict[str, Any]:
        dist: Counter = Counter()
        for doc in self.docs.values():
            dist.update(doc.keys())
        return {
            "numberOfDocuments": len(self.docs),
            "isIndexing": False,
            "fieldDistribution": dict(dist),
        }

    # -- search ----------------------------------------------------------------------------
    def search(self, params: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        known = {
            "q",
            "offset",
            "limit",
            "page",
            "hitsPerPage",
            "filter",
            "facets",
            "sort",
            "attributesToRetrieve",
            "matchingStrategy",
            "indexUid",
            "attributesToSearchOn",
            "showRankingScore",
        }
        unknown = set(params) - known
        if unknown:
            raise ApiError(
                400,
                "bad_request",
                f"Unknown field `{sorted(unknown)[0]}` (the fake "
                "Meilisearch does not implement it)",
            )
        strategy = params.get("matchingStrategy", "last")
        q = params.get("q") or ""
        terms = parse_q(q)
        if terms and strategy != "all":
            raise ApiError(400, "bad_request", "the fake implements matchingStrategy all only")
        filterable = self.settings["filterableAttributes"]
        flt = Filter(params.get("filter"), filterable)
        matches = self._match(terms, params.get("attributesToSearchOn"))
        keys = [k for k in (matches if terms else self.docs) if flt(self.docs[k])]
        sort = params.get("sort") or []
        for spec in sort:
            field = spec.split(":")[0]
            if field not in self.settings["sortableAttributes"]:
                raise ApiError(400, "invalid_search_sort", f"Attribute `{field}` is not sortable.")
        if sort and "sort" not in self.settings["rankingRules"]:
            raise ApiError(400, "invalid_search_sort", "The sort ranking rule must be specified.")
        out: dict[str, Any] = {"query": q}
        facets = params.get("facets")
        if facets:  # over every match, like Meilisearch (not capped by maxTotalHits)
            out["facetDistribution"] = self._facets(facets, keys)
        keys.sort(key=lambda k: self._rank(k, terms, matches.get(k), sort))
        keys = keys[: self.settings["pagination"]["maxTotalHits"]]
        if "page" in params or "hitsPerPage" in params:
            per = int(params.get("hitsPerPage", 20))
            page = int(params.get("page", 1))
            chosen = keys[(page - 1) * per : page * per] if per else []
            out.update(
                hitsPerPage=per,
                page=page,
                totalHits=len(keys),
                totalPages=math.ceil(len(keys) / per) if per else 0,
            )
        else:
            offset, limit = int(params.get("offset", 0)), int(params.get("limit", 20))
            chosen = keys[offset : offset + limit]
            out.update(offset=offset, limit=limit, estimatedTotalHits=len(keys))
        fields = params.get("attributesToRetrieve") or ["*"]
        out["hits"] = [self.project(self.docs[k], fields) for k in chosen]
        out["processingTimeMs"] = int((time.perf_counter() - started) * 1000)
        return out

    def project(self, doc: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        displayed = self.settings["displayedAttributes"]
        keep = [
            k
            for k in doc
            if (fields == ["*"] or k in fields) and (displayed == ["*"] or k in displayed)
        ]
        return {k: doc[k] for k in keep}

    def _facets(self, facets: list[str], keys: list[str]) -> dict[str, dict[str, int]]:
        out = {}
        for facet in facets:
            if facet not in self.settings["filterableAttributes"]:
                raise ApiError(
                    400, "invalid_search_facets", f"Attribute `{facet}` is not filterable."
                )
            counts: Counter = Counter()
            for k in keys:
                for v in _values(self.docs[k].get(facet)):
                    counts[str(v) if not isinstance(v, str) else v] += 1
            limit = self.settings["faceting"]["maxValuesPerFacet"]
            out[facet] = dict(sorted(counts.items())[:limit])
        return out

    def _match(self, terms: list[tuple], on: list[str] | None) -> dict[str, list[list[tuple]]]:
        """doc key → for each term, its matches (attribute rank, position, exact)."""
        if not terms:
            return {}
        post = self.postings()
        allowed = None
        if on:
            attrs = self.searchable()
            allowed = {attrs.index(a) for a in on if a in attrs}
        per_term: list[dict[str, list[tuple]]] = []
        for term in terms:
            found: dict[str, list[tuple]] = {}
            if term[0] == "word":
                _, word, prefix = term
                for w in self.prefixed(word) if prefix else [word]:
                    for key, rank, pos in post.get(w, ()):
                        found.setdefault(key, []).append((rank, pos, w == word))
            else:
                seq = term[1]
                if seq:
                    later = [set(post.get(w, ())) for w in seq[1:]]
                    for key, rank, pos in post.get(seq[0], ()):
                        if all((key, rank, pos + i + 1) in s for i, s in enumerate(later)):
                            found.setdefault(key, []).append((rank, pos, True))
            if allowed is not None:
                found = {k: [m for m in ms if m[0] in allowed] for k, ms in found.items()}
                found = {k: ms for k, ms in found.items() if ms}
            per_term.append(found)
        common = set(per_term[0])
        for found in per_term[1:]:
            common &= set(found)
        return {k: [found[k] for found in per_term] for k in sorted(common, key=self.order.get)}

    def _rank(
        self, key: str, terms: list[tuple], matches: list[list[tuple]] | None, sort: list[str]
    ) -> tuple:
        doc = self.docs[key]
        out: list[Any] = []
        for rule in self.settings["rankingRules"]:
            if rule == "sort":
                for spec in sort:
                    field, _, direction = spec.partition(":")
                    out.append(_order_value(doc.get(field), direction))
            elif ":" in rule:
                field, _, direction = rule.partition(":")
                out.append(_order_value(doc.get(field), direction))
            elif not matches:
                continue  # placeholder search: only sort and custom rules
            elif rule == "proximity":
                out.append(_proximity(matches))
            elif rule == "attribute":
                best = [min(m[:2] for m in ms) for ms in matches]  # per term (rank, position)
                out.append((max(b[0] for b in best), sum(b[1] for b in best)))
            elif rule == "exactness":
                out.append(-sum(any(m[2] for m in ms) for ms in matches))
            # words (all terms match) and typo (none) rank every match the same
        out.append(self.order[key])
        return tuple(out)


def keys_all(index: Index, flt: Filter) -> list[str]:
    return [k for k, d in index.docs.items() if flt(d)]


def _order_value(value: Any, direction: str) -> tuple:
    if value is None or isinstance(value, list | dict):
        return (1, 0)  # documents without the field come last, both ways
    if isinstance(value, int | float):
        return (0, -value if direction == "desc" else value)
    return (0, _Desc(value) if direction == "desc" else value)


class _Desc:
    def __init__(self, v: Any):
        self.v = v

    def __lt__(self, other: _Desc) -> bool:
        return self.v > other.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.v == other.v


def _proximity(matches: list[list[tuple]]) -> int:
    total = 0
    for a, b in itertools.pairwise(matches):
        best = 8
        for ra, pa, _ in a:
            for rb, pb, _ in b:
                if ra == rb:
                    best = min(best, max(1, min(7, abs(pb - pa))))
        total += best
    return total


def _flatten(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return [x for v in value for x in _flatten(v)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _flatten(v)]
    return [value]


def parse_q(q: str) -> list[tuple]:
    """Query terms: ("phrase", [words]) or ("word", word, prefix); the last word is a prefix
    unless the query ends with a space (or a closing quote)."""
    terms: list[tuple] = []
    for m in re.finditer(r'"([^"]*)"?|(\S+)', q):
        if m.group(1) is not None:
            ws = words(m.group(1))
            if ws:
                terms.append(("phrase", ws))
        else:
            for w in words(m.group(2)):
                terms.append(("word", w, False))
    if len(terms) > WORDS_LIMIT:
        return terms[:WORDS_LIMIT]  # milli stops reading there: its last term is no prefix
    if terms and terms[-1][0] == "word" and not q[-1:].isspace() and not q.rstrip().endswith('"'):
        terms[-1] = ("word", terms[-1][1], True)
    return terms


# -- the server ------------------------------------------------------------------------------


class FakeMeilisearch:
    """The fake server. `url` once started; `requests` records (method, path, body)."""

    def __init__(self, master_key: str | None = None, task_delay: float = 0.0):
        self.master_key = master_key
        self.task_delay = task_delay
        self.indexes: dict[str, Index] = {}
        self.tasks: dict[int, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, Any]] = []
        self._failures: list[dict[str, Any]] = []
        self._uids = itertools.count()
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self.dumps = 0
        self.snapshots = 0

    # -- life ------------------------------------------------------------------------------
    def start(self) -> FakeMeilisearch:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                fake._handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        threading.Thread(target=self._work, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        self._queue.put(None)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail(
        self,
        times: int = 1,
        status: int = 503,
        drop: bool = False,
        path: str = "",
        *,
        lose_reply: bool = False,
        method: str | None = None,
        delay: float = 0.0,
        repeat: bool = False,
        during: Callable[[], None] | None = None,
    ) -> None:
        """Answer the next `times` requests whose path matches `path` (re.search) and method
        `method` (any: None) with an error; `drop`: close the connection instead;
        `lose_reply`: do what the request asks, then close the connection without a reply;
        `delay`: answer normally, after `delay` seconds; `repeat`: carry the request out
        twice, then answer (a proxy that sends a request again); `during`: called (in the
        server's thread) when such a request has arrived, before it is answered, so that a
        test can look at its client while the client waits."""
        with self._lock:
            self._failures.append(
                {
                    "times": times,
                    "status": status,
                    "drop": drop,
                    "lose_reply": lose_reply,
                    "path": path,
                    "method": method,
                    "delay": delay,
                    "repeat": repeat,
                    "during": during,
                }
            )

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p, _ in self.requests if method is None or m == method]

    # -- HTTP ------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        parts = urlsplit(h.path)
        path = unquote(parts.path).strip("/")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._send(h, 400, ApiError(400, "malformed_payload", "invalid JSON").body())
            return
        with self._lock:
            self.requests.append((h.command, h.path.lstrip("/"), body))
            failure = next(
                (
                    f
                    for f in self._failures
                    if re.search(f["path"], path) and f["method"] in (None, h.command)
                ),
                None,
            )
            if failure:
                failure["times"] -= 1
                if failure["times"] <= 0:
                    self._failures.remove(failure)
        if failure and failure["during"]:
            failure["during"]()
        if failure and failure["delay"]:
            time.sleep(failure["delay"])
            failure = None
        if failure and (failure["lose_reply"] or failure["repeat"]):
            try:
                self._auth(h, path)
                self._route(h.command, path, query, body)
            except ApiError:
                pass
        if failure and (failure["drop"] or failure["lose_reply"]):
            h.close_connection = True
            h.connection.shutdown(2)
            return
        if failure and not failure["repeat"]:
            self._send(
                h,
                failure["status"],
                ApiError(failure["status"], "internal", "injected failure", "internal").body(),
            )
            return
        try:
            self._auth(h, path)
            status, payload = self._route(h.command, path, query, body)
        except ApiError as err:
            status, payload = err.status, err.body()
        self._send(h, status, payload)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
            h.close_connection = True

    def _auth(self, h: BaseHTTPRequestHandler, path: str) -> None:
        if not self.master_key or path == "health":
            return
        auth = h.headers.get("Authorization") or ""
        if not auth.startswith("Bearer ") or auth == "Bearer None":
            raise ApiError(
                401, "missing_authorization_header", "The Authorization header is missing.", "auth"
            )
        if auth[7:] != self.master_key:
            raise ApiError(403, "invalid_api_key", "The provided API key is invalid.", "auth")

    def _index(self, uid: str) -> Index:
        index = self.indexes.get(uid)
        if index is None:
            raise ApiError(404, "index_not_found", f"Index `{uid}` not found.")
        return index

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        seg = path.split("/") if path else []
        with self._lock:
            if seg == ["health"]:
                return 200, {"status": "available"}
            if seg == ["version"]:
                return 200, {"pkgVersion": "1.11.3", "commitSha": "fake", "commitDate": "fake"}
            if seg == ["stats"]:
                return 200, {
                    "databaseSize": 0,
                    "lastUpdate": _now(),
                    "indexes": {u: i.stats() for u, i in self.indexes.items()},
                }
            if seg == ["tasks"]:
                return 200, self._task_list(query)
            if len(seg) == 2 and seg[0] == "tasks":
                task = self.tasks.get(int(seg[1]))
                if task is None:
                    raise ApiError(404, "task_not_found", f"Task `{seg[1]}` not found.")
                return 200, dict(task)
            if seg == ["multi-search"] and method == "POST":
                if (body or {}).get("federation") is not None:
                    raise ApiError(400, "bad_request", "the fake does not implement federation")
                return 200, {
                    "results": [
                        {"indexUid": q["indexUid"], **self._index(q["indexUid"]).search(q)}
                        for q in body["queries"]
                    ]
                }
            if seg == ["swap-indexes"] and method == "POST":
                return self._enqueue("indexSwap", None, {"swaps": body})
            if seg == ["dumps"] and method == "POST":
                return self._enqueue("dumpCreation", None, {})
            if seg == ["snapshots"] and method == "POST":
                return self._enqueue("snapshotCreation", None, {})
            if seg == ["indexes"]:
                if method == "POST":
                    return self._enqueue(
                        "indexCreation", body["uid"], {"primaryKey": body.get("primaryKey")}
                    )
                results = [i.info() for _, i in sorted(self.indexes.items())]
                limit, offset = int(query.get("limit", 20)), int(query.get("offset", 0))
                return 200, {
                    "results": results[offset : offset + limit],
                    "offset": offset,
                    "limit": limit,
                    "total": len(results),
                }
            if len(seg) >= 2 and seg[0] == "indexes":
                return self._index_route(method, seg[1], seg[2:], query, body)
        raise ApiError(404, "not_found", f"{method} /{path} is not implemented by the fake")

    def _index_route(
        self, method: str, uid: str, rest: list[str], query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        if not rest:
            if method == "DELETE":
                return self._enqueue("indexDeletion", uid, {})
            return 200, self._index(uid).info()
        if rest == ["settings"]:
            if method == "PATCH":
                _check_settings(body)
                return self._enqueue("settingsUpdate", uid, body)
            return 200, _as_returned(self._index(uid).settings)
        if rest == ["stats"]:
            return 200, self._index(uid).stats()
        if rest == ["search"]:
            return 200, self._index(uid).search(body or {})
        if rest == ["documents"] and method in ("POST", "PUT"):
            docs = body if isinstance(body, list) else [body]
            return self._enqueue(
                "documentAdditionOrUpdate",
                uid,
                {"receivedDocuments": len(docs), "indexedDocuments": None},
                payload={
                    "docs": docs,
                    "primaryKey": query.get("primaryKey"),
                    "replace": method == "POST",
                },
            )
        if rest == ["documents", "delete-batch"] and method == "POST":
            return self._enqueue(
                "documentDeletion",
                uid,
                {"providedIds": len(body), "deletedDocuments": None},
                payload={"ids": [str(i) for i in body]},
            )
        if rest == ["documents", "fetch"] and method == "POST":
            index = self._index(uid)
            body = body or {}
            flt = Filter(body.get("filter"), index.settings["filterableAttributes"])
            keys = keys_all(index, flt)
            offset, limit = int(body.get("offset", 0)), int(body.get("limit", 20))
            fields = body.get("fields") or ["*"]
            return 200, {
                "results": [
                    index.project(index.docs[k], fields) for k in keys[offset : offset + limit]
                ],
                "offset": offset,
                "limit": limit,
                "total": len(keys),
            }
        if len(rest) == 2 and rest[0] == "documents" and method == "GET":
            index = self._index(uid)
            doc = index.docs.get(rest[1])
            if doc is None:
                raise ApiError(404, "document_not_found", f"Document `{rest[1]}` not found.")
            fields = query["fields"].split(",") if query.get("fields") else ["*"]
            return 200, index.project(doc, fields)
        raise ApiError(
            404,
            "not_found",
            f"{method} indexes/{uid}/{'/'.join(rest)} is not implemented by the fake",
        )

    # -- tasks -----------------------------------------------------------------------------
    def _task_list(self, query: dict[str, str]) -> dict[str, Any]:
        """GET /tasks: filtered by types, indexUids, statuses (comma-separated), newest first
        from task `from`, `limit` of them (default 20), with `next` for the following page."""
        wanted = {
            k: set(query[k].split(",")) for k in ("types", "indexUids", "statuses") if k in query
        }
        field = {"types": "type", "indexUids": "indexUid", "statuses": "status"}
        start = int(query["from"]) if "from" in query else None
        found = [
            dict(t)
            for t in sorted(self.tasks.values(), key=lambda t: -t["uid"])
            if (start is None or t["uid"] <= start)
            and all(t[field[k]] in values for k, values in wanted.items())
        ]
        limit = int(query.get("limit", 20))
        return {
            "results": found[:limit],
            "total": len(self.tasks),
            "limit": limit,
            "from": found[0]["uid"] if found else None,
            "next": found[limit]["uid"] if len(found) > limit else None,
        }

    def _enqueue(
        self,
        kind: str,
        uid: str | None,
        details: dict[str, Any],
        payload: dict[str, Any] | None = None,
    ) -> tuple[int, Any]:
        task_uid = next(self._uids)
        task = {
            "uid": task_uid,
            "batchUid": None,
            "indexUid": uid,
            "status": "enqueued",
            "type": kind,
            "canceledBy": None,
            "details": details,
            "error": None,
            "duration": None,
            "enqueuedAt": _now(),
            "startedAt": None,
            "finishedAt": None,
        }
        self.tasks[task_uid] = task
        self._queue.put((task_uid, payload or {}))
        return 202, {
            "taskUid": task_uid,
            "indexUid": uid,
            "status": "enqueued",
            "type": kind,
            "enqueuedAt": task["enqueuedAt"],
        }

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            task_uid, payload = item
            with self._lock:
                task = self.tasks[task_uid]
                task.update(status="processing", startedAt=_now())
            if self.task_delay:
                time.sleep(self.task_delay)
            with self._lock:
                try:
                    self._process(task, payload)
                    task["status"] = "succeeded"
                except ApiError as err:
                    task.update(status="failed", error=err.body())
                task["finishedAt"] = _now()
                task["duration"] = "PT0S"

    def _process(self, task: dict[str, Any], payload: dict[str, Any]) -> None:
        kind, uid, details = task["type"], task["indexUid"], task["details"]
        if kind == "indexCreation":
            if uid in self.indexes:
                raise ApiError(409, "index_already_exists", f"Index `{uid}` already exists.")
            _check_uid(uid)
            self.indexes[uid] = Index(uid, details.get("primaryKey"))
        elif kind == "indexDeletion":
            self._index(uid)
            del self.indexes[uid]
        elif kind == "settingsUpdate":
            index = self.indexes.get(uid) or self.indexes.setdefault(uid, Index(uid, None))
            for key, value in details.items():
                if isinstance(value, dict) and isinstance(index.settings.get(key), dict):
                    index.settings[key].update(value)
                else:
                    index.settings[key] = SETTING_DEFAULTS[key] if value is None else value
            index.changed()
        elif kind == "documentAdditionOrUpdate":
            _check_uid(uid)
            index = self.indexes.get(uid) or self.indexes.setdefault(uid, Index(uid, None))
            pk = index.primary_key or payload.get("primaryKey")
            if pk is None:
                raise ApiError(
                    400, "index_primary_key_no_candidate_found", "The primary key inference failed."
                )
            index.primary_key = pk
            for doc in payload["docs"]:
                key = doc.get(pk)
                if key is None:
                    raise ApiError(
                        400,
                        "missing_document_id",
                        f"Document doesn't have a `{pk}` attribute: `{doc}`.",
                    )
                if not _DOC_ID.fullmatch(str(key)):
                    raise ApiError(
                        400, "invalid_document_id", f"Document identifier `{key}` is invalid."
                    )
            for doc in payload["docs"]:
                key = str(doc[pk])
                if payload["replace"] or key not in index.docs:
                    index.docs[key] = doc
                else:
                    index.docs[key] = {**index.docs[key], **doc}
                index.order.setdefault(key, next(index._seq))
            details["indexedDocuments"] = len(payload["docs"])
            index.changed()
        elif kind == "documentDeletion":
            index = self._index(uid)
            gone = [i for i in payload["ids"] if index.docs.pop(i, None) is not None]
            for i in gone:
                index.order.pop(i, None)
            details["deletedDocuments"] = len(gone)
            index.changed()
        elif kind == "indexSwap":
            for swap in details["swaps"]:
                a, b = swap["indexes"]
                ia, ib = self._index(a), self._index(b)
                self.indexes[a], self.indexes[b] = ib, ia
                ia.uid, ib.uid = b, a
                ia.changed()
                ib.changed()
        elif kind == "dumpCreation":
            self.dumps += 1
            details["dumpUid"] = f"fake-{self.dumps}"
        elif kind == "snapshotCreation":
            self.snapshots += 1


def _as_returned(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as Meilisearch returns them: the set-like ones sorted."""
    out = json.loads(json.dumps(settings))
    for key in (
        "filterableAttributes",
        "sortableAttributes",
        "stopWords",
        "dictionary",
        "separatorTokens",
        "nonSeparatorTokens",
    ):
        out[key] = sorted(out[key])
    for key in ("disableOnAttributes", "disableOnWords"):
        out["typoTolerance"][key] = sorted(out["typoTolerance"][key])
    return out


def _check_uid(uid: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,400}", uid or ""):
        raise ApiError(400, "invalid_index_uid", f"`{uid}` is not a valid index uid.")


def _check_settings(body: Any) -> None:
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "settings must be an object")
    for key, value in body.items():
        if key not in SETTING_DEFAULTS:
            raise ApiError(400, "bad_request", f"Unknown field `{key}`")
        default = SETTING_DEFAULTS[key]
        if isinstance(default, dict) and isinstance(value, dict):
            for sub in value:
                if sub not in default:
                    raise ApiError(
                        400,
                        f"invalid_settings_{_snake(key)}",
                        f"Unknown field `{sub}` inside `.{key}`",
                    )
    for rule in body.get("rankingRules") or ():
        if rule not in BUILTIN_RULES and not _CUSTOM_RULE.fullmatch(rule):
            raise ApiError(
                400, "invalid_settings_ranking_rules", f"`{rule}` ranking rule is invalid."
            )


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", r"_\1", name).lower()
