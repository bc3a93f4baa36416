"""The HTTP port's limits: big or slow bodies and headers, idle and flooding connections, TLS, shared by workers."""

from __future__ import annotations

import asyncio
import os
import ssl
from pathlib import Path

import grpc
import pytest
import trustme

from tests.conftest import StartVenus
from tests.http_helpers import UPLOAD_PATH, RawConnection, post
from venus_grpc import Venus
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc

_HEAD = f"POST {UPLOAD_PATH} HTTP/1.1\r\nhost: venus\r\ncontent-type: application/proto\r\n"


def _batch(category: str) -> bytes:
    return pb.UploadEventsRequest(meta=pb.BatchMeta(app_id="limits", category=category),
                                  events=[pb.Event(id="e", payload=b"{}")]).SerializeToString()


async def _ready(venus: Venus) -> int:
    return (await post(venus, b"", method="GET", path="/readyz")).status


async def test_a_declared_body_over_max_message_bytes_is_refused_before_it_is_sent(start: StartVenus) -> None:
    """A request declaring 10 MB against a 64 KiB limit is answered 429 after 1 KB of it, and the port still serves."""
    venus = await start(http_enabled=True, max_message_bytes=64 * 1024)
    raw = await RawConnection.open(venus)
    await raw.send(f"{_HEAD}content-length: {10 * 1024 * 1024}\r\n\r\n".encode() + b"\0" * 1024)
    status, _, body = await raw.answer()
    await raw.close()
    assert status == 429
    assert b"resource_exhausted" in body and b"max_message_bytes" in body
    assert await _ready(venus) == 200


async def test_a_chunked_body_is_refused_once_past_max_message_bytes(start: StartVenus) -> None:
    """A body of unknown length is refused with 429 as soon as it passes the limit, while more is still to come."""
    venus = await start(http_enabled=True, max_message_bytes=64 * 1024)
    raw = await RawConnection.open(venus)
    await raw.send(f"{_HEAD}transfer-encoding: chunked\r\n\r\n".encode())
    for _ in range(8):  # 80 KiB of the client's 10 MiB
        await raw.send(b"2800\r\n" + b"\0" * 0x2800 + b"\r\n")
    status, _, body = await raw.answer()
    await raw.close()
    assert status == 429 and b"larger than configured max 65536" in body


async def test_bodies_being_read_count_against_max_bytes_in_flight(start: StartVenus, category: str) -> None:
    """While one large body is being read, another that would pass max_bytes_in_flight is refused; then it fits."""
    venus = await start(http_enabled=True, max_message_bytes=200_000, max_bytes_in_flight=300_000)
    held = await RawConnection.open(venus)
    await held.send(f"{_HEAD}content-length: 200000\r\n\r\n".encode() + b"\0" * 1000)
    big = pb.UploadEventsRequest(meta=pb.BatchMeta(app_id="limits", category=category), events=[
        pb.Event(id="big", payload=b'{"blob": "' + b"x" * 120_000 + b'"}')]).SerializeToString()
    crowded = await post(venus, big)  # 120 KB while 100 KB of the budget is left
    await held.close()
    assert (crowded.status, crowded.json()["code"]) == (429, "resource_exhausted")
    assert "request bodies being read" in crowded.json()["message"] and "retry-after" in crowded.headers
    async with asyncio.timeout(10):  # the held body's reservation is given back once its client is gone
        while (answered := await post(venus, big)).status == 429:
            await asyncio.sleep(0.05)
    assert answered.status == 200


async def test_a_body_that_arrives_too_slowly_is_cut_off(start: StartVenus) -> None:
    """A body still incomplete request_read_timeout_s after its headers gets 504 deadline_exceeded and the hang-up."""
    venus = await start(http_enabled=True, request_read_timeout_s=1)
    raw = await RawConnection.open(venus)
    await raw.send(f"{_HEAD}content-length: 100\r\n\r\n".encode() + b"\0" * 10)
    status, headers, body = await raw.answer(timeout_s=10)
    assert (status, headers.get("connection")) == (504, "close")
    assert b"deadline_exceeded" in body and b"did not arrive within 1 s" in body
    assert await raw.closed_by_server()


