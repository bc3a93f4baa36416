"""The state of one upload across its attempts: which events are settled, which are still pending.

Each event starts pending and ends with exactly one outcome; an attempt sends only the pending events,
so an event answered OK or rejected is never sent again.
"""

from __future__ import annotations

from collections.abc import Sequence

from venus_client._pb.venus.v1 import ingest_pb2 as pb
from venus_client.errors import VenusError
from venus_client.model import EventOutcome, OutcomeStatus, UploadResult


class PendingBatch:
    """The events of one upload and the outcome each has so far."""

    def __init__(self, events: Sequence[pb.Event]) -> None:
        self._events = list(events)
        self._outcomes: list[EventOutcome | None] = [None] * len(events)
        self._pending = list(range(len(events)))

    @property
    def done(self) -> bool:
        """True when no event can usefully be sent again."""
        return not self._pending

    def to_send(self) -> list[pb.Event]:
        """The events to send on the next attempt, with their original ids."""
        return [self._events[i] for i in self._pending]

    def record(self, response: pb.UploadEventsResponse) -> None:
        """Settle the sent events from their results; the retryable ones stay pending."""
        if len(response.results) != len(self._pending):
            raise VenusError(f"the server answered {len(response.results)} results for {len(self._pending)} events "
                             f"(request {response.request_id})")
        still_pending = []
        for index, result in zip(self._pending, response.results, strict=True):
            self._outcomes[index] = _outcome(result)
            if result.code != pb.EVENT_CODE_OK and result.retryable:
                still_pending.append(index)
        self._pending = still_pending

    def fail_pending(self, code: str, message: str) -> None:
        """Mark every pending event as not delivered because the whole call failed."""
        for index in self._pending:
            self._outcomes[index] = EventOutcome(self._events[index].id, OutcomeStatus.RETRYABLE_FAILURE, code,
                                                 message)

    def result(self, request_id: str, attempts: int) -> UploadResult:
        """The outcome of every event, in the order they were given."""
        outcomes = tuple(o for o in self._outcomes if o is not None)
        if len(outcomes) != len(self._events):
            raise AssertionError("an event was left without an outcome")
        return UploadResult(outcomes, request_id, attempts)

    def settled_result(self, code: str, message: str, request_id: str, attempts: int) -> UploadResult | None:
        """The result so far, the pending events failed with ``code``, when some event already has an outcome."""
        if all(o is None for o in self._outcomes):
            return None
        self.fail_pending(code, message)
        return self.result(request_id, attempts)


def _outcome(result: pb.EventResult) -> EventOutcome:
    if result.code == pb.EVENT_CODE_OK:
        status = OutcomeStatus.OK
    elif result.retryable:
        status = OutcomeStatus.RETRYABLE_FAILURE
    else:
        status = OutcomeStatus.REJECTED
    return EventOutcome(result.id, status, pb.EventCode.Name(result.code), result.message, result.backend_id,
                        topic=result.topic,
                        partition=result.partition if result.HasField("partition") else None,
                        offset=result.offset if result.HasField("offset") else None)
