"""The client's emit buffer against a real Venus and a real broker: batching, linger, a full queue, an outage.

The buffer's promises are about what reaches Kafka (each emitted event once, nothing lost at close) and
about what the caller is told (every event counted as sent, rejected, failed or dropped), so each test
reads the topic back or checks the counters, not the buffer's internals.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from tests.conftest import StartVenus
from tests.kafka_helpers import TopicReader, event_ids
from venus_client import (
    BufferConfig,
    BufferFullError,
    EventData,
    EventOutcome,
    Meta,
    OutcomeStatus,
    Platform,
    RetryPolicy,
    VenusClient,
)
from venus_grpc import Venus
from venus_grpc.tools.devbroker import EmbeddedBroker

pytestmark = pytest.mark.timeout(60)


def _meta(category: str) -> Meta:
    return Meta(app_id="com.example.buffer", category=category, platform=Platform.PLATFORM_SERVER)


def _event(event_id: str) -> EventData:
    return EventData(id=event_id, payload={"id": event_id}, ip="10.0.0.1")


class _Calls(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]  # grpc ships no type hints
    """Records each call the client makes: when it started, how many events it carried, its status.

    A unary interceptor sees unary calls only: tests that use it run the buffer over ``transport="unary"``;
    the same buffer over the default StreamEvents stream is tested in test_client_stream.py.
    """

    def __init__(self) -> None:
        self.started: list[float] = []
        self.sizes: list[int] = []
        self.codes: list[grpc.StatusCode] = []
        self.failed = asyncio.Event()

    async def intercept_unary_unary(self, continuation: Callable[..., Awaitable[Any]], details: Any,
                                    request: Any) -> Any:
        self.started.append(time.monotonic())
        self.sizes.append(len(request.events))
        call = await continuation(details, request)
        code = await call.code()
        self.codes.append(code)
        if code != grpc.StatusCode.OK:
            self.failed.set()
        return call


class _Outcomes:
    """The ``on_outcomes`` hook: keeps every batch's outcomes and wakes tests waiting for a count of them."""

    def __init__(self) -> None:
        self.batches: list[list[EventOutcome]] = []
        self._changed = asyncio.Event()

    def __call__(self, outcomes: list[EventOutcome]) -> None:
        self.batches.append(outcomes)
        self._changed.set()

    @property
    def all(self) -> list[EventOutcome]:
        return [o for batch in self.batches for o in batch]

    async def wait_for(self, count: int, *, within_s: float) -> None:
        """Return once at least ``count`` outcomes arrived; fail the test after ``within_s``."""
        async def reached() -> None:
            while len(self.all) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(reached(), timeout=within_s)


async def test_emitted_events_are_batched_within_the_limit_and_delivered_once_by_close(
    venus: Venus, category: str
) -> None:
    """2,000 emitted events go out in batches of at most max_batch_events; after close each is in Kafka once."""
    calls, outcomes = _Calls(), _Outcomes()
    ids = [f"batched-{n}" for n in range(2000)]
    config = BufferConfig(max_batch_events=300)
    async with VenusClient(f"127.0.0.1:{venus.port}", default_meta=_meta(category), buffer=config,
                           on_outcomes=outcomes, interceptors=[calls], transport="unary") as client:
        assert all(client.emit(_event(i)) for i in ids)
    # Leaving the block closed the client, which must have flushed everything first.

    assert client.counters.sent_ok == 2000
    assert (client.counters.rejected, client.counters.failed, client.counters.dropped) == (0, 0, 0)
    assert max(calls.sizes) <= 300 and len(calls.sizes) >= 7, calls.sizes
    assert all(len(batch) <= 300 for batch in outcomes.batches)
    assert sorted(o.id for o in outcomes.all) == sorted(ids)
    published = await event_ids(venus.settings.kafka_bootstrap, category, within_s=40, read_timeout_s=15)
    counts = collections.Counter(published)
    assert counts == dict.fromkeys(ids, 1), "not exactly once"


async def test_linger_sends_a_small_batch_without_close(
    venus: Venus, category: str, topic_reader: TopicReader
) -> None:
    """Three events, far below any size limit, are sent together once the first has waited linger_s."""
    calls, outcomes = _Calls(), _Outcomes()
    async with VenusClient(f"127.0.0.1:{venus.port}", default_meta=_meta(category),
                           buffer=BufferConfig(linger_s=0.2), on_outcomes=outcomes, interceptors=[calls],
                           transport="unary") as client:
        emitted_at = time.monotonic()
        for event_id in ("l0", "l1", "l2"):
            client.emit(_event(event_id))
        await outcomes.wait_for(3, within_s=10)
        assert client.counters.sent_ok == 3 and client.buffer.queued == 0

    assert calls.sizes == [3], "the events were not sent as one batch"
    assert calls.started[0] - emitted_at >= 0.2, "sent before the linger ran out"
    assert [(o.id, o.status) for o in outcomes.all] == [(i, OutcomeStatus.OK) for i in ("l0", "l1", "l2")]
    messages = await topic_reader.read_all(f"to_analyzer__0.{category}")
    assert sorted(m.value["event"]["id"] for m in messages) == ["l0", "l1", "l2"]


