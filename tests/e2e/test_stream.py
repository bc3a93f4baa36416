"""StreamEvents: many batches on one stream, each answered by sequence, bad batches refused alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import orjson
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import StartVenus
from tests.kafka_helpers import TopicReader
from tests.metrics_helpers import scrape, value
from venus_grpc import Venus
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc


def _item(sequence: int, category: str, ids: list[str]) -> pb.StreamEventsRequest:
    return pb.StreamEventsRequest(sequence=sequence, batch=pb.UploadEventsRequest(
        meta=pb.BatchMeta(app_id="app", category=category),
        events=[pb.Event(id=i, payload=orjson.dumps({"i": i})) for i in ids]))


async def _requests(items: list[pb.StreamEventsRequest]) -> AsyncIterator[pb.StreamEventsRequest]:
    for item in items:
        yield item


async def test_every_batch_is_answered_once_by_its_sequence(
    venus: Venus, category: str, topic_reader: TopicReader
) -> None:
    """Fifty batches on one stream: fifty answers matched by sequence, every event in Kafka once."""
    items = [_item(n, category, [f"b{n}-e{k}" for k in range(4)]) for n in range(1, 51)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        call = pb_grpc.IngestServiceStub(channel).StreamEvents(_requests(items), timeout=30)
        answers = [answer async for answer in call]
        assert (await call.code()) is grpc.StatusCode.OK
    assert sorted(a.sequence for a in answers) == list(range(1, 51))
    for answer in answers:
        assert answer.WhichOneof("outcome") == "response"
        assert answer.response.code == pb.RESULT_CODE_ALL_SUCCESS
        assert [r.id for r in answer.response.results] == [f"b{answer.sequence}-e{k}" for k in range(4)]
        assert answer.response.request_id.endswith(f".{answer.sequence}")
    published = [m.value["event"]["id"] for m in await topic_reader.read_all(f"to_analyzer__0.{category}")]
    assert sorted(published) == sorted(f"b{n}-e{k}" for n in range(1, 51) for k in range(4))


async def test_a_bad_batch_is_rejected_and_the_stream_goes_on(
    venus: Venus, category: str, topic_reader: TopicReader
) -> None:
    """A batch without meta gets a rejection with its field violation; the batches around it succeed."""
    bad = pb.StreamEventsRequest(sequence=2, batch=pb.UploadEventsRequest(events=[pb.Event(id="x", payload=b"{}")]))
    items = [_item(1, category, ["one"]), bad, _item(3, category, ["three"])]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        answers = {a.sequence: a async for a in pb_grpc.IngestServiceStub(channel).StreamEvents(
            _requests(items), timeout=30)}
    rejection = answers[2].rejection
    assert rejection.status_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert [v.field for v in rejection.field_violations] == ["meta"]
    assert answers[1].response.code == answers[3].response.code == pb.RESULT_CODE_ALL_SUCCESS
    published = {m.value["event"]["id"] for m in await topic_reader.read_all(f"to_analyzer__0.{category}")}
    assert published == {"one", "three"}


async def test_batches_in_flight_per_stream_are_bounded(
    start: StartVenus, category: str, spans: InMemorySpanExporter
) -> None:
    """With a window of 2 and slow publishing, no more than 2 batches of a stream are processed at once."""
    venus = await start(max_batches_in_flight_per_stream=2, kafka_linger_ms=300)
    items = [_item(n, category, [f"e{n}"]) for n in range(1, 7)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        answers = [a async for a in pb_grpc.IngestServiceStub(channel).StreamEvents(_requests(items), timeout=30)]
    assert sorted(a.sequence for a in answers) == [1, 2, 3, 4, 5, 6]
    batches = [s for s in spans.get_finished_spans() if s.name == "venus.stream.batch"]
    assert len(batches) == 6
    edges = sorted([(s.start_time, 1) for s in batches] + [(s.end_time, -1) for s in batches])
    most, now = 0, 0
    for _, step in edges:
        now += step
        most = max(most, now)
    assert most == 2, f"{most} batches were processed at once"


@pytest.mark.parametrize("payload", [b"\xff\xff\xff"])
async def test_a_malformed_stream_message_is_rejected_not_fatal(venus: Venus, payload: bytes) -> None:
    """Bytes that are not a StreamEventsRequest get an INVALID_ARGUMENT rejection, not INTERNAL."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        raw = channel.stream_stream("/venus.v1.IngestService/StreamEvents")

        async def one() -> AsyncIterator[bytes]:
            yield payload

        answers = [pb.StreamEventsResponse.FromString(a) async for a in raw(one(), timeout=10)]
    assert len(answers) == 1
    assert answers[0].rejection.status_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


async def test_shutdown_answers_taken_batches_then_ends_the_stream_unavailable(
    start: StartVenus, category: str, topic_reader: TopicReader
) -> None:
    """On shutdown an open stream gets answers for the batches Venus took, then UNAVAILABLE, quickly."""
    venus = await start(kafka_linger_ms=200, shutdown_grace_s=10)
    keep_open = asyncio.Event()

    async def requests() -> AsyncIterator[pb.StreamEventsRequest]:
        for n in range(1, 4):
            yield _item(n, category, [f"e{n}"])
        await keep_open.wait()  # a long-lived stream: the client has nothing more to send yet

    answers: list[pb.StreamEventsResponse] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        call = pb_grpc.IngestServiceStub(channel).StreamEvents(requests(), timeout=30)
        answers.append(await call.read())
        stopping = asyncio.create_task(venus.stop())
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            while (answer := await call.read()) is not grpc.aio.EOF:
                answers.append(answer)
        await asyncio.wait_for(stopping, timeout=5)
        keep_open.set()
    assert ended.value.code() is grpc.StatusCode.UNAVAILABLE
    assert sorted(a.sequence for a in answers) == [1, 2, 3]
    acked = {r.id for a in answers for r in a.response.results if r.code == pb.EVENT_CODE_OK}
    published = {m.value["event"]["id"] for m in await topic_reader.read_all(f"to_analyzer__0.{category}")}
    assert acked <= published


async def test_a_client_that_never_reads_answers_is_held_back_by_flow_control(
    start: StartVenus, category: str
) -> None:
    """Batches whose answers are never read stop being taken once a window of answers waits: nothing piles up."""
    venus = await start(max_batches_in_flight_per_stream=2)
    events = [f"e{k}-{'x' * 90}" for k in range(500)]  # ids echoed back: about 60 KB of answer per batch
    before = await scrape(venus)
    written = 0
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        call = pb_grpc.IngestServiceStub(channel).StreamEvents(timeout=60)
        for sequence in range(1, 301):  # 300 batches, 18 MB of answers if all were taken
            try:
                await asyncio.wait_for(call.write(_item(sequence, category, events)), timeout=3)
            except TimeoutError:
                break  # the write waits: HTTP/2 flow control holds the client back
            written += 1
        taken = value(await scrape(venus), "venus_uploads_total", type="all_upload", transport="grpc") - value(
            before, "venus_uploads_total", type="all_upload", transport="grpc")
        call.cancel()
    assert written < 300, "the client was never held back"
    # What fits in HTTP/2 buffers (gRPC grows its windows to a few MB; seen: 61 answers of ~60 KB) plus the
    # batches in flight; without the bound Venus took all 300 and held their 18 MB of answers.
    assert taken <= 100, f"Venus took {taken:.0f} batches whose answers nobody read"
