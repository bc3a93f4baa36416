"""One live Venus for many generated inputs: a ``venus serve`` subprocess, its memory, and a ledger.

The server runs as its own process so that a crash is seen (the process is gone) and its resident
memory can be read; hypothesis drives it through a synchronous channel, one input at a time.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.kafka_helpers import TopicReader
from venus_grpc.server.transport import free_port
from venus_grpc.tools.devbroker import stop_process

# Smaller limits than the defaults, so that generated inputs reach every edge cheaply; a small GeoIP
# cache so that random addresses filling it do not pass for a leak (see RSS_TOLERANCE_BYTES).
LIMITS = {"max_events_per_batch": 50, "max_event_payload_bytes": 4096, "max_event_id_chars": 64,
          "max_message_bytes": 1 << 20, "geoip_cache_size": 4096, "max_labels": 16, "max_label_key_chars": 64,
          "max_label_value_chars": 256, "max_labels_bytes": 2048}
SERVICE = "venus.v1.IngestService"


@dataclass
class Ledger:
    """What Venus answered OK, per category, to be compared with what Kafka holds.

    Keyed by the server-chosen backend_id, so the comparison is exact even when generated event ids
    repeat across examples: any message Kafka holds that no OK answer named was a rejected event.
    Generated batches use one category, but mutated bytes can turn it into another valid one.
    """

    category: str = field(default_factory=lambda: "FUZZ_" + uuid.uuid4().hex[:12].upper())
    acknowledged: dict[str, dict[str, str]] = field(default_factory=dict)  # category -> backend_id -> event id

    def acknowledge(self, category: str, backend_id: str, event_id: str) -> None:
        """Note an event answered OK; a backend id answered twice is a defect."""
        answered = self.acknowledged.setdefault(category, {})
        assert backend_id not in answered, f"backend_id {backend_id} answered twice"
        answered[backend_id] = event_id


class LiveVenus:
    """``venus serve`` (one process) on loopback against ``bootstrap``; stopped by its pid."""

    def __init__(self, bootstrap: str, limits: Mapping[str, int] = LIMITS) -> None:
        self.bootstrap = bootstrap
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.ledger = Ledger()
        self._log = tempfile.NamedTemporaryFile(prefix="venus-fuzz-", suffix=".log", delete=False)  # noqa: SIM115
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in limits.items()]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "venus_grpc", "serve", "--workers", "1", "--host", "127.0.0.1",
             "--port", str(self.port), "--metrics-enabled", "false", "--kafka-bootstrap", bootstrap,
             "--log-level", "WARNING", *flags],
            env={k: v for k, v in os.environ.items() if not k.startswith("VENUS_")} | {"OTEL_TRACES_EXPORTER": "none"},
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )
        self.channel = grpc.insecure_channel(self.target)

    def wait_serving(self, *, timeout_s: float = 30.0) -> None:
        """Return once health says SERVING; fail with the server's log if it does not."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.serving():
                return
            time.sleep(0.1)
        raise AssertionError(f"Venus was not SERVING within {timeout_s} s:\n{self.log_tail()}")

    def serving(self) -> bool:
        """True when the process is alive and health says SERVING for the ingest service."""
        if self.process.poll() is not None:
            return False
        try:
            reply = health_pb2_grpc.HealthStub(self.channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE), timeout=2)
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def rss_bytes(self) -> int:
        """Resident memory of the server process now."""
        return self._status_kib("VmRSS") * 1024

    def peak_rss_bytes(self) -> int:
        """The most resident memory the server process had since the last :meth:`reset_peak_rss`."""
        return self._status_kib("VmHWM") * 1024

    def reset_peak_rss(self) -> None:
        """Start measuring the peak afresh (Linux: writing 5 to clear_refs resets VmHWM to the current RSS)."""
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")

    def _status_kib(self, field_name: str) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field_name}:"):
                return int(line.split()[1])
        raise AssertionError(f"no {field_name} for the Venus process")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the server wrote."""
        return "\n".join(Path(self._log.name).read_text(errors="replace").splitlines()[-lines:])

    def published(self, category: str) -> dict[str, str]:
        """backend_id -> event id of every message in ``category``'s topic."""
        topic = f"to_analyzer__0.{category}"
        messages = asyncio.run(TopicReader(self.bootstrap).read_all(topic, timeout_s=60))
        return {m.value["backend_id"]: m.value["event"]["id"] for m in messages}

    def stop(self) -> None:
        """Close the channel and stop the server by its pid."""
        self.channel.close()
        stop_process(self.process, timeout_s=15)
        self._log.close()
        os.unlink(self._log.name)


# Resident memory may stay above the warmed-up baseline by this much after a run. Two parts:
# - drift: allocators keep freed arenas and gRPC keeps its buffer pools; a few MiB is normal (24 MiB);
# - bounded caches: the address cache of ingest/pipeline/validate.py holds up to 65,536 addresses, measured at
#   24 MiB when full of random IPv6 ones (the GeoIP cache is kept at 4,096 entries here, see LIMITS).
# A leak shows once it outgrows both: about 1.2 KiB per input over the long run's tens of thousands of
# inputs per module, about 400 KiB per input (a leaked request) over CI's hundred or so.
RSS_TOLERANCE_BYTES = (24 + 24) << 20


def check_aftermath(live: LiveVenus, baseline_rss: int) -> None:
    """After a run: Venus alive and SERVING, Kafka holding exactly what was answered OK, memory back."""
    assert live.process.poll() is None, f"Venus exited with {live.process.returncode}:\n{live.log_tail()}"
    live.wait_serving(timeout_s=10)
    for category in {live.ledger.category, *live.ledger.acknowledged}:
        answered = live.ledger.acknowledged.get(category, {})
        published = live.published(category)
        lost = {b: i for b, i in answered.items() if published.get(b) != i}
        unexpected = {b: i for b, i in published.items() if b not in answered}
        assert not lost, f"{len(lost)} events answered OK are not in {category}: {list(lost.items())[:5]}"
        assert not unexpected, (f"{len(unexpected)} events not answered OK are in {category}: "
                                f"{list(unexpected.items())[:5]}")
    rss = live.rss_bytes()
    assert rss <= baseline_rss + RSS_TOLERANCE_BYTES, (
        f"RSS {rss >> 20} MiB after the run, {baseline_rss >> 20} MiB before: more than "
        f"{RSS_TOLERANCE_BYTES >> 20} MiB of growth")
