"""The Python client library against a real Venus and a real broker: outcomes, refusals, retries, sync use."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider

from tests.conftest import StartVenus
from tests.kafka_helpers import TopicReader, event_ids
from venus_client import (
    BufferConfig,
    Event,
    EventData,
    Meta,
    OutcomeStatus,
    Platform,
    RetryPolicy,
    SyncVenusClient,
    VenusClient,
    VenusRequestError,
)
from venus_client._batch import PendingBatch
from venus_client._pb.venus.v1 import ingest_pb2 as client_pb
from venus_grpc import Venus
from venus_grpc.tools.devbroker import EmbeddedBroker

pytestmark = pytest.mark.timeout(90)


def _meta(category: str) -> Meta:
    return Meta(app_id="com.example.client", category=category, platform=Platform.PLATFORM_SERVER)


def _events(*ids: str) -> list[EventData]:
    return [EventData(id=i, payload={"n": n}, ip="10.0.0.1") for n, i in enumerate(ids)]


class _Attempts(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]  # grpc ships no type hints
    """Records when each call the client makes starts and ends, and its status."""

    def __init__(self) -> None:
        self.started: list[float] = []
        self.ended: list[float] = []
        self.codes: list[grpc.StatusCode] = []
        self.failed = asyncio.Event()

    async def intercept_unary_unary(self, continuation: Callable[..., Awaitable[Any]], details: Any,
                                    request: Any) -> Any:
        self.started.append(time.monotonic())
        call = await continuation(details, request)
        code = await call.code()
        self.ended.append(time.monotonic())
        self.codes.append(code)
        if code != grpc.StatusCode.OK:
            self.failed.set()
        return call


async def test_an_upload_answers_a_typed_ok_per_event_in_order(
    venus: Venus, category: str, topic_reader: TopicReader
) -> None:
    """Every event, given as a dataclass or a generated message, is OK with a backend id, and is in Kafka."""
    events: list[EventData | Event] = [*_events("a", "b"), Event(id="c", payload=b'{"raw": true}')]
    async with VenusClient(f"127.0.0.1:{venus.port}", default_meta=_meta(category), compression="gzip") as client:
        result = await client.upload(events)

    assert result.all_ok and result.attempts == 1
    assert [o.id for o in result.outcomes] == ["a", "b", "c"]
    assert all(o.status is OutcomeStatus.OK and o.code == "EVENT_CODE_OK" and o.backend_id for o in result.outcomes)
    messages = await topic_reader.read_all(f"to_analyzer__0.{category}")
    assert {m.value["event"]["id"]: m.value["backend_id"] for m in messages} == {
        o.id: o.backend_id for o in result.outcomes}


async def test_an_ok_outcome_names_the_message_that_holds_it(
    venus: Venus, category: str, topic_reader: TopicReader
) -> None:
    """An OK outcome's topic, partition and offset hold its event's message; a rejected outcome names no place."""
    events = [*_events("a", "b"), EventData(id="bad-json", payload=b"not json")]
    async with VenusClient(f"127.0.0.1:{venus.port}", default_meta=_meta(category)) as client:
        result = await client.upload(events)

    messages = await topic_reader.read_all(f"to_analyzer__0.{category}")
    assert {(o.topic, o.partition, o.offset): o.backend_id for o in result.ok} == {
        (m.topic, m.partition, m.offset): m.value["backend_id"] for m in messages}
    [rejected] = result.rejected
    assert (rejected.topic, rejected.partition, rejected.offset) == ("", None, None)


async def test_a_partial_failure_is_reported_per_event_and_not_retried(
    venus: Venus, category: str, topic_reader: TopicReader
) -> None:
    """Invalid events are REJECTED with the server's code and message; the good ones still go through, once."""
    events = [*_events("good-0"), EventData(id="bad-json", payload=b"not json"), *_events("good-0", "good-1")]
    attempts = _Attempts()
    async with VenusClient(f"127.0.0.1:{venus.port}", default_meta=_meta(category),
                           interceptors=[attempts]) as client:
        result = await client.upload(events)

    assert [(o.id, o.status, o.code) for o in result.outcomes] == [
        ("good-0", OutcomeStatus.OK, "EVENT_CODE_OK"),
        ("bad-json", OutcomeStatus.REJECTED, "EVENT_CODE_VALIDATION_ERROR"),
        ("good-0", OutcomeStatus.REJECTED, "EVENT_CODE_DUPLICATE_ID"),
        ("good-1", OutcomeStatus.OK, "EVENT_CODE_OK"),
    ]
    assert not result.all_ok and [o.id for o in result.rejected] == ["bad-json", "good-0"]
    assert "JSON" in result.rejected[0].message
    assert len(attempts.codes) == 1, "rejected events were sent again"
    assert sorted(await event_ids(venus.settings.kafka_bootstrap, category)) == ["good-0", "good-1"]


async def test_a_request_refused_as_a_whole_raises_with_its_field_violations(venus: Venus, category: str) -> None:
    """A batch meta without app_id raises VenusRequestError naming the field, after a single call."""
    attempts = _Attempts()
    async with VenusClient(f"127.0.0.1:{venus.port}", default_meta=Meta(category=category),
                           interceptors=[attempts]) as client:
        with pytest.raises(VenusRequestError) as caught:
            await client.upload(_events("e"), request_id="req-refused")

    error = caught.value
    assert error.status is grpc.StatusCode.INVALID_ARGUMENT and error.message
    assert any("app_id" in v.field and v.description for v in error.field_violations), error.field_violations
    assert error.request_id == "req-refused" and error.partial is None
    assert attempts.codes == [grpc.StatusCode.INVALID_ARGUMENT]


async def test_after_a_broker_outage_every_event_is_delivered_exactly_once(
    own_broker: EmbeddedBroker, start: StartVenus, category: str
) -> None:
    """An upload started while the broker is down is retried until it is back, and each event lands once."""
    await asyncio.to_thread(own_broker.start)
    venus = await start(kafka_bootstrap=own_broker.bootstrap, publish_timeout_s=2, kafka_request_timeout_ms=1500)
    attempts = _Attempts()
    policy = RetryPolicy(max_attempts=100, initial_backoff_s=0.1, max_backoff_s=1.0, total_budget_s=45)
    ids = [f"during-{n}" for n in range(5)]
    async with VenusClient(f"127.0.0.1:{venus.port}", default_meta=_meta(category), retry=policy, deadline_s=5,
                           interceptors=[attempts]) as client:
        assert (await client.upload(_events("before"))).all_ok
        await asyncio.to_thread(own_broker.stop)
        upload = asyncio.create_task(client.upload(_events(*ids)))
        await asyncio.wait_for(attempts.failed.wait(), timeout=15)
        await asyncio.to_thread(own_broker.start)
        result = await asyncio.wait_for(upload, timeout=60)

    assert result.all_ok, result.outcomes
    assert [o.id for o in result.outcomes] == ids and result.attempts >= 2
    assert grpc.StatusCode.UNAVAILABLE in attempts.codes
    counts = collections.Counter(i for i in await event_ids(own_broker.bootstrap, category) if i in ids)
    assert counts == dict.fromkeys(ids, 1), f"not exactly once: {counts}"


async def test_the_servers_retry_info_is_the_floor_of_the_backoff(
    own_broker: EmbeddedBroker, start: StartVenus, category: str
) -> None:
    """With no broker Venus answers UNAVAILABLE with RetryInfo 1 s; the client waits that long, then reports failure."""
    venus = await start(wait_ready=False, kafka_bootstrap=own_broker.bootstrap)  # own_broker never starts
    attempts = _Attempts()
    policy = RetryPolicy(max_attempts=2, initial_backoff_s=0.01, max_backoff_s=0.01, total_budget_s=10)
    async with VenusClient(f"127.0.0.1:{venus.port}", default_meta=_meta(category), retry=policy,
                           interceptors=[attempts]) as client:
        result = await client.upload(_events("e0", "e1"))

    assert attempts.codes == [grpc.StatusCode.UNAVAILABLE] * 2
    waited_s = attempts.started[1] - attempts.ended[0]
    assert waited_s >= 1.0, f"retried {waited_s:.3f} s after a RetryInfo of 1 s"
    assert not result.ok and [(o.id, o.status, o.code) for o in result.failed] == [
        ("e0", OutcomeStatus.RETRYABLE_FAILURE, "UNAVAILABLE"), ("e1", OutcomeStatus.RETRYABLE_FAILURE, "UNAVAILABLE")]
    assert result.attempts == 2


