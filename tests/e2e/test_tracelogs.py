"""``trace_logs`` against a real broker: one trace's log lines from every instance, and its events."""

from __future__ import annotations

import io
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from venus_grpc.settings import Settings
from venus_grpc.tools.devbroker import EmbeddedBroker
from venus_grpc.tools.tracelogs import trace_logs

INSTANCES = (("venus-7c9f-a", 4101), ("venus-7c9f-b", 4202))


@dataclass(frozen=True)
class Published:
    """What the test put in Kafka for the trace under test (``trace``) and another one (``other``)."""

    bootstrap: str
    logs_topic: str
    events_prefix: str
    trace: str
    other: str
    lines: list[str]  # the trace's JSON lines in time order
    events: list[dict]  # type: ignore[type-arg]  # the trace's events as trace_logs prints them


def _log_line(at_ms: int, host: str, pid: int, event: str, trace: str | None) -> bytes:
    """A JSON log line as Venus ships it (trace fields only inside a request)."""
    line = {"timestamp": datetime.fromtimestamp(at_ms / 1000, UTC).isoformat().replace("+00:00", "Z"),
            "level": "info", "event": event, "logger": "venus_grpc.server.servicer", "service": "venus",
            "version": "0.1.0", "host": host, "pid": pid}
    if trace:
        line |= {"trace_id": trace, "span_id": os.urandom(8).hex(), "request_id": uuid.uuid4().hex}
    return orjson.dumps(line)


def _sections(text: str) -> dict[str, list[str]]:
    """Output lines grouped under the ``== ...`` header they follow, by the header's first words."""
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("== "):
            current = sections.setdefault(" ".join(line.split()[2:4]), [line])
        else:
            current.append(line)
    return sections


@pytest.fixture
async def published(broker: EmbeddedBroker, category: str) -> Published:
    """Interleaved lines of two traces from two instances, shipped out of time order, plus their events."""
    logs_topic = f"venus_logs_{uuid.uuid4().hex[:12]}"
    trace = os.urandom(16).hex()
    base_ms = int(time.time() * 1000) - 60_000
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(logs_topic, _log_line(base_ms, *INSTANCES[0], "venus started", None),
                                     timestamp_ms=base_ms)  # no trace, no key; creates the topic
        partitions = sorted(await producer.partitions_for(logs_topic))
        target = DefaultPartitioner()(trace.encode(), partitions, partitions)
        other = os.urandom(16).hex()  # shares the partition, so only the key tells the traces apart
        while other == trace or DefaultPartitioner()(other.encode(), partitions, partitions) != target:
            other = os.urandom(16).hex()
        # (ms after base, instance, trace, event), in shipping order: instance b ships its batch first.
        plan = [(30, 1, trace, "batch received"), (50, 1, other, "batch received"),
                (70, 1, trace, "batch published"), (10, 0, trace, "batch received"),
                (20, 0, other, "batch received"), (40, 0, trace, "event rejected"), (60, 0, trace, "batch published")]
        lines: dict[int, str] = {}
        for offset_ms, instance, trace_id, event in plan:
            value = _log_line(base_ms + offset_ms, *INSTANCES[instance], event, trace_id)
            await producer.send_and_wait(logs_topic, value, key=trace_id.encode(), timestamp_ms=base_ms + offset_ms)
            if trace_id == trace:
                lines[offset_ms] = value.decode()

        events: list[dict] = []  # type: ignore[type-arg]
        prefix = f"to_analyzer__0.{category}"
        for topic, publisher, event_id in [(prefix, trace, "evt-1"), (prefix, other, "evt-2"),
                                          (f"{prefix}_ANR", trace, "evt-3"), (prefix, None, "evt-4")]:
            value = orjson.dumps({"meta": {"category": topic.split(".", 1)[1]}, "event": {"id": event_id}})
            headers = [("traceparent", f"00-{publisher}-{os.urandom(8).hex()}-01".encode())] if publisher else []
            sent = await producer.send_and_wait(topic, value, key=b"device-42", headers=headers)
            if publisher == trace:
                events.append({"topic": topic, "partition": sent.partition, "offset": sent.offset,
                               "key": "device-42", "headers": {k: v.decode() for k, v in headers},
                               "value": orjson.loads(value)})
    finally:
        await producer.stop()
    return Published(broker.bootstrap, logs_topic, prefix, trace, other, [lines[k] for k in sorted(lines)], events)


async def _run(published: Published, trace_id: str) -> tuple[int, dict[str, list[str]], str]:
    """Exit code, output sections, and all output (for assertion messages) of ``trace_logs``."""
    out, progress = io.StringIO(), io.StringIO()
    code = await trace_logs(published.bootstrap, trace_id, settings=Settings(), logs_topic=published.logs_topic,
                            events_topic_prefix=published.events_prefix, timeout_s=30, out=out, progress=progress)
    return code, _sections(out.getvalue()), out.getvalue() + progress.getvalue()


async def test_prints_the_trace_log_lines_of_every_instance_in_time_order(published: Published) -> None:
    """Exactly the asked trace's lines, from both instances, merged in time order under a header."""
    code, sections, text = await _run(published, published.trace)
    assert code == 0, text
    header, *lines = sections["log lines"]
    assert header.startswith(f"== 5 log lines for trace {published.trace} from 2 instance(s)"), header
    assert lines == published.lines


async def test_prints_exactly_the_events_the_trace_published(published: Published) -> None:
    """Exactly the events whose traceparent carries the trace, across topics of the prefix, as JSON."""
    code, sections, text = await _run(published, published.trace)
    assert code == 0, text
    header, *lines = sections["events published"]
    assert header == f"== 2 events published by trace {published.trace}"
    assert [orjson.loads(line) for line in lines] == published.events


async def test_trace_id_is_case_insensitive(published: Published) -> None:
    """An upper-case trace id finds the same lines as its lower-case form."""
    code, sections, text = await _run(published, published.trace.upper())
    assert code == 0, text
    assert sections["log lines"][1:] == published.lines


async def test_unknown_trace_finds_nothing(published: Published) -> None:
    """A trace nobody logged exits 1 and says what was searched."""
    code, sections, text = await _run(published, os.urandom(16).hex())
    assert code == 1, text
    assert sections["log lines"][0].startswith("== 0 log lines")
    assert f"topic {published.logs_topic} partition" in text and "2 topic(s)" in text


@pytest.mark.parametrize("trace_id", ["not-a-trace", "0" * 32, "a" * 31, "g" * 32,
                                      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"])
async def test_malformed_trace_id_is_refused(trace_id: str) -> None:
    """Anything but 32 hex digits (not all zero) exits 2 with a message, before touching Kafka."""
    out, progress = io.StringIO(), io.StringIO()
    assert await trace_logs("127.0.0.1:1", trace_id, settings=Settings(), out=out, progress=progress) == 2
    assert "not a trace id" in progress.getvalue()
    assert out.getvalue() == ""
