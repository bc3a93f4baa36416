"""Tracing: one TracerProvider per process, exporting as the standard ``OTEL_*`` variables say.

With the exporter set to ``none`` spans still get their ids (and are not recorded), so every Kafka
message still carries a ``traceparent`` naming the span that published it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.util.types import Attributes

from venus_grpc.settings import Settings
from venus_grpc.version import __version__


def build_tracer_provider(settings: Settings) -> TracerProvider:
    """A provider for ``settings.service_name`` with the configured exporter."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name, "service.version": __version__})
    )
    if settings.traces_exporter == "otlp":
        # Imported here: the OTLP exporter pulls in its own gRPC client setup, needed only when used.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif settings.traces_exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    return provider


def spans_of(provider: TracerProvider, settings: Settings, *, built_here: bool) -> trace.TracerProvider:
    """Where Venus's spans come from (its own and the gRPC server interceptor's): ``provider``, or, when
    spans go nowhere, one that only makes their ids.

    With ``traces_exporter=none`` and the provider built here, no one can ever see a span: recording
    one (attributes, events, links, timing, the processor calls) cost ~10% of a one-event call for
    nothing. Its ids are still made, so ``traceparent`` in Kafka and every log line name the span.
    """
    if built_here and settings.traces_exporter == "none":
        return IdsOnlyTracerProvider(provider.sampler)
    return provider


class IdsOnlyTracerProvider(trace.TracerProvider):
    """Hands out :class:`IdsOnlyTracer` for every instrumentation scope."""

    def __init__(self, sampler: Sampler) -> None:
        self._tracer = IdsOnlyTracer(sampler)

    def get_tracer(self, instrumenting_module_name: str, instrumenting_library_version: str | None = None,
                   schema_url: str | None = None, attributes: Attributes = None) -> trace.Tracer:
        """The one ids-only tracer: there is nothing per scope to keep when nothing is recorded."""
        return self._tracer


class IdsOnlyTracer(trace.Tracer):
    """Spans that are not recorded, with the ids, flags and trace state the SDK would give them.

    A span continues its parent's trace; the configured sampler decides its sampled flag, as in the
    SDK (parent-based by default, so a child follows its parent); a root span gets a new trace id.
    """

    def __init__(self, sampler: Sampler) -> None:
        self._sampler = sampler
        self._ids = RandomIdGenerator()

    def start_span(self, name: str, context: Context | None = None, kind: trace.SpanKind = trace.SpanKind.INTERNAL,
                   attributes: Attributes = None, links: Sequence[trace.Link] | None = None,
                   start_time: int | None = None, record_exception: bool = True,
                   set_status_on_exception: bool = True) -> trace.Span:
        """A non-recording span, child of the current span of ``context`` (default: the current context)."""
        parent = trace.get_current_span(context).get_span_context()
        trace_id = parent.trace_id if parent.is_valid else self._ids.generate_trace_id()
        decision = self._sampler.should_sample(context, trace_id, name, kind, attributes, links)
        flags = trace.TraceFlags(trace.TraceFlags.SAMPLED if decision.decision.is_sampled()  # type: ignore[no-untyped-call]
                                 else trace.TraceFlags.DEFAULT)
        return trace.NonRecordingSpan(trace.SpanContext(trace_id, self._ids.generate_span_id(), is_remote=False,
                                                        trace_flags=flags, trace_state=decision.trace_state))

    # The API's own decorator (_agnosticcontextmanager) is private; contextmanager behaves the same.
    @contextlib.contextmanager
    def start_as_current_span(  # type: ignore[override]
            self, name: str, context: Context | None = None, kind: trace.SpanKind = trace.SpanKind.INTERNAL,
            attributes: Attributes = None, links: Sequence[trace.Link] | None = None, start_time: int | None = None,
            record_exception: bool = True, set_status_on_exception: bool = True,
            end_on_exit: bool = True) -> Iterator[trace.Span]:
        """:meth:`start_span`, current while the block runs."""
        span = self.start_span(name, context, kind, attributes, links)
        with trace.use_span(span, end_on_exit=end_on_exit):
            yield span
