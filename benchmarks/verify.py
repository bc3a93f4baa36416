"""Reading a run's topic back: is every event Venus answered OK in Kafka, once?

Tansu can under-report end offsets (ListOffsets), so the end of each partition is marked instead:
a sentinel message is written to every partition after Venus has stopped, and the topic is read
from the beginning until every partition's sentinel. Everything before the sentinels is all
Venus wrote (the approach of ``tests/kafka_helpers.py``, reimplemented here so the benchmark does
not depend on test code that changes independently).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from benchmarks.broker_load import Sample
from venus_grpc.kafka import stop_within

_SENTINEL = "x-bench-sentinel"


@dataclass(frozen=True)
class TopicCount:
    """What the topic holds, besides sentinels."""

    messages: int
    distinct_ids: int
    sample: Sample | None  # the first message, as a size-faithful template for the broker ceiling
    offset_gaps: int = 0  # offsets skipped inside a partition: a broker-side loss, not a Venus one
    per_request: Counter[int] = field(default_factory=Counter)  # events seen per request number


@dataclass(frozen=True)
class Verdict:
    """Read-back compared with what the load driver was told."""

    expected: int
    found: TopicCount | None
    ambiguous: int
    error: str = ""
    batch: int = 0
    requests_sent: int = 0

    def short_requests(self, limit: int = 8) -> list[int]:
        """Request numbers (the load driver's, in send order) with fewer events in Kafka than sent."""
        if self.found is None or not self.batch:
            return []
        seen = self.found.per_request
        return [n for n in range(self.requests_sent) if seen.get(n, 0) < self.batch][:limit]

    @property
    def ok(self) -> bool:
        """Exactly the events answered OK are in the topic, each once."""
        return (self.found is not None and self.found.messages == self.expected
                and self.found.distinct_ids == self.expected)

    def text(self) -> str:
        """``✓`` or what is wrong, in a few words."""
        if self.found is None:
            return f"✗ read-back failed: {self.error}"
        if self.ok:
            return "✓"
        text = f"✗ {self.found.messages} in Kafka ({self.found.distinct_ids} distinct) vs {self.expected} OK"
        if self.found.offset_gaps:
            text += f"; {self.found.offset_gaps} offsets missing in the log"
        if short := self.short_requests():
            text += f"; short requests #{','.join(map(str, short))} of {self.requests_sent}"
        return text + (f"; {self.ambiguous} events had no clear answer" if self.ambiguous else "")


async def count_topic(bootstrap: str, topic: str) -> TopicCount:
    """Count every message of ``topic`` and its distinct ``event.id`` values, up to fresh sentinels."""
    marker = uuid.uuid4().hex.encode()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))  # creates the topic if Venus never wrote
        for partition in partitions:
            await producer.send_and_wait(topic, b"{}", partition=partition, headers=[(_SENTINEL, marker)])
    finally:
        await stop_within(producer, 10)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 1024 * 1024,
                                fetch_max_bytes=64 * 1024 * 1024)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        await consumer.seek_to_beginning()
        waiting, ids, messages, gaps = set(partitions), set(), 0, 0
        per_request: Counter[int] = Counter()
        next_offset = dict.fromkeys(partitions, -1)
        sample: Sample | None = None
        while waiting:
            for tp, records in (await consumer.getmany(timeout_ms=500, max_records=50_000)).items():
                for record in records:
                    if tp.partition not in waiting:
                        continue
                    if next_offset[tp.partition] >= 0:
                        gaps += max(0, record.offset - next_offset[tp.partition])
                    next_offset[tp.partition] = record.offset + 1
                    headers = dict(record.headers)
                    if _SENTINEL in headers:
                        if headers[_SENTINEL] == marker:
                            waiting.discard(tp.partition)
                        continue
                    messages += 1
                    event_id = orjson.loads(record.value or b"{}").get("event", {}).get("id")
                    ids.add(event_id)
                    if isinstance(event_id, str) and event_id.count("-") == 2:  # <run>-<request>-<index>
                        per_request[int(event_id.split("-")[1])] += 1
                    if sample is None and record.value is not None:
                        sample = Sample(value=record.value, headers=list(record.headers))
        return TopicCount(messages=messages, distinct_ids=len(ids), sample=sample, offset_gaps=gaps,
                          per_request=per_request)
    finally:
        await stop_within(consumer, 10)


def verify(bootstrap: str, topic: str, *, expected: int, ambiguous: int, timeout_s: float, batch: int = 0,
           requests_sent: int = 0) -> Verdict:
    """Compare the topic with ``expected`` events answered OK, within ``timeout_s``.

    ``batch`` and ``requests_sent`` let a mismatch name the requests that came up short.
    """
    try:
        found = asyncio.run(asyncio.wait_for(count_topic(bootstrap, topic), timeout=timeout_s))
    except Exception as exc:
        return Verdict(expected=expected, found=None, ambiguous=ambiguous, error=f"{type(exc).__name__}: {exc}")
    return Verdict(expected=expected, found=found, ambiguous=ambiguous, batch=batch, requests_sent=requests_sent)
