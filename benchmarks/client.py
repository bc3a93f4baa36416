"""``python -m benchmarks.client``: events/s a Python service gets from venus-client, and over which transport.

A fresh Tansu broker and ``venus serve`` on loopback; then, in this process, the same number of
events sent several ways: ``emit_wait()`` through the client's batching buffer with its defaults; at
small batch sizes (1 and 10 events), ``emit`` over one StreamEvents stream (the default transport),
``emit`` over a unary call per batch, and ``upload()`` of one batch per call awaited in turn (what a
naive integration does); and ``upload()`` of one event per call with several in flight. Each way runs
for the given rounds, interleaved, and the medians are printed with the ratio to one-by-one, then the
issue's target: emit over the stream against one unary call per batch, at each small batch size.
Every event is then looked for in Kafka, so a fast figure cannot hide a loss.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Literal

from benchmarks.report import table
from benchmarks.verify import verify
from venus_client import BufferConfig, EventData, Meta, VenusClient
from venus_grpc.settings import Settings
from venus_grpc.tools.devbroker import EmbeddedBroker
from venus_grpc.tools.process import running_venus

SMALL_BATCHES = (1, 10)
STREAM_TARGET = 3.0  # emit over one stream, in events/s, over one unary call per batch (issue #15)
Way = Callable[[str, Meta, list[EventData]], Awaitable[None]]


async def _emit(target: str, meta: Meta, events: list[EventData], *, transport: Literal["stream", "unary"] = "stream",
                batch: int | None = None) -> None:
    config = BufferConfig() if batch is None else BufferConfig(max_batch_events=batch)
    async with VenusClient(target, default_meta=meta, buffer=config, transport=transport) as client:
        for event in events:
            await client.emit_wait(event)
        await client.flush()


async def _upload_batches(target: str, meta: Meta, events: list[EventData], *, batch: int = 1) -> None:
    async with VenusClient(target, default_meta=meta) as client:
        for start in range(0, len(events), batch):
            await client.upload(events[start:start + batch])


async def _one_by_one_concurrent(target: str, meta: Meta, events: list[EventData], in_flight: int = 16) -> None:
    window = asyncio.Semaphore(in_flight)
    async with VenusClient(target, default_meta=meta) as client:
        async def one(event: EventData) -> None:
            async with window:
                await client.upload([event])

        await asyncio.gather(*(one(e) for e in events))


def _ways() -> dict[str, Way]:
    ways: dict[str, Way] = {"emit (batched)": _emit, "upload 1 by 1": _upload_batches,
                            "upload 1 by 1, 16 in flight": _one_by_one_concurrent}
    for b in SMALL_BATCHES:
        ways[f"emit, stream, batches of {b}"] = functools.partial(_emit, batch=b)
        ways[f"emit, unary, batches of {b}"] = functools.partial(_emit, transport="unary", batch=b)
        if b > 1:
            ways[f"upload, one call per batch of {b}"] = functools.partial(_upload_batches, batch=b)
    return ways


def _unary_per_batch(b: int) -> str:
    return "upload 1 by 1" if b == 1 else f"upload, one call per batch of {b}"


async def _measure(target: str, category: str, events: int, rounds: int) -> tuple[dict[str, list[float]], int]:
    ways = _ways()
    rates: dict[str, list[float]] = {name: [] for name in ways}
    sent = 0
    meta = Meta(app_id="bench-client", category=category)
    for _ in range(rounds):
        for name, way in ways.items():
            batch = [EventData(id=f"{uuid.uuid4().hex}", payload={"screen": "home", "n": i}) for i in range(events)]
            started = time.perf_counter()
            await way(target, meta, batch)
            rates[name].append(events / (time.perf_counter() - started))
            sent += events
            print(f"  {name}: {rates[name][-1]:,.0f} events/s", file=sys.stderr, flush=True)
    return rates, sent


def _ratios(rates: dict[str, list[float]], way: str, base: str) -> tuple[float, str]:
    """The median of the per-round ratios of ``way`` to ``base`` (both ran in each round), and the rounds'."""
    ratios = [w / b for w, b in zip(rates[way], rates[base], strict=True)]
    return statistics.median(ratios), ", ".join(f"{r:.1f}" for r in ratios)


def _stream_lines(rates: dict[str, list[float]]) -> list[str]:
    """Issue #15's target at each small batch size, and how much of it the stream itself gives."""
    lines = []
    for b in SMALL_BATCHES:
        stream = f"emit, stream, batches of {b}"
        ratio, rounds = _ratios(rates, stream, _unary_per_batch(b))
        same_window, _ = _ratios(rates, stream, f"emit, unary, batches of {b}")
        lines.append(f"emit over one stream vs one unary call per batch, batches of {b}: {ratio:.1f}x (rounds "
                     f"{rounds}; target >= {STREAM_TARGET:g}x: {'met' if ratio >= STREAM_TARGET else 'MISSED'}); "
                     f"vs emit over unary calls with as many batches in flight: {same_window:.2f}x")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every way and check that every event reached Kafka once."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.client", description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=2000, help="events per way and round")
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
    for line in _stream_lines(rates):
        print(line)
    print(f"in Kafka: {verdict.text()}")
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
