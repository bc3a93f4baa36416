"""The processes a fault scenario runs: a Tansu broker (in memory or on a local S3), and ``venus serve``.

Every process is started here and stopped by its own pid; everything listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.meter import PeakRss, ProcessTree
from venus_grpc.server.transport import free_port
from venus_grpc.tools.devbroker import EmbeddedBroker
from venus_grpc.tools.process import INGEST_SERVICE, OwnedProcess, VenusProcess

_S3_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}


class Venus:
    """``venus serve`` (a ``VenusProcess`` with /metrics) with its peak RSS sampled while it runs."""

    def __init__(self, bootstrap: str, log_dir: Path, *, workers: int = 1, grace_s: float = 5.0,
                 extra: tuple[str, ...] = ()) -> None:
        self.grace_s = grace_s
        self.managed = VenusProcess(bootstrap, log_dir=log_dir, workers=workers, metrics=True, shutdown_grace_s=grace_s,
                                    extra=("--kafka-connect-retry-s", "0.5", *extra))
        self.port, self.target = self.managed.port, self.managed.target
        self.rss = PeakRss({"venus": ProcessTree(self.managed.pid)})
        self.rss.start()

    @property
    def pid(self) -> int:
        """The process id of ``venus serve`` (the supervisor when there are workers)."""
        return self.managed.pid

    def workers(self) -> list[psutil.Process]:
        """The worker processes (children of the supervisor) alive now, not multiprocessing's resource tracker."""
        try:
            children = psutil.Process(self.pid).children()
            return [p for p in children if p.is_running() and "spawn_main" in " ".join(p.cmdline())]
        except psutil.Error:
            return []

    async def wait_serving(self, timeout_s: float = 30.0) -> None:
        """Wait until health says SERVING (fails fast if the process exits)."""
        await asyncio.to_thread(self.managed.wait_serving, within_s=timeout_s)

    async def health(self) -> str:
        """The current health of the ingest service, or the status that prevented asking."""
        async with grpc.aio.insecure_channel(self.target) as channel:
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=INGEST_SERVICE), timeout=1)
            except grpc.aio.AioRpcError as err:
                return str(err.code().name)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    def gauge(self, name: str) -> float:
        """A gauge from Venus's /metrics (summed over its samples), read now."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.managed.metrics_port}/metrics", timeout=2) as reply:
            text = reply.read().decode()
        return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)

    def peak_rss_bytes(self) -> int:
        """The highest RSS of the process tree seen so far."""
        return self.rss.peaks()["venus"]

    def stop(self) -> int | None:
        """SIGTERM (SIGKILL after the grace and a margin); the exit code."""
        self.rss.stop()
        return self.managed.stop(timeout_s=self.grace_s + 5)


@contextlib.contextmanager
def local_s3(log_dir: Path) -> Iterator[dict[str, str]]:
    """A local S3 (moto) with a ``tansu`` bucket; yields the environment Tansu needs to use it."""
    import boto3

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = OwnedProcess("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                     log_dir=log_dir)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                                  aws_secret_access_key="test", region_name="us-east-1")
                s3.create_bucket(Bucket="tansu")
                break
            except Exception:
                if time.monotonic() > deadline or server.process.poll() is not None:
                    raise RuntimeError(f"moto did not start:\n{server.log_tail()}") from None
                time.sleep(0.2)
        yield _S3_ENV | {"AWS_ENDPOINT": endpoint}
    finally:
        server.stop(timeout_s=5)


def persistent_broker(s3_env: dict[str, str], port: int = 0) -> EmbeddedBroker:
    """A Tansu broker that keeps its data in the local S3 bucket, so it survives a restart."""
    return EmbeddedBroker(port, storage_engine="s3://tansu/", extra_env=s3_env)
