"""The key that signs reviewer sessions, form tokens and access codes is never a guessable one."""

from __future__ import annotations

import base64
import os
import secrets
import stat
from concurrent.futures import ProcessPoolExecutor

import pytest

from portal.app import create_app
from publishing.settings import (
    MIN_SECRET_LENGTH,
    SECRET_FILE,
    WeakSecretError,
    _kept_secret,
    get_settings,
    weak_variety,
)

# Long enough, and trivial: a character or a short piece repeated, a word repeated.
TRIVIAL = [
    "a" * MIN_SECRET_LENGTH,
    "k" * 64,
    "abc" * 11,
    "ab" * 32,
    "0123456789" * 4,
    "password" * 4 + "1",
    "aaaaaaaabbbbbbbbccccccccdddddddd",
    "a" * 40 + "b",
]


@pytest.mark.parametrize(
    "key", ["dev-secret-change-me", "change-me", "", "x" * (MIN_SECRET_LENGTH - 1), *TRIVIAL]
)
def test_a_guessable_key_refuses_to_start(monkeypatch, tmp_path, key):
    monkeypatch.setenv("DISCLOSURE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DISCLOSURE_SECRET_KEY", key)
    get_settings.cache_clear()
    try:
        with pytest.raises(WeakSecretError, match="DISCLOSURE_SECRET_KEY"):
            create_app()
    finally:
        get_settings.cache_clear()


REALISTIC = {
    "token_urlsafe": lambda: secrets.token_urlsafe(32),
    "openssl-hex": lambda: secrets.token_hex(32),  # openssl rand -hex 32
    "openssl-base64": lambda: base64.b64encode(os.urandom(36)).decode(),  # -base64 36
    "phrase": lambda: "two-processes-shared-secret-of-32-characters-or-more",
}


@pytest.mark.parametrize("kind", REALISTIC)
def test_a_long_key_is_used_as_given(monkeypatch, tmp_path, kind):
    key = REALISTIC[kind]()
    monkeypatch.setenv("DISCLOSURE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DISCLOSURE_SECRET_KEY", f" {key}\n")
    get_settings.cache_clear()
    try:
        assert get_settings().secret_key == key
        assert not (tmp_path / SECRET_FILE).exists()
    finally:
        get_settings.cache_clear()


def test_random_keys_are_never_taken_for_trivial_ones():
    for _ in range(2000):
        for key in (
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(48),  # what is made without a key
            secrets.token_hex(32),
            secrets.token_hex(16),  # 32 hex characters, the shortest random key accepted
            base64.b64encode(os.urandom(24)).decode(),
        ):
            assert not weak_variety(key), key


def test_without_a_key_one_is_made_once_and_kept_private(monkeypatch, tmp_path):
    monkeypatch.setenv("DISCLOSURE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("DISCLOSURE_SECRET_KEY", raising=False)
    get_settings.cache_clear()
    try:
        first = get_settings().secret_key
        get_settings.cache_clear()
        assert get_settings().secret_key == first and len(first) >= MIN_SECRET_LENGTH
    finally:
        get_settings.cache_clear()
    path = tmp_path / "var" / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [SECRET_FILE]  # no draft left behind


def test_processes_starting_together_agree_on_the_made_key(tmp_path):
    path = tmp_path / SECRET_FILE
    with ProcessPoolExecutor(4) as pool:
        keys = list(pool.map(_kept_secret, [path] * 16))
    assert len(set(keys)) == 1 and keys[0] == path.read_text()


@pytest.mark.parametrize("text", ["short", "a" * 64])
def test_a_truncated_or_trivial_key_file_is_refused(tmp_path, text):
    path = tmp_path / SECRET_FILE
    path.write_text(text)
    with pytest.raises(WeakSecretError, match="删除该文件"):
        _kept_secret(path)


@pytest.mark.parametrize("key", ["change-me", "abc" * 12])
def test_serve_with_a_sample_key_exits_with_a_message(tmp_path, key):
    import subprocess
    import sys

    env = {**os.environ, "DISCLOSURE_SECRET_KEY": key, "DISCLOSURE_DATA_DIR": str(tmp_path),
           "DISCLOSURE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    proc = subprocess.run([sys.executable, "-m", "portal.cli", "serve", "--port", "1"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "DISCLOSURE_SECRET_KEY" in proc.stderr and "Traceback" not in proc.stderr
