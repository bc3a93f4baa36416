"""The HTTP port: uvicorn on Venus's own event loop, beside gRPC, started and stopped by ``server/app.py``.

uvicorn was chosen by numbers (CPU per call; see docs/http.md): it serves HTTP/1.1 (with ``http2_enabled``,
HTTP/2 connections are handed to ``h2``), takes a socket we
bind (so ``SO_REUSEPORT`` lets workers share the port, as gRPC's does, and port 0 reports the port bound),
and its ``startup()`` / ``main_loop()`` / ``shutdown()`` run inside our loop without touching signal
handlers, which ``serve()`` would take over. What uvicorn does not bound, :class:`_Protocol` does: the time
a request's headers may take (a connection that sends nothing, or trickles headers, is cut off) and their
size.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any, cast

import structlog
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from venus_grpc.server.http.h2 import PREFACE, Http2
from venus_grpc.server.http.routes import ASGIApp
from venus_grpc.server.http.tls import ReloadingTLS
from venus_grpc.server.transport import is_loopback
from venus_grpc.settings import Settings

log = structlog.get_logger(__name__)
_TOO_SLOW = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"


class HttpServer:
    """A running HTTP port."""

    def __init__(self, server: uvicorn.Server, listener: socket.socket) -> None:
        self._server = server
        self._listener = listener
        self.port: int = listener.getsockname()[1]
        self._ticks = asyncio.create_task(server.main_loop(), name="venus-http-ticks")  # the Date header, each second

    async def stop(self, grace_s: float) -> None:
        """Stop accepting, close idle connections, give calls in flight ``grace_s``, then cancel the rest."""
        self._server.should_exit = True
        await self._ticks
        self._server.config.timeout_graceful_shutdown = max(int(grace_s), 1)
        await self._server.shutdown(sockets=[self._listener])


async def start_http(app: ASGIApp, settings: Settings) -> HttpServer:
    """Listen on ``host:http_port`` (TLS with the gRPC port's certificate) and serve ``app``."""
    listener = _listen(settings)
    http2 = Http2(app, settings) if settings.http2_enabled else None
    config = uvicorn.Config(
        app, http=_protocol(settings, http2), lifespan="off", ws="none", interface="asgi3", log_config=None,
        access_log=False, server_header=False, proxy_headers=False,  # forwarded_client reads x-forwarded-for
        # uvicorn answers 503 once this many connections (this one counted) or calls are open.
        limit_concurrency=settings.http_max_connections + 1,
        timeout_keep_alive=cast(int, settings.http_keepalive_s),  # scheduled with call_later: any number works
    )
    config.load()
    if settings.tls:
        config.ssl = ReloadingTLS(settings).context
    elif not is_loopback(settings.host):
        log.warning("serving PLAINTEXT HTTP on a non-loopback address: anyone on the network can read and forge "
                    "traffic; set VENUS_TLS_CERT_PATH and VENUS_TLS_KEY_PATH", port=listener.getsockname()[1])
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)  # what serve() would set up before startup()
    await server.startup(sockets=[listener])
    return HttpServer(server, listener)


def _listen(settings: Settings) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if settings.reuse_port:  # worker processes share the port, as they share gRPC's
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((settings.host, settings.http_port))
        sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _protocol(settings: Settings, http2: Http2 | None) -> type[HttpToolsProtocol]:
    """The protocol class uvicorn instantiates per connection, carrying this server's limits and HTTP/2."""
    return type("VenusHttpProtocol", (_LimitedProtocol,), {"headers_timeout_s": settings.http_headers_timeout_s,
                                                          "max_header_bytes": settings.max_metadata_bytes,
                                                          "max_connections": settings.http_max_connections,
                                                          "http2": http2})


class _LimitedProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, with a time and a size limit on each request's headers.

    The clock starts when the connection opens and again at the first byte of each later request (idle
    keep-alive time between requests is ``http_keepalive_s``'s); it stops when the headers are complete.
    With ``http2``, a connection that negotiated ``h2`` or opens with HTTP/2's preface is handed to it; it stays
    in uvicorn's connections (the limit, and shutdown waiting for it) until it closes.
    """

    headers_timeout_s: float
    max_header_bytes: int
    max_connections: int
    http2: Http2 | None
    _headers_timer: asyncio.TimerHandle | None = None
    _header_bytes = 0
    _sniffed: bytes | None = None  # the first bytes of the connection, while they may be HTTP/2's preface
    _h2_task: asyncio.Task[None] | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._start_headers()
        if self.http2 is None:
            return
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
            self._to_http2(self.http2, b"")
        else:
            self._sniffed = b""

    def data_received(self, data: bytes) -> None:
        if self._sniffed is not None:
            data, self._sniffed = self._sniffed + data, None
            if len(data) < len(PREFACE) and PREFACE.startswith(data):
                self._sniffed = data  # wait for the rest of the preface
                return
            if data.startswith(PREFACE) and self.http2 is not None:
                self._to_http2(self.http2, data)
                return
        super().data_received(data)
        if self._headers_timer is not None:  # still reading headers once this chunk is parsed
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                self._refuse(_TOO_LARGE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._headers_timer is None:
            self._start_headers()

    def on_headers_complete(self) -> None:
        self._stop_headers()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_headers()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        if self.http2 is None or self._h2_task is None:
            super().shutdown()
        else:
            self.http2.shutdown()

    def _to_http2(self, http2: Http2, received: bytes) -> None:
        self._stop_headers()
        over_limit = len(self.connections) > self.max_connections  # this one counted, as uvicorn counts it
        self._h2_task = http2.serve(self.transport, received, over_limit=over_limit, on_close=self._closed)
        self.tasks.add(self._h2_task)  # cancelled by uvicorn's shutdown when the grace runs out

    def _closed(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.connections.discard(self)

    def _start_headers(self) -> None:
        self._header_bytes = 0
        self._headers_timer = self.loop.call_later(self.headers_timeout_s, self._refuse, _TOO_SLOW)

    def _stop_headers(self) -> None:
        if self._headers_timer is not None:
            self._headers_timer.cancel()
            self._headers_timer = None

    def _refuse(self, answer: bytes) -> None:
        self._stop_headers()
        with contextlib.suppress(RuntimeError):  # the transport may be closing already
            self.transport.write(answer)
        self.transport.close()
