"""Dead letters: events rejected for their content, sent to ``dead_letter_topic`` without an answer waiting.

The pipeline's ``dead_letter`` stage hands its letters to :meth:`DeadLetters.offer`, which never waits: a
letter is queued while the letters held (queued, or sent and not yet acknowledged) stay within
``dead_letter_max_pending_bytes``, and dropped otherwise. A background task sends the queue through a
producer of its own (``acks="all"``), so that a slow, frozen or unknown dead-letter topic never stands in
front of events. Every letter ends counted once in ``venus_dead_letters_total{outcome}``: published,
failed or dropped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from venus_grpc.kafka import Headers
from venus_grpc.kafka_clients import new_producer, started, stop_within
from venus_grpc.obs import metrics
from venus_grpc.settings import Settings


@dataclass(frozen=True, slots=True)
class Letter:
    """One dead letter: the key, value and headers of its Kafka message."""

    key: bytes | None
    value: bytes
    headers: Headers

    @property
    def size(self) -> int:
        """The bytes it holds while it waits."""
        return len(self.key or b"") + len(self.value) + sum(len(k) + len(v) for k, v in self.headers)


class DeadLetters:
    """A bounded, fire-and-forget sender of dead letters: :meth:`start`, :meth:`offer`, :meth:`close`."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._held_bytes = 0
        self._queue: collections.deque[Letter] = collections.deque()
        self._unacknowledged: dict[asyncio.Future[object], Letter] = {}
        self._queued = asyncio.Event()  # set while the queue has letters
        self._settled = asyncio.Event()  # set while no letter is held
        self._settled.set()
        self._task: asyncio.Task[None] | None = None
        self._producer: AIOKafkaProducer | None = None

    def offer(self, letters: Iterable[Letter]) -> None:
        """Queue ``letters`` to be sent; drop (and count) each that would hold more than the bound. Never waits."""
        for letter in letters:
            if self._held_bytes + letter.size > self._settings.dead_letter_max_pending_bytes:
                metrics.DEAD_LETTERS.labels("dropped").inc()
                continue
            self._held_bytes += letter.size
            self._queue.append(letter)
            self._queued.set()
            self._settled.clear()

    def start(self) -> None:
        """Connect and send in the background until :meth:`close`."""
        self._task = asyncio.create_task(self._run(), name="venus-dead-letters")

    async def close(self, *, timeout_s: float) -> None:
        """Send what is held for at most ``timeout_s``, then stop; letters still queued then are dropped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), timeout=timeout_s)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._producer is not None:
            with contextlib.suppress(TimeoutError, KafkaError):  # a frozen broker: stop() can hang (aiokafka#1101)
                await stop_within(self._producer, timeout_s)
        for sent, letter in list(self._unacknowledged.items()):  # the producer stopped without resolving them
            sent.remove_done_callback(self._acknowledged)
            del self._unacknowledged[sent]
            self._end(letter, "failed")
        while self._queue:
            self._end(self._queue.popleft(), "dropped")

    async def _run(self) -> None:
        s = self._settings
        bootstrap = s.dead_letter_kafka_bootstrap or s.kafka_bootstrap
        new = functools.partial(new_producer, s, bootstrap=bootstrap, client_id=f"{s.kafka_client_id}-dead-letters")
        self._producer = producer = await started(new, retry_s=s.kafka_connect_retry_s, bootstrap=bootstrap,
                                                  purpose="dead letters")
        while True:
            await self._queued.wait()
            letter = self._queue[0]  # taken off only once sent: cancelled in send(), close() still counts it
            try:
                sent = await producer.send(s.dead_letter_topic, letter.value, key=letter.key, headers=letter.headers)
            except KafkaError:  # this letter cannot be sent (too large, topic not allowed, ...): the next may
                sent = None
            self._queue.popleft()
            if not self._queue:
                self._queued.clear()
            if sent is None:
                self._end(letter, "failed")
            else:
                self._unacknowledged[sent] = letter
                sent.add_done_callback(self._acknowledged)

    def _acknowledged(self, sent: asyncio.Future[object]) -> None:
        letter = self._unacknowledged.pop(sent)
        self._end(letter, "failed" if sent.cancelled() or sent.exception() is not None else "published")

    def _end(self, letter: Letter, outcome: str) -> None:
        self._held_bytes -= letter.size
        metrics.DEAD_LETTERS.labels(outcome).inc()
        if not self._held_bytes:
            self._settled.set()
