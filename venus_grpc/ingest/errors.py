"""Request-level failures: one table from reason to status, with google.rpc details.

A problem with the whole request ends the call with a status; a problem with one event is that
event's result and never comes here. The status codes are gRPC's, which the Connect protocol shares by
name, so any transport answers the same reason with the same code and details.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb


class Reason(enum.Enum):
    """Why a whole request failed."""

    MALFORMED_REQUEST = "malformed_request"
    BAD_META = "bad_meta"
    NO_EVENTS = "no_events"
    TOO_MANY_EVENTS = "too_many_events"
    CATEGORY_NOT_ALLOWED = "category_not_allowed"
    NO_REQUEST = "no_request"
    READ_TIMEOUT = "read_timeout"
    KEY_MISSING = "key_missing"
    KEY_UNKNOWN = "key_unknown"
    KEY_REVOKED = "key_revoked"
    PERMISSION_DENIED = "permission_denied"
    QUOTA_EXCEEDED = "quota_exceeded"
    OVERLOADED = "overloaded"
    DEADLINE_UNREACHABLE = "deadline_unreachable"
    KAFKA_UNAVAILABLE = "kafka_unavailable"
    SHUTTING_DOWN = "shutting_down"


STATUS_OF: dict[Reason, grpc.StatusCode] = {
    Reason.MALFORMED_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.BAD_META: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.NO_EVENTS: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.TOO_MANY_EVENTS: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.CATEGORY_NOT_ALLOWED: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.NO_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.READ_TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    Reason.KEY_MISSING: grpc.StatusCode.UNAUTHENTICATED,
    Reason.KEY_UNKNOWN: grpc.StatusCode.UNAUTHENTICATED,
    Reason.KEY_REVOKED: grpc.StatusCode.UNAUTHENTICATED,
    Reason.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    Reason.QUOTA_EXCEEDED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Reason.OVERLOADED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Reason.DEADLINE_UNREACHABLE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Reason.KAFKA_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Reason.SHUTTING_DOWN: grpc.StatusCode.UNAVAILABLE,
}


class RequestError(Exception):
    """The whole request fails with :data:`STATUS_OF` ``[reason]``.

    ``violations`` are (field path, description) pairs sent as a ``google.rpc.BadRequest``;
    ``quota_violations`` (subject, description) pairs as a ``google.rpc.QuotaFailure``;
    ``retry_after_s`` is sent as a ``google.rpc.RetryInfo``.
    """

    def __init__(self, reason: Reason, message: str, *, violations: Sequence[tuple[str, str]] = (),
                 quota_violations: Sequence[tuple[str, str]] = (), retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.violations = tuple(violations)
        self.quota_violations = tuple(quota_violations)
        self.retry_after_s = retry_after_s

    @property
    def status(self) -> grpc.StatusCode:
        """The gRPC status this failure ends the RPC with."""
        return STATUS_OF[self.reason]


def status_of(error: RequestError) -> status_pb2.Status:
    """``error`` as a ``google.rpc.Status``: code, message, and BadRequest/QuotaFailure/RetryInfo details."""
    details: list[any_pb2.Any] = []
    if error.violations:
        details.append(_pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=path, description=text)
            for path, text in error.violations
        ])))
    if error.quota_violations:
        details.append(_pack(error_details_pb2.QuotaFailure(violations=[
            error_details_pb2.QuotaFailure.Violation(subject=subject, description=text)
            for subject, text in error.quota_violations
        ])))
    if error.retry_after_s is not None:
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=_duration(error.retry_after_s))))
    return status_pb2.Status(code=error.status.value[0], message=error.message, details=details)


def rejection_of(error: RequestError) -> pb.BatchRejection:
    """``error`` as a stream answers it: the batch is refused, the stream goes on."""
    rejection = pb.BatchRejection(
        status_code=error.status.value[0],
        message=error.message,
        field_violations=[pb.FieldViolation(field=path, description=text) for path, text in error.violations],
    )
    if error.retry_after_s is not None:
        rejection.retry_after.CopyFrom(_duration(error.retry_after_s))
    return rejection


def _duration(seconds: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(seconds * 1e9))
    return duration


def _pack(message: error_details_pb2.BadRequest | error_details_pb2.QuotaFailure | error_details_pb2.RetryInfo
          ) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed
