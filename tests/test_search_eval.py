"""Search evaluation: known-item queries over sample data, recall@10 and MRR on both databases.

The sample world (publishing.sample.generate, 3,000 entities) is published once per backend and
synced into the embedded index. Queries are derived from the published entities with a seeded
random generator, each with the entity it means: partial names (2–4 characters from the middle),
parts across the administrative-prefix boundary, traditional characters (OpenCC s2t), full-width
forms and ideographic spaces, USCCs in lower case / spaced / as a prefix, pinyin (joined and
spaced) and initials of a name part. A part is used only when at most MAX_AMBIGUITY published
entities contain it (otherwise the query does not mean one entity).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

import pytest
from pypinyin import lazy_pinyin
from sqlalchemy import select

from publishing.contract import DISTRICT_SHORT, DISTRICTS
from publishing.models import Entity
from publishing.publish import publish
from publishing.sample import generate
from publishing.search.base import SearchQuery
from publishing.search.embedded import EmbeddedSearch
from publishing.search.sync import sync
from publishing.search.text import name_key
from tests.test_search import fresh_engine

ENTITIES = 3000
SEED = 20261127
TODAY = date(2026, 11, 27)
PER_TYPE = 16
MAX_AMBIGUITY = 5
MIN_RECALL = 0.98
_PREFIXES = sorted(
    {
        *DISTRICTS.values(),
        *DISTRICT_SHORT.values(),
        "烟台市",
        "烟台开发区",
        "烟台高新区",
        "烟台",
        "山东",
        "蓬莱市",
    },
    key=len,
    reverse=True,
)
_FULL = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})


@dataclass(frozen=True)
class Case:
    kind: str
    q: str
    target: str  # entity id


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval-sample")
    generate(out, ENTITIES, seed=SEED, today=TODAY)
    return out


@pytest.fixture(scope="module", params=("sqlite", "postgresql"))
def eval_engine(request, sample_dir, tmp_path_factory):
    """A database of its own with the sample world published and indexed (module scope)."""
    with fresh_engine(request.param, tmp_path_factory, "eval") as engine:
        result = publish(
            sorted(sample_dir.iterdir()), engine=engine, today=TODAY, show_progress=False
        )
        assert result.published, "the sample must publish cleanly"
        assert sync(engine, EmbeddedSearch(engine)) == result.events
        yield engine


# -- the queries -----------------------------------------------------------------------------


class World:
    def __init__(self, entities):
        self.entities = entities  # (id, uscc, names)
        self.keys = [(eid, [name_key(n) for n in names]) for eid, _, names in entities]
        self._pinyin = None

    @property
    def pinyin(self):
        if self._pinyin is None:
            self._pinyin = [(eid, [lazy_pinyin(k) for k in keys]) for eid, keys in self.keys]
        return self._pinyin

    def holders(self, part: str) -> int:
        k = name_key(part)
        return sum(any(k in n for n in names) for _, names in self.keys)

    def pinyin_holders(self, sylls: list[str], initials: bool) -> int:
        def has(items):
            seq = [s[0] for s in items] if initials else items
            want = [s[0] for s in sylls] if initials else sylls
            return any(seq[i : i + len(want)] == want for i in range(len(seq) - len(want) + 1))

        return sum(any(has(p) for p in names) for _, names in self.pinyin)

    def code_holders(self, prefix: str) -> int:
        return sum((u or "").startswith(prefix) for _, u, _ in self.entities)


def _middle(rng: random.Random, name: str, size: int) -> str | None:
    if len(name) < size + 2:
        return None
    start = rng.randrange(1, len(name) - size)
    return name[start : start + size]


def _boundary(name: str) -> str | None:
    for prefix in _PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix) + 2:
            k = len(prefix)
            return name[k - 2 : k + 2]
    return None


def build_cases(world: World) -> list[Case]:
    import opencc

    s2t = opencc.OpenCC("s2t")
    rng = random.Random(SEED)
    order = list(world.entities)
    rng.shuffle(order)
    cases: dict[str, list[Case]] = {
        k: []
        for k in (
            "partial",
            "cross-word",
            "traditional",
            "full-width",
            "uscc-lower",
            "uscc-spaced",
            "uscc-prefix",
            "uscc-full-width",
            "pinyin",
            "pinyin-spaced",
            "initials",
        )
    }

    def want(kind: str) -> bool:
        return len(cases[kind]) < PER_TYPE

    def add(kind: str, q: str | None, eid: str) -> None:
        if q and want(kind):
            cases[kind].append(Case(kind, q, eid))

    for eid, code, names in order:
        name = names[0]
        part = _middle(rng, name, rng.choice((2, 3, 4)))
        if want("partial") and part and world.holders(part) <= MAX_AMBIGUITY:
            add("partial", part, eid)
        cross = _boundary(name)
        if want("cross-word") and cross and world.holders(cross) <= MAX_AMBIGUITY:
            add("cross-word", cross, eid)
        part = _middle(rng, name, 4)
        if (
            want("traditional")
            and part
            and s2t.convert(part) != part
            and world.holders(part) <= MAX_AMBIGUITY
        ):
            add("traditional", s2t.convert(part), eid)
        a, b = _middle(rng, name, 2), _middle(rng, name, 3)
        if want("full-width") and a and b and a not in b and world.holders(b) <= MAX_AMBIGUITY:
            add("full-width", f"{b}\u3000{a}".translate(_FULL), eid)
        if code:
            add("uscc-lower", code.lower(), eid)
            add("uscc-spaced", f"{code[:6]} {code[6:10]} {code[10:14]} {code[14:]}", eid)
            add("uscc-full-width", code.translate(_FULL), eid)
            if want("uscc-prefix"):
                n = next(
                    (n for n in range(8, 18) if world.code_holders(code[:n]) <= MAX_AMBIGUITY), 18
                )
                add("uscc-prefix", code[:n], eid)
        part = _middle(rng, name, 3)
        if (want("pinyin") or want("pinyin-spaced")) and part:
            sylls = lazy_pinyin(name_key(part))
            if (
                len(sylls) == 3
                and all(s.isalpha() for s in sylls)
                and world.pinyin_holders(sylls, False) <= MAX_AMBIGUITY
            ):
                add("pinyin", "".join(sylls), eid)
                add("pinyin-spaced", " ".join(sylls), eid)
        part = _middle(rng, name, 5)
        if want("initials") and part:
            sylls = lazy_pinyin(name_key(part))
            if (
                len(sylls) == 5
                and all(s.isalpha() for s in sylls)
                and world.pinyin_holders(sylls, True) <= MAX_AMBIGUITY
            ):
                add("initials", "".join(s[0] for s in sylls), eid)
        if not any(want(k) for k in cases):
            break
    return [c for group in cases.values() for c in group]


def _world(engine) -> World:
    table = Entity.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(table.c.id, table.c.uscc, table.c.name, table.c.former_names).order_by(
                table.c.id
            )
        ).all()
    return World([(r.id, r.uscc, [r.name, *(r.former_names or [])]) for r in rows])


def run_eval(backend, engine, label: str, capsys) -> None:
    """Every case's query on the backend: print recall@10 and MRR@10, fail below MIN_RECALL."""
    cases = build_cases(_world(engine))
    assert len(cases) >= 100, f"only {len(cases)} queries could be derived"
    ranks: dict[Case, int | None] = {}
    for case in cases:
        hits = backend.search(SearchQuery(q=case.q, limit=10, facets=False)).hits
        found = [i for i, h in enumerate(hits, 1) if h.type == "entity" and h.id == case.target]
        ranks[case] = found[0] if found else None
    recall = sum(r is not None for r in ranks.values()) / len(ranks)
    mrr = sum(1 / r for r in ranks.values() if r) / len(ranks)
    kinds = sorted({c.kind for c in cases})
    per_kind = ", ".join(
        f"{k} {sum(ranks[c] is not None for c in cases if c.kind == k)}/"
        f"{sum(c.kind == k for c in cases)}"
        for k in kinds
    )
    missed = [f"{c.kind}:{c.q}→{c.target}" for c, r in ranks.items() if r is None]
    report = (
        f"search eval [{label}]: {len(cases)} queries, "
        f"recall@10 = {recall:.3f}, MRR@10 = {mrr:.3f} ({per_kind})"
    )
    with capsys.disabled():
        print("\n" + report + (f"\n  missed: {missed}" if missed else ""))
    assert recall >= MIN_RECALL, f"{report}; missed: {missed}"


def test_search_eval(eval_engine, capsys):
    run_eval(EmbeddedSearch(eval_engine), eval_engine, eval_engine.dialect.name, capsys)
