"""The ledger's load driver: closed-loop batches with unique event ids, every outcome recorded.

A worker that sees a failure pauses briefly and goes on with new ids, as a client that gives up
on a batch would; the ledger keeps the failed ids, so the verifier can tell whether they landed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from dataclasses import dataclass, field

import grpc
import orjson

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_grpc.tools.ledger.book import Ledger

# One TCP connection per worker, so that with several Venus workers the kernel spreads the load.
_CHANNEL_OPTIONS = (("grpc.use_local_subchannel_pool", 1),)


@dataclass(frozen=True)
class Load:
    """What to send: ``concurrency`` workers each with one batch of ``batch`` events in flight."""

    target: str
    category: str
    batch: int = 20
    concurrency: int = 4
    deadline_s: float = 3.0
    pause_after_failure_s: float = 0.2
    app_id: str = "venus-ledger"
    attributes: dict[str, str] = field(default_factory=dict)  # on every event, e.g. the canary mark
    metadata: tuple[tuple[str, str], ...] = ()  # on every call, e.g. an API key
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])


def request(load: Load, ids: list[str]) -> pb.UploadEventsRequest:
    """A batch of events with ``ids``; payloads are small JSON objects naming the id."""
    meta = pb.BatchMeta(app_id=load.app_id, category=load.category, platform=pb.PLATFORM_SERVER,
                        sdk_version="venus-ledger")
    return pb.UploadEventsRequest(meta=meta, events=[
        pb.Event(id=i, payload=orjson.dumps({"ledger": i}), attributes=load.attributes) for i in ids])


async def send_batch(stub: pb_grpc.IngestServiceStub, load: Load, ids: list[str], ledger: Ledger) -> float | None:
    """Send one batch and record its outcome; None when every event was acknowledged, else seconds to pause.

    The pause honours the server's RetryInfo, as the Venus client does.
    """
    started = time.monotonic()
    try:
        response = await stub.UploadEvents(request(load, ids), timeout=load.deadline_s, metadata=load.metadata)
    except grpc.aio.AioRpcError as err:
        rpc = ledger.failed(ids, err, started=started, finished=time.monotonic(), deadline_s=load.deadline_s)
        return max(load.pause_after_failure_s, rpc.retry_after_s)
    ledger.answered(ids, response, started=started, finished=time.monotonic(), deadline_s=load.deadline_s)
    return None if all(r.code == pb.EVENT_CODE_OK for r in response.results) else load.pause_after_failure_s


async def drive(load: Load, ledger: Ledger, stop: asyncio.Event) -> None:
    """Keep ``load.concurrency`` batches in flight until ``stop`` is set; every outcome goes to ``ledger``."""
    counter = itertools.count()

    def next_ids() -> list[str]:
        return [f"{load.run_id}-{next(counter)}" for _ in range(load.batch)]

    async def worker() -> None:
        async with grpc.aio.insecure_channel(load.target, options=_CHANNEL_OPTIONS) as channel:
            stub = pb_grpc.IngestServiceStub(channel)  # type: ignore[no-untyped-call]
            while not stop.is_set():
                pause_s = await send_batch(stub, load, next_ids(), ledger)
                if pause_s is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=pause_s)

    await asyncio.gather(*(worker() for _ in range(load.concurrency)))
