"""The one settings object: read once from ``VENUS_*`` environment variables and CLI flags.

Every field has a default, an environment variable (``VENUS_`` + the upper-cased name) and a
CLI flag (``--`` + the name with dashes). A bad value fails at startup with the key and the value.

To add a setting, add one ``name: type = setting(default, "what it does", ...)`` line to :class:`Settings`
(bounds of a number as ``ge``/``gt``/``le``), then run ``scripts/gen_settings_docs.py`` and
``scripts/gen_chart.py``; ``--help``, docs/configuration.md and the Helm chart all follow from that line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from venus_grpc._settings_fields import IPNetwork, Section, SettingsError, Spec, invalid, setting, specs_of
from venus_grpc.topics import dead_letter_topic_problem, template_problem

__all__ = ["SERVICE_NAME", "SPECS", "IPNetwork", "Settings", "SettingsError", "Spec", "invalid", "load_settings"]

TracesExporter = Literal["otlp", "console", "none"]
LogFormat = Literal["json", "console"]
KafkaCompression = Literal["none", "gzip", "lz4", "zstd", "snappy"]
KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
SERVICE_NAME = "venus.v1.IngestService"
_PUBLIC_BY_DEFAULT = frozenset({"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"})


@dataclass(frozen=True, slots=True)
class Settings:
    """How one Venus process runs. Built by :func:`load_settings`, then passed in, never global."""

    host: str = setting("0.0.0.0", "listen address of the gRPC and HTTP ports",
                        section=Section("Network", "Where and how Venus listens, and how it shuts down."))
    port: int = setting(50051, "gRPC listen port (0: any free port)", ge=0, le=65535)
    metrics_host: str = setting("0.0.0.0", "/metrics listen address")
    metrics_enabled: bool = setting(True, "serve Prometheus /metrics")
    metrics_port: int = setting(9464, "/metrics port (0: any free port)", ge=0, le=65535)
    health_port: int = setting(0, "plaintext port serving only grpc.health.v1, for kubelet probes when TLS is on "
                               "(0: none)", ge=0, le=65535)
    max_message_bytes: int = setting(4 * 1024 * 1024, "largest request (a gRPC message, an HTTP body); an HTTP body "
                                     "is refused once past it, never read whole", gt=0)
    trusted_proxies: tuple[IPNetwork, ...] = setting((), "CIDRs whose x-forwarded-for is believed")
    shutdown_grace_s: float = setting(20.0, "time in-flight RPCs get to finish on SIGTERM", gt=0)
    workers: int = setting(0, "worker processes of venus serve, sharing the port (0: one per core)", ge=0)
    reuse_port: bool = setting(False, "SO_REUSEPORT, so that processes share the port (set for workers by "
                               "venus serve)")

    tls_cert_path: str = setting("", "PEM certificate chain of the gRPC and HTTP ports (set: TLS); re-read when it "
                                 "changes",
                                 section=Section("Transport security", "TLS when a certificate is given, mTLS "
                                                 "when a client CA is given too."))
    tls_key_path: str = setting("", "PEM private key of tls_cert_path")
    tls_client_ca_path: str = setting("", "PEM CA that must have signed every client's certificate (set: mTLS)")

    max_concurrent_streams: int = setting(100, "calls at once on one HTTP/2 connection (capped to "
                                         "max_concurrent_rpcs)", gt=0, section=Section(
        "Connection limits", "Per connection, enforced by gRPC's core."))
    max_metadata_bytes: int = setting(16 * 1024, "request headers of one call; beyond it RESOURCE_EXHAUSTED (HTTP: "
                                      "431 and the connection closed)", gt=0)
    keepalive_time_s: float = setting(60.0, "Venus pings an idle connection this often to find dead clients", gt=0)
    keepalive_timeout_s: float = setting(20.0, "a connection whose ping is not answered within this is closed", gt=0)
    keepalive_min_ping_interval_s: float = setting(10.0, "clients pinging more often than this get GOAWAY "
                                                   "(too_many_pings)", gt=0)
    keepalive_permit_without_calls: bool = setting(False, "accept client pings on a connection with no call open")
    max_connection_idle_s: float = setting(300.0, "close connections with no call for this long (0: never)", ge=0)
    max_connection_age_s: float = setting(600.0, "close client connections (GOAWAY) after this long so that "
                                          "clients rebalance (0: never)", ge=0)
    max_connection_age_grace_s: float = setting(30.0, "time RPCs on a connection closed for its age get to finish",
                                                ge=0)
    request_read_timeout_s: float = setting(30.0, "a unary call whose request message (HTTP: body) has not arrived "
                                            "this long after its headers ends with DEADLINE_EXCEEDED, freeing its "
                                            "max_concurrent_rpcs slot (0: no limit)", ge=0)

    http_enabled: bool = setting(False, "serve venus.v1.IngestService/UploadEvents over HTTP too (Connect and "
                                 "gRPC-Web; on in venus dev)", section=Section(
                                     "HTTP", "The HTTP port: Connect and gRPC-Web for browsers and curl, over "
                                     "HTTP/1.1 (and HTTP/2 with http2_enabled), with the same admission as gRPC "
                                     "(docs/http.md)."))
    http_port: int = setting(8080, "HTTP listen port (0: any free port)", ge=0, le=65535)
    http_cors_origins: frozenset[str] = setting(frozenset(), "origins whose browser pages may call the HTTP port, "
                                                "as https://app.example.com (*: any; empty: no CORS)")
    http_headers_timeout_s: float = setting(10.0, "an HTTP request whose headers have not all arrived this long "
                                            "after its first byte (or its connection) is cut off", gt=0)
    http_keepalive_s: float = setting(5.0, "an idle HTTP keep-alive connection (HTTP/2: one with no open "
                                      "stream) is closed after this long", gt=0)
    http_max_connections: int = setting(1000, "HTTP connections one process keeps open; a request beyond it "
                                        "is answered 503 and its connection closed", gt=0)
    http2_enabled: bool = setting(False, "serve HTTP/2 on the HTTP port too (cleartext with prior knowledge, or "
                                  "ALPN h2 over TLS); an HTTP/2 call costs more CPU than an HTTP/1.1 one")

    api_keys_path: str = setting("", "TOML file of API key hashes and their grants (empty: no key needed)",
                                 section=Section("Access", "API keys, and quotas per app and process."))
    api_keys_reload_s: float = setting(5.0, "how often the API keys file is checked for changes", gt=0)
    public_services: frozenset[str] = setting(_PUBLIC_BY_DEFAULT, "gRPC services callable without an API key")
    quota_events_per_s: float = setting(0.0, "events per second per app and process (0: no quota)", ge=0)
    quota_bytes_per_s: float = setting(0.0, "request bytes per second per app and process (0: no quota)", ge=0)
    quota_burst_s: float = setting(1.0, "a quota bucket holds this many seconds of its rate", gt=0)
    quota_per_category: bool = setting(False, "one quota bucket per app and category instead of per app")
    quota_app_overrides: frozenset[str] = setting(frozenset(), "app_id=EVENTS_PER_S[/BYTES_PER_S] entries: an "
                                                  "app's own rates (0: unlimited)")

    max_events_per_batch: int = setting(1000, "events per request", gt=0,
                                        section=Section("Batch and event limits"))
    max_event_payload_bytes: int = setting(256 * 1024, "payload size per event", gt=0)
    max_event_id_chars: int = setting(128, "event id length", gt=0)
    max_clock_skew_s: float = setting(3600.0, "how far in the future occurred_at may be", gt=0)
    max_events_in_flight: int = setting(5_000, "events one process works on at once (at least "
                                        "max_events_per_batch); beyond it RESOURCE_EXHAUSTED with RetryInfo", gt=0)
    max_concurrent_rpcs: int = setting(128, "RPCs (streams included) one process serves at once; beyond it gRPC "
                                       "answers RESOURCE_EXHAUSTED before any work. Venus's own adaptive limit "
                                       "(at most half of it) refuses first, with RetryInfo; a connection carries at "
                                       "most this many calls too (max_concurrent_streams is capped to it)", gt=0)
    overload_latency_target_s: float = setting(0.1, "average service time the adaptive limit of calls in flight "
                                               "(gRPC and HTTP together) aims at (or twice the fastest recent one, "
                                               "if larger); calls beyond the limit, or whose deadline is nearer than "
                                               "calls take, get RESOURCE_EXHAUSTED with RetryInfo before their "
                                               "request is read (0: a fixed limit of half max_concurrent_rpcs)", ge=0)
    max_batches_in_flight_per_stream: int = setting(8, "batches of one StreamEvents stream processed at once", gt=0)
    max_bytes_in_flight: int = setting(64 * 1024 * 1024, "bytes one process works on at once, counting every "
                                       "event's copy of the batch meta (at least max_message_bytes); beyond it "
                                       "RESOURCE_EXHAUSTED with RetryInfo", gt=0)
    max_labels: int = setting(64, "labels in a batch's meta, which every event's message carries", ge=0)
    max_label_key_chars: int = setting(128, "length of a label's key", gt=0)
    max_label_value_chars: int = setting(1024, "length of a label's value", gt=0)
    max_labels_bytes: int = setting(4096, "UTF-8 bytes of all label keys and values of a batch together", gt=0)
    allowed_categories: frozenset[str] = setting(frozenset(), "allow-list of categories (empty: any well-formed "
                                                 "one)")

    kafka_bootstrap: str = setting("127.0.0.1:9092", "Kafka bootstrap servers", section=Section("Kafka"))
    kafka_client_id: str = setting("venus", "Kafka client id")
    topic_template: str = setting("to_analyzer__0.{category}", "topic per category; contains {category}")
    kafka_linger_ms: int = setting(5, "producer batching delay", ge=0)
    kafka_max_batch_bytes: int = setting(1024 * 1024, "producer batch size, also the largest message published",
                                         gt=0)
    kafka_compression: KafkaCompression = setting("none", "producer compression")
    kafka_request_timeout_ms: int = setting(30_000, "Kafka request timeout", gt=0)
    kafka_connect_retry_s: float = setting(2.0, "pause between Kafka connection attempts", gt=0)
    publish_timeout_s: float = setting(10.0, "longest wait for acknowledgements (also bounded by the RPC deadline)",
                                       gt=0)
    kafka_security_protocol: KafkaSecurityProtocol = setting("PLAINTEXT", "how Venus talks to Kafka")
    kafka_sasl_mechanism: KafkaSaslMechanism = setting("PLAIN", "SASL mechanism")
    kafka_sasl_username: str = setting("", "SASL user name (needed with SASL_PLAINTEXT and SASL_SSL)")
    kafka_sasl_password: str = setting("", "SASL password (kept out of logs)", secret=True)
    kafka_ssl_ca_path: str = setting("", "PEM CA of the Kafka brokers (empty: the system's CAs)")

    dead_letter_topic: str = setting("", "topic receiving each event rejected for its content (validation error, "
                                     "too large, duplicate id) with why, for SDK teams (empty: off)",
                                     section=Section("Dead letters", "Events rejected for their content, sent aside "
                                                     "without the answer waiting: see docs/dead-letters.md."))
    dead_letter_kafka_bootstrap: str = setting("", "Kafka cluster for dead letters; a separate one keeps them off the "
                                               "event path (empty: kafka_bootstrap)")
    dead_letter_max_pending_bytes: int = setting(16 * 1024 * 1024, "bytes of dead letters one process holds, queued "
                                                 "or awaiting acknowledgement; beyond it new ones are dropped and "
                                                 "counted", gt=0)

    geoip_db_path: str = setting("", "MaxMind City .mmdb, reloaded when it changes (empty: the bundled 2018 "
                                 "GeoLite2-City)", section=Section("Enrichment"))
    geoip_cache_size: int = setting(65_536, "LRU entries in front of the GeoIP database", gt=0)
    geoip_reload_s: float = setting(60.0, "how often the GeoIP database file is checked for changes (a changed one "
                                    "is reloaded)", gt=0)

    service_name: str = setting("venus", "service name in logs and traces", section=Section("Observability"))
    traces_exporter: TracesExporter = setting("otlp", "span export (also OTEL_TRACES_EXPORTER)")
    log_level: str = setting("INFO", "lowest level logged: DEBUG, INFO, WARNING or ERROR")
    log_format: LogFormat = setting("json", "log line format")
    log_shipping: bool = setting(False, "also produce every log line to logs_topic, keyed by trace id")
    logs_topic: str = setting("venus_logs", "Kafka topic of shipped log lines")
    logs_kafka_bootstrap: str = setting("", "Kafka cluster for shipped logs; a separate one keeps logs off the "
                                        "event path (empty: kafka_bootstrap)")
    log_ship_queue_size: int = setting(10_000, "log lines waiting to be shipped; beyond it they are dropped", gt=0)
    debug_app_ids: frozenset[str] = setting(frozenset(), "apps whose requests are logged at DEBUG")
    debug_device_ids: frozenset[str] = setting(frozenset(), "devices whose requests are logged at DEBUG")

    def topic_for(self, category: str) -> str:
        """The Kafka topic that receives ``category``'s events."""
        return self.topic_template.format(category=category)

    def __post_init__(self) -> None:
        """Bounds come from each field's metadata; what relates two fields, or needs parsing, is checked here."""
        for spec in SPECS.values():
            spec.check(getattr(self, spec.name))
        _check(self.max_events_in_flight, "max_events_in_flight",
               self.max_events_in_flight >= self.max_events_per_batch,
               f"at least max_events_per_batch ({self.max_events_per_batch}), or a full batch could never run")
        _check(self.max_bytes_in_flight, "max_bytes_in_flight", self.max_bytes_in_flight >= self.max_message_bytes,
               f"at least max_message_bytes ({self.max_message_bytes}), or a large batch could never run")
        self._check_topics()
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

    def _check_topics(self) -> None:
        legal = "a Kafka topic of letters, digits, '.', '_' and '-'"
        problem = template_problem(self.topic_template)
        _check(self.topic_template, "topic_template", not problem,
               f"{legal} with {{category}} as its only placeholder; {problem}")
        dead_letters = self.dead_letter_topic
        problem = dead_letter_topic_problem(dead_letters, self.topic_template) if dead_letters else ""
        _check(dead_letters, "dead_letter_topic", not problem, f"empty (off), or {legal} of no category; {problem}")

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


