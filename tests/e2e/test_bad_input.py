"""Bad input is refused clearly: request problems fail the RPC, event problems are that event's result."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from typing import Any

import grpc
import orjson
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import StartVenus
from tests.kafka_helpers import TopicReader
from venus_grpc import Venus
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc

METHOD = "/venus.v1.IngestService/UploadEvents"
INVALID = grpc.StatusCode.INVALID_ARGUMENT


class SpanWatch(InMemorySpanExporter):
    """An in-memory exporter that also lets a test await the end of a span by name."""

    def __init__(self) -> None:
        super().__init__()
        self._ended: dict[str, asyncio.Event] = {}

    def ended(self, name: str) -> asyncio.Event:
        return self._ended.setdefault(name, asyncio.Event())

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            self.ended(span.name).set()
        return super().export(spans)


@pytest.fixture
def spans() -> SpanWatch:
    """Finished spans of the Venus under test, awaitable by name (overrides the conftest fixture)."""
    return SpanWatch()


def _topic(category: str) -> str:
    return f"to_analyzer__0.{category}"


def _event(event_id: str, **fields: Any) -> pb.Event:
    values: dict[str, Any] = {"id": event_id, "ip": "81.2.69.142", "payload": orjson.dumps({"name": "checkout"})}
    return pb.Event(**(values | fields))


def _request(category: str, events: Sequence[pb.Event] | None = None, **meta: Any) -> pb.UploadEventsRequest:
    values: dict[str, Any] = {"app_id": "com.example.shop", "category": category, "platform": pb.PLATFORM_IOS}
    return pb.UploadEventsRequest(meta=pb.BatchMeta(**(values | meta)),
                                  events=[_event("e0")] if events is None else events)


async def _rejected(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def _details(err: grpc.aio.AioRpcError) -> list[error_details_pb2.BadRequest | error_details_pb2.RetryInfo]:
    status = rpc_status.from_call(err)
    assert status is not None, "the status carries google.rpc details"
    found: list[error_details_pb2.BadRequest | error_details_pb2.RetryInfo] = []
    for packed in status.details:
        for kind in (error_details_pb2.BadRequest, error_details_pb2.RetryInfo):
            if packed.Is(kind.DESCRIPTOR):
                detail = kind()
                packed.Unpack(detail)
                found.append(detail)
    return found


def _violations(err: grpc.aio.AioRpcError) -> dict[str, str]:
    return {v.field: v.description for d in _details(err) if isinstance(d, error_details_pb2.BadRequest)
            for v in d.field_violations}


META_CASES = [
    pytest.param(None, {"meta"}, "meta is missing", id="meta-missing"),
    pytest.param({"app_id": ""}, {"meta.app_id"}, "app_id is required", id="app-id-empty"),
    pytest.param({"app_id": "com example/shop"}, {"meta.app_id"}, "letters, digits", id="app-id-bad-chars"),
    pytest.param({"category": ""}, {"meta.category"}, "category is required", id="category-empty"),
    pytest.param({"category": "PERF CRASH!"}, {"meta.category"}, "letters, digits", id="category-bad-chars"),
    pytest.param({"platform": 99}, {"meta.platform"}, "platform 99 is not a known", id="platform-unknown"),
    pytest.param({"app_id": "", "platform": 99}, {"meta.app_id", "meta.platform"}, "invalid batch meta",
                 id="two-problems"),
]


@pytest.mark.parametrize(("meta", "fields", "text"), META_CASES)
async def test_bad_meta_is_invalid_argument_naming_the_field(
    stub: pb_grpc.IngestServiceStub, category: str, topic_reader: TopicReader,
    meta: dict[str, Any] | None, fields: set[str], text: str,
) -> None:
    """Missing or malformed meta fails the batch with a BadRequest naming each bad meta field."""
    request = _request(category)
    if meta is None:
        request.ClearField("meta")
    for name, value in (meta or {}).items():
        setattr(request.meta, name, value)
    err = await _rejected(stub.UploadEvents(request, timeout=10))
    assert err.code() is INVALID
    assert text in (err.details() or "")
    violations = _violations(err)
    assert set(violations) == fields
    assert all(violations.values()), "every violation says what is wrong"
    assert await topic_reader.read_all(_topic(category)) == []


LABEL_CASES = [
    pytest.param({f"k{i}": "v" for i in range(65)}, {"meta.labels"}, "65 labels; the limit is 64", id="too-many"),
    pytest.param({"k" * 129: "v"}, {f"meta.labels[{'k' * 40 + '...'!r}]"}, "key is 129 characters", id="long-key"),
    pytest.param({"build": "v" * 1025}, {"meta.labels['build']"}, "value is 1025 characters", id="long-value"),
    pytest.param({f"k{i}": "v" * 1000 for i in range(5)}, {"meta.labels"}, "the limit is 4096 bytes in all",
                 id="too-many-bytes"),
]


@pytest.mark.parametrize(("labels", "fields", "text"), LABEL_CASES)
async def test_labels_over_a_limit_are_invalid_argument_naming_the_label(
    stub: pb_grpc.IngestServiceStub, category: str, topic_reader: TopicReader,
    labels: dict[str, str], fields: set[str], text: str,
) -> None:
    """Labels, which every event's message carries, are bounded in count, length and bytes; past a bound, nothing."""
    request = _request(category)
    request.meta.labels.update(labels)
    err = await _rejected(stub.UploadEvents(request, timeout=10))
    assert err.code() is INVALID
    assert text in (err.details() or "") and "every event carries them" in (err.details() or "")
    assert set(_violations(err)) == fields
    assert await topic_reader.read_all(_topic(category)) == []


