"""``venus canary`` against a live Venus and broker: events go through, come back, and show in its metrics."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import tracemalloc
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import trustme
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

import venus_grpc.tools
from tests.conftest import StartVenus
from tests.kafka_helpers import TopicReader
from venus_grpc import Venus
from venus_grpc.ingest.keys import key_entry, new_key
from venus_grpc.obs import metrics
from venus_grpc.server.transport import free_port
from venus_grpc.tools.canary import Canary, CanaryConfig
from venus_grpc.tools.devbroker import EmbeddedBroker
from venus_grpc.tools.tls import Endpoint

# Short enough that a lost event is counted within a test run; long enough that a slow read-back on a
# busy machine is not taken for a loss (measured read-back on loopback: well under 1 s).
MISSING_AFTER_S = 3.0
INTERVAL_S = 0.1
Samples = dict[str, float]
TOOLS_DIR = Path(venus_grpc.tools.__file__).parent  # the canary and its ledger


def _scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
        text = reply.read().decode()
    return {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples
            if not s.labels or s.labels.get("outcome") == "ok"}


async def _canary_samples(target: str, bootstrap: str, category: str, until: Callable[[Samples], bool],
                          *extra: str) -> Samples:
    """Run ``venus canary`` until its /metrics satisfy ``until``; that scrape."""
    port = free_port()
    argv = [sys.executable, "-m", "venus_grpc", "canary", "--target", target, "--bootstrap", bootstrap,
            "--category", category, "--interval-s", str(INTERVAL_S), "--missing-after-s", str(MISSING_AFTER_S),
            "--metrics-host", "127.0.0.1", "--metrics-port", str(port), "--duration-s", "60", *extra]
    process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL,
                                                   stderr=asyncio.subprocess.DEVNULL)
    try:
        samples: Samples = {}
        async with asyncio.timeout(40):
            while not until(samples):
                await asyncio.sleep(0.2)  # polling another process's /metrics
                try:
                    samples = await asyncio.to_thread(_scrape, port)
                except OSError:
                    assert process.returncode is None, f"venus canary exited with {process.returncode}"
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), timeout=10)
    return samples


def _ran_past_missing_after(samples: Samples) -> bool:
    """True once the canary has sent for twice ``MISSING_AFTER_S``: its first half would have been counted lost."""
    return samples.get("venus_canary_events_total", 0) * INTERVAL_S >= 2 * MISSING_AFTER_S


def _kafka_unavailable_refusals() -> float:
    """Batches the in-process Venus refused because it could not reach Kafka."""
    labels = {"status": "UNAVAILABLE", "reason": "kafka_unavailable", "transport": "grpc"}
    return REGISTRY.get_sample_value("venus_batch_rejections_total", labels) or 0.0


def _canary_ok_events() -> float:
    """Events acknowledged to in-process canaries (the registry is the process's)."""
    return metrics.CANARY_REGISTRY.get_sample_value("venus_canary_events_total", {"outcome": "ok"}) or 0.0


async def _until_ok_events(count: float, runner: asyncio.Task[None]) -> None:
    async with asyncio.timeout(120):
        while _canary_ok_events() < count:
            assert not runner.done(), runner
            await asyncio.sleep(0.05)  # the canary runs in this loop; its counter is the condition


@pytest.fixture
async def other_broker(category: str) -> AsyncIterator[EmbeddedBroker]:
    """A second broker, holding the canary's topic, to which no Venus publishes."""
    with EmbeddedBroker() as other:
        admin = AIOKafkaAdminClient(bootstrap_servers=other.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(f"to_analyzer__0.{category}", num_partitions=4, replication_factor=1)])
        finally:
            await admin.close()
        yield other


async def test_canary_exports_latency_and_no_missing_events(
    venus: Venus, broker: EmbeddedBroker, category: str, topic_reader: TopicReader
) -> None:
    """Run well past --missing-after-s, every canary event is read back: the histogram fills, nothing is missing."""
    samples = await _canary_samples(f"127.0.0.1:{venus.port}", broker.bootstrap, category, _ran_past_missing_after)
    assert samples["venus_canary_visible_seconds_count"] >= 10
    assert samples["venus_canary_acknowledged_missing_total"] == 0
    assert samples["venus_canary_last_success_timestamp_seconds"] > 0
    messages = await topic_reader.read_all(f"to_analyzer__0.{category}")
    assert messages and all(m.value["event"]["attributes"] == {"venus.canary": "1"} for m in messages)


