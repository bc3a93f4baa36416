"""A synchronous client for code without an event loop (scripts, WSGI apps, worker threads).

It runs a :class:`VenusClient` on a private event loop in a daemon thread instead of using grpc's
synchronous API, so that there is one implementation of retries, backoff and outcomes to get right,
not two; and because the loop is private, it also works when the calling thread already runs a loop
of its own (where ``asyncio.run`` would fail). The caller's OpenTelemetry context is carried over to
the loop thread for each upload. ``emit`` feeds the same batching buffer as the asynchronous
client; its ``on_outcomes`` hook runs on the loop thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import Literal, TypeVar

import grpc
from opentelemetry import context as otel_context

from venus_client.buffer import BufferConfig, BufferCounters, OutcomesHook
from venus_client.client import EventLike, MetaLike, VenusClient
from venus_client.model import UploadResult
from venus_client.retry import RetryPolicy

_T = TypeVar("_T")


class SyncVenusClient:
    """The blocking counterpart of :class:`VenusClient`, with the same arguments; use it as ``with``."""

    def __init__(self, target: str, *, credentials: grpc.ChannelCredentials | None = None,
                 api_key: str | None = None, default_meta: MetaLike | None = None, deadline_s: float = 10.0,
                 compression: Literal["gzip"] | None = None, retry: RetryPolicy | None = None,
                 channel_options: Sequence[tuple[str, str | int]] = (), buffer: BufferConfig | None = None,
                 on_outcomes: OutcomesHook | None = None, transport: Literal["stream", "unary"] = "stream") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="venus-client", daemon=True)
        self._thread.start()

        async def build() -> VenusClient:  # grpc.aio channels belong to the loop they are made on
            return VenusClient(target, credentials=credentials, api_key=api_key, default_meta=default_meta,
                               deadline_s=deadline_s, compression=compression, retry=retry,
                               channel_options=channel_options, buffer=buffer, on_outcomes=on_outcomes,
                               transport=transport)

        self._client = self._run(build)

    def __enter__(self) -> SyncVenusClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def upload(self, events: Iterable[EventLike], meta: MetaLike | None = None, *,
               request_id: str | None = None) -> UploadResult:
        """Like :meth:`VenusClient.upload`, blocking until the upload is settled."""
        caller_context = otel_context.get_current()
        batch = list(events)

        async def upload() -> UploadResult:
            token = otel_context.attach(caller_context)
            try:
                return await self._client.upload(batch, meta, request_id=request_id)
            finally:
                otel_context.detach(token)

        return self._run(upload)

    def emit(self, event: EventLike) -> bool:
        """Queue one event for a background batch upload; under ``"block"`` wait for room in the queue.

        Answers False when the event was dropped (queue full under ``"drop"``, counted in ``counters``).
        """
        return self._run(lambda: self._client.emit_wait(event))

    def flush(self) -> None:
        """Block until every emitted event has been uploaded and has its outcome."""
        self._run(self._client.flush)

    @property
    def counters(self) -> BufferCounters:
        """Live counts of emitted events: sent OK, rejected, failed, dropped (and batches sent)."""
        return self._client.counters

    def close(self) -> None:
        """Send what is queued, close the channel and stop the loop thread; safe to call twice."""
        if not self._loop.is_running():
            return
        self._run(self._client.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def _run(self, make: Callable[[], Awaitable[_T]]) -> _T:
        async def run() -> _T:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()
