"""The HTTP port's ASGI app: health, CORS, and limits on the body, around the Connect endpoint.

- ``GET /healthz`` (liveness: the process answers) and ``GET /readyz`` (readiness: 200 exactly while gRPC
  health reports venus.v1.IngestService SERVING, 503 otherwise).
- ``POST /venus.v1.IngestService/<method>``: the Connect endpoint, for Connect and gRPC-Web. Browsers get
  CORS for ``http_cors_origins`` only; a preflight or call from any other origin is refused with 403.
  gRPC itself (``application/grpc``) is refused with 415 naming the gRPC port: it needs HTTP/2 trailers.
- The body: a declared ``content-length`` over ``max_message_bytes`` is refused before a byte of it is read
  (connectrpc stops a body without one once past the limit), and a body still arriving
  ``request_read_timeout_s`` after the call began is refused with DEADLINE_EXCEEDED, its connection closed.
  Bodies being read count against ``max_bytes_in_flight`` (their declared length, or ``max_message_bytes``
  when unknown) until they are in, when admission counts the batch itself: beyond it a call is refused as
  overloaded before it is read, so many large bodies at once cannot hold more memory than that.
- Headers over ``max_metadata_bytes`` get 431 (the protocol in ``server.py`` cuts off those still arriving).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from connectrpc.code import Code
from connectrpc.errors import ConnectError

from venus_grpc.ingest.errors import Reason, RequestError
from venus_grpc.ingest.outcomes import Fate
from venus_grpc.obs import metrics
from venus_grpc.server.http.endpoint import SERVICE_PATH, connect_error
from venus_grpc.settings import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# What a page may send and read: Connect's and gRPC-Web's own headers, and Venus's (key, request id, trace).
_ALLOW_HEADERS = (b"content-type, connect-protocol-version, connect-timeout-ms, connect-accept-encoding, "
                  b"connect-content-encoding, grpc-timeout, x-grpc-web, x-user-agent, authorization, x-api-key, "
                  b"x-request-id, traceparent, tracestate, baggage")
_EXPOSE_HEADERS = b"grpc-status, grpc-message, grpc-status-details-bin, x-request-id, retry-after"
_PREFLIGHT_MAX_AGE_S = b"7200"
_OVERLOAD_RETRY_AFTER_S = 0.5  # as admission's for too much in flight


class HttpApp:
    """Routes one HTTP request to health, CORS or the Connect endpoint ``ingest``."""

    def __init__(self, ingest: ASGIApp, settings: Settings, ready: Callable[[], bool]) -> None:
        self._ingest = ingest
        self._ready = ready
        self._origins = settings.http_cors_origins
        self._max_body_bytes = settings.max_message_bytes
        self._max_header_bytes = settings.max_metadata_bytes
        self._read_timeout_s = settings.request_read_timeout_s or None  # 0: no limit
        self._reading = _ReadBudget(settings.max_bytes_in_flight)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan (uvicorn runs with it off) and no websockets
        path, method = scope["path"], scope["method"]
        if sum(len(name) + len(value) for name, value in scope["headers"]) > self._max_header_bytes:
            # Headers that arrived whole; the protocol cuts off those still arriving past the limit.
            await _reply(send, 431, _error(Code.RESOURCE_EXHAUSTED, "the request headers are larger than "
                                           f"{self._max_header_bytes} bytes (max_metadata_bytes)"))
        elif path in ("/healthz", "/readyz") and method in ("GET", "HEAD"):
            serving = path == "/healthz" or self._ready()
            await _reply(send, 200 if serving else 503, {"status": "SERVING" if serving else "NOT_SERVING"})
        elif not path.startswith(SERVICE_PATH):
            await _reply(send, 404, _error(Code.NOT_FOUND, f"no such path: {path}"))
        else:
            await self._service(scope, receive, send, _header(scope, b"origin"))

    async def _service(self, scope: Scope, receive: Receive, send: Send, origin: str | None) -> None:
        cors = self._cors_headers(origin)
        content_type = _header(scope, b"content-type") or ""
        if origin is not None and cors is None:
            await _reply(send, 403, _error(Code.PERMISSION_DENIED, f"origin {origin!r} may not call Venus: see "
                                           "http_cors_origins"))
        elif scope["method"] == "OPTIONS":
            await _reply(send, 204, None, cors)
        elif scope["method"] != "POST":
            await _reply(send, 405, _error(Code.UNIMPLEMENTED, "call with POST"), [(b"allow", b"POST, OPTIONS")])
        elif content_type.startswith("application/grpc") and not content_type.startswith("application/grpc-web"):
            await _reply(send, 415, _error(Code.UNIMPLEMENTED, "gRPC needs HTTP/2 trailers: call the gRPC port, "
                                           "or use Connect or gRPC-Web here"))
        else:
            body = _Body(scope, receive, self._max_body_bytes, self._read_timeout_s, self._reading)
            try:
                await self._ingest(scope, body.receive, body.sender(send, cors or []))
            finally:
                body.release()

    def _cors_headers(self, origin: str | None) -> list[tuple[bytes, bytes]] | None:
        """The CORS headers for a page of ``origin``; ``None`` when it may not call (or sent no origin)."""
        if origin is None or not (origin in self._origins or "*" in self._origins):
            return None
        return [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"origin"),
                (b"access-control-allow-methods", b"POST"), (b"access-control-allow-headers", _ALLOW_HEADERS),
                (b"access-control-expose-headers", _EXPOSE_HEADERS),
                (b"access-control-max-age", _PREFLIGHT_MAX_AGE_S)]


class _ReadBudget:
    """Bytes reserved by the bodies being read in this process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.reserved = 0