async def test_canary_counts_acknowledged_events_it_cannot_read_back(
    venus: Venus, other_broker: EmbeddedBroker, category: str
) -> None:
    """Reading back from a cluster Venus does not publish to, the canary's missing counter rises within the run."""
    samples = await _canary_samples(f"127.0.0.1:{venus.port}", other_broker.bootstrap, category,
                                    lambda s: s.get("venus_canary_acknowledged_missing_total", 0) > 0)
    assert samples["venus_canary_events_total"] > 0
    assert samples.get("venus_canary_visible_seconds_count", 0) == 0


async def test_canary_started_before_venus_can_publish_waits_for_it(
    start: StartVenus, own_broker: EmbeddedBroker, category: str
) -> None:
    """A canary whose first events are refused (Kafka not up yet) keeps trying, then reports events read back."""
    venus = await start(kafka_bootstrap=own_broker.bootstrap, wait_ready=False)
    refused_before = _kafka_unavailable_refusals()
    waiting = asyncio.create_task(_canary_samples(f"127.0.0.1:{venus.port}", own_broker.bootstrap, category,
                                                  lambda s: s.get("venus_canary_visible_seconds_count", 0) >= 3))
    async with asyncio.timeout(30):
        while _kafka_unavailable_refusals() < refused_before + 2:  # the canary was refused, and tried again
            assert not waiting.done(), waiting
            await asyncio.sleep(0.05)
    await asyncio.to_thread(own_broker.start)
    samples = await waiting
    assert samples["venus_canary_acknowledged_missing_total"] == 0


async def test_canary_reaches_a_venus_behind_tls_and_api_keys(
    start: StartVenus, broker: EmbeddedBroker, category: str, tmp_path: Path
) -> None:
    """With the CA and a key file (a mounted Secret in Kubernetes) the canary works on a secured deployment."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    for name, blob in (("ca.pem", ca.cert_pem), ("tls.key", leaf.private_key_pem),
                       ("tls.crt", leaf.cert_chain_pems[0])):
        blob.write_to_path(str(tmp_path / name))
    key = new_key()
    (tmp_path / "keys.toml").write_text(key_entry("canary", key, ["venus-canary"], [category]))
    (tmp_path / "canary.key").write_text(key + "\n")
    venus = await start(tls_cert_path=str(tmp_path / "tls.crt"), tls_key_path=str(tmp_path / "tls.key"),
                        api_keys_path=str(tmp_path / "keys.toml"))
    samples = await _canary_samples(f"127.0.0.1:{venus.port}", broker.bootstrap, category,
                                    lambda s: s.get("venus_canary_visible_seconds_count", 0) >= 10,
                                    "--ca-path", str(tmp_path / "ca.pem"),
                                    "--api-key-path", str(tmp_path / "canary.key"))
    assert samples["venus_canary_events_total"] >= 10
    assert samples["venus_canary_acknowledged_missing_total"] == 0


async def test_canary_memory_stays_flat_over_thousands_of_events(
    start: StartVenus, broker: EmbeddedBroker, category: str
) -> None:
    """Over 2000 events sent as fast as Venus answers, the canary holds under 64 KiB more of its own memory.

    tracemalloc counts what the canary and its ledger allocated and still hold: an event read back, or counted
    missing, leaves nothing behind. Keeping a record per event held about 500 bytes each (1 MB here); events
    waiting to be read back are at most missing_after_s (1 s) worth, well under the bound.
    """
    venus = await start(kafka_linger_ms=0)  # one event per call: no batching delay to wait for
    config = CanaryConfig(venus=Endpoint(f"127.0.0.1:{venus.port}"), bootstrap=broker.bootstrap, category=category,
                          interval_s=0, missing_after_s=1)
    runner = asyncio.create_task(Canary(config).run())
    try:
        await _until_ok_events(_canary_ok_events() + 300, runner)  # warm: channel, consumer, caches
        tracemalloc.start()
        await _until_ok_events(_canary_ok_events() + 2000, runner)
        gc.collect()  # what is held, not garbage waiting for the collector
        held = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, f"{TOOLS_DIR}/*")])
    finally:
        tracemalloc.stop()
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    top = held.statistics("lineno")
    assert sum(stat.size for stat in top) < 64 * 1024, "\n".join(map(str, top[:5]))
