"""An OK result says where its event went: the topic, partition and offset of exactly its message."""

from __future__ import annotations

import orjson

from tests.kafka_helpers import TopicReader
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc

SMALL = 3  # below 16 events a request is sent message by message (venus_grpc.kafka)
LARGE = 40  # from 16 events it is one record batch, whose acknowledgement gives only its first offset


def _batch(category: str, prefix: str, count: int) -> pb.UploadEventsRequest:
    return pb.UploadEventsRequest(
        meta=pb.BatchMeta(app_id="com.example.where", category=category, platform=pb.PLATFORM_IOS,
                          device_id="device-7"),  # one key: every batch of the test lands in one partition
        events=[pb.Event(id=f"{prefix}{i}", payload=orjson.dumps({"n": i})) for i in range(count)],
    )


async def _answers_and_log(stub: pb_grpc.IngestServiceStub, topic_reader: TopicReader, category: str,
                           count: int) -> tuple[list[pb.EventResult], dict[tuple[int, int], str]]:
    """The results of two batches of ``count`` events, and the backend id at each (partition, offset) of the topic.

    The second batch starts past offset 0, so an offset that forgot its batch's base cannot pass.
    """
    results: list[pb.EventResult] = []
    for prefix in ("a", "b"):
        response = await stub.UploadEvents(_batch(category, prefix, count), timeout=10)
        assert response.code == pb.RESULT_CODE_ALL_SUCCESS
        results.extend(response.results)
    log = {(m.partition, m.offset): m.value["backend_id"]
           for m in await topic_reader.read_all(f"to_analyzer__0.{category}")}
    return results, log


async def test_a_small_batch_names_the_offset_of_each_message(
    stub: pb_grpc.IngestServiceStub, category: str, topic_reader: TopicReader
) -> None:
    """Sent message by message, each OK event's partition and offset hold the message with its backend_id."""
    results, log = await _answers_and_log(stub, topic_reader, category, SMALL)

    assert all(r.topic == f"to_analyzer__0.{category}" for r in results)
    assert {(r.partition, r.offset): r.backend_id for r in results} == log
    assert max(r.offset for r in results) >= SMALL, "the second batch is past the topic's first offsets"


async def test_a_record_batch_names_consecutive_offsets_from_its_base(
    stub: pb_grpc.IngestServiceStub, category: str, topic_reader: TopicReader
) -> None:
    """Sent as record batches, event i sits at the batch's base offset + i, as the broker itself numbered it."""
    results, log = await _answers_and_log(stub, topic_reader, category, LARGE)

    assert {(r.partition, r.offset): r.backend_id for r in results} == log
    offsets = [r.offset for r in results]
    assert offsets == list(range(offsets[0], offsets[0] + 2 * LARGE)), "consecutive, in request order"
    assert offsets[LARGE] > 0


async def test_a_rejected_event_names_no_place(stub: pb_grpc.IngestServiceStub, category: str) -> None:
    """Only a published event has a topic, partition and offset; a rejected one has none of them."""
    request = _batch(category, "r", 2)
    request.events[1].payload = b"not json"
    response = await stub.UploadEvents(request, timeout=10)

    published, rejected = response.results
    assert published.code == pb.EVENT_CODE_OK and published.topic and published.HasField("offset")
    assert rejected.code == pb.EVENT_CODE_VALIDATION_ERROR
    assert (rejected.topic, rejected.HasField("partition"), rejected.HasField("offset")) == ("", False, False)
