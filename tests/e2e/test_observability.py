"""Trace context and request ids reach Kafka and the logs, with tracing export on or off."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from typing import Any

import grpc
import orjson

from tests.conftest import StartVenus, venus_settings
from tests.kafka_helpers import TopicReader
from venus_grpc import start_venus
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_grpc.obs.logs import configure_logging
from venus_grpc.tools.devbroker import EmbeddedBroker

CALLER_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN_ID = "b7ad6b7169203331"


def _request(category: str) -> pb.UploadEventsRequest:
    return pb.UploadEventsRequest(meta=pb.BatchMeta(app_id="app", category=category),
                                  events=[pb.Event(id="only", payload=b'{"a": 1}')])


async def test_traceparent_is_propagated_with_span_export_switched_off(
    broker: EmbeddedBroker, category: str, topic_reader: TopicReader
) -> None:
    """With OTEL_TRACES_EXPORTER=none, messages still continue the caller's trace from a Venus span."""
    venus = await start_venus(venus_settings(broker.bootstrap, traces_exporter="none"))
    try:
        await asyncio.wait_for(venus.kafka_ready.wait(), timeout=20)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
            await pb_grpc.IngestServiceStub(channel).UploadEvents(
                _request(category), metadata=(("traceparent", f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01"),),
                timeout=10)
    finally:
        await venus.stop()
    [message] = await topic_reader.read_all(f"to_analyzer__0.{category}")
    _, trace_id, span_id, _ = message.headers["traceparent"].split("-")
    assert trace_id == CALLER_TRACE_ID
    assert span_id != CALLER_SPAN_ID and int(span_id, 16) != 0


async def test_every_log_line_of_a_request_carries_its_ids(
    json_logs: Callable[[], list[dict[str, Any]]], start: StartVenus, category: str
) -> None:
    """Lines written while serving a request name its trace, span and request ids."""
    venus = await start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        await pb_grpc.IngestServiceStub(channel).UploadEvents(
            _request(category),
            metadata=(("traceparent", f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01"), ("x-request-id", "req-logs")),
            timeout=10)
    lines = [line for line in json_logs() if line.get("request_id") == "req-logs"]
    assert any(line["event"] == "batch answered" for line in lines)
    for line in lines:
        assert line["trace_id"] == CALLER_TRACE_ID
        assert len(line["span_id"]) == 16
        assert {"timestamp", "level", "service", "version", "host", "pid"} <= line.keys()


async def test_a_request_colored_by_baggage_logs_debug_lines_and_others_do_not(
    json_logs: Callable[[], list[dict[str, Any]]], start: StartVenus, category: str
) -> None:
    """baggage venus.debug=1 turns on DEBUG lines for that request only; the log level stays INFO."""
    configure_logging(venus_settings("unused:1", log_level="INFO"), stream=(buffer := io.StringIO()))
    venus = await start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        stub = pb_grpc.IngestServiceStub(channel)
        await stub.UploadEvents(_request(category), metadata=(("x-request-id", "plain"),), timeout=10)
        await stub.UploadEvents(_request(category), metadata=(("baggage", "request_id=colored,venus.debug=1"),),
                                timeout=10)
    lines = [orjson.loads(line) for line in buffer.getvalue().splitlines()]
    debug_by_request = {(line.get("request_id"), line["level"]) for line in lines if line["level"] == "debug"}
    assert ("colored", "debug") in debug_by_request
    assert ("plain", "debug") not in debug_by_request


async def test_a_listed_app_is_colored_and_the_flag_travels_to_kafka(
    json_logs: Callable[[], list[dict[str, Any]]], start: StartVenus, category: str, topic_reader: TopicReader
) -> None:
    """An app on debug_app_ids logs at DEBUG and its events carry venus.debug=1 in their baggage header."""
    configure_logging(venus_settings("unused:1", log_level="INFO"), stream=(buffer := io.StringIO()))
    venus = await start(debug_app_ids=frozenset({"app"}))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        await pb_grpc.IngestServiceStub(channel).UploadEvents(
            _request(category), metadata=(("x-request-id", "listed"),), timeout=10)
    lines = [orjson.loads(line) for line in buffer.getvalue().splitlines()]
    assert any(line["level"] == "debug" and line.get("request_id") == "listed" for line in lines)
    [message] = await topic_reader.read_all(f"to_analyzer__0.{category}")
    assert "venus.debug=1" in message.headers["baggage"]
