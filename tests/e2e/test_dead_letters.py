"""Dead letters: events rejected for their content go aside with why, bounded, and never slow an answer."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import grpc
import orjson
from aiokafka import AIOKafkaConsumer

from tests.conftest import StartVenus
from tests.kafka_helpers import TopicReader
from tests.metrics_helpers import scrape, value
from venus_grpc import Venus
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_grpc.kafka_clients import stop_within
from venus_grpc.tools.devbroker import EmbeddedBroker

CALLER_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = (("traceparent", f"00-{CALLER_TRACE_ID}-00f067aa0ba902b7-01"),)
OUTCOMES = ("published", "failed", "dropped")


def _meta(category: str) -> pb.BatchMeta:
    return pb.BatchMeta(app_id="com.example.sdk", category=category, platform=pb.PLATFORM_ANDROID,
                        app_version="3.1.0", sdk_version="0.9.2", device_id="device-13", labels={"env": "beta"})


def _good(event_id: str) -> pb.Event:
    return pb.Event(id=event_id, payload=b'{"fine": true}')


def _bad(event_id: str) -> pb.Event:
    return pb.Event(id=event_id, payload=b"not json \xff", attributes={"screen": "cart"})


async def _counts(venus: Venus) -> dict[str, float]:
    samples = await scrape(venus)
    return {outcome: value(samples, "venus_dead_letters_total", outcome=outcome) for outcome in OUTCOMES}


async def _until_counted(venus: Venus, before: dict[str, float], letters: int) -> dict[str, float]:
    """How each letter ended since ``before``, once ``letters`` of them have ended (30 s at most)."""
    deadline = time.monotonic() + 30
    while True:
        now = await _counts(venus)
        moved = {outcome: now[outcome] - before[outcome] for outcome in OUTCOMES}
        if sum(moved.values()) >= letters or time.monotonic() > deadline:
            return moved
        await asyncio.sleep(0.1)


async def test_events_rejected_for_their_content_land_in_the_dead_letter_topic_with_why(
    start: StartVenus, category: str, topic_reader: TopicReader
) -> None:
    """Each event rejected for its content is a letter, as sent, with reason, code, app, category, request, trace."""
    dead_topic = f"dead_{category.lower()}"
    venus = await start(dead_letter_topic=dead_topic, max_event_payload_bytes=1024)
    request = pb.UploadEventsRequest(meta=_meta(category), events=[
        _good("ok"), _bad("bad-json"), pb.Event(id="big", payload=orjson.dumps({"pad": "x" * 2000})),
        _good("ok"), pb.Event(id="bad-ip", ip="999.1.1.1", payload=b"{}")])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        response = await pb_grpc.IngestServiceStub(channel).UploadEvents(request, metadata=TRACEPARENT, timeout=10)
    await venus.stop()  # returns once its dead letters are acknowledged

    letters = {int(m.value["index"]): m for m in await topic_reader.read_all(dead_topic)}
    assert sorted(letters) == [1, 2, 3, 4], "every rejected event, and only those"
    for index, letter in letters.items():
        result = response.results[index]
        assert letter.headers["venus.reason"] == result.message
        assert letter.headers["venus.code"] == pb.EventCode.Name(result.code)
        assert (letter.headers["venus.app_id"], letter.headers["venus.category"]) == ("com.example.sdk", category)
        assert letter.headers["venus.request_id"] == response.request_id
        assert letter.headers["traceparent"].split("-")[1] == CALLER_TRACE_ID
        assert letter.value["meta"]["labels"] == {"env": "beta"} and letter.key == b"device-13"
        assert letter.value["event"]["id"] == request.events[index].id
    assert letters[1].value["event"]["payload"] == "not json \\xff"  # as sent, the byte that is not UTF-8 escaped
    assert letters[1].value["event"]["attributes"] == {"screen": "cart"}
    assert letters[2].value["event"]["payload_bytes"] == len(request.events[2].payload)
    assert [letters[i].headers["venus.code"] for i in (2, 3, 4)] == [
        "EVENT_CODE_TOO_LARGE", "EVENT_CODE_DUPLICATE_ID", "EVENT_CODE_VALIDATION_ERROR"]


async def test_with_no_dead_letter_topic_rejected_events_are_published_nowhere(
    venus: Venus, stub: pb_grpc.IngestServiceStub, broker: EmbeddedBroker, category: str
) -> None:
    """By default (dead_letter_topic empty) a rejected event makes no letter: no topic appears but the category's."""
    before_topics, before_counts = await _topics(broker.bootstrap), await _counts(venus)
    response = await stub.UploadEvents(pb.UploadEventsRequest(meta=_meta(category), events=[_good("a"), _bad("b")]),
                                       timeout=10)

    assert response.code == pb.RESULT_CODE_PARTIAL_SUCCESS
    assert await _topics(broker.bootstrap) - before_topics == {f"to_analyzer__0.{category}"}
    assert await _counts(venus) == before_counts


async def test_a_full_dead_letter_queue_drops_and_counts_without_slowing_the_answer(
    own_broker: EmbeddedBroker, start: StartVenus, category: str
) -> None:
    """With the dead-letter broker frozen, letters past the byte bound are dropped and counted; no answer waits."""
    own_broker.start()
    venus = await start(dead_letter_topic="dead_letters", dead_letter_kafka_bootstrap=own_broker.bootstrap,
                        dead_letter_max_pending_bytes=4096)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        stub = pb_grpc.IngestServiceStub(channel)
        warm = await _counts(venus)
        await stub.UploadEvents(pb.UploadEventsRequest(meta=_meta(category), events=[_bad("warm")]), timeout=10)
        assert (await _until_counted(venus, warm, 1))["published"] == 1, "the dead-letter producer is connected"
        before = await _counts(venus)
        assert own_broker.pid is not None
        os.kill(own_broker.pid, signal.SIGSTOP)  # a real fault: the broker stops answering, its sockets stay open
        try:
            started = time.monotonic()
            response = await stub.UploadEvents(pb.UploadEventsRequest(
                meta=_meta(category), events=[_good("ok"), *(_bad(f"bad-{i}") for i in range(30))]), timeout=10)
            took_s = time.monotonic() - started
            dropped = (await _counts(venus))["dropped"] - before["dropped"]
        finally:
            os.kill(own_broker.pid, signal.SIGCONT)
        ended = await _until_counted(venus, before, 30)

    assert response.code == pb.RESULT_CODE_PARTIAL_SUCCESS and took_s < 2.0, "the answer waited for dead letters"
    assert 0 < dropped < 30, "letters within the bound are held, the rest dropped at once"
    assert ended == {"published": 30 - dropped, "failed": 0, "dropped": dropped}, "each letter ends counted once"


async def _topics(bootstrap: str) -> set[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return set(await consumer.topics())
    finally:
        await stop_within(consumer, 10)
