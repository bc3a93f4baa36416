"""The HTTP port answers UploadEvents as gRPC does: same results, same Kafka messages, same errors, same traces."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import grpc
import pytest
from connectrpc.client import ConnectClient
from connectrpc.code import Code
from connectrpc.codec import Codec
from connectrpc.compat import google_protobuf_binary_codec, google_protobuf_json_codec
from connectrpc.errors import ConnectError
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.protocol import ProtocolType
from google.protobuf import json_format
from google.rpc import error_details_pb2
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.conftest import StartVenus
from tests.e2e.test_bad_input import META_CASES
from tests.http_helpers import (
    GRPC_WEB,
    JSON,
    UPLOAD_PATH,
    grpc_status_details,
    grpc_web_answer,
    grpc_web_frame,
    post,
)
from tests.kafka_helpers import TopicReader
from tests.process_helpers import run_command
from tests.readme_helpers import ROOT
from venus_grpc import Venus
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_grpc.ingest.keys import key_entry, new_key

CALLER_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"
UPLOAD = MethodInfo(name="UploadEvents", service_name="venus.v1.IngestService", input=pb.UploadEventsRequest,
                    output=pb.UploadEventsResponse, idempotency_level=IdempotencyLevel.UNKNOWN,
                    stream_type=StreamType.UNARY)
CLIENTS = [
    pytest.param(ProtocolType.CONNECT, google_protobuf_json_codec(), id="connect-json"),
    pytest.param(ProtocolType.CONNECT, google_protobuf_binary_codec(), id="connect-proto"),
    pytest.param(ProtocolType.GRPC_WEB, google_protobuf_binary_codec(), id="grpc-web"),
]


def _event(event_id: str, **fields: Any) -> pb.Event:
    return pb.Event(**({"id": event_id, "ip": "81.2.69.142", "payload": b'{"name": "checkout"}'} | fields))


def _request(category: str, events: list[pb.Event] | None = None) -> pb.UploadEventsRequest:
    return pb.UploadEventsRequest(
        meta=pb.BatchMeta(app_id="com.example.web", category=category, platform=pb.PLATFORM_IOS),
        events=[_event("good-1"), _event("bad", payload=b"not json"), _event("good-2")] if events is None else events)


def _topic(category: str) -> str:
    return f"to_analyzer__0.{category}"


def _without_ids(response: pb.UploadEventsResponse) -> list[tuple[str, int, str, bool]]:
    return [(r.id, r.code, r.message, r.retryable) for r in response.results]


@pytest.fixture
async def web(start: StartVenus) -> Venus:
    """A Venus with its HTTP port on."""
    return await start(http_enabled=True)


async def _grpc_upload(venus: Venus, request: pb.UploadEventsRequest, **kwargs: Any) -> Any:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        return await pb_grpc.IngestServiceStub(channel).UploadEvents(request, timeout=10, **kwargs)


async def _grpc_error(venus: Venus, request: pb.UploadEventsRequest) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _grpc_upload(venus, request)
    return caught.value


async def test_a_json_upload_with_curl_answers_as_grpc_does_and_publishes_the_same(
    web: Venus, category: str, topic_reader: TopicReader
) -> None:
    """curl's JSON batch gets gRPC's per-event results for the same batch, and the same events reach Kafka."""
    by_grpc = await _grpc_upload(web, _request(category))
    body = json_format.MessageToJson(_request(category + "_HTTP"), preserving_proto_field_name=True)
    done = await run_command(["curl", "-s", "-H", f"content-type: {JSON}", "-d", body,
                              f"http://127.0.0.1:{web.http_port}{UPLOAD_PATH}"], timeout_s=30)
    by_http = json_format.Parse(done.stdout, pb.UploadEventsResponse())
    assert by_http.code == by_grpc.code == pb.RESULT_CODE_PARTIAL_SUCCESS
    assert _without_ids(by_http) == _without_ids(by_grpc)
    assert len(by_http.results) == 3 and by_http.request_id
    ok = [r.backend_id for r in by_http.results if r.code == pb.EVENT_CODE_OK]
    published = await topic_reader.read_all(_topic(category + "_HTTP"))
    assert sorted(m.value["backend_id"] for m in published) == sorted(ok)
    via_grpc = await topic_reader.read_all(_topic(category))
    assert sorted(m.value["event"]["id"] for m in published) == sorted(m.value["event"]["id"] for m in via_grpc)


async def test_a_binary_upload_with_curl_gets_one_result_per_event(
    web: Venus, category: str, topic_reader: TopicReader, tmp_path: Any
) -> None:
    """curl posting the serialized request as application/proto gets a serialized response, results in order."""
    batch = tmp_path / "batch.bin"
    batch.write_bytes(_request(category).SerializeToString())
    answer = tmp_path / "answer.bin"
    done = await run_command(["curl", "-s", "-o", str(answer), "-w", "%{http_code}", "-H",
                              "content-type: application/proto", "--data-binary", f"@{batch}",
                              f"http://127.0.0.1:{web.http_port}{UPLOAD_PATH}"], timeout_s=30)
    assert done.stdout == "200"
    response = pb.UploadEventsResponse.FromString(answer.read_bytes())
    assert [(r.id, r.code) for r in response.results] == [
        ("good-1", pb.EVENT_CODE_OK), ("bad", pb.EVENT_CODE_VALIDATION_ERROR), ("good-2", pb.EVENT_CODE_OK)]
    published = await topic_reader.read_all(_topic(category))
    assert sorted(m.value["event"]["id"] for m in published) == ["good-1", "good-2"]


async def test_a_grpc_web_upload_gets_its_answer_and_an_ok_status(web: Venus, category: str) -> None:
    """A hand-built gRPC-Web frame is answered with one response frame and grpc-status 0 in the trailer frame."""
    reply = await post(web, grpc_web_frame(_request(category)), GRPC_WEB, headers={"x-grpc-web": "1"})
    assert reply.status == 200
    [message], trailers = grpc_web_answer(reply.body)
    assert trailers["grpc-status"] == "0"
    response = pb.UploadEventsResponse.FromString(message)
    assert [r.id for r in response.results] == ["good-1", "bad", "good-2"]
    assert response.results[0].code == pb.EVENT_CODE_OK


@pytest.mark.parametrize(("protocol", "codec"), CLIENTS)
async def test_a_connect_client_library_uploads_and_reads_errors(
    web: Venus, category: str, protocol: ProtocolType, codec: Codec[Any, Any]
) -> None:
    """connectrpc's own client (gzip-compressed requests) gets the answer, and errors with code and BadRequest."""
    async with ConnectClient(f"http://127.0.0.1:{web.http_port}", protocol=protocol, codec=codec) as client:
        response = await client.execute_unary(request=_request(category), method=UPLOAD,
                                              headers={"x-request-id": "from-a-client"})
        with pytest.raises(ConnectError) as refused:
            await client.execute_unary(request=_request(category, []), method=UPLOAD)
    assert [r.id for r in response.results] == ["good-1", "bad", "good-2"]
    assert response.request_id == "from-a-client"
    assert refused.value.code is Code.INVALID_ARGUMENT and "no events" in refused.value.message
    assert [d.type_name for d in refused.value.details] == ["google.rpc.BadRequest"]
    violations = error_details_pb2.BadRequest.FromString(refused.value.details[0].message_bytes).field_violations
    assert [v.field for v in violations] == ["events"]


