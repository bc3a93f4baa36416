"""A bounded buffer that batches single events into uploads in the background.

Producers of events one at a time (a request handler, a log hook) should neither wait for the network
nor build batches themselves: one call per event is far slower than a batch, and a hand-rolled batcher
tends to lose what it holds at shutdown or hide what failed. So ``emit`` only queues; a background task
sends a batch through :meth:`VenusClient.upload` (the same retries, ids and outcomes as a direct call)
when it is full by count or by size, or when its first event has waited ``linger_s``.

The queue is bounded, because an outage must not grow memory without limit, and what happens when it
is full is an explicit choice (``when_full``): wait for room, or drop the event and count it. Every event
ends counted exactly once, as sent, rejected, failed or dropped, and every batch's outcomes go to
``on_outcomes``, so a failure is never silent. ``flush`` and ``close`` wait until everything queued has
an outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from venus_client._pb.venus.v1 import ingest_pb2 as pb
from venus_client.errors import VenusError, VenusRequestError
from venus_client.model import EventData, EventOutcome, OutcomeStatus, UploadResult

SERVER_MAX_EVENTS_PER_BATCH = 1000
"""Venus refuses a request of more events than this as a whole (``max_events_per_batch``)."""

OutcomesHook = Callable[[list[EventOutcome]], None]
Uploader = Callable[[Sequence[pb.Event]], Awaitable[UploadResult]]

_log = logging.getLogger(__name__)


class BufferFullError(VenusError):
    """``emit`` found the queue full under the ``"block"`` policy; ``await emit_wait`` waits for room."""


class BufferClosedError(VenusError):
    """An event was emitted after the client began to close; it was not queued."""


@dataclass(frozen=True, kw_only=True)
class BufferConfig:
    """How the buffer batches, how much it holds, and what it does when full.

    A batch is sent when it has ``max_batch_events`` events, when adding the next event would take it
    over ``max_batch_bytes`` (serialized size of its events; a single larger event goes alone), or when
    its first event has waited ``linger_s``. At most ``max_queued_events`` wait to be sent; events taken
    into a batch no longer count. When the queue is full, ``"block"`` makes ``emit_wait`` wait for room
    (and ``emit`` raise :class:`BufferFullError`), ``"drop"`` drops the event and counts it in
    ``counters.dropped``. At most ``max_in_flight`` uploads run at once.
    """

    max_batch_events: int = 500
    max_batch_bytes: int = 1024 * 1024
    linger_s: float = 0.2
    max_queued_events: int = 10_000
    when_full: Literal["block", "drop"] = "block"
    max_in_flight: int = 4

    def __post_init__(self) -> None:
        if not 1 <= self.max_batch_events <= SERVER_MAX_EVENTS_PER_BATCH:
            raise ValueError(f"max_batch_events must be within 1..{SERVER_MAX_EVENTS_PER_BATCH} (the server's "
                             f"limit), got {self.max_batch_events}")
        if self.max_batch_bytes < 1:
            raise ValueError(f"max_batch_bytes must be positive, got {self.max_batch_bytes}")
        if self.linger_s < 0:
            raise ValueError(f"linger_s must not be negative, got {self.linger_s}")
        if self.max_queued_events < 1:
            raise ValueError(f"max_queued_events must be positive, got {self.max_queued_events}")
        if self.when_full not in ("block", "drop"):
            raise ValueError(f'when_full must be "block" or "drop", got {self.when_full!r}')
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be positive, got {self.max_in_flight}")


@dataclass
class BufferCounters:
    """How many emitted events ended each way; ``sent_ok + rejected + failed`` count outcomes.

    ``failed`` are events not delivered although they could be (retries ran out, or the upload broke);
    ``dropped`` were never queued because the queue was full under the ``"drop"`` policy.
    """

    sent_ok: int = 0
    rejected: int = 0
    failed: int = 0
    dropped: int = 0
    batches: int = 0


@dataclass(frozen=True)
class _Queued:
    event: pb.Event
    size: int
    queued_at: float


class _Signal:
    """Wakes every task waiting for "something changed"; waiters re-check their own condition.

    ``asyncio.Condition`` needs its lock to notify, which the synchronous ``emit`` cannot take.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout_s: float | None = None) -> None:
        """Return on the next ``fire``, or after ``timeout_s`` (the linger deadline), whichever is first."""
        event = self._event
        if timeout_s is None:
            await event.wait()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=max(timeout_s, 0.0))


