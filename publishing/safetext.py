"""Which text may be stored: UNUSABLE names the characters no stored text may hold, `usable`
checks a value sent as text (a JSON value's strings too) for them, and `unusable_problem` says
what a field holding one is told. The request form and API, the back office's names and the
portal's paths and queries all check their input with it; the import rejects a value holding
one (publishing.sources.headers); the feeds drop them from what they show (`xml_safe`).
"""

from __future__ import annotations

import re
from typing import Any

# What no stored text may hold, as a regex character class (the import's check,
# publishing.sources.headers, builds on it): C0 controls but tab and line breaks (NUL among
# them, which PostgreSQL text cannot store), lone surrogates, U+FFFE/U+FFFF (XML 1.0, which the
# feeds are, cannot carry them) and the other Unicode noncharacters (U+FDD0–U+FDEF and the last
# two code points of every plane: never text a person typed). Tab and line breaks are left to
# each field: a reason keeps them, a name's are folded into spaces.
C0_CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f"
SURROGATES = "\ud800-\udfff"
NONCHARACTERS = "\ufdd0-\ufdef" + "".join(
    chr(plane + 0xFFFE) + chr(plane + 0xFFFF) for plane in range(0, 0x110000, 0x10000)
)
UNUSABLE_CHARS = C0_CONTROLS + SURROGATES + NONCHARACTERS
UNUSABLE = re.compile(f"[{UNUSABLE_CHARS}]")


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


def xml_safe(text: str) -> str:
    """text without UNUSABLE characters: what a feed (XML) may carry of a stored value, also one
    stored before the import rejected them all (lxml refuses U+FFFE/U+FFFF: a 500)."""
    return UNUSABLE.sub("", text)


def unusable_problem(label: str) -> str:
    """What a field with an UNUSABLE character is told (nothing is stored)."""
    return f"{label}含有不允许的控制字符，请删除后重新填写"
