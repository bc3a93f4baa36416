"""The broker ceiling: a bare aiokafka producer publishing what Venus publishes, with no gRPC.

Run by ``run`` as its own process (``python -m benchmarks.broker_load``). It mirrors Venus's
publish step - one producer, ``acks="all"``, Venus's default linger/batch/timeout settings, one
key per batch, a batch of N messages sent and then awaited together, at most C batches in flight -
with the very message value and headers Venus produced in the same run (``--sample``), so sizes
match. By default it appends each batch's messages to record batches itself (``--api batch``),
the cheapest path aiokafka has, so that Venus cannot publish faster than this through the same
client library and broker whichever path it uses; ``--api send`` is the one-future-per-message path.

``--processes N`` splits the concurrency over N processes with a producer each, as Venus's N
workers do; the first process starts the others (by pid, stopped in ``finally``), gives them the
same window, and merges their tallies.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from benchmarks.phases import Tally, emit, run_and_emit, run_async
from venus_grpc.kafka_clients import stop_within
from venus_grpc.settings import Settings

_PARTITIONER = DefaultPartitioner()


@dataclass(frozen=True)
class Sample:
    """One Kafka message as Venus wrote it (the key varies per batch, as device ids do)."""

    value: bytes
    headers: list[tuple[str, bytes]]

    @staticmethod
    def load(path: str) -> Sample:
        """Read what ``run`` saved from the Venus run's topic; a synthetic message when ``path`` is empty."""
        if not path:
            return _synthetic()
        data = json.loads(Path(path).read_text())
        return Sample(value=base64.b64decode(data["value"]),
                      headers=[(k, base64.b64decode(v)) for k, v in data["headers"]])

    def dump(self, path: Path) -> None:
        """Save for :meth:`load`."""
        path.write_text(json.dumps({"value": base64.b64encode(self.value).decode(),
                                    "headers": [[k, base64.b64encode(v).decode()] for k, v in self.headers]}))


def _synthetic() -> Sample:
    # The shape of "What lands in Kafka" in docs/contract.md, for when no Venus message is at hand.
    value = orjson.dumps({
        "backend_id": str(uuid.uuid4()), "received_at_ms": 1796093154922,
        "meta": {"app_id": "venus-bench", "category": "BENCH", "platform": "android", "app_version": "1.0.0",
                 "sdk_version": "venus-send", "device_id": "dev-0000000000", "labels": {}},
        "event": {"id": "00000000-0000000000-0000", "occurred_at_ms": 1796093154000, "ip": "81.2.69.142",
                  "attributes": {}},
        "geo": {"country_code": "GB", "country": "United Kingdom", "region": "Brent", "city": "Willesden"},
        "payload": {"screen": "home", "duration_ms": 120, "seq": 0},
    })
    trace = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    return Sample(value=value, headers=[("traceparent", trace.encode()), ("baggage", b"request_id=" + b"0" * 32)])


@dataclass(frozen=True)
class BrokerSpec:
    """One broker-ceiling run."""

    bootstrap: str
    topic: str
    batch: int
    concurrency: int
    warmup_s: float
    duration_s: float
    timeout_s: float
    sample: Sample
    processes: int = 1
    api: str = "batch"  # "batch": create_batch/send_batch per request; "send": send() per message


def new_producer(bootstrap: str) -> AIOKafkaProducer:
    """A producer configured like Venus's (``venus_grpc.kafka.KafkaPublisher``) with default settings."""
    s = Settings()
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, client_id="venus-bench", acks="all", linger_ms=s.kafka_linger_ms,
        max_batch_size=s.kafka_max_batch_bytes, max_request_size=s.kafka_max_batch_bytes,
        compression_type=None if s.kafka_compression == "none" else s.kafka_compression,
        request_timeout_ms=s.kafka_request_timeout_ms,
    )


async def _send_each(producer: AIOKafkaProducer, spec: BrokerSpec, key: bytes) -> list[object]:
    # The classic path: one future per message.
    futures = [await producer.send(spec.topic, spec.sample.value, key=key, headers=spec.sample.headers)
               for _ in range(spec.batch)]
    return list(await asyncio.gather(*futures, return_exceptions=True))


async def _send_batches(producer: AIOKafkaProducer, spec: BrokerSpec, key: bytes,
                        partitions: list[int]) -> list[object]:
    # The cheapest path aiokafka offers: the batch's messages appended to record batches by hand,
    # one future per record batch, on the key's partition (the default murmur2 partitioner).
    partition = int(_PARTITIONER(key, partitions, partitions))
    futures, sizes = [], []
    builder, size = producer.create_batch(), 0
    for _ in range(spec.batch):
        if builder.append(key=key, value=spec.sample.value, timestamp=None, headers=spec.sample.headers) is None:
            futures.append(await producer.send_batch(builder, spec.topic, partition=partition))
            sizes.append(size)
            builder, size = producer.create_batch(), 0
            builder.append(key=key, value=spec.sample.value, timestamp=None, headers=spec.sample.headers)
        size += 1
    futures.append(await producer.send_batch(builder, spec.topic, partition=partition))
    sizes.append(size)
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    return [outcome for outcome, n in zip(outcomes, sizes, strict=True) for _ in range(n)]


