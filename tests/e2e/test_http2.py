"""HTTP/2 on the HTTP port (``http2_enabled``): h2c and h2 over TLS answer as HTTP/1.1 does, within its limits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import trustme
from google.protobuf import json_format
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import StartVenus
from tests.e2e.test_http_limits import _write_pair
from tests.e2e.test_workers import _Served, _wait_for
from tests.http_helpers import JSON, PROTO, UPLOAD_PATH, H2Client, RawConnection, post
from tests.kafka_helpers import TopicReader
from tests.process_helpers import run_command
from venus_grpc import Venus
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc.server.transport import free_port
from venus_grpc.tools.devbroker import EmbeddedBroker
from venus_grpc.tools.process import running_venus

H2C = "--http2-prior-knowledge"
RESULTS = [("good-1", pb.EVENT_CODE_OK), ("bad", pb.EVENT_CODE_VALIDATION_ERROR), ("good-2", pb.EVENT_CODE_OK)]


def _request(category: str) -> pb.UploadEventsRequest:
    events = [pb.Event(id="good-1", payload=b'{"n": 1}'), pb.Event(id="bad", payload=b"not json"),
              pb.Event(id="good-2", payload=b'{"n": 2}')]
    return pb.UploadEventsRequest(meta=pb.BatchMeta(app_id="com.example.h2", category=category), events=events)


@pytest.fixture
async def h2(start: StartVenus) -> Venus:
    """A Venus with its HTTP port on, HTTP/2 included."""
    return await start(http_enabled=True, http2_enabled=True)


async def _curl(url: str, *args: str, body: Path | None = None, out: Path | None = None) -> tuple[str, int, str]:
    """curl ``url`` (a POST of ``body`` when given): the HTTP version used, the status, and the body."""
    sent = ("--data-binary", f"@{body}") if body else ()
    written = ("-o", str(out)) if out else ()
    done = await run_command(["curl", "-s", *args, *sent, *written, "-w", "\n%{http_version} %{http_code}", url],
                             timeout_s=30)
    answer, _, tail = done.stdout.rpartition("\n")
    version, code = tail.split()
    return version, int(code), answer


def _json_batch(category: str, tmp_path: Path) -> Path:
    path = tmp_path / "batch.json"
    path.write_text(json_format.MessageToJson(_request(category), preserving_proto_field_name=True))
    return path


async def _published(topic_reader: TopicReader, category: str) -> list[str]:
    return sorted(m.value["event"]["id"] for m in await topic_reader.read_all(f"to_analyzer__0.{category}"))


async def test_curl_over_h2c_uploads_json_and_the_events_reach_kafka(
    h2: Venus, category: str, topic_reader: TopicReader, tmp_path: Path
) -> None:
    """curl with prior knowledge speaks HTTP/2 in clear, gets one result per event, and the good ones are in Kafka."""
    version, status, answer = await _curl(f"http://127.0.0.1:{h2.http_port}{UPLOAD_PATH}", H2C, "-H",
                                          f"content-type: {JSON}", body=_json_batch(category, tmp_path))
    response = json_format.Parse(answer, pb.UploadEventsResponse())
    assert (version, status) == ("2", 200)
    assert [(r.id, r.code) for r in response.results] == RESULTS
    assert await _published(topic_reader, category) == ["good-1", "good-2"]


async def test_curl_over_h2c_uploads_binary_and_the_events_reach_kafka(
    h2: Venus, category: str, topic_reader: TopicReader, tmp_path: Path
) -> None:
    """A Connect binary POST over h2c gets a serialized response with the results in request order."""
    batch, answer = tmp_path / "batch.bin", tmp_path / "answer.bin"
    batch.write_bytes(_request(category).SerializeToString())
    version, status, _ = await _curl(f"http://127.0.0.1:{h2.http_port}{UPLOAD_PATH}", H2C, "-H",
                                     f"content-type: {PROTO}", body=batch, out=answer)
    response = pb.UploadEventsResponse.FromString(answer.read_bytes())
    assert (version, status) == ("2", 200)
    assert [(r.id, r.code) for r in response.results] == RESULTS
    assert await _published(topic_reader, category) == ["good-1", "good-2"]


async def test_http1_is_still_served_beside_http2(h2: Venus, category: str, tmp_path: Path) -> None:
    """A client that does not ask for HTTP/2 gets HTTP/1.1 on the same port, with the same results."""
    version, status, answer = await _curl(f"http://127.0.0.1:{h2.http_port}{UPLOAD_PATH}", "--http1.1", "-H",
                                          f"content-type: {JSON}", body=_json_batch(category, tmp_path))
    response = json_format.Parse(answer, pb.UploadEventsResponse())
    assert (version, status) == ("1.1", 200)
    assert [(r.id, r.code) for r in response.results] == RESULTS


async def test_an_h2c_upgrade_is_not_offered_so_the_call_stays_on_http1(h2: Venus) -> None:
    """curl --http2 on an http:// URL asks to upgrade; the port answers over HTTP/1.1 without switching."""
    assert (await _curl(f"http://127.0.0.1:{h2.http_port}/readyz", "--http2"))[:2] == ("1.1", 200)


