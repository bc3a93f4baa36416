"""Admission: everything between a parsed request and its answer, for any transport.

A transport (the gRPC servicer, the stream handler, the HTTP endpoint) decodes a batch, says what it knows of the caller
(:class:`Caller`) and calls :meth:`Admission.upload`, which reads top to bottom: refuse while draining,
check the request, the key's grant and the app's quota, refuse when Kafka is away or too much is in
flight, run the pipeline, answer. It returns the answer or raises the :class:`RequestError` that
refused the batch; either way the batch's one fate is already recorded (``outcomes``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry import trace

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc.ingest.checks import MalformedRequest, check_request
from venus_grpc.ingest.errors import Reason, RequestError
from venus_grpc.ingest.keys import Grant, authorize
from venus_grpc.ingest.outcomes import Fate, Transport
from venus_grpc.ingest.overload import ConcurrencyLimit
from venus_grpc.ingest.pipeline import Batch, RequestContext, Stage, run_stages
from venus_grpc.ingest.quotas import Quotas
from venus_grpc.ingest.scope import color_if, current_request_id, uncolor
from venus_grpc.kafka import Publisher
from venus_grpc.obs import metrics
from venus_grpc.settings import Settings

_KAFKA_RETRY_AFTER_S = 1.0
_OVERLOAD_RETRY_AFTER_S = 0.5
_MIN_LIMIT = 2  # calls in flight the adaptive limit always allows: one is worked on while another waits for Kafka
# Bytes each published message adds beyond the event's and the meta's own fields: measured at 316 around the event
# (backend_id, times, geo with long place names, JSON keys) and 109 of the meta's JSON keys.
ENVELOPE_BYTES = 448


@dataclass(frozen=True, slots=True)
class Caller:
    """What the transport knows of the caller of one batch."""

    ip: str  # the client's address, trusted proxies already looked through; "" when unknown
    time_left_s: float | None  # until the caller's deadline; None: no deadline
    grant: Grant | None = None  # the API key's grant; None when keys are off
    transport: Transport = "grpc"  # the port the batch came by, a label of its fate's metrics


class Admission:
    """Takes batches in, or refuses them, and tracks what is in flight so that shutdown can drain."""

    def __init__(self, settings: Settings, *, stages: Sequence[Stage], publisher: Publisher,
                 tracer: trace.Tracer) -> None:
        self.settings = settings
        self.tracer = tracer
        self._stages = tuple(stages)
        self._publisher = publisher
        self._quotas = Quotas(settings)
        # One limit per process, for every transport. Half of what gRPC admits: calls being refused, and
        # streams, hold gRPC slots too, and gRPC's own refusal (no RetryInfo) stays a backstop.
        self.limit = ConcurrencyLimit(max_limit=max(1, settings.max_concurrent_rpcs // 2), min_limit=_MIN_LIMIT,
                                      target_s=settings.overload_latency_target_s)
        self._events_in_flight = 0
        self._bytes_in_flight = 0
        self._calls_in_flight = 0
        self._last_arrival = 0.0
        self._draining = False
        self._stream_readers: set[asyncio.Task[None]] = set()

    @property
    def draining(self) -> bool:
        """True once shutdown began: new batches are refused."""
        return self._draining

    async def upload(self, request: pb.UploadEventsRequest | MalformedRequest,
                     caller: Caller) -> pb.UploadEventsResponse:
        """Answer one batch, or raise the :class:`RequestError` that refuses it as a whole."""
        fate = Fate(caller.transport)
        started = time.monotonic()  # service time from here: a slow upload is not slow service
        coloring = color_if(self._listed(request))
        try:
            with self.limit.hold(caller.time_left_s):  # checked before the read too, by the transport
                batch = await self._admit(request, caller)
        except RequestError as error:
            app_id, events = _who(request)
            fate.refused(error, app_id=app_id, events=events)
            raise
        finally:
            uncolor(coloring)
        # Only batches that were served: a quick refusal says nothing about how fast Venus serves.
        served_s = time.monotonic() - started
        self.limit.observe(served_s)
        return self._answer(batch, fate, served_s)

    async def _admit(self, request: pb.UploadEventsRequest | MalformedRequest, caller: Caller) -> Batch:
        if self._draining:
            raise RequestError(Reason.SHUTTING_DOWN, "Venus is shutting down; retry later",
                               retry_after_s=_KAFKA_RETRY_AFTER_S)
        if isinstance(request, MalformedRequest):
            raise RequestError(Reason.MALFORMED_REQUEST,
                               f"the request is not a valid venus.v1.UploadEventsRequest: {request.error}")
        check_request(request, self.settings)
        authorize(caller.grant, request.meta.app_id, request.meta.category)
        size = request.ByteSize()  # measured once: protobuf computes it by walking the message
        if self._quotas.enabled:
            self._quotas.admit(request.meta.app_id, request.meta.category, events=len(request.events), nbytes=size)
        if not self._publisher.ready:
            # Not connected yet, or the broker stopped answering (health is NOT_SERVING): waiting for it
            # would only hold the call until its deadline.
            raise RequestError(Reason.KAFKA_UNAVAILABLE, "Venus cannot reach Kafka right now; retry later",
                               retry_after_s=_KAFKA_RETRY_AFTER_S)
        count, nbytes = len(request.events), cost_bytes(request, size)
        self._take(count, nbytes)
        try:
            return await self._run(request, caller)
        finally:
            self._release(count, nbytes)

    def _take(self, count: int, nbytes: int) -> None:
        s = self.settings
        if (self._events_in_flight + count > s.max_events_in_flight
                or self._bytes_in_flight + nbytes > s.max_bytes_in_flight):
            self.limit.crowded()
            raise RequestError(Reason.OVERLOADED, f"too much work in flight ({self._events_in_flight} events, "
                               f"{self._bytes_in_flight} bytes); retry later", retry_after_s=_OVERLOAD_RETRY_AFTER_S)
        self._events_in_flight += count
        self._bytes_in_flight += nbytes
        metrics.EVENTS_IN_FLIGHT.inc(count)
        metrics.BYTES_IN_FLIGHT.inc(nbytes)

    def _release(self, count: int, nbytes: int) -> None:
        self._events_in_flight -= count
        self._bytes_in_flight -= nbytes
        metrics.EVENTS_IN_FLIGHT.dec(count)
        metrics.BYTES_IN_FLIGHT.dec(nbytes)

    async def _run(self, request: pb.UploadEventsRequest, caller: Caller) -> Batch:
        budget_s = self.settings.publish_timeout_s if caller.time_left_s is None else caller.time_left_s
        ctx = RequestContext(request_id=current_request_id(), deadline=time.monotonic() + budget_s)
        batch = Batch.of(request, topic=self.settings.topic_for(request.meta.category), peer_ip=caller.ip,
                         received_at_ms=time.time_ns() // 1_000_000)
        await run_stages(self._stages, batch, ctx, self.tracer)
        return batch

    def _answer(self, batch: Batch, fate: Fate, served_s: float) -> pb.UploadEventsResponse:
        codes = [p.code for p in batch.parts]
        if pb.EVENT_CODE_OK not in codes and pb.EVENT_CODE_PUBLISH_ERROR in codes:
            # Nothing got through and Kafka is why: the whole batch is worth retrying, so say so as a status.
            failed = next(p for p in batch.parts if p.code == pb.EVENT_CODE_PUBLISH_ERROR)
            error = RequestError(Reason.KAFKA_UNAVAILABLE,
                                 f"no event could be published to Kafka ({failed.message}); retry later",
                                 retry_after_s=_KAFKA_RETRY_AFTER_S)
            fate.refused(error)
            raise error
        response = batch.answer(current_request_id())
        fate.answered(batch.meta.category, codes, topic=batch.topic, seconds=served_s)
        return response

    def _listed(self, request: pb.UploadEventsRequest | MalformedRequest) -> bool:
        if isinstance(request, MalformedRequest):
            return False
        meta, s = request.meta, self.settings
        return meta.app_id in s.debug_app_ids or bool(meta.device_id and meta.device_id in s.debug_device_ids)

    def call(self) -> _CallCount:
        """Count one call (unary or stream) as in flight while the ``with`` block runs, for :meth:`drain`."""
        return _CallCount(self)

    def watch_stream_reader(self, reader: asyncio.Task[None]) -> None:
        """Have shutdown stop ``reader`` from taking more batches off its stream."""
        self._stream_readers.add(reader)
        reader.add_done_callback(self._stream_readers.discard)

    async def drain(self, *, quiet_s: float, timeout_s: float) -> None:
        """Refuse new batches with UNAVAILABLE; return once no call is in flight and none came for ``quiet_s``.

        Uploads in flight go on; streams stop reading and end once their taken batches are answered.
        Stopping the gRPC server only then matters: a call that reaches grpc core once
        ``server.stop()`` has begun is CANCELLED (grpc/grpc#41785), which clients do not retry.
        """
        self._draining = True
        for reader in self._stream_readers:
            reader.cancel()
        deadline = time.monotonic() + timeout_s
        while (now := time.monotonic()) < deadline:
            if self._calls_in_flight == 0 and now - self._last_arrival >= quiet_s:
                return
            await asyncio.sleep(min(quiet_s / 4, deadline - now))


class _CallCount:
    """:meth:`Admission.call`'s context manager: a class, since a generator one costs a frame per call."""

    __slots__ = ("_admission",)

    def __init__(self, admission: Admission) -> None:
        self._admission = admission

    def __enter__(self) -> None:
        self._admission._calls_in_flight += 1
        self._admission._last_arrival = time.monotonic()

    def __exit__(self, *_: object) -> None:
        self._admission._calls_in_flight -= 1


def cost_bytes(request: pb.UploadEventsRequest, size: int) -> int:
    """What a batch of ``size`` bytes holds while worked on: itself, and per event a copy of the meta and an envelope.

    Every event is published with the batch meta and the server's fields around it, so the meta counts once
    per event: a small request of many events with large labels is as heavy as it will be in Kafka.
    """
    return size + len(request.events) * (request.meta.ByteSize() + ENVELOPE_BYTES)


def _who(request: pb.UploadEventsRequest | MalformedRequest) -> tuple[str, int]:
    if isinstance(request, MalformedRequest):
        return "", 0
    return request.meta.app_id, len(request.events)