async def test_a_client_deadline_too_short_to_publish_sends_nothing_to_kafka(
    web: Venus, category: str, topic_reader: TopicReader
) -> None:
    """connect-timeout-ms is the call's deadline: one too short to wait for Kafka fails and publishes nothing."""
    async with ConnectClient(f"http://127.0.0.1:{web.http_port}", codec=google_protobuf_binary_codec()) as client:
        await client.execute_unary(request=_request(category, [_event("on-time")]), method=UPLOAD, timeout_ms=10_000)
        with pytest.raises(ConnectError) as late:
            await client.execute_unary(request=_request(category, [_event("late")]), method=UPLOAD, timeout_ms=45)
    assert late.value.code in (Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED)
    assert [m.value["event"]["id"] for m in await topic_reader.read_all(_topic(category))] == ["on-time"]


@pytest.mark.parametrize("header", ["authorization", "x-api-key"])
async def test_an_api_key_is_taken_from_either_header_and_checked_against_its_grant(
    start: StartVenus, tmp_path: Any, category: str, header: str
) -> None:
    """With keys on, a key as Bearer or x-api-key uploads for its app; for another app it is permission_denied."""
    key = new_key()
    keys = tmp_path / "keys.toml"
    keys.write_text(key_entry("web", key, ["com.example.web"], ["*"]))
    venus = await start(http_enabled=True, api_keys_path=str(keys))
    sent = {header: f"Bearer {key}" if header == "authorization" else key}
    accepted = await post(venus, _request(category).SerializeToString(), headers=sent)
    other_app = _request(category)
    other_app.meta.app_id = "com.example.other"
    refused = await post(venus, other_app.SerializeToString(), headers=sent)
    assert accepted.status == 200
    assert (refused.status, refused.json()["code"]) == (403, "permission_denied")