async def test_one_http2_connection_carries_at_most_max_concurrent_streams_calls(start: StartVenus) -> None:
    """The port's HTTP/2 settings announce the gRPC port's max_concurrent_streams."""
    venus = await start(http_enabled=True, http2_enabled=True, max_concurrent_streams=3)
    client = await H2Client.open(venus)
    assert (await client.request("GET", "/healthz")).status == 200
    assert client.h2.remote_settings.max_concurrent_streams == 3


async def test_over_tls_h2_is_negotiated_by_alpn_also_after_a_new_certificate(
    start: StartVenus, category: str, topic_reader: TopicReader, tmp_path: Path
) -> None:
    """curl --http2 over HTTPS gets HTTP/2 by ALPN, before and after the certificate files are replaced."""
    ca = trustme.CA()
    cert_path, key_path, ca_path = tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.pem"
    _write_pair(ca, cert_path, key_path, "first.example")
    ca.cert_pem.write_to_path(str(ca_path))
    venus = await start(http_enabled=True, http2_enabled=True, tls_cert_path=str(cert_path),
                        tls_key_path=str(key_path))
    url = f"https://127.0.0.1:{venus.http_port}{UPLOAD_PATH}"
    tls = ("--http2", "--cacert", str(ca_path), "-H", f"content-type: {JSON}")
    version, status, answer = await _curl(url, *tls, body=_json_batch(category, tmp_path))
    _write_pair(ca, cert_path, key_path, "second.example")
    again = await _curl(url, *tls, body=_json_batch(category, tmp_path))
    assert (version, status, again[:2]) == ("2", 200, ("2", 200))
    assert [(r.id, r.code) for r in json_format.Parse(answer, pb.UploadEventsResponse()).results] == RESULTS
    assert await _published(topic_reader, category) == ["good-1", "good-1", "good-2", "good-2"]


async def test_without_http2_enabled_the_port_speaks_http1_only(start: StartVenus, tmp_path: Path) -> None:
    """By default an HTTP/2 preface is not served, and ALPN over TLS settles on HTTP/1.1."""
    ca = trustme.CA()
    cert_path, key_path, ca_path = tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.pem"
    _write_pair(ca, cert_path, key_path, "plain.example")
    ca.cert_pem.write_to_path(str(ca_path))
    clear = await start(http_enabled=True)
    tls = await start(http_enabled=True, tls_cert_path=str(cert_path), tls_key_path=str(key_path))
    _, refused, _ = await _curl(f"http://127.0.0.1:{clear.http_port}/readyz", H2C)
    negotiated = await _curl(f"https://127.0.0.1:{tls.http_port}/readyz", "--http2", "--cacert", str(ca_path))
    assert refused != 200
    assert negotiated[:2] == ("1.1", 200)


async def test_errors_cors_and_health_over_http2_are_as_over_http1(start: StartVenus) -> None:
    """A request error, a CORS preflight, /healthz, /readyz, GET and gRPC get HTTP/1.1's status, headers, body."""
    venus = await start(http_enabled=True, http2_enabled=True,
                        http_cors_origins=frozenset({"https://app.example.com"}))
    empty = b'{"meta": {"app_id": "demo-app", "category": "PERF_CRASH"}, "events": []}'
    preflight = {"origin": "https://app.example.com", "access-control-request-method": "POST"}
    client = await H2Client.open(venus)
    calls = [("POST", UPLOAD_PATH, empty, {"content-type": JSON}), ("OPTIONS", UPLOAD_PATH, b"", preflight),
             ("GET", "/healthz", b"", {}), ("GET", "/readyz", b"", {}), ("GET", UPLOAD_PATH, b"", {}),
             ("POST", UPLOAD_PATH, b"", {"content-type": "application/grpc"})]
    for method, path, body, headers in calls:
        over_h2 = await client.request(method, path, body, headers)
        over_h1 = await post(venus, body, headers.get("content-type", PROTO), path=path, method=method,
                             headers=headers)
        assert over_h2.status == over_h1.status
        assert over_h2.body == over_h1.body
        for name in ("content-type", "access-control-allow-origin", "allow", "access-control-allow-headers"):
            assert over_h2.headers.get(name) == over_h1.headers.get(name)
    assert (await client.request(*calls[0][:3], calls[0][3])).json()["code"] == "invalid_argument"


async def test_a_body_over_max_message_bytes_is_refused_over_http2(start: StartVenus, tmp_path: Path) -> None:
    """A 200 KB body against a 64 KiB limit is refused with resource_exhausted, as over HTTP/1.1."""
    venus = await start(http_enabled=True, http2_enabled=True, max_message_bytes=65536)
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 200_000)
    version, status, answer = await _curl(f"http://127.0.0.1:{venus.http_port}{UPLOAD_PATH}", H2C, "-H",
                                          f"content-type: {PROTO}", body=big)
    assert (version, status) == ("2", 429) and '"resource_exhausted"' in answer


