"""Publishing to Kafka: the :class:`Publisher` seam and its aiokafka implementation."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from venus_grpc.settings import Settings

Headers = list[tuple[str, bytes]]
log = structlog.get_logger(__name__)


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
        """True once messages can be sent."""
        ...

    async def connect(self) -> None:
        """Connect, retrying until the broker answers."""
        ...

    async def close(self, *, timeout_s: float) -> None:
        """Deliver what is queued and stop, in at most ``timeout_s``."""
        ...

    async def publish(
        self, topic: str, key: bytes | None, values: Sequence[bytes], headers: Headers, *, timeout_s: float
    ) -> list[BaseException | None]:
        """Send ``values`` and wait at most ``timeout_s``; ``None`` for each acknowledged message."""
        ...


class KafkaPublisher:
    """A :class:`Publisher` over one :class:`AIOKafkaProducer` with ``acks="all"``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None

    @property
    def ready(self) -> bool:
        """True once the producer has connected."""
        return self._producer is not None

    async def connect(self) -> None:
        """Connect, retrying until the broker answers; a broker absent at startup is not fatal."""
        retry_s = self._settings.kafka_connect_retry_s
        while self._producer is None:
            producer = self._new_producer()
            try:
                await producer.start()
            except KafkaError as exc:
                log.warning("kafka not reachable; retrying", bootstrap=self._settings.kafka_bootstrap,
                            error=str(exc), retry_in_s=retry_s)
                await _stop_bounded(producer, timeout_s=retry_s)
                await asyncio.sleep(retry_s)
                continue
            self._producer = producer
            log.info("kafka producer connected", bootstrap=self._settings.kafka_bootstrap)

    async def close(self, *, timeout_s: float) -> None:
        """Flush what is queued and stop; bounded, since stop() can hang with the broker down (aiokafka#1101)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await _stop_bounded(producer, timeout_s=timeout_s)

    async def publish(
        self, topic: str, key: bytes | None, values: Sequence[bytes], headers: Headers, *, timeout_s: float
    ) -> list[BaseException | None]:
        """Send ``values`` and wait at most ``timeout_s``; ``None`` for each acknowledged message."""
        producer = self._producer
        if producer is None:
            return [NotConnected("Kafka is not connected")] * len(values)
        futures: list[asyncio.Future[object]] = []
        failure: BaseException = PublishTimeout(f"no acknowledgement from Kafka within {timeout_s:.2f} s")
        try:
            async with asyncio.timeout(max(timeout_s, 0.0)):
                for value in values:
                    futures.append(await producer.send(topic, value, key=key, headers=headers))
                await asyncio.wait(futures)
        except TimeoutError:
            pass
        except KafkaError as exc:
            failure = exc
        outcomes: list[BaseException | None] = []
        for future in futures:
            if not future.done():
                future.add_done_callback(_retrieve_exception)
                outcomes.append(failure)
            else:
                outcomes.append(future.exception())
        outcomes.extend(failure for _ in range(len(values) - len(futures)))
        return outcomes

    def _new_producer(self) -> AIOKafkaProducer:
        s = self._settings
        return AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap,
            client_id=s.kafka_client_id,
            acks="all",
            linger_ms=s.kafka_linger_ms,
            max_batch_size=s.kafka_max_batch_bytes,
            max_request_size=s.kafka_max_batch_bytes,
            compression_type=None if s.kafka_compression == "none" else s.kafka_compression,
            request_timeout_ms=s.kafka_request_timeout_ms,
        )


def _retrieve_exception(future: asyncio.Future[object]) -> None:
    # A message we stopped waiting for may still fail later; read its error so asyncio does not
    # log "exception was never retrieved" for an outcome the client already has.
    if not future.cancelled():
        future.exception()


async def _stop_bounded(producer: AIOKafkaProducer, *, timeout_s: float) -> None:
    try:
        await asyncio.wait_for(producer.stop(), timeout=timeout_s)
    except (TimeoutError, KafkaError) as exc:
        log.warning("kafka producer did not stop cleanly", error=repr(exc))
