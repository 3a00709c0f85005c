"""`disclosure … --help` fits the terminal: Chinese characters take two columns."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from portal.cli import build_parser
from portal.cli_help import display_width, wrap


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_help_fits_80_columns_without_breaking_a_word(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    parsers = list(_parsers(build_parser()))
    assert len(parsers) > 10  # the verbs and the sub-verbs of users, apikeys, audit
    for parser in parsers:
        text = parser.format_help()
        for line in text.splitlines():
            # a usage line of long flags is argparse's own (ASCII, wrapped right)
            assert display_width(line) <= 80 or line.isascii(), (parser.prog, line)
    publish = next(p for p in parsers if p.prog.endswith(" publish")).format_help()
    assert "snapshot：" in publish and "return_pledge" in publish


def test_wrap_breaks_between_words_and_keeps_punctuation_off_a_line_start():
    assert wrap("abc def ghi", 7) == ["abc def", "ghi"]
    assert wrap("一二三四，五", 8) == ["一二三四，", "五"]  # "，" stays with its line
    assert all(display_width(line) <= 10 for line in wrap("全部记录 snapshot 文件中没有的已公示记录撤回", 10))
    assert "snapshot" in wrap("全部记录 snapshot 文件中没有的已公示记录撤回", 10)
