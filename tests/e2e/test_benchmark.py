"""The throughput benchmark runs end to end: the command an operator uses, kept working by CI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from benchmarks.meter import ProcessTree
from benchmarks.procs import REPO_ROOT
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc
from venus_grpc.server.transport import free_port
from venus_grpc.tools.process import OwnedProcess, wait_serving

pytestmark = pytest.mark.timeout(300)


def test_a_tiny_benchmark_measures_venus_its_ceilings_streaming_http_and_overload(tmp_path: Path) -> None:
    """One small point: Venus, both ceilings, StreamEvents, the HTTP port beside gRPC and the overload run beside
    its bare-server baseline; every OK event in Kafka."""
    report = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--workers", "1", "--batch-sizes", "10", "--concurrency", "4",
         "--duration-s", "1", "--warmup-s", "0.5", "--cost-rounds", "1", "--overload", "--json", str(report)],
        capture_output=True, text=True, timeout=280,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "StreamEvents at batch 10" in run.stdout
    document = json.loads(report.read_text())
    [point] = document["points"]
    assert point["venus"]["events_per_s"] > 0
    assert point["venus"]["verified"]["ok"] is True
    assert point["transport_ceiling"]["events_per_s"] > 0 and point["broker_ceiling"]["events_per_s"] > 0
    assert point["ratio_to_ceiling"] > 0
    assert document["stream"]["verified"]["ok"] is True
    assert [pair["http"]["batch"] for pair in document["http"]] == [100, 1]
    assert all(pair["http"]["verified"]["ok"] and pair["grpc"]["events_per_s"] > 0 for pair in document["http"])
    assert "x gRPC" in run.stdout and "CPU µs/call" in run.stdout
    costs = {cost["batch"]: cost for cost in document["cost"]}
    assert set(costs) == {1, 100}
    assert all(cost["bare_cpu_us_per_rpc"] and cost["producer_cpu_us_per_rpc"] for cost in costs.values())
    assert "bare server + the producer alone" in run.stdout, "each CPU ratio is shown beside the floor it has"
    overload = document["overload"]
    assert overload["goodput_events_per_s"] > 0 and overload["run"]["verified"]["ok"] is True
    baseline = overload["bare_server_baseline"]
    assert baseline["work_cpu_us_per_call"] > 0 and baseline["refuse_past"] > 0
    assert baseline["capacity_events_per_s"] > 0 and baseline["goodput_events_per_s"] > 0
    assert "bare server with Venus's CPU per call, same overload: " in run.stdout, "overload verdicts show the baseline"


def test_the_overload_baseline_server_works_per_call_and_refuses_past_its_limit(tmp_path: Path) -> None:
    """The baseline burns its CPU per call and refuses, RESOURCE_EXHAUSTED, while its limit is in flight."""
    port = free_port()
    server = OwnedProcess("empty_server", [sys.executable, "-m", "benchmarks.empty_server", "--port", str(port),
                                           "--work-us", "1000000", "--refuse-past", "1"],
                          log_dir=tmp_path, cwd=REPO_ROOT)
    request = pb.UploadEventsRequest(events=[pb.Event(id="e1")])
    try:
        wait_serving(f"127.0.0.1:{port}", owner=server)
        cpu_before = ProcessTree(server.pid).cpu_seconds()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            upload = ingest_pb2_grpc.IngestServiceStub(channel).UploadEvents
            calls = [upload.future(request, timeout=60) for _ in range(2)]
            codes = sorted(call.code().name for call in calls)
        assert codes == ["OK", "RESOURCE_EXHAUSTED"], "one call works; the other, sent meanwhile, is refused"
        assert ProcessTree(server.pid).cpu_seconds() - cpu_before >= 1.0, "the working call burned its second of CPU"
    finally:
        server.stop(timeout_s=10)


def test_the_security_benchmark_measures_every_mode_beside_plaintext() -> None:
    """Plaintext, TLS, mTLS and API keys each get served (no errors) and a CPU-per-RPC figure."""
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.security", "--rounds", "1", "--batch-sizes", "10", "--concurrency", "4",
         "--duration-s", "1", "--warmup-s", "0.5"],
        capture_output=True, text=True, timeout=280,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    rows = {line.split()[1]: line.split() for line in run.stdout.splitlines() if line.strip().startswith("10 ")}
    assert set(rows) == {"plaintext", "api-key", "tls", "tls+api-key", "mtls+api-key"}
    assert all(float(row[2].replace(",", "")) > 0 and row[-1] == "0" for row in rows.values())


def test_the_client_benchmark_compares_the_stream_batching_and_one_by_one() -> None:
    """Every way of sending gets a figure, the stream's ratios are printed, and every event is in Kafka once."""
    run = subprocess.run([sys.executable, "-m", "benchmarks.client", "--events", "60", "--rounds", "1"],
                         capture_output=True, text=True, timeout=280)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "in Kafka: ✓" in run.stdout
    assert "emit (batched)" in run.stdout and "upload 1 by 1" in run.stdout
    for batch in (1, 10):
        assert f"emit over one stream vs one unary call per batch, batches of {batch}: " in run.stdout
