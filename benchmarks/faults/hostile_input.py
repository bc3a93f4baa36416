"""Scenario 10: hostile input against one Venus while a well-behaved client sends steadily.

At once: clients sending batches whose labels would be copied into every event (900 KiB of labels on
1,000 tiny events: once 883 MiB of worker memory and 900 MB of Kafka per request), and StreamEvents
clients that send batch after batch and never read an answer. The well-behaved client must see every call
succeed; every amplifying request is INVALID_ARGUMENT and none of its events reaches Kafka; the streams are
held back by flow control; Venus's memory stays near its baseline.
"""

from __future__ import annotations

import asyncio
import time

import grpc

from benchmarks.faults.common import Context, Result, new_category, read_back, under_load
from benchmarks.faults.stack import Venus
from benchmarks.faults.transport_abuse import client_problems
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_grpc.tools.devbroker import EmbeddedBroker
from venus_grpc.tools.ledger import Load, TopicReader

AMPLIFIERS = 4  # clients, each sending one amplifying request after another
SILENT_STREAMS = 3
STREAM_BATCH = 500  # events per stream batch: ~60 KB of answer each, never read
WRITE_STALL_S = 2.0  # a stream write waiting this long is held back by flow control
_RSS_MARGIN_MIB = 150  # what the abusers may add at peak: HTTP/2 buffers and a few bounded batches


def _amplifying(category: str, n: int) -> pb.UploadEventsRequest:
    meta = pb.BatchMeta(app_id="hostile", category=category, labels={"blob": "x" * (900 << 10)})
    return pb.UploadEventsRequest(meta=meta, events=[pb.Event(id=f"a{n}-{i}", payload=b"{}") for i in range(1000)])


async def _amplify(target: str, category: str, until: float, codes: list[str]) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub, n = pb_grpc.IngestServiceStub(channel), 0  # type: ignore[no-untyped-call]
        while time.monotonic() < until:
            n += 1
            try:
                await stub.UploadEvents(_amplifying(category, n), timeout=5)
                codes.append("OK")
            except grpc.aio.AioRpcError as err:
                codes.append(err.code().name)


async def _silent_stream(target: str, category: str, until: float) -> int | None:
    """Write batches and never read: how many were written before a write stalled, or None if none did."""
    written = 0
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.IngestServiceStub(channel)  # type: ignore[no-untyped-call]
        call = stub.StreamEvents(timeout=until - time.monotonic() + 10)
        events = [pb.Event(id=f"s{k}-{'x' * 90}", payload=b"{}") for k in range(STREAM_BATCH)]
        batch = pb.UploadEventsRequest(meta=pb.BatchMeta(app_id="hostile", category=category), events=events)
        try:
            while time.monotonic() < until:
                await asyncio.wait_for(call.write(pb.StreamEventsRequest(sequence=written + 1, batch=batch)),
                                       timeout=WRITE_STALL_S)
                written += 1
        except TimeoutError:
            await asyncio.sleep(max(0.0, until - time.monotonic()))  # held back: keep the stream open to the end
            return written
        finally:
            call.cancel()
    return None


async def hostile_input(ctx: Context) -> Result:
    """Amplifying requests and streams that never read, beside a steady client that must see only OK."""
    category, hostile = new_category("hostile_ok"), new_category("hostile")
    hold_s = ctx.pick(8, 60)
    codes: list[str] = []
    written: list[int | None] = []
    with EmbeddedBroker() as broker:
        venus = Venus(broker.bootstrap, ctx.log_dir, extra=("--max-batches-in-flight-per-stream", "2"))
        try:
            await venus.wait_serving()
            rss0 = venus.peak_rss_bytes()

            async def fault() -> float:
                until = time.monotonic() + hold_s
                results = await asyncio.gather(*(_amplify(venus.target, hostile, until, codes)
                                                 for _ in range(AMPLIFIERS)),
                                               *(_silent_stream(venus.target, hostile, until)
                                                 for _ in range(SILENT_STREAMS)))
                written.extend(r if isinstance(r, int) else None for r in results[AMPLIFIERS:])
                return time.monotonic()

            ledger, _ = await under_load(Load(venus.target, category, batch=20, concurrency=2), fault,
                                         warmup_s=2, after_s=1)
            serving = await venus.health()
        finally:
            venus.stop()
        verdict = await read_back(broker.bootstrap, category, ledger)
        amplified = [m for m in await TopicReader(broker.bootstrap).read_all(f"to_analyzer__0.{hostile}")
                     if m.value["event"]["id"].startswith("a")]
    problems = client_problems(ledger) + _hostile_problems(codes, written, len(amplified), serving)
    peak_mib, base_mib = venus.peak_rss_bytes() / 2**20, rss0 / 2**20
    if peak_mib > base_mib + _RSS_MARGIN_MIB:
        problems.append(f"peak RSS {peak_mib:.0f} MiB, {peak_mib - base_mib:.0f} MiB over the baseline")
    notes = {"amplifying_requests": len(codes), "stream_batches_written": written,
             "rss_mib": f"{base_mib:.0f} -> peak {peak_mib:.0f}", "client_p99_s": round(verdict.p99_s, 3)}
    return Result("10. hostile input", verdict, None, venus.peak_rss_bytes(), problems, notes)


def _hostile_problems(codes: list[str], written: list[int | None], amplified_in_kafka: int,
                      serving: str) -> list[str]:
    problems = []
    if AMPLIFIERS and set(codes) != {"INVALID_ARGUMENT"}:
        problems.append(f"amplifying requests were answered {sorted(set(codes))}, not only INVALID_ARGUMENT")
    if amplified_in_kafka:
        problems.append(f"{amplified_in_kafka} events of amplifying requests are in Kafka")
    if None in written:
        problems.append(f"streams that never read wrote {written} batches (None: never held back by flow control)")
    if serving != "SERVING":
        problems.append(f"health is {serving} after the abuse, not SERVING")
    return problems