async def test_labels_at_their_limits_are_published_with_every_event(
    stub: pb_grpc.IngestServiceStub, category: str, topic_reader: TopicReader
) -> None:
    """64 labels, or 4 values of 1,000 characters, are accepted and copied into each event's message."""
    for labels in ({f"k{i}": "v" for i in range(64)}, {f"k{i}": "v" * 1000 for i in range(4)}):
        request = _request(category, [_event(f"e{i}-{len(labels)}") for i in range(2)])
        request.meta.labels.update(labels)
        assert (await stub.UploadEvents(request, timeout=10)).code == pb.RESULT_CODE_ALL_SUCCESS
    published = await topic_reader.read_all(_topic(category))
    assert sorted(len(m.value["meta"]["labels"]) for m in published) == [4, 4, 64, 64]


async def test_bytes_in_flight_beyond_the_limit_are_resource_exhausted_with_retry_info(
    start: StartVenus, spans: SpanWatch, category: str, topic_reader: TopicReader
) -> None:
    """A batch that would take the bytes in flight past max_bytes_in_flight waits its turn; the first succeeds."""
    venus = await start(max_bytes_in_flight=400_000, max_message_bytes=300_000, kafka_linger_ms=1000)
    big = orjson.dumps({"blob": "x" * 200_000})
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        stub = pb_grpc.IngestServiceStub(channel)
        first = asyncio.ensure_future(stub.UploadEvents(_request(category, [_event("first", payload=big)]),
                                                        timeout=10))
        await asyncio.wait_for(spans.ended("venus.validate").wait(), timeout=10)  # the first batch is in flight
        err = await _rejected(stub.UploadEvents(_request(category, [_event("second", payload=big)]), timeout=10))
        first_response = await first
    assert err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "bytes); retry later" in (err.details() or "")
    assert any(isinstance(d, error_details_pb2.RetryInfo) for d in _details(err))
    assert first_response.code == pb.RESULT_CODE_ALL_SUCCESS
    assert [m.value["event"]["id"] for m in await topic_reader.read_all(_topic(category))] == ["first"]


async def test_a_batch_without_events_is_invalid_argument(
    stub: pb_grpc.IngestServiceStub, category: str, topic_reader: TopicReader
) -> None:
    """An empty batch is refused and the client is told to send at least one event."""
    err = await _rejected(stub.UploadEvents(_request(category, events=[]), timeout=10))
    assert err.code() is INVALID
    assert "no events" in (err.details() or "")
    assert set(_violations(err)) == {"events"}
    assert await topic_reader.read_all(_topic(category)) == []