class _Body:
    """The request's ``receive``, bounded in size, in time and by the read budget; its ``send``, with headers."""

    def __init__(self, scope: Scope, receive: Receive, max_bytes: int, timeout_s: float | None,
                 budget: _ReadBudget) -> None:
        self._receive = receive
        declared = _header(scope, b"content-length")
        self._declared = int(declared) if declared is not None and declared.isdigit() else None
        self._max_bytes = max_bytes
        self._deadline = None if timeout_s is None else asyncio.get_running_loop().time() + timeout_s
        self._timeout_s = timeout_s
        self._budget = budget
        self._reserved = 0
        self._done = False
        self._headers: dict[str, str] = {}  # added to the answer: Retry-After, connection: close

    async def receive(self) -> Message:
        if self._done:  # the body is in: what comes now is a disconnect, which connectrpc watches for
            return await self._receive()
        if self._declared is not None and self._declared > self._max_bytes:
            raise ConnectError(Code.RESOURCE_EXHAUSTED, f"the request body is {self._declared} bytes; the limit is "
                               f"{self._max_bytes} (max_message_bytes)")
        if not self._reserved:
            self._reserve(self._max_bytes if self._declared is None else self._declared)
        try:
            async with asyncio.timeout_at(self._deadline):
                message = await self._receive()
        except TimeoutError:
            raise self._refuse(RequestError(Reason.READ_TIMEOUT, "the request body did not arrive within "
                                            f"{self._timeout_s:g} s of the call's headers")) from None
        if not message.get("more_body", False):
            self._done = True
            self.release()
        return message

    def release(self) -> None:
        """Give back what this body reserved of the read budget."""
        self._budget.reserved -= self._reserved
        self._reserved = 0

    def sender(self, send: Send, headers: list[tuple[bytes, bytes]]) -> Send:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                ours = [(k.encode(), v.encode()) for k, v in self._headers.items()]
                message["headers"] = [*message.get("headers", ()), *headers, *ours]
            await send(message)

        return send_with_headers

    def _reserve(self, nbytes: int) -> None:
        budget = self._budget
        if budget.reserved + nbytes > budget.limit:
            raise self._refuse(RequestError(
                Reason.OVERLOADED, f"too many request bodies being read ({budget.reserved} bytes); retry later",
                retry_after_s=_OVERLOAD_RETRY_AFTER_S))
        budget.reserved += nbytes
        self._reserved = nbytes

    def _refuse(self, error: RequestError) -> ConnectError:
        # Refused (and counted) as over gRPC. A slow body's connection goes too, or the rest of a trickled
        # body would keep it busy after the answer.
        if error.reason is Reason.READ_TIMEOUT:
            metrics.REQUEST_READ_TIMEOUTS.inc()
            self._headers["connection"] = "close"
        Fate("http").refused(error)
        return connect_error(error, self._headers)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _error(code: Code, message: str) -> dict[str, str]:
    return {"code": code.value, "message": message}


async def _reply(send: Send, status: int, body: dict[str, str] | None,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
    content = b"" if body is None else orjson.dumps(body)
    start = [(b"content-type", b"application/json")] if body is not None else []
    await send({"type": "http.response.start", "status": status,
                "headers": [*start, (b"content-length", str(len(content)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": content})
