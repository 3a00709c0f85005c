"""What the Meilisearch backend (publishing.search.meili) sends and reads back, without a
client: the index settings, a search document as a Meilisearch document (Chinese spelled as
ASCII tokens, pinyin and initials, code prefixes, district aliases, ranking fields) and back,
and a parsed query as the q, filters, exact tiers and page window of a multi-search. Why each
is encoded so is told in publishing.search.meili's docstring."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import date
from itertools import accumulate
from typing import Any

from publishing.contract import _DISTRICT_ALIASES, DISTRICT_SHORT, DISTRICTS
from publishing.search.base import MATCH_CAP, SearchQuery
from publishing.search.text import (
    CJK_CLASS,
    ParsedQuery,
    Term,
    former_keys,
    name_key,
    name_texts,
    normalize,
    pinyin_items,
    runs,
)

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
    "former_key",
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
    """Joined pinyin and initials of every run of consecutive characters of the names, and of
    their forms without a bracketed part where name_texts has those (text.pinyin_items:
    tongbaixintiaoweipin, tbxtwp of 通百鑫（烟台）调味品); each token once."""
    py: dict[str, None] = {}
    pyi: dict[str, None] = {}
    for items in (f for name in names for f in pinyin_items(normalize(name))):
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


def json_clean(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` as it comes back from JSON (dates as strings, tuples as lists), as Meilisearch
    stores it."""
    return json.loads(json.dumps(doc, ensure_ascii=False, default=str))


def _day(iso: str | None) -> int | None:
    try:
        return date.fromisoformat(iso[:10]).toordinal() if iso else None
    except ValueError:
        return None


def index_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """The Meilisearch document of a search document: its fields plus what is searched,
    filtered and ranked on."""
    out = json_clean({k: doc.get(k) for k in DOC_FIELDS})
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
            # the 曾用名 as exact-name keys (as the embedded index's former_tag)
            "former_key": former_keys(key, names[1:]),
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
    """Filters of the exact tiers, best first: the code, a code prefix, then the name: the
    entities of that name, those that had it (曾用名), the records under it, as the embedded
    backend orders them. A `legacy` index lacks code_prefix and former_key: the name alone."""
    tiers = []
    if pq.code:
        tiers.append(f"uscc = {literal(pq.code)} OR reg_no = {literal(pq.code)}")
        if not legacy:  # entities only have code prefixes
            tiers.append(f"code_prefix = {literal(pq.code)}")
    key = literal(pq.name_key)
    if len(pq.name_key) >= 2 and not legacy:
        tiers += [f'name_key = {key} AND type = "entity"', f"former_key = {key}"]
    if pq.name_key:
        tiers.append(f"name_key = {key}")
    return tiers


def window(offset: int, limit: int) -> tuple[dict[str, int], int]:
    """page/hitsPerPage (exact totals) covering [offset, offset + limit), and where the wanted
    hits start in that page."""
    if limit <= 0:
        return {"hitsPerPage": 0, "page": 1}, 0
    if offset % limit == 0:
        return {"hitsPerPage": limit, "page": offset // limit + 1}, 0
    return {"hitsPerPage": offset + limit, "page": 1}, offset
