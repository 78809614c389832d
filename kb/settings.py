"""Service settings: flags first, then ``KB_*`` environment variables, then these defaults."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from kb.durations import parse_duration

DEFAULT_MODEL = "all-MiniLM-L6-v2"


class Settings(BaseSettings):
    """Every setting is listed, with its variable, in the README's settings table."""

    model_config = SettingsConfigDict(env_prefix="KB_", extra="ignore")

    docs: Path = Field(Path("policies"), description="The watched folder of Markdown policy files.")
    data: Path = Field(Path(".kb"), description="Chroma store, ledger and lock; deleting it rebuilds all.")
    host: str = Field("127.0.0.1", description="Address `kb serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `kb serve` listens on.")
    timezone: str = Field("UTC", description="Zone of dates given without one in front matter and as_of.")
    review_every: str = Field(
        "365d", description="Review interval for documents that set neither review_by nor review_every."
    )
    expiring_soon_days: int = Field(
        14, ge=0, description="A version ending within this many days is flagged expiring_soon."
    )
    model: str = Field(
        DEFAULT_MODEL,
        description="Sentence-transformers model path or name; the default is the packaged all-MiniLM-L6-v2.",
    )
    chroma_url: str | None = Field(
        None, description="A `chroma run` server (http://host:port) instead of the embedded store."
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated keys; when set, /v1 and /report need one."
    )
    watch: bool = Field(True, description="`kb serve` watches the folder and ingests every change.")
    debounce_ms: int = Field(
        100, ge=0, le=10_000, description="A changed file is ingested once it has been quiet this long."
    )
    max_file_bytes: int = Field(1_000_000, ge=1, description="Larger policy files are rejected as parse errors.")
    log_level: str = Field("INFO", description="Python logging level.")

    @field_validator("docs", "data")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("review_every")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def expiring_soon(self) -> timedelta:
        return timedelta(days=self.expiring_soon_days)

    @property
    def default_review_interval(self) -> timedelta:
        return parse_duration(self.review_every)
