"""The client's emit() over one StreamEvents stream by default, and over unary calls when the server has no stream.

Each test reads what a user would notice: the outcomes and counters the client reports, what reached Kafka,
and how many calls and streams the client opened.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest

from tests.conftest import StartVenus
from tests.kafka_helpers import TopicReader, event_ids
from venus_client import (
    BufferConfig,
    EventData,
    EventOutcome,
    Meta,
    OutcomeStatus,
    Platform,
    RetryPolicy,
    VenusClient,
)
from venus_client._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc import Venus
from venus_grpc.server.transport import free_port

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


async def test_streamed_outcomes_come_per_event_in_order_and_say_where_each_went(
    venus: Venus, category: str, topic_reader: TopicReader
) -> None:
    """Each streamed batch answers its events in the order emitted, and each OK outcome names its Kafka message."""
    batches: list[list[EventOutcome]] = []
    ids = [f"placed-{n}" for n in range(60)]
    async with VenusClient(f"127.0.0.1:{venus.port}", default_meta=_meta(category), on_outcomes=batches.append,
                           buffer=BufferConfig(max_batch_events=7)) as client:
        for event_id in ids:
            await client.emit_wait(_event(event_id))
    # Batches may finish in any order; within one, the outcomes are its events in the order they were emitted.
    assert sorted(o.id for batch in batches for o in batch) == sorted(ids)
    for batch in batches:
        first = ids.index(batch[0].id)
        assert [o.id for o in batch] == ids[first:first + len(batch)]
    messages = await topic_reader.read_all(f"to_analyzer__0.{category}")
    where = {(m.topic, m.partition, m.offset): m.value["event"]["id"] for m in messages}
    placed = {(o.topic, o.partition, o.offset): o.id for batch in batches for o in batch
              if o.status is OutcomeStatus.OK}
    assert placed == where and len(placed) == len(ids)


async def test_batches_a_broken_stream_had_not_answered_are_sent_again_on_a_new_one(
    start: StartVenus, category: str, topic_reader: TopicReader
) -> None:
    """Streams the server cuts (connection age) lose nothing: unanswered batches go again; copies share a dedup_key."""
    # A real break: Venus ends each connection a second after it opened, and a stream still open on it
    # 0.2 s after its GOAWAY is cut off with UNAVAILABLE, its last batches taken but not answered.
    venus = await start(max_connection_age_s=1.0, max_connection_age_grace_s=0.2)
    opened = _Opened()
    sent: list[str] = []
    async with VenusClient(f"127.0.0.1:{venus.port}", default_meta=_meta(category), interceptors=opened.interceptors,
                           buffer=BufferConfig(max_batch_events=5, linger_s=0.01)) as client:
        deadline = time.monotonic() + 30
        while opened.streams < 3 and time.monotonic() < deadline:  # two breaks, each followed by a new stream
            sent.append(f"cut-{len(sent)}")
            await client.emit_wait(_event(sent[-1]))
        await client.flush()
    assert opened.streams >= 3 and opened.unary == 0
    await _assert_each_delivered(client, sent, topic_reader, category)


async def test_batches_a_stopping_venus_left_unanswered_go_to_the_one_started_after_it(
    start: StartVenus, category: str, topic_reader: TopicReader
) -> None:
    """Venus stopped mid-stream and another started on its port: every event emitted across the restart is in Kafka."""
    port = free_port()
    first = await start(port=port)
    opened = _Opened()
    sent: list[str] = []
    policy = RetryPolicy(max_attempts=100, total_budget_s=40)  # long enough to span the restart
    async with VenusClient(f"127.0.0.1:{port}", default_meta=_meta(category), interceptors=opened.interceptors,
                           retry=policy, buffer=BufferConfig(max_batch_events=5, linger_s=0.01)) as client:
        async def emit(count: int) -> None:
            for _ in range(count):
                sent.append(f"restart-{len(sent)}")
                await client.emit_wait(_event(sent[-1]))

        emitting = asyncio.create_task(emit(5_000))
        while client.counters.sent_ok < 500 and not emitting.done():  # the stream is carrying batches when Venus stops
            await asyncio.wait({emitting}, timeout=0.05)
        await first.stop()  # answers the batches it has taken, then ends the stream with UNAVAILABLE
        await start(port=port)
        await emitting
        await client.flush()
    assert opened.streams >= 2 and opened.unary == 0
    await _assert_each_delivered(client, sent, topic_reader, category)


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


async def _assert_each_delivered(client: VenusClient, sent: list[str], topic_reader: TopicReader,
                                 category: str) -> None:
    """Every event sent is counted OK and is in Kafka, nothing else is, and its copies share its dedup_key."""
    assert client.counters.sent_ok == len(sent) and client.counters.failed == 0
    keys: dict[str, set[str]] = collections.defaultdict(set)
    for message in await topic_reader.read_all(f"to_analyzer__0.{category}"):
        keys[message.value["event"]["id"]].add(message.value["dedup_key"])
    assert sorted(keys) == sorted(sent), "every event is in Kafka, and nothing else"
    assert all(len(k) == 1 for k in keys.values()), "every copy of one event has that event's dedup_key"
