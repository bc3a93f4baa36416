"""Scenario 7: a slow, stalling and resetting link between Venus and the broker."""

from __future__ import annotations

import asyncio
import time

from benchmarks.faults.common import Context, Result, new_category, read_back, under_load
from benchmarks.faults.proxy import FaultyLink
from benchmarks.faults.stack import Venus
from venus_grpc.server.transport import free_port
from venus_grpc.tools.devbroker import EmbeddedBroker
from venus_grpc.tools.ledger import Load

_MAX_EVENTS_IN_FLIGHT = 400


async def lossy_link(ctx: Context) -> Result:
    """Latency, a stall, then resets on the broker link: in-flight stays under its cap, nothing acknowledged lost."""
    category = new_category("link")
    problems: list[str] = []
    in_flight: list[float] = []
    broker_port = free_port()
    link = FaultyLink(broker_port)
    await link.start()
    try:
        with EmbeddedBroker(broker_port, advertised_port=link.port):
            venus = Venus(f"127.0.0.1:{link.port}", ctx.log_dir,
                          extra=("--max-events-in-flight", str(_MAX_EVENTS_IN_FLIGHT),
                                 "--max-events-per-batch", "100"))
            try:
                await venus.wait_serving()
                sampler = asyncio.create_task(_sample(venus, in_flight))

                async def fault() -> float:
                    link.delay_s = 0.05
                    await asyncio.sleep(ctx.pick(3, 20))  # a slow link for this long
                    link.stall()
                    await asyncio.sleep(ctx.pick(4, 15))  # then no bytes at all
                    link.resume()
                    for _ in range(int(ctx.pick(2, 5))):
                        link.reset()
                        await asyncio.sleep(1.0)  # connections re-made between resets
                    link.delay_s = 0.0
                    return time.monotonic()

                load = Load(venus.target, category, batch=50, concurrency=16)
                ledger, healed_at = await under_load(load, fault, warmup_s=ctx.pick(2, 20), after_s=ctx.pick(6, 20))
                sampler.cancel()
            finally:
                venus.stop()
            verdict = await read_back(f"127.0.0.1:{link.port}", category, ledger)
    finally:
        await link.close()
    assert healed_at is not None
    recovery_s = ledger.recovery_s(healed_at)
    if recovery_s is None:
        problems.append("no batch was fully acknowledged after the link healed")
    peak = max(in_flight, default=0)
    if peak > _MAX_EVENTS_IN_FLIGHT:
        problems.append(f"{peak:.0f} events in flight, over the cap of {_MAX_EVENTS_IN_FLIGHT}")
    return Result("7. slow, stalled, reset broker link", verdict, recovery_s, venus.peak_rss_bytes(), problems,
                  {"peak_events_in_flight": peak})


async def _sample(venus: Venus, into: list[float]) -> None:
    while True:
        into.append(await asyncio.to_thread(venus.gauge, "venus_events_in_flight"))
        await asyncio.sleep(0.2)  # sampling another process's gauge
