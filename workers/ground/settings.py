"""Settings of every process, read once in ``main`` from the environment and passed down.

Variables carry the ``INGEST_`` prefix, except the conventional ``AMQP_URL`` and ``MONGODB_URL``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore", frozen=True)

    # backends ---------------------------------------------------------------------------
    amqp_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AMQP_URL", "INGEST_AMQP_URL"),
        description="RabbitMQ URL; unset in dev mode means the in-process memory queue",
    )
    mongodb_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("MONGODB_URL", "INGEST_MONGODB_URL"),
        description="MongoDB URL; unset means the embedded SQLite store under data_dir",
    )
    mongodb_database: str = Field(default="assoc_ingest", description="MongoDB database name")
    mongodb_allow_standalone: bool = Field(
        default=False,
        description="run on a standalone MongoDB server, without transactions (batches are"
        " then not all or nothing); refused at start otherwise",
    )
    data_dir: Path = Field(default=Path("var"), description="directory of the embedded store")

    # queue topology ---------------------------------------------------------------------
    topology_name: str = Field(default="ingest", description="base name of exchange and queues")
    queue_type: Literal["quorum", "classic"] = Field(
        default="quorum", description="type of the work queue"
    )
    queue_max_length: int = Field(
        default=1_000_000, ge=1, description="messages in ingest.jobs before publishes are refused"
    )

    # front ------------------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="address the front listens on")
    port: int = Field(default=8080, ge=0, le=65535, description="port the front listens on")
    publish_timeout: float = Field(
        default=5.0, gt=0, description="seconds to wait for a broker confirm before a 503"
    )
    publish_max_items: int = Field(
        default=10_000, ge=1, description="items one coalesced message carries at most"
    )
    publish_max_bytes: int = Field(
        # Above the largest bulk body with its items' envelope fields, so that a request always
        # travels in one message and is confirmed or refused as a whole.
        default=24 * 1024 * 1024,
        ge=1024,
        description="bytes one coalesced message carries at most",
    )
    publish_max_in_flight: int = Field(
        # More, smaller messages cost the broker more per item (bench/design-measurements.md).
        default=1,
        ge=1,
        description="coalesced messages awaiting their confirm at once",
    )
    idempotency_window: float = Field(
        default=24 * 3600.0,
        gt=0,
        description="seconds an Idempotency-Key stands for its first job (at most job_ttl)",
    )
    max_body_bytes: int = Field(default=16 * 1024 * 1024, description="largest request body")
    max_body_bytes_in_flight: int = Field(
        # Two bodies at the limit: the front's peak memory under load is in README (sizing).
        default=32 * 1024 * 1024,
        ge=1,
        description="bytes of request bodies handled at once; beyond, a request waits",
    )
    body_wait_seconds: float = Field(
        default=2.0,
        ge=0,
        description="how long a request waits for room among the bodies in flight before a 503",
    )
    bulk_max_items: int = Field(default=10_000, description="items one bulk request may hold")
    trust_gateway_headers: bool = Field(
        default=False,
        description="take user-id/groups headers from a trusted gateway instead of credentials",
    )
    gateway_default_roles: str = Field(
        default="reporter,user",
        description="gateway mode: roles of every caller the gateway names (comma-separated)",
    )
    gateway_admin_groups: str = Field(
        default="", description="gateway mode: groups whose members hold the admin role"
    )
    gateway_reporter_groups: str = Field(
        default="", description="gateway mode: groups whose members hold the reporter role"
    )
    gateway_user_groups: str = Field(
        default="", description="gateway mode: groups whose members hold the user role"
    )
    gateway_trusted_groups: str = Field(
        default="", description="gateway mode: groups whose members hold the trusted role"
    )
    api_key_cache_seconds: float = Field(
        default=30.0, ge=0, description="how long a verified API key is cached in process"
    )
    jwt_secret: SecretStr | None = Field(default=None, description="HS256 secret for Bearer JWTs")
    jwt_public_key: str | None = Field(
        default=None, description="PEM public key for RS256/ES256 Bearer JWTs"
    )
    jwt_audience: str | None = Field(default=None, description="required JWT audience")
    jwt_issuer: str | None = Field(default=None, description="required JWT issuer")

    # workers ----------------------------------------------------------------------------
    worker_concurrency: int = Field(default=8, ge=1, description="messages handled at once")
    worker_prefetch: int = Field(default=16, ge=1, description="unacked messages per worker")
    metrics_port: int = Field(default=9100, ge=0, le=65535, description="worker metrics port")
    entity_wait: float = Field(
        default=120.0, ge=0, description="seconds an item waits for a missing entity"
    )
    shutdown_timeout: float = Field(
        default=30.0, ge=0, description="seconds to finish in-flight messages on SIGTERM"
    )
    entity_cache_size: int = Field(
        default=200_000, ge=0, description="entity IDs a worker remembers as existing"
    )
    types_refresh_seconds: float = Field(
        default=30.0, gt=0, description="how often custom association types are reloaded"
    )
    job_ttl: float = Field(default=7 * 24 * 3600.0, gt=0, description="seconds a job is kept")
    job_purge_seconds: float = Field(
        default=600.0, gt=0, description="how often a worker removes expired jobs from the store"
    )

    # logs -------------------------------------------------------------------------------
    log_level: str = Field(default="INFO", description="log level")
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="json, console, or auto (console on a terminal)"
    )

    @model_validator(mode="after")
    def _keys_outlive_no_job(self) -> Self:
        # A key that outlived its job's item outcomes would let a retry process them again.
        if self.idempotency_window > self.job_ttl:
            raise ValueError(
                f"INGEST_IDEMPOTENCY_WINDOW ({self.idempotency_window:g} s) must not exceed "
                f"INGEST_JOB_TTL ({self.job_ttl:g} s)"
            )
        return self
