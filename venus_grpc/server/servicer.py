"""IngestService: request-level checks, then the pipeline, then one result per event."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import grpc
import structlog
from google.protobuf.message import DecodeError, Message
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc.ingest.errors import Reason, RequestError, abort
from venus_grpc.ingest.keys import current_grant
from venus_grpc.ingest.pipeline import Batch, RequestContext, Stage, run_stages
from venus_grpc.ingest.quotas import Quotas
from venus_grpc.kafka import Publisher
from venus_grpc.obs import metrics
from venus_grpc.obs.logs import color_request
from venus_grpc.server.interceptors import DEBUG_KEY, current_request_id
from venus_grpc.settings import IPNetwork, Settings

log = structlog.get_logger(__name__)
_APP_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_CATEGORY = re.compile(r"[A-Za-z0-9_-]{1,64}")
_KAFKA_RETRY_AFTER_S = 1.0
_OVERLOAD_RETRY_AFTER_S = 0.5


_BATCH_REASONS = (Reason.MALFORMED_REQUEST, Reason.BAD_META, Reason.NO_EVENTS, Reason.TOO_MANY_EVENTS,
                  Reason.CATEGORY_NOT_ALLOWED)
M = TypeVar("M", bound=Message)


@dataclass(frozen=True, slots=True)
class MalformedRequest:
    """Bytes that are not the expected message; answered with INVALID_ARGUMENT, not INTERNAL."""

    error: str


def request_parser(message_type: type[M]) -> Callable[[bytes], M | MalformedRequest]:
    """A request deserializer that never raises, so that garbage gets a clear status."""

    def parse(data: bytes) -> M | MalformedRequest:
        try:
            return message_type.FromString(data)
        except DecodeError as exc:
            return MalformedRequest(str(exc))

    return parse


class IngestServicer:
    """Answers UploadEvents: check the request, run the stages, report every event."""

    def __init__(self, settings: Settings, *, stages: Sequence[Stage], publisher: Publisher,
                 tracer: trace.Tracer) -> None:
        self._settings = settings
        self._stages = tuple(stages)
        self._publisher = publisher
        self._tracer = tracer
        self._quotas = Quotas(settings)
        self._events_in_flight = 0
        self._draining = False
        self._rpcs_in_flight = 0
        self._last_arrival = 0.0
        self._stream_readers: set[asyncio.Task[None]] = set()

    @property
    def settings(self) -> Settings:
        """The settings this servicer runs with."""
        return self._settings

    @property
    def tracer(self) -> trace.Tracer:
        """The tracer for this servicer's spans."""
        return self._tracer

    @property
    def draining(self) -> bool:
        """True once shutdown began: new batches are refused."""
        return self._draining

    @contextlib.contextmanager
    def rpc(self) -> Iterator[None]:
        """Count one RPC (unary or stream) as in flight while the block runs."""
        self._rpcs_in_flight += 1
        self._last_arrival = time.monotonic()
        try:
            yield
        finally:
            self._rpcs_in_flight -= 1

    def watch_stream_reader(self, reader: asyncio.Task[None]) -> None:
        """Have shutdown stop ``reader`` from taking more batches off its stream."""
        self._stream_readers.add(reader)
        reader.add_done_callback(self._stream_readers.discard)

    async def drain(self, *, quiet_s: float, timeout_s: float) -> None:
        """Refuse new batches with UNAVAILABLE; return once no RPC is in flight and none came for ``quiet_s``.

        Uploads in flight go on; streams stop reading and end once their taken batches are answered.
        Stopping the gRPC server only then matters: a call that reaches grpc core once
        ``server.stop()`` has begun is CANCELLED (grpc/grpc#41785), which clients do not retry.
        """
        self._draining = True
        for reader in self._stream_readers:
            reader.cancel()
        deadline = time.monotonic() + timeout_s
        while (now := time.monotonic()) < deadline:
            if self._rpcs_in_flight == 0 and now - self._last_arrival >= quiet_s:
                return
            await asyncio.sleep(min(quiet_s / 4, deadline - now))

    async def upload_events(self, request: pb.UploadEventsRequest | MalformedRequest,
                            context: grpc.aio.ServicerContext) -> pb.UploadEventsResponse:
        """The UploadEvents RPC."""
        with self.rpc():
            try:
                return await self.process(request, context)
            except RequestError as error:
                await abort(context, error)

    async def process(self, request: pb.UploadEventsRequest | MalformedRequest,
                      context: grpc.aio.ServicerContext) -> pb.UploadEventsResponse:
        """Answer one batch, or raise the :class:`RequestError` that refuses it as a whole."""
        metrics.UPLOADS.labels("all_upload").inc()
        try:
            if self._draining:
                raise RequestError(Reason.SHUTTING_DOWN, "Venus is shutting down; retry later",
                                   retry_after_s=_KAFKA_RETRY_AFTER_S)
            return await self._upload(request, context)
        except RequestError as error:
            if error.reason in _BATCH_REASONS:
                metrics.UPLOADS.labels("wrong_meta").inc()
            metrics.BATCH_REJECTIONS.labels(error.status.name).inc()
            log.info("batch refused", status=error.status.name, reason=error.reason.value, error=error.message)
            raise

    async def _upload(self, request: pb.UploadEventsRequest | MalformedRequest,
                      context: grpc.aio.ServicerContext) -> pb.UploadEventsResponse:
        if isinstance(request, MalformedRequest):
            raise RequestError(Reason.MALFORMED_REQUEST,
                               f"the request is not a valid venus.v1.UploadEventsRequest: {request.error}")
        check_request(request, self._settings)
        _authorize(request.meta)
        if self._quotas.enabled:
            self._quotas.admit(request.meta.app_id, request.meta.category, events=len(request.events),
                               nbytes=request.ByteSize() if self._quotas.counts_bytes else 0)
        with self._colored_if_listed(request.meta):
            return await self._admit(request, context)

    @contextlib.contextmanager
    def _colored_if_listed(self, meta: pb.BatchMeta) -> Iterator[None]:
        # An app or device on the debug lists is logged at DEBUG, and the flag travels on in the
        # Kafka baggage header so that downstream analyzers can do the same.
        s = self._settings
        if meta.app_id not in s.debug_app_ids and (not meta.device_id or meta.device_id not in s.debug_device_ids):
            yield
            return
        color_request()
        token = otel_context.attach(baggage.set_baggage(DEBUG_KEY, "1"))
        try:
            yield
        finally:
            otel_context.detach(token)

    async def _admit(self, request: pb.UploadEventsRequest,
                     context: grpc.aio.ServicerContext) -> pb.UploadEventsResponse:
        if not self._publisher.ready:
            raise RequestError(Reason.KAFKA_UNAVAILABLE, "Venus is not connected to Kafka yet; retry later",
                               retry_after_s=_KAFKA_RETRY_AFTER_S)
        count = len(request.events)
        if self._events_in_flight + count > self._settings.max_events_in_flight:
            raise RequestError(Reason.OVERLOADED,
                               f"too much work in flight ({self._events_in_flight} events); retry later",
                               retry_after_s=_OVERLOAD_RETRY_AFTER_S)
        self._events_in_flight += count
        metrics.EVENTS_IN_FLIGHT.inc(count)
        try:
            batch = await self._process(request, context)
        finally:
            self._events_in_flight -= count
            metrics.EVENTS_IN_FLIGHT.dec(count)
        return self._answer(batch)

    async def _process(self, request: pb.UploadEventsRequest, context: grpc.aio.ServicerContext) -> Batch:
        remaining_s = context.time_remaining()
        budget_s = self._settings.publish_timeout_s if remaining_s is None else remaining_s
        ctx = RequestContext(request_id=current_request_id(), deadline=time.monotonic() + budget_s)
        batch = Batch.of(
            request,
            topic=self._settings.topic_for(request.meta.category),
            peer_ip=client_ip(context, self._settings.trusted_proxies),
            received_at_ms=time.time_ns() // 1_000_000,
        )
        await run_stages(self._stages, batch, ctx, self._tracer)
        return batch

    def _answer(self, batch: Batch) -> pb.UploadEventsResponse:
        codes = [p.code for p in batch.parts]
        category = batch.meta.category
        for event_code in set(codes):
            metrics.EVENTS.labels(category, pb.EventCode.Name(event_code)).inc(codes.count(event_code))
        if pb.EVENT_CODE_OK not in codes and pb.EVENT_CODE_PUBLISH_ERROR in codes:
            failed = next(p for p in batch.parts if p.code == pb.EVENT_CODE_PUBLISH_ERROR)
            log.warning("no event could be published", topic=batch.topic, error=failed.message)
            raise RequestError(Reason.KAFKA_UNAVAILABLE,
                               f"no event could be published to Kafka ({failed.message}); retry later",
                               retry_after_s=_KAFKA_RETRY_AFTER_S)
        if any(c not in (pb.EVENT_CODE_OK, pb.EVENT_CODE_PUBLISH_ERROR) for c in codes):
            metrics.UPLOADS.labels("wrong_data").inc()
        if all(c == pb.EVENT_CODE_OK for c in codes):
            metrics.UPLOADS.labels("success_upload").inc()
        result_code, message = batch.overall()
        log.debug("batch answered", topic=batch.topic, events=len(codes), result=pb.ResultCode.Name(result_code))
        return pb.UploadEventsResponse(code=result_code, message=message, results=batch.results(),
                                       request_id=current_request_id())


