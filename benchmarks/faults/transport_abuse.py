"""Scenario 9: abusive transport against one Venus while a well-behaved client sends steadily.

At once: raw TCP connections that never speak HTTP/2, HTTP/2 connections that open no stream (closed
by ``max_connection_idle_s``, set small here), a PING flood without calls (GOAWAY too_many_pings),
more streams on one connection than ``max_concurrent_streams`` allows, a message whose length prefix
promises 3 MiB and then stops (ended by ``request_read_timeout_s``), and one that declares more than
``max_message_bytes``. The well-behaved client must see every call succeed; afterwards Venus is
SERVING and its open files and memory are back near where they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import psutil

from benchmarks.faults.common import Context, Result, new_category, poll_until, read_back, under_load
from benchmarks.faults.rawh2 import ENHANCE_YOUR_CALM, RawH2
from benchmarks.faults.stack import Venus
from venus_grpc.tools.devbroker import EmbeddedBroker
from venus_grpc.tools.ledger import Ledger, Load
from venus_grpc.tools.stats import percentile

IDLE_S = 2.0
READ_TIMEOUT_S = 2.0  # request_read_timeout_s: the half-sent message is given up on within the scenario
STREAM_LIMIT = 100  # max_concurrent_streams, the default
RAW_SOCKETS = 500
SILENT_H2 = 200
EXTRA_STREAMS = 50
_RESOURCE_EXHAUSTED = "8"
_DEADLINE_EXCEEDED = "4"
# A well-behaved call shares 2 cores with the abusers, Tansu and the scenario itself; 2 s is far above
# its usual p99 (tens of ms) and far below a stall (a starved event loop would take the whole deadline).
P99_BOUND_S = 2.0
_FDS_MARGIN = 16
_RSS_MARGIN_MIB = 40


@dataclass
class Abuse:
    """What each abusive client saw."""

    silent_closed: int = 0
    ping_goaway: int | None = None
    ping_debug: bytes = b""
    ping_closed: bool = False
    streams_refused: int = 0
    oversized_status: str | None = None
    half_sent_status: str | None = None


async def abuse(port: int, hold_s: float) -> Abuse:
    """Run every abuse at once for ``hold_s``; every connection is closed when this returns."""
    seen = Abuse()
    raw: list[asyncio.StreamWriter] = []
    conns: list[RawH2] = []
    try:
        for _ in range(RAW_SOCKETS):  # connect, then never speak
            raw.append((await asyncio.open_connection("127.0.0.1", port))[1])
        silent = [RawH2(port) for _ in range(SILENT_H2)]
        conns += silent
        for conn in silent:
            await conn.open()
        await asyncio.gather(_ping_flood(port, seen, conns, hold_s), _streams_and_messages(port, seen, conns, hold_s))
        seen.silent_closed = sum(c.seen.closed for c in silent)
    finally:
        await asyncio.gather(*(c.close() for c in conns))
        for writer in raw:
            writer.close()
    return seen


async def _ping_flood(port: int, seen: Abuse, conns: list[RawH2], hold_s: float) -> None:
    conn = RawH2(port)
    conns.append(conn)
    await conn.open()
    ends = time.monotonic() + hold_s
    n = 0
    while not conn.seen.closed and time.monotonic() < ends:
        n += 1
        with contextlib.suppress(Exception):  # the state machine refuses pings once GOAWAY came
            conn.ping(n)
            await conn.flush()
        await asyncio.sleep(0.005)  # 200 pings/s: far above the 1 per 10 s allowed
    seen.ping_goaway, seen.ping_debug = conn.seen.goaway_code, conn.seen.goaway_debug
    seen.ping_closed = conn.seen.closed


async def _streams_and_messages(port: int, seen: Abuse, conns: list[RawH2], hold_s: float) -> None:
    crowded, partial = RawH2(port), RawH2(port)
    conns += [crowded, partial]
    await crowded.open(read=False)
    await partial.open()
    ids = [crowded.start_call() for _ in range(STREAM_LIMIT + EXTRA_STREAMS)]  # headers only, no deadline
    await crowded.flush()
    crowded.listen()
    half = partial.start_call()
    partial.send_message_start(half, declared_bytes=3 * 2**20, sent_bytes=60_000)
    oversized = partial.start_call()
    partial.send_message_start(oversized, declared_bytes=5 * 2**20, sent_bytes=1_000)
    await partial.flush()
    seen.oversized_status = await partial.wait_status(oversized, timeout_s=hold_s)
    await asyncio.sleep(max(0.0, hold_s - 1))
    seen.streams_refused = sum(crowded.seen.statuses.get(i, "").startswith("reset") for i in ids)
    seen.half_sent_status = partial.seen.statuses.get(half)


def abuse_problems(seen: Abuse) -> list[str]:
    """What the server should have done to each abusive client, and did not."""
    problems = []
    if seen.silent_closed < SILENT_H2:
        problems.append(f"only {seen.silent_closed} of {SILENT_H2} idle HTTP/2 connections were closed "
                        f"by max_connection_idle_s={IDLE_S}")
    if seen.ping_goaway != ENHANCE_YOUR_CALM or b"too_many_pings" not in seen.ping_debug or not seen.ping_closed:
        problems.append(f"the ping flood got GOAWAY {seen.ping_goaway} {seen.ping_debug!r} "
                        f"(closed: {seen.ping_closed}), not ENHANCE_YOUR_CALM too_many_pings")
    if seen.streams_refused < EXTRA_STREAMS:
        problems.append(f"{seen.streams_refused} streams refused beyond max_concurrent_streams, "
                        f"not at least {EXTRA_STREAMS}")
    if seen.half_sent_status != _DEADLINE_EXCEEDED:
        problems.append(f"a message stopped half-way got {seen.half_sent_status} after request_read_timeout_s, "
                        "not DEADLINE_EXCEEDED: it still holds its slot")
    if seen.oversized_status != _RESOURCE_EXHAUSTED:
        problems.append(f"a message declaring 5 MiB got {seen.oversized_status}, not RESOURCE_EXHAUSTED")
    return problems


def _usage(process: psutil.Process) -> tuple[int, float]:
    return process.num_fds(), process.memory_info().rss / 2**20


async def abusive_transport(ctx: Context) -> Result:
    """Every abuse at once beside a steady well-behaved client; it must see only OK, and Venus recover."""
    category = new_category("abuse")
    hold_s = ctx.pick(6, 60)
    with EmbeddedBroker() as broker:
        venus = Venus(broker.bootstrap, ctx.log_dir,
                      extra=("--max-connection-idle-s", str(IDLE_S), "--request-read-timeout-s", str(READ_TIMEOUT_S)))
        try:
            await venus.wait_serving()
            process = psutil.Process(venus.pid)
            baseline: list[tuple[int, float]] = []
            seen = Abuse()

            async def fault() -> float:
                nonlocal seen
                baseline.append(_usage(process))  # with the well-behaved client connected
                seen = await abuse(venus.port, hold_s)
                return time.monotonic()

            ledger, _ = await under_load(Load(venus.target, category, batch=20, concurrency=2), fault,
                                         warmup_s=2, after_s=1)
            fds0, rss0 = baseline[0]
            settled = await poll_until(lambda: _usage(process)[0] <= fds0 + _FDS_MARGIN, within_s=15)
            fds1, rss1 = _usage(process)
            serving = await venus.health()
        finally:
            venus.stop()
        verdict = await read_back(broker.bootstrap, category, ledger)
    problems = abuse_problems(seen) + client_problems(ledger)
    if serving != "SERVING":
        problems.append(f"health is {serving} after the abuse, not SERVING")
    if settled is None:
        problems.append(f"open fds {fds1} did not return near the baseline {fds0} within 15 s")
    if rss1 > rss0 + _RSS_MARGIN_MIB:
        problems.append(f"RSS {rss1:.0f} MiB after the abuse, baseline {rss0:.0f} MiB")
    notes = {"client_p99_s": round(verdict.p99_s, 3), "client_rpcs": verdict.rpcs, "fds": f"{fds0} -> {fds1}",
             "rss_mib": f"{rss0:.0f} -> {rss1:.0f}", "streams_refused": seen.streams_refused}
    return Result("9. abusive transport", verdict, None, venus.peak_rss_bytes(), problems, notes)


def client_problems(ledger: Ledger) -> list[str]:
    """What a well-behaved client beside the abuse should not have seen: anything but OK, or a slow p99."""
    statuses = {r.status for r in ledger.rpcs}
    problems = [f"the well-behaved client saw {sorted(statuses - {'OK'})}"] if statuses - {"OK"} else []
    partial = sum(r.ok_events < r.events for r in ledger.rpcs if r.status == "OK")
    if partial:
        problems.append(f"{partial} of the well-behaved client's batches were not all acknowledged")
    latencies = sorted(r.latency_s for r in ledger.rpcs)
    if percentile(latencies, 99) >= P99_BOUND_S:
        problems.append(f"the well-behaved client's p99 is over {P99_BOUND_S} s")
    return problems
