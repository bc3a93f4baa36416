"""HTTP/2 on the HTTP port: a connection that asks for it is handed to hypercorn's HTTP/2 protocol.

uvicorn (HTTP/1.1) accepts every connection on the port. One that negotiated ``h2`` by ALPN (TLS), or that
opens with the HTTP/2 connection preface (cleartext "prior knowledge", as ``curl --http2-prior-knowledge``
does), is moved to hypercorn's HTTP/2 implementation on the same transport, serving
the same ASGI app. HTTP/1.1 keeps uvicorn's lower CPU per call; HTTP/2 costs what hypercorn costs
(docs/http.md has the figures). Only the connection's protocol changes hands: the socket, TLS, the
connection count, shutdown and the app are the HTTP/1.1 path's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config
from hypercorn.typing import ASGIFramework

from venus_grpc.server.http.routes import ASGIApp, Receive, Scope, Send
from venus_grpc.settings import Settings

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class Http2:
    """Serves HTTP/2 connections handed over by the HTTP/1.1 protocol; one per HTTP port, built at startup."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self._config = Config()
        self._config.include_server_header = False
        # A connection with no open stream (including one that never sends a HEADERS frame) is closed after
        # this, so it also bounds how long a request's headers may take to start arriving.
        self._config.keep_alive_timeout = min(settings.http_keepalive_s, settings.http_headers_timeout_s)
        self._config.h2_max_header_list_size = settings.max_metadata_bytes
        self._config.h2_max_concurrent_streams = settings.max_concurrent_streams  # as on the gRPC port
        self._app = app
        self._context = WorkerContext(None)
        self._loop = asyncio.get_running_loop()
        self._terminating: asyncio.Task[None] | None = None

    def serve(self, transport: asyncio.Transport, received: bytes, *, over_limit: bool,
              on_close: Callable[[asyncio.Task[None]], None]) -> asyncio.Task[None]:
        """Serve ``transport`` (``received``: bytes already read from it) until it closes.

        ``over_limit``: the connection is beyond ``http_max_connections``, so each of its requests gets 503.
        """
        reader = asyncio.StreamReader(limit=2**16, loop=self._loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=self._loop)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if received:
            reader.feed_data(received)
        writer = asyncio.StreamWriter(transport, protocol, reader, self._loop)
        # hypercorn's idle timer starts at the first stream's end when the preface came in clear (it reads the
        # preface as an HTTP/1.1 request first): until a stream opens, this timer closes a silent connection.
        first_stream = self._loop.call_later(self._config.keep_alive_timeout, transport.close)
        app = ASGIWrapper(cast(ASGIFramework, _on_first_call(_service_unavailable if over_limit else self._app,
                                                             first_stream.cancel)))
        server = TCPServer(app, self._loop, self._config, self._context, {}, reader, writer)
        task = self._loop.create_task(server.run(), name="venus-http2")
        task.add_done_callback(lambda _: first_stream.cancel())
        task.add_done_callback(on_close)
        return task

    def shutdown(self) -> None:
        """Refuse new streams, and close each connection once its streams are done (HTTP/2 GOAWAY)."""
        if self._terminating is None:
            self._terminating = self._loop.create_task(self._context.terminated.set())


def _on_first_call(app: ASGIApp, then: Callable[[], None]) -> ASGIApp:
    """``app``, calling ``then`` as it is called."""
    async def called(scope: Scope, receive: Receive, send: Send) -> None:
        then()
        await app(scope, receive, send)
    return called


async def _service_unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    """uvicorn's 503 beyond the connection limit, without its ``connection: close`` (not allowed in HTTP/2)."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"19")]})
    await send({"type": "http.response.body", "body": b"Service Unavailable"})
