"""``venus trace-logs``: everything one trace left in Kafka, its log lines and the events it published.

Every Venus instance ships its log lines to one topic keyed by trace id, and stamps every event it
publishes with a ``traceparent`` header. So "what happened to this request?" is answered from Kafka
alone, across all instances, without shell access to any host: read the single partition the trace id
hashes to, then the event topics, and keep what carries the trace.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO, TypeVar

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from venus_grpc.kafka_clients import consumer_options, stop_within
from venus_grpc.settings import Settings

T = TypeVar("T")

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
IDLE_S = 1.0  # past the believed end, this long without records ends a partition (Tansu under-reports ends)
STUCK_S = 3.0  # before it, this long without records ends it too (an end that is never reached)
PROGRESS_S = 2.0  # a scan slower than this says how far it got, so a long wait is not mistaken for a hang
STOP_S = 10.0  # how long the consumer gets to stop (see stop_within)


@dataclass
class _Scan:
    """What one scan kept, how much it read, and whether it got to the end (else the deadline hit)."""

    label: str
    kept: list[Any] = field(default_factory=list)
    scanned: int = 0
    complete: bool = False


async def trace_logs(bootstrap: str, trace_id: str, *, settings: Settings, logs_topic: str = "venus_logs",
                     events_topic_prefix: str = "to_analyzer__0.", since_s: float = 3600.0,
                     timeout_s: float = 30.0, out: TextIO = sys.stdout, progress: TextIO = sys.stderr) -> int:
    """Print the log lines and the events of trace ``trace_id`` from the last ``since_s`` seconds.

    ``settings`` gives the Kafka security settings (TLS, SASL) of the cluster at ``bootstrap``.

    Exit code: 0 something found, 1 nothing found, 2 not a trace id, 3 cut short (by ``timeout_s`` or a
    Kafka error; what was found so far is printed all the same, since a partial answer still helps).
    """
    trace = trace_id.strip().lower()
    if not _TRACE_ID.fullmatch(trace) or trace == "0" * 32:
        print(f"not a trace id: {trace_id!r} (want 32 hex digits, not all zero: the second field of a "
              "traceparent 00-<trace id>-<span id>-<flags>)", file=progress)
        return 2
    since_ms = int((time.time() - since_s) * 1000)
    logs, events = _Scan(f"topic {logs_topic} (absent)"), _Scan(f"0 topics {events_topic_prefix}*")
    # A short fetch wait: Tansu answers a connection's requests in turn, so a fetch parked at a partition's
    # end delays the next ListOffsets or reassignment by that much.
    consumer = AIOKafkaConsumer(**consumer_options(settings, bootstrap), auto_offset_reset="earliest",
                                fetch_max_wait_ms=100)
    cut_short = f"timed out after {timeout_s:g} s"
    try:
        await _search(consumer, trace, logs_topic, events_topic_prefix, since_ms, (logs, events),
                      deadline=time.monotonic() + timeout_s, progress=progress)
    except TimeoutError:
        pass
    except KafkaError as err:
        cut_short = f"Kafka at {bootstrap} failed: {err!r}"
    finally:
        try:
            await stop_within(consumer, STOP_S)
        except (TimeoutError, KafkaError):
            print("the Kafka consumer did not stop cleanly", file=progress)
    return _report(trace, logs, events, cut_short, since_ms, out, progress)


async def _search(consumer: AIOKafkaConsumer, trace: str, logs_topic: str, events_topic_prefix: str, since_ms: int,
                  found: tuple[_Scan, _Scan], *, deadline: float, progress: TextIO) -> None:
    """Scan the trace's partition of the logs topic, then every events topic, into ``found``."""
    logs, events = found
    key = trace.encode("ascii")
    await _bounded(consumer.start(), deadline)
    topics: set[str] = await _bounded(consumer.topics(), deadline)
    # Now, while the metadata covers every topic: assigning partitions narrows it to theirs.
    partitions_of = {t: sorted(consumer.partitions_for_topic(t) or ()) for t in topics}
    if logs_topic in topics:
        # Lines are keyed by trace id, so the producer's partitioner put all of this trace's lines
        # in one partition: reading only it is what makes this fast on a big log topic.
        partition: int = DefaultPartitioner()(key, partitions_of[logs_topic], partitions_of[logs_topic])
        logs.label = f"topic {logs_topic} partition {partition}"
        starts = await _starts(consumer, [TopicPartition(logs_topic, partition)], since_ms, deadline)
        await _scan(consumer, starts, lambda r: r.key == key, logs, deadline, progress)
    else:
        logs.complete = True
    event_topics = sorted(t for t in topics if t.startswith(events_topic_prefix))
    events.label = f"{len(event_topics)} topic(s) {events_topic_prefix}*"
    tps = [TopicPartition(t, p) for t in event_topics for p in partitions_of[t]]
    starts = await _starts(consumer, tps, since_ms, deadline)
    await _scan(consumer, starts, lambda r: _trace_of(r) == trace, events, deadline, progress)


def _report(trace: str, logs: _Scan, events: _Scan, cut_short: str, since_ms: int, out: TextIO,
            progress: TextIO) -> int:
    _print_logs(trace, logs.kept, out)
    _print_events(trace, events.kept, out)
    if not (logs.complete and events.complete):
        print(f"scan cut short ({cut_short}) after {logs.scanned + events.scanned} records: "
              "the results above may be incomplete", file=progress)
        return 3
    if logs.kept or events.kept:
        return 0
    since = datetime.fromtimestamp(since_ms / 1000, UTC).isoformat(timespec="seconds")
    print(f"nothing found for trace {trace} since {since}: searched {logs.label} "
          f"({logs.scanned} records) and {events.label} ({events.scanned} records)", file=out)
    return 1


