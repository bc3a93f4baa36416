"""Every way a batch can be refused is counted exactly once in /metrics, by its transport, and nothing else moves."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import pytest

from benchmarks.faults.rawh2 import RawH2
from tests.conftest import StartVenus
from tests.http_helpers import UPLOAD_PATH, RawConnection, post
from tests.metrics_helpers import Samples, moved, scrape, value
from venus_grpc import Venus
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_grpc.ingest.keys import key_entry, new_key
from venus_grpc.server.transport import free_port
from venus_grpc.tools.devbroker import EmbeddedBroker

UPLOAD = "/venus.v1.IngestService/UploadEvents"
STREAM = "/venus.v1.IngestService/StreamEvents"


def _request(category: str, events: int = 1) -> pb.UploadEventsRequest:
    return pb.UploadEventsRequest(meta=pb.BatchMeta(app_id="fates", category=category),
                                  events=[pb.Event(id=f"e{i}", payload=b'{"n": 1}') for i in range(events)])


async def _fates(venus: Venus, action: Callable[[grpc.aio.Channel], Awaitable[object]]) -> dict[str, object]:
    """What ``action`` moved in the fate counters: rejections by (status, reason), uploads by type, events."""
    before = await scrape(venus)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        await action(channel)
    after = await scrape(venus)
    return _moves(before, after)


def _moves(before: Samples, after: Samples, transport: str = "grpc") -> dict[str, object]:
    """What moved in the fate counters of ``transport``; a move of the other transport's is kept, to fail the test."""
    def key(labels: frozenset[tuple[str, str]], *names: str) -> object:
        found = dict(labels)
        named = found[names[0]] if len(names) == 1 else tuple(found[n] for n in names)
        return named if found["transport"] == transport else (named, found["transport"])

    rejected = moved(before, after, "venus_batch_rejections_total")
    rejections = {key(k, "status", "reason"): v for k, v in rejected.items()}
    uploads = {key(k, "type"): v for k, v in moved(before, after, "venus_uploads_total").items()}
    events = sum(moved(before, after, "venus_events_total").values())
    return {"rejections": rejections, "uploads": uploads, "events": events}


def _refused_once(status: str, reason: str, *, wrong_meta: bool = False) -> dict[str, object]:
    uploads = {"all_upload": 1.0} | ({"wrong_meta": 1.0} if wrong_meta else {})
    return {"rejections": {(status, reason): 1.0}, "uploads": uploads, "events": 0}


async def _refused(call: Awaitable[object], code: grpc.StatusCode) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() is code, caught.value.details()


async def test_a_missing_api_key_is_counted_once(start: StartVenus, tmp_path: Path, category: str) -> None:
    """A call without a key is one UNAUTHENTICATED rejection (and one auth failure), nothing else."""
    keys = tmp_path / "keys.toml"
    keys.write_text(key_entry("app", new_key(), ["fates"], ["*"]))
    venus = await start(api_keys_path=str(keys))
    before = await scrape(venus)
    moves = await _fates(venus, lambda ch: _refused(pb_grpc.IngestServiceStub(ch).UploadEvents(
        _request(category), timeout=5), grpc.StatusCode.UNAUTHENTICATED))
    assert moves == _refused_once("UNAUTHENTICATED", "key_missing")
    assert value(await scrape(venus), "venus_auth_failures_total", reason="missing", transport="grpc") - value(
        before, "venus_auth_failures_total", reason="missing", transport="grpc") == 1


async def test_a_batch_over_quota_is_counted_once(start: StartVenus, category: str) -> None:
    """The batch after the burst is one RESOURCE_EXHAUSTED rejection; its events count as throttled, not as events."""
    venus = await start(quota_events_per_s=1, quota_burst_s=1)
    stub_of = pb_grpc.IngestServiceStub

    async def twice(ch: grpc.aio.Channel) -> None:
        await stub_of(ch).UploadEvents(_request(category, events=5), timeout=5)  # takes the burst and more
        await _refused(stub_of(ch).UploadEvents(_request(category, events=3), timeout=5),
                       grpc.StatusCode.RESOURCE_EXHAUSTED)

    before = await scrape(venus)
    moves = await _fates(venus, twice)
    assert moves["rejections"] == {("RESOURCE_EXHAUSTED", "quota_exceeded"): 1.0}
    assert moves["uploads"] == {"all_upload": 2.0, "success_upload": 1.0}
    assert moves["events"] == 5
    after = await scrape(venus)
    assert value(after, "venus_throttled_events_total", app_id="fates", transport="grpc") - value(
        before, "venus_throttled_events_total", app_id="fates", transport="grpc") == 3


