"""Scenario 8: overload at 3x the capacity measured in the same run.

Capacity is found first (closed loop, batch 100, as ``benchmarks.run`` does), then three times that is
offered open loop: batches start at a fixed rate whether or not earlier ones were answered, with a
bound on the calls outstanding (arrivals beyond it are not sent, and counted). The open-loop clients
ignore RetryInfo on purpose: they are the load a gateway must survive, not well-behaved SDKs. Goodput
and the accepted calls' p99 are judged as ratios to the closed-loop phase of the same run.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field

import grpc

from benchmarks.faults.common import Context, Result, new_category, read_back
from benchmarks.faults.stack import Venus
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_grpc.tools.devbroker import EmbeddedBroker
from venus_grpc.tools.ledger import Ledger, Load, drive, send_batch
from venus_grpc.tools.ledger.book import Rpc
from venus_grpc.tools.stats import percentile

BATCH = 100
FACTOR = 3.0
WORKERS = 2
# The open loop sends whole windows: each worker admits one batch of OPEN_BATCH events at a time
# (max_events_in_flight = OPEN_BATCH), so any second call it reads while the first waits for Kafka is
# refused with RetryInfo, whatever the speed of the machine. With batches of 100 and the default window,
# MAX_OUTSTANDING calls stay under the adaptive limit of calls in flight, and whether they are served
# within overload_latency_target_s (and so whether any is refused) depends on the machine.
OPEN_BATCH = 1000
MAX_OUTSTANDING = 32  # under the workers' max_concurrent_rpcs (128 each): Venus's own refusal decides
_CHANNELS = 8
# Peak RSS of the whole process tree (supervisor + 2 workers), measured at about 260 MiB under this
# load; the bound leaves room for a shared machine's noise, and a leak per refused call would cross it.
RSS_BOUND_MIB = 400
# Both bounds are ratios to the closed-loop phase of the same run, since this machine's absolute figures
# move with its neighbours. Goodput under overload against the capacity measured seconds before: a
# dedicated machine keeps it near 1 (the target is 0.9); here the load generator, Tansu and Venus
# share 2 cores with other jobs, so the floor leaves room, but a collapse (refusing costing as much as
# serving) falls below it.
GOODPUT_FLOOR = 0.45
# p99 of the calls accepted under overload against p99 at capacity. An accepted call carries ten times
# the events of a closed-loop one (OPEN_BATCH against BATCH) and the open-loop client shares the 2 cores,
# so the ceiling is loose; calls queueing without bound behind the refused ones would cross it.
P99_CEILING = 12.0
_ALLOWED = frozenset({"OK", "RESOURCE_EXHAUSTED"})


@dataclass
class OpenLoop:
    """What an open-loop run did beside the ledger: arrivals not sent because too many were outstanding."""

    rate_rps: float
    max_outstanding: int
    dropped: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


@dataclass(frozen=True)
class Capacity:
    """The closed-loop phase: acknowledged events/s and the p99 of its calls."""

    eps: float
    p99_s: float


async def closed_loop_capacity(load: Load, ledger: Ledger, *, warmup_s: float, window_s: float) -> Capacity:
    """Acknowledged events/s in a closed loop, over a window after the warm-up, and the p99 of its calls."""
    stop = asyncio.Event()
    driver = asyncio.create_task(drive(load, ledger, stop))
    await asyncio.sleep(warmup_s)
    began = time.monotonic()
    await asyncio.sleep(window_s)
    ended = time.monotonic()
    stop.set()
    await asyncio.wait_for(driver, timeout=load.deadline_s + 15)
    latencies = sorted(r.latency_s for r in ledger.rpcs if began <= r.finished <= ended and r.status == "OK")
    return Capacity(acknowledged_per_s(ledger.rpcs, began, ended), percentile(latencies, 99))


def acknowledged_per_s(rpcs: list[Rpc], began: float, ended: float) -> float:
    """Events acknowledged by calls answered between ``began`` and ``ended``, per second."""
    return sum(r.ok_events for r in rpcs if began <= r.finished <= ended) / (ended - began)


async def open_loop(load: Load, ledger: Ledger, loop: OpenLoop, *, seconds: float) -> None:
    """Start a batch every ``1 / rate`` s for ``seconds`` over several connections, then wait for the last."""
    channels = [grpc.aio.insecure_channel(load.target, options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(_CHANNELS)]
    stubs = [pb_grpc.IngestServiceStub(c) for c in channels]  # type: ignore[no-untyped-call]
    counter = itertools.count()
    try:
        began = time.monotonic()
        for n in itertools.count():
            due = began + n / loop.rate_rps
            if due - began >= seconds:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if len(loop.tasks) >= loop.max_outstanding:
                loop.dropped += 1
                continue
            ids = [f"{load.run_id}-{next(counter)}" for _ in range(load.batch)]
            task = asyncio.create_task(_send(stubs[n % len(stubs)], load, ids, ledger))
            loop.tasks.add(task)
            task.add_done_callback(loop.tasks.discard)
        if loop.tasks:
            await asyncio.wait(set(loop.tasks), timeout=load.deadline_s + 5)
    finally:
        await asyncio.gather(*(c.close() for c in channels))


async def _send(stub: pb_grpc.IngestServiceStub, load: Load, ids: list[str], ledger: Ledger) -> None:
    await send_batch(stub, load, ids, ledger)  # the pause it suggests is ignored: this client does not back off


def overload_problems(rpcs: list[Rpc], verdict_failed_present: int) -> list[str]:
    """What an overloaded Venus must never do, from the open-loop calls."""
    problems = []
    statuses = Counter(r.status for r in rpcs)
    if unexpected := {s: n for s, n in statuses.items() if s not in _ALLOWED}:
        problems.append(f"calls under overload ended with {unexpected}, not only OK or RESOURCE_EXHAUSTED")
    if bare := sum(r.status == "RESOURCE_EXHAUSTED" and r.retry_after_s <= 0 for r in rpcs):
        problems.append(f"{bare} RESOURCE_EXHAUSTED refusals carried no RetryInfo")
    if statuses["RESOURCE_EXHAUSTED"] == 0:
        problems.append("nothing was refused: the offered load did not overload Venus")
    if verdict_failed_present:
        problems.append(f"{verdict_failed_present} events refused with RESOURCE_EXHAUSTED are in Kafka")
    return problems


def ratio_problems(under: list[Rpc], capacity: Capacity, goodput: float) -> list[str]:
    """Goodput and accepted p99 under overload, as ratios of the same run's closed-loop phase."""
    problems = []
    if goodput < GOODPUT_FLOOR * capacity.eps:
        problems.append(f"goodput {goodput:,.0f} events/s is under {GOODPUT_FLOOR} of capacity {capacity.eps:,.0f}")
    accepted_p99_s = _percentile(under, "OK", 99)
    if accepted_p99_s > P99_CEILING * capacity.p99_s:
        problems.append(f"accepted calls' p99 {accepted_p99_s:.3f} s is over {P99_CEILING}x the p99 at capacity "
                        f"({capacity.p99_s:.3f} s)")
    return problems


