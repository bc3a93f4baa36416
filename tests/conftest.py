"""Shared fixtures: one real Tansu broker per session, a real Venus on port 0 per test."""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from benchmarks.faults.stack import local_s3, persistent_broker
from tests.kafka_helpers import TopicReader
from venus_grpc import Settings, Venus, load_settings, start_venus
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_grpc.obs.logs import configure_logging
from venus_grpc.server.transport import free_port
from venus_grpc.tools.devbroker import EmbeddedBroker

StartVenus = Callable[..., Awaitable[Venus]]


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """A real Kafka-protocol broker on loopback for the whole session, stopped by its pid."""
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture
def category() -> str:
    """A category, and so a topic, that no other test writes to."""
    return "TEST_" + uuid.uuid4().hex[:12].upper()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """Finished spans of the Venus under test."""
    return InMemorySpanExporter()


def venus_settings(bootstrap: str, **overrides: Any) -> Settings:
    """Settings for a Venus on loopback with ephemeral ports (HTTP's too, when enabled) and no span export."""
    values: dict[str, Any] = {
        "host": "127.0.0.1", "port": 0, "metrics_host": "127.0.0.1", "metrics_port": 0, "http_port": 0,
        "kafka_bootstrap": bootstrap, "traces_exporter": "none", "kafka_connect_retry_s": 0.5,
    }
    return load_settings(environ={}, **(values | overrides))


@pytest.fixture
async def start(broker: EmbeddedBroker, spans: InMemorySpanExporter) -> AsyncIterator[StartVenus]:
    """Start Venus instances (settings overrides as keywords); each is stopped after the test."""
    started: list[Venus] = []

    async def _start(*, wait_ready: bool = True, **overrides: Any) -> Venus:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(spans))
        venus = await start_venus(venus_settings(broker.bootstrap, **overrides), tracer_provider=provider)
        started.append(venus)
        if wait_ready:
            await asyncio.wait_for(venus.kafka_ready.wait(), timeout=20)
        return venus

    yield _start
    for venus in started:
        await venus.stop()


@pytest.fixture
async def venus(start: StartVenus) -> Venus:
    """A running Venus connected to the session broker."""
    return await start()


@pytest.fixture
async def stub(venus: Venus) -> AsyncIterator[pb_grpc.IngestServiceStub]:
    """A client of ``venus`` over a real gRPC channel."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        yield pb_grpc.IngestServiceStub(channel)


@pytest.fixture
def json_logs() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Venus's real logging chain at DEBUG into a buffer; the previous setup is restored afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    configure_logging(venus_settings("unused:1", log_level="DEBUG"), stream=buffer)
    yield lambda: [orjson.loads(line) for line in buffer.getvalue().splitlines()]
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.fixture
async def own_broker() -> AsyncIterator[EmbeddedBroker]:
    """A broker of this test only, on a fixed port so it can be restarted there; not started yet.

    Request it before ``start`` so that Venus is stopped before its broker.
    """
    running = EmbeddedBroker(free_port())
    yield running
    await asyncio.to_thread(running.stop)


@pytest.fixture
async def own_persistent_broker(tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    """Like ``own_broker``, but keeping its data in a local S3 (moto), so a restart loses nothing it acknowledged."""
    with local_s3(tmp_path) as s3_env:
        running = persistent_broker(s3_env, free_port())
        yield running
        await asyncio.to_thread(running.stop)


@pytest.fixture
def topic_reader(broker: EmbeddedBroker) -> TopicReader:
    """Reads a topic to its end (proved by a sentinel per partition)."""
    return TopicReader(broker.bootstrap)