async def test_a_request_that_never_arrives_is_counted_once(start: StartVenus) -> None:
    """A call that sends headers and then nothing is one DEADLINE_EXCEEDED rejection after the read timeout."""
    venus = await start(request_read_timeout_s=1)

    async def stall(_: grpc.aio.Channel) -> None:
        conn = RawH2(venus.port)
        await conn.open()
        try:
            stream_id = conn.start_call()
            await conn.flush()
            assert await conn.wait_status(stream_id, timeout_s=10) == str(grpc.StatusCode.DEADLINE_EXCEEDED.value[0])
        finally:
            await conn.close()

    assert await _fates(venus, stall) == _refused_once("DEADLINE_EXCEEDED", "read_timeout")


async def test_a_malformed_unary_request_is_counted_once(venus: Venus) -> None:
    """Bytes that are not an UploadEventsRequest are one INVALID_ARGUMENT rejection, counted as wrong meta."""

    async def garbage(ch: grpc.aio.Channel) -> None:
        raw = ch.unary_unary(UPLOAD, request_serializer=None, response_deserializer=None)
        await _refused(raw(b"\xff\xff\xff\xff", timeout=5), grpc.StatusCode.INVALID_ARGUMENT)

    assert await _fates(venus, garbage) == _refused_once("INVALID_ARGUMENT", "malformed_request", wrong_meta=True)


async def test_a_malformed_stream_message_is_counted_once(venus: Venus) -> None:
    """A stream message that is not a StreamEventsRequest is rejected on the stream and counted once."""

    async def garbage(ch: grpc.aio.Channel) -> None:
        call = ch.stream_stream(STREAM, request_serializer=None, response_deserializer=None)()
        await call.write(b"\xff\xff\xff\xff")
        answer = pb.StreamEventsResponse.FromString(await call.read())
        await call.done_writing()
        assert answer.rejection.status_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert await call.code() is grpc.StatusCode.OK

    assert await _fates(venus, garbage) == _refused_once("INVALID_ARGUMENT", "malformed_request", wrong_meta=True)


async def test_a_batch_over_the_in_flight_limit_is_counted_once(start: StartVenus, category: str) -> None:
    """With the in-flight limit used up, the next batch is one RESOURCE_EXHAUSTED rejection; the first is answered."""
    venus = await start(max_events_per_batch=10, max_events_in_flight=10, kafka_linger_ms=1000)

    async def crowd(ch: grpc.aio.Channel) -> None:
        stub = pb_grpc.IngestServiceStub(ch)
        first = asyncio.ensure_future(stub.UploadEvents(_request(category, events=10), timeout=10))
        await _until(lambda: _in_flight(venus), 10)
        await _refused(stub.UploadEvents(_request(category, events=1), timeout=10), grpc.StatusCode.RESOURCE_EXHAUSTED)
        assert (await first).code == pb.RESULT_CODE_ALL_SUCCESS

    moves = await _fates(venus, crowd)
    assert moves["rejections"] == {("RESOURCE_EXHAUSTED", "overloaded"): 1.0}
    assert moves["uploads"] == {"all_upload": 2.0, "success_upload": 1.0}
    assert moves["events"] == 10


async def test_a_batch_during_drain_is_counted_once(venus: Venus, category: str) -> None:
    """Once shutdown began, a batch is one UNAVAILABLE rejection."""
    assert venus.admission is not None
    await venus.admission.drain(quiet_s=0, timeout_s=0)
    moves = await _fates(venus, lambda ch: _refused(pb_grpc.IngestServiceStub(ch).UploadEvents(
        _request(category), timeout=5), grpc.StatusCode.UNAVAILABLE))
    assert moves == _refused_once("UNAVAILABLE", "shutting_down")


