"""The one settings object: read once from ``VENUS_*`` environment variables and CLI flags.

Every field has a default, an environment variable (``VENUS_`` + the upper-cased name) and a
CLI flag (``--`` + the name with dashes). A bad value fails at startup with the key and the value.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
TracesExporter = Literal["otlp", "console", "none"]
LogFormat = Literal["json", "console"]
KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
SERVICE_NAME = "venus.v1.IngestService"
_PUBLIC_BY_DEFAULT = frozenset({"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"})

_ENV_PREFIX = "VENUS_"
_BOOLEANS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


class SettingsError(ValueError):
    """A setting has a value Venus cannot use; the message names the key and the value.

    ``field`` and ``expected`` let a caller name the key the way the user wrote it (a CLI flag).
    """

    def __init__(self, message: str, *, field: str = "", expected: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.expected = expected


@dataclass(frozen=True, slots=True)
class Settings:
    """How one Venus process runs. Built by :func:`load_settings`, then passed in, never global."""

    # --- network
    host: str = "0.0.0.0"
    port: int = 50051
    metrics_host: str = "0.0.0.0"
    metrics_enabled: bool = True
    metrics_port: int = 9464  # 0: any free port
    health_port: int = 0  # a plaintext port serving grpc.health.v1 only, for probes when TLS is on; 0: none
    max_message_bytes: int = 4 * 1024 * 1024
    trusted_proxies: tuple[IPNetwork, ...] = ()
    shutdown_grace_s: float = 20.0
    workers: int = 0  # `venus serve` worker processes; 0: one per core
    reuse_port: bool = False  # SO_REUSEPORT, set for workers so that they share the port

    # --- transport security: TLS when a certificate is given, mTLS when a client CA is given too
    tls_cert_path: str = ""  # PEM certificate chain; re-read when the file changes
    tls_key_path: str = ""  # PEM private key of tls_cert_path
    tls_client_ca_path: str = ""  # set: every client must present a certificate signed by this CA

    # --- connection limits (per connection, enforced by gRPC's core)
    max_concurrent_streams: int = 100  # RPCs at once on one HTTP/2 connection
    max_metadata_bytes: int = 16 * 1024  # all request headers of one call
    keepalive_time_s: float = 60.0  # Venus pings an idle client this often to find dead connections
    keepalive_timeout_s: float = 20.0  # ... and closes the connection if the ping is not answered
    keepalive_min_ping_interval_s: float = 10.0  # clients pinging more often get GOAWAY (too_many_pings)
    keepalive_permit_without_calls: bool = False  # allow client pings on a connection with no call
    max_connection_idle_s: float = 300.0  # close connections with no call for this long; 0: never
    max_connection_age_s: float = 600.0  # close (GOAWAY) older connections so clients rebalance; 0: never
    max_connection_age_grace_s: float = 30.0  # calls in flight get this long to finish after that GOAWAY
    request_read_timeout_s: float = 30.0  # a unary call's request must arrive this soon after its headers; 0: no limit

    # --- access: API keys and per-app quotas
    api_keys_path: str = ""  # TOML file of key hashes and grants; empty: no key needed
    api_keys_reload_s: float = 5.0  # how often the keys file is checked for changes
    public_services: frozenset[str] = _PUBLIC_BY_DEFAULT  # gRPC services callable without a key
    quota_events_per_s: float = 0.0  # per app and process; 0: no quota
    quota_bytes_per_s: float = 0.0  # request bytes per app and process; 0: no quota
    quota_burst_s: float = 1.0  # a bucket holds this many seconds of its rate
    quota_per_category: bool = False  # one bucket per app and category instead of per app
    quota_app_overrides: frozenset[str] = frozenset()  # "app_id=EVENTS_PER_S[/BYTES_PER_S]" entries

    # --- batch and event limits
    max_events_per_batch: int = 1000
    max_event_payload_bytes: int = 256 * 1024
    max_event_id_chars: int = 128
    max_clock_skew_s: float = 3600.0
    max_events_in_flight: int = 5_000
    max_concurrent_rpcs: int = 128  # per process; beyond it gRPC itself answers RESOURCE_EXHAUSTED
    max_batches_in_flight_per_stream: int = 8
    allowed_categories: frozenset[str] = frozenset()  # empty: every well-formed category

    # --- kafka
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_client_id: str = "venus"
    topic_template: str = "to_analyzer__0.{category}"
    kafka_linger_ms: int = 5
    kafka_max_batch_bytes: int = 1024 * 1024  # also the largest message Venus publishes
    kafka_compression: Literal["none", "gzip", "lz4", "zstd", "snappy"] = "none"
    kafka_request_timeout_ms: int = 30_000
    kafka_connect_retry_s: float = 2.0
    publish_timeout_s: float = 10.0
    kafka_security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: KafkaSaslMechanism = "PLAIN"
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = field(default="", repr=False)
    kafka_ssl_ca_path: str = ""  # empty: the system's CA certificates

    # --- enrichment
    geoip_db_path: str = ""  # empty: the bundled GeoLite2-City database
    geoip_cache_size: int = 65_536
    geoip_reload_s: float = 60.0  # how often the database file is checked for changes (one stat)

    # --- observability
    service_name: str = "venus"
    traces_exporter: TracesExporter = "otlp"
    log_level: str = "INFO"
    log_format: LogFormat = "json"
    log_shipping: bool = False  # also produce every log line to logs_topic, keyed by trace id
    logs_topic: str = "venus_logs"
    logs_kafka_bootstrap: str = ""  # empty: kafka_bootstrap; a separate cluster keeps logs off the event path
    log_ship_queue_size: int = 10_000  # lines waiting to be shipped; beyond it they are dropped
    debug_app_ids: frozenset[str] = frozenset()  # requests of these apps are logged at DEBUG
    debug_device_ids: frozenset[str] = frozenset()  # ... and of these devices

    def topic_for(self, category: str) -> str:
        """The Kafka topic that receives ``category``'s events."""
        return self.topic_template.format(category=category)

    def __post_init__(self) -> None:
        _check(self.port, "port", 0 <= self.port <= 65535, "a TCP port (0-65535)")
        _check(self.metrics_port, "metrics_port", 0 <= self.metrics_port <= 65535, "a TCP port (0-65535)")
        _check(self.health_port, "health_port", 0 <= self.health_port <= 65535, "a TCP port (0: none)")
        for name in ("max_message_bytes", "max_events_per_batch", "max_event_payload_bytes", "max_event_id_chars",
                     "max_events_in_flight", "max_batches_in_flight_per_stream", "max_concurrent_rpcs",
                     "kafka_max_batch_bytes", "log_ship_queue_size", "kafka_request_timeout_ms", "geoip_cache_size"):
            value = getattr(self, name)
            _check(value, name, value > 0, "a positive whole number")
        for name in ("max_concurrent_streams", "max_metadata_bytes"):
            value = getattr(self, name)
            _check(value, name, value > 0, "a positive whole number")
        for name in ("shutdown_grace_s", "max_clock_skew_s", "publish_timeout_s", "kafka_connect_retry_s",
                     "keepalive_time_s", "keepalive_timeout_s", "keepalive_min_ping_interval_s",
                     "api_keys_reload_s", "quota_burst_s", "geoip_reload_s"):
            value = getattr(self, name)
            _check(value, name, value > 0, "a positive number of seconds")
        _check(self.workers, "workers", self.workers >= 0, "zero (one per core) or more worker processes")
        _check(self.max_events_in_flight, "max_events_in_flight",
               self.max_events_in_flight >= self.max_events_per_batch,
               f"at least max_events_per_batch ({self.max_events_per_batch}), or a full batch could never run")
        _check(self.kafka_linger_ms, "kafka_linger_ms", self.kafka_linger_ms >= 0, "zero or more milliseconds")
        _check(self.topic_template, "topic_template", "{category}" in self.topic_template,
               "a template containing {category}")
        for name in ("max_connection_idle_s", "max_connection_age_s", "max_connection_age_grace_s",
                     "request_read_timeout_s", "quota_events_per_s", "quota_bytes_per_s"):
            value = getattr(self, name)
            _check(value, name, value >= 0, "zero (none) or a positive number")
        self._check_security()
        for entry in self.quota_app_overrides:
            _check(entry, "quota_app_overrides", _quota_override(entry) is not None,
                   "app_id=EVENTS_PER_S or app_id=EVENTS_PER_S/BYTES_PER_S (0: no limit), comma separated")
        _check(self.log_level, "log_level",
               self.log_level.upper() in {"DEBUG", "INFO", "WARNING", "ERROR"}, "DEBUG, INFO, WARNING or ERROR")


    def quota_rates(self) -> dict[str, tuple[float, float]]:
        """Per-app (events/s, bytes/s) from ``quota_app_overrides``; other apps get the default rates."""
        parsed = (_quota_override(entry) for entry in self.quota_app_overrides)
        return dict(override for override in parsed if override is not None)

    @property
    def tls(self) -> bool:
        """True when the gRPC port serves TLS."""
        return bool(self.tls_cert_path)

    def _check_security(self) -> None:
        _check(self.tls_key_path, "tls_key_path", bool(self.tls_key_path) == bool(self.tls_cert_path),
               "set together with tls_cert_path (a certificate and its private key)")
        _check(self.tls_client_ca_path, "tls_client_ca_path", not self.tls_client_ca_path or self.tls,
               "set only with tls_cert_path and tls_key_path: mTLS needs TLS")
        _check(",".join(sorted(self.public_services)), "public_services", SERVICE_NAME not in self.public_services,
               f"services callable without a key; {SERVICE_NAME} always needs one")
        sasl = self.kafka_security_protocol.startswith("SASL")
        _check(self.kafka_sasl_username, "kafka_sasl_username",
               not sasl or bool(self.kafka_sasl_username and self.kafka_sasl_password),
               f"a user name and password with kafka_security_protocol={self.kafka_security_protocol}")


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from ``environ`` (default: the process environment), then ``overrides``.

    Overrides are typed values (from CLI flags or tests); environment values are strings parsed
    by the field's type. ``OTEL_TRACES_EXPORTER`` is honoured for ``traces_exporter``.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    if "OTEL_TRACES_EXPORTER" in environ:
        values["traces_exporter"] = parse_value(fields["traces_exporter"], environ["OTEL_TRACES_EXPORTER"],
                                                key="OTEL_TRACES_EXPORTER")
    for name, f in fields.items():
        raw = environ.get(_ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = parse_value(f, raw, key=_ENV_PREFIX + name.upper())
    unknown = set(overrides) - set(fields)
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)


