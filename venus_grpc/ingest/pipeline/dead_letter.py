"""Dead letter: hand every event rejected for its content, with why, to the dead-letter sender.

It runs last, once the events that could be published were: building letters never delays them, and
the letters are only queued here (``venus_grpc.ingest.dead_letters``), never waited for.
"""

from __future__ import annotations

import orjson
from opentelemetry import propagate, trace

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc.ingest.dead_letters import DeadLetters, Letter
from venus_grpc.ingest.pipeline.enrich import meta_json
from venus_grpc.ingest.pipeline.model import Batch, Part, RequestContext
from venus_grpc.kafka import Headers

# What the client sent wrong; a publish error (Kafka's doing) or a serialisation error (ours) is not.
_FOR_CONTENT = frozenset({pb.EVENT_CODE_VALIDATION_ERROR, pb.EVENT_CODE_TOO_LARGE, pb.EVENT_CODE_DUPLICATE_ID})
# Enough of a payload to see what is wrong with it, and a letter well under the largest message.
_PAYLOAD_KEPT_BYTES = 64 * 1024


class DeadLetter:
    """Sends each event rejected for its content to ``dead_letter_topic``: as sent, with the reason in headers."""

    name = "dead_letter"
    span_kind = trace.SpanKind.PRODUCER

    def __init__(self, letters: DeadLetters, *, topic: str) -> None:
        self._letters = letters
        self._topic = topic

    async def __call__(self, batch: Batch, ctx: RequestContext) -> None:
        rejected = [p for p in batch.parts if p.code in _FOR_CONTENT]
        if not rejected:
            return
        trace.get_current_span().set_attributes({
            "messaging.system": "kafka",
            "messaging.destination.name": self._topic,
            "messaging.batch.message_count": len(rejected),
        })
        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # traceparent names this stage's span, as an event's names the publish span
        meta = batch.meta
        common = [(name, value.encode()) for name, value in carrier.items()] + [
            ("venus.app_id", meta.app_id.encode()), ("venus.category", meta.category.encode()),
            ("venus.request_id", ctx.request_id.encode())]
        meta_value = orjson.Fragment(meta_json(meta))
        key = meta.device_id.encode() or None
        self._letters.offer(Letter(key, _value(part, meta_value, batch.received_at_ms), _headers(part, common))
                            for part in rejected)


def _headers(part: Part, common: Headers) -> Headers:
    return [("venus.reason", part.message.encode()), ("venus.code", pb.EventCode.Name(part.code).encode()), *common]


def _value(part: Part, meta: orjson.Fragment, received_at_ms: int) -> bytes:
    """The event as the client sent it, and the batch meta; the payload as text, cut to its first 64 KiB."""
    event = part.event
    kept = event.payload[:_PAYLOAD_KEPT_BYTES]
    occurred_at = ({"seconds": event.occurred_at.seconds, "nanos": event.occurred_at.nanos}
                   if event.HasField("occurred_at") else None)
    return orjson.dumps({
        "received_at_ms": received_at_ms,
        "index": part.index,
        "meta": meta,
        "event": {
            "id": event.id,
            "occurred_at": occurred_at,
            "ip": event.ip,
            "attributes": dict(event.attributes),
            "payload": kept.decode("utf-8", errors="backslashreplace"),  # bytes that are not UTF-8 as \xNN
            "payload_bytes": len(event.payload),
            "payload_truncated": len(kept) < len(event.payload),
        },
    })
