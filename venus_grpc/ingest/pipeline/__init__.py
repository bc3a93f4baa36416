"""The pipeline: validate → enrich → publish (→ dead letter), one span and one latency sample per stage."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace

from venus_grpc.geoip import GeoLookup
from venus_grpc.ingest.dead_letters import DeadLetters
from venus_grpc.ingest.pipeline.dead_letter import DeadLetter
from venus_grpc.ingest.pipeline.enrich import Enrich
from venus_grpc.ingest.pipeline.model import Batch, RequestContext
from venus_grpc.ingest.pipeline.publish import Publish
from venus_grpc.ingest.pipeline.validate import Validate
from venus_grpc.kafka import Publisher
from venus_grpc.obs import metrics
from venus_grpc.settings import Settings

__all__ = ["Batch", "RequestContext", "Stage", "build_stages", "run_stages"]


class Stage(Protocol):
    """One step over a batch. It rejects bad parts with a code; it never raises for one event."""

    name: str

    async def __call__(self, batch: Batch, ctx: RequestContext) -> None: ...


def build_stages(settings: Settings, *, geo: GeoLookup, publisher: Publisher,
                 dead_letters: DeadLetters | None = None) -> tuple[Stage, ...]:
    """The stages in the order they run, built once at startup; dead letters only when there is a sender."""
    stages: tuple[Stage, ...] = (
        Validate(settings),
        Enrich(geo, max_message_bytes=settings.kafka_max_batch_bytes),
        Publish(publisher, publish_timeout_s=settings.publish_timeout_s),
    )
    if dead_letters is None:
        return stages
    return (*stages, DeadLetter(dead_letters, topic=settings.dead_letter_topic))


async def run_stages(stages: Sequence[Stage], batch: Batch, ctx: RequestContext, tracer: trace.Tracer) -> None:
    """Run every stage over ``batch``, each in its own span (current while it runs) and latency sample."""
    for stage, name, kind, seconds in _plan(tuple(stages)):
        span = tracer.start_span(name, kind=kind)
        if span.is_recording():  # counted only for a span someone will see
            span.set_attribute("venus.events.live", len(batch.live()))
        token = otel_context.attach(trace.set_span_in_context(span))
        started = time.perf_counter()
        try:
            await stage(batch, ctx)
        except Exception as exc:  # a bug in a stage: stages never raise for one event
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            seconds.observe(time.perf_counter() - started)
            otel_context.detach(token)
            span.end()


@functools.lru_cache(maxsize=8)
def _plan(stages: tuple[Stage, ...]) -> tuple[tuple[Stage, str, trace.SpanKind, Any], ...]:
    # Decided once per pipeline, not per batch: span names and kinds, and the stage's histogram child.
    return tuple((stage, f"venus.{stage.name}", getattr(stage, "span_kind", trace.SpanKind.INTERNAL),
                  metrics.STAGE_SECONDS.labels(stage.name)) for stage in stages)
