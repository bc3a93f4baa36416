"""What a caller hands to the client and what it gets back, as plain typed values.

The generated messages are accepted too, but a caller should not need to know protobuf to send an
event, nor to read ``retryable`` flags and enum numbers to learn what happened to it: every event ends
with exactly one :class:`EventOutcome`, in the order the events were given.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from venus_client._pb.venus.v1 import ingest_pb2 as pb


@dataclass(frozen=True, kw_only=True)
class Meta:
    """Where a batch comes from (``BatchMeta``); empty fields are left to the client's default meta."""

    app_id: str = ""
    category: str = ""
    platform: pb.Platform = pb.PLATFORM_UNSPECIFIED
    app_version: str = ""
    sdk_version: str = ""
    device_id: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_proto(self) -> pb.BatchMeta:
        """The ``BatchMeta`` message for this meta."""
        return pb.BatchMeta(app_id=self.app_id, category=self.category, platform=self.platform,
                            app_version=self.app_version, sdk_version=self.sdk_version,
                            device_id=self.device_id, labels=dict(self.labels))


@dataclass(frozen=True, kw_only=True)
class EventData:
    """One event to upload; a dict payload is sent as JSON, bytes as they are (they must be a JSON object)."""

    id: str
    payload: Mapping[str, Any] | bytes
    occurred_at: datetime | None = None
    ip: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)

    def to_proto(self) -> pb.Event:
        """The ``Event`` message for this event."""
        payload = self.payload if isinstance(self.payload, bytes) else json.dumps(self.payload).encode()
        event = pb.Event(id=self.id, ip=self.ip, payload=payload, attributes=dict(self.attributes))
        if self.occurred_at is not None:
            occurred = Timestamp()
            occurred.FromDatetime(self.occurred_at)
            event.occurred_at.CopyFrom(occurred)
        return event


class OutcomeStatus(enum.Enum):
    """What became of one event, from the caller's point of view."""

    OK = "ok"  # published and acknowledged by Kafka
    REJECTED = "rejected"  # the event itself is wrong; sending it again would fail again
    RETRYABLE_FAILURE = "retryable_failure"  # not delivered, though it may be later: retries ran out


@dataclass(frozen=True)
class EventOutcome:
    """The outcome of one event.

    ``code`` is the server's ``EventCode`` name (``EVENT_CODE_TOO_LARGE``) or, when the whole call
    failed and retries ran out, the gRPC status name (``UNAVAILABLE``). An OK event also says where it
    is: its Kafka ``topic``, ``partition`` and ``offset`` (``None`` for any other outcome).
    """

    id: str
    status: OutcomeStatus
    code: str
    message: str = ""
    backend_id: str = ""
    topic: str = ""
    partition: int | None = None
    offset: int | None = None


@dataclass(frozen=True)
class UploadResult:
    """One outcome per event, in the order the events were given, and how many calls it took."""

    outcomes: tuple[EventOutcome, ...]
    request_id: str
    attempts: int

    @property
    def ok(self) -> tuple[EventOutcome, ...]:
        """The events that are in Kafka."""
        return self._with(OutcomeStatus.OK)

    @property
    def rejected(self) -> tuple[EventOutcome, ...]:
        """The events the server refused; fix them, do not resend them as they are."""
        return self._with(OutcomeStatus.REJECTED)

    @property
    def failed(self) -> tuple[EventOutcome, ...]:
        """The events that were not delivered although they could be: send them again later."""
        return self._with(OutcomeStatus.RETRYABLE_FAILURE)

    @property
    def all_ok(self) -> bool:
        """True only when every event is in Kafka."""
        return len(self.ok) == len(self.outcomes)

    def _with(self, status: OutcomeStatus) -> tuple[EventOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status is status)
