"""Shipping log lines to a Kafka topic, keyed by trace id, without ever slowing a request down.

A logging handler formats each record and puts it on a bounded queue; a background task drains
the queue into its own producer. A full queue or a missing broker drops lines (counted in
``venus_log_records_dropped_total``): logs are worth less than the events they describe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import time

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from opentelemetry import trace

from venus_grpc.kafka_clients import security_options, stop_within
from venus_grpc.obs import metrics
from venus_grpc.obs.logs import formatter
from venus_grpc.settings import Settings

_DRAIN_BATCH = 512
_IDLE_S = 0.05

Line = tuple[bytes | None, bytes, int]  # key (trace id), value (the JSON line), timestamp in ms


class LogShipper(logging.Handler):
    """A handler whose records go to ``settings.logs_topic``; :meth:`run` does the sending."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._settings = settings
        self._lines: queue.Queue[Line] = queue.Queue(maxsize=settings.log_ship_queue_size)
        self.setFormatter(formatter(settings, json=True))

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the record's JSON line; drop it (and count it) when the queue is full."""
        try:
            value = self.format(record).encode()
        except Exception:
            self.handleError(record)
            return
        span = trace.get_current_span().get_span_context()
        key = format(span.trace_id, "032x").encode() if span.is_valid else None
        try:
            self._lines.put_nowait((key, value, int(record.created * 1000)))
        except queue.Full:
            metrics.LOG_RECORDS_DROPPED.labels("queue_full").inc()

    async def run(self) -> None:
        """Send queued lines until cancelled; reconnects when the broker is away."""
        while True:
            bootstrap = self._settings.logs_kafka_bootstrap or self._settings.kafka_bootstrap
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                        client_id=f"{self._settings.kafka_client_id}-logs",
                                        linger_ms=50, request_timeout_ms=self._settings.kafka_request_timeout_ms,
                                        **security_options(self._settings))
            try:
                await producer.start()
                await self._drain_into(producer)
            except KafkaError:
                # Counted, not logged: a log line about shipping logs would feed this very queue.
                metrics.LOG_SHIP_ERRORS.inc()
                await asyncio.sleep(self._settings.kafka_connect_retry_s)
            finally:
                with contextlib.suppress(TimeoutError, KafkaError):
                    await stop_within(producer, self._settings.kafka_connect_retry_s)

    async def _drain_into(self, producer: AIOKafkaProducer) -> None:
        topic = self._settings.logs_topic
        while True:
            batch = self._take(_DRAIN_BATCH)
            if not batch:
                await asyncio.sleep(_IDLE_S)
                continue
            for key, value, timestamp_ms in batch:
                sent = await producer.send(topic, value, key=key, timestamp_ms=timestamp_ms)
                sent.add_done_callback(_count_outcome)

    def _take(self, most: int) -> list[Line]:
        lines: list[Line] = []
        with contextlib.suppress(queue.Empty):
            while len(lines) < most:
                lines.append(self._lines.get_nowait())
        return lines

    async def drain(self, *, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) until the queue is empty, so a stopping instance ships its last lines."""
        deadline = time.monotonic() + timeout_s
        while not self._lines.empty() and time.monotonic() < deadline:
            await asyncio.sleep(_IDLE_S)


def _count_outcome(sent: asyncio.Future[object]) -> None:
    if sent.cancelled() or sent.exception() is not None:
        metrics.LOG_RECORDS_DROPPED.labels("send_failed").inc()
    else:
        metrics.LOG_RECORDS_SHIPPED.inc()
