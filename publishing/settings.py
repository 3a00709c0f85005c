"""Typed settings from the environment (and an optional .env), never mutated at import."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DISCLOSURE_", env_file=".env", extra="ignore")

    data_dir: Path = Path("var")
    database_url: str | None = None
    meili_url: str | None = None
    meili_key: str | None = None
    meili_index: str = "disclosure"
    secret_key: str = "dev-secret-change-me"
    base_url: str = "http://127.0.0.1:8000"
    smtp_url: str | None = None
    redis_url: str | None = None
    rules_file: Path | None = None
    requests_file: Path | None = None  # objections / credit repair: deadlines, limits, texts
    workdays_file: Path | None = None  # holidays for years chinese-calendar does not cover

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'disclosure.db').resolve()}"

    @property
    def attachments_dir(self) -> Path:
        return self.data_dir / "attachments"


@lru_cache
def get_settings() -> Settings:
    return Settings()