def check_request(request: pb.UploadEventsRequest, settings: Settings) -> None:
    """Raise a :class:`RequestError` when the batch as a whole cannot be taken."""
    violations: list[tuple[str, str]] = []
    meta = request.meta
    if not request.HasField("meta"):
        violations.append(("meta", "meta is missing: every batch needs meta with app_id and category"))
    else:
        if not _APP_ID.fullmatch(meta.app_id):
            violations.append(("meta.app_id", "app_id is required: 1 to 128 letters, digits or ._:-"))
        if not _CATEGORY.fullmatch(meta.category):
            violations.append(("meta.category", "category is required: 1 to 64 letters, digits, _ or -"))
        if meta.platform not in pb.Platform.values():
            violations.append(("meta.platform", f"platform {meta.platform} is not a known venus.v1.Platform"))
    if violations:
        raise RequestError(Reason.BAD_META, "invalid batch meta: " + "; ".join(v for _, v in violations),
                           violations=violations)
    if settings.allowed_categories and meta.category not in settings.allowed_categories:
        allowed = ", ".join(sorted(settings.allowed_categories))
        raise RequestError(Reason.CATEGORY_NOT_ALLOWED,
                           f"category {meta.category!r} is not accepted here; allowed: {allowed}",
                           violations=[("meta.category", f"not one of: {allowed}")])
    count = len(request.events)
    if count == 0:
        raise RequestError(Reason.NO_EVENTS, "the batch has no events: send at least one",
                           violations=[("events", "at least one event is required")])
    if count > settings.max_events_per_batch:
        limit = settings.max_events_per_batch
        raise RequestError(Reason.TOO_MANY_EVENTS,
                           f"the batch has {count} events; the limit is {limit}: split it into smaller batches",
                           violations=[("events", f"at most {limit} events per batch")])