# Every setting's parser, bounds and description; building it refuses a field of a type no parser reads.
SPECS: Mapping[str, Spec] = specs_of(Settings)


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from ``environ`` (default: the process environment), then ``overrides``.

    Overrides are typed values (from CLI flags or tests); environment values are strings parsed
    by the field's type. ``OTEL_TRACES_EXPORTER`` is honoured for ``traces_exporter``.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if "OTEL_TRACES_EXPORTER" in environ:
        values["traces_exporter"] = SPECS["traces_exporter"].parse(environ["OTEL_TRACES_EXPORTER"],
                                                                   key="OTEL_TRACES_EXPORTER")
    for name, spec in SPECS.items():
        raw = environ.get(spec.env)
        if raw is not None:
            values[name] = spec.parse(raw)
    unknown = set(overrides) - set(SPECS)
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)


def _check(value: object, name: str, ok: bool, expected: str) -> None:
    if not ok:
        raise invalid(name, value, expected)


def _quota_override(entry: str) -> tuple[str, tuple[float, float]] | None:
    app_id, _, rates = entry.partition("=")
    events, _, nbytes = rates.partition("/")
    try:
        parsed = (float(events), float(nbytes or 0))
    except ValueError:
        return None
    return (app_id.strip(), parsed) if app_id.strip() and min(parsed) >= 0 else None