async def test_a_batch_before_kafka_connects_is_counted_once(start: StartVenus, category: str) -> None:
    """With no broker to connect to, a batch is one UNAVAILABLE rejection."""
    venus = await start(wait_ready=False, kafka_bootstrap=f"127.0.0.1:{free_port()}")
    moves = await _fates(venus, lambda ch: _refused(pb_grpc.IngestServiceStub(ch).UploadEvents(
        _request(category), timeout=5), grpc.StatusCode.UNAVAILABLE))
    assert moves == _refused_once("UNAVAILABLE", "kafka_unavailable")


async def test_a_batch_kafka_acknowledged_none_of_is_counted_once(
    own_broker: EmbeddedBroker, start: StartVenus, category: str
) -> None:
    """When a frozen broker acknowledges no event, the batch is one UNAVAILABLE rejection, not also its events."""
    own_broker.start()
    venus = await start(kafka_bootstrap=own_broker.bootstrap)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        # The topic exists now, so only the freeze can fail the next batch.
        await pb_grpc.IngestServiceStub(channel).UploadEvents(_request(category), timeout=10)
    assert own_broker.pid is not None
    os.kill(own_broker.pid, signal.SIGSTOP)  # a real fault: the broker stops answering, connections stay open
    try:
        moves = await _fates(venus, lambda ch: _refused(pb_grpc.IngestServiceStub(ch).UploadEvents(
            _request(category, events=3), timeout=2), grpc.StatusCode.UNAVAILABLE))
    finally:
        os.kill(own_broker.pid, signal.SIGCONT)
    assert moves == _refused_once("UNAVAILABLE", "kafka_unavailable")


async def _refused_call(stub: pb_grpc.IngestServiceStub, category: str) -> None:
    await _refused(stub.UploadEvents(_request(category), timeout=10), grpc.StatusCode.RESOURCE_EXHAUSTED)


async def _refused_stream_batch(stub: pb_grpc.IngestServiceStub, category: str) -> None:
    call = stub.StreamEvents(timeout=10)
    await call.write(pb.StreamEventsRequest(sequence=7, batch=_request(category)))
    answer = await call.read()
    await call.done_writing()
    assert (answer.sequence, answer.rejection.status_code) == (7, grpc.StatusCode.RESOURCE_EXHAUSTED.value[0])


@pytest.mark.parametrize("refused", [pytest.param(_refused_call, id="unary"),
                                     pytest.param(_refused_stream_batch, id="stream-batch")])
async def test_a_batch_beyond_the_limit_of_calls_in_flight_is_counted_once(
    start: StartVenus, category: str, refused: Callable[[pb_grpc.IngestServiceStub, str], Awaitable[None]]
) -> None:
    """With the limit of calls in flight used up, the next call or stream batch is one RESOURCE_EXHAUSTED rejection."""
    venus = await start(max_concurrent_rpcs=2, overload_latency_target_s=0, kafka_linger_ms=1000)  # a limit of 1

    async def crowd(ch: grpc.aio.Channel) -> None:
        stub = pb_grpc.IngestServiceStub(ch)
        first = asyncio.ensure_future(stub.UploadEvents(_request(category), timeout=10))
        await _until(lambda: _in_flight(venus), 10)
        await refused(stub, category)
        assert (await first).code == pb.RESULT_CODE_ALL_SUCCESS

    moves = await _fates(venus, crowd)
    assert moves == {"rejections": {("RESOURCE_EXHAUSTED", "overloaded"): 1.0},
                     "uploads": {"all_upload": 2.0, "success_upload": 1.0}, "events": 1}


async def test_a_call_whose_deadline_is_nearer_than_calls_take_is_counted_once(
    start: StartVenus, category: str
) -> None:
    """Once calls take ~0.6 s, a call with 0.2 s left is one RESOURCE_EXHAUSTED rejection, not a late failure."""
    venus = await start(kafka_linger_ms=600)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        stub = pb_grpc.IngestServiceStub(channel)
        await asyncio.gather(*(stub.UploadEvents(_request(category), timeout=10) for _ in range(8)))
    moves = await _fates(venus, lambda ch: _refused(pb_grpc.IngestServiceStub(ch).UploadEvents(
        _request(category), timeout=0.2), grpc.StatusCode.RESOURCE_EXHAUSTED))
    assert moves == _refused_once("RESOURCE_EXHAUSTED", "deadline_unreachable")


