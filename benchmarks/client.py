"""``python -m benchmarks.client``: events/s a Python service gets from venus-client, batched vs one by one.

A fresh Tansu broker and ``venus serve`` on loopback; then, in this process, the same number of
events sent three ways: ``emit_wait()`` through the client's batching buffer, ``upload()`` of one
event per call awaited in turn (what a naive integration does), and ``upload()`` of one event per
call with several calls in flight. Each way runs for the given rounds, interleaved, and the medians
are printed with the ratio to one-by-one. Every event is then looked for in Kafka, so a fast figure
cannot hide a loss.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from benchmarks.report import table
from benchmarks.verify import verify
from venus_client import EventData, Meta, VenusClient
from venus_grpc.settings import Settings
from venus_grpc.tools.devbroker import EmbeddedBroker
from venus_grpc.tools.process import running_venus

Way = Callable[[VenusClient, list[EventData]], Awaitable[None]]


async def _batched(client: VenusClient, events: list[EventData]) -> None:
    for event in events:
        await client.emit_wait(event)
    await client.flush()


async def _one_by_one(client: VenusClient, events: list[EventData]) -> None:
    for event in events:
        await client.upload([event])


async def _one_by_one_concurrent(client: VenusClient, events: list[EventData], in_flight: int = 16) -> None:
    window = asyncio.Semaphore(in_flight)

    async def one(event: EventData) -> None:
        async with window:
            await client.upload([event])

    await asyncio.gather(*(one(e) for e in events))


WAYS: dict[str, Way] = {"emit (batched)": _batched, "upload 1 by 1": _one_by_one,
                        "upload 1 by 1, 16 in flight": _one_by_one_concurrent}


async def _measure(target: str, category: str, events: int, rounds: int) -> tuple[dict[str, list[float]], int]:
    rates: dict[str, list[float]] = {name: [] for name in WAYS}
    sent = 0
    async with VenusClient(target, default_meta=Meta(app_id="bench-client", category=category)) as client:
        for _ in range(rounds):
            for name, way in WAYS.items():
                batch = [EventData(id=f"{uuid.uuid4().hex}", payload={"screen": "home", "n": i}) for i in range(events)]
                started = time.perf_counter()
                await way(client, batch)
                rates[name].append(events / (time.perf_counter() - started))
                sent += events
                print(f"  {name}: {rates[name][-1]:,.0f} events/s", file=sys.stderr, flush=True)
    return rates, sent


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the three ways and check that every event reached Kafka once."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.client", description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=5000, help="events per way and round")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args(argv)
    category = "BENCH_CLIENT_" + uuid.uuid4().hex[:8].upper()
    with tempfile.TemporaryDirectory(prefix="venus-bench-client-") as tmp, EmbeddedBroker() as broker:
        with running_venus(broker.bootstrap, log_dir=Path(tmp)) as venus:
            rates, sent = asyncio.run(_measure(venus.target, category, a.events, a.rounds))
        verdict = verify(broker.bootstrap, Settings().topic_for(category), expected=sent, ambiguous=0,
                         timeout_s=60)
    base = statistics.median(rates["upload 1 by 1"])
    rows = [[name, f"{statistics.median(r):,.0f}", f"{statistics.median(r) / base:.1f}"] for name, r in rates.items()]
    print(table(["way", "events/s (median)", "vs 1 by 1"], rows))
    print(f"in Kafka: {verdict.text()}")
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
