"""Log shipping: lines land in the logs topic keyed by trace id, and a missing logs broker costs nothing."""

from __future__ import annotations

import grpc
import pytest
from prometheus_client import REGISTRY

from tests.conftest import StartVenus
from tests.e2e.test_observability import CALLER_SPAN_ID, CALLER_TRACE_ID, _request
from tests.kafka_helpers import TopicReader
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_grpc.server.transport import free_port


@pytest.mark.usefixtures("json_logs")
async def test_lines_of_a_request_are_shipped_keyed_by_its_trace_id(
    start: StartVenus, category: str, topic_reader: TopicReader
) -> None:
    """A refused request's log line reaches the logs topic under the caller's trace id, once Venus stops."""
    logs_topic = f"logs_{category.lower()}"
    venus = await start(log_shipping=True, logs_topic=logs_topic)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await pb_grpc.IngestServiceStub(channel).UploadEvents(
                pb.UploadEventsRequest(events=[pb.Event(id="e", payload=b"{}")]),
                metadata=(("traceparent", f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01"), ("x-request-id", "shipped")),
                timeout=10)
    await venus.stop()  # drains the shipping queue
    lines = [m for m in await topic_reader.read_all(logs_topic) if m.key == CALLER_TRACE_ID.encode()]
    assert any(m.value["event"] == "batch refused" and m.value["request_id"] == "shipped" for m in lines)
    assert all(m.value["trace_id"] == CALLER_TRACE_ID for m in lines)


@pytest.mark.usefixtures("json_logs")
async def test_ingestion_goes_on_when_the_logs_broker_is_away_and_drops_are_counted(
    start: StartVenus, category: str
) -> None:
    """With no logs broker and a tiny queue, uploads still succeed and the dropped lines are counted."""
    before = REGISTRY.get_sample_value("venus_log_records_dropped_total", {"reason": "queue_full"}) or 0.0
    venus = await start(log_shipping=True, logs_kafka_bootstrap=f"127.0.0.1:{free_port()}",
                        log_ship_queue_size=2)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        stub = pb_grpc.IngestServiceStub(channel)
        for _ in range(5):  # each refusal writes a line: more than the queue holds
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.UploadEvents(pb.UploadEventsRequest(), timeout=10)
        response = await stub.UploadEvents(_request(category), timeout=10)
    assert response.code == pb.RESULT_CODE_ALL_SUCCESS
    dropped = (REGISTRY.get_sample_value("venus_log_records_dropped_total", {"reason": "queue_full"}) or 0.0) - before
    assert dropped >= 3
