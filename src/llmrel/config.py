"""Typed configuration: defaults in one place, read from flags > env (`LLMREL_*`) > YAML file.

`load_settings()` is the only place that reads the environment; everything else receives a
`Settings` object. Validation reports every problem at once (pydantic lists all errors).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

DEFAULT_DATA_DIR = "llmrel-data"


def default_clickhouse_url() -> str:
    """The embedded store under `./llmrel-data`, as a chDB DSN with an absolute path."""
    return f"chdb://{Path(DEFAULT_DATA_DIR).resolve()}"


class Settings(BaseSettings):
    """Everything llmrel can be told. Env names are `LLMREL_` + the field name in capitals."""

    model_config = SettingsConfigDict(env_prefix="LLMREL_", extra="forbid", validate_default=True)

    # Storage
    clickhouse_url: str = Field(default_factory=default_clickhouse_url,
                                description="chdb:///abs/path (embedded) or http(s)://user:pass@host:8123/db")
    cluster: str | None = Field(default=None, description="ClickHouse cluster name: render ON CLUSTER DDL")
    traces_ttl_days: int = Field(default=30, ge=0, description="otel_traces retention; 0 keeps forever")
    calls_ttl_days: int = Field(default=180, ge=0, description="llm_calls retention; 0 keeps forever")
    findings_ttl_days: int = Field(default=365, ge=0, description="llm_findings retention; 0 keeps forever")
    embedded_max_memory_mib: int = Field(default=0, ge=0,
                                         description="Memory the embedded engine may allocate (its queries and "
                                                     "inserts fail beyond it); 0 = its default, 90% of RAM")
    min_free_disk_mib: int = Field(default=256, ge=0,
                                   description="Free-space reserve of the store's volume: below it inserts are "
                                               "refused (retryable) and the embedded store pauses merges; 0 = off")

    # Receiver
    grpc_endpoint: str = "127.0.0.1:4317"
    http_endpoint: str = "127.0.0.1:4318"
    auth_token: SecretStr | None = Field(default=None, description="Bearer token required on ingest and API")
    max_recv_mib: int = Field(default=64, ge=1, le=2047)
    max_inflight_mib: int = Field(default=256, ge=1)
    batch_max_spans: int = Field(default=20_000, ge=1)
    batch_max_wait_ms: int = Field(default=5, ge=0)
    insert_timeout_s: float = Field(default=10.0, gt=0)
    max_queue_delay_ms: int = Field(default=1000, ge=0,
                                    description="Refuse new exports (RESOURCE_EXHAUSTED / 429, retry later) while "
                                                "the oldest one under way has waited longer than this; 0 = off")
    retry_after_s: int = Field(default=2, ge=1)
    ingest_workers: int | None = Field(default=0, ge=0, le=64,
                                       description="Processes that decode and normalize requests; 0 (default) = "
                                                   "in the receiving process; each worker adds ~170 MiB and, on "
                                                   "2 CPUs, 2 workers ~1.35x spans/s (benchmarks/ingest_bench.py)")
    content_policy: Literal["full", "redacted", "off"] = "full"

    # Receiver transport: who may connect, and how much one request may cost
    allow_unauthenticated: bool = Field(default=False,
                                        description="Serve a non-loopback endpoint without LLMREL_AUTH_TOKEN "
                                                    "(only on a network where every client is trusted)")
    tls_cert_file: Path | None = Field(default=None, description="PEM certificate (chain): TLS on gRPC and HTTP")
    tls_key_file: Path | None = Field(default=None, description="PEM private key of tls_cert_file")
    recv_timeout_s: float = Field(default=30.0, gt=0, le=3600,
                                  description="Longest a request body may take to arrive (gRPC message, HTTP body)")
    max_decoded_mib: int = Field(default=512, ge=16,
                                 description="Largest decoded size of one request (estimated from its spans, "
                                             "attributes, events and links); ingest workers are held by the OS "
                                             "to their start size plus twice this")

    # ClickHouse HTTP interface over the embedded store (llmrel.receiver.clickhouse_http)
    clickhouse_http_endpoint: str | None = Field(
        default="127.0.0.1:8123", description="host:port of ClickHouse's HTTP interface over the embedded store; "
                                              "empty = off (always off on a ClickHouse server)")
    reader_password: SecretStr | None = Field(default=None, description="Password of llmrel_reader (dashboards); "
                                                                        "unset = user disabled")
    writer_password: SecretStr | None = Field(default=None, description="Password of llmrel_writer (inserts into "
                                                                        "otel_traces); unset = user disabled")
    clickhouse_http_admin_secret_file: Path | None = Field(
        default=None, description="File holding llmrel_admin's password; default: created (0600) in the store")
    clickhouse_http_max_concurrent: int = Field(default=16, ge=1, le=256,
                                                description="Queries at once; more get TOO_MANY_SIMULTANEOUS_QUERIES")
    clickhouse_http_max_execution_time_s: int = Field(default=60, ge=1)
    clickhouse_http_max_memory_mib: int = Field(default=2048, ge=16)
    clickhouse_http_max_result_rows: int = Field(default=10_000_000, ge=1)
    clickhouse_http_max_result_mib: int = Field(default=1024, ge=1)
    clickhouse_http_max_body_mib: int = Field(default=256, ge=1, description="Largest insert body (decoded)")

    # Cost
    prices_file: Path | None = Field(default=None, description="YAML of custom prices and model aliases")

    # Analyzers
    analyzers_enabled: bool = True
    rules_file: Path | None = Field(default=None, description="User invariant rules (YAML), added to the default pack")
    lateness_s: float = Field(default=600.0, ge=0, le=7 * 86_400,
                              description="How late (event time) a call may arrive and still be analyzed: "
                                          "windows and budgets stay open this long past their end, and "
                                          "`llmrel analyze` re-reads this far behind its position")

    # Actions: circuit breakers, Grafana alert webhooks, outgoing webhooks, canary gate (llmrel.actions)
    breakers_enabled: bool = Field(default=True, description="Run the breaker controller in serve")
    breaker_min_open_s: float = Field(default=60.0, ge=0, description="An open breaker stays open at least this long")
    breaker_half_open_fraction: float = Field(default=0.1, gt=0, le=1,
                                              description="Share of calls a half-open breaker lets through")
    breaker_close_after: int = Field(default=3, ge=1, description="Healthy probe windows before half-open closes")
    breaker_probe_window_s: float = Field(default=60.0, gt=0, description="Length of a half-open probe window")
    breaker_min_probe_calls: int = Field(default=10, ge=1,
                                         description="Calls a probe window needs to count as healthy")
    breaker_probe_max_failure_rate: float = Field(default=0.1, ge=0, le=1,
                                                  description="Share of probe calls with a finding a healthy "
                                                              "window tolerates")
    breaker_dry_run: list[str] = Field(default_factory=list,
                                       description="Scope globs whose transitions are recorded, not enforced")
    breaker_lease_s: float = Field(default=30.0, gt=0, description="Leader lease of the breaker controller (renewed "
                                                                    "every third of it; a lapsed leader is replaced "
                                                                    "after it)")
    breaker_tick_s: float = Field(default=10.0, gt=0, le=60,
                                  description="How often the controller reads inputs other processes stored (their "
                                              "findings and signals; a follower: the leader's steps). Its own "
                                              "findings and signals, breaker deadlines and the lease wake it at once")
    breaker_webhook_urls: list[str] = Field(default_factory=list,
                                            description="URLs that get a signed JSON POST per transition")
    breaker_webhook_secret: SecretStr | None = Field(default=None, description="HMAC-SHA256 key of outgoing webhooks")
    grafana_webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC secret of the Grafana contact point: signatures required when set")
    grafana_webhook_signature_header: str = "X-Grafana-Alerting-Signature"
    grafana_webhook_timestamp_header: str | None = Field(
        default=None, description="Header carrying the signed timestamp (Grafana hmacConfig.timestampHeader)")
    grafana_webhook_max_skew_s: int = Field(default=300, ge=1, description="Oldest signed timestamp accepted")
    gate_min_calls: int = Field(default=50, ge=1, description="Calls each version needs before the gate judges")
    gate_alpha: float = Field(default=0.05, gt=0, lt=1, description="Significance level of the gate (all metrics)")

    # Intelligence: explanations of findings, output-content drift (llmrel.intel)
    explain_findings: bool = Field(default=True, description="Explain each new finding in serve (llm_explanations)")
    explain_interval_s: float = Field(default=300.0, ge=0,
                                      description="Per-call findings of one rule and service are explained at "
                                                  "most once per interval (the API explains any on demand)")
    content_drift_enabled: bool = Field(default=True,
                                        description="Detect drift of output content (needs content capture)")
    content_drift_window: int = Field(default=200, ge=20, description="Calls per tested window of output content")
    narrative_url: str | None = Field(default=None, description="OpenAI-compatible base URL: a generated incident "
                                                                "summary of each explanation's numbers (off unset)")
    narrative_model: str = "gpt-4o-mini"
    narrative_api_key: SecretStr | None = Field(default=None, description="API key of narrative_url")
    narrative_timeout_s: float = Field(default=10.0, gt=0, le=120)

    # Logging
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"

    @field_validator("clickhouse_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        scheme = urlparse(value).scheme
        if scheme not in ("chdb", "http", "https"):
            raise ValueError(f"scheme must be chdb, http or https, got {scheme!r}")
        return value

    @field_validator("clickhouse_http_endpoint")
    @classmethod
    def _check_optional_endpoint(cls, value: str | None) -> str | None:
        return cls._check_endpoint(value) if value else None

    @field_validator("grpc_endpoint", "http_endpoint")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError(f"expected host:port, got {value!r}")
        return value

    @field_validator("reader_password", "writer_password")
    @classmethod
    def _check_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            raise ValueError("is empty: set a password, or unset the variable to disable the user")
        return value

    @field_validator("auth_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        token = value.get_secret_value()
        if not token:
            raise ValueError("is empty: set a token, or unset the variable to serve loopback without one")
        if not all("!" <= c <= "~" for c in token):
            raise ValueError("must be printable ASCII without spaces (it is sent in an HTTP/gRPC header)")
        return value

    @field_validator("breaker_webhook_urls")
    @classmethod
    def _check_webhook_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
                raise ValueError(f"expected an http(s) URL, got {url!r}")
        return value

    @field_validator("prices_file", "rules_file", "tls_cert_file", "tls_key_file")
    @classmethod
    def _check_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"file not found: {value}")
        return value

    @model_validator(mode="after")
    def _check_batching(self) -> Settings:
        if self.max_recv_mib > self.max_inflight_mib:
            raise ValueError("max_recv_mib must be <= max_inflight_mib")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: set both or neither")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None

    def unauthenticated_exposure(self, *endpoints: str) -> str | None:
        """Why serving `endpoints` is refused: a non-loopback address with no token (None when allowed)."""
        if self.auth_token is not None or self.allow_unauthenticated:
            return None
        exposed = [e for e in endpoints if not is_loopback(e)]
        if not exposed:
            return None
        return (f"{', '.join(exposed)} accept(s) connections from other hosts but no LLMREL_AUTH_TOKEN is set: "
                "set a token (senders pass `Authorization: Bearer <token>`), bind 127.0.0.1, or set "
                "LLMREL_ALLOW_UNAUTHENTICATED=true if every host that can reach it is trusted")

    @property
    def is_embedded(self) -> bool:
        return self.clickhouse_url.startswith("chdb:")

    @property
    def embedded_path(self) -> Path | None:
        """The embedded store's directory (None for a ClickHouse server)."""
        return Path(urlparse(self.clickhouse_url).path) if self.is_embedded else None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("LLMREL_CONFIG")
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)


def is_loopback(endpoint: str) -> bool:
    """True when `host:port` listens on the loopback interface only (`localhost`, 127.0.0.0/8, ::1)."""
    host = endpoint.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name may resolve to any interface


class ConfigError(Exception):
    """Raised with every configuration problem, one per line."""


def load_settings(**overrides: Any) -> Settings:
    """Build `Settings` from overrides (CLI flags) > env > `$LLMREL_CONFIG` YAML > defaults.

    Raises:
        ConfigError: listing every invalid setting at once.
    """
    config_file = os.environ.get("LLMREL_CONFIG")
    if config_file and not Path(config_file).is_file():
        raise ConfigError(f"LLMREL_CONFIG: file not found: {config_file}")
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "config"
            lines.append(f"{where}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from None
