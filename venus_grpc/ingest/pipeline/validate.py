"""Split and validate: each event on its own, so one bad event never stops the others."""

from __future__ import annotations

import functools
import ipaddress
import time

import orjson

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc.ingest.pipeline.model import Batch, Part, RequestContext
from venus_grpc.settings import Settings

# The range google.protobuf.Timestamp allows: 0001-01-01 to 9999-12-31.
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799


class Validate:
    """Rejects events with a bad id, payload, ip or time; records the address used for GeoIP."""

    name = "validate"

    def __init__(self, settings: Settings) -> None:
        self._max_payload = settings.max_event_payload_bytes
        self._max_id_chars = settings.max_event_id_chars
        self._max_skew_s = settings.max_clock_skew_s

    async def __call__(self, batch: Batch, ctx: RequestContext) -> None:
        first_index_of: dict[str, int] = {}
        latest_allowed_s = time.time() + self._max_skew_s
        for part in batch.live():
            event_id = part.event.id
            if event_id in first_index_of:
                part.reject(pb.EVENT_CODE_DUPLICATE_ID,
                            f"id {event_id!r} is already used by event #{first_index_of[event_id]} of this batch")
                continue
            first_index_of[event_id] = part.index
            self._check(part, event_id, batch.peer_ip, latest_allowed_s)

    def _check(self, part: Part, event_id: str, peer_ip: str, latest_allowed_s: float) -> None:
        # Each field is read from the message once: every read of a protobuf field builds a new object.
        event = part.event
        payload = event.payload
        if not event_id:
            part.reject(pb.EVENT_CODE_VALIDATION_ERROR, "id is empty: every event needs a client-chosen id")
        elif len(event_id) > self._max_id_chars:
            part.reject(pb.EVENT_CODE_VALIDATION_ERROR,
                        f"id is {len(event_id)} characters long; the limit is {self._max_id_chars}")
        elif len(payload) > self._max_payload:
            part.reject(pb.EVENT_CODE_TOO_LARGE,
                        f"payload is {len(payload)} bytes; the limit is {self._max_payload} bytes")
        elif problem := _payload_problem(payload):
            part.reject(pb.EVENT_CODE_VALIDATION_ERROR, problem)
        elif problem := self._time_problem(part, latest_allowed_s):
            part.reject(pb.EVENT_CODE_VALIDATION_ERROR, problem)
        elif ip := event.ip:
            part.ip = normalized_ip(ip)
            if not part.ip:
                part.reject(pb.EVENT_CODE_VALIDATION_ERROR, f"ip {ip!r} is not an IPv4 or IPv6 address")
        else:
            part.ip = peer_ip

    def _time_problem(self, part: Part, latest_allowed_s: float) -> str:
        """What is wrong with the event's ``occurred_at``; sets the part's ``occurred_at_ms`` when it is fine."""
        event = part.event
        if not event.HasField("occurred_at"):
            return ""
        ts = event.occurred_at
        seconds, nanos = ts.seconds, ts.nanos
        if not (_MIN_SECONDS <= seconds <= _MAX_SECONDS and 0 <= nanos < 1_000_000_000):
            return "occurred_at is not a valid timestamp"
        if seconds > latest_allowed_s:
            ahead = seconds - (latest_allowed_s - self._max_skew_s)
            return f"occurred_at is {ahead:.0f} s in the future; the allowed clock skew is {self._max_skew_s:.0f} s"
        part.occurred_at_ms = seconds * 1000 + nanos // 1_000_000
        return ""


@functools.lru_cache(maxsize=65_536)
def normalized_ip(text: str) -> str:
    """``text`` as a canonical IP address, or "" when it is none; cached, since clients repeat."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return ""


def _payload_problem(payload: bytes) -> str:
    if not payload:
        return "payload is empty: expected a UTF-8 JSON object"
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return f"payload is not valid UTF-8 JSON: {exc}"
    if not isinstance(body, dict):
        return f"payload is a JSON {type(body).__name__}: expected a JSON object"
    return ""
