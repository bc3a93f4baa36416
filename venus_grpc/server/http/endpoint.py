"""venus.v1.IngestService/UploadEvents over Connect and gRPC-Web: the HTTP twin of the gRPC servicer.

``connectrpc`` speaks the protocols (Connect unary JSON and binary, gRPC-Web) and maps a ``ConnectError``
to each one's error format. Venus gives it three things:

- :class:`_CallScope`, a metadata interceptor, which connectrpc runs before it reads the body, as the gRPC
  interceptor runs before the message is read: a SERVER span continuing the caller's ``traceparent`` and
  ``baggage``, the request scope (``x-request-id`` in and out), the API key and the process's limit of
  calls in flight (ingest/overload.py, shared with gRPC), so a refused call is answered, and its fate
  recorded, before its body is read;
- codecs that never raise: a body that is not an UploadEventsRequest reaches admission as a
  :class:`MalformedRequest` and is refused, and counted, as over gRPC;
- the handler: the batch to admission, a :class:`RequestError` back as the same code with the same
  google.rpc details.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
from collections.abc import Mapping, MutableMapping
from typing import Any

import orjson
from connectrpc.code import Code
from connectrpc.codec import Codec
from connectrpc.errors import ConnectError, ErrorDetail
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.request import RequestContext
from connectrpc.server import ConnectASGIApplication, Endpoint
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from protobuf.wkt import Any as WireAny

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc.ingest.admission import Admission, Caller
from venus_grpc.ingest.checks import MalformedRequest
from venus_grpc.ingest.errors import RequestError, status_of
from venus_grpc.ingest.keys import Grant, KeyFile, authenticate
from venus_grpc.ingest.outcomes import Fate
from venus_grpc.ingest.overload import ConcurrencyLimit
from venus_grpc.ingest.scope import REQUEST_ID_HEADER, current_grant, pick_request_id, request_scope
from venus_grpc.server.client_address import IPAddress, forwarded_client
from venus_grpc.settings import SERVICE_NAME

SERVICE_PATH = f"/{SERVICE_NAME}/"
UPLOAD_PATH = f"/{SERVICE_NAME}/UploadEvents"
_UPLOAD: MethodInfo[pb.UploadEventsRequest, pb.UploadEventsResponse] = MethodInfo(
    name="UploadEvents", service_name=SERVICE_NAME, input=pb.UploadEventsRequest, output=pb.UploadEventsResponse,
    idempotency_level=IdempotencyLevel.UNKNOWN, stream_type=StreamType.UNARY)
# As in OpenTelemetry's gRPC instrumentation: only these are the server's fault and mark the span ERROR.
_Opened = tuple[contextlib.ExitStack, trace.Span]  # what on_start hands on_end
_SERVER_FAULTS = frozenset({Code.UNKNOWN, Code.DEADLINE_EXCEEDED, Code.UNIMPLEMENTED, Code.INTERNAL,
                            Code.UNAVAILABLE, Code.DATA_LOSS})


class _IngestApp(ConnectASGIApplication[Admission]):
    @property
    def path(self) -> str:
        return SERVICE_PATH.rstrip("/")


def ingest_app(admission: Admission, *, key_file: KeyFile | None, tracer: trace.Tracer) -> _IngestApp:
    """The ASGI app of venus.v1.IngestService/UploadEvents, over ``admission``."""
    settings = admission.settings
    handler = _Handler(admission)
    return _IngestApp(service=admission, endpoints=lambda _: {UPLOAD_PATH: Endpoint.unary(_UPLOAD, handler.upload)},
                      interceptors=[_CallScope(tracer, key_file, admission.limit)],
                      read_max_bytes=settings.max_message_bytes,
                      codecs=[_BinaryCodec(), _JsonCodec()])


class _Handler:
    """The UploadEvents call; everything it decides is admission's."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self._trusted_proxies = admission.settings.trusted_proxies

    async def upload(self, request: pb.UploadEventsRequest | MalformedRequest,
                     ctx: RequestContext[pb.UploadEventsRequest, pb.UploadEventsResponse]) -> pb.UploadEventsResponse:
        """The UploadEvents RPC."""
        with self._admission.call():
            try:
                return await self._admission.upload(request, self._caller(ctx))
            except RequestError as error:
                raise connect_error(error, ctx.response_headers) from None

    def _caller(self, ctx: RequestContext[Any, Any]) -> Caller:
        forwarded = ctx.request_headers.getall("x-forwarded-for")
        ip = forwarded_client(_peer(ctx.client_address), forwarded, self._trusted_proxies)
        return Caller(ip=ip, time_left_s=_time_left_s(ctx), grant=current_grant(), transport="http")


