"""``venus send`` and ``venus tail``: try a running Venus by hand and see what it published."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from typing import Any

import grpc
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import OffsetOutOfRangeError
from google.protobuf.timestamp_pb2 import Timestamp

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_grpc.kafka_clients import consumer_options, stop_within
from venus_grpc.settings import Settings
from venus_grpc.tools.stats import percentile
from venus_grpc.tools.tls import API_KEY_ENV, Endpoint

# What to do about a failed call, printed once after the failures: the status alone rarely says it.
_HINTS = {
    grpc.StatusCode.UNAVAILABLE: "no answer: check --target; if Venus serves TLS, pass the CA of its certificate "
                                 "with --ca-path (and --client-cert-path/--client-key-path for mTLS)",
    grpc.StatusCode.UNAUTHENTICATED: f"Venus wants an API key: give a file holding it with --api-key-path, or set "
                                     f"{API_KEY_ENV}",
}


def sample_request(*, app_id: str, category: str, events: int, ip: str = "") -> pb.UploadEventsRequest:
    """A batch of ``events`` plausible performance samples."""
    now = Timestamp()
    now.GetCurrentTime()
    return pb.UploadEventsRequest(
        meta=pb.BatchMeta(app_id=app_id, category=category, platform=pb.PLATFORM_ANDROID,
                          app_version="1.0.0", sdk_version="venus-send", device_id=f"device-{uuid.uuid4().hex[:8]}"),
        events=[
            pb.Event(id=f"evt-{uuid.uuid4().hex}", occurred_at=now, ip=ip,
                     payload=orjson.dumps({"screen": "home", "duration_ms": 120 + i, "seq": i}))
            for i in range(events)
        ],
    )


async def send(venus: Endpoint, *, app_id: str, category: str, events: int, batches: int, concurrency: int,
               ip: str, timeout_s: float) -> int:
    """Send ``batches`` batches with at most ``concurrency`` in flight; print results and events/s."""
    requests = [sample_request(app_id=app_id, category=category, events=events, ip=ip) for _ in range(batches)]
    ok = failed = 0
    latencies: list[float] = []
    failures: set[grpc.StatusCode] = set()
    async with venus.channel() as channel:
        stub = pb_grpc.IngestServiceStub(channel)  # type: ignore[no-untyped-call]
        queue = iter(requests)

        async def worker() -> None:
            nonlocal ok, failed
            for request in queue:
                started = time.perf_counter()
                try:
                    response = await stub.UploadEvents(request, timeout=timeout_s, metadata=venus.metadata())
                except grpc.aio.AioRpcError as err:
                    failed += len(request.events)
                    failures.add(err.code())
                    print(f"batch failed: {err.code().name}: {err.details()}")
                    continue
                latencies.append(time.perf_counter() - started)
                ok += sum(r.code == pb.EVENT_CODE_OK for r in response.results)
                failed += sum(r.code != pb.EVENT_CODE_OK for r in response.results)
                if batches == 1:
                    _print_response(response)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
        elapsed = time.perf_counter() - started
    latencies.sort()
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    print(f"{ok} events OK, {failed} not OK, in {elapsed:.2f} s: {ok / elapsed:,.0f} events/s; "
          f"batch latency p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    for code in sorted(failures & _HINTS.keys(), key=lambda c: c.name):
        print(f"{code.name}: {_HINTS[code]}")
    return 0 if failed == 0 else 1


def _print_response(response: pb.UploadEventsResponse) -> None:
    print(f"{pb.ResultCode.Name(response.code)}: {response.message} (request_id {response.request_id})")
    for result in response.results:
        line = f"  {result.id} -> {pb.EventCode.Name(result.code)} backend_id={result.backend_id}"
        if result.topic:
            line += f" at {result.topic} partition {result.partition} offset {result.offset}"
        print(line + (f" ({result.message})" if result.message else ""))


async def tail(bootstrap: str, topic: str, *, settings: Settings, from_beginning: bool, max_messages: int,
               timeout_s: float) -> int:
    """Print messages of ``topic`` with key and headers; stop after ``max_messages`` or ``timeout_s`` idle.

    ``settings`` gives the Kafka security settings (TLS, SASL).
    """
    consumer = AIOKafkaConsumer(topic, **consumer_options(settings, bootstrap),
                                auto_offset_reset="earliest" if from_beginning else "latest")
    seen = 0
    try:
        await consumer.start()
        while max_messages <= 0 or seen < max_messages:
            batch = await consumer.getmany(timeout_ms=int(timeout_s * 1000))
            if not batch:
                break
            for record in (r for records in batch.values() for r in records):
                if 0 < max_messages <= seen:
                    break
                seen += 1
                _print_record(record)
    finally:
        await stop_within(consumer, 10)
    return 0


async def show(bootstrap: str, topic: str, *, settings: Settings, partition: int, offset: int,
               timeout_s: float) -> int:
    """Print the one message at ``offset`` of ``topic``'s ``partition``, as :func:`tail` does; 1 if there is none."""
    consumer = AIOKafkaConsumer(**consumer_options(settings, bootstrap), auto_offset_reset="none")
    await consumer.start()
    where = TopicPartition(topic, partition)
    try:
        consumer.assign([where])
        consumer.seek(where, offset)
        records = (await consumer.getmany(where, timeout_ms=int(timeout_s * 1000), max_records=1)).get(where, [])
    except OffsetOutOfRangeError:
        records = []
    finally:
        await stop_within(consumer, 10)
    if not records or records[0].offset != offset:
        print(f"no message at offset {offset} of {topic} partition {partition} (within {timeout_s:g} s)",
              file=sys.stderr)
        return 1
    _print_record(records[0])
    return 0


def _print_record(record: Any) -> None:  # aiokafka's ConsumerRecord: untyped upstream
    headers = {k: v.decode(errors="replace") for k, v in record.headers}
    key = record.key.decode(errors="replace") if record.key else None
    print(orjson.dumps({"partition": record.partition, "offset": record.offset, "key": key,
                        "headers": headers, "value": orjson.loads(record.value)}).decode())