class EventBuffer:
    """The queue and the background task of one :class:`VenusClient`; use it through the client.

    Must be used from the event loop's thread: ``emit`` starts the background task on the running loop.
    """

    def __init__(self, upload: Uploader, config: BufferConfig, on_outcomes: OutcomesHook | None = None) -> None:
        self.config = config
        self.counters = BufferCounters()
        self._upload = upload
        self._on_outcomes = on_outcomes
        self._queue: deque[_Queued] = deque()
        self._queued_bytes = 0
        self._in_flight: set[asyncio.Task[None]] = set()
        self._changed = _Signal()
        self._flushers = 0
        self._closing = False
        self._runner: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        """Events waiting to be taken into a batch."""
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        """Uploads running now."""
        return len(self._in_flight)

    def emit(self, event: pb.Event | EventData) -> bool:
        """Queue ``event`` without waiting; False when it was dropped because the queue is full.

        Raises :class:`BufferFullError` when full under ``"block"``, :class:`BufferClosedError` after close.
        """
        if self._closing:
            raise BufferClosedError("the client is closing; the event was not queued")
        if len(self._queue) >= self.config.max_queued_events:
            if self.config.when_full == "drop":
                self.counters.dropped += 1
                return False
            raise BufferFullError(f"{len(self._queue)} events are queued; await emit_wait() to wait for room")
        self._push(event)
        return True

    async def emit_wait(self, event: pb.Event | EventData) -> bool:
        """Queue ``event``, waiting for room under ``"block"``; under ``"drop"`` the same as :meth:`emit`."""
        if self.config.when_full == "block":
            while not self._closing and len(self._queue) >= self.config.max_queued_events:
                await self._changed.wait()
        return self.emit(event)

    async def flush(self) -> None:
        """Send everything queued now, without lingering, and wait until no upload is running.

        Events emitted while it waits are sent as well, so under a steady stream it returns only when
        the queue runs empty.
        """
        self._flushers += 1
        try:
            self._changed.fire()
            while self._queue or self._in_flight:
                self._start()
                await self._changed.wait()
        finally:
            self._flushers -= 1

    async def close(self) -> None:
        """Refuse new events, send everything queued, and wait for every outcome; safe to call twice."""
        self._closing = True
        self._changed.fire()
        if self._queue:
            self._start()
        if self._runner is not None:
            await self._runner
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    def _push(self, event: pb.Event | EventData) -> None:
        self._start()  # first: off the event loop it raises before the event is queued uncounted
        message = event.to_proto() if isinstance(event, EventData) else event
        self._queue.append(_Queued(message, message.ByteSize(), time.monotonic()))
        self._queued_bytes += self._queue[-1].size
        if len(self._queue) == 1 or self._batch_full():
            self._changed.fire()  # a new linger deadline, or a batch to send now

    def _start(self) -> None:
        if self._runner is None or (self._runner.done() and not self._closing):
            self._runner = asyncio.get_running_loop().create_task(self._run(), name="venus-buffer")

    def _batch_full(self) -> bool:
        return (len(self._queue) >= self.config.max_batch_events
                or self._queued_bytes >= self.config.max_batch_bytes)

    def _batch_due(self) -> bool:
        return (self._closing or self._flushers > 0 or self._batch_full()
                or time.monotonic() >= self._queue[0].queued_at + self.config.linger_s)

    async def _run(self) -> None:
        """Take batches off the queue while upload slots are free; ends once closing and empty."""
        while True:
            while not self._queue:
                if self._closing:
                    return
                await self._changed.wait()
            while not self._batch_due():
                await self._changed.wait(self._queue[0].queued_at + self.config.linger_s - time.monotonic())
            # Events stay queued (and count against the bound) until an upload slot is free, so a stalled
            # server pushes back on emit instead of piling batches up in memory.
            while len(self._in_flight) >= self.config.max_in_flight:
                await self._changed.wait()
            task = asyncio.get_running_loop().create_task(self._send(self._take_batch()))
            self._in_flight.add(task)
            self._changed.fire()  # room in the queue for blocked emitters

    def _take_batch(self) -> list[pb.Event]:
        batch: list[pb.Event] = []
        size = 0
        while self._queue and len(batch) < self.config.max_batch_events:
            head = self._queue[0]
            if batch and size + head.size > self.config.max_batch_bytes:
                break
            self._queue.popleft()
            self._queued_bytes -= head.size
            size += head.size
            batch.append(head.event)
        return batch

    async def _send(self, batch: list[pb.Event]) -> None:
        try:
            outcomes = await self._outcomes_of(batch)
            self.counters.batches += 1
            for outcome in outcomes:
                if outcome.status is OutcomeStatus.OK:
                    self.counters.sent_ok += 1
                elif outcome.status is OutcomeStatus.REJECTED:
                    self.counters.rejected += 1
                else:
                    self.counters.failed += 1
            if self._on_outcomes is not None:
                try:
                    self._on_outcomes(outcomes)
                except Exception:  # a broken hook must not stop the buffer, nor lose the count
                    _log.exception("venus_client on_outcomes hook failed")
        finally:
            current = asyncio.current_task()
            if current is not None:
                self._in_flight.discard(current)
            self._changed.fire()

    async def _outcomes_of(self, batch: list[pb.Event]) -> list[EventOutcome]:
        """One outcome per event, also when the upload raised, so no event of the batch goes uncounted."""
        try:
            return list((await self._upload(batch)).outcomes)
        except VenusRequestError as err:
            # Refused as a whole: sending the same request again would be refused again.
            if err.partial is not None:  # some events were delivered on an earlier attempt
                return list(err.partial.outcomes)
            return [EventOutcome(e.id, OutcomeStatus.REJECTED, err.status.name, err.message) for e in batch]
        except Exception as err:  # the upload broke (channel closed, ...): the events may still be sent later
            _log.exception("venus_client buffered upload failed")
            return [EventOutcome(e.id, OutcomeStatus.RETRYABLE_FAILURE, type(err).__name__, str(err)) for e in batch]