def _authorize(meta: pb.BatchMeta) -> None:
    grant = current_grant()
    if grant is None:  # API keys are off
        return
    refusal = grant.refusal(meta.app_id, meta.category)
    if refusal is not None:
        metrics.AUTH_FAILURES.labels("forbidden").inc()
        raise RequestError(Reason.PERMISSION_DENIED, refusal)


def client_ip(context: grpc.aio.ServicerContext, trusted_proxies: Sequence[IPNetwork]) -> str:
    """The caller's address; ``x-forwarded-for`` counts only when the peer is a trusted proxy.

    The header is read right to left, skipping trusted proxies: the first untrusted address is the
    client, since only that hop was written by a proxy we trust.
    """
    peer = _peer_address(context.peer() or "")
    if peer is None or not _is_trusted(peer, trusted_proxies):
        return str(peer) if peer is not None else ""
    forwarded = ",".join(v for k, v in (context.invocation_metadata() or ()) if k == "x-forwarded-for")
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            break
        if not _is_trusted(address, trusted_proxies):
            return str(address)
    return str(peer)


def _peer_address(peer: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # grpc peers look like "ipv4:10.0.0.1:5000" or "ipv6:%5B::1%5D:5000" (or "unix:...": no address).
    kind, _, rest = urllib.parse.unquote(peer).partition(":")
    host = rest.rsplit(":", 1)[0].strip("[]") if kind in ("ipv4", "ipv6") else ""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in trusted)
