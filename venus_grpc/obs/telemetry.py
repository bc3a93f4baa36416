"""Tracing: one TracerProvider per process, exporting as the standard ``OTEL_*`` variables say.

With the exporter set to ``none`` spans are still created (and not exported), so every Kafka
message still carries a ``traceparent`` naming the span that published it.
"""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

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
