"""Per-connection limits enforced by gRPC's core, as a client sees them."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from benchmarks.faults.rawh2 import RawH2
from tests.conftest import StartVenus
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING


def _request(category: str, event_id: str) -> pb.UploadEventsRequest:
    return pb.UploadEventsRequest(meta=pb.BatchMeta(app_id="limits-app", category=category),
                                  events=[pb.Event(id=event_id, payload=b"{}")])


async def test_oversized_metadata_is_refused_with_resource_exhausted(start: StartVenus, category: str) -> None:
    """Headers over max_metadata_bytes fail that call only; the connection goes on serving."""
    venus = await start(max_metadata_bytes=4096)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        stub = pb_grpc.IngestServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.UploadEvents(_request(category, "big"), metadata=(("x-big", "a" * 5000),), timeout=5)
        assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "metadata size" in (err.value.details() or "")
        response = await stub.UploadEvents(_request(category, "small"), timeout=5)
        assert response.code == pb.RESULT_CODE_ALL_SUCCESS


async def test_connections_older_than_max_age_are_closed_so_clients_reconnect(start: StartVenus,
                                                                             category: str) -> None:
    """After max age plus grace a long stream ends UNAVAILABLE; unary calls meanwhile all succeed."""
    venus = await start(max_connection_age_s=1, max_connection_age_grace_s=1)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        stub = pb_grpc.IngestServiceStub(channel)
        stream = stub.StreamEvents(timeout=15)
        await stream.write(pb.StreamEventsRequest(sequence=1, batch=_request(category, "s1")))
        assert (await stream.read()).response.code == pb.RESULT_CODE_ALL_SUCCESS
        answered = [await stub.UploadEvents(_request(category, f"u{n}"), timeout=5) for n in range(3)]
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await stream.read()  # the server ends the pinned stream: the client opens a new connection
        assert ended.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "max connection age" in (ended.value.details() or "")
        answered.append(await stub.UploadEvents(_request(category, "after"), timeout=5))
    assert all(r.code == pb.RESULT_CODE_ALL_SUCCESS for r in answered)


async def test_an_idle_old_connection_is_closed_and_the_client_reconnects(start: StartVenus) -> None:
    """Past max_connection_age_s the server sends GOAWAY: the channel leaves READY, then reconnects on the next call."""
    venus = await start(max_connection_age_s=0.5, max_connection_age_grace_s=0.5)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert (await health.Check(health_pb2.HealthCheckRequest(), timeout=5)).status == SERVING
        assert channel.get_state() is grpc.ChannelConnectivity.READY
        await asyncio.wait_for(channel.wait_for_state_change(grpc.ChannelConnectivity.READY), timeout=15)
        assert channel.get_state() is not grpc.ChannelConnectivity.READY
        assert (await health.Check(health_pb2.HealthCheckRequest(), timeout=5)).status == SERVING


async def test_streams_beyond_the_per_connection_limit_wait_for_a_slot(start: StartVenus, category: str) -> None:
    """With max_concurrent_streams=2 a third call on that connection waits; another connection is served."""
    venus = await start(max_concurrent_streams=2)
    target = f"127.0.0.1:{venus.port}"
    async with grpc.aio.insecure_channel(target) as busy, \
            grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) as other:
        busy_stub = pb_grpc.IngestServiceStub(busy)
        held = [busy_stub.StreamEvents(timeout=15) for _ in range(2)]
        for n, stream in enumerate(held):
            await stream.write(pb.StreamEventsRequest(sequence=1, batch=_request(category, f"held{n}")))
            await stream.read()
        with pytest.raises(grpc.aio.AioRpcError) as waited:
            await busy_stub.UploadEvents(_request(category, "third"), timeout=1)
        assert waited.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        response = await pb_grpc.IngestServiceStub(other).UploadEvents(_request(category, "other"), timeout=5)
        assert response.code == pb.RESULT_CODE_ALL_SUCCESS
        for stream in held:
            await stream.done_writing()
        assert [await s.code() for s in held] == [grpc.StatusCode.OK, grpc.StatusCode.OK]
        freed = await busy_stub.UploadEvents(_request(category, "freed"), timeout=5)
        assert freed.code == pb.RESULT_CODE_ALL_SUCCESS


async def test_a_connection_never_carries_more_calls_than_the_process_serves(start: StartVenus, category: str) -> None:
    """max_concurrent_streams is capped to max_concurrent_rpcs: a second call on a busy connection waits its turn."""
    venus = await start(max_concurrent_rpcs=1, kafka_linger_ms=500)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        stub = pb_grpc.IngestServiceStub(channel)
        answers = await asyncio.gather(stub.UploadEvents(_request(category, "one"), timeout=10),
                                       stub.UploadEvents(_request(category, "two"), timeout=10))
    assert [a.code for a in answers] == [pb.RESULT_CODE_ALL_SUCCESS] * 2


async def test_calls_that_never_send_their_request_give_their_slots_back(start: StartVenus, category: str) -> None:
    """Calls stalled after their headers hold max_concurrent_rpcs only until request_read_timeout_s ends them."""
    venus = await start(request_read_timeout_s=5, max_concurrent_rpcs=20)
    stalled = [RawH2(venus.port) for _ in range(2)]
    try:
        calls = []
        for conn in stalled:  # 30 calls that send headers and nothing else, on connections that stay open
            await conn.open()
            calls += [(conn, conn.start_call()) for _ in range(15)]
            await conn.flush()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
            stub = pb_grpc.IngestServiceStub(channel)
            ended = [await conn.wait_status(stream_id, timeout_s=30) for conn, stream_id in calls]
            response = await stub.UploadEvents(_request(category, "after"), timeout=5)
    finally:
        for conn in stalled:
            await conn.close()
    # Those that held the slots were ended with DEADLINE_EXCEEDED, the others refused at once; none hangs.
    assert len(ended) == 30 and set(ended) <= {"4", "8"} and "4" in ended
    assert response.code == pb.RESULT_CODE_ALL_SUCCESS


async def test_calls_that_never_send_their_request_hold_no_place_under_the_limit_of_calls_in_flight(
    start: StartVenus, category: str
) -> None:
    """More stalled calls than the limit of calls in flight allows do not get a complete call after them refused."""
    venus = await start(max_concurrent_rpcs=20, overload_latency_target_s=0)  # a limit of 10 calls in flight
    conn = RawH2(venus.port)
    await conn.open()
    try:
        for _ in range(15):  # headers and nothing else, held open well within request_read_timeout_s (30 s)
            conn.start_call()
        complete = conn.start_call()  # on the same connection, so Venus takes it up after the stalled ones
        conn.send_message(complete, _request(category, "beside").SerializeToString())
        await conn.flush()
        status = await conn.wait_status(complete, timeout_s=10)
    finally:
        await conn.close()
    assert status == "0"
