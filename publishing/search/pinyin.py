"""pypinyin's lazy_pinyin (style NORMAL) from compact tables cached on disk.

Loading pypinyin costs a short CLI run more than its publish: two JSON dictionaries (47k
phrases as lists of lists, 42k characters) and a prefix set built from every phrase, 0.3 s and
more on our 2-core machine, in every process that indexes a name. The search index needs one
reading per character, so the tables keep exactly that: each phrase's and each character's
NORMAL-style syllables, as pypinyin's own converter gives them, plus the phrase prefixes its
segmenter walks. They are built once per pypinyin release and Python version (marshal) and load
in a few tens of milliseconds. `lazy_pinyin` below follows pypinyin's segmentation (simpleseg,
then mmseg in its strict mode) step for step; a test compares the two on many names and on
random text.
"""

from __future__ import annotations

import importlib.util
import marshal
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from publishing.gcpause import gc_paused

_FORMAT = 1
_MEMO_LIMIT = 50_000


@dataclass(frozen=True)
class Tables:
    hans: re.Pattern[str]  # pypinyin's RE_HANS: a run of characters that have pinyin
    phrases: dict[str, str]  # phrase → its syllables, space-separated
    chars: dict[str, str]  # character → its syllable
    prefixes: frozenset[str]  # every prefix of every phrase (pypinyin's mmseg prefix set)


def _pypinyin_dir() -> Path:
    spec = importlib.util.find_spec("pypinyin")  # finds, does not import (that is the cost)
    assert spec is not None and spec.origin is not None, "pypinyin is a dependency"
    return Path(spec.origin).parent


def _cache_file() -> Path:
    """One file per pypinyin data and Python version: a new release rebuilds it."""
    folder = _pypinyin_dir()
    stamp = "-".join(
        f"{st.st_size:x}{st.st_mtime_ns:x}"
        for st in (os.stat(folder / "phrases_dict.json"), os.stat(folder / "pinyin_dict.json"))
    )
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "disclosure" / f"pinyin-{_FORMAT}-py{sys.version_info[0]}{sys.version_info[1]}-{stamp}.marshal"


def build_tables() -> Tables:
    """The tables, from pypinyin's dictionaries, each reading styled by its own converter."""
    os.environ.setdefault("PYPINYIN_NO_DICT_COPY", "1")  # we only read its dictionaries
    with gc_paused():  # 100k+ small lists, no cycles: the collector would walk them again and again
        from pypinyin import Style
        from pypinyin.constants import PHRASES_DICT, PINYIN_DICT, RE_HANS
        from pypinyin.converter import DefaultConverter
        from pypinyin.seg.mmseg import seg

        converter = DefaultConverter()
        styled: dict[str, str] = {}  # a toned reading → NORMAL (1,500 readings, 90k uses)

        def normal(han: str, reading: str) -> str:
            found = styled.get(reading)
            if found is None:
                found = styled[reading] = converter.convert_style(han, reading, Style.NORMAL, True)
            return found

        def joined(han: str, readings: list[str]) -> str:
            # what DefaultConverter.convert returns, without the empty items it drops
            return " ".join(s for s in (normal(h, r) for h, r in zip(han, readings, strict=True)) if s)

        return Tables(
            hans=RE_HANS,
            phrases={p: joined(p, [item[0] for item in py]) for p, py in PHRASES_DICT.items()},
            chars={chr(c): joined(chr(c), [py.split(",")[0]]) for c, py in PINYIN_DICT.items()},
            prefixes=frozenset(seg._prefix_set._set),
        )


def _dump(tables: Tables, path: Path) -> None:
    """Best effort: written whole or not at all (processes starting together may race)."""
    data = marshal.dumps(
        (_FORMAT, tables.hans.pattern, tables.hans.flags, tables.phrases, tables.chars, tables.prefixes)
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".pinyin-")
    except OSError:
        return  # a read-only home: every process builds the tables for itself
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)  # a full disk: no half-written file left behind


def _load(path: Path) -> Tables | None:
    try:
        fmt, pattern, flags, phrases, chars, prefixes = marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if fmt != _FORMAT:
        return None
    return Tables(re.compile(pattern, flags), phrases, chars, prefixes)


@lru_cache(maxsize=1)
def tables() -> Tables:
    path = _cache_file()
    with gc_paused():
        found = _load(path)
    if found is None:
        found = build_tables()
        _dump(found, path)
    return found


def _simple_seg(text: str, hans: re.Pattern[str]) -> list[str]:
    """pypinyin's simpleseg: alternating runs of characters with and without pinyin."""
    out: list[str] = []
    run, run_hans = "", None
    for ch in text:
        is_hans = hans.match(ch) is not None
        if is_hans is run_hans:
            run += ch
        else:
            if run:
                out.append(run)
            run, run_hans = ch, is_hans
    if run:
        out.append(run)
    return out


def _cut(text: str, t: Tables) -> list[str]:
    """pypinyin's mmseg Seg.cut with no_non_phrases=True (its default segmenter)."""
    out: list[str] = []
    remain = text
    while remain:
        last_valid, last_index = "", 0
        for index in range(len(remain)):
            word = remain[: index + 1]
            if word in t.prefixes:
                if word in t.phrases:
                    last_valid, last_index = word, index + 1
            else:
                if last_valid:
                    out.append(last_valid)
                    remain = remain[last_index:]
                else:
                    out.append(remain[0])
                    remain = remain[1:]
                break
        else:  # the whole rest is a prefix of some phrase
            if last_valid:
                out.append(last_valid)
                remain = remain[last_index:]
            else:
                out.extend(remain if remain not in t.phrases else [remain])
                break
    return out


def _convert(text: str, t: Tables) -> list[str]:
    out: list[str] = []
    for part in _simple_seg(text, t.hans):
        if not t.hans.match(part):
            out.append(part)  # no pinyin: kept as it is, as one item (errors="default")
            continue
        for word in _cut(part, t):
            found = t.phrases.get(word)
            if found is not None:
                out.extend(found.split(" "))
            else:
                out.extend(t.chars.get(ch, ch) for ch in word)
    return out


_memo: dict[str, list[str]] = {}


def lazy_pinyin(text: str) -> list[str]:
    """pypinyin.lazy_pinyin(text) with its default converter (style NORMAL, ü as v).

    Memoised per text: names repeat their words (烟台, 有限公司 …)."""
    found = _memo.get(text)
    if found is None:
        if len(_memo) > _MEMO_LIMIT:
            _memo.clear()
        found = _memo[text] = _convert(text, tables())
    return list(found)
