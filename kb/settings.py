"""Service settings: flags first, then ``KB_*`` environment variables, then these defaults."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from kb.backends import DEFAULT_MODEL, EmbedderBackend
from kb.durations import parse_duration
from kb.pii import PiiPolicy
from kb.retrieval import RetrievalMode


class Role(StrEnum):
    """What a key of ``KB_API_KEYS`` may do (an entry ``key:role``; a bare key is an editor)."""

    agent = "agent"
    """Query, audit, read documents and the change feed, MCP: what an agent needs, nothing that acts."""
    editor = "editor"
    """All an agent may do, plus the staleness report, the metrics and the review and acknowledge actions."""


class ServeRole(StrEnum):
    """What a ``kb serve`` process does (``--role``, README "Scale-out")."""

    all = "all"
    """Watch the folder, write and serve: one process, as kb has always run."""
    writer = "writer"
    """The same, holding the writer lease of a shared ledger (``KB_LEDGER_URL``); a standby until it gets it."""
    api = "api"
    """Serve queries from a shared ledger and Chroma server, following the writer's changes; never writes."""


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
    review_due_soon_days: int = Field(
        14, ge=0, description="A review due within this many days is flagged review_due_soon."
    )
    max_age: str = Field("365d", description="A text unchanged for longer than this is listed as stale_age.")
    expiring_soon_days: int = Field(
        14, ge=0, description="A version ending within this many days is flagged expiring_soon."
    )
    retrieval: RetrievalMode = Field(
        # Hybrid won on every slice of the development set (bench/devset.py, docs/benchmarks.md).
        RetrievalMode.hybrid,
        description="Ranking of a query that names no mode: hybrid (cosine combined with BM25) or vector alone.",
    )
    chunk_tokens: int = Field(
        # Chosen on the development set (bench/devset.py, docs/benchmarks.md): smaller chunks put more answers
        # inside an agent's context budget, larger ones give a paraphrased question more context to match.
        192,
        ge=32,
        le=512,
        description="Most wordpieces of text in one chunk (the encoder's own limit caps it); changing it "
        "re-chunks every file at the next start.",
    )
    min_score: float = Field(
        # Chosen on the development set (bench/devset.py): no answerable question scored below it, while
        # questions about other topics altogether do (docs/benchmarks.md).
        0.2,
        ge=-1,
        le=1,
        description="Relevance floor of a query that names none: results scoring below it are not served, and "
        "when nothing clears it the answer is empty with a warning saying so.",
    )
    model: str = Field(
        DEFAULT_MODEL,
        description="Sentence-transformers model path or name; the default is the packaged all-MiniLM-L6-v2.",
    )
    embedder: EmbedderBackend = Field(
        EmbedderBackend.auto,
        description="Embedding backend: onnx (ONNX Runtime, exported into the data folder and checked against "
        "torch), torch, or auto: onnx when its check passes, else torch.",
    )
    chroma_url: str | None = Field(
        None, description="A `chroma run` server (http://host:port) instead of the embedded store."
    )
    ledger_url: str | None = Field(
        None,
        description="The ledger's database: `postgresql://user:password@host/db` to share it between a writer and "
        "API replicas (`kb serve --role`); default a SQLite file `ledger.sqlite3` under `--data`.",
    )
    role: ServeRole = Field(
        ServeRole.all,
        description="What `kb serve` does: all (watch, write, serve), writer (the same under the writer lease of "
        "a shared ledger) or api (serve and follow the writer; needs KB_LEDGER_URL and KB_CHROMA_URL).",
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated keys, each `key` or `key:role` (role agent or editor; a bare key is an "
        "editor); when set, every path but /healthz and /readyz needs one.",
    )
    allow_open: bool = Field(
        False, description="Let `kb serve` listen on a non-loopback address with no KB_API_KEYS: anyone may read."
    )
    max_body_bytes: int = Field(1_000_000, ge=1, description="Larger request bodies are refused with 413.")
    watch: bool = Field(True, description="`kb serve` watches the folder and ingests every change.")
    debounce_ms: int = Field(
        100, ge=0, le=10_000, description="A changed file is ingested once it has been quiet this long."
    )
    max_file_bytes: int = Field(1_000_000, ge=1, description="Larger policy files are rejected as parse errors.")
    max_converted_bytes: int = Field(
        20_000_000, ge=1, description="Larger DOCX, PDF and HTML files are rejected as parse errors before conversion."
    )
    max_chunks_per_file: int = Field(
        500, ge=1, description="A file cut into more chunks is rejected as a parse error (split it into documents)."
    )
    pii: PiiPolicy = Field(
        PiiPolicy.flag,
        description="Personal data in a file: `flag` it, `redact` it before serving, or `reject` the file.",
    )
    pii_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated addresses, numbers or @domains that are not personal data (a support line).",
    )
    webhooks: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated URLs that receive every change-feed event as a POST."
    )
    webhook_secret: str | None = Field(
        None, description="Key of the HMAC-SHA256 signature (X-KB-Signature) of each webhook body."
    )
    log_level: str = Field("INFO", description="Python logging level.")
    access_log: bool = Field(False, description="`kb serve` logs one line per HTTP request (uvicorn's access log).")

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

    @field_validator("review_every", "max_age")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("webhooks")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"a webhook must be an http:// or https:// URL, got {url!r}")
        return value

    @model_validator(mode="after")
    def _replica_shares(self) -> Settings:
        if self.role is ServeRole.api and not (self.ledger_url and self.chroma_url):
            raise ValueError(
                "--role api serves what a writer wrote: it needs the writer's KB_LEDGER_URL and KB_CHROMA_URL "
                "(a replica with a ledger and store of its own would serve nothing)"
            )
        return self

    @property
    def leased(self) -> bool:
        """Writes take the writer lease: the ledger is one that other kb processes may share."""
        return self.ledger_url is not None and self.role is not ServeRole.api

    @model_validator(mode="after")
    def _signed(self) -> Settings:
        if self.webhooks and not self.webhook_secret:
            raise ValueError("KB_WEBHOOKS needs KB_WEBHOOK_SECRET: receivers must be able to check the signature")
        return self

    @field_validator("api_keys", "pii_allow", "webhooks", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _no_empty_key(cls, value: object) -> object:
        # Runs first: `KB_API_KEYS=","` or `"a,,b"` must not quietly mean "no keys" or skip one.
        if isinstance(value, str) and value.strip() and any(not key.strip() for key in value.split(",")):
            raise ValueError("an empty key in the comma-separated list (a stray comma?)")
        return value

    @field_validator("api_keys")
    @classmethod
    def _known_roles(cls, value: list[str]) -> list[str]:
        for entry in value:
            key, role = split_key(entry)
            if not key:
                raise ValueError(f"an entry with a role but no key ({entry.split(':')[-1]!r})")
            if role is None:
                roles = ", ".join(r.value for r in Role)
                raise ValueError(f"unknown role {entry.rsplit(':', 1)[1]!r} in a key entry; use key:ROLE with {roles}")
        return value

    @property
    def key_roles(self) -> dict[str, Role]:
        """Each key and what it may do."""
        return {key: role for key, role in map(split_key, self.api_keys) if role is not None}

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def expiring_soon(self) -> timedelta:
        return timedelta(days=self.expiring_soon_days)

    @property
    def default_review_interval(self) -> timedelta:
        return parse_duration(self.review_every)

    @property
    def review_due_soon(self) -> timedelta:
        return timedelta(days=self.review_due_soon_days)

    @property
    def stale_after(self) -> timedelta:
        return parse_duration(self.max_age)


def split_key(entry: str) -> tuple[str, Role | None]:
    """``key`` is an editor; ``key:role`` has that role (None when the role is unknown)."""
    if ":" not in entry:
        return entry, Role.editor
    key, _, role = entry.rpartition(":")
    return key.strip(), Role(role.strip()) if role.strip() in Role.__members__ else None