async def _in_flight(venus: Venus) -> bool:
    return value(await scrape(venus), "venus_events_in_flight") > 0


async def _until(condition: Callable[[], Awaitable[bool]], within_s: float) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


# Over HTTP: the same refusals, each counted once with transport="http" and nothing moving for grpc.

async def _http_fates(venus: Venus, action: Callable[[], Awaitable[object]]) -> dict[str, object]:
    before = await scrape(venus)
    await action()
    return _moves(before, await scrape(venus), "http")


_HTTP_STATUS = {"invalid_argument": 400, "unauthenticated": 401, "resource_exhausted": 429, "unavailable": 503}


async def _http_refused(venus: Venus, body: bytes, code: str, headers: dict[str, str] | None = None) -> None:
    reply = await post(venus, body, headers=headers)
    assert (reply.status, reply.json()["code"]) == (_HTTP_STATUS[code], code), reply.body


@pytest.mark.parametrize(("headers", "reason", "label"), [
    pytest.param({}, "key_missing", "missing", id="missing"),
    pytest.param({"authorization": "Bearer vk_not-a-key"}, "key_unknown", "unknown", id="unknown"),
])
async def test_a_refused_api_key_over_http_is_counted_once(
    start: StartVenus, tmp_path: Path, category: str, headers: dict[str, str], reason: str, label: str
) -> None:
    """An HTTP call without a good key is one UNAUTHENTICATED rejection and one auth failure, transport http."""
    keys = tmp_path / "keys.toml"
    keys.write_text(key_entry("app", new_key(), ["fates"], ["*"]))
    venus = await start(http_enabled=True, api_keys_path=str(keys))
    before = await scrape(venus)
    moves = await _http_fates(venus, lambda: _http_refused(
        venus, _request(category).SerializeToString(), "unauthenticated", headers))
    assert moves == _refused_once("UNAUTHENTICATED", reason)
    assert value(await scrape(venus), "venus_auth_failures_total", reason=label, transport="http") - value(
        before, "venus_auth_failures_total", reason=label, transport="http") == 1


async def test_a_batch_over_quota_over_http_is_counted_once(start: StartVenus, category: str) -> None:
    """Past the burst, an HTTP batch is one RESOURCE_EXHAUSTED rejection and its events count as throttled; only
    the batch answered before it is timed in venus_batch_seconds, as http."""
    venus = await start(http_enabled=True, quota_events_per_s=1, quota_burst_s=1)

    async def twice() -> None:
        assert (await post(venus, _request(category, events=5).SerializeToString())).status == 200
        await _http_refused(venus, _request(category, events=3).SerializeToString(), "resource_exhausted")

    before = await scrape(venus)
    moves = await _http_fates(venus, twice)
    assert moves == {"rejections": {("RESOURCE_EXHAUSTED", "quota_exceeded"): 1.0},
                     "uploads": {"all_upload": 2.0, "success_upload": 1.0}, "events": 5}
    after = await scrape(venus)
    assert value(after, "venus_throttled_events_total", app_id="fates", transport="http") - value(
        before, "venus_throttled_events_total", app_id="fates", transport="http") == 3
    timed = {t: value(after, "venus_batch_seconds_count", transport=t) - value(
        before, "venus_batch_seconds_count", transport=t) for t in ("http", "grpc")}
    assert timed == {"http": 1, "grpc": 0}  # the answered batch, under its transport; not the refused one


async def test_a_batch_over_the_in_flight_limit_over_http_is_counted_once(start: StartVenus, category: str) -> None:
    """With the in-flight limit used up by one HTTP batch, the next is one RESOURCE_EXHAUSTED rejection."""
    venus = await start(http_enabled=True, max_events_per_batch=10, max_events_in_flight=10, kafka_linger_ms=1000)

    async def crowd() -> None:
        first = asyncio.ensure_future(post(venus, _request(category, events=10).SerializeToString()))
        await _until(lambda: _in_flight(venus), 10)
        await _http_refused(venus, _request(category).SerializeToString(), "resource_exhausted")
        assert pb.UploadEventsResponse.FromString((await first).body).code == pb.RESULT_CODE_ALL_SUCCESS

    moves = await _http_fates(venus, crowd)
    assert moves == {"rejections": {("RESOURCE_EXHAUSTED", "overloaded"): 1.0},
                     "uploads": {"all_upload": 2.0, "success_upload": 1.0}, "events": 10}