async def test_headers_that_arrive_too_slowly_are_cut_off(start: StartVenus) -> None:
    """A request whose headers are not complete after http_headers_timeout_s gets 408 and the hang-up."""
    venus = await start(http_enabled=True, http_headers_timeout_s=1)
    raw = await RawConnection.open(venus)
    await raw.send(_HEAD.encode())  # and never the blank line
    status, _, _ = await raw.answer(timeout_s=10)
    assert status == 408
    assert await raw.closed_by_server()


async def test_a_connection_that_sends_nothing_is_closed(start: StartVenus) -> None:
    """A connection opened and left silent is closed after http_headers_timeout_s."""
    venus = await start(http_enabled=True, http_headers_timeout_s=1)
    raw = await RawConnection.open(venus)
    assert await raw.closed_by_server(timeout_s=10)


async def test_headers_over_max_metadata_bytes_get_431(start: StartVenus, category: str) -> None:
    """Headers larger than max_metadata_bytes get 431, whether they arrived whole or are still arriving."""
    venus = await start(http_enabled=True, max_metadata_bytes=4096)
    whole = await post(venus, _batch(category), headers={"x-padding": "p" * 8000})
    raw = await RawConnection.open(venus)
    await raw.send(f"{_HEAD}x-padding: {'p' * 8000}".encode())  # no end of line: the header goes on
    status, _, _ = await raw.answer()
    assert whole.status == 431 and b"max_metadata_bytes" in whole.body
    assert status == 431 and await raw.closed_by_server()


async def test_an_idle_keepalive_connection_is_closed_after_http_keepalive_s(start: StartVenus) -> None:
    """After its answer, a keep-alive connection with nothing more to ask is closed after http_keepalive_s."""
    venus = await start(http_enabled=True, http_keepalive_s=0.5)
    raw = await RawConnection.open(venus)
    await raw.send(b"GET /readyz HTTP/1.1\r\nhost: venus\r\n\r\n")
    status, headers, _ = await raw.answer()
    assert status == 200 and headers.get("connection") != "close"
    assert await raw.closed_by_server(timeout_s=5)


async def test_a_keepalive_flood_is_refused_and_then_cleared(start: StartVenus) -> None:
    """Past http_max_connections a request gets 503 and its connection closed; idle ones are closed in time."""
    venus = await start(http_enabled=True, http_max_connections=5, http_headers_timeout_s=1)
    flood = [await RawConnection.open(venus) for _ in range(20)]
    late = await RawConnection.open(venus)
    await late.send(b"GET /readyz HTTP/1.1\r\nhost: venus\r\n\r\n")
    status, headers, _ = await late.answer()
    assert (status, headers.get("connection")) == (503, "close")
    assert all(await asyncio.gather(*(c.closed_by_server(timeout_s=10) for c in (late, *flood))))
    assert await _ready(venus) == 200


async def test_https_serves_the_grpc_certificate_and_picks_up_a_new_one(
    start: StartVenus, tmp_path: Path
) -> None:
    """With TLS on, the HTTP port serves the certificate files; new files are served at the next handshake."""
    ca = trustme.CA()
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    _write_pair(ca, cert_path, key_path, "first.example")
    venus = await start(http_enabled=True, tls_cert_path=str(cert_path), tls_key_path=str(key_path))
    assert await _served_names(venus, ca) == {"first.example", "127.0.0.1"}
    _write_pair(ca, cert_path, key_path, "second.example")  # as a rotated Secret: new files, swapped in
    assert await _served_names(venus, ca) == {"second.example", "127.0.0.1"}


async def test_a_broken_certificate_file_keeps_the_previous_certificate(start: StartVenus, tmp_path: Path) -> None:
    """New files that cannot be used (a key of another certificate) leave the working certificate in use."""
    ca = trustme.CA()
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    _write_pair(ca, cert_path, key_path, "good.example")
    venus = await start(http_enabled=True, tls_cert_path=str(cert_path), tls_key_path=str(key_path))
    ca.issue_cert("other.example").private_key_pem.write_to_path(str(key_path))  # the pair no longer matches
    assert await _served_names(venus, ca) == {"good.example", "127.0.0.1"}


