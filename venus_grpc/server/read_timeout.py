"""A unary call must send its request within ``request_read_timeout_s`` of its headers.

gRPC counts a call against ``max_concurrent_rpcs`` from its headers on, and for a unary method it
waits for the whole request message before any Python runs. A client that sends headers, or part of
a message, and then nothing, holds its slot until the connection closes: two connections of such
calls (``max_concurrent_streams`` each) were enough to refuse every other client with
RESOURCE_EXHAUSTED (fault scenario 9). Outermost of the interceptors, this serves each unary method
as a client-streaming one: the handler runs at the headers, reads the one request within the time
limit, then calls the method's own handler. On the wire nothing changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from venus_grpc.obs import metrics

Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


class RequestReadTimeoutInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Ends unary calls whose request message does not arrive within ``timeout_s``, freeing their slot."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.response_streaming:
            return handler
        return grpc.stream_unary_rpc_method_handler(
            _read_then_call(handler.unary_unary, self._timeout_s),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _read_then_call(behavior: Behavior, timeout_s: float) -> Callable[[Any, grpc.aio.ServicerContext],
                                                                      Awaitable[Any]]:
    async def read_then_call(_requests: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            async with asyncio.timeout(timeout_s):
                request = await context.read()
        except TimeoutError:
            metrics.REQUEST_READ_TIMEOUTS.inc()
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED,
                                f"the request message did not arrive within {timeout_s:g} s of the call's headers")
        if request is grpc.aio.EOF:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the call ended without a request message")
        return await behavior(request, context)

    return read_then_call
