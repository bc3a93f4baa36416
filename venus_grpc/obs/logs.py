"""One logging chain for Venus and the libraries it uses (grpc, aiokafka), as JSON lines.

Every line carries the UTC time, level, logger, service, version, host and pid, and, inside a
request, its ``trace_id``, ``span_id`` and ``request_id``: handlers just log. A *colored* request
(see :func:`color_request`) also writes Venus's DEBUG lines, whatever the configured level.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import orjson
import structlog
from opentelemetry import trace

from venus_grpc.settings import Settings
from venus_grpc.version import __version__

_colored: contextvars.ContextVar[bool] = contextvars.ContextVar("venus_colored", default=False)
_ROOT = logging.getLogger()
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "warn": logging.WARNING,
           "error": logging.ERROR, "exception": logging.ERROR, "critical": logging.CRITICAL}


def color_request() -> None:
    """Log this request (the current context and the tasks it starts) at DEBUG."""
    _colored.set(True)


def is_colored() -> bool:
    """True inside a colored request."""
    return _colored.get()


def debug_enabled() -> bool:
    """True when a DEBUG line would be written here: the request is colored, or the level is DEBUG.

    Asking first saves a hot path the cost of building a line the level filter then drops.
    """
    return _colored.get() or _ROOT.level <= logging.DEBUG


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Route structlog and stdlib records through the same processors to ``stream`` (stderr)."""
    threshold = logging.getLevelName(settings.log_level.upper())
    structlog.configure(
        processors=[_level_filter, *_shared(settings), structlog.processors.format_exc_info,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(settings, json=settings.log_format == "json"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(threshold)
    # Venus's own records always reach the level filter above, which lets DEBUG through only for
    # colored requests; libraries stay at the configured level.
    logging.getLogger("venus_grpc").setLevel(logging.DEBUG)
    # aiokafka logs every reconnect attempt at ERROR; our own lines already say the broker is away.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, threshold))


def formatter(settings: Settings, *, json: bool = True) -> logging.Formatter:
    """The formatter of every Venus handler: JSON lines (or console text for ``venus dev``)."""
    renderer: Any = (structlog.processors.JSONRenderer(serializer=_dumps) if json
                     else structlog.dev.ConsoleRenderer(colors=False))
    return structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[*_shared(settings), structlog.processors.format_exc_info],
    )


def add_trace_ids(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Stamp the current span's trace and span ids, when there is a span."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event["trace_id"] = format(ctx.trace_id, "032x")
        event["span_id"] = format(ctx.span_id, "016x")
    return event


def _shared(settings: Settings) -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _static_fields(settings),
        add_trace_ids,
    ]


def _level_filter(_: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # The threshold is the root logger's level, read per call: loggers cached on first use keep
    # this function, so a later configure_logging() still decides what they write.
    if _LEVELS.get(method, logging.INFO) < _ROOT.level and not _colored.get():
        raise structlog.DropEvent
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
