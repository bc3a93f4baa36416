"""Publishing to Kafka: the :class:`Publisher` seam and its aiokafka implementation."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner

from venus_grpc.kafka_clients import check_compression, new_producer, started, stop_bounded
from venus_grpc.settings import Settings

Headers = list[tuple[str, bytes]]
# Requests with this many messages or more go out as their own record batch on one partition: one
# future per batch instead of one per message (measured: 20 instead of 37 µs of CPU per event at
# 1000 events per request). Smaller requests are sent message by message, so that aiokafka's
# accumulator merges them with other requests' messages (measured: 1.2 instead of 1.7 ms per
# single-event request).
OWN_BATCH_FROM_MESSAGES = 16
# Sends waiting this long with no acknowledgement at all mean the broker is not answering: one
# slow acknowledgement among others that arrive does not count, so health does not flap on it.
_STALLED_AFTER_S = 3.0
log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where the broker put one acknowledged message."""

    topic: str
    partition: int
    offset: int


Outcome = Delivery | BaseException  # of one message: where it went, or why it is not known to be in Kafka


class PublishTimeout(Exception):
    """The broker did not acknowledge a message before the time allowed for it."""

    retriable = True


class NotConnected(Exception):
    """The producer has not connected to Kafka (yet, or any more)."""

    retriable = True


class Publisher(Protocol):
    """Sends messages to Kafka and reports, per message, whether the broker acknowledged it."""

    @property
    def ready(self) -> bool:
        """True while messages can be sent: connected, and the broker answered the last :meth:`check`."""
        ...

    async def connect(self) -> None:
        """Connect, retrying until the broker answers."""
        ...

    async def close(self, *, timeout_s: float) -> None:
        """Deliver what is queued and stop, in at most ``timeout_s``."""
        ...

    async def check(self, *, timeout_s: float) -> bool:
        """True while the broker acknowledges, or answers when asked; at most ``timeout_s``."""
        ...

    async def publish(
        self, topic: str, key: bytes | None, values: Sequence[bytes], headers: Headers, *, timeout_s: float
    ) -> list[Outcome]:
        """Send ``values`` and wait at most ``timeout_s``; a :class:`Delivery` for each acknowledged message."""
        ...