async def test_with_a_client_ca_the_http_port_wants_a_client_certificate(start: StartVenus, tmp_path: Path) -> None:
    """Under mTLS a client without a certificate is refused at the handshake; one signed by the CA is served."""
    ca = trustme.CA()
    cert_path, key_path, client_ca = tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.pem"
    _write_pair(ca, cert_path, key_path, "mtls.example")
    ca.cert_pem.write_to_path(str(client_ca))
    venus = await start(http_enabled=True, tls_cert_path=str(cert_path), tls_key_path=str(key_path),
                        tls_client_ca_path=str(client_ca))
    try:  # TLS 1.3: the client's handshake ends before the server checks its certificate, then it hangs up
        _, answer = await _https_readyz(venus, ca)
    except (ssl.SSLError, ConnectionError):
        answer = b""
    names, served = await _https_readyz(venus, ca, client=ca.issue_cert("client.example"))
    assert answer == b""
    assert served.startswith(b"HTTP/1.1 200") and names == {"mtls.example", "127.0.0.1"}


def _write_pair(ca: trustme.CA, cert_path: Path, key_path: Path, name: str) -> None:
    cert = ca.issue_cert(name, "127.0.0.1")
    for pem, path in ((cert.private_key_pem, key_path), (cert.cert_chain_pems[0], cert_path)):
        pem.write_to_path(str(path) + ".new")
        os.replace(str(path) + ".new", path)


async def _served_names(venus: Venus, ca: trustme.CA) -> set[str]:
    """The names of the certificate an HTTPS client is shown, after a successful /readyz over it."""
    names, answer = await _https_readyz(venus, ca)
    assert answer.startswith(b"HTTP/1.1 200")
    return names


async def _https_readyz(venus: Venus, ca: trustme.CA, client: trustme.LeafCert | None = None) -> tuple[set[str], bytes]:
    """GET /readyz over HTTPS (with ``client``'s certificate): the names of the certificate shown, and the answer."""
    assert venus.http_port is not None
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if client is not None:
        client.configure_cert(context)
    reader, writer = await asyncio.open_connection("127.0.0.1", venus.http_port, ssl=context)
    writer.write(b"GET /readyz HTTP/1.1\r\nhost: venus\r\nconnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    names = writer.get_extra_info("peercert")["subjectAltName"]
    writer.close()
    return {value for _, value in names}, answer


async def test_one_limit_of_calls_in_flight_holds_for_both_ports(start: StartVenus, category: str) -> None:
    """A call holding the process's limit of calls in flight on one port refuses the next on the other, with a delay."""
    venus = await start(http_enabled=True, max_concurrent_rpcs=2, overload_latency_target_s=0,
                        kafka_linger_ms=1000)  # a limit of one call
    request = pb.UploadEventsRequest.FromString(_batch(category))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        stub = pb_grpc.IngestServiceStub(channel)
        held_grpc = asyncio.ensure_future(stub.UploadEvents(request, timeout=10))
        await _until_a_call_is_in_flight(venus)
        refused_http = await post(venus, _batch(category))
        assert (await held_grpc).code == pb.RESULT_CODE_ALL_SUCCESS
        held_http = asyncio.ensure_future(post(venus, _batch(category)))
        await _until_a_call_is_in_flight(venus)
        with pytest.raises(grpc.aio.AioRpcError) as refused_grpc:
            await stub.UploadEvents(request, timeout=10)
        assert pb.UploadEventsResponse.FromString((await held_http).body).code == pb.RESULT_CODE_ALL_SUCCESS
    assert refused_http.status == 429 and int(refused_http.headers["retry-after"]) >= 1
    assert refused_grpc.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "retry later" in (refused_grpc.value.details() or "")


async def _until_a_call_is_in_flight(venus: Venus) -> None:
    assert venus.admission is not None
    async with asyncio.timeout(10):
        while venus.admission.limit.in_flight == 0:
            await asyncio.sleep(0.01)
