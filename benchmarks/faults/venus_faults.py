"""Scenarios where Venus itself is hit: SIGTERM at load (2), SIGKILL of a worker at load (3)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from benchmarks.faults.common import Context, Result, new_category, poll_until, read_back, statuses, under_load
from benchmarks.faults.stack import Venus
from venus_grpc.tools.devbroker import EmbeddedBroker
from venus_grpc.tools.ledger import Load

_GRACE_S = 5.0


async def sigterm_at_load(ctx: Context, *, workers: int) -> Result:
    """SIGTERM under load: NOT_SERVING first, refusals are UNAVAILABLE, exit 0 within the grace, nothing lost."""
    category = new_category(f"sigterm{workers}")
    problems: list[str] = []
    with EmbeddedBroker() as broker:
        venus = Venus(broker.bootstrap, ctx.log_dir, workers=workers, grace_s=_GRACE_S)
        try:
            await venus.wait_serving()
            load = Load(venus.target, category, batch=20, concurrency=4)
            sigterm_at = 0.0
            first_status = ""

            async def fault() -> float:
                nonlocal sigterm_at, first_status
                sigterm_at = time.monotonic()
                os.kill(venus.pid, signal.SIGTERM)
                while (first_status := await venus.health()) == "SERVING":
                    await asyncio.sleep(0.02)  # polling another process's health
                await asyncio.to_thread(venus.managed.process.wait, _GRACE_S + 5)
                return time.monotonic()

            ledger, exited_at = await under_load(load, fault, warmup_s=ctx.pick(3, 30), after_s=0.5)
        finally:
            returncode = venus.stop()
        verdict = await read_back(broker.bootstrap, category, ledger)
    exited_after_s = (exited_at or 0.0) - sigterm_at
    if returncode != 0:
        problems.append(f"exit code {returncode}:\n{venus.managed.log_tail()}")
    if exited_after_s > _GRACE_S + 2:
        problems.append(f"exited {exited_after_s:.1f} s after SIGTERM; grace is {_GRACE_S} s")
    if first_status != "NOT_SERVING":
        problems.append(f"health went from SERVING to {first_status}, not NOT_SERVING")
    if unexpected := statuses(ledger, sigterm_at) - {"OK", "UNAVAILABLE"}:
        problems.append(f"calls racing SIGTERM failed with {sorted(unexpected)}, not UNAVAILABLE")
    if verdict.failed_present:
        problems.append(f"{verdict.failed_present} events refused with UNAVAILABLE are in Kafka")
    return Result(f"2. SIGTERM at load, {workers} worker{'s' * (workers > 1)}", verdict, None,
                  venus.peak_rss_bytes(), problems, {"exit_s": round(exited_after_s, 2)})


async def sigkill_worker(ctx: Context) -> Result:
    """SIGKILL one of two workers under load: the supervisor replaces it; nothing acknowledged is lost."""
    category = new_category("sigkill")
    problems: list[str] = []
    with EmbeddedBroker() as broker:
        venus = Venus(broker.bootstrap, ctx.log_dir, workers=2)
        try:
            await venus.wait_serving()
            await poll_until(lambda: len(venus.workers()) == 2, within_s=10)
            load = Load(venus.target, category, batch=20, concurrency=4)
            replaced_after: float | None = None

            async def fault() -> float:
                nonlocal replaced_after
                victim = venus.workers()[0]
                victim.send_signal(signal.SIGKILL)
                killed_at = time.monotonic()
                replaced_after = await poll_until(lambda: victim.pid not in {p.pid for p in venus.workers()}
                                                  and len(venus.workers()) == 2, within_s=20)
                return killed_at

            ledger, _ = await under_load(load, fault, warmup_s=ctx.pick(3, 30), after_s=ctx.pick(3, 30))
            if venus.managed.process.poll() is not None:
                problems.append("the supervisor exited after a worker was killed")
        finally:
            returncode = venus.stop()
        verdict = await read_back(broker.bootstrap, category, ledger)
    if replaced_after is None:
        problems.append("the killed worker was not replaced within 20 s")
    if returncode != 0:
        problems.append(f"exit code {returncode} after SIGTERM")
    return Result("3. SIGKILL of a worker at load", verdict, replaced_after, venus.peak_rss_bytes(), problems)
