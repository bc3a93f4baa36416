"""Full-link logs: one trace id finds every line that every instance wrote for it, and its events."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import orjson
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_grpc.server.transport import free_port
from venus_grpc.tools.devbroker import EmbeddedBroker, stop_process

pytestmark = pytest.mark.timeout(120)
TRACE = "5b8efff798038103d269b633813fc60c"
OTHER_TRACE = "6e0c63257de34c92bf9efcd03927272e"


@pytest.fixture
def two_instances(broker: EmbeddedBroker, category: str, tmp_path: Path) -> Iterator[tuple[list[int], str]]:
    """Two `venus serve` processes shipping logs to one logs topic; yields their ports and the topic."""
    logs_topic = f"logs_{category.lower()}"
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "venus_grpc", "serve", "--workers", "1", "--host", "127.0.0.1", "--port", str(port),
             "--metrics-enabled", "false", "--kafka-bootstrap", broker.bootstrap, "--log-shipping", "true",
             "--logs-topic", logs_topic, "--shutdown-grace-s", "5"],
            env=os.environ | {"OTEL_TRACES_EXPORTER": "none"}, stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"venus-{port}.log").open("wb"))
        for port in ports
    ]
    try:
        yield ports, logs_topic
        for process in processes:  # SIGTERM: each instance ships its last lines before it exits
            process.send_signal(signal.SIGTERM)
        for process in processes:
            assert process.wait(timeout=20) == 0
    finally:
        for process in processes:
            stop_process(process, timeout_s=5)


async def _serving(port: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        for _ in range(200):
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"venus on {port} never became SERVING")


async def _upload(port: int, category: str, trace_id: str, event_id: str) -> None:
    metadata = (("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01"), ("baggage", "venus.debug=1"))
    request = pb.UploadEventsRequest(meta=pb.BatchMeta(app_id="app", category=category),
                                     events=[pb.Event(id=event_id, payload=b'{"n": 1}')])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        response = await pb_grpc.IngestServiceStub(channel).UploadEvents(request, metadata=metadata, timeout=10)
    assert response.code == pb.RESULT_CODE_ALL_SUCCESS


async def _trace_logs(bootstrap: str, logs_topic: str, category: str) -> tuple[list[dict[str, object]],
                                                                              list[dict[str, object]]]:
    """Run `venus trace-logs` for TRACE; its log lines and its events."""
    run = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "venus_grpc", "trace-logs", TRACE, "--bootstrap", bootstrap,
        "--logs-topic", logs_topic, "--events-topic-prefix", f"to_analyzer__0.{category}", "--timeout-s", "30",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(run.communicate(), timeout=60)
    assert run.returncode in (0, 1), err.decode()
    records = [orjson.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    return [r for r in records if "headers" not in r], [r for r in records if "headers" in r]


async def test_trace_logs_finds_the_lines_of_both_instances_and_the_events(
    two_instances: tuple[list[int], str], broker: EmbeddedBroker, category: str
) -> None:
    """A trace served by two instances: trace-logs prints both instances' lines and its events, nothing else."""
    (first, second), logs_topic = two_instances
    await asyncio.gather(_serving(first), _serving(second))
    await _upload(first, category, TRACE, "on-first")
    await _upload(second, category, TRACE, "on-second")
    await _upload(first, category, OTHER_TRACE, "other")
    # Lines are shipped in the background within a fraction of a second: look until they are all there.
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        log_lines, events = await _trace_logs(broker.bootstrap, logs_topic, category)
        if len({line["pid"] for line in log_lines}) == 2 and len(events) == 2:
            break
        assert asyncio.get_running_loop().time() < deadline, f"found {log_lines} and {events}"
    assert all(line["trace_id"] == TRACE for line in log_lines)
    assert any(line["level"] == "debug" for line in log_lines), "colored requests log at DEBUG"
    assert sorted(e["value"]["event"]["id"] for e in events) == ["on-first", "on-second"]