def parse_value(f: dataclasses.Field[Any], raw: str, *, key: str | None = None) -> Any:
    """Parse the text ``raw`` as the type of settings field ``f``; name ``key`` when it fails."""
    key = key or f.name
    kind = f.type if isinstance(f.type, str) else str(f.type)
    try:
        if kind == "bool":
            if raw.lower() not in _BOOLEANS:
                raise ValueError("expected true or false")
            return _BOOLEANS[raw.lower()]
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "tuple[IPNetwork, ...]":
            return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in raw.split(",") if p.strip())
        if kind == "frozenset[str]":
            return frozenset(p.strip() for p in raw.split(",") if p.strip())
        if kind.startswith(("Literal", "TracesExporter", "LogFormat", "Kafka")):
            choices = _literal_choices(kind)
            if raw not in choices:
                raise ValueError(f"expected one of {', '.join(choices)}")
            return raw
        return raw
    except ValueError as exc:
        raise SettingsError(f"{key}={raw!r} is not valid: {exc}") from None


def _literal_choices(kind: str) -> tuple[str, ...]:
    alias = {"TracesExporter": TracesExporter, "LogFormat": LogFormat, "KafkaSecurityProtocol": KafkaSecurityProtocol,
             "KafkaSaslMechanism": KafkaSaslMechanism}.get(kind)
    if alias is not None:
        return tuple(get_args(alias))
    inner = kind[kind.index("[") + 1 : kind.rindex("]")]
    return tuple(part.strip().strip("'\"") for part in inner.split(","))