class KafkaPublisher:
    """A :class:`Publisher` over one :class:`AIOKafkaProducer` with ``acks="all"``."""

    def __init__(self, settings: Settings) -> None:
        check_compression(settings)
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._partitioner = DefaultPartitioner()  # the Java client's murmur2: same key, same partition
        self._last_ack = 0.0  # monotonic time of the last publish with an acknowledged message
        self._unacked_since: float | None = None  # when sends began waiting with no acknowledgement since
        self._answering = True  # what the last check() found

    @property
    def ready(self) -> bool:
        """True once the producer has connected, while the broker answers :meth:`check`."""
        return self._producer is not None and self._answering

    async def connect(self) -> None:
        """Connect, retrying until the broker answers; a broker absent at startup is not fatal."""
        s = self._settings
        self._producer = await started(functools.partial(new_producer, s), bootstrap=s.kafka_bootstrap,
                                       retry_s=s.kafka_connect_retry_s, purpose="events")
        log.info("kafka producer connected", bootstrap=self._settings.kafka_bootstrap)

    async def close(self, *, timeout_s: float) -> None:
        """Flush what is queued and stop; bounded, since stop() can hang with the broker down (aiokafka#1101)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await stop_bounded(producer, timeout_s=timeout_s)

    async def check(self, *, timeout_s: float) -> bool:
        """True while acknowledgements arrive; when they stop, or nothing is sent, ask the broker for metadata.

        A frozen broker keeps its TCP connections open, so only an answer (or its absence) tells. Until a
        check finds the broker answering again, :attr:`ready` is False and new uploads are refused at once.
        """
        self._answering = await self._answers(timeout_s=timeout_s)
        return self._answering

    async def _answers(self, *, timeout_s: float) -> bool:
        producer = self._producer
        if producer is None:
            return False
        now = time.monotonic()
        if now - self._last_ack < _STALLED_AFTER_S:
            return True
        waiting_s = None if self._unacked_since is None else now - self._unacked_since
        if waiting_s is not None and waiting_s < _STALLED_AFTER_S:
            return True
        try:
            await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=timeout_s)
        except (KafkaError, TimeoutError):
            return False
        if waiting_s is not None:
            self._unacked_since = time.monotonic()  # it answers: give the waiting sends another period
        return True

    async def publish(
        self, topic: str, key: bytes | None, values: Sequence[bytes], headers: Headers, *, timeout_s: float
    ) -> list[Outcome]:
        """Send ``values`` and wait at most ``timeout_s``; a :class:`Delivery` for each acknowledged message."""
        producer = self._producer
        if producer is None:
            return [NotConnected("Kafka is not connected")] * len(values)
        if timeout_s <= 0:
            # No time to wait for an acknowledgement: a message queued now would reach Kafka while its
            # event is answered as failed (and resent by the client), so it is not queued at all.
            return [PublishTimeout("no time left before the deadline to wait for Kafka")] * len(values)
        if self._unacked_since is None:
            self._unacked_since = time.monotonic()
        outcomes = await self._send(producer, topic, key, values, headers, timeout_s=timeout_s)
        if any(isinstance(outcome, Delivery) for outcome in outcomes):
            self._last_ack, self._unacked_since = time.monotonic(), None
        return outcomes

    async def _send(self, producer: AIOKafkaProducer, topic: str, key: bytes | None, values: Sequence[bytes],
                    headers: Headers, *, timeout_s: float) -> list[Outcome]:
        sent: list[tuple[asyncio.Future[object], int]] = []  # (future, messages it acknowledges)
        failure: BaseException = PublishTimeout(f"no acknowledgement from Kafka within {timeout_s:.2f} s")
        try:
            async with asyncio.timeout(max(timeout_s, 0.0)):
                if len(values) < OWN_BATCH_FROM_MESSAGES:
                    for value in values:
                        sent.append((await producer.send(topic, value, key=key, headers=headers), 1))
                else:
                    partition = self._partition_for(key, await producer.partitions_for(topic))
                    for builder, size in _record_batches(producer, key, values, headers):
                        sent.append((await producer.send_batch(builder, topic, partition=partition), size))
                await asyncio.wait([future for future, _ in sent])
        except TimeoutError:
            pass
        except KafkaError as exc:
            failure = exc
        outcomes = [outcome for future, size in sent for outcome in _outcomes(future, size, failure)]
        outcomes.extend(failure for _ in range(len(values) - len(outcomes)))
        return outcomes

    def _partition_for(self, key: bytes | None, partitions: set[int]) -> int:
        ordered = sorted(partitions)
        return int(self._partitioner(key, ordered, ordered))


def _record_batches(producer: AIOKafkaProducer, key: bytes | None, values: Sequence[bytes],
                    headers: Headers) -> Iterator[tuple[Any, int]]:
    """``values`` in as few record batches as ``kafka_max_batch_bytes`` allows, with their sizes."""
    builder, size = producer.create_batch(), 0
    for value in values:
        if builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
            if size:
                yield builder, size
                builder, size = producer.create_batch(), 0
            if builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
                raise MessageSizeTooLargeError(f"a message of {len(value)} bytes does not fit in a batch")
        size += 1
    if size:
        yield builder, size


def _outcomes(future: asyncio.Future[Any], size: int, failure: BaseException) -> list[Outcome]:
    """The outcomes of the ``size`` messages ``future`` acknowledges: one message, or one record batch.

    A batch's future gives the offset of its first message: aiokafka's ``BatchBuilder.append`` numbers the
    records 0, 1, 2... within the batch (offset deltas) and ``MessageBatch.done`` resolves the batch with
    the base offset the broker assigned, so message ``i`` of the batch is at base offset + ``i``.
    """
    if not future.done():
        future.add_done_callback(_retrieve_exception)
        return [failure] * size
    error = failure if future.cancelled() else future.exception()
    if error is not None:
        return [error] * size
    meta = future.result()  # aiokafka's RecordMetadata
    return [Delivery(meta.topic, meta.partition, meta.offset + i) for i in range(size)]


def _retrieve_exception(future: asyncio.Future[object]) -> None:
    # A message we stopped waiting for may still fail later; read its error so asyncio does not
    # log "exception was never retrieved" for an outcome the client already has.
    if not future.cancelled():
        future.exception()
