"""The client's emit() over one StreamEvents stream by default, and over unary calls when the server has no stream."""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest

from tests.kafka_helpers import event_ids
from venus_client import BufferConfig, EventData, Meta, OutcomeStatus, Platform, VenusClient
from venus_client._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc import Venus

pytestmark = pytest.mark.timeout(60)


def _meta(category: str) -> Meta:
    return Meta(app_id="com.example.stream", category=category, platform=Platform.PLATFORM_SERVER)


def _event(event_id: str) -> EventData:
    return EventData(id=event_id, payload={"id": event_id})


class _Opened:
    """Counts the unary calls and the streams the client opens (grpc.aio takes one interceptor per call kind)."""

    def __init__(self) -> None:
        self.unary = 0
        self.streams = 0
        opened = self

        class Unary(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]  # grpc ships no type hints
            async def intercept_unary_unary(self, continuation: Callable[..., Awaitable[Any]], details: Any,
                                            request: Any) -> Any:
                opened.unary += 1
                return await continuation(details, request)

        class Streams(grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
            async def intercept_stream_stream(self, continuation: Callable[..., Awaitable[Any]], details: Any,
                                              request_iterator: AsyncIterator[Any]) -> Any:
                opened.streams += 1
                return await continuation(details, request_iterator)

        self.interceptors = [Unary(), Streams()]


async def test_emitted_batches_go_over_one_stream(venus: Venus, category: str) -> None:
    """Many small batches from emit() travel on one StreamEvents stream, no unary call, each event in Kafka once."""
    opened = _Opened()
    ids = [f"streamed-{n}" for n in range(500)]
    async with VenusClient(f"127.0.0.1:{venus.port}", default_meta=_meta(category), interceptors=opened.interceptors,
                           buffer=BufferConfig(max_batch_events=10)) as client:
        assert client.streaming
        for event_id in ids:
            await client.emit_wait(_event(event_id))
        await client.flush()
    assert client.counters.sent_ok == 500 and client.counters.batches >= 50
    assert (opened.streams, opened.unary) == (1, 0)
    published = await event_ids(venus.settings.kafka_bootstrap, category, within_s=40, read_timeout_s=15)
    assert collections.Counter(published) == dict.fromkeys(ids, 1)


async def test_a_batch_refused_on_the_stream_is_reported_like_a_refused_call(venus: Venus) -> None:
    """A batch the server refuses as a whole (no category) ends rejected with the status UploadEvents would give."""
    outcomes: list[Any] = []
    async with VenusClient(f"127.0.0.1:{venus.port}", default_meta=Meta(app_id="com.example.stream"),
                           on_outcomes=outcomes.extend) as client:
        client.emit(_event("no-category"))
        await client.flush()
    [outcome] = outcomes
    assert outcome.status is OutcomeStatus.REJECTED and outcome.code == "INVALID_ARGUMENT"


@pytest.fixture
async def unary_only_server() -> AsyncIterator[str]:
    """A server that serves UploadEvents only (answering OK), as an older gateway or a unary-only proxy would.

    A stand-in, since Venus always serves StreamEvents: the client's fallback cannot be caused otherwise.
    """
    async def upload(request: pb.UploadEventsRequest, _: grpc.aio.ServicerContext) -> pb.UploadEventsResponse:
        return pb.UploadEventsResponse(code=pb.RESULT_CODE_ALL_SUCCESS, results=[
            pb.EventResult(id=e.id, backend_id=f"b-{e.id}", code=pb.EVENT_CODE_OK) for e in request.events])

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("venus.v1.IngestService", {
        "UploadEvents": grpc.unary_unary_rpc_method_handler(
            upload, request_deserializer=pb.UploadEventsRequest.FromString,
            response_serializer=pb.UploadEventsResponse.SerializeToString),
    }),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


async def test_without_a_stream_on_the_server_emit_falls_back_to_unary_calls(unary_only_server: str) -> None:
    """UNIMPLEMENTED for StreamEvents: the batch, and every later one, is sent as an UploadEvents call instead."""
    opened = _Opened()
    # Only the unary interceptor: grpc.aio's stream interceptor cannot close a stream that failed at once.
    async with VenusClient(unary_only_server, default_meta=_meta("FALLBACK"), interceptors=opened.interceptors[:1],
                           buffer=BufferConfig(max_batch_events=5)) as client:
        for n in range(20):
            await client.emit_wait(_event(f"fallback-{n}"))
        await client.flush()
        assert not client.streaming
    assert client.counters.sent_ok == 20 and client.counters.failed == 0
    assert opened.unary >= 4
