"""Reading what Venus published: every message of a topic, all of it and nothing else."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from venus_grpc.kafka import stop_within

SENTINEL_HEADER = "x-test-sentinel"


@dataclass(frozen=True)
class Message:
    """One Kafka record as a reader sees it."""

    topic: str
    partition: int
    key: bytes | None
    value: dict  # type: ignore[type-arg]
    headers: dict[str, str]


class TopicReader:
    """Reads every message of a topic published so far.

    It first writes a sentinel to every partition, then reads from the beginning until each
    partition's sentinel: whatever came before is all there is, so "nothing else was published"
    can be asserted without waiting for a timeout. (Tansu can under-report end offsets, so the
    sentinel is more trustworthy than ListOffsets.)
    """

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    async def read_all(self, topic: str, *, timeout_s: float = 30.0) -> list[Message]:
        """Every non-sentinel message of ``topic``, partition by partition, in offset order."""
        return await asyncio.wait_for(self._read_all(topic), timeout=timeout_s)

    async def _read_all(self, topic: str) -> list[Message]:
        marker = uuid.uuid4().hex
        partitions = await self._mark_ends(topic, marker)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, auto_offset_reset="earliest",
                                    enable_auto_commit=False, max_partition_fetch_bytes=8 * 1024 * 1024)
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, p) for p in partitions])
            await consumer.seek_to_beginning()
            waiting = set(partitions)
            found: list[Message] = []
            while waiting:
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    for record in records:
                        headers = {k: v.decode() for k, v in record.headers}
                        if headers.get(SENTINEL_HEADER) == marker:
                            waiting.discard(tp.partition)
                        elif SENTINEL_HEADER not in headers and tp.partition in waiting:
                            found.append(Message(topic, tp.partition, record.key, orjson.loads(record.value),
                                                 headers))
            return found
        finally:
            await stop_within(consumer, 10)

    async def _mark_ends(self, topic: str, marker: str) -> list[int]:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"{}", headers=[(SENTINEL_HEADER, b"-")])  # creates the topic
            partitions = sorted(await producer.partitions_for(topic))
            for partition in partitions:
                await producer.send_and_wait(topic, b"{}", partition=partition,
                                             headers=[(SENTINEL_HEADER, marker.encode())])
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
