"""The pipeline's bookkeeping: one outcome per event, in order, and the overall code."""

from __future__ import annotations

import pytest

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc.ingest.errors import Reason, RequestError
from venus_grpc.ingest.outcomes import Fate
from venus_grpc.ingest.pipeline.model import Batch
from venus_grpc.kafka import Delivery

_PLACE = Delivery("t", 2, 1234)


def _batch(count: int) -> Batch:
    request = pb.UploadEventsRequest(meta=pb.BatchMeta(app_id="a", category="C"),
                                     events=[pb.Event(id=f"e{i}") for i in range(count)])
    return Batch.of(request, topic="t", peer_ip="127.0.0.1", received_at_ms=0)


def test_answering_with_a_pending_event_is_refused() -> None:
    """An event that no stage decided cannot be reported as anything."""
    batch = _batch(2)
    batch.parts[0].accept(_PLACE)
    with pytest.raises(RuntimeError, match="pending"):
        batch.answer("r")


@pytest.mark.parametrize("second", ["accept", "reject"])
def test_a_decided_event_refuses_a_second_decision(second: str) -> None:
    """An event that already has its outcome cannot be given another one."""
    part = _batch(1).parts[0]
    part.reject(pb.EVENT_CODE_VALIDATION_ERROR, "bad")
    with pytest.raises(RuntimeError, match="already ended with EVENT_CODE_VALIDATION_ERROR"):
        part.accept(_PLACE) if second == "accept" else part.reject(pb.EVENT_CODE_TOO_LARGE, "big")
    assert (part.code, part.message) == (pb.EVENT_CODE_VALIDATION_ERROR, "bad")


def test_results_follow_request_order() -> None:
    """Results come back one per event, in the order the events were sent."""
    batch = _batch(3)
    batch.parts[2].accept(_PLACE)
    batch.parts[0].reject(pb.EVENT_CODE_VALIDATION_ERROR, "bad")
    batch.parts[1].reject(pb.EVENT_CODE_PUBLISH_ERROR, "slow", retryable=True)
    results = batch.answer("r").results
    assert [(r.id, r.code, r.retryable) for r in results] == [
        ("e0", pb.EVENT_CODE_VALIDATION_ERROR, False),
        ("e1", pb.EVENT_CODE_PUBLISH_ERROR, True),
        ("e2", pb.EVENT_CODE_OK, False),
    ]


def test_only_an_ok_result_says_where_its_event_is() -> None:
    """An OK result names the topic, partition and offset Kafka gave it; a rejected one names none."""
    batch = _batch(2)
    batch.parts[0].accept(Delivery("t", 0, 0))
    batch.parts[1].reject(pb.EVENT_CODE_VALIDATION_ERROR, "bad")
    ok, rejected = batch.answer("r").results
    assert (ok.topic, ok.partition, ok.offset) == ("t", 0, 0)
    assert ok.HasField("partition") and ok.HasField("offset"), "partition 0 at offset 0 is a place, not no place"
    assert (rejected.topic, rejected.HasField("partition"), rejected.HasField("offset")) == ("", False, False)


@pytest.mark.parametrize(("ok", "expected"), [
    (3, pb.RESULT_CODE_ALL_SUCCESS), (1, pb.RESULT_CODE_PARTIAL_SUCCESS), (0, pb.RESULT_CODE_ALL_FAIL),
])
def test_overall_code_counts_published_events(ok: int, expected: int) -> None:
    """All published is success, none is failure, anything between is partial."""
    batch = _batch(3)
    for part in batch.parts:
        part.accept(_PLACE) if part.index < ok else part.reject(pb.EVENT_CODE_TOO_LARGE, "big")
    assert batch.overall()[0] == expected


def test_backend_ids_are_distinct_version_4_uuids() -> None:
    """Every backend id is a well-formed random UUID, and none repeats."""
    import uuid

    from venus_grpc.ingest.pipeline.enrich import random_uuids

    ids = random_uuids(2000)
    assert len(set(ids)) == 2000
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_batch_fate_is_recorded_once() -> None:
    """A batch answered once cannot also be refused: a second fate is a bug, not a second count."""
    fate = Fate("grpc")
    fate.answered("C", [pb.EVENT_CODE_OK], topic="t", seconds=0.01)
    with pytest.raises(RuntimeError, match="already recorded"):
        fate.refused(RequestError(Reason.KAFKA_UNAVAILABLE, "gone"))


@pytest.mark.parametrize("app_id, device_id, event_id", [
    ("com.example.shop", "device-42", "e1"),
    ("", "", ""),
    ("app", "dev", 'quote " backslash \\ newline \n tab \t'),
    ("ünï", "€uro", "😀 \u2028 \u0000 ctrl"),
    ("a" * 300, "d" * 300, "x" * 128),
])
def test_the_dedup_key_is_uuid5_of_the_json_array(app_id: str, device_id: str, event_id: str) -> None:
    """The batched computation gives exactly uuid5(DEDUP_NAMESPACE, '[app_id,device_id,event_id]'), as documented."""
    import uuid

    import orjson

    from venus_grpc.ingest.pipeline.enrich import DEDUP_NAMESPACE, dedup_key

    expected = str(uuid.uuid5(DEDUP_NAMESPACE, orjson.dumps([app_id, device_id, event_id]).decode()))
    assert dedup_key(app_id, device_id, event_id) == expected


@pytest.mark.parametrize("app_id, device_id, event_id, key", [
    ("com.example.shop", "device-42", "e1", "a0db3b95-edf8-5993-bc6a-ed19411f0691"),
    ("ünï", "€uro", '😀 \u2028 \u0000 ctrl " \\ \n', "34c5d23d-0433-5beb-8ef4-b948834b77cf"),
])
def test_the_dedup_key_of_a_known_event_never_changes(app_id: str, device_id: str, event_id: str, key: str) -> None:
    """Consumers deduplicate across versions (old and new pods publish side by side): these keys are fixed."""
    from venus_grpc.ingest.pipeline.enrich import DedupKeys, dedup_key

    assert dedup_key(app_id, device_id, event_id) == key
    assert DedupKeys(app_id, device_id).key(event_id) == key
