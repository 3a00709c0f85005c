"""Typed settings from the environment (and an optional .env), never mutated at import."""

from __future__ import annotations

import math
import os
import secrets
from functools import cached_property, lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Placeholders that have been in our own files: a key anyone can read signs nothing.
KNOWN_SECRETS = frozenset({"dev-secret-change-me", "change-me", "changeme", "secret"})
MIN_SECRET_LENGTH = 32
# The least variety a key must show (secret_variety): random keys score far above it (32 hex
# characters ~115, secrets.token_urlsafe(32) ~210), a key of a few repeated characters or a
# repeated word far below ("a" × 32: 0, "abc" × 11: 6, "password" × 4: 30).
MIN_SECRET_VARIETY = 48
SECRET_FILE = "secret.key"


class WeakSecretError(RuntimeError):
    """DISCLOSURE_SECRET_KEY is set to something anyone could guess."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DISCLOSURE_", env_file=".env", extra="ignore")

    data_dir: Path = Path("var")
    database_url: str | None = None
    meili_url: str | None = None
    meili_key: str | None = None
    meili_index: str = "disclosure"
    # Signs reviewer sessions, form tokens and request access codes: see secret_key.
    secret_key_setting: str | None = Field(default=None, validation_alias="DISCLOSURE_SECRET_KEY")
    # Keys the audit log's hash chain (publishing.audit); unset: the secret key does.
    audit_key_setting: str | None = Field(default=None, validation_alias="DISCLOSURE_AUDIT_KEY")
    # Where the worker records the audit log's head, outside the database (publishing.audit).
    audit_anchor_file: Path | None = None
    base_url: str = "http://127.0.0.1:8000"
    smtp_url: str | None = None
    review_email: str | None = None  # the reviewers' daily digest of requests due or overdue
    redis_url: str | None = None
    rules_file: Path | None = None
    requests_file: Path | None = None  # objections / credit repair: deadlines, limits, texts
    workdays_file: Path | None = None  # holidays for years chinese-calendar does not cover
    log_format: str = "text"  # "json": one JSON object per log line (portal.observability)
    log_level: str = "INFO"
    progress_every: int = 100_000  # rows between plain progress lines when not on a terminal

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'disclosure.db').resolve()}"

    @cached_property
    def secret_key(self) -> str:
        """The key from DISCLOSURE_SECRET_KEY; without one, a random key kept in the data
        directory (made once, shared by every process on that directory). Every portal of a
        deployment on several machines needs the same key: set DISCLOSURE_SECRET_KEY there."""
        if self.secret_key_setting is None:
            return _kept_secret(self.data_dir / SECRET_FILE)
        return _strong("DISCLOSURE_SECRET_KEY", self.secret_key_setting)

    @cached_property
    def audit_key(self) -> str:
        """What the audit log's chain is keyed with: DISCLOSURE_AUDIT_KEY, else the secret key.
        Set it to the old secret key before rotating DISCLOSURE_SECRET_KEY, so that the entries
        written until then still verify."""
        if self.audit_key_setting is None:
            return self.secret_key
        return _strong("DISCLOSURE_AUDIT_KEY", self.audit_key_setting, "沿用 DISCLOSURE_SECRET_KEY")

    @property
    def audit_anchors_path(self) -> Path:
        return self.audit_anchor_file or self.data_dir / "audit-anchors.jsonl"

    @property
    def attachments_dir(self) -> Path:
        return self.data_dir / "attachments"


def _strong(name: str, value: str, unset: str = "使用数据目录中自动生成的密钥") -> str:
    key = value.strip()
    if len(key) < MIN_SECRET_LENGTH or key in KNOWN_SECRETS or weak_variety(key):
        raise WeakSecretError(
            f"{name} 过短、过于简单(字符种类太少或内容重复)或是公开的示例值:"
            f"请设为至少 {MIN_SECRET_LENGTH} 个字符的随机串"
            f"(例如 openssl rand -base64 36 的输出),或不设置({unset})。"
        )
    return key


def secret_variety(key: str) -> float:
    """A rough measure, in bits, of how much a key could be guessed from its own shape:
    log2(distinct characters) × (distinct pairs of adjacent characters + 1). A key that repeats
    a short piece has as few pairs as the piece is long, one of few characters few of either;
    a random key has about as many pairs as characters. It underestimates random keys (32 hex
    characters, 128 bits, score 70–150), so it only tells trivial keys from the rest."""
    if len(key) < 2:
        return 0.0
    pairs = {key[i : i + 2] for i in range(len(key) - 1)}
    return math.log2(len(set(key))) * (len(pairs) + 1)


def weak_variety(key: str) -> bool:
    return secret_variety(key) < MIN_SECRET_VARIETY


def _kept_secret(path: Path) -> str:
    """The key in path, made first if missing. Written aside and linked into place, so that a
    process starting at the same moment reads either no file or the whole key."""
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(48))
    try:
        os.link(draft, path)  # fails if another process got there first: its key wins
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    key = path.read_text(encoding="ascii").strip()
    if len(key) < MIN_SECRET_LENGTH or weak_variety(key):
        raise WeakSecretError(f"{path} 中的密钥过短或过于简单:删除该文件后重新启动即可生成新密钥。")
    return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