async def test_a_call_beyond_the_limit_of_calls_in_flight_over_http_is_counted_once(
    start: StartVenus, category: str
) -> None:
    """With the limit of calls in flight used up by one HTTP call, the next is one RESOURCE_EXHAUSTED rejection."""
    venus = await start(http_enabled=True, max_concurrent_rpcs=2, overload_latency_target_s=0, kafka_linger_ms=1000)

    async def crowd() -> None:
        first = asyncio.ensure_future(post(venus, _request(category).SerializeToString()))
        await _until(lambda: _in_flight(venus), 10)
        await _http_refused(venus, _request(category).SerializeToString(), "resource_exhausted")
        assert pb.UploadEventsResponse.FromString((await first).body).code == pb.RESULT_CODE_ALL_SUCCESS

    moves = await _http_fates(venus, crowd)
    assert moves == {"rejections": {("RESOURCE_EXHAUSTED", "overloaded"): 1.0},
                     "uploads": {"all_upload": 2.0, "success_upload": 1.0}, "events": 1}


async def test_a_body_that_never_arrives_over_http_is_counted_once(start: StartVenus) -> None:
    """An HTTP call that sends headers and then too little body is one DEADLINE_EXCEEDED rejection."""
    venus = await start(http_enabled=True, request_read_timeout_s=1)

    async def stall() -> None:
        raw = await RawConnection.open(venus)
        await raw.send(f"POST {UPLOAD_PATH} HTTP/1.1\r\nhost: v\r\ncontent-type: application/proto\r\n"
                       "content-length: 50\r\n\r\n".encode())
        assert (await raw.answer())[0] == 504
        await raw.close()

    assert await _http_fates(venus, stall) == _refused_once("DEADLINE_EXCEEDED", "read_timeout")


async def test_a_body_over_the_read_budget_over_http_is_counted_once(start: StartVenus) -> None:
    """A body that would take the bodies being read past max_bytes_in_flight is one RESOURCE_EXHAUSTED rejection."""
    venus = await start(http_enabled=True, max_message_bytes=200_000, max_bytes_in_flight=300_000)

    async def crowd() -> None:
        held = await RawConnection.open(venus)
        await held.send(f"POST {UPLOAD_PATH} HTTP/1.1\r\nhost: v\r\ncontent-type: application/proto\r\n"
                        "content-length: 200000\r\n\r\n".encode())
        await _http_refused(venus, b"\0" * 150_000, "resource_exhausted")
        await held.close()

    moves = await _http_fates(venus, crowd)
    assert moves == _refused_once("RESOURCE_EXHAUSTED", "overloaded")


async def test_a_malformed_body_over_http_is_counted_once(venus_http: Venus) -> None:
    """A body that is not an UploadEventsRequest is one INVALID_ARGUMENT rejection, counted as wrong meta."""
    moves = await _http_fates(venus_http, lambda: _http_refused(venus_http, b"\xff\xff\xff\xff", "invalid_argument"))
    assert moves == _refused_once("INVALID_ARGUMENT", "malformed_request", wrong_meta=True)


async def test_a_batch_during_drain_over_http_is_counted_once(venus_http: Venus, category: str) -> None:
    """Once shutdown began, an HTTP batch is one UNAVAILABLE rejection."""
    assert venus_http.admission is not None
    await venus_http.admission.drain(quiet_s=0, timeout_s=0)
    moves = await _http_fates(venus_http, lambda: _http_refused(
        venus_http, _request(category).SerializeToString(), "unavailable"))
    assert moves == _refused_once("UNAVAILABLE", "shutting_down")


@pytest.fixture
async def venus_http(start: StartVenus) -> Venus:
    """A running Venus with its HTTP port on."""
    return await start(http_enabled=True)
