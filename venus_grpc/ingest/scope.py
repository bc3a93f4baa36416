"""One request's context: its id in W3C baggage and in every log line, its API key's grant, its coloring.

:func:`request_scope` binds all of it and resets all of it on the way out, for any transport: the gRPC
interceptor opens one per call, a stream one per batch. The id comes from baggage ``request_id``, else
the transport's ``x-request-id`` header, else is made here; the Kafka ``baggage`` header then carries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import re
import uuid
from collections.abc import Iterator

import structlog
from opentelemetry import baggage
from opentelemetry import context as otel_context

from venus_grpc.ingest.keys import Grant
from venus_grpc.obs.logs import color_request

REQUEST_ID_KEY = "request_id"
DEBUG_KEY = "venus.debug"  # baggage entry that colors a request: logged at DEBUG here and downstream
REQUEST_ID_HEADER = "x-request-id"
# Ids end up in headers, logs and Kafka: accept only short, printable ones from clients.
_ACCEPTABLE_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
_grant: contextvars.ContextVar[Grant | None] = contextvars.ContextVar("venus_grant", default=None)


def current_request_id() -> str:
    """The id of the request being served (empty outside a request)."""
    value = baggage.get_baggage(REQUEST_ID_KEY)
    return value if isinstance(value, str) else ""


def current_grant() -> Grant | None:
    """The grant of the key that authenticated the running call; ``None`` when keys are off."""
    return _grant.get()


def pick_request_id(from_header: str) -> str:
    """The caller's id (baggage first, then the header) when it is acceptable, else a new one."""
    for candidate in (baggage.get_baggage(REQUEST_ID_KEY), from_header):
        if isinstance(candidate, str) and _ACCEPTABLE_ID.fullmatch(candidate):
            return candidate
    return uuid.uuid4().hex


@contextlib.contextmanager
def request_scope(request_id: str, *, grant: Grant | None = None) -> Iterator[None]:
    """Make ``request_id`` (and ``grant``) current in baggage, logs and this task until the block ends."""
    task = asyncio.current_task()
    token = otel_context.attach(baggage.set_baggage(REQUEST_ID_KEY, request_id))
    bound = structlog.contextvars.bind_contextvars(request_id=request_id)
    grant_token = _grant.set(grant) if grant is not None else None
    try:
        yield
    finally:
        # A stream's generator closed by the server from another task (a cancelled call, shutdown) cannot
        # reset what its own task set (opentelemetry-python-contrib#2357); that context dies with the task.
        if asyncio.current_task() is task:
            if grant_token is not None:
                _grant.reset(grant_token)
            structlog.contextvars.reset_contextvars(**bound)
            otel_context.detach(token)


def color_if(listed: bool) -> contextvars.Token[otel_context.Context] | None:
    """Log this request at DEBUG when the caller asked (baggage ``venus.debug``) or its app or device is ``listed``.

    The flag then travels on in the Kafka ``baggage`` header, so downstream analyzers can do the same.
    Returns what :func:`uncolor` takes back at the request's end.
    """
    asked = baggage.get_baggage(DEBUG_KEY) in ("1", "true")
    if not (asked or listed):
        return None
    color_request()
    return None if asked else otel_context.attach(baggage.set_baggage(DEBUG_KEY, "1"))


def uncolor(token: contextvars.Token[otel_context.Context] | None) -> None:
    """Undo what :func:`color_if` added to the context."""
    if token is not None:
        otel_context.detach(token)
