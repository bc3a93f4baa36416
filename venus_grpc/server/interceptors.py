"""The one interceptor of ours: every call gets its request scope, its API key check and a read time limit.

It runs inside the OpenTelemetry server interceptor, whose extracted context (trace and W3C baggage)
is already current. For calls of venus.v1.IngestService it

- opens the request scope (ingest/scope.py): the id from baggage, ``x-request-id`` or a new one, sent
  back as ``x-request-id`` (trailing metadata for unary calls, where it rides on the response's own
  write, measured at ~10% of a one-event request as initial metadata; initial metadata for streams);
- checks the API key from the headers, so a refused call is answered before its request is parsed;
- refuses an UploadEvents call beyond the process's adaptive limit of calls in flight (ingest/overload.py)
  before its request is read, with RESOURCE_EXHAUSTED and RetryInfo (admission takes its place once read);
- ends a unary call whose request message does not arrive within ``request_read_timeout_s`` of its
  headers. gRPC counts a call against ``max_concurrent_rpcs`` from its headers on and, for a unary
  method, waits for the whole message before any Python runs: clients that send headers and then
  nothing held every slot (fault scenario 9). So each unary method is served as a client-streaming
  one that reads its one message under a time limit; on the wire nothing changes.

Public services (health, reflection) get the read limit only. :func:`_wrap_rpc_behavior` is the one
place a handler is rebuilt, for every kind of method.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from venus_grpc.ingest.errors import Reason, RequestError
from venus_grpc.ingest.keys import Grant, KeyFile, authenticate
from venus_grpc.ingest.outcomes import Fate
from venus_grpc.ingest.overload import ConcurrencyLimit
from venus_grpc.ingest.scope import REQUEST_ID_HEADER, pick_request_id, request_scope
from venus_grpc.obs import metrics
from venus_grpc.server.refuse import refuse
from venus_grpc.settings import SERVICE_NAME

Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
StreamBehavior = Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]]


class GatewayInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Request scope, API key and the limit of calls in flight for venus.v1.IngestService calls; a read time
    limit for every unary call."""

    def __init__(self, *, read_timeout_s: float, key_file: KeyFile | None, limit: ConcurrencyLimit) -> None:
        self._read_timeout_s = read_timeout_s or None  # 0: no limit
        self._key_file = key_file
        self._limit = limit

    async def intercept_service(self, continuation: Continuation,
                                details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return None
        if not details.method.startswith(f"/{SERVICE_NAME}/"):
            return _wrap_rpc_behavior(handler, _Call(self._read_timeout_s))
        metadata = tuple(details.invocation_metadata or ())
        call = _Call(self._read_timeout_s, scoped=True, header_id=_header(metadata, REQUEST_ID_HEADER),
                     limit=self._limit)
        if self._key_file is not None:
            try:
                call.grant = authenticate(self._key_file.keys, metadata)
            except RequestError as error:
                call.refusal = error
        return _wrap_rpc_behavior(handler, call)


@dataclass(slots=True)
class _Call:
    """What one call runs inside: its read limit and, for ingest calls, its scope, grant or refusal."""

    read_timeout_s: float | None
    scoped: bool = False
    header_id: str = ""
    grant: Grant | None = None
    refusal: RequestError | None = None
    limit: ConcurrencyLimit | None = None  # ingest calls: admitted under it before their request is read

    def unary(self, behavior: Behavior) -> Behavior:
        async def read_then_call(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            if not self.scoped:
                request = await self._read(context)
                return None if request is None else await behavior(request, context)
            request_id = pick_request_id(self.header_id)
            with request_scope(request_id, grant=self.grant):
                context.set_trailing_metadata(((REQUEST_ID_HEADER, request_id),))
                if self.refusal is not None:
                    return self._refuse(context, self.refusal)
                return await self._admitted(behavior, context)

        return read_then_call

    async def _admitted(self, behavior: Behavior, context: grpc.aio.ServicerContext) -> Any:
        """``behavior`` on the call's request unless the limit refuses the call first, before the read."""
        assert self.limit is not None  # every scoped call has one
        try:
            self.limit.check(context.time_remaining())
        except RequestError as error:
            return self._refuse(context, error)
        request = await self._read(context)
        return None if request is None else await behavior(request, context)

    def stream(self, behavior: StreamBehavior) -> StreamBehavior:
        async def call(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            request_id = pick_request_id(self.header_id)
            with request_scope(request_id, grant=self.grant):
                await context.send_initial_metadata(((REQUEST_ID_HEADER, request_id),))
                if self.refusal is not None:
                    self._refuse(context, self.refusal)
                    return
                async for response in behavior(requests, context):
                    yield response

        return call

    async def _read(self, context: grpc.aio.ServicerContext) -> Any:
        """The call's one request message, or None once the call was refused for not sending it."""
        try:
            async with asyncio.timeout(self.read_timeout_s):
                request = await context.read()
        except TimeoutError:
            metrics.REQUEST_READ_TIMEOUTS.inc()
            return self._refuse(context, RequestError(
                Reason.READ_TIMEOUT,
                f"the request message did not arrive within {self.read_timeout_s:g} s of the call's headers"))
        if request is grpc.aio.EOF:
            return self._refuse(context, RequestError(Reason.NO_REQUEST, "the call ended without a request message"))
        return request

    def _refuse(self, context: grpc.aio.ServicerContext, error: RequestError) -> None:
        if self.scoped:
            Fate("grpc").refused(error)
        refuse(context, error)


def _wrap_rpc_behavior(handler: grpc.RpcMethodHandler, call: _Call) -> grpc.RpcMethodHandler:
    """``handler``'s method run inside ``call``: the one place a handler is rebuilt."""
    serialization = {"request_deserializer": handler.request_deserializer,
                     "response_serializer": handler.response_serializer}
    if not handler.request_streaming and not handler.response_streaming:
        return grpc.stream_unary_rpc_method_handler(call.unary(handler.unary_unary), **serialization)
    if handler.request_streaming and handler.response_streaming and call.scoped:
        return grpc.stream_stream_rpc_method_handler(call.stream(handler.stream_stream), **serialization)
    return handler  # public streams (reflection, health Watch) need nothing of ours


def _header(metadata: tuple[Any, ...], name: str) -> str:
    for key, value in metadata:
        if key == name and isinstance(value, str):
            return value
    return ""