async def _worker(producer: AIOKafkaProducer, spec: BrokerSpec, tally: Tally, seq: list[int], stop_at: float) -> None:
    partitions = sorted(await producer.partitions_for(spec.topic))
    while (started := time.monotonic()) < stop_at:
        key = b"dev-%010d" % seq[0]
        seq[0] += 1
        tally.sent(spec.batch)
        try:
            async with asyncio.timeout(spec.timeout_s):
                if spec.api == "batch":
                    outcomes = await _send_batches(producer, spec, key, partitions)
                else:
                    outcomes = await _send_each(producer, spec, key)
        except TimeoutError:
            tally.failed(time.monotonic(), "TIMEOUT", spec.batch)
            continue
        done = time.monotonic()
        failed = sum(isinstance(o, BaseException) for o in outcomes)
        tally.answered(done, done - started, spec.batch - failed, {"PUBLISH_ERROR": failed} if failed else {},
                       ambiguous=failed)


def _shares(total: int, parts: int) -> list[int]:
    """``total`` concurrency over at most ``parts`` processes, none with zero."""
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _recv_blocking(conn: Connection, timeout_s: float) -> object:
    if not conn.poll(timeout_s):
        raise TimeoutError(f"no word from a producer process within {timeout_s:.0f} s")
    return conn.recv()


async def _recv(conn: Connection, timeout_s: float) -> object:
    return await asyncio.to_thread(_recv_blocking, conn, timeout_s)


async def _produce(producer: AIOKafkaProducer, spec: BrokerSpec, concurrency: int, tally: Tally, first_seq: int,
                   *, announce: bool) -> None:
    seq = [first_seq]
    stop_at = tally.window_end
    workers = [asyncio.create_task(_worker(producer, spec, tally, seq, stop_at)) for _ in range(concurrency)]
    if announce:
        await asyncio.sleep(max(0.0, tally.window_start - time.monotonic()))
        emit("measure")
        await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
        emit("window_end")
    _, late = await asyncio.wait(workers, timeout=max(0.0, stop_at - time.monotonic()) + spec.timeout_s + 5)
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)


async def _child_main(spec: BrokerSpec, concurrency: int, index: int, conn: Connection) -> None:
    producer = new_producer(spec.bootstrap)
    await asyncio.wait_for(producer.start(), timeout=20)
    try:
        conn.send("ready")
        window_start = float(await _recv(conn, 60))  # type: ignore[arg-type]
        tally = Tally()
        tally.open_window(window_start, spec.duration_s)
        await _produce(producer, spec, concurrency, tally, index * 10**9, announce=False)
        conn.send(tally)
    finally:
        await stop_within(producer, 10)


def _child(spec: BrokerSpec, concurrency: int, index: int, conn: Connection) -> None:
    run_async(_child_main(spec, concurrency, index, conn))


async def run(spec: BrokerSpec) -> dict[str, Any]:
    """Start helpers, warm up, measure (announcing the window), drain, merge, and summarise."""
    shares = _shares(spec.concurrency, spec.processes)
    context = multiprocessing.get_context("spawn")
    helpers: list[tuple[BaseProcess, Connection]] = []
    producer = new_producer(spec.bootstrap)
    await asyncio.wait_for(producer.start(), timeout=20)
    try:
        await producer.send_and_wait(spec.topic, b"{}")  # create the topic outside the measurement
        for index, share in enumerate(shares[1:], 1):
            mine, theirs = context.Pipe()
            process = context.Process(target=_child, args=(spec, share, index, theirs), name=f"broker-load-{index}")
            process.start()
            helpers.append((process, mine))
        for _, conn in helpers:
            await _recv(conn, 60)  # its producer is connected
        tally = Tally()
        tally.open_window(time.monotonic() + spec.warmup_s, spec.duration_s)
        for _, conn in helpers:
            conn.send(tally.window_start)
        await _produce(producer, spec, shares[0], tally, 0, announce=True)
        for _, conn in helpers:
            other = await _recv(conn, spec.timeout_s + 30)
            assert isinstance(other, Tally)
            tally.merge(other)
        return tally.result(mode="closed", batch=spec.batch, concurrency=spec.concurrency,
                            processes=len(shares), api=spec.api, message_bytes=len(spec.sample.value))
    finally:
        await stop_within(producer, 10)
        for helper, _ in helpers:
            helper.join(timeout=10)
            if helper.is_alive():
                helper.kill()
                helper.join()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one broker-ceiling load and print its phases and result as JSON lines."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.broker_load", description=__doc__.splitlines()[0])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--warmup-s", type=float, default=2.0)
    p.add_argument("--duration-s", type=float, default=10.0)
    p.add_argument("--timeout-s", type=float, default=10.0)
    p.add_argument("--sample", default="", help="JSON file with a message Venus published")
    p.add_argument("--processes", type=int, default=1, help="producer processes sharing the concurrency")
    p.add_argument("--api", choices=("batch", "send"), default="batch",
                   help="batch: hand-built record batches, aiokafka's cheapest path (default); send: one per message")
    a = p.parse_args(argv)
    spec = BrokerSpec(bootstrap=a.bootstrap, topic=a.topic, batch=a.batch, concurrency=a.concurrency,
                      warmup_s=a.warmup_s, duration_s=a.duration_s, timeout_s=a.timeout_s,
                      sample=Sample.load(a.sample), processes=a.processes, api=a.api)
    return run_and_emit(run(spec))


if __name__ == "__main__":
    raise SystemExit(main())
