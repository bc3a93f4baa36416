"""Every Prometheus metric Venus exports, declared once, with what it means."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# The fate metrics (uploads, events, rejections, auth failures, throttled events) carry the transport a batch
# came by: "grpc" (the gRPC port) or "http" (Connect and gRPC-Web on the HTTP port).
TRANSPORTS = ("grpc", "http")

UPLOADS = Counter(
    "venus_uploads",
    "UploadEvents batches by outcome type: all_upload (every batch received), wrong_meta (rejected "
    "as a whole for its meta or size), wrong_data (at least one event rejected for its content), "
    "success_upload (every event published); by transport (grpc, http).",
    ["type", "transport"],
)
EVENTS = Counter(
    "venus_events",
    "Events by category, final per-event code (EVENT_CODE_OK, EVENT_CODE_VALIDATION_ERROR, ...) and transport.",
    ["category", "code", "transport"],
)
BATCH_REJECTIONS = Counter(
    "venus_batch_rejections",
    "Batches refused as a whole (an UploadEvents RPC failed, or a stream batch rejected), by gRPC status and "
    "reason (malformed_request, bad_meta, key_missing, quota_exceeded, overloaded, kafka_unavailable, ...) "
    "and transport.",
    ["status", "reason", "transport"],
)
STAGE_SECONDS = Histogram(
    "venus_stage_seconds",
    "Time one batch spends in a pipeline stage (validate, enrich, publish; dead_letter when dead letters are on).",
    ["stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BATCH_SECONDS = Histogram(
    "venus_batch_seconds",
    "Time from a batch's admission to its answer, for batches answered with one result per event (validate, "
    "enrich, publish and the wait for Kafka's acknowledgements), by transport; the latency of accepted calls. "
    "Refused batches are in venus_batch_rejections_total.",
    ["transport"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
EVENTS_IN_FLIGHT = Gauge(
    "venus_events_in_flight",
    "Events accepted for processing whose RPC has not been answered yet.",
    multiprocess_mode="livesum",
)
BYTES_IN_FLIGHT = Gauge(
    "venus_bytes_in_flight",
    "Bytes of the batches accepted for processing whose RPC has not been answered yet, counting every event's "
    "copy of the batch meta (the measure max_bytes_in_flight bounds).",
    multiprocess_mode="livesum",
)
KAFKA_READY = Gauge(
    "venus_kafka_ready",
    "1 once the Kafka producer is connected, else 0 (with several workers: the lowest of them).",
    multiprocess_mode="livemin",
)
REQUEST_READ_TIMEOUTS = Counter(
    "venus_request_read_timeouts",
    "Unary calls ended because their request message (HTTP: body) did not arrive within request_read_timeout_s.",
)
AUTH_FAILURES = Counter(
    "venus_auth_failures",
    "Calls refused for their API key: missing, unknown or revoked (UNAUTHENTICATED), or forbidden "
    "(PERMISSION_DENIED: the key does not cover the batch's app_id or category), by transport.",
    ["reason", "transport"],
)
THROTTLED_EVENTS = Counter(
    "venus_throttled_events",
    "Events refused with RESOURCE_EXHAUSTED because their app was over its quota, by app_id (the first "
    "100 apps seen by a process get their own label, later ones share app_id=\"_other\") and transport.",
    ["app_id", "transport"],
)
ASYNCIO_TASKS = Gauge(
    "venus_asyncio_tasks",
    "asyncio tasks alive in the process, sampled every second: a count that keeps growing is a leak.",
    multiprocess_mode="livesum",
)
GEOIP_BUILD_TIMESTAMP = Gauge(
    "venus_geoip_build_timestamp_seconds",
    "Unix time at which the GeoIP database in use was built (its metadata's build_epoch); with several "
    "workers, the oldest in use. MaxMind rebuilds City databases twice a week: alert when it is weeks old.",
    multiprocess_mode="livemin",
)

LOG_RECORDS_SHIPPED = Counter(
    "venus_log_records_shipped",
    "Log lines acknowledged by Kafka on the logs topic (log shipping on).",
)
LOG_RECORDS_DROPPED = Counter(
    "venus_log_records_dropped",
    "Log lines not shipped: queue_full (the bounded queue was full, e.g. the broker is away) or "
    "send_failed (Kafka refused or timed out).",
    ["reason"],
)
LOG_SHIP_ERRORS = Counter(
    "venus_log_ship_errors",
    "Times the log shipper lost its Kafka connection and started again.",
)

DEAD_LETTERS = Counter(
    "venus_dead_letters",
    "Events rejected for their content and meant for dead_letter_topic, each counted once by outcome: published "
    "(acknowledged by Kafka), failed (Kafka refused it, or did not acknowledge it within kafka_request_timeout_ms), "
    "dropped (never sent: dead_letter_max_pending_bytes were already held, or it was still queued at shutdown).",
    ["outcome"],
)

for _type in ("all_upload", "wrong_meta", "wrong_data", "success_upload"):
    for _transport in TRANSPORTS:
        UPLOADS.labels(_type, _transport)
for _outcome in ("published", "failed", "dropped"):
    DEAD_LETTERS.labels(_outcome)

# `venus canary` runs as its own process and exports only these, from its own registry.
CANARY_REGISTRY = CollectorRegistry(auto_describe=True)
CANARY_VISIBLE_SECONDS = Histogram(
    "venus_canary_visible_seconds",
    "Seconds from sending a canary event to reading it back from Kafka (acknowledged events only).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=CANARY_REGISTRY,
)
CANARY_EVENTS = Counter(
    "venus_canary_events",
    "Canary events by outcome: ok (acknowledged), rejected (a per-event code), failed (the RPC failed with "
    "a status Venus chose), unknown (deadline, reset, or a publish error).",
    ["outcome"],
    registry=CANARY_REGISTRY,
)
CANARY_MISSING = Counter(
    "venus_canary_acknowledged_missing",
    "Canary events Venus acknowledged that were not readable from Kafka within the canary's missing_after_s: "
    "each one is a broken promise.",
    registry=CANARY_REGISTRY,
)
CANARY_LAST_SUCCESS = Gauge(
    "venus_canary_last_success_timestamp_seconds",
    "Unix time at which the last acknowledged canary event was read back from Kafka.",
    registry=CANARY_REGISTRY,
)
