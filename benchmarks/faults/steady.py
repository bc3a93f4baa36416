"""Scenario 1: steady load for a while; Venus's memory, open files and asyncio tasks must not grow."""

from __future__ import annotations

import asyncio
import statistics
import time

import psutil

from benchmarks.faults.common import Context, Result, new_category, read_back, under_load
from benchmarks.faults.stack import Venus
from venus_grpc.tools.devbroker import EmbeddedBroker
from venus_grpc.tools.ledger import Load

# Growth from the first third of the run to the last that still counts as flat.
_FLAT = {"rss_mib": 24.0, "open_fds": 4.0, "asyncio_tasks": 8.0}


async def steady_load(ctx: Context) -> Result:
    """Closed-loop load for ``ctx.pick(20, 180)`` s; compare the first and last third of per-second samples."""
    category = new_category("steady")
    samples: list[dict[str, float]] = []
    with EmbeddedBroker() as broker:
        venus = Venus(broker.bootstrap, ctx.log_dir)
        try:
            await venus.wait_serving()
            process = psutil.Process(venus.pid)
            run_s = ctx.pick(20, 180)

            async def sample() -> None:
                ends = time.monotonic() + run_s
                while time.monotonic() < ends:
                    await asyncio.sleep(1.0)  # one sample per second
                    samples.append({"rss_mib": process.memory_info().rss / 2**20, "open_fds": process.num_fds(),
                                    "asyncio_tasks": await asyncio.to_thread(venus.gauge, "venus_asyncio_tasks")})

            ledger, _ = await under_load(Load(venus.target, category), sample, warmup_s=ctx.pick(5, 30), after_s=0)
        finally:
            venus.stop()
        verdict = await read_back(broker.bootstrap, category, ledger)
    third = max(1, len(samples) // 3)
    growth = {k: statistics.mean(s[k] for s in samples[-third:]) - statistics.mean(s[k] for s in samples[:third])
              for k in _FLAT}
    problems = [f"{k} grew by {v:.1f} (flat is under {_FLAT[k]:.0f})" for k, v in growth.items() if v >= _FLAT[k]]
    return Result(f"1. steady load {ctx.pick(20, 180):.0f} s", verdict, None, venus.peak_rss_bytes(), problems,
                  {k: round(v, 1) for k, v in growth.items()})
