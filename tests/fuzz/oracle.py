"""What Venus must answer for a request, worked out independently of its code.

The rules are the contract's (docs/contract.md), restated with the standard library: a
request the oracle calls bad must be refused, an event it calls bad must not be OK. Where parsers
may legitimately differ (stdlib ``json`` accepts NaN and huge numbers; the server need not), the
oracle only bounds the answer from one side.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time

from tests.fuzz.live import LIMITS
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb

_APP_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_CATEGORY = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799
_MAX_SKEW_S = 3600  # the default max_clock_skew_s


def request_is_bad(request: pb.UploadEventsRequest) -> bool:
    """True when the batch as a whole must be refused with INVALID_ARGUMENT."""
    meta = request.meta
    return (not request.HasField("meta") or not _APP_ID.fullmatch(meta.app_id)
            or not _CATEGORY.fullmatch(meta.category) or meta.platform not in pb.Platform.values()
            or labels_are_bad(dict(meta.labels)) or not 1 <= len(request.events) <= LIMITS["max_events_per_batch"])


def labels_are_bad(labels: dict[str, str]) -> bool:
    """True when the labels, which every event's message carries, are over a limit."""
    return (len(labels) > LIMITS["max_labels"]
            or any(len(k) > LIMITS["max_label_key_chars"] or len(v) > LIMITS["max_label_value_chars"]
                   for k, v in labels.items())
            or sum(len(k.encode()) + len(v.encode()) for k, v in labels.items()) > LIMITS["max_labels_bytes"])


def event_must_fail(event: pb.Event, earlier_ids: set[str]) -> bool:
    """True when this event can only be answered with a non-OK code."""
    if event.id in earlier_ids or not event.id or len(event.id) > LIMITS["max_event_id_chars"]:
        return True
    if len(event.payload) > LIMITS["max_event_payload_bytes"] or not is_json_object(event.payload):
        return True
    if event.ip and not _is_ip(event.ip):
        return True
    ts = event.occurred_at
    return event.HasField("occurred_at") and not (
        _MIN_SECONDS <= ts.seconds <= _MAX_SECONDS and 0 <= ts.nanos < 1_000_000_000
        and ts.seconds <= time.time() + _MAX_SKEW_S)


def is_json_object(payload: bytes) -> bool:
    """True when ``payload`` is strict UTF-8 JSON (no NaN or Infinity) whose top level is an object."""
    try:
        value = json.loads(payload.decode("utf-8"), parse_constant=_refuse)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(value, dict)


def _refuse(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
