"""Reading what Venus published: every message of a topic, all of it and nothing else.

The end of each partition is marked rather than asked for: Tansu 0.6 can under-report end offsets
(ListOffsets), so the reader writes a sentinel to every partition and reads from the beginning until
each partition's sentinel. Whatever came before is all there is, so "nothing else was published" can
be asserted without waiting for a timeout. Tests, the fault ledger and the benchmarks' read-back all
read this way.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from venus_grpc.kafka_clients import stop_within

SENTINEL_HEADER = "x-test-sentinel"
Record = Any  # aiokafka's ConsumerRecord: untyped upstream


@dataclass(frozen=True)
class Message:
    """One Kafka record as a reader sees it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: dict  # type: ignore[type-arg]
    headers: dict[str, str]


class TopicReader:
    """Reads every message of a topic published so far, up to a fresh sentinel in each partition."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    async def read_all(self, topic: str, *, timeout_s: float = 30.0) -> list[Message]:
        """Every non-sentinel message of ``topic``, partition by partition, in offset order."""
        found: list[Message] = []

        def keep(record: Record) -> None:
            found.append(Message(topic, record.partition, record.offset, record.key, orjson.loads(record.value),
                                 {k: v.decode() for k, v in record.headers}))

        await asyncio.wait_for(self.scan(topic, keep), timeout=timeout_s)
        return found

    async def scan(self, topic: str, keep: Callable[[Record], None]) -> int:
        """Hand every record of ``topic`` but the sentinels to ``keep``, each partition in offset order.

        Returns how many offsets were skipped inside a partition: a loss in the broker's log, which no
        gateway could cause. Unbounded: the caller sets the time it allows.
        """
        marker = uuid.uuid4().hex.encode()
        partitions = await self._mark_ends(topic, marker)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, auto_offset_reset="earliest",
                                    enable_auto_commit=False, max_partition_fetch_bytes=8 * 1024 * 1024,
                                    fetch_max_bytes=64 * 1024 * 1024)
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, p) for p in partitions])
            await consumer.seek_to_beginning()
            waiting, gaps = set(partitions), 0
            next_offset: dict[int, int] = {}
            while waiting:
                for tp, records in (await consumer.getmany(timeout_ms=500, max_records=50_000)).items():
                    for record in records:
                        if tp.partition not in waiting:
                            break
                        if tp.partition in next_offset:
                            gaps += max(0, record.offset - next_offset[tp.partition])
                        next_offset[tp.partition] = record.offset + 1
                        sentinel = dict(record.headers).get(SENTINEL_HEADER)
                        if sentinel is None:
                            keep(record)
                        elif sentinel == marker:
                            waiting.discard(tp.partition)
            return gaps
        finally:
            await stop_within(consumer, 10)

    async def _mark_ends(self, topic: str, marker: bytes) -> list[int]:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"{}", headers=[(SENTINEL_HEADER, b"-")])  # creates the topic
            partitions = sorted(await producer.partitions_for(topic))
            for partition in partitions:
                await producer.send_and_wait(topic, b"{}", partition=partition, headers=[(SENTINEL_HEADER, marker)])
            return partitions
        finally:
            await stop_within(producer, 10)


async def published_ids(bootstrap: str, topic: str, *, within_s: float = 30, read_timeout_s: float = 6) -> list[str]:
    """Every event id published to ``topic`` (duplicates kept), read again while a just-restarted Tansu fails.

    Just after a restart Tansu can fail a new client's first writes to a partition (UnknownError), or
    acknowledge a sentinel and lose it so that the reader waits for it forever; a new read writes new
    sentinels, and an earlier sentinel is never taken for an event.
    """
    deadline = time.monotonic() + within_s
    while True:
        try:
            messages = await TopicReader(bootstrap).read_all(topic, timeout_s=read_timeout_s)
            return [m.value["event"]["id"] for m in messages]
        except (KafkaError, TimeoutError):
            if time.monotonic() > deadline:
                raise