async def test_headers_over_max_metadata_bytes_are_refused_over_http2(start: StartVenus) -> None:
    """A request whose headers pass max_metadata_bytes gets 431, as over HTTP/1.1, and the port goes on serving."""
    venus = await start(http_enabled=True, http2_enabled=True, max_metadata_bytes=4096)
    url = f"http://127.0.0.1:{venus.http_port}/readyz"
    version, status, answer = await _curl(url, H2C, "-H", f"x-padding: {'p' * 8000}")
    assert (version, status) == ("2", 431) and "max_metadata_bytes" in answer
    assert (await _curl(url, H2C))[:2] == ("2", 200)


async def test_an_http2_connection_with_no_stream_is_closed_after_http_keepalive_s(start: StartVenus) -> None:
    """A connection that sends the preface and no request, or goes quiet after one, is closed in time."""
    venus = await start(http_enabled=True, http2_enabled=True, http_keepalive_s=0.5)
    silent = await H2Client.open(venus)
    served = await H2Client.open(venus)
    assert (await served.request("GET", "/readyz")).status == 200
    assert await silent.raw.closed_by_server(timeout_s=5)
    assert await served.raw.closed_by_server(timeout_s=5)


async def test_http2_connections_count_against_http_max_connections(start: StartVenus) -> None:
    """Past http_max_connections an HTTP/2 request gets 503; once the flood is gone the port serves again."""
    venus = await start(http_enabled=True, http2_enabled=True, http_max_connections=5, http_keepalive_s=1)
    flood = [await H2Client.open(venus) for _ in range(8)]
    late = await H2Client.open(venus)
    refused = await late.request("GET", "/readyz")
    assert refused.status == 503
    assert all(await asyncio.gather(*(c.raw.closed_by_server(timeout_s=10) for c in (late, *flood))))
    assert (await (await H2Client.open(venus)).request("GET", "/readyz")).status == 200


async def test_an_http2_call_in_flight_at_shutdown_is_answered(
    start: StartVenus, spans: InMemorySpanExporter, category: str, topic_reader: TopicReader
) -> None:
    """Shutdown lets an HTTP/2 upload in flight finish and publish, then closes its connection."""
    venus = await start(http_enabled=True, http2_enabled=True, kafka_linger_ms=1000)
    client = await H2Client.open(venus)
    request = pb.UploadEventsRequest(meta=pb.BatchMeta(app_id="com.example.h2", category=category),
                                     events=[pb.Event(id="in-flight", payload=b"{}")])
    upload = asyncio.ensure_future(client.request("POST", UPLOAD_PATH, request.SerializeToString(),
                                                  {"content-type": PROTO}))
    async with asyncio.timeout(10):  # the upload is in flight once validated: it now waits for its linger
        while not any(s.name == "venus.validate" for s in spans.get_finished_spans()):
            await asyncio.sleep(0.01)
    await venus.stop()
    reply = await upload
    assert pb.UploadEventsResponse.FromString(reply.body).code == pb.RESULT_CODE_ALL_SUCCESS
    assert await client.raw.closed_by_server(timeout_s=5)
    assert await _published(topic_reader, category) == ["in-flight"]


@pytest.mark.timeout(90)
async def test_both_workers_serve_http2_on_the_shared_port(
    broker: EmbeddedBroker, tmp_path: Path, category: str
) -> None:
    """h2c connections to the one HTTP port of `venus serve --workers 2` are answered by both workers."""
    http_port = free_port()
    batch = tmp_path / "batch.bin"
    batch.write_bytes(_request(category).SerializeToString())
    extra = ("--http-enabled", "true", "--http-port", str(http_port), "--http2-enabled", "true")
    with running_venus(broker.bootstrap, log_dir=tmp_path, workers=2, log_level="DEBUG", extra=extra) as venus:
        served = _Served(venus, http_port)
        _wait_for(lambda: len(served.serving_pids()) == 2, "two workers serving", within_s=30)
        answers = [await _curl(f"http://127.0.0.1:{http_port}{UPLOAD_PATH}", H2C, "-H", f"content-type: {PROTO}",
                               body=batch, out=tmp_path / "answer.bin") for _ in range(24)]
        answered_by = {line["pid"] for line in served.lines("batch answered") if line.get("transport") == "http"}
        assert {a[:2] for a in answers} == {("2", 200)}
        assert answered_by == set(served.serving_pids())


async def test_bytes_that_only_begin_like_the_http2_preface_are_http1(h2: Venus) -> None:
    """A request split mid-way is still HTTP/1.1: only the whole preface switches to HTTP/2."""
    raw = await RawConnection.open(h2)
    await raw.send(b"P")
    await raw.send(b"OST /healthz HTTP/1.1\r\nhost: venus\r\ncontent-length: 0\r\n\r\n")
    status, _, body = await raw.answer()
    assert status == 404 and b"no such path: /healthz" in body
