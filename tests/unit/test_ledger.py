"""The fault ledger's verdict: what counts as lost, rejected-but-present, duplicated and late."""

from __future__ import annotations

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc.tools.ledger import Kind, Ledger, judge


def _response(*codes: int) -> pb.UploadEventsResponse:
    return pb.UploadEventsResponse(results=[pb.EventResult(id=f"e{n}", code=c, backend_id="b" if c == 1 else "")
                                            for n, c in enumerate(codes)])


def test_acknowledged_missing_is_lost_and_rejected_present_is_counted() -> None:
    """An OK event absent from Kafka is lost; a rejected one present is counted; a publish error is unknown."""
    ledger = Ledger()
    ledger.answered(["a", "b", "c"], _response(pb.EVENT_CODE_OK, pb.EVENT_CODE_VALIDATION_ERROR,
                                               pb.EVENT_CODE_PUBLISH_ERROR), started=0.0, finished=0.1, deadline_s=1)
    verdict = judge(ledger, ["b", "c", "c"])
    assert ledger.outcomes["c"].kind is Kind.UNKNOWN
    assert (verdict.sent, verdict.acknowledged, verdict.lost) == (3, 1, 1)
    assert (verdict.rejected_present, verdict.unknown_present, verdict.duplicates) == (1, 1, 1)
    assert not verdict.sound


def test_an_answer_after_the_deadline_is_late_and_recovery_is_the_first_full_ack() -> None:
    """A call answered after its deadline makes the verdict unsound; recovery counts from the given moment."""
    ledger = Ledger()
    ledger.answered(["a"], _response(pb.EVENT_CODE_OK), started=0.0, finished=2.5, deadline_s=2)
    ledger.answered(["b"], _response(pb.EVENT_CODE_OK), started=3.0, finished=3.5, deadline_s=2)
    verdict = judge(ledger, ["a", "b"])
    assert (verdict.lost, verdict.late_rpcs, verdict.max_s) == (0, 1, 2.5)
    assert ledger.recovery_s(since=1.0) == 2.5