async def test_a_full_queue_drops_and_counts_or_refuses_by_policy(
    own_broker: EmbeddedBroker, start: StartVenus, category: str
) -> None:
    """With no broker nothing drains: beyond max_queued_events, "drop" counts drops and "block" refuses emit.

    Emits without an await between them, so the background task cannot take a batch off the queue first.
    """
    venus = await start(wait_ready=False, kafka_bootstrap=own_broker.bootstrap)  # own_broker never starts
    no_retry = RetryPolicy(max_attempts=1)
    outcomes = _Outcomes()
    drop = BufferConfig(max_queued_events=5, max_batch_events=2, linger_s=0, max_in_flight=1, when_full="drop")
    async with VenusClient(f"127.0.0.1:{venus.port}", default_meta=_meta(category), retry=no_retry,
                           buffer=drop, on_outcomes=outcomes) as client:
        accepted = [client.emit(_event(f"d{n}")) for n in range(20)]
        assert accepted == [True] * 5 + [False] * 15
        assert client.counters.dropped == 15

    # Closing still gave the five queued events an outcome: failed, because Venus has no broker.
    assert (client.counters.sent_ok, client.counters.failed, client.counters.dropped) == (0, 5, 15)
    assert sorted((o.id, o.status, o.code) for o in outcomes.all) == [
        (f"d{n}", OutcomeStatus.RETRYABLE_FAILURE, "UNAVAILABLE") for n in range(5)]

    block = BufferConfig(max_queued_events=5, linger_s=0, when_full="block")
    async with VenusClient(f"127.0.0.1:{venus.port}", default_meta=_meta(category), retry=no_retry,
                           buffer=block) as blocking:
        for n in range(5):
            blocking.emit(_event(f"b{n}"))
        with pytest.raises(BufferFullError):
            blocking.emit(_event("b5"))
    assert (blocking.counters.failed, blocking.counters.dropped) == (5, 0)


async def test_events_emitted_across_a_broker_restart_are_all_delivered_once(
    own_persistent_broker: EmbeddedBroker, start: StartVenus, category: str
) -> None:
    """10,000 events emitted while the broker is down and restarted are each in Kafka exactly once after close.

    The queue holds 2,000, so during the outage emit_wait blocks: the producer is held back, not dropped.
    """
    await asyncio.to_thread(own_persistent_broker.start)
    venus = await start(kafka_bootstrap=own_persistent_broker.bootstrap, publish_timeout_s=2,
                        kafka_request_timeout_ms=1500)
    calls, outcomes = _Calls(), _Outcomes()
    policy = RetryPolicy(max_attempts=100, initial_backoff_s=0.1, max_backoff_s=1.0, total_budget_s=45)
    config = BufferConfig(max_queued_events=2000, when_full="block")
    ids = [f"outage-{n}" for n in range(10_000)]

    async def produce(chunk: list[str]) -> None:
        for event_id in chunk:
            await client.emit_wait(_event(event_id))

    async with VenusClient(f"127.0.0.1:{venus.port}", default_meta=_meta(category), retry=policy, deadline_s=5,
                           buffer=config, on_outcomes=outcomes, interceptors=[calls], transport="unary") as client:
        # The link works before the outage; the broker keeps this event across its restart.
        assert (await client.upload([_event("before")])).all_ok
        await asyncio.to_thread(own_persistent_broker.stop)
        producer = asyncio.create_task(produce(ids))
        await asyncio.wait_for(calls.failed.wait(), timeout=15)
        await asyncio.to_thread(own_persistent_broker.start)
        await asyncio.wait_for(producer, timeout=40)
        await asyncio.wait_for(client.flush(), timeout=40)

    counters = client.counters
    assert (counters.sent_ok, counters.rejected, counters.failed, counters.dropped) == (10_000, 0, 0, 0)
    assert sorted(o.id for o in outcomes.all) == sorted(ids)
    assert grpc.StatusCode.OK in calls.codes and any(c != grpc.StatusCode.OK for c in calls.codes)
    assert max(calls.sizes) <= 500
    published = await event_ids(own_persistent_broker.bootstrap, category, within_s=40, read_timeout_s=15)
    counts = collections.Counter(published)
    assert counts == dict.fromkeys(["before", *ids], 1), "not every acknowledged event is in Kafka exactly once"
