"""``venus canary``: the fault ledger's promise checked on a live deployment, as Prometheus metrics.

A slow trickle of synthetic events goes through the real path (gRPC → Venus → Kafka) in a reserved
category, each marked with the event attribute ``venus.canary=1`` so that analyzers can skip them;
a consumer reads the topic and reports how long each acknowledged event took to become visible, and
counts the acknowledged ones that never did.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import start_http_server

from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_grpc.kafka_clients import consumer_options, stop_within
from venus_grpc.obs import metrics
from venus_grpc.settings import Settings
from venus_grpc.tools.ledger import Kind, Ledger, Load, Outcome, send_batch
from venus_grpc.tools.tls import Endpoint

CANARY_ATTRIBUTE = "venus.canary"
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class CanaryConfig:
    """Where to send, where to read back, and how often."""

    venus: Endpoint  # where Venus listens, and how to reach it (TLS, mTLS, API key)
    bootstrap: str
    category: str = "VENUS_CANARY"
    topic_template: str = "to_analyzer__0.{category}"
    interval_s: float = 1.0
    missing_after_s: float = 60.0
    deadline_s: float = 5.0
    metrics_host: str = "0.0.0.0"  # scraped from outside the pod
    metrics_port: int = 9465
    kafka_settings: Settings = field(default_factory=Settings)  # the Kafka security settings for reading back


class Canary:
    """Sends, reads back and exports; :meth:`start` then :meth:`run` (until cancelled or for a duration)."""

    def __init__(self, config: CanaryConfig) -> None:
        self.config = config
        self.load = Load(config.venus.target, config.category, batch=1, deadline_s=config.deadline_s,
                         app_id="venus-canary", attributes={CANARY_ATTRIBUTE: "1"}, metadata=config.venus.metadata())
        self.metrics_port = 0
        # Nothing is kept per event beyond these, so memory stays flat however long the canary runs:
        self._sending: str | None = None  # the event whose call is under way
        self._seen_while_sending: float | None = None  # when the reader saw it before its answer came
        self._sent_at: dict[str, float] = {}  # acknowledged, not read back or counted missing yet: id → sent at
        self._server: object = None

    def start(self) -> int:
        """Serve /metrics; the port it listens on."""
        server, _ = start_http_server(self.config.metrics_port, self.config.metrics_host,
                                      registry=metrics.CANARY_REGISTRY)
        self._server = server
        self.metrics_port = int(server.server_port)
        return self.metrics_port

    def stop(self) -> None:
        """Stop serving /metrics."""
        if self._server is not None:
            self._server.shutdown()  # type: ignore[attr-defined]
            self._server.server_close()  # type: ignore[attr-defined]

    async def run(self, *, duration_s: float = 0.0) -> None:
        """Send one event per ``interval_s`` and read them back, for ``duration_s`` (0: until cancelled)."""
        topic = self.config.topic_template.format(category=self.config.category)
        stop_at = time.monotonic() + duration_s if duration_s > 0 else float("inf")
        async with self.config.venus.channel() as channel:
            stub = pb_grpc.IngestServiceStub(channel)  # type: ignore[no-untyped-call]
            seq = 0
            while (await _send(stub, self.load, f"{self.load.run_id}-first")).kind is not Kind.OK:
                await asyncio.sleep(self.config.interval_s)  # until the topic exists and Venus answers
            consumer = await _tail(self.config.bootstrap, topic, self.config.kafka_settings)
            reader = asyncio.create_task(self._read(consumer))
            try:
                while time.monotonic() < stop_at:
                    seq += 1
                    await self._send_one(stub, f"{self.load.run_id}-{seq}")
                    self._count_missing()
                    await asyncio.sleep(self.config.interval_s)  # the trickle's pace
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
                await stop_within(consumer, 10)

    async def _send_one(self, stub: pb_grpc.IngestServiceStub, event_id: str) -> None:
        sent_at = time.monotonic()
        self._sending, self._seen_while_sending = event_id, None
        outcome = await _send(stub, self.load, event_id)
        self._sending = None
        metrics.CANARY_EVENTS.labels(outcome.kind.value).inc()
        if outcome.kind is not Kind.OK:
            log.warning("canary event not acknowledged", id=event_id, outcome=outcome.detail)
        elif self._seen_while_sending is not None:
            self._visible(self._seen_while_sending - sent_at)
        else:
            self._sent_at[event_id] = sent_at

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        prefix = self.load.run_id + "-"
        while True:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    event_id = _event_id(record.value)
                    if event_id is not None and event_id.startswith(prefix):
                        self._saw(event_id)

    def _saw(self, event_id: str) -> None:
        if event_id == self._sending:
            self._seen_while_sending = time.monotonic()  # judged when its answer comes
            return
        sent_at = self._sent_at.pop(event_id, None)  # None: a copy, or counted missing already
        if sent_at is not None:
            self._visible(time.monotonic() - sent_at)

    def _visible(self, seconds: float) -> None:
        metrics.CANARY_VISIBLE_SECONDS.observe(seconds)
        metrics.CANARY_LAST_SUCCESS.set(time.time())

    def _count_missing(self) -> None:
        overdue = time.monotonic() - self.config.missing_after_s
        # Oldest first (events are added in the order they were sent): stop at the first one not overdue.
        while self._sent_at:
            event_id, sent_at = next(iter(self._sent_at.items()))
            if sent_at >= overdue:
                return
            del self._sent_at[event_id]
            metrics.CANARY_MISSING.inc()
            log.error("acknowledged canary event not in Kafka", id=event_id,
                      missing_after_s=self.config.missing_after_s)


async def _send(stub: pb_grpc.IngestServiceStub, load: Load, event_id: str) -> Outcome:
    """Send one event and return its outcome, recorded in a ledger of its own that is dropped right after."""
    ledger = Ledger()
    await send_batch(stub, load, [event_id], ledger)
    return ledger.outcomes[event_id]


async def _tail(bootstrap: str, topic: str, settings: Settings) -> AIOKafkaConsumer:
    """A consumer at the current end of every partition of ``topic``."""
    consumer = AIOKafkaConsumer(**consumer_options(settings, bootstrap), auto_offset_reset="latest")
    try:
        await consumer.start()
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            raise RuntimeError(f"topic {topic} has no partitions on {bootstrap}")
    except BaseException:
        await stop_within(consumer, 10)
        raise
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)  # fixes the start now, before the first tracked event is sent
    return consumer


def _event_id(value: bytes | None) -> str | None:
    try:
        event = orjson.loads(value or b"{}").get("event", {})
    except orjson.JSONDecodeError:
        return None
    event_id = event.get("id") if isinstance(event, dict) else None
    return event_id if isinstance(event_id, str) else None


async def canary(config: CanaryConfig, *, duration_s: float = 0.0) -> int:
    """``venus canary``: run until interrupted (or for ``duration_s``)."""
    runner = Canary(config)
    port = runner.start()
    print(f"venus canary: {config.venus.target} → Kafka {config.bootstrap}, metrics on :{port}/metrics", flush=True)
    try:
        await runner.run(duration_s=duration_s)
    finally:
        runner.stop()
    return 0
