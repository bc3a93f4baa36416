"""Faults a user meets: the broker goes away, is absent at startup, or Venus is told to stop under load."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import orjson
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from tests.conftest import StartVenus
from tests.kafka_helpers import event_ids
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_grpc.devbroker import EmbeddedBroker, free_port, stop_process

pytestmark = pytest.mark.timeout(60)

SERVICE = "venus.v1.IngestService"
SHUTDOWN_GRACE_S = 5.0


def _batch(category: str, ids: Sequence[str]) -> pb.UploadEventsRequest:
    return pb.UploadEventsRequest(
        meta=pb.BatchMeta(app_id="com.example.faults", category=category, platform=pb.PLATFORM_SERVER),
        events=[pb.Event(id=i, ip="10.0.0.1", payload=orjson.dumps({"n": n})) for n, i in enumerate(ids)],
    )


def _retry_delay_s(err: grpc.aio.AioRpcError) -> float | None:
    """The google.rpc.RetryInfo delay sent with ``err``, if any."""
    status = rpc_status.from_call(err)
    for detail in status.details if status is not None else ():
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return float(info.retry_delay.ToNanoseconds()) / 1e9
    return None


async def _upload_until_ok(stub: pb_grpc.IngestServiceStub, request: pb.UploadEventsRequest,
                           within_s: float) -> tuple[pb.UploadEventsResponse, list[grpc.StatusCode]]:
    """Retry ``request`` (as a client honouring UNAVAILABLE would) until it is answered, within ``within_s``."""
    failures: list[grpc.StatusCode] = []
    deadline = time.monotonic() + within_s
    while True:
        try:
            return await stub.UploadEvents(request, timeout=3), failures
        except grpc.aio.AioRpcError as err:
            failures.append(err.code())
            if err.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)  # back off before polling again; not a synchronisation point


async def _health(channel: grpc.aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=SERVICE), timeout=2)
    return int(reply.status)


async def test_broker_outage_is_unavailable_then_recovers_without_restart(
    own_broker: EmbeddedBroker, start: StartVenus, category: str
) -> None:
    """While the broker is down uploads fail fast with UNAVAILABLE and RetryInfo; once it is back they succeed."""
    await asyncio.to_thread(own_broker.start)
    venus = await start(kafka_bootstrap=own_broker.bootstrap, publish_timeout_s=2, kafka_request_timeout_ms=1500)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        stub = pb_grpc.IngestServiceStub(channel)
        before = await stub.UploadEvents(_batch(category, ["before"]), timeout=10)
        assert before.code == pb.RESULT_CODE_ALL_SUCCESS

        await asyncio.to_thread(own_broker.stop)
        began = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.UploadEvents(_batch(category, ["during"]), timeout=3)
        elapsed = time.monotonic() - began
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value.details()
        assert elapsed < 2.0 + 0.5, f"answered after {elapsed:.2f} s, publish_timeout_s is 2"
        delay_s = _retry_delay_s(caught.value)
        assert delay_s is not None and delay_s > 0, "no RetryInfo telling the client when to retry"

        await asyncio.to_thread(own_broker.start)
        after, failures = await _upload_until_ok(stub, _batch(category, ["after-0", "after-1"]), within_s=20)
        assert set(failures) <= {grpc.StatusCode.UNAVAILABLE}
        assert after.code == pb.RESULT_CODE_ALL_SUCCESS
        assert all(r.code == pb.EVENT_CODE_OK for r in after.results)
    # The restarted broker lost "before" with its memory; "during" may or may not have been delivered.
    published = await event_ids(own_broker.bootstrap, category)
    assert sorted(i for i in published if i.startswith("after")) == ["after-0", "after-1"]


async def test_broker_absent_at_startup_is_not_serving_until_it_appears(
    own_broker: EmbeddedBroker, start: StartVenus, category: str
) -> None:
    """With no broker Venus is NOT_SERVING and refuses uploads at once; when the broker starts it serves."""
    venus = await start(wait_ready=False, kafka_bootstrap=own_broker.bootstrap)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        stub = pb_grpc.IngestServiceStub(channel)
        assert await _health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING

        began = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.UploadEvents(_batch(category, ["early"]), timeout=3)
        elapsed = time.monotonic() - began
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value.details()
        assert elapsed < 0.5, f"refusal took {elapsed:.2f} s"
        delay_s = _retry_delay_s(caught.value)
        assert delay_s is not None and delay_s > 0, "no RetryInfo telling the client when to retry"

        await asyncio.to_thread(own_broker.start)
        deadline = time.monotonic() + 20
        while (status := await _health(channel)) != health_pb2.HealthCheckResponse.SERVING:
            assert time.monotonic() < deadline, f"still {status} 20 s after the broker started"
            await asyncio.sleep(0.1)

        response = await stub.UploadEvents(_batch(category, ["late-0", "late-1"]), timeout=10)
        assert response.code == pb.RESULT_CODE_ALL_SUCCESS
    assert sorted(await event_ids(own_broker.bootstrap, category)) == ["late-0", "late-1"]


@dataclass
class _Shutdown:
    """What clients saw when Venus got SIGTERM under load."""

    returncode: int
    exited_after_s: float  # from SIGTERM to the exit of the process
    acked: list[str] = field(default_factory=list)  # ids answered EVENT_CODE_OK
    failed: list[tuple[grpc.StatusCode, float, list[str]]] = field(default_factory=list)  # code, seconds, ids


async def _wait_serving(target: str, process: subprocess.Popen[bytes], within_s: float) -> None:
    deadline = time.monotonic() + within_s
    async with grpc.aio.insecure_channel(target) as channel:
        while True:
            assert process.poll() is None, f"venus exited early with {process.returncode}"
            with contextlib.suppress(grpc.aio.AioRpcError):  # the port is not open yet
                if await _health(channel) == health_pb2.HealthCheckResponse.SERVING:
                    return
            assert time.monotonic() < deadline, f"venus not SERVING within {within_s} s"
            await asyncio.sleep(0.1)


async def _sigterm_under_load(bootstrap: str, category: str, log_path: Path, *, clients: int,
                              batch_size: int, processes: int) -> _Shutdown:
    """Run ``venus serve --workers processes``, load it from ``clients`` tasks, SIGTERM it, send until refused."""
    port = free_port()
    argv = [sys.executable, "-m", "venus_grpc", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--metrics-host", "127.0.0.1", "--metrics-port", str(free_port()), "--kafka-bootstrap", bootstrap,
            "--kafka-connect-retry-s", "0.5", "--shutdown-grace-s", str(SHUTDOWN_GRACE_S), "--log-level", "WARNING",
            "--workers", str(processes)]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(argv, env=os.environ | {"OTEL_TRACES_EXPORTER": "none"},
                                   stdout=log_file, stderr=subprocess.STDOUT)
    try:
        await _wait_serving(f"127.0.0.1:{port}", process, within_s=20)
        budget = iter(range(400))  # batches in all, across workers
        acked: list[str] = []
        failed: list[tuple[grpc.StatusCode, float, list[str]]] = []
        enough, terminated = asyncio.Event(), asyncio.Event()

        async def drive(stub: pb_grpc.IngestServiceStub) -> None:
            for _ in budget:
                ids = [uuid.uuid4().hex for _ in range(batch_size)]
                began = time.monotonic()
                try:
                    response = await stub.UploadEvents(_batch(category, ids), timeout=2 * SHUTDOWN_GRACE_S)
                except grpc.aio.AioRpcError as err:
                    if not terminated.is_set():
                        raise
                    failed.append((err.code(), time.monotonic() - began, ids))
                    return
                acked.extend(r.id for r in response.results if r.code == pb.EVENT_CODE_OK)
                if len(acked) >= 1000:
                    enough.set()

        # A connection of its own per client (a private subchannel pool), so that with several workers
        # the kernel spreads the load over all of them.
        channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=(("grpc.use_local_subchannel_pool", 1),))
                    for _ in range(clients)]
        async with contextlib.AsyncExitStack() as stack:
            for channel in channels:
                await stack.enter_async_context(channel)
            tasks = [asyncio.create_task(drive(pb_grpc.IngestServiceStub(c))) for c in channels]
            await asyncio.wait_for(enough.wait(), timeout=20)
            terminated.set()
            sigterm_at = time.monotonic()
            os.kill(process.pid, signal.SIGTERM)
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=3 * SHUTDOWN_GRACE_S)
        returncode = await asyncio.to_thread(process.wait, SHUTDOWN_GRACE_S + 5)
        return _Shutdown(returncode, time.monotonic() - sigterm_at, acked, failed)
    finally:
        stop_process(process, timeout_s=10)


@pytest.mark.parametrize("processes", [1, 2], ids=["one-process", "two-workers"])
async def test_sigterm_under_load_loses_no_acknowledged_event(
    broker: EmbeddedBroker, category: str, tmp_path: Path, processes: int
) -> None:
    """After SIGTERM under load Venus exits 0 within its grace period and every event answered OK is in Kafka."""
    run = await _sigterm_under_load(broker.bootstrap, category, tmp_path / "venus.log", clients=6, batch_size=50,
                                    processes=processes)

    assert run.returncode == 0, (tmp_path / "venus.log").read_text()
    assert run.exited_after_s < SHUTDOWN_GRACE_S + 2
    assert len(run.failed) == 6, "every worker was refused before its budget ran out"
    slowest = max(took for _, took, _ in run.failed)
    assert slowest < 2.0, f"a call hung {slowest:.1f} s after SIGTERM instead of being refused: {run.failed}"
    published = set(await event_ids(broker.bootstrap, category))
    missing = set(run.acked) - published
    assert not missing, f"{len(missing)} of {len(run.acked)} acknowledged events are not in Kafka"
    refused = {i for _, _, ids in run.failed for i in ids}
    assert not refused & published, "a refused batch was published anyway: retrying it would duplicate"


async def test_calls_racing_sigterm_are_refused_as_unavailable(
    broker: EmbeddedBroker, category: str, tmp_path: Path
) -> None:
    """Every call that fails because Venus is stopping fails with UNAVAILABLE, which clients retry."""
    run = await _sigterm_under_load(broker.bootstrap, category, tmp_path / "venus.log", clients=16, batch_size=10,
                                    processes=1)

    assert run.returncode == 0, (tmp_path / "venus.log").read_text()
    assert len(run.failed) == 16
    assert [code for code, _, _ in run.failed if code != grpc.StatusCode.UNAVAILABLE] == []