def _check(value: object, key: str, ok: bool, expected: str) -> None:
    if not ok:
        raise SettingsError(f"{_ENV_PREFIX}{key.upper()}={value!r} is not valid: expected {expected}",
                            field=key, expected=expected)


def field_help() -> dict[str, str]:
    """One line per setting for ``--help``: what it does, its environment variable and default."""
    lines = {}
    for f in dataclasses.fields(Settings):
        where = f"env {_ENV_PREFIX}{f.name.upper()} (default: {_shown_default(f.default)})"
        lines[f.name] = f"{HELP[f.name]}; {where}" if f.name in HELP else where
    return lines


# What each setting does, in a few words: shown by ``--help`` and in the Helm chart's values.yaml
# (scripts/gen_chart.py refuses a setting without one).
HELP: Mapping[str, str] = {
    "host": "gRPC listen address",
    "port": "gRPC listen port",
    "metrics_host": "/metrics listen address",
    "metrics_enabled": "serve Prometheus /metrics",
    "metrics_port": "/metrics port (0: any free port)",
    "health_port": "plaintext port serving only grpc.health.v1, for kubelet probes when TLS is on (0: none)",
    "max_message_bytes": "largest gRPC request",
    "trusted_proxies": "CIDRs whose x-forwarded-for is believed",
    "shutdown_grace_s": "time in-flight RPCs get to finish on SIGTERM",
    "workers": "worker processes sharing the port (0: one per core)",
    "reuse_port": "SO_REUSEPORT (set for workers by venus serve)",
    "tls_cert_path": "PEM certificate chain of the gRPC port (set: TLS); re-read when it changes",
    "tls_key_path": "PEM private key of tls_cert_path",
    "tls_client_ca_path": "PEM CA that must have signed every client's certificate (set: mTLS)",
    "max_concurrent_streams": "calls at once on one HTTP/2 connection",
    "max_metadata_bytes": "request headers of one call; beyond it RESOURCE_EXHAUSTED",
    "keepalive_time_s": "Venus pings an idle connection this often to find dead clients",
    "keepalive_timeout_s": "a connection whose ping is not answered within this is closed",
    "keepalive_min_ping_interval_s": "clients pinging more often than this get GOAWAY (too_many_pings)",
    "keepalive_permit_without_calls": "accept client pings on a connection with no call open",
    "max_connection_idle_s": "close connections with no call for this long (0: never)",
    "max_connection_age_s": "close client connections (GOAWAY) after this long so that clients rebalance (0: never)",
    "max_connection_age_grace_s": "time RPCs on a connection closed for its age get to finish",
    "request_read_timeout_s": "a unary call whose request message has not arrived this long after its headers is "
                              "ended, freeing its max_concurrent_rpcs slot (0: no limit)",
    "api_keys_path": "TOML file of API key hashes and their grants (empty: no key needed)",
    "api_keys_reload_s": "how often the API keys file is checked for changes",
    "public_services": "gRPC services callable without an API key",
    "quota_events_per_s": "events per second per app and process (0: no quota)",
    "quota_bytes_per_s": "request bytes per second per app and process (0: no quota)",
    "quota_burst_s": "a quota bucket holds this many seconds of its rate",
    "quota_per_category": "one quota bucket per app and category instead of per app",
    "quota_app_overrides": "app_id=EVENTS_PER_S[/BYTES_PER_S] entries: an app's own rates (0: unlimited)",
    "max_events_per_batch": "events per request",
    "max_event_payload_bytes": "payload size per event",
    "max_event_id_chars": "event id length",
    "max_clock_skew_s": "how far in the future occurred_at may be",
    "max_events_in_flight": "events one process works on at once; beyond it RESOURCE_EXHAUSTED",
    "max_concurrent_rpcs": "RPCs one process serves at once; beyond it gRPC answers RESOURCE_EXHAUSTED",
    "max_batches_in_flight_per_stream": "batches of one StreamEvents stream processed at once",
    "allowed_categories": "allow-list of categories (empty: any well-formed one)",
    "kafka_bootstrap": "Kafka bootstrap servers",
    "kafka_client_id": "Kafka client id",
    "topic_template": "topic per category; contains {category}",
    "kafka_linger_ms": "producer batching delay",
    "kafka_max_batch_bytes": "producer batch size, also the largest message published",
    "kafka_compression": "producer compression",
    "kafka_request_timeout_ms": "Kafka request timeout",
    "kafka_connect_retry_s": "pause between Kafka connection attempts",
    "publish_timeout_s": "longest wait for acknowledgements (also bounded by the RPC deadline)",
    "kafka_security_protocol": "how Venus talks to Kafka: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
    "kafka_sasl_mechanism": "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
    "kafka_sasl_username": "SASL user name",
    "kafka_sasl_password": "SASL password (kept out of logs)",
    "kafka_ssl_ca_path": "PEM CA of the Kafka brokers (empty: the system's CAs)",
    "geoip_db_path": "MaxMind City .mmdb, reloaded when it changes (empty: the bundled 2018 GeoLite2-City)",
    "geoip_cache_size": "LRU entries in front of the GeoIP database",
    "geoip_reload_s": "how often the GeoIP database file is checked for changes (a changed one is reloaded)",
    "service_name": "service name in logs and traces",
    "traces_exporter": "span export (also OTEL_TRACES_EXPORTER)",
    "log_level": "DEBUG, INFO, WARNING or ERROR",
    "log_format": "log line format",
    "log_shipping": "also produce every log line to logs_topic, keyed by trace id",
    "logs_topic": "Kafka topic of shipped log lines",
    "logs_kafka_bootstrap": "Kafka cluster for shipped logs (empty: kafka_bootstrap)",
    "log_ship_queue_size": "log lines waiting to be shipped; beyond it they are dropped",
    "debug_app_ids": "apps whose requests are logged at DEBUG",
    "debug_device_ids": "devices whose requests are logged at DEBUG",
}


def _quota_override(entry: str) -> tuple[str, tuple[float, float]] | None:
    app_id, _, rates = entry.partition("=")
    events, _, nbytes = rates.partition("/")
    try:
        parsed = (float(events), float(nbytes or 0))
    except ValueError:
        return None
    return (app_id.strip(), parsed) if app_id.strip() and min(parsed) >= 0 else None


def _shown_default(value: object) -> str:
    if isinstance(value, frozenset):
        return ",".join(sorted(value)) or "none"
    return repr(value)
