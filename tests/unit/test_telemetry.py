"""Spans that no exporter will ever see are not recorded, but keep the ids and flags the SDK would give them."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from venus_grpc.obs.telemetry import IdsOnlyTracer, IdsOnlyTracerProvider, spans_of
from venus_grpc.settings import Settings

PARENT = trace.SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=True,
                           trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))


def test_with_no_exporter_venus_records_no_span() -> None:
    """traces_exporter=none on a provider Venus built gives ids-only tracers; a provider passed in is used."""
    settings = Settings(traces_exporter="none")
    assert isinstance(spans_of(TracerProvider(), settings, built_here=True).get_tracer("x"), IdsOnlyTracer)
    given = TracerProvider()
    assert spans_of(given, settings, built_here=False) is given
    assert not isinstance(spans_of(TracerProvider(), Settings(traces_exporter="otlp"), built_here=True),
                          IdsOnlyTracerProvider)


def test_an_unrecorded_span_continues_its_parents_trace_with_a_new_span_id() -> None:
    """A child keeps the caller's trace id and sampled flag, and gets a span id of its own."""
    tracer = IdsOnlyTracer(TracerProvider().sampler)
    parent = trace.set_span_in_context(trace.NonRecordingSpan(PARENT))
    child = tracer.start_span("venus.publish", context=parent).get_span_context()
    assert child.trace_id == PARENT.trace_id and child.trace_flags.sampled
    assert child.span_id not in (0, PARENT.span_id) and child.is_valid and not child.is_remote


def test_an_unrecorded_root_span_takes_the_samplers_decision() -> None:
    """Without a parent the span starts a new trace, sampled as the configured sampler decides."""
    sampled = IdsOnlyTracer(TracerProvider().sampler).start_span("root").get_span_context()
    dropped = IdsOnlyTracer(ALWAYS_OFF).start_span("root").get_span_context()
    assert sampled.is_valid and sampled.trace_flags.sampled
    assert dropped.is_valid and not dropped.trace_flags.sampled
    assert sampled.trace_id != dropped.trace_id
