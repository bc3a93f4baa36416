"""Which Kafka producer costs Venus less CPU per event: aiokafka record batches or confluent-kafka.

Venus publishes each request's events as one record batch through aiokafka. confluent-kafka
(librdkafka) was the alternative considered; this measures both on the same broker, in the same
run, the way Venus would use them: a batch of 100 messages per request, 16 requests in flight,
``acks=all``, linger 5 ms. Run: ``python -m benchmarks.producers`` (needs the ``bench`` extra).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import confluent_kafka
import orjson
from aiokafka import AIOKafkaProducer

from venus_grpc.tools.devbroker import EmbeddedBroker

VALUE = orjson.dumps({"backend_id": "0" * 36, "meta": {"app_id": "bench", "labels": {}},
                      "payload": {"screen": "home", "duration_ms": 120}, "geo": {"city": "Willesden"}})
HEADERS = [("traceparent", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01"), ("baggage", b"request_id=bench")]
MESSAGES, PER_REQUEST, IN_FLIGHT, ROUNDS = 50_000, 100, 16, 3


def _cpu_s() -> float:
    times = os.times()
    return times.user + times.system


async def _aiokafka(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                max_batch_size=1 << 20, max_request_size=1 << 20)
    await producer.start()
    window = asyncio.Semaphore(IN_FLIGHT)

    async def request(n: int) -> None:
        async with window:
            batch = producer.create_batch()
            for _ in range(PER_REQUEST):
                batch.append(key=b"device", value=VALUE, timestamp=None, headers=HEADERS)
            await (await producer.send_batch(batch, topic, partition=n % 4))

    try:
        await asyncio.gather(*(request(n) for n in range(MESSAGES // PER_REQUEST)))
    finally:
        await producer.stop()


async def _confluent(bootstrap: str, topic: str) -> None:
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    loop = asyncio.get_running_loop()
    stopping = threading.Event()

    def serve_delivery_callbacks() -> None:
        while not stopping.is_set():
            producer.poll(0.05)

    poller = threading.Thread(target=serve_delivery_callbacks)
    poller.start()
    window = asyncio.Semaphore(IN_FLIGHT)

    def acknowledge(ack: asyncio.Future[object]) -> Callable[[object, object], None]:
        def delivered(error: object, _: object) -> None:
            loop.call_soon_threadsafe(ack.set_result, error)

        return delivered

    headers: list[tuple[str, str | bytes | None]] = list(HEADERS)

    async def request() -> None:
        async with window:
            acks: list[asyncio.Future[object]] = [loop.create_future() for _ in range(PER_REQUEST)]
            for ack in acks:
                producer.produce(topic, VALUE, key=b"device", headers=headers, on_delivery=acknowledge(ack))
            errors = [e for e in await asyncio.gather(*acks) if e is not None]
            assert not errors, errors

    try:
        await asyncio.gather(*(request() for _ in range(MESSAGES // PER_REQUEST)))
    finally:
        stopping.set()
        poller.join()
        producer.flush(10)


def _measure(run: Callable[[str, str], Coroutine[Any, Any, None]], bootstrap: str,
             topic: str) -> tuple[float, float]:
    cpu, began = _cpu_s(), time.perf_counter()
    asyncio.run(run(bootstrap, topic))
    elapsed = time.perf_counter() - began
    return MESSAGES / elapsed, (_cpu_s() - cpu) / MESSAGES * 1e6


def main() -> None:
    """Alternate the two producers for a few rounds and print medians."""
    results: dict[str, list[tuple[float, float]]] = {"aiokafka record batches": [], "confluent-kafka produce": []}
    with EmbeddedBroker() as broker:
        for n in range(ROUNDS):
            results["aiokafka record batches"].append(_measure(_aiokafka, broker.bootstrap, f"producers-a{n}"))
            results["confluent-kafka produce"].append(_measure(_confluent, broker.bootstrap, f"producers-c{n}"))
    print(f"{MESSAGES} messages per round, {PER_REQUEST} per request, {IN_FLIGHT} requests in flight, "
          f"acks=all; medians of {ROUNDS} rounds")
    for name, runs in results.items():
        rate = statistics.median(r for r, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"  {name:26} {rate:10,.0f} messages/s   {cpu:6.1f} µs CPU per message in the producing process")


if __name__ == "__main__":
    main()
