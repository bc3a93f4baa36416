"""Reading a run's topic back: is every event Venus answered OK in Kafka, once?

The load driver counts what was answered OK but keeps no per-event record (it patches template
bytes to stay cheap), so the check compares counts: messages and distinct event ids in the topic
against the driver's total. The topic is read with the fault ledger's ``TopicReader``, after Venus
has stopped, to fresh sentinels (Tansu can under-report end offsets).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

import orjson

from benchmarks.broker_load import Sample
from venus_grpc.tools.ledger.reader import Record, TopicReader


@dataclass(frozen=True)
class TopicCount:
    """What the topic holds, besides sentinels."""

    messages: int
    distinct_ids: int
    sample: Sample | None  # the first message, as a size-faithful template for the broker ceiling
    offset_gaps: int = 0  # offsets skipped inside a partition: a broker-side loss, not a Venus one
    per_request: Counter[int] = field(default_factory=Counter)  # events seen per request number


@dataclass(frozen=True)
class CountVerdict:
    """The topic's counts against the driver's: how many events answered OK, and none twice."""

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
    ids: set[object] = set()
    per_request: Counter[int] = Counter()
    messages = 0
    sample: Sample | None = None

    def count(record: Record) -> None:
        nonlocal messages, sample
        messages += 1
        event_id = orjson.loads(record.value or b"{}").get("event", {}).get("id")
        ids.add(event_id)
        if isinstance(event_id, str) and event_id.count("-") == 2:  # <run>-<request>-<index>
            per_request[int(event_id.split("-")[1])] += 1
        if sample is None and record.value is not None:
            sample = Sample(value=record.value, headers=list(record.headers))

    gaps = await TopicReader(bootstrap).scan(topic, count)
    return TopicCount(messages=messages, distinct_ids=len(ids), sample=sample, offset_gaps=gaps,
                      per_request=per_request)


def verify(bootstrap: str, topic: str, *, expected: int, ambiguous: int, timeout_s: float, batch: int = 0,
           requests_sent: int = 0) -> CountVerdict:
    """Compare the topic with ``expected`` events answered OK, within ``timeout_s``.

    ``batch`` and ``requests_sent`` let a mismatch name the requests that came up short.
    """
    try:
        found = asyncio.run(asyncio.wait_for(count_topic(bootstrap, topic), timeout=timeout_s))
    except Exception as exc:
        return CountVerdict(expected=expected, found=None, ambiguous=ambiguous, error=f"{type(exc).__name__}: {exc}")
    return CountVerdict(expected=expected, found=found, ambiguous=ambiguous, batch=batch, requests_sent=requests_sent)
