"""One logging chain for Venus and the libraries it uses (grpc, aiokafka), as JSON lines.

Every line carries the UTC time, level, logger, service, version, host and pid, and, inside a
request, its ``trace_id``, ``span_id`` and ``request_id``: handlers just log.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any, TextIO

import orjson
import structlog
from opentelemetry import trace

from venus_grpc.settings import Settings
from venus_grpc.version import __version__


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Route structlog and stdlib records through the same processors to ``stream`` (stderr)."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _static_fields(settings),
        add_trace_ids,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_dumps) if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared,
                    structlog.processors.format_exc_info,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[*shared, structlog.processors.format_exc_info],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # aiokafka logs every reconnect attempt at ERROR; our own lines already say the broker is away.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))


def add_trace_ids(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Stamp the current span's trace and span ids, when there is a span."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event["trace_id"] = format(ctx.trace_id, "032x")
        event["span_id"] = format(ctx.span_id, "016x")
    return event


def _static_fields(settings: Settings) -> Any:
    fields = {"service": settings.service_name, "version": __version__, "host": socket.gethostname(),
              "pid": os.getpid()}

    def add(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
        event.update(fields)
        return event

    return add


def _dumps(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=str).decode()
