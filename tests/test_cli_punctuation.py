"""The command line's Chinese messages and help texts use Chinese punctuation (，：；（）):
"已发布:批次 12,变更事件 3 条" read as a half-translated message next to "错误：无法写入 …"."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLI_MODULES = ("portal/cli.py", "portal/cli_casework.py", "portal/cli_database.py")
CJK = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef\u201c\u201d"
# A run of ASCII , : ; ( ) touching a Chinese character (or Chinese punctuation) on either side.
ASCII_NEXT_TO_CJK = re.compile(f"(?<=[{CJK}])[,:;()]+|[,:;()]+(?=[{CJK}])")
HOLE = "\x00"  # an f-string's replacement field: neither Chinese nor punctuation


def _docstrings(tree: ast.Module) -> set[int]:
    """Statement-level strings (docstrings): English, and not output."""
    return {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}


def _text(node: ast.Constant | ast.JoinedStr) -> str:
    if isinstance(node, ast.Constant):
        return node.value
    return "".join(v.value if isinstance(v, ast.Constant) else HOLE for v in node.values)


def _strings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string in the module with Chinese in it: constants and whole
    f-strings (their replacement fields as HOLE), docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree) | {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
                                for part in node.values}  # an f-string is checked whole
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)) or isinstance(node, ast.JoinedStr):
            text = _text(node)
            if re.search(f"[{CJK}]", text):
                found.append((node.lineno, text))
    return found


def _mixed_brackets(text: str) -> bool:
    """A bracket opened in one width and closed in the other: "（{err});" is half converted."""
    stack = []
    for char in text:
        if char in "(（":
            stack.append(char)
        elif char in ")）" and stack and (stack.pop() == "(") != (char == ")"):
            return True
    return False


def _problems(text: str) -> list[str]:
    problems = [m.group() for m in ASCII_NEXT_TO_CJK.finditer(text)]
    return problems + (["括号半角全角混用"] if _mixed_brackets(text) else [])


def test_the_checker_finds_ascii_punctuation_in_chinese_text():
    assert _problems("已发布:批次 12,变更事件 3 条。") == [":", ","]
    assert _problems(f"试运行(--dry-run):未写入任何数据。{HOLE}") == ["(", "):"]
    assert _problems(f"写入失败（{HOLE});稍后") == [");", "括号半角全角混用"]
    assert _problems("试运行（--dry-run）：未写入任何数据；Authorization: Bearer <令牌>") == []


@pytest.mark.parametrize("module", CLI_MODULES)
def test_cli_messages_use_chinese_punctuation(module):
    bad = [f"{module}:{line}: {text!r} {problems}"
           for line, text in _strings(ROOT / module) if (problems := _problems(text))]
    assert not bad, "\n".join(bad)
