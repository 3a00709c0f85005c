"""Which text may be stored: UNUSABLE names the characters no stored text may hold, `usable`
checks a value sent as text (a JSON value's strings too) for them, and `unusable_problem` says
what a field holding one is told. The request form and API, the back office's names and the
portal's paths and queries all check their input with it.
"""

from __future__ import annotations

import re
from typing import Any

# What no stored text may hold: C0 controls but tab and line breaks (NUL among them, which
# PostgreSQL text cannot store), lone surrogates and U+FFFE/U+FFFF (XML 1.0, which the feeds
# are, cannot carry them). Tab and line breaks are left to each field: a reason keeps them, a
# name's are folded into spaces. portal.pages.common guards paths and queries with it too.
UNUSABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def usable(value: Any) -> bool:
    """Whether a value sent as text (a string, or the strings of a parsed JSON value, keys
    too) is free of UNUSABLE characters. Walked without recursion: a deeply nested value is
    no crash either."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if UNUSABLE.search(item):
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return True


def unusable_problem(label: str) -> str:
    """What a field with an UNUSABLE character is told (nothing is stored)."""
    return f"{label}含有不允许的控制字符，请删除后重新填写"
