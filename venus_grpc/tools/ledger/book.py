"""The ledger itself: one outcome per event id, and one record per RPC.

Every event sent ends with exactly one outcome, so that the verifier can tell what Kafka must
hold (OK), must not hold (REJECTED), and may hold (FAILED, UNKNOWN).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb

# Ambiguous by nature: the request may or may not have been processed.
_UNKNOWN_STATUSES = frozenset({grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED,
                               grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL})
_DETAILS_KEY = "grpc-status-details-bin"
# Answered with a per-event code that can still land in Kafka later (a send the broker acks after
# Venus stopped waiting): not a rejection, an unknown.
_MAY_LAND = frozenset({pb.EVENT_CODE_PUBLISH_ERROR})


class Kind(enum.Enum):
    """What the client was told about one event."""

    OK = "ok"  # acknowledged: must be in Kafka
    REJECTED = "rejected"  # a non-retryable per-event code: must not be in Kafka
    FAILED = "failed"  # the RPC failed with a status Venus chose (UNAVAILABLE + RetryInfo, ...)
    UNKNOWN = "unknown"  # deadline, cancel, reset, or a publish error: it may be in Kafka


@dataclass(frozen=True, slots=True)
class Outcome:
    """One event's outcome; ``detail`` is the backend_id when OK, else the code or status name."""

    kind: Kind
    detail: str


@dataclass(frozen=True, slots=True)
class Rpc:
    """One call: when it started and ended (monotonic seconds), its deadline and what came of it."""

    started: float
    finished: float
    deadline_s: float
    events: int
    ok_events: int
    status: str  # "OK" or the gRPC status name
    retry_after_s: float = 0.0  # the server's RetryInfo on a failed call (0: none given)

    @property
    def latency_s(self) -> float:
        """Seconds from sending to the answer."""
        return self.finished - self.started

    @property
    def late(self) -> bool:
        """Answered after its deadline, or not answered by it (the client gave up)."""
        return self.status == "DEADLINE_EXCEEDED" or self.latency_s > self.deadline_s


@dataclass
class Ledger:
    """Outcomes by event id, in the order they were recorded, and every RPC."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    rpcs: list[Rpc] = field(default_factory=list)

    def answered(self, ids: Sequence[str], response: pb.UploadEventsResponse, *, started: float, finished: float,
                 deadline_s: float) -> None:
        """Record a response: one outcome per event result, in request order."""
        for event_id, result in zip(ids, response.results, strict=True):
            if result.code == pb.EVENT_CODE_OK:
                self._put(event_id, Outcome(Kind.OK, result.backend_id))
            else:
                kind = Kind.UNKNOWN if result.code in _MAY_LAND else Kind.REJECTED
                self._put(event_id, Outcome(kind, pb.EventCode.Name(result.code)))
        ok = sum(r.code == pb.EVENT_CODE_OK for r in response.results)
        self.rpcs.append(Rpc(started, finished, deadline_s, len(ids), ok, "OK"))

    def failed(self, ids: Sequence[str], error: grpc.aio.AioRpcError, *, started: float, finished: float,
               deadline_s: float) -> Rpc:
        """Record a failed RPC: every event of it gets the same outcome; the call's record is returned."""
        code = error.code()
        # A status Venus sent carries google.rpc details; a reset connection's UNAVAILABLE does not.
        from_venus = any(key == _DETAILS_KEY for key, _ in (error.trailing_metadata() or ()))
        kind = Kind.UNKNOWN if code in _UNKNOWN_STATUSES or not from_venus else Kind.FAILED
        for event_id in ids:
            self._put(event_id, Outcome(kind, code.name))
        rpc = Rpc(started, finished, deadline_s, len(ids), 0, code.name, retry_delay_s(error))
        self.rpcs.append(rpc)
        return rpc

    def ids(self, kind: Kind) -> set[str]:
        """Ids of every event with outcome ``kind``."""
        return {i for i, o in self.outcomes.items() if o.kind is kind}

    def recovery_s(self, since: float) -> float | None:
        """Seconds from ``since`` until the first RPC sent after it was answered all OK (None: never)."""
        done = [r.finished for r in self.rpcs if r.started >= since and r.events and r.ok_events == r.events]
        return min(done) - since if done else None

    def _put(self, event_id: str, outcome: Outcome) -> None:
        if event_id in self.outcomes:
            raise ValueError(f"event id {event_id!r} was recorded twice: ids must be unique per ledger")
        self.outcomes[event_id] = outcome


def retry_delay_s(error: grpc.aio.AioRpcError) -> float:
    """The delay the server's RetryInfo asks for, or 0 when the status carries none."""
    status = rpc_status.from_call(error)
    for detail in status.details if status is not None else ():
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return float(info.retry_delay.ToNanoseconds()) / 1e9
    return 0.0
