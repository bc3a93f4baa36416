"""Consumers can drop the copies a retry leaves in Kafka: every copy of one event has the same dedup_key."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from tests.kafka_helpers import TopicReader
from venus_client import EventData, Meta, OutcomeStatus, VenusClient
from venus_grpc import Venus

# The namespace and the recipe docs/contract.md gives consumers, restated here rather than imported.
NAMESPACE = uuid.UUID("6f1c3e52-8f0a-4d7e-9a55-2b7d3c1e9f40")


class _LoseFirstAnswer(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]  # grpc ships no type hints
    """The network losing the first answer after Venus sent it.

    A fake at the client's edge: the call really reaches Venus and is really published; only its answer is
    replaced by the UNAVAILABLE a client sees when the connection drops before the response arrives.
    """

    def __init__(self) -> None:
        self.lost = 0

    async def intercept_unary_unary(self, continuation: Callable[..., Awaitable[Any]], details: Any,
                                    request: Any) -> Any:
        call = await continuation(details, request)
        await call  # the answer Venus sent
        if self.lost == 0:
            self.lost += 1
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                       details="connection reset before the answer arrived")
        return call


async def test_a_retry_after_a_lost_answer_leaves_two_copies_with_one_dedup_key(
    venus: Venus, category: str, topic_reader: TopicReader
) -> None:
    """The client resends a batch whose answer it lost: Kafka holds both copies, with one dedup_key per event."""
    lose = _LoseFirstAnswer()
    meta = Meta(app_id="com.example.dedup", category=category, device_id="device-7")
    async with VenusClient(f"127.0.0.1:{venus.port}", default_meta=meta, interceptors=[lose]) as client:
        result = await client.upload([EventData(id=i, payload={"n": 1}) for i in ("a", "b")])
    assert lose.lost == 1
    assert [o.status for o in result.outcomes] == [OutcomeStatus.OK, OutcomeStatus.OK]
    messages = await topic_reader.read_all(f"to_analyzer__0.{category}")
    by_event: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        by_event.setdefault(message.value["event"]["id"], []).append(message.value)
    assert sorted(by_event) == ["a", "b"]
    for event_id, copies in by_event.items():
        assert len(copies) == 2, "the retry published the event again"
        assert len({c["backend_id"] for c in copies}) == 2, "each copy has its own backend_id"
        expected = str(uuid.uuid5(NAMESPACE, f'["com.example.dedup","device-7","{event_id}"]'))
        assert {c["dedup_key"] for c in copies} == {expected}
