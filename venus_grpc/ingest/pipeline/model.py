"""What flows through the pipeline: a batch and its parts, one part per request event.

Every part starts pending and ends with exactly one outcome; answering while a part is still
pending is a bug, and :meth:`Batch.answer` refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc.geoip import NOWHERE, Geo
from venus_grpc.kafka import Delivery

EventCode = pb.EventCode
_OK = pb.EVENT_CODE_OK
_Results = RepeatedCompositeFieldContainer[pb.EventResult]


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What every stage may need to know about the RPC it serves."""

    request_id: str
    deadline: float  # time.monotonic() by which the RPC must be answered


@dataclass(slots=True)
class Part:
    """One request event on its way through the pipeline."""

    index: int
    event: pb.Event
    code: EventCode = pb.EVENT_CODE_UNSPECIFIED  # pending
    message: str = ""
    retryable: bool = False
    ip: str = ""  # the address used for GeoIP, set by validation
    occurred_at_ms: int | None = None  # the event's occurred_at, set by validation when it has one
    backend_id: str = ""
    geo: Geo = NOWHERE
    value: bytes = b""  # the Kafka message value, set by enrichment
    delivery: Delivery | None = None  # where Kafka put it, set when the part is accepted

    @property
    def pending(self) -> bool:
        """True while no stage has decided this part's outcome."""
        return self.code == pb.EVENT_CODE_UNSPECIFIED

    def reject(self, code: EventCode, message: str, *, retryable: bool = False) -> None:
        """End this part with a non-OK outcome."""
        self._end(code)
        self.message, self.retryable = message, retryable

    def accept(self, delivery: Delivery) -> None:
        """End this part as published and acknowledged at ``delivery``."""
        self._end(pb.EVENT_CODE_OK)
        self.delivery = delivery

    def add_result(self, results: _Results) -> None:
        """Append this part's answer to ``results``; where Kafka put it when it was published."""
        # Added in place with only the fields an outcome carries: building a message and copying it into
        # the response, setting fields one by one, or setting defaults, each costs per event.
        delivery = self.delivery
        if self.code == _OK and delivery is not None:
            results.add(id=self.event.id, backend_id=self.backend_id, code=_OK, topic=delivery.topic,
                        partition=delivery.partition, offset=delivery.offset)
        else:
            results.add(id=self.event.id, backend_id=self.backend_id, code=self.code, message=self.message,
                        retryable=self.retryable)

    def _end(self, code: EventCode) -> None:
        # A second decision would overwrite the first: a stage that runs on a decided part is a bug.
        if not self.pending:
            raise RuntimeError(f"event #{self.index} already ended with {pb.EventCode.Name(self.code)}; "
                               f"it cannot also end with {pb.EventCode.Name(code)}")
        if code == pb.EVENT_CODE_UNSPECIFIED:
            raise ValueError("EVENT_CODE_UNSPECIFIED means pending; it is not an outcome")
        self.code = code


@dataclass(slots=True)
class Batch:
    """A validated request: its meta once, its events as parts in request order."""

    meta: pb.BatchMeta
    topic: str
    peer_ip: str
    received_at_ms: int
    parts: list[Part] = field(default_factory=list)

    @classmethod
    def of(cls, request: pb.UploadEventsRequest, *, topic: str, peer_ip: str, received_at_ms: int) -> Batch:
        """Split ``request`` into one pending part per event."""
        return cls(
            meta=request.meta,
            topic=topic,
            peer_ip=peer_ip,
            received_at_ms=received_at_ms,
            parts=[Part(index=i, event=e) for i, e in enumerate(request.events)],
        )

    def live(self) -> list[Part]:
        """The parts no stage has rejected yet."""
        return [p for p in self.parts if p.pending]

    def answer(self, request_id: str) -> pb.UploadEventsResponse:
        """The response: the overall code and one result per request event, in request order."""
        if any(p.pending for p in self.parts):
            raise RuntimeError("a part is still pending: every event must end with one outcome")
        code, message = self.overall()
        response = pb.UploadEventsResponse(code=code, message=message, request_id=request_id)
        results = response.results
        for part in self.parts:
            part.add_result(results)
        return response

    def overall(self) -> tuple[pb.ResultCode, str]:
        """The batch's result code and a summary message."""
        ok = sum(p.code == pb.EVENT_CODE_OK for p in self.parts)
        total = len(self.parts)
        if ok == total:
            return pb.RESULT_CODE_ALL_SUCCESS, f"all {total} events published"
        if ok == 0:
            return pb.RESULT_CODE_ALL_FAIL, f"none of {total} events published: see results"
        return pb.RESULT_CODE_PARTIAL_SUCCESS, f"{ok} of {total} events published: see results"
