"""Full-link logs: one trace id finds every line that every instance wrote for it, and its events."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import orjson
import pytest

from tests.process_helpers import run_command
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_grpc.tools.devbroker import EmbeddedBroker
from venus_grpc.tools.process import running_venus

pytestmark = pytest.mark.timeout(120)
TRACE = "5b8efff798038103d269b633813fc60c"
OTHER_TRACE = "6e0c63257de34c92bf9efcd03927272e"


@pytest.fixture
def two_instances(broker: EmbeddedBroker, category: str, tmp_path: Path) -> Iterator[tuple[list[int], str]]:
    """Two SERVING `venus serve` processes shipping logs to one logs topic; yields their ports and the topic."""
    logs_topic = f"logs_{category.lower()}"
    shipping = ("--log-shipping", "true", "--logs-topic", logs_topic)
    with running_venus(broker.bootstrap, log_dir=tmp_path, log_level="INFO", extra=shipping) as first, \
            running_venus(broker.bootstrap, log_dir=tmp_path, log_level="INFO", extra=shipping) as second:
        yield [first.port, second.port], logs_topic
        for venus in (first, second):  # SIGTERM: each instance ships its last lines before it exits
            assert venus.stop(timeout_s=20) == 0


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
    run = await run_command([sys.executable, "-m", "venus_grpc", "trace-logs", TRACE, "--bootstrap", bootstrap,
                             "--logs-topic", logs_topic, "--events-topic-prefix", f"to_analyzer__0.{category}",
                             "--timeout-s", "30"], timeout_s=60)
    assert run.returncode in (0, 1), run.stderr
    records = [orjson.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    return [r for r in records if "headers" not in r], [r for r in records if "headers" in r]


async def test_trace_logs_finds_the_lines_of_both_instances_and_the_events(
    two_instances: tuple[list[int], str], broker: EmbeddedBroker, category: str
) -> None:
    """A trace served by two instances: trace-logs prints both instances' lines and its events, nothing else."""
    (first, second), logs_topic = two_instances
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