def connect_error(error: RequestError, headers: MutableMapping[str, str]) -> ConnectError:
    """``error`` as connectrpc answers it: the same code, message and google.rpc details as over gRPC.

    A retry delay also goes into the response ``headers`` as ``Retry-After`` (whole seconds), which plain
    HTTP clients understand.
    """
    if error.retry_after_s is not None:
        headers["retry-after"] = str(math.ceil(error.retry_after_s))
    details = [ErrorDetail(WireAny(type_url=d.type_url, value=d.value)) for d in status_of(error).details]
    return ConnectError(Code(error.status.name.lower()), error.message, details)


class _CallScope:
    """What every ingest call runs inside, opened before its body is read: span, request scope, API key, and the
    check against the limit of calls in flight."""

    def __init__(self, tracer: trace.Tracer, key_file: KeyFile | None, limit: ConcurrencyLimit) -> None:
        self._tracer = tracer
        self._key_file = key_file
        self._limit = limit

    async def on_start(self, ctx: RequestContext[Any, Any]) -> _Opened:
        """Open the call's span and scope; refuse it here when its API key is not good or the limit is reached."""
        headers = ctx.request_headers
        stack = contextlib.ExitStack()
        # connectrpc's headers are a case-insensitive mapping: the propagators read traceparent/baggage from it.
        stack.callback(otel_context.detach, otel_context.attach(propagate.extract(headers)))
        attributes = {"rpc.system": "connect_rpc", "rpc.service": SERVICE_NAME, "rpc.method": "UploadEvents",
                      "http.request.method": ctx.http_method, "client.address": str(_peer(ctx.client_address) or "")}
        span = stack.enter_context(self._tracer.start_as_current_span(
            UPLOAD_PATH, kind=SpanKind.SERVER, record_exception=False, set_status_on_exception=False,
            attributes=attributes))
        grant, refusal = self._authenticate(headers)
        request_id = pick_request_id(headers.get(REQUEST_ID_HEADER, ""))
        stack.enter_context(request_scope(request_id, grant=grant))
        ctx.response_headers[REQUEST_ID_HEADER] = request_id
        if refusal is None:
            refusal = self._check_limit(ctx)
        if refusal is not None:
            Fate("http").refused(refusal)
            error = connect_error(refusal, ctx.response_headers)
            _end(stack, span, error)
            raise error
        return stack, span

    async def on_end(self, opened: _Opened, ctx: RequestContext[Any, Any], error: Exception | None) -> None:
        """Close what :meth:`on_start` opened, with the call's outcome on its span."""
        _end(*opened, error)

    def _check_limit(self, ctx: RequestContext[Any, Any]) -> RequestError | None:
        """The refusal of a call beyond the limit of calls in flight (admission takes its place once read)."""
        try:
            self._limit.check(_time_left_s(ctx))
        except RequestError as error:
            return error
        return None

    def _authenticate(self, headers: Mapping[str, str]) -> tuple[Grant | None, RequestError | None]:
        if self._key_file is None:
            return None, None
        try:
            return authenticate(self._key_file.keys, headers.items()), None
        except RequestError as error:
            return None, error


def _end(stack: contextlib.ExitStack, span: trace.Span, error: Exception | None) -> None:
    if error is not None:
        code = error.code if isinstance(error, ConnectError) else Code.UNKNOWN
        span.set_attribute("rpc.connect_rpc.error_code", code.value)
        if code in _SERVER_FAULTS:
            span.set_status(Status(StatusCode.ERROR, str(error)))
    stack.close()


class _BinaryCodec(Codec[Message, Any]):
    """Protobuf binary; bytes that are not the message become a :class:`MalformedRequest`, never an exception."""

    def name(self) -> str:
        return "proto"

    def encode(self, message: Message) -> bytes:
        return message.SerializeToString()

    def decode(self, data: bytes | bytearray, message_class: type[Message]) -> Any:
        try:
            return message_class.FromString(bytes(data))
        except DecodeError as exc:
            return MalformedRequest(str(exc))


class _JsonCodec(Codec[Message, Any]):
    """Protobuf JSON with the proto's own field names (as grpcurl and docs/contract.md show them).

    JSON that is not the message, an unknown field or enum name included, becomes a :class:`MalformedRequest`
    naming it: a typo is refused rather than dropped. orjson parses and prints; protobuf's json_format maps
    to and from messages.
    """

    def name(self) -> str:
        return "json"

    def encode(self, message: Message) -> bytes:
        return orjson.dumps(json_format.MessageToDict(message, preserving_proto_field_name=True))

    def decode(self, data: bytes | bytearray, message_class: type[Message]) -> Any:
        try:
            return json_format.ParseDict(orjson.loads(data), message_class())
        except (json_format.ParseError, ValueError, TypeError, AttributeError) as exc:
            return MalformedRequest(f"invalid JSON: {exc}")


def _time_left_s(ctx: RequestContext[Any, Any]) -> float | None:
    return None if ctx.timeout_ms is None else ctx.timeout_ms / 1000


def _peer(address: str | None) -> IPAddress | None:
    # connectrpc gives the client's "host:port"; an IPv6 host has colons of its own.
    host = (address or "").rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None

