"""Publish: send every enriched event to its category's topic; OK only once Kafka acknowledged it."""

from __future__ import annotations

import time

from opentelemetry import propagate, trace

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc.ingest.pipeline.model import Batch, RequestContext
from venus_grpc.kafka import Delivery, Publisher

# Answer a little before the caller's deadline, so a slow broker yields per-event results
# instead of DEADLINE_EXCEEDED on the client.
_DEADLINE_MARGIN_S = 0.05


class Publish:
    """Sends the live parts with ``traceparent``/``tracestate``/``baggage`` headers of this stage's span."""

    name = "publish"
    span_kind = trace.SpanKind.PRODUCER

    def __init__(self, publisher: Publisher, *, publish_timeout_s: float) -> None:
        self._publisher = publisher
        self._timeout_s = publish_timeout_s

    async def __call__(self, batch: Batch, ctx: RequestContext) -> None:
        parts = batch.live()
        if not parts:
            return
        trace.get_current_span().set_attributes({
            "messaging.system": "kafka",
            "messaging.destination.name": batch.topic,
            "messaging.batch.message_count": len(parts),
        })
        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # the current span is this stage's: downstream continues from it
        headers = [(name, value.encode()) for name, value in carrier.items()]
        timeout_s = min(self._timeout_s, ctx.deadline - time.monotonic() - _DEADLINE_MARGIN_S)
        outcomes = await self._publisher.publish(
            batch.topic, batch.meta.device_id.encode() or None, [p.value for p in parts], headers,
            timeout_s=timeout_s,
        )
        for part, outcome in zip(parts, outcomes, strict=True):
            if isinstance(outcome, Delivery):
                part.accept(outcome)
            else:
                part.reject(pb.EVENT_CODE_PUBLISH_ERROR, f"Kafka did not acknowledge the event: {outcome}",
                            retryable=bool(getattr(outcome, "retriable", True)))
