"""Errors the client raises, carrying what the server said in its ``google.rpc`` details.

Only problems with the request as a whole are raised; a problem with one event is that event's
:class:`~venus_client.model.EventOutcome`, so one bad event never costs the caller the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from venus_client._pb.venus.v1 import ingest_pb2 as pb

if TYPE_CHECKING:
    from venus_client.model import UploadResult


@dataclass(frozen=True)
class FieldViolation:
    """One wrong field of the request, as named by the server (``meta.app_id``)."""

    field: str
    description: str


class VenusError(Exception):
    """Base class of the errors raised by the Venus client."""


class VenusRequestError(VenusError):
    """The server refused the request as a whole with a status that retrying cannot fix.

    ``partial`` holds the outcomes of an upload that had already delivered some events on an earlier
    attempt, so that a refusal never hides events that are already in Kafka.
    """

    def __init__(self, status: grpc.StatusCode, message: str, *, field_violations: tuple[FieldViolation, ...] = (),
                 request_id: str = "", partial: UploadResult | None = None) -> None:
        super().__init__(f"{status.name}: {message}")
        self.status = status
        self.message = message
        self.field_violations = field_violations
        self.request_id = request_id
        self.partial = partial


@dataclass(frozen=True)
class CallFailure:
    """What one failed call said: its status, message, field violations and RetryInfo delay."""

    status: grpc.StatusCode
    message: str
    field_violations: tuple[FieldViolation, ...]
    retry_delay_s: float | None

    @classmethod
    def from_error(cls, err: grpc.aio.AioRpcError) -> CallFailure:
        """Read the ``google.rpc`` details (BadRequest, RetryInfo) of ``err``, when it has any."""
        violations: list[FieldViolation] = []
        delay_s: float | None = None
        status = rpc_status.from_call(err)
        for detail in status.details if status is not None else ():
            bad_request, retry_info = error_details_pb2.BadRequest(), error_details_pb2.RetryInfo()
            if detail.Unpack(bad_request):
                violations.extend(FieldViolation(v.field, v.description) for v in bad_request.field_violations)
            elif detail.Unpack(retry_info):
                delay_s = retry_info.retry_delay.ToNanoseconds() / 1e9
        return cls(err.code(), err.details() or "", tuple(violations), delay_s)

    @classmethod
    def from_rejection(cls, rejection: pb.BatchRejection) -> CallFailure:
        """A batch refused on a stream, as the unary call would have failed."""
        code = _STATUS_BY_NUMBER.get(rejection.status_code, grpc.StatusCode.UNKNOWN)
        delay_s = rejection.retry_after.ToNanoseconds() / 1e9 if rejection.HasField("retry_after") else None
        violations = tuple(FieldViolation(v.field, v.description) for v in rejection.field_violations)
        return cls(code, rejection.message, violations, delay_s)


class CallFailed(Exception):
    """One call (or one batch on a stream) failed as :attr:`failure` says; the upload decides what next."""

    def __init__(self, failure: CallFailure) -> None:
        super().__init__(f"{failure.status.name}: {failure.message}")
        self.failure = failure


_STATUS_BY_NUMBER = {status.value[0]: status for status in grpc.StatusCode}