async def _bounded(awaitable: Awaitable[T], deadline: float) -> T:
    """Await with what is left of the overall budget: several broker calls can block indefinitely."""
    return await asyncio.wait_for(awaitable, timeout=max(0.0, deadline - time.monotonic()))


async def _starts(consumer: AIOKafkaConsumer, tps: list[TopicPartition], since_ms: int,
                  deadline: float) -> dict[TopicPartition, int]:
    """The first offset at or after ``since_ms`` of each partition; partitions with nothing as recent are left out.

    Kafka says "nothing" with offset -1 (aiokafka's None); Tansu says it with offset 0 and timestamp -1,
    so both mean skip.
    """
    if not tps:
        return {}
    found = await _bounded(consumer.offsets_for_times(dict.fromkeys(tps, since_ms)), deadline)
    return {tp: at.offset for tp, at in found.items() if at is not None and at.timestamp >= 0}


async def _scan(consumer: AIOKafkaConsumer, starts: dict[TopicPartition, int], keep: Callable[[Any], bool],
                scan: _Scan, deadline: float, progress: TextIO) -> None:
    """Read each partition from its start to its end, keeping the records ``keep`` accepts.

    The end is the end offset seen now. Tansu can under-report it, so past it reading goes on until
    a partition brings nothing for ``IDLE_S`` or a record stamped after the scan began (what is logged
    from then on is not the past being asked about, and on a busy topic would never let the scan end).
    Returns at ``deadline`` with ``scan.complete`` still False.
    """
    ends: dict[TopicPartition, int] = {}
    if starts:
        ends = await _bounded(consumer.end_offsets(list(starts)), deadline)
        consumer.assign(list(starts))
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
    began, began_ms = time.monotonic(), int(time.time() * 1000)
    last_data = dict.fromkeys(starts, began)
    pending = set(starts)
    next_report = began + PROGRESS_S
    while pending:
        now = time.monotonic()
        if now >= deadline:
            return
        batch = await consumer.getmany(*pending, timeout_ms=int(min(0.25, deadline - now) * 1000))
        now = time.monotonic()
        for tp, records in batch.items():
            last_data[tp] = now
            scan.scanned += len(records)
            scan.kept.extend(r for r in records if keep(r))
            if records and records[-1].offset + 1 >= ends[tp] and records[-1].timestamp >= began_ms:
                pending.discard(tp)
        for tp in list(pending):
            idle = now - last_data[tp]
            if idle >= STUCK_S or (idle >= IDLE_S and await _bounded(consumer.position(tp), deadline) >= ends[tp]):
                pending.discard(tp)
        if now >= next_report:
            print(f"scanned {scan.scanned} records in {scan.label}, {len(scan.kept)} of the trace so far...",
                  file=progress)
            next_report = now + PROGRESS_S
    scan.complete = True


def _trace_of(record: Any) -> str | None:
    """The trace id of a record's ``traceparent`` header (00-<trace id>-<span id>-<flags>), if any."""
    for name, value in record.headers or ():
        if name == "traceparent":
            fields = bytes(value).decode(errors="replace").split("-")
            return fields[1].lower() if len(fields) == 4 else None
    return None


def _print_logs(trace: str, records: Iterable[Any], out: TextIO) -> None:
    """The lines as they were shipped (greppable, pipeable to jq), merged across instances in time order.

    Sorted by the line's own timestamp first: instances' records interleave in the partition in the
    order they were shipped, not logged.
    """
    lines: list[tuple[str, int, str, dict[str, Any]]] = []
    for record in records:
        text = (record.value or b"").decode(errors="replace").rstrip("\n")
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            parsed = None
        fields = parsed if isinstance(parsed, dict) else {}
        lines.append((str(fields.get("timestamp", "")), int(record.timestamp), text, fields))
    lines.sort(key=lambda line: line[:2])
    instances = sorted({f"{f.get('host')}/{f.get('pid')}" for *_, f in lines if "host" in f or "pid" in f})
    print(f"== {len(lines)} log lines for trace {trace} from {len(instances)} instance(s) (host/pid pairs)"
          + (f": {', '.join(instances)}" if instances else ""), file=out)
    for _, _, text, _ in lines:
        print(text, file=out)


def _print_events(trace: str, records: Iterable[Any], out: TextIO) -> None:
    """The events in publication order, one JSON object each, as ``venus tail`` prints them."""
    ordered = sorted(records, key=lambda r: (r.timestamp, r.topic, r.partition, r.offset))
    print(f"== {len(ordered)} events published by trace {trace}", file=out)
    for record in ordered:
        try:
            value = orjson.loads(record.value or b"")
        except orjson.JSONDecodeError:
            value = (record.value or b"").decode(errors="replace")
        headers = {k: bytes(v).decode(errors="replace") for k, v in record.headers or ()}
        key = record.key.decode(errors="replace") if record.key else None
        print(orjson.dumps({"topic": record.topic, "partition": record.partition, "offset": record.offset,
                            "key": key, "headers": headers, "value": value}).decode(), file=out)
