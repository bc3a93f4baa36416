"""Per-app quotas on a live server: QuotaFailure + RetryInfo, the client honouring it, and fairness."""

from __future__ import annotations

import asyncio
import time

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.conftest import StartVenus
from tests.kafka_helpers import TopicReader
from venus_client import EventData, Meta, OutcomeStatus, RetryPolicy, VenusClient
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_grpc.tools.stats import percentile


def _batch(app_id: str, category: str, prefix: str, size: int) -> pb.UploadEventsRequest:
    return pb.UploadEventsRequest(meta=pb.BatchMeta(app_id=app_id, category=category),
                                  events=[pb.Event(id=f"{prefix}-{i}", payload=b"{}") for i in range(size)])


async def test_an_app_over_its_quota_gets_quota_failure_and_retry_info(start: StartVenus, category: str,
                                                                       topic_reader: TopicReader) -> None:
    """Past its events/s the app is refused with QuotaFailure naming it and RetryInfo; later it is served."""
    venus = await start(quota_events_per_s=20, quota_burst_s=1)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        stub = pb_grpc.IngestServiceStub(channel)
        sent: list[str] = []
        refusal: grpc.aio.AioRpcError | None = None
        for n in range(10):  # 20 events of burst, then debt: refused within a few batches
            request = _batch("greedy-app", category, f"b{n}", 10)
            try:
                await stub.UploadEvents(request, timeout=5)
            except grpc.aio.AioRpcError as err:
                refusal = err
                break
            sent += [e.id for e in request.events]
        assert refusal is not None and refusal.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        status = rpc_status.from_call(refusal)
        assert status is not None
        quota, retry = error_details_pb2.QuotaFailure(), error_details_pb2.RetryInfo()
        assert [d.Unpack(quota) for d in status.details if d.Is(quota.DESCRIPTOR)] == [True]
        assert [d.Unpack(retry) for d in status.details if d.Is(retry.DESCRIPTOR)] == [True]
        assert quota.violations[0].subject == "app_id:greedy-app"
        assert "20 events/s" in quota.violations[0].description
        delay_s = retry.retry_delay.ToNanoseconds() / 1e9
        assert 0 < delay_s <= 2
        await asyncio.sleep(delay_s)  # the server said when to come back
        await stub.UploadEvents(_batch("greedy-app", category, "after", 1), timeout=5)
    published = await topic_reader.read_all(venus.settings.topic_for(category))
    assert sorted(m.value["event"]["id"] for m in published) == sorted([*sent, "after-0"])


async def test_the_client_library_waits_out_the_quota(start: StartVenus, category: str) -> None:
    """VenusClient retries a throttled batch after the RetryInfo delay until every event is delivered."""
    venus = await start(quota_events_per_s=50, quota_burst_s=0.2)
    async with VenusClient(f"127.0.0.1:{venus.port}", default_meta=Meta(app_id="sdk-app", category=category),
                           retry=RetryPolicy(total_budget_s=20, max_attempts=50)) as client:
        results = [await client.upload([EventData(id=f"c{n}-{i}", payload={}) for i in range(25)])
                   for n in range(6)]
    assert all(o.status is OutcomeStatus.OK for r in results for o in r.outcomes)
    assert max(r.attempts for r in results) > 1  # some batches were throttled and sent again


async def _steady(stub: pb_grpc.IngestServiceStub, category: str, seconds: float) -> tuple[list[float], int]:
    """A well-behaved app: one batch of 5 every 50 ms. Returns latencies (s) and refusals."""
    latencies, refused = [], 0
    stop_at = time.monotonic() + seconds
    n = 0
    while time.monotonic() < stop_at:
        started = time.monotonic()
        try:
            await stub.UploadEvents(_batch("calm-app", category, f"calm{n}", 5), timeout=5)
            latencies.append(time.monotonic() - started)
        except grpc.aio.AioRpcError:
            refused += 1
        n += 1
        await asyncio.sleep(0.05)  # the calm app's own pace
    return latencies, refused


async def _flood(stub: pb_grpc.IngestServiceStub, category: str, stop: asyncio.Event, codes: list[str]) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        try:
            await stub.UploadEvents(_batch("flood-app", category, f"f{id(codes)}-{n}", 50), timeout=5)
            codes.append("OK")
        except grpc.aio.AioRpcError as err:
            codes.append(err.code().name)


def _p99_ms(latencies: list[float]) -> float:
    return 1000 * percentile(sorted(latencies), 99)


async def test_a_flooding_app_does_not_starve_another(start: StartVenus, category: str) -> None:
    """While one app floods far past its quota, a calm app within its quota is served every time."""
    venus = await start(quota_events_per_s=500, quota_burst_s=1)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as calm_channel, \
            grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}",
                                      options=[("grpc.use_local_subchannel_pool", 1)]) as flood_channel:
        calm, flooder = pb_grpc.IngestServiceStub(calm_channel), pb_grpc.IngestServiceStub(flood_channel)
        alone, _ = await _steady(calm, category, 1.5)
        stop, codes = asyncio.Event(), []
        floods = [asyncio.create_task(_flood(flooder, category, stop, codes)) for _ in range(16)]
        try:
            flooded, refused = await _steady(calm, category, 3.0)
        finally:
            stop.set()
            await asyncio.gather(*floods)
    print(f"calm app p99: {_p99_ms(alone):.1f} ms alone, {_p99_ms(flooded):.1f} ms during the flood; "
          f"flood calls: {len(codes)}, refused {codes.count('RESOURCE_EXHAUSTED')}")
    assert refused == 0 and len(flooded) > 20
    assert codes.count("RESOURCE_EXHAUSTED") > codes.count("OK")  # the flood really was over its quota
