"""A valid batch goes all the way to Kafka: value, key, headers, topic and trace context."""

from __future__ import annotations

import asyncio
import ipaddress
import uuid

import grpc
import orjson
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import StartVenus, venus_settings
from tests.kafka_helpers import TopicReader
from venus_grpc import Venus, start_venus
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_grpc.tools.devbroker import EmbeddedBroker

CALLER_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"


def _batch(category: str, count: int = 3, **meta: str) -> pb.UploadEventsRequest:
    occurred = Timestamp(seconds=1_790_000_000, nanos=123_000_000)
    return pb.UploadEventsRequest(
        meta=pb.BatchMeta(app_id="com.example.shop", category=category, platform=pb.PLATFORM_IOS,
                          app_version="2.3.1", sdk_version="1.4.0", labels={"env": "prod"}, **meta),
        events=[
            pb.Event(id=f"e{i}", occurred_at=occurred, ip="81.2.69.142", attributes={"screen": "cart"},
                     payload=orjson.dumps({"duration_ms": 10 * i, "name": "checkout"}))
            for i in range(count)
        ],
    )


async def test_every_event_is_published_with_meta_geo_and_payload(
    stub: pb_grpc.IngestServiceStub, category: str, topic_reader: TopicReader
) -> None:
    """Each accepted event lands once in its category's topic, enriched, keyed by device."""
    request = _batch(category, device_id="device-42")
    response = await stub.UploadEvents(request, timeout=10)

    assert response.code == pb.RESULT_CODE_ALL_SUCCESS
    assert [r.id for r in response.results] == ["e0", "e1", "e2"]
    assert all(r.code == pb.EVENT_CODE_OK and r.backend_id and not r.retryable for r in response.results)
    messages = await topic_reader.read_all(f"to_analyzer__0.{category}")
    assert sorted(m.value["event"]["id"] for m in messages) == ["e0", "e1", "e2"]
    by_id = {m.value["event"]["id"]: m for m in messages}
    first = by_id["e1"]
    assert first.key == b"device-42"
    assert first.value["backend_id"] == response.results[1].backend_id
    dedup_namespace = uuid.UUID("6f1c3e52-8f0a-4d7e-9a55-2b7d3c1e9f40")  # as docs/contract.md gives it
    assert first.value["dedup_key"] == str(uuid.uuid5(dedup_namespace, '["com.example.shop","device-42","e1"]'))
    assert first.value["payload"] == {"duration_ms": 10, "name": "checkout"}
    assert first.value["meta"] == {
        "app_id": "com.example.shop", "category": category, "platform": "ios", "app_version": "2.3.1",
        "sdk_version": "1.4.0", "device_id": "device-42", "labels": {"env": "prod"},
    }
    assert first.value["event"]["occurred_at_ms"] == 1_790_000_000_123
    assert first.value["event"]["attributes"] == {"screen": "cart"}
    assert first.value["geo"] == {"country_code": "GB", "country": "United Kingdom", "region": "Brent",
                                  "city": "Willesden"}
    assert first.value["received_at_ms"] > 1_790_000_000_000
    assert len({m.partition for m in messages}) == 1, "one device's events share a partition"


