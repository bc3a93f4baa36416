"""TLS and mTLS on the gRPC port, with real certificates, grpcurl and the Python client."""

from __future__ import annotations

import asyncio
import datetime
import os
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import StartVenus
from venus_client import EventData, Meta, OutcomeStatus, VenusClient
from venus_grpc import Venus
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_grpc.server.transport import free_port
from venus_grpc.tools.tls import aio_channel

GRPCURL = Path(sys.executable).parent / "grpcurl"
_CALL_TIMEOUT_S = 5


def _request(category: str) -> pb.UploadEventsRequest:
    return pb.UploadEventsRequest(meta=pb.BatchMeta(app_id="tls-app", category=category),
                                  events=[pb.Event(id="e1", payload=b'{"ok": true}')])


def _write_server_files(ca: trustme.CA, directory: Path) -> tuple[Path, Path]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert.private_key_pem.write_to_path(str(key_path))
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_path), append=True)
    return cert_path, key_path


def _credentials(ca: trustme.CA, client: trustme.LeafCert | None = None) -> grpc.ChannelCredentials:
    if client is None:
        return grpc.ssl_channel_credentials(ca.cert_pem.bytes())
    return grpc.ssl_channel_credentials(ca.cert_pem.bytes(), client.private_key_pem.bytes(),
                                        b"".join(p.bytes() for p in client.cert_chain_pems))


async def _upload(venus: Venus, credentials: grpc.ChannelCredentials | None, category: str) -> pb.UploadEventsResponse:
    async with aio_channel(f"127.0.0.1:{venus.port}", credentials) as channel:
        stub = pb_grpc.IngestServiceStub(channel)
        response: pb.UploadEventsResponse = await stub.UploadEvents(_request(category), timeout=_CALL_TIMEOUT_S)
        return response


@pytest.fixture
def ca() -> trustme.CA:
    """The certificate authority that signed the server's certificate."""
    return trustme.CA()


@pytest.fixture
async def tls_venus(start: StartVenus, ca: trustme.CA, tmp_path: Path) -> Venus:
    """Venus serving TLS with a certificate signed by ``ca``."""
    cert_path, key_path = _write_server_files(ca, tmp_path)
    return await start(tls_cert_path=str(cert_path), tls_key_path=str(key_path))


async def test_tls_upload_works_with_the_python_client(tls_venus: Venus, ca: trustme.CA, category: str) -> None:
    """A client that trusts the CA uploads over TLS and gets its per-event results."""
    async with VenusClient(f"127.0.0.1:{tls_venus.port}", credentials=_credentials(ca),
                           default_meta=Meta(app_id="tls-app", category=category)) as client:
        result = await client.upload([EventData(id="e1", payload={"ok": True})])
    assert [o.status for o in result.outcomes] == [OutcomeStatus.OK]