def figures(under: list[Rpc], capacity: Capacity, loop: OpenLoop, goodput: float) -> dict[str, object]:
    """What the runner prints: capacity, offered, goodput and latencies, with the ratios asserted."""
    refused = sum(r.status == "RESOURCE_EXHAUSTED" for r in under)
    accepted_p99_s = _percentile(under, "OK", 99)
    return {"capacity_eps": round(capacity.eps), "offered_eps": round(loop.rate_rps * OPEN_BATCH),
            "goodput_eps": round(goodput), "goodput_ratio": round(goodput / capacity.eps, 2) if capacity.eps else 0.0,
            "refused_share": round(refused / len(under), 2) if under else 0.0, "not_sent": loop.dropped,
            "accepted_p50_s": round(_percentile(under, "OK", 50), 3), "accepted_p99_s": round(accepted_p99_s, 3),
            "capacity_p99_s": round(capacity.p99_s, 3),
            "p99_ratio": round(accepted_p99_s / capacity.p99_s, 2) if capacity.p99_s else 0.0,
            "refused_p99_s": round(_percentile(under, "RESOURCE_EXHAUSTED", 99), 3)}


def _percentile(rpcs: list[Rpc], status: str, q: float) -> float:
    return percentile(sorted(r.latency_s for r in rpcs if r.status == status), q)


async def overload(ctx: Context) -> Result:
    """Closed-loop capacity at batch 100, then 3x that open loop; goodput, refusals, RSS and the ledger."""
    category = new_category("overload")
    ledger = Ledger()
    with EmbeddedBroker() as broker:
        venus = Venus(broker.bootstrap, ctx.log_dir, workers=WORKERS,
                      extra=("--max-events-in-flight", str(OPEN_BATCH)))
        try:
            await venus.wait_serving()
            capacity = await closed_loop_capacity(Load(venus.target, category, batch=BATCH, concurrency=16), ledger,
                                                  warmup_s=ctx.pick(2, 5), window_s=ctx.pick(4, 10))
            loop = OpenLoop(FACTOR * capacity.eps / OPEN_BATCH, MAX_OUTSTANDING)
            window_s = ctx.pick(8, 30)
            began = time.monotonic()
            await open_loop(Load(venus.target, category, batch=OPEN_BATCH), ledger, loop, seconds=window_s)
            serving = await venus.health()
        finally:
            venus.stop()
        verdict = await read_back(broker.bootstrap, category, ledger)
    under = [r for r in ledger.rpcs if r.started >= began]
    goodput = acknowledged_per_s(under, began, began + window_s)
    problems = overload_problems(under, verdict.failed_present) + ratio_problems(under, capacity, goodput)
    if (rss_mib := venus.peak_rss_bytes() / 2**20) > RSS_BOUND_MIB:
        problems.append(f"peak RSS {rss_mib:.0f} MiB is over the bound of {RSS_BOUND_MIB} MiB")
    if serving != "SERVING":
        problems.append(f"health is {serving} after the overload, not SERVING")
    return Result(f"8. overload at {FACTOR:.0f}x capacity", verdict, None, venus.peak_rss_bytes(), problems,
                  figures(under, capacity, loop, goodput))
