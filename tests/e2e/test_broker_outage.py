"""A broker that stops answering after Venus connected: calls waiting for it are bounded, new calls refused at once."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from tests.conftest import StartVenus
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_grpc.tools.devbroker import EmbeddedBroker

FREEZE_S = 30.0
PUBLISH_TIMEOUT_S = 5.0  # the bound a call already waiting for Kafka is held to
DEADLINE_S = 8.0
SLACK_S = 0.5


@dataclass(frozen=True)
class Call:
    """One upload during the freeze, as the client saw it."""

    started: float
    took_s: float
    code: grpc.StatusCode
    retry_info: bool


async def test_a_frozen_broker_bounds_waiting_calls_and_refuses_new_ones_at_once(
    own_broker: EmbeddedBroker, start: StartVenus, category: str
) -> None:
    """In a 30 s freeze every call ends by min(deadline, publish_timeout_s); once not serving, new ones at once."""
    own_broker.start()
    venus = await start(kafka_bootstrap=own_broker.bootstrap, publish_timeout_s=PUBLISH_TIMEOUT_S)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        stub, health = pb_grpc.IngestServiceStub(channel), health_pb2_grpc.HealthStub(channel)
        await stub.UploadEvents(_request(category, "warm"), timeout=10)
        assert own_broker.pid is not None
        os.kill(own_broker.pid, signal.SIGSTOP)  # a real fault: the broker stops answering, its sockets stay open
        frozen_at = time.monotonic()
        try:
            calls, not_serving_at = await _during_freeze(stub, health, category)
        finally:
            os.kill(own_broker.pid, signal.SIGCONT)
        recovered = await _until_ok(stub, category)
    assert not_serving_at is not None, "health never turned NOT_SERVING during the freeze"
    late = [c for c in calls if c.took_s > min(DEADLINE_S, PUBLISH_TIMEOUT_S) + SLACK_S]
    assert not late, f"{len(late)} calls took longer than the bound, e.g. {late[0]}"
    refused_fast = [c for c in calls if c.started > not_serving_at + 1.0]
    assert len(refused_fast) > 50
    assert all(c.code is grpc.StatusCode.UNAVAILABLE and c.retry_info and c.took_s < SLACK_S for c in refused_fast)
    assert not_serving_at - frozen_at < 10.0
    assert recovered


async def _during_freeze(stub: pb_grpc.IngestServiceStub, health: health_pb2_grpc.HealthStub,
                         category: str) -> tuple[list[Call], float | None]:
    """Upload every 0.25 s for the freeze while watching health; the calls and when health said NOT_SERVING."""
    end = time.monotonic() + FREEZE_S
    tasks: list[asyncio.Task[Call]] = []
    not_serving_at: float | None = None
    n = 0
    while time.monotonic() < end:
        tasks.append(asyncio.create_task(_upload(stub, _request(category, f"f{n}"))))
        n += 1
        answer = await health.Check(health_pb2.HealthCheckRequest(service="venus.v1.IngestService"), timeout=2)
        if not_serving_at is None and answer.status == health_pb2.HealthCheckResponse.NOT_SERVING:
            not_serving_at = time.monotonic()
        await asyncio.sleep(0.25)  # the pace of the load: one call every quarter second
    return list(await asyncio.gather(*tasks)), not_serving_at


async def _upload(stub: pb_grpc.IngestServiceStub, request: pb.UploadEventsRequest) -> Call:
    started = time.monotonic()
    try:
        await stub.UploadEvents(request, timeout=DEADLINE_S)
        return Call(started, time.monotonic() - started, grpc.StatusCode.OK, False)
    except grpc.aio.AioRpcError as err:
        status = rpc_status.from_call(err)
        retry = status is not None and any(d.Is(error_details_pb2.RetryInfo.DESCRIPTOR) for d in status.details)
        return Call(started, time.monotonic() - started, err.code(), retry)


async def _until_ok(stub: pb_grpc.IngestServiceStub, category: str, within_s: float = 20.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            answer = await stub.UploadEvents(_request(category, f"after-{time.monotonic()}"), timeout=5)
            if answer.code == pb.RESULT_CODE_ALL_SUCCESS:
                return True
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.2)  # retry pace while the producer reconnects
    return False


def _request(category: str, event_id: str) -> pb.UploadEventsRequest:
    return pb.UploadEventsRequest(meta=pb.BatchMeta(app_id="outage", category=category),
                                  events=[pb.Event(id=event_id, payload=b'{"n": 1}')])
