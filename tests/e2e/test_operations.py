"""What an operator uses on a live Venus: /metrics (grpcurl: test_readme_grpcurl.py)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from tests.metrics_helpers import scrape, value
from venus_grpc import Venus
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc


def _request(category: str, payloads: list[bytes], **meta: Any) -> pb.UploadEventsRequest:
    return pb.UploadEventsRequest(
        meta=pb.BatchMeta(app_id="com.example.ops", category=category, **meta),
        events=[pb.Event(id=f"e{i}", ip="81.2.69.142", payload=p) for i, p in enumerate(payloads)],
    )


async def test_metrics_count_uploads_events_and_stages(venus: Venus, category: str) -> None:
    """/metrics moves by exactly what one good batch, one batch with a bad event and one bad meta did: the two
    answered batches are timed, the refused one is not."""
    before = await scrape(venus)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        stub = pb_grpc.IngestServiceStub(channel)
        good = await stub.UploadEvents(_request(category, [b'{"a": 1}', b'{"a": 2}']), timeout=10)
        mixed = await stub.UploadEvents(_request(category, [b'{"a": 3}', b"not json"]), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as rejected:
            await stub.UploadEvents(pb.UploadEventsRequest(events=[pb.Event(id="x", payload=b"{}")]), timeout=10)
    assert good.code == pb.RESULT_CODE_ALL_SUCCESS
    assert mixed.code == pb.RESULT_CODE_PARTIAL_SUCCESS
    assert rejected.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    after = await scrape(venus)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    uploads = {t: delta("venus_uploads_total", type=t, transport="grpc")
               for t in ("all_upload", "success_upload", "wrong_data", "wrong_meta")}
    assert uploads == {"all_upload": 3, "success_upload": 1, "wrong_data": 1, "wrong_meta": 1}
    assert delta("venus_events_total", category=category, code="EVENT_CODE_OK", transport="grpc") == 3
    assert delta("venus_events_total", category=category, code="EVENT_CODE_VALIDATION_ERROR", transport="grpc") == 1
    assert delta("venus_batch_seconds_count", transport="grpc") == 2  # the two answered, not the refused one
    assert delta("venus_batch_seconds_sum", transport="grpc") > 0
    for stage in ("validate", "enrich", "publish"):
        assert delta("venus_stage_seconds_count", stage=stage) == 2, stage
        assert value(after, "venus_stage_seconds_sum", stage=stage) > 0, stage
    assert value(after, "venus_events_in_flight") == 0


async def test_metrics_report_kafka_ready(venus: Venus) -> None:
    """/metrics says the producer is connected once Venus serves."""
    assert value(await scrape(venus), "venus_kafka_ready") == 1

