"""``venus serve --workers N``: workers share the ports (gRPC and HTTP), metrics add up, a dead worker is replaced."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_grpc.server.transport import free_port
from venus_grpc.tools.devbroker import EmbeddedBroker
from venus_grpc.tools.process import VenusProcess, running_venus

pytestmark = pytest.mark.timeout(90)


class _Served:
    """A ``venus serve --workers 2`` subprocess and what it logs."""

    def __init__(self, venus: VenusProcess, http_port: int) -> None:
        self.venus = venus
        self.http_port = http_port

    def lines(self, event: str) -> list[dict[str, object]]:
        found = []
        for raw in self.venus.log_path.read_text().splitlines():
            if raw.startswith("{") and (line := orjson.loads(raw)).get("event") == event:
                found.append(line)
        return found

    def serving_pids(self) -> list[int]:
        return [int(str(line["pid"])) for line in self.lines("serving")]

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        """Every sample of ``name`` on the shared /metrics, with its labels."""
        url = f"http://127.0.0.1:{self.venus.metrics_port}/metrics"
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        return [(sample.labels, sample.value) for family in text_string_to_metric_families(text)
                for sample in family.samples if sample.name == name]

    def uploads(self, kind: str) -> float:
        for labels, value in self.samples("venus_uploads_total"):
            if labels == {"type": kind, "transport": "grpc"}:
                return value
        raise AssertionError("venus_uploads_total missing from /metrics")


@pytest.fixture
def served(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[_Served]:
    """Two workers behind one port (and one HTTP port), DEBUG logs to a file; stopped by pid afterwards."""
    http_port = free_port()
    with running_venus(broker.bootstrap, log_dir=tmp_path, workers=2, metrics=True, log_level="DEBUG",
                       extra=("--http-enabled", "true", "--http-port", str(http_port))) as venus:
        running = _Served(venus, http_port)
        _wait_for(lambda: len(running.serving_pids()) == 2, "two workers serving", within_s=30)
        yield running
    # Workers orphaned by a killed supervisor are no longer its descendants: stop any still alive by its pid.
    for pid in running.serving_pids():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _wait_for(condition: object, what: str, *, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"no {what} within {within_s} s"
        time.sleep(0.1)


async def _send_over_separate_connections(port: int, category: str, connections: int) -> int:
    """One batch per connection (a private subchannel pool forces a new TCP connection each); OK events."""
    ok = 0
    for n in range(connections):
        options = (("grpc.use_local_subchannel_pool", 1),)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
            request = pb.UploadEventsRequest(meta=pb.BatchMeta(app_id="app", category=category),
                                             events=[pb.Event(id=f"c{n}", payload=b"{}")])
            response = await pb_grpc.IngestServiceStub(channel).UploadEvents(request, timeout=10)
            ok += sum(r.code == pb.EVENT_CODE_OK for r in response.results)
    return ok


async def test_both_workers_serve_and_metrics_add_up(served: _Served, category: str) -> None:
    """Connections spread over both workers, and /metrics counts every worker's uploads."""
    before = served.uploads("all_upload")
    assert await _send_over_separate_connections(served.venus.port, category, connections=24) == 24

    answered_by = {line["pid"] for line in served.lines("batch answered")}
    assert answered_by == set(served.serving_pids())
    assert served.uploads("all_upload") - before == 24


async def test_both_workers_serve_the_http_port(served: _Served, category: str) -> None:
    """HTTP connections to the one HTTP port are answered by both workers."""
    request = pb.UploadEventsRequest(meta=pb.BatchMeta(app_id="app", category=category),
                                     events=[pb.Event(id="h", payload=b"{}")]).SerializeToString()

    def one_per_connection() -> list[int]:
        statuses = []
        for _ in range(24):
            connection = http.client.HTTPConnection("127.0.0.1", served.http_port, timeout=10)
            connection.request("POST", "/venus.v1.IngestService/UploadEvents", body=request,
                               headers={"content-type": "application/proto"})
            statuses.append(connection.getresponse().status)
            connection.close()
        return statuses

    assert await asyncio.to_thread(one_per_connection) == [200] * 24
    answered_by = {line["pid"] for line in served.lines("batch answered") if line.get("transport") == "http"}
    assert answered_by == set(served.serving_pids())


async def test_a_killed_worker_is_replaced_and_shutdown_stays_clean(served: _Served, category: str) -> None:
    """SIGKILL of one worker: a new one takes its place, uploads go on, and SIGTERM still exits 0."""
    victim = served.serving_pids()[0]
    os.kill(victim, signal.SIGKILL)
    await asyncio.to_thread(_wait_for, lambda: len(served.serving_pids()) == 3, "replacement worker", within_s=30)
    assert victim not in served.serving_pids()[2:]
    assert await _send_over_separate_connections(served.venus.port, category, connections=8) == 8

    os.kill(served.venus.process.pid, signal.SIGTERM)
    assert await asyncio.to_thread(served.venus.process.wait, 15) == 0
    assert served.lines("workers stopped")[0]["clean"] is True


async def test_workers_stop_when_the_supervisor_is_killed(served: _Served) -> None:
    """SIGKILL of the supervisor leaves no worker serving on, unmanaged."""
    workers = served.serving_pids()
    os.kill(served.venus.process.pid, signal.SIGKILL)
    served.venus.process.wait(timeout=10)
    await asyncio.to_thread(_wait_for, lambda: not any(_alive(pid) for pid in workers), "orphan exit",
                            within_s=15)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie has exited; it only waits to be reaped
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_the_geoip_build_time_is_one_series_for_all_workers(served: _Served) -> None:
    """/metrics shows the GeoIP database's build time once (the bundled one's), not once per worker."""
    built = [value for _, value in served.samples("venus_geoip_build_timestamp_seconds")]
    assert built == [1530653216]  # 2018-07-03
