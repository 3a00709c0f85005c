"""Help text wrapped by display width: argparse counts a Chinese character as one column, and
Chinese help ran past the terminal's edge (or broke inside a word like "snapsho / t")."""

from __future__ import annotations

import argparse
import re
import unicodedata
from typing import Any

# Tokens: a run of visible ASCII (a word, a flag, a number), one space, or one other character.
_TOKEN = re.compile(r"[!-~]+| |.")
# Chinese punctuation that never begins a line (it stays with the line before, a little over).
_NO_LINE_START = frozenset("，。；：、）》」』”’！？…")


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most `width` columns, broken between words or between Chinese characters."""
    lines: list[str] = []
    line, used = "", 0
    for token in _TOKEN.findall(" ".join(text.split())):
        w = display_width(token)
        if line and used + w > width and token != " " and token not in _NO_LINE_START:
            lines.append(line.rstrip())
            line, used = "", 0
        if token == " " and not line:
            continue
        line, used = line + token, used + w
    if line.strip():
        lines.append(line.rstrip())
    return lines


class WideHelpFormatter(argparse.HelpFormatter):
    def _split_lines(self, text: str, width: int) -> list[str]:
        return wrap(text, width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(indent + line for line in wrap(text, width))


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose help (and its subcommands', which are made of its class) wraps
    by display width."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", WideHelpFormatter)
        super().__init__(*args, **kwargs)
