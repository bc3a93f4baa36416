"""The gRPC port: connection limits, and TLS whose certificate files are re-read when they change.

Kubernetes rotates a mounted Secret by swapping the files behind it. gRPC asks for the certificate
before every new TLS handshake; Venus answers from a cache and re-reads the files only when their
size or modification time changed, so connections already open are never dropped, and a half-written
or mismatched pair is refused (the previous pair stays in use) instead of breaking new handshakes.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import threading
from dataclasses import dataclass

import grpc
import structlog

from venus_grpc.settings import Settings, SettingsError

log = structlog.get_logger(__name__)


def server_options(settings: Settings) -> list[tuple[str, int]]:
    """gRPC core channel arguments for the limits in ``settings`` (documented there)."""

    def ms(seconds: float) -> int:
        return int(seconds * 1000)

    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", int(settings.reuse_port)),
        # A connection never carries more calls than the process serves: beyond max_concurrent_rpcs gRPC's
        # own refusal has no RetryInfo, and streams a client opens past the connection's limit get REFUSED_STREAM.
        ("grpc.max_concurrent_streams", min(settings.max_concurrent_streams, settings.max_concurrent_rpcs)),
        # Soft and hard limits equal: a call over the limit is refused every time, not at random.
        ("grpc.max_metadata_size", settings.max_metadata_bytes),
        ("grpc.absolute_max_metadata_size", settings.max_metadata_bytes),
        ("grpc.keepalive_time_ms", ms(settings.keepalive_time_s)),
        ("grpc.keepalive_timeout_ms", ms(settings.keepalive_timeout_s)),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", ms(settings.keepalive_min_ping_interval_s)),
        ("grpc.http2.min_ping_interval_without_data_ms", ms(settings.keepalive_min_ping_interval_s)),
        ("grpc.keepalive_permit_without_calls", int(settings.keepalive_permit_without_calls)),
    ]
    # gRPC reads "absent" as "never"; 0 would close every connection at once.
    if settings.max_connection_idle_s:
        options.append(("grpc.max_connection_idle_ms", ms(settings.max_connection_idle_s)))
    if settings.max_connection_age_s:
        options.append(("grpc.max_connection_age_ms", ms(settings.max_connection_age_s)))
        options.append(("grpc.max_connection_age_grace_ms", ms(settings.max_connection_age_grace_s)))
    return options


def add_port(server: grpc.aio.Server, settings: Settings) -> int:
    """Listen on ``host:port`` with TLS when a certificate is configured; return the port bound."""
    address = f"{settings.host}:{settings.port}"
    if not settings.tls:
        if not is_loopback(settings.host):
            log.warning("serving PLAINTEXT on a non-loopback address: anyone on the network can read and forge "
                        "traffic; set VENUS_TLS_CERT_PATH and VENUS_TLS_KEY_PATH", address=address)
        return int(server.add_insecure_port(address))
    files = CertificateFiles(settings.tls_cert_path, settings.tls_key_path, settings.tls_client_ca_path)
    credentials = grpc.dynamic_ssl_server_credentials(
        check_tls_files(settings, files), files.changed,
        require_client_authentication=bool(settings.tls_client_ca_path),
    )
    return int(server.add_secure_port(address, credentials))


def check_tls_files(settings: Settings, files: CertificateFiles | None = None) -> grpc.ServerCertificateConfiguration:
    """Load the configured TLS files, or fail as a bad setting that names them."""
    files = files or CertificateFiles(settings.tls_cert_path, settings.tls_key_path, settings.tls_client_ca_path)
    try:
        return files.load()
    except ValueError as exc:
        raise SettingsError(str(exc), field="tls_cert_path", expected="readable PEM files of a matching pair") from None


@dataclass(frozen=True, slots=True)
class _Stamp:
    size: int
    mtime_ns: int
    inode: int


class CertificateFiles:
    """The certificate, key and client-CA files, and whether they changed since last read."""

    def __init__(self, cert_path: str, key_path: str, client_ca_path: str = "") -> None:
        self._paths = tuple(p for p in (cert_path, key_path, client_ca_path) if p)
        self._cert_path, self._key_path, self._client_ca_path = cert_path, key_path, client_ca_path
        self._stamps: tuple[_Stamp, ...] = ()
        self._lock = threading.Lock()  # gRPC calls changed() from its own threads

    def load(self) -> grpc.ServerCertificateConfiguration:
        """Read the files now; raise ``ValueError`` naming the file when they cannot be used."""
        stamps = self._stat()
        try:
            _check_pair(self._cert_path, self._key_path)
            with open(self._cert_path, "rb") as f:
                chain = f.read()
            with open(self._key_path, "rb") as f:
                key = f.read()
            client_ca = None
            if self._client_ca_path:
                with open(self._client_ca_path, "rb") as f:
                    client_ca = f.read()
                ssl.create_default_context(cadata=client_ca.decode("ascii", "replace"))
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise ValueError(f"cannot use the TLS files {', '.join(self._paths)}: {exc}") from exc
        self._stamps = stamps
        return grpc.ssl_server_certificate_configuration([(key, chain)], root_certificates=client_ca)

    def changed(self) -> grpc.ServerCertificateConfiguration | None:
        """A new configuration if the files changed and are usable, else ``None`` (keep the current one)."""
        with self._lock:
            try:
                if self._stat() == self._stamps:
                    return None
                configuration = self.load()
            except (OSError, ValueError) as exc:
                log.error("TLS files changed but cannot be used; still serving the previous certificate",
                          error=str(exc))
                return None
            log.info("TLS certificate reloaded", cert=self._cert_path)
            return configuration

    def _stat(self) -> tuple[_Stamp, ...]:
        stamps = []
        for path in self._paths:
            st = os.stat(path)
            stamps.append(_Stamp(st.st_size, st.st_mtime_ns, st.st_ino))
        return tuple(stamps)


def _check_pair(cert_path: str, key_path: str) -> None:
    # load_cert_chain fails when the key does not belong to the certificate: a rotation caught
    # between writing the two files is refused here rather than in every client's handshake.
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_path, key_path)


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
