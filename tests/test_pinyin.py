"""Our pinyin tables give exactly what pypinyin's lazy_pinyin gives, and are cached on disk."""

from __future__ import annotations

import json
import random

import pytest
from pypinyin.converter import DefaultConverter
from pypinyin.core import Pinyin

from publishing.sample import generate
from publishing.search import pinyin


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    pinyin.tables.cache_clear()
    pinyin._memo.clear()
    yield tmp_path
    pinyin.tables.cache_clear()
    pinyin._memo.clear()


def _texts(tmp_path) -> list[str]:
    """Sample names and addresses, and random text made of phrases, parts of phrases, common
    and rare characters (extension planes, private use), latin letters, digits and punctuation."""
    generate(tmp_path / "sample", 300)
    texts = []
    for line in (tmp_path / "sample" / "return_pledge.ndjson").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        texts.extend(str(v) for v in row.values() if isinstance(v, str))
    t = pinyin.tables()
    phrases, chars = sorted(t.phrases), sorted(t.chars)
    rnd = random.Random(20261128)
    pieces = [
        lambda: rnd.choice(phrases),
        lambda: rnd.choice(phrases)[:-1],
        lambda: rnd.choice(chars),
        lambda: chr(rnd.randint(0x3400, 0x9FFF)),
        lambda: chr(rnd.randint(0x20000, 0x2EBE0)),
        lambda: rnd.choice(["abc", "12", "（", " ", "〇", "·", "ü", "\ue820", "有限公司"]),
    ]
    for _ in range(8_000):
        texts.append("".join(rnd.choice(pieces)() for _ in range(rnd.randint(1, 6))))
    return texts


def test_same_syllables_as_pypinyin(tmp_path):
    reference = Pinyin(DefaultConverter())
    texts = _texts(tmp_path)
    assert len(texts) > 8_000
    different = [t for t in texts if pinyin.lazy_pinyin(t) != reference.lazy_pinyin(t)]
    assert different == []
    # polyphones read by their phrase, as pypinyin reads them
    assert pinyin.lazy_pinyin("重庆银行") == ["chong", "qing", "yin", "hang"]
    assert pinyin.lazy_pinyin("重要的行业") == ["zhong", "yao", "de", "hang", "ye"]


def test_tables_are_cached_and_rebuilt_when_unreadable(cache_home):
    built = pinyin.tables()
    (path,) = (cache_home / "disclosure").glob("pinyin-*.marshal")
    assert pinyin._load(path) == built  # the next process reads the file
    path.write_bytes(b"\x00broken")
    pinyin.tables.cache_clear()
    assert pinyin.tables() == built  # a broken file is rebuilt …
    assert pinyin._load(path) == built  # … and replaced
    blocked = cache_home / "blocked"
    blocked.write_text("a file where the folder would be", encoding="utf-8")
    pinyin._dump(built, blocked / "pinyin.marshal")  # nowhere to write: no error, nothing written
    assert blocked.is_file()


def test_a_failed_write_leaves_no_partial_file(cache_home, monkeypatch):
    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pinyin.os, "replace", disk_full)
    assert pinyin.lazy_pinyin("烟台") == ["yan", "tai"]  # built, and used without the file
    assert list((cache_home / "disclosure").iterdir()) == []
