"""TLS of the HTTP port: the gRPC port's certificate files, re-read when they change, as gRPC re-reads them.

Python's ``ssl`` calls a server context's ``sni_callback`` at every handshake, with or without SNI; the
callback may hand the connection another context. So the listening context checks the files' size,
modification time and inode (a ``stat`` per handshake, as gRPC does) and, when they changed, builds a
context from them and serves new handshakes with it. Connections already open keep theirs; a pair that
cannot be used (half-written, mismatched) is logged and the previous one stays in use.
"""

from __future__ import annotations

import os
import ssl
import threading

import structlog

from venus_grpc.settings import Settings, SettingsError

log = structlog.get_logger(__name__)


class ReloadingTLS:
    """The server ``context`` for the HTTP port, following ``tls_cert_path``, ``tls_key_path`` and the client CA."""

    def __init__(self, settings: Settings) -> None:
        self._cert, self._key = settings.tls_cert_path, settings.tls_key_path
        self._client_ca = settings.tls_client_ca_path
        self._alpn = ["h2", "http/1.1"] if settings.http2_enabled else ["http/1.1"]
        try:
            self._stamps = self._stat()
            self.context = self._build()
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError(f"cannot use the TLS files {self._cert}, {self._key}: {exc}", field="tls_cert_path",
                                expected="readable PEM files of a matching pair") from None
        self._current = self.context
        self._lock = threading.Lock()
        self.context.sni_callback = self._pick

    def _pick(self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None,
              listening: ssl.SSLContext) -> None:
        with self._lock:
            try:
                stamps = self._stat()
                if stamps != self._stamps:
                    self._current, self._stamps = self._build(), stamps
                    log.info("TLS certificate reloaded", cert=self._cert, port="http")
            except (OSError, ssl.SSLError) as exc:
                log.error("TLS files changed but cannot be used; still serving the previous certificate",
                          error=str(exc), port="http")
            if self._current is not listening:
                connection.context = self._current

    def _build(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self._cert, self._key)  # refuses a key that is not the certificate's
        context.set_alpn_protocols(self._alpn)  # h2 when the client offers it and it is on (server/http/h2.py)
        if self._client_ca:
            context.load_verify_locations(self._client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def _stat(self) -> tuple[tuple[int, int, int], ...]:
        paths = (p for p in (self._cert, self._key, self._client_ca) if p)
        return tuple((st.st_size, st.st_mtime_ns, st.st_ino) for st in map(os.stat, paths))