def _bad(category: str, meta: dict[str, Any] | None) -> pb.UploadEventsRequest:
    request = _request(category)
    if meta is None:
        request.ClearField("meta")
    for name, value in (meta or {}).items():
        setattr(request.meta, name, value)
    return request


@pytest.mark.parametrize(("meta", "fields", "text"), [*META_CASES])
async def test_bad_meta_is_the_same_error_as_over_grpc(
    web: Venus, category: str, meta: dict[str, Any] | None, fields: set[str], text: str
) -> None:
    """Each bad-meta case of test_bad_input gets gRPC's code, message and BadRequest fields, as a Connect error."""
    err = await _grpc_error(web, _bad(category, meta))
    reply = await post(web, _bad(category, meta).SerializeToString())
    assert reply.status == 400
    assert reply.json()["code"] == err.code().name.lower() == "invalid_argument"
    assert reply.json()["message"] == err.details() and text in reply.json()["message"]
    [bad_request] = reply.details()
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert {v.field for v in bad_request.field_violations} == fields


OTHER_CASES = [
    pytest.param([], "invalid_argument", "no events", id="no-events"),
    pytest.param([_event(f"e{i}") for i in range(1001)], "invalid_argument", "limit is 1000", id="too-many-events"),
]


@pytest.mark.parametrize(("events", "code", "text"), OTHER_CASES)
async def test_other_request_errors_are_the_same_as_over_grpc(
    web: Venus, category: str, events: list[pb.Event], code: str, text: str
) -> None:
    """An empty or oversized batch gets gRPC's code and message."""
    err = await _grpc_error(web, _request(category, events))
    reply = await post(web, _request(category, events).SerializeToString())
    assert reply.json()["code"] == err.code().name.lower() == code
    assert reply.json()["message"] == err.details() and text in reply.json()["message"]


async def test_bytes_that_are_not_a_request_are_invalid_argument(web: Venus) -> None:
    """Undecodable protobuf, and JSON with a misspelt field or enum name, are invalid_argument naming the problem."""
    garbage = await post(web, b"\xff\xff\xff\xff")
    typo = await post(web, b'{"meta": {"app_id": "a", "category": "C"}, "evnts": []}', JSON)
    enum = await post(web, b'{"meta": {"app_id": "a", "category": "C", "platform": "PLATFORM_NOPE"}}', JSON)
    assert (garbage.status, garbage.json()["code"]) == (400, "invalid_argument")
    assert "not a valid venus.v1.UploadEventsRequest" in garbage.json()["message"]
    for reply, named in ((typo, "evnts"), (enum, "PLATFORM_NOPE")):
        assert (reply.status, reply.json()["code"]) == (400, "invalid_argument")
        assert named in reply.json()["message"]


async def test_a_grpc_web_error_carries_the_grpc_status_and_details(web: Venus, category: str) -> None:
    """A gRPC-Web call with bad meta gets grpc-status 3 and the BadRequest in grpc-status-details-bin."""
    reply = await post(web, grpc_web_frame(_bad(category, {"app_id": ""})), GRPC_WEB)
    headers = reply.headers | grpc_web_answer(reply.body)[1]
    assert headers["grpc-status"] == str(grpc.StatusCode.INVALID_ARGUMENT.value[0])
    [bad_request] = grpc_status_details(headers["grpc-status-details-bin"])
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert [v.field for v in bad_request.field_violations] == ["meta.app_id"]


