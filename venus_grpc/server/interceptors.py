"""The request-id interceptor: one id per request, in baggage, logs and the response.

It runs inside the OpenTelemetry server interceptor, whose extracted context (trace and W3C
baggage) is already current. The id comes from baggage ``request_id``, else the ``x-request-id``
metadata, else is made here; it is put back into baggage so that the Kafka ``baggage`` header
carries it, bound into every log line, and sent back as ``x-request-id`` metadata (trailing for
unary calls, initial for streams).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextvars import Token
from typing import Any

import grpc
import structlog
from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.context import Context

from venus_grpc.obs.logs import color_request

REQUEST_ID_KEY = "request_id"
DEBUG_KEY = "venus.debug"  # baggage entry that colors a request: logged at DEBUG here and downstream
REQUEST_ID_HEADER = "x-request-id"
# Ids end up in headers, logs and Kafka: accept only short, printable ones from clients.
_ACCEPTABLE_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")

Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
StreamBehavior = Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]


def current_request_id() -> str:
    """The id of the request being served (empty outside a request)."""
    value = baggage.get_baggage(REQUEST_ID_KEY)
    return value if isinstance(value, str) else ""


class RequestIdInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Gives every unary and bidirectional-streaming RPC a request id before its handler runs."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        header_id = _header(handler_call_details, REQUEST_ID_HEADER)
        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(
                _stream_with_request_id(handler.stream_stream, header_id),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.request_streaming or handler.response_streaming:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            _with_request_id(handler.unary_unary, header_id),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _with_request_id(behavior: Behavior, header_id: str) -> Behavior:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
        request_id, token, bound = _enter_request(header_id)
        try:
            # Trailing, not initial, metadata: it rides on the response's own write instead of costing
            # a separate one (measured at ~10% of a one-event request), and errors.abort() keeps it.
            context.set_trailing_metadata(((REQUEST_ID_HEADER, request_id),))
            return await behavior(request, context)
        finally:
            structlog.contextvars.reset_contextvars(**bound)
            otel_context.detach(token)

    return wrapper


def _stream_with_request_id(behavior: StreamBehavior, header_id: str) -> StreamBehavior:
    async def wrapper(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        request_id, token, bound = _enter_request(header_id)
        try:
            await context.send_initial_metadata(((REQUEST_ID_HEADER, request_id),))
            async for response in behavior(requests, context):
                yield response
        finally:
            structlog.contextvars.reset_contextvars(**bound)
            otel_context.detach(token)

    return wrapper


def _enter_request(header_id: str) -> tuple[str, Token[Context], Mapping[str, Token[Any]]]:
    """Pick the request id, put it in baggage and the log context, and color the request if asked."""
    request_id = _pick_request_id(baggage.get_baggage(REQUEST_ID_KEY), header_id)
    if baggage.get_baggage(DEBUG_KEY) in ("1", "true"):
        color_request()
    token = otel_context.attach(baggage.set_baggage(REQUEST_ID_KEY, request_id))
    return request_id, token, structlog.contextvars.bind_contextvars(request_id=request_id)


def _pick_request_id(from_baggage: object, from_header: str) -> str:
    for candidate in (from_baggage, from_header):
        if isinstance(candidate, str) and _ACCEPTABLE_ID.fullmatch(candidate):
            return candidate
    return uuid.uuid4().hex


def _header(details: grpc.HandlerCallDetails, name: str) -> str:
    for key, value in details.invocation_metadata or ():
        if key == name and isinstance(value, str):
            return value
    return ""