async def test_a_batch_over_the_event_limit_is_invalid_argument(
    start: StartVenus, category: str, topic_reader: TopicReader
) -> None:
    """One event over max_events_per_batch refuses the whole batch; exactly the limit is accepted."""
    venus = await start(max_events_per_batch=5)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        stub = pb_grpc.IngestServiceStub(channel)
        err = await _rejected(stub.UploadEvents(_request(category, [_event(f"big{i}") for i in range(6)]),
                                                timeout=10))
        accepted = await stub.UploadEvents(_request(category, [_event(f"ok{i}") for i in range(5)]), timeout=10)
    assert err.code() is INVALID
    assert "6 events" in (err.details() or "") and "limit is 5" in (err.details() or "")
    assert set(_violations(err)) == {"events"}
    assert accepted.code == pb.RESULT_CODE_ALL_SUCCESS
    published = await topic_reader.read_all(_topic(category))
    assert sorted(m.value["event"]["id"] for m in published) == [f"ok{i}" for i in range(5)]


async def test_a_category_not_allowed_is_invalid_argument(
    start: StartVenus, category: str, topic_reader: TopicReader
) -> None:
    """A well-formed category outside allowed_categories is refused and the allowed ones are named."""
    venus = await start(allowed_categories=frozenset({"PERF_CRASH", "PERF_START"}))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        err = await _rejected(pb_grpc.IngestServiceStub(channel).UploadEvents(_request(category), timeout=10))
    assert err.code() is INVALID
    assert category in (err.details() or "") and "PERF_CRASH, PERF_START" in (err.details() or "")
    assert set(_violations(err)) == {"meta.category"}
    assert await topic_reader.read_all(_topic(category)) == []


async def test_too_much_work_in_flight_is_resource_exhausted_with_retry_info(
    start: StartVenus, spans: SpanWatch, category: str, topic_reader: TopicReader
) -> None:
    """A batch arriving while the in-flight limit is used up is refused with a retry delay; the first succeeds."""
    venus = await start(max_events_per_batch=10, max_events_in_flight=10, kafka_linger_ms=1000)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        stub = pb_grpc.IngestServiceStub(channel)
        first = asyncio.ensure_future(stub.UploadEvents(
            _request(category, [_event(f"first{i}") for i in range(10)]), timeout=10))
        await asyncio.wait_for(spans.ended("venus.validate").wait(), timeout=10)  # first batch is in flight
        err = await _rejected(stub.UploadEvents(_request(category, [_event(f"second{i}") for i in range(10)]),
                                                timeout=10))
        first_response = await first
    assert err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "in flight" in (err.details() or "") and "retry later" in (err.details() or "")
    [retry] = [d for d in _details(err) if isinstance(d, error_details_pb2.RetryInfo)]
    assert retry.retry_delay.ToNanoseconds() > 0
    assert first_response.code == pb.RESULT_CODE_ALL_SUCCESS
    published = await topic_reader.read_all(_topic(category))
    assert sorted(m.value["event"]["id"] for m in published) == sorted(f"first{i}" for i in range(10))


async def test_calls_beyond_the_concurrency_limit_are_refused_at_once_with_retry_info(
    start: StartVenus, spans: SpanWatch, category: str, topic_reader: TopicReader
) -> None:
    """With the limit of calls in flight used up, another call is refused with a retry delay; the busy one succeeds."""
    # A fixed limit (no latency target) of half of max_concurrent_rpcs: one call.
    venus = await start(max_concurrent_rpcs=2, overload_latency_target_s=0, kafka_linger_ms=1000)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        stub = pb_grpc.IngestServiceStub(channel)
        first = asyncio.ensure_future(stub.UploadEvents(_request(category, [_event("first")]), timeout=10))
        await asyncio.wait_for(spans.ended("venus.validate").wait(), timeout=10)  # first call is being served
        err = await _rejected(stub.UploadEvents(_request(category, [_event("second")]), timeout=10))
        first_response = await first
    assert err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    [retry] = [d for d in _details(err) if isinstance(d, error_details_pb2.RetryInfo)]
    assert retry.retry_delay.ToNanoseconds() > 0
    assert first_response.code == pb.RESULT_CODE_ALL_SUCCESS
    assert [m.value["event"]["id"] for m in await topic_reader.read_all(_topic(category))] == ["first"]