async def test_traceparent_names_the_publish_span_of_the_callers_trace(
    stub: pb_grpc.IngestServiceStub, category: str, topic_reader: TopicReader, spans: InMemorySpanExporter
) -> None:
    """Downstream continues the caller's trace from Venus's publish span, not from the caller's span."""
    metadata = (("traceparent", f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01"), ("tracestate", "vendor=abc"))
    await stub.UploadEvents(_batch(category, count=2), metadata=metadata, timeout=10)

    messages = await topic_reader.read_all(f"to_analyzer__0.{category}")
    publish = [s for s in spans.get_finished_spans() if s.name == "venus.publish"]
    assert len(publish) == 1
    publish_span_id = format(publish[0].context.span_id, "016x")
    for message in messages:
        _version, trace_id, span_id, _flags = message.headers["traceparent"].split("-")
        assert trace_id == CALLER_TRACE_ID
        assert span_id == publish_span_id != CALLER_SPAN_ID
        assert message.headers["tracestate"] == "vendor=abc"


async def test_each_stage_is_a_child_span_of_the_server_span(
    stub: pb_grpc.IngestServiceStub, category: str, spans: InMemorySpanExporter
) -> None:
    """The trace shows the server span with validate, enrich and publish beneath it, each with the events
    still live when it began."""
    request = _batch(category, count=3)
    request.events[1].payload = b"[]"  # rejected by validation
    await stub.UploadEvents(request, timeout=10)

    finished = {s.name: s for s in spans.get_finished_spans()}
    server = finished["/venus.v1.IngestService/UploadEvents"]
    for stage in ("venus.validate", "venus.enrich", "venus.publish"):
        assert finished[stage].parent is not None
        assert finished[stage].parent.span_id == server.context.span_id
        assert finished[stage].context.trace_id == server.context.trace_id
    assert [finished[stage].attributes["venus.events.live"] for stage in ("venus.validate", "venus.enrich",
                                                                         "venus.publish")] == [3, 2, 2]


async def test_request_id_from_baggage_reaches_response_and_kafka(
    stub: pb_grpc.IngestServiceStub, category: str, topic_reader: TopicReader
) -> None:
    """A request_id in W3C baggage is the request's id everywhere."""
    call = stub.UploadEvents(_batch(category, count=1), metadata=(("baggage", "request_id=req-from-baggage"),),
                             timeout=10)
    response = await call
    assert response.request_id == "req-from-baggage"
    assert ("x-request-id", "req-from-baggage") in tuple(await call.trailing_metadata())
    [message] = await topic_reader.read_all(f"to_analyzer__0.{category}")
    assert "request_id=req-from-baggage" in message.headers["baggage"]


async def test_request_id_from_x_request_id_header(
    stub: pb_grpc.IngestServiceStub, category: str, topic_reader: TopicReader
) -> None:
    """Without baggage, the x-request-id metadata names the request."""
    response = await stub.UploadEvents(_batch(category, count=1), metadata=(("x-request-id", "req-42"),), timeout=10)
    assert response.request_id == "req-42"
    [message] = await topic_reader.read_all(f"to_analyzer__0.{category}")
    assert "request_id=req-42" in message.headers["baggage"]


async def test_request_id_is_generated_when_the_caller_sends_none(
    stub: pb_grpc.IngestServiceStub, category: str
) -> None:
    """Every request gets an id, different each time."""
    first = await stub.UploadEvents(_batch(category, count=1), timeout=10)
    second = await stub.UploadEvents(_batch(category, count=1), timeout=10)
    assert first.request_id and second.request_id and first.request_id != second.request_id


async def test_private_ip_is_published_with_empty_geo(
    stub: pb_grpc.IngestServiceStub, category: str, topic_reader: TopicReader
) -> None:
    """A private address is no error: the event is published without a location."""
    request = _batch(category, count=1)
    request.events[0].ip = "10.1.2.3"
    response = await stub.UploadEvents(request, timeout=10)
    assert response.code == pb.RESULT_CODE_ALL_SUCCESS
    [message] = await topic_reader.read_all(f"to_analyzer__0.{category}")
    assert message.value["event"]["ip"] == "10.1.2.3"
    assert message.value["geo"] == {"country_code": "", "country": "", "region": "", "city": ""}


async def test_peer_address_is_used_when_the_event_has_no_ip(
    stub: pb_grpc.IngestServiceStub, category: str, topic_reader: TopicReader
) -> None:
    """Without an ip in the event, the caller's own address is the event's ip."""
    request = _batch(category, count=1)
    request.events[0].ip = ""
    await stub.UploadEvents(request, timeout=10)
    [message] = await topic_reader.read_all(f"to_analyzer__0.{category}")
    assert message.value["event"]["ip"] == "127.0.0.1"


async def test_forwarded_for_counts_only_from_a_trusted_proxy(
    start: StartVenus, category: str, topic_reader: TopicReader
) -> None:
    """x-forwarded-for names the client when the peer is a trusted proxy, and is ignored otherwise."""
    trusted = await start(trusted_proxies=(ipaddress.ip_network("127.0.0.0/8"),))
    untrusted = await start()
    for venus, event_id in ((trusted, "via-trusted"), (untrusted, "via-untrusted")):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
            request = _batch(category, count=1)
            request.events[0].ip, request.events[0].id = "", event_id
            await pb_grpc.IngestServiceStub(channel).UploadEvents(
                request, metadata=(("x-forwarded-for", "81.2.69.142, 127.0.0.5"),), timeout=10)
    ips = {m.value["event"]["id"]: m.value["event"]["ip"] for m in await topic_reader.read_all(
        f"to_analyzer__0.{category}")}
    assert ips == {"via-trusted": "81.2.69.142", "via-untrusted": "127.0.0.1"}


async def test_venus_reports_serving_once_connected(venus: Venus, spans: InMemorySpanExporter) -> None:
    """Health says SERVING for the service once the producer is connected; probes make no spans."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service="venus.v1.IngestService"), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert [s.name for s in spans.get_finished_spans()] == [], "a probe every few seconds is not worth a trace"


async def test_a_refused_request_still_names_its_request_id(stub: pb_grpc.IngestServiceStub) -> None:
    """An error carries x-request-id next to its google.rpc details, so a client can quote it."""
    from grpc_status import rpc_status

    request = pb.UploadEventsRequest(events=[pb.Event(id="e", payload=b"{}")])
    try:
        await stub.UploadEvents(request, metadata=(("x-request-id", "req-refused"),), timeout=10)
    except grpc.aio.AioRpcError as err:
        assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert ("x-request-id", "req-refused") in tuple(err.trailing_metadata())
        status = rpc_status.from_call(err)
        assert status is not None and status.details
    else:
        raise AssertionError("a batch without meta was accepted")


@pytest.mark.parametrize("flags", ["01", "00"])
async def test_with_no_exporter_traceparent_still_continues_the_callers_trace(
    broker: EmbeddedBroker, category: str, topic_reader: TopicReader, flags: str
) -> None:
    """With traces_exporter=none spans are not recorded, yet Kafka's traceparent continues the caller's trace."""
    venus = await start_venus(venus_settings(broker.bootstrap))  # its own provider: spans go nowhere
    try:
        await asyncio.wait_for(venus.kafka_ready.wait(), timeout=20)
        metadata = (("traceparent", f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-{flags}"), ("tracestate", "vendor=abc"))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
            stub = pb_grpc.IngestServiceStub(channel)  # type: ignore[no-untyped-call]
            await stub.UploadEvents(_batch(category, count=2), metadata=metadata, timeout=10)
    finally:
        await venus.stop()

    messages = await topic_reader.read_all(f"to_analyzer__0.{category}")
    parents = {m.headers["traceparent"] for m in messages}
    assert len(messages) == 2 and len(parents) == 1, "one publish span for the batch"
    _version, trace_id, span_id, sampled = parents.pop().split("-")
    assert (trace_id, sampled) == (CALLER_TRACE_ID, flags)
    assert span_id not in (CALLER_SPAN_ID, "0" * 16)
    assert {m.headers["tracestate"] for m in messages} == {"vendor=abc"}