async def test_the_sync_client_uploads_within_the_callers_trace(
    venus: Venus, category: str, topic_reader: TopicReader
) -> None:
    """From plain blocking code, an upload is answered per event and published in the caller's trace."""
    tracer = TracerProvider().get_tracer("caller")

    def blocking_caller() -> tuple[Any, int]:
        with SyncVenusClient(f"127.0.0.1:{venus.port}", default_meta=_meta(category)) as client, \
                tracer.start_as_current_span("caller") as span:
            result = client.upload(_events("s0", "s1"), Meta(device_id="device-7"), request_id="req-sync")
        return result, span.get_span_context().trace_id

    # The test's loop runs Venus too, so the blocking caller runs in a thread of its own.
    result, trace_id = await asyncio.to_thread(blocking_caller)

    assert result.all_ok and [o.id for o in result.outcomes] == ["s0", "s1"]
    messages = await topic_reader.read_all(f"to_analyzer__0.{category}")
    assert sorted(m.value["event"]["id"] for m in messages) == ["s0", "s1"]
    for message in messages:
        assert message.key == b"device-7", "the upload's meta was not merged over the default meta"
        assert message.headers["traceparent"].split("-")[1] == format(trace_id, "032x")
        assert "request_id=req-sync" in message.headers["baggage"]


async def test_the_sync_client_emits_in_batches_and_close_sends_everything(
    venus: Venus, category: str, topic_reader: TopicReader
) -> None:
    """Blocking code emits one event at a time; batches go out in the background and close loses nothing."""
    ids = [f"sync-emit-{n}" for n in range(250)]

    def blocking_emitter() -> tuple[int, int]:
        with SyncVenusClient(f"127.0.0.1:{venus.port}", default_meta=_meta(category),
                             buffer=BufferConfig(max_batch_events=100, linger_s=5)) as client:
            for event in _events(*ids):
                assert client.emit(event)
            client.flush()
            return client.counters.sent_ok, client.counters.batches

    sent_ok, batches = await asyncio.to_thread(blocking_emitter)
    assert (sent_ok, batches) == (250, 3)  # 100 + 100 + the 50 that flush() sent without waiting out linger
    messages = await topic_reader.read_all(f"to_analyzer__0.{category}")
    assert sorted(m.value["event"]["id"] for m in messages) == sorted(ids)


def test_only_retryable_events_are_sent_again_with_their_ids() -> None:
    """After a partial publish failure only the PUBLISH_ERROR events are pending, under their own ids.

    A crafted response stands in for the server here: a broker that acknowledges some events of a batch
    and times out on others cannot be caused on demand.
    """
    batch = PendingBatch([client_pb.Event(id=i, payload=b"{}") for i in ("ok", "bad", "slow")])
    batch.record(client_pb.UploadEventsResponse(results=[
        client_pb.EventResult(id="ok", code=client_pb.EVENT_CODE_OK, backend_id="b1"),
        client_pb.EventResult(id="bad", code=client_pb.EVENT_CODE_VALIDATION_ERROR),
        client_pb.EventResult(id="slow", code=client_pb.EVENT_CODE_PUBLISH_ERROR, retryable=True),
    ]))
    assert [e.id for e in batch.to_send()] == ["slow"]
    batch.record(client_pb.UploadEventsResponse(results=[
        client_pb.EventResult(id="slow", code=client_pb.EVENT_CODE_OK, backend_id="b3")]))
    result = batch.result("req", attempts=2)
    assert batch.done and [(o.id, o.status) for o in result.outcomes] == [
        ("ok", OutcomeStatus.OK), ("bad", OutcomeStatus.REJECTED), ("slow", OutcomeStatus.OK)]
