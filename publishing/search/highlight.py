"""Highlighting: HTML-escaped text with <mark>…</mark> around what the query matched.

Matching is done on the normalised text (so 龍口 marks 龙口 and ＡＢＣ marks abc) and mapped
back to the original characters; pinyin and initials queries mark the characters they spell.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from publishing.search.base import Hit
from publishing.search.text import (
    CJK_CLASS,
    MAX_TOKEN,
    ParsedQuery,
    chinese_views,
    lazy_pinyin,
    normalize_with_map,
)

_CJK_RUN = re.compile(f"[{CJK_CLASS}]+")
_WORDS = re.compile(f"[^\\W_{CJK_CLASS}]+")
SNIPPET = 80  # characters of a long text shown around its first match


def _pinyin_units(norm: str) -> list[tuple[str, int]]:
    """(syllable, index in norm) for every Chinese character of a normalised text."""
    out: list[tuple[str, int]] = []
    for m in _CJK_RUN.finditer(norm):
        sylls = lazy_pinyin(m.group(0))
        if len(sylls) == len(m.group(0)):
            out.extend((s, m.start() + i) for i, s in enumerate(sylls))
    return out


def _pinyin_spans(norm: str, pq: ParsedQuery) -> list[tuple[int, int]]:
    wanted: list[tuple[list[str], bool, bool]] = []  # (what, prefix, initials)
    for term in pq.terms:
        wanted.extend((list(sylls), prefix, False) for sylls, prefix in term.pinyin)
        if term.initials:
            wanted.append((list(term.source), False, True))
    if not wanted:
        return []
    units = _pinyin_units(norm)
    spans: list[tuple[int, int]] = []
    for want, prefix, initials in wanted:
        size = len(want)
        for i in range(len(units) - size + 1):
            window = units[i : i + size]
            got = [s[:1] if initials else s for s, _ in window]
            ok = got[:-1] == want[:-1] and (
                got[-1].startswith(want[-1]) if prefix else got[-1] == want[-1]
            )
            if ok and window[-1][1] - window[0][1] == size - 1:  # contiguous characters
                spans.append((window[0][1], window[-1][1] + 1))
    return spans


def match_spans(text: str, pq: ParsedQuery, pinyin: bool = False) -> list[tuple[int, int]]:
    """Spans (start, end) of the original text that the query's terms match."""
    if not text or not pq.terms:
        return []
    norm, origin = normalize_with_map(text)
    spans: list[tuple[int, int]] = []
    words = views = None
    for term in pq.terms:
        if term.cjk:
            views = chinese_views(norm) if views is None else views
            for view, where in views:
                start = view.find(term.source)
                while start >= 0:
                    spans.extend(_pieces(where[start : start + len(term.source)]))
                    start = view.find(term.source, start + 1)
        else:
            if words is None:
                words = [(m.start(), m.end(), m.group(0)) for m in _WORDS.finditer(norm)]
            # (a long word is matched as its first MAX_TOKEN characters)
            spans.extend((s, e) for s, e, w in words if w[:MAX_TOKEN] == term.source)
    if pinyin:
        spans.extend(_pinyin_spans(norm, pq))
    return sorted({(origin[s], origin[e - 1] + 1) for s, e in spans})


def _pieces(indexes: list[int]) -> list[tuple[int, int]]:
    """Spans of the consecutive runs of increasing indexes (a match across a bracket is marked
    on each side of it)."""
    out: list[tuple[int, int]] = []
    for i in indexes:
        if out and out[-1][1] == i:
            out[-1] = (out[-1][0], i + 1)
        else:
            out.append((i, i + 1))
    return out


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(e, out[-1][1]))
        else:
            out.append((s, e))
    return out


def render(text: str, spans: list[tuple[int, int]]) -> str:
    out: list[str] = []
    pos = 0
    for s, e in _merge(spans):
        out.append(escape(text[pos:s]))
        out.append(f"<mark>{escape(text[s:e])}</mark>")
        pos = e
    out.append(escape(text[pos:]))
    return "".join(out)


def marked(
    text: str, pq: ParsedQuery, pinyin: bool = False, width: int | None = None
) -> str | None:
    """The text (or, when longer than width, an excerpt around its first match) as HTML with
    the matches marked; None when the query does not match it."""
    spans = match_spans(text, pq, pinyin)
    if not spans:
        return None
    if width is None or len(text) <= width:
        return render(text, spans)
    start = max(0, spans[0][0] - width // 4)
    end = min(len(text), start + width)
    inside = [
        (max(s, start) - start, min(e, end) - start) for s, e in spans if s < end and e > start
    ]
    return (
        ("…" if start else "") + render(text[start:end], inside) + ("…" if end < len(text) else "")
    )


def _code_highlight(doc: dict[str, Any], code: str) -> str | None:
    for key, label in (("uscc", "统一社会信用代码"), ("reg_no", "注册号")):
        value = doc.get(key) or ""
        if code and value.startswith(code):
            return f"{label}：<mark>{escape(code)}</mark>{escape(value[len(code) :])}"
    return None


def hit_highlight(doc: dict[str, Any], pq: ParsedQuery) -> str:
    """The snippet that shows why a document matched: its name (or title), a former name, or
    the first text field that matches; the code for a code match; else the escaped title."""
    entity = doc["type"] == "entity"
    if entity:
        names = doc.get("names") or [doc["title"]]
        found = marked(names[0], pq, pinyin=True)
        if found:
            return found
        for former in names[1:]:
            found = marked(former, pq, pinyin=True)
            if found:
                return f"曾用名：{found}"
    else:
        found = marked(doc["title"], pq)
        if found:
            return found
    for label, value in doc.get("text") or ():
        found = marked(value, pq, width=SNIPPET)
        if found:
            return f"{escape(label)}：{found}"
    if pq.code:
        found = _code_highlight(doc, pq.code)
        if found:
            return found
    return escape(doc["title"])


def doc_hit(doc: dict[str, Any], pq: ParsedQuery, score: float = 0.0) -> Hit:
    """The Hit of a search document, with its highlight: one shape for both backends."""
    return Hit(
        id=doc["id"],
        type=doc["type"],
        title=doc["title"],
        url=doc["url"],
        highlight=hit_highlight(doc, pq),
        district=doc.get("district"),
        date=doc.get("date"),
        grade=doc.get("grade"),
        status=doc.get("status"),
        score=score,
        doc=doc.get("data") or {},
    )