async def test_a_message_over_max_message_bytes_is_resource_exhausted(
    start: StartVenus, category: str, topic_reader: TopicReader
) -> None:
    """gRPC itself refuses a request larger than max_message_bytes before Venus sees it."""
    venus = await start(max_message_bytes=64 * 1024)
    request = _request(category, [_event("big", payload=orjson.dumps({"blob": "x" * 100_000}))])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        err = await _rejected(pb_grpc.IngestServiceStub(channel).UploadEvents(request, timeout=10))
    assert err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in (err.details() or "")
    assert await topic_reader.read_all(_topic(category)) == []


async def test_bytes_that_are_not_a_request_are_invalid_argument(venus: Venus) -> None:
    """Undecodable bytes get INVALID_ARGUMENT saying the request is malformed, never INTERNAL or UNKNOWN."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        raw = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        err = await _rejected(raw(b"\xff\xff\xff\xff", timeout=10))
    assert err.code() is INVALID
    assert "not a valid venus.v1.UploadEventsRequest" in (err.details() or "")


async def test_a_string_field_with_invalid_utf8_is_invalid_argument(
    venus: Venus, category: str, topic_reader: TopicReader
) -> None:
    """An event id that is not UTF-8 refuses the request, and its valid events are not published either."""
    bad_event = b"\x12\x03\x0a\x01\xff"  # events { id: "\xff" }, hand-encoded: protobuf will not build it
    data = _request(category).SerializeToString() + bad_event
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        raw = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        err = await _rejected(raw(data, timeout=10))
    assert err.code() is INVALID
    assert "UTF-8" in (err.details() or "")
    assert await topic_reader.read_all(_topic(category)) == []


async def test_garbage_on_the_tcp_port_does_not_hurt_the_server(
    venus: Venus, stub: pb_grpc.IngestServiceStub, category: str
) -> None:
    """A client speaking no HTTP/2 is disconnected and the server keeps answering valid requests."""
    reader, writer = await asyncio.open_connection("127.0.0.1", venus.port)
    writer.write(b"\xde\xad\xbe\xef" * 256 + b"GET / HTTP/1.1\r\nHost: venus\r\n\r\n")
    await writer.drain()
    await asyncio.wait_for(reader.read(), timeout=10)  # returns at EOF: the server hung up
    writer.close()
    await writer.wait_closed()
    response = await stub.UploadEvents(_request(category), timeout=10)
    assert response.code == pb.RESULT_CODE_ALL_SUCCESS


FUTURE = Timestamp(seconds=int(time.time()) + 2 * 86_400)
BAD_EVENT_CASES: list[tuple[str, pb.Event, int, str]] = [
    ("empty-id", _event(""), pb.EVENT_CODE_VALIDATION_ERROR, "id is empty"),
    ("id-too-long", _event("x" * 129), pb.EVENT_CODE_VALIDATION_ERROR, "limit is 128"),
    ("payload-not-json", _event("bad", payload=b"{not json"), pb.EVENT_CODE_VALIDATION_ERROR, "not valid UTF-8 JSON"),
    ("payload-not-utf8", _event("bad", payload=b'{"a": "\xff"}'), pb.EVENT_CODE_VALIDATION_ERROR, "not valid UTF-8"),
    ("payload-array", _event("bad", payload=b"[1, 2]"), pb.EVENT_CODE_VALIDATION_ERROR, "expected a JSON object"),
    ("payload-empty", _event("bad", payload=b""), pb.EVENT_CODE_VALIDATION_ERROR, "payload is empty"),
    ("payload-too-large", _event("bad", payload=orjson.dumps({"blob": "x" * 2000})), pb.EVENT_CODE_TOO_LARGE,
     "limit is 1024 bytes"),
    ("ip-malformed", _event("bad", ip="999.1.2.3"), pb.EVENT_CODE_VALIDATION_ERROR, "'999.1.2.3' is not an IP"),
    ("occurred-at-future", _event("bad", occurred_at=FUTURE), pb.EVENT_CODE_VALIDATION_ERROR, "in the future"),
]
BAD_EVENTS = [pytest.param(event, code, text, id=name) for name, event, code, text in BAD_EVENT_CASES]


@pytest.mark.parametrize(("bad", "code", "text"), BAD_EVENTS)
async def test_a_bad_event_fails_alone_and_its_neighbours_are_published(
    start: StartVenus, category: str, topic_reader: TopicReader, bad: pb.Event, code: int, text: str
) -> None:
    """A bad event gets its own non-retryable code between OK neighbours; only the neighbours reach Kafka."""
    venus = await start(max_event_payload_bytes=1024)
    request = _request(category, [_event("before"), bad, _event("after")])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        response = await pb_grpc.IngestServiceStub(channel).UploadEvents(request, timeout=10)
    assert response.code == pb.RESULT_CODE_PARTIAL_SUCCESS
    assert [r.id for r in response.results] == ["before", bad.id, "after"]
    assert [r.code for r in response.results] == [pb.EVENT_CODE_OK, code, pb.EVENT_CODE_OK]
    failed = response.results[1]
    assert text in failed.message
    assert not failed.retryable and not failed.backend_id
    published = await topic_reader.read_all(_topic(category))
    assert sorted(m.value["event"]["id"] for m in published) == ["after", "before"]


async def test_a_duplicate_id_keeps_the_first_event(
    stub: pb_grpc.IngestServiceStub, category: str, topic_reader: TopicReader
) -> None:
    """The second event with an id already used is DUPLICATE_ID; the first one is published."""
    request = _request(category, [_event("a", attributes={"n": "1"}), _event("a", attributes={"n": "2"}),
                                  _event("b")])
    response = await stub.UploadEvents(request, timeout=10)
    assert response.code == pb.RESULT_CODE_PARTIAL_SUCCESS
    assert [(r.id, r.code) for r in response.results] == [
        ("a", pb.EVENT_CODE_OK), ("a", pb.EVENT_CODE_DUPLICATE_ID), ("b", pb.EVENT_CODE_OK)]
    duplicate = response.results[1]
    assert "event #0" in duplicate.message and not duplicate.retryable
    published = {m.value["event"]["id"]: m.value for m in await topic_reader.read_all(_topic(category))}
    assert sorted(published) == ["a", "b"]
    assert published["a"]["event"]["attributes"] == {"n": "1"}
    assert published["a"]["backend_id"] == response.results[0].backend_id


async def test_a_batch_of_only_bad_events_is_all_fail_in_request_order(
    start: StartVenus, category: str, topic_reader: TopicReader
) -> None:
    """Every event is answered, in request order, with its own code; nothing reaches Kafka."""
    venus = await start(max_event_payload_bytes=1024)
    events: list[pb.Event] = []
    for i, (_, case, _, _) in enumerate(BAD_EVENT_CASES):
        event = pb.Event()
        event.CopyFrom(case)
        if event.id == "bad":  # the same id in every case: make it unique, or it would be DUPLICATE_ID
            event.id = f"bad{i}"
        events.append(event)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        response = await pb_grpc.IngestServiceStub(channel).UploadEvents(_request(category, events), timeout=10)
    assert response.code == pb.RESULT_CODE_ALL_FAIL
    assert len(response.results) == len(events)
    assert [r.id for r in response.results] == [e.id for e in events]
    assert [r.code for r in response.results] == [code for _, _, code, _ in BAD_EVENT_CASES]
    assert all(r.message and not r.retryable and not r.backend_id for r in response.results)
    assert await topic_reader.read_all(_topic(category)) == []


async def test_a_deadline_too_short_to_publish_sends_nothing_to_kafka(
    stub: pb_grpc.IngestServiceStub, category: str, topic_reader: TopicReader
) -> None:
    """A call whose deadline leaves no time to wait for Kafka fails, and its events are not published."""
    response = await stub.UploadEvents(_request(category, [_event("on-time")]), timeout=10)  # topic now known
    assert response.code == pb.RESULT_CODE_ALL_SUCCESS
    err = await _rejected(stub.UploadEvents(_request(category, [_event("late")]), timeout=0.045))
    assert err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert [m.value["event"]["id"] for m in await topic_reader.read_all(_topic(category))] == ["on-time"]