async def test_over_quota_is_resource_exhausted_with_quota_failure_retry_info_and_retry_after(
    start: StartVenus, category: str
) -> None:
    """The batch past an app's quota is 429 resource_exhausted, with QuotaFailure, RetryInfo and Retry-After."""
    venus = await start(http_enabled=True, quota_events_per_s=1, quota_burst_s=1)
    assert (await post(venus, _request(category, [_event("a"), _event("b")]).SerializeToString())).status == 200
    reply = await post(venus, _request(category, [_event("c")]).SerializeToString())
    assert (reply.status, reply.json()["code"]) == (429, "resource_exhausted")
    kinds = {type(d) for d in reply.details()}
    assert kinds == {error_details_pb2.QuotaFailure, error_details_pb2.RetryInfo}
    assert int(reply.headers["retry-after"]) >= 1


async def test_an_http_callers_trace_continues_into_kafka(
    web: Venus, spans: InMemorySpanExporter, category: str, topic_reader: TopicReader
) -> None:
    """The caller's traceparent header is the parent of a SERVER span; Kafka's traceparent is the publish span's."""
    traceparent = f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01"
    reply = await post(web, _request(category, [_event("traced")]).SerializeToString(),
                       headers={"traceparent": traceparent, "baggage": "tenant=acme"})
    assert reply.status == 200
    [message] = await topic_reader.read_all(_topic(category))
    _, trace_id, span_id, _ = message.headers["traceparent"].split("-")
    finished = {s.name: s for s in spans.get_finished_spans()}
    server, publish = finished[UPLOAD_PATH], finished["venus.publish"]
    assert server.kind is SpanKind.SERVER and server.parent is not None
    assert f"{server.parent.span_id:016x}" == CALLER_SPAN_ID
    assert trace_id == CALLER_TRACE_ID == f"{publish.context.trace_id:032x}"
    assert span_id == f"{publish.context.span_id:016x}"
    assert publish.parent is not None and publish.parent.span_id in {s.context.span_id for s in finished.values()}
    assert "tenant=acme" in message.headers["baggage"]


async def test_the_request_id_header_comes_back_and_reaches_kafka(
    web: Venus, category: str, topic_reader: TopicReader
) -> None:
    """x-request-id is answered as x-request-id and request_id, and travels in the Kafka baggage header."""
    reply = await post(web, _request(category, [_event("one")]).SerializeToString(),
                       headers={"x-request-id": "req-http-7"})
    assert reply.headers["x-request-id"] == "req-http-7"
    assert pb.UploadEventsResponse.FromString(reply.body).request_id == "req-http-7"
    [message] = await topic_reader.read_all(_topic(category))
    assert "request_id=req-http-7" in message.headers["baggage"]


async def test_a_trusted_proxys_forwarded_address_is_geolocated(
    start: StartVenus, category: str, topic_reader: TopicReader
) -> None:
    """Behind a trusted proxy, an event without ip is geolocated from x-forwarded-for, as over gRPC."""
    venus = await start(http_enabled=True, trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))
    request = _request(category, [pb.Event(id="no-ip", payload=b"{}")])
    reply = await post(venus, request.SerializeToString(), headers={"x-forwarded-for": "81.2.69.142"})
    assert reply.status == 200
    [message] = await topic_reader.read_all(_topic(category))
    assert message.value["geo"]["country"] == "United Kingdom"


async def test_a_cors_preflight_from_an_allowed_origin_is_allowed(start: StartVenus) -> None:
    """A page of a listed origin may POST with Connect's and Venus's headers, and read x-request-id."""
    venus = await start(http_enabled=True, http_cors_origins=frozenset({"https://app.example.com"}))
    reply = await post(venus, b"", method="OPTIONS", headers={
        "origin": "https://app.example.com", "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,connect-protocol-version,x-api-key,traceparent"})
    assert reply.status == 204
    assert reply.headers["access-control-allow-origin"] == "https://app.example.com"
    assert reply.headers["access-control-allow-methods"] == "POST"
    allowed = {h.strip() for h in reply.headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "connect-protocol-version", "x-api-key", "traceparent"} <= allowed
    assert "x-request-id" in reply.headers["access-control-expose-headers"]


