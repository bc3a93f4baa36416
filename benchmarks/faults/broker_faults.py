"""Scenarios where the broker is hit: frozen (4), killed and restarted (5), absent at startup (6)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from benchmarks.faults.common import Context, Result, new_category, poll_until, read_back, statuses, under_load
from benchmarks.faults.stack import Venus, local_s3, persistent_broker
from venus_grpc.server.transport import free_port
from venus_grpc.tools.devbroker import EmbeddedBroker
from venus_grpc.tools.ledger import Load

_RECOVERY_BOUND_S = 20.0


async def broker_frozen(ctx: Context) -> Result:
    """SIGSTOP the broker, then SIGCONT: every RPC answered by its deadline, health follows, load recovers."""
    category = new_category("frozen")
    problems: list[str] = []
    seen_frozen: set[str] = set()
    with EmbeddedBroker() as broker:
        venus = Venus(broker.bootstrap, ctx.log_dir)
        try:
            await venus.wait_serving()
            assert broker.pid is not None
            broker_pid = broker.pid

            async def fault() -> float:
                os.kill(broker_pid, signal.SIGSTOP)
                try:
                    thawed = time.monotonic() + ctx.pick(8, 20)
                    while time.monotonic() < thawed:
                        seen_frozen.add(await venus.health())
                        await asyncio.sleep(0.2)  # sampling health while the broker is frozen
                finally:
                    os.kill(broker_pid, signal.SIGCONT)
                return time.monotonic()

            ledger, thawed_at = await under_load(Load(venus.target, category), fault, warmup_s=ctx.pick(2, 30),
                                                 after_s=ctx.pick(6, 30))
            serving_again = await poll_until(lambda: _is_serving(venus), within_s=_RECOVERY_BOUND_S)
            _check_alive(venus, problems)
        finally:
            venus.stop()
        verdict = await read_back(broker.bootstrap, category, ledger)
    assert thawed_at is not None
    recovery_s = ledger.recovery_s(thawed_at)
    if "NOT_SERVING" not in seen_frozen:
        problems.append(f"health was {sorted(seen_frozen)} while the broker was frozen, never NOT_SERVING")
    if serving_again is None:
        problems.append("health not SERVING again after the broker resumed")
    _check_recovered(recovery_s, problems)
    if unexpected := statuses(ledger, 0.0) - {"OK", "UNAVAILABLE"}:
        problems.append(f"RPCs failed with {sorted(unexpected)}")
    return Result(f"4. broker frozen (SIGSTOP) {ctx.pick(8, 20):.0f} s", verdict, recovery_s,
                  venus.peak_rss_bytes(), problems, {"health_while_frozen": sorted(seen_frozen)})


async def broker_restarted(ctx: Context) -> Result:
    """SIGKILL the broker (persistent storage) and restart it on its port: Venus recovers by itself, loses nothing."""
    category = new_category("restart")
    problems: list[str] = []
    with local_s3(ctx.log_dir) as s3_env, persistent_broker(s3_env, free_port()) as broker:
        venus = Venus(broker.bootstrap, ctx.log_dir)
        try:
            await venus.wait_serving()

            async def fault() -> float:
                broker.kill()
                await asyncio.sleep(ctx.pick(2, 10))  # the broker stays down this long
                await asyncio.to_thread(broker.start)
                return time.monotonic()

            ledger, back_at = await under_load(Load(venus.target, category), fault, warmup_s=ctx.pick(3, 30),
                                               after_s=ctx.pick(10, 30))
            _check_alive(venus, problems)
        finally:
            venus.stop()
        verdict = await read_back(broker.bootstrap, category, ledger)
    assert back_at is not None
    recovery_s = ledger.recovery_s(back_at)
    _check_recovered(recovery_s, problems)
    return Result("5. broker SIGKILL + restart (persistent)", verdict, recovery_s, venus.peak_rss_bytes(), problems)


async def broker_absent(ctx: Context) -> Result:
    """No broker at startup: NOT_SERVING and fast UNAVAILABLE meanwhile, SERVING once it starts, no crash loop."""
    category = new_category("absent")
    problems: list[str] = []
    broker = EmbeddedBroker(free_port())
    try:
        venus = Venus(broker.bootstrap, ctx.log_dir, workers=2)
        try:
            await poll_until(lambda: _has_health(venus), within_s=30)
            first_health = await venus.health()
            workers_before = {p.pid for p in venus.workers()}

            async def fault() -> float:
                await asyncio.sleep(ctx.pick(3, 20))  # the broker stays absent this long
                await asyncio.to_thread(broker.start)
                return time.monotonic()

            ledger, started_at = await under_load(Load(venus.target, category), fault, warmup_s=0.5,
                                                  after_s=ctx.pick(6, 20))
            if {p.pid for p in venus.workers()} != workers_before:
                problems.append("workers were restarted while the broker was absent")
            _check_alive(venus, problems)
        finally:
            venus.stop()
        verdict = await read_back(broker.bootstrap, category, ledger)
    finally:
        broker.stop()
    assert started_at is not None
    recovery_s = ledger.recovery_s(started_at)
    if first_health != "NOT_SERVING":
        problems.append(f"health was {first_health} with no broker")
    refusals = [r.latency_s for r in ledger.rpcs if r.started < started_at and r.status != "OK"]
    if not refusals or max(refusals) > 0.5:
        problems.append(f"uploads without a broker were not refused fast: {len(refusals)} refusals, "
                        f"slowest {max(refusals, default=0):.2f} s")
    _check_recovered(recovery_s, problems)
    return Result("6. broker absent at startup", verdict, recovery_s, venus.peak_rss_bytes(), problems)


async def _is_serving(venus: Venus) -> bool:
    return await venus.health() == "SERVING"


async def _has_health(venus: Venus) -> bool:
    return await venus.health() in ("SERVING", "NOT_SERVING")


def _check_alive(venus: Venus, problems: list[str]) -> None:
    if venus.managed.process.poll() is not None:
        problems.append(f"venus exited with {venus.managed.process.returncode}:\n{venus.managed.log_tail()}")


def _check_recovered(recovery_s: float | None, problems: list[str]) -> None:
    if recovery_s is None or recovery_s > _RECOVERY_BOUND_S:
        problems.append(f"throughput did not recover within {_RECOVERY_BOUND_S:.0f} s (took {recovery_s})")