async def test_grpcurl_reaches_the_tls_port_with_the_ca(tls_venus: Venus, ca: trustme.CA, tmp_path: Path) -> None:
    """grpcurl with -cacert lists the services through reflection over TLS; without it, it refuses."""
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    target = f"127.0.0.1:{tls_venus.port}"
    ok = await asyncio.to_thread(subprocess.run, [str(GRPCURL), "-cacert", str(ca_path), target, "list"],
                                 capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    assert "venus.v1.IngestService" in ok.stdout.split()
    untrusted = await asyncio.to_thread(subprocess.run, [str(GRPCURL), target, "list"],
                                        capture_output=True, text=True, timeout=30)
    assert untrusted.returncode != 0
    assert "certificate" in untrusted.stderr


async def test_plaintext_to_the_tls_port_fails(tls_venus: Venus, category: str) -> None:
    """A plaintext client cannot talk to the TLS port at all."""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _upload(tls_venus, None, category)
    assert err.value.code() is grpc.StatusCode.UNAVAILABLE


@pytest.fixture
async def mtls_venus(start: StartVenus, ca: trustme.CA, tmp_path: Path) -> Venus:
    """Venus that requires a client certificate signed by ``ca``."""
    cert_path, key_path = _write_server_files(ca, tmp_path)
    client_ca = tmp_path / "client-ca.pem"
    ca.cert_pem.write_to_path(str(client_ca))
    return await start(tls_cert_path=str(cert_path), tls_key_path=str(key_path), tls_client_ca_path=str(client_ca))


async def test_mtls_accepts_a_client_certificate_of_the_client_ca(mtls_venus: Venus, ca: trustme.CA,
                                                                  category: str) -> None:
    """A client presenting a valid certificate of the configured CA is served."""
    client = ca.issue_cert("sdk-client@example.com")
    response = await _upload(mtls_venus, _credentials(ca, client), category)
    assert response.code == pb.RESULT_CODE_ALL_SUCCESS


@pytest.mark.parametrize("presented", ["none", "expired", "foreign_ca"])
async def test_mtls_refuses_bad_client_certificates(mtls_venus: Venus, ca: trustme.CA, category: str,
                                                    presented: str) -> None:
    """No certificate, an expired one, or one from another CA: the handshake fails."""
    client: trustme.LeafCert | None = None
    if presented == "expired":
        now = datetime.datetime.now(datetime.UTC)
        client = ca.issue_cert("sdk-client@example.com", not_before=now - datetime.timedelta(days=10),
                               not_after=now - datetime.timedelta(days=1))
    elif presented == "foreign_ca":
        client = trustme.CA().issue_cert("sdk-client@example.com")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _upload(mtls_venus, _credentials(ca, client), category)
    assert err.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_rotated_certificate_files_are_used_for_new_connections(start: StartVenus, tmp_path: Path,
                                                                      category: str) -> None:
    """Replacing the files (as Kubernetes does) switches new handshakes; open connections stay up."""
    old_ca, new_ca = trustme.CA(), trustme.CA()
    served = tmp_path / "served"
    served.mkdir()
    cert_path, key_path = _write_server_files(old_ca, served)
    venus = await start(tls_cert_path=str(cert_path), tls_key_path=str(key_path))
    target = f"127.0.0.1:{venus.port}"
    async with grpc.aio.secure_channel(target, _credentials(old_ca)) as kept_open:
        kept = pb_grpc.IngestServiceStub(kept_open)
        await kept.UploadEvents(_request(category), timeout=_CALL_TIMEOUT_S)

        staged = tmp_path / "staged"
        staged.mkdir()
        new_cert, new_key = _write_server_files(new_ca, staged)
        for new, current in ((new_key, key_path), (new_cert, cert_path)):
            shutil.copy(new, str(current) + ".tmp")
            os.replace(str(current) + ".tmp", current)  # atomic, like a Secret's symlink swap

        response = await _upload(venus, _credentials(new_ca), category)
        assert response.code == pb.RESULT_CODE_ALL_SUCCESS
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _upload(venus, _credentials(old_ca), category)
        assert err.value.code() is grpc.StatusCode.UNAVAILABLE
        still = await kept.UploadEvents(_request(category), timeout=_CALL_TIMEOUT_S)
        assert still.code == pb.RESULT_CODE_ALL_SUCCESS


async def test_a_half_rotated_pair_keeps_the_previous_certificate(start: StartVenus, tmp_path: Path,
                                                                  category: str) -> None:
    """A new certificate whose key is not there yet is refused; handshakes go on with the old pair."""
    ca = trustme.CA()
    cert_path, key_path = _write_server_files(ca, tmp_path)
    venus = await start(tls_cert_path=str(cert_path), tls_key_path=str(key_path))
    staged = tmp_path / "staged"
    staged.mkdir()
    new_cert, _ = _write_server_files(trustme.CA(), staged)
    os.replace(new_cert, cert_path)  # the key of this certificate never arrives
    response = await _upload(venus, _credentials(ca), category)
    assert response.code == pb.RESULT_CODE_ALL_SUCCESS


async def test_probes_get_plaintext_health_on_the_health_port_of_a_tls_server(start: StartVenus, ca: trustme.CA,
                                                                             tmp_path: Path) -> None:
    """With TLS on, the health port answers grpc.health.v1 in plaintext (as the kubelet probes) and nothing else."""
    cert_path, key_path = _write_server_files(ca, tmp_path)
    venus = await start(tls_cert_path=str(cert_path), tls_key_path=str(key_path), health_port=free_port())
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.health_port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="venus.v1.IngestService"), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pb_grpc.IngestServiceStub(channel).UploadEvents(_request("ANY"), timeout=5)
        assert err.value.code() is grpc.StatusCode.UNIMPLEMENTED