async def test_a_cors_preflight_or_call_from_another_origin_is_refused(start: StartVenus, category: str) -> None:
    """A page of an origin not listed gets 403 and no CORS headers, for its preflight and for a call."""
    venus = await start(http_enabled=True, http_cors_origins=frozenset({"https://app.example.com"}))
    preflight = await post(venus, b"", method="OPTIONS", headers={
        "origin": "https://evil.example.net", "access-control-request-method": "POST"})
    call = await post(venus, _request(category).SerializeToString(), headers={"origin": "https://evil.example.net"})
    for reply in (preflight, call):
        assert reply.status == 403
        assert "access-control-allow-origin" not in reply.headers


async def test_other_paths_and_methods_are_refused(web: Venus) -> None:
    """Another path is 404, and a GET of the method 405 naming POST: only POST uploads."""
    missing = await post(web, b"", path="/venus.v1.Nope/UploadEvents")
    get = await post(web, b"", method="GET")
    assert (missing.status, missing.json()["code"]) == (404, "not_found")
    assert (get.status, get.headers["allow"]) == (405, "POST, OPTIONS")


async def test_grpc_itself_is_sent_to_the_grpc_port(web: Venus, category: str) -> None:
    """A gRPC (not gRPC-Web) request is refused with 415 saying to use the gRPC port."""
    reply = await post(web, grpc_web_frame(_request(category)), "application/grpc")
    assert reply.status == 415
    assert "gRPC port" in reply.json()["message"]


async def test_healthz_answers_and_readyz_waits_for_kafka(start: StartVenus) -> None:
    """Before Kafka connects /healthz is 200 and /readyz 503; once connected /readyz is 200."""
    waiting = await start(http_enabled=True, wait_ready=False, kafka_bootstrap="127.0.0.1:9")
    ready = await start(http_enabled=True)
    assert (await post(waiting, b"", method="GET", path="/healthz")).status == 200
    not_ready = await post(waiting, b"", method="GET", path="/readyz")
    assert (not_ready.status, not_ready.json()) == (503, {"status": "NOT_SERVING"})
    assert (await post(ready, b"", method="GET", path="/readyz")).json() == {"status": "SERVING"}


async def test_a_call_in_flight_at_shutdown_is_answered_and_readyz_turns_503(
    start: StartVenus, spans: InMemorySpanExporter, category: str, topic_reader: TopicReader
) -> None:
    """SIGTERM's shutdown lets an HTTP upload in flight finish (and publish) while /readyz already says 503."""
    venus = await start(http_enabled=True, kafka_linger_ms=1000)
    upload = asyncio.ensure_future(post(venus, _request(category, [_event("in-flight")]).SerializeToString()))
    async with asyncio.timeout(10):  # the upload is in flight once validated: it now waits for its linger
        while not any(s.name == "venus.validate" for s in spans.get_finished_spans()):
            await asyncio.sleep(0.01)
    stopping = asyncio.ensure_future(venus.stop())
    await asyncio.sleep(0)
    readyz = await post(venus, b"", method="GET", path="/readyz")
    reply = await upload
    await stopping
    assert readyz.status == 503
    assert pb.UploadEventsResponse.FromString(reply.body).code == pb.RESULT_CODE_ALL_SUCCESS
    assert [m.value["event"]["id"] for m in await topic_reader.read_all(_topic(category))] == ["in-flight"]


async def test_the_error_example_of_docs_http_is_what_venus_answers(web: Venus) -> None:
    """docs/http.md's Connect error is, byte for byte, the answer to the batch it names."""
    text = (ROOT / "docs" / "http.md").read_text()
    example = text.split("```json\n", 1)[1].split("\n```", 1)[0]
    reply = await post(web, b'{"meta": {"app_id": "demo-app", "category": "PERF_CRASH"}, "events": []}', JSON)
    assert reply.status == 400
    assert reply.body.decode() == example
