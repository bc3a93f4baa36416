"""Enrich: give each valid event its backend id and location, and build its Kafka message."""

from __future__ import annotations

import uuid

import orjson

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc.geoip import GeoLookup
from venus_grpc.pipeline.model import Batch, Part, RequestContext


class Enrich:
    """Sets ``backend_id``, the location and the message value of every live part."""

    name = "enrich"

    def __init__(self, geo: GeoLookup, *, max_message_bytes: int) -> None:
        self._geo = geo
        self._max_message_bytes = max_message_bytes

    async def __call__(self, batch: Batch, ctx: RequestContext) -> None:
        meta = orjson.Fragment(meta_json(batch.meta))
        for part in batch.live():
            part.backend_id = str(uuid.uuid4())
            part.geo = self._geo.lookup(part.ip)
            try:
                part.value = _message_value(part, meta, batch.received_at_ms)
            except (orjson.JSONEncodeError, TypeError) as exc:
                part.reject(pb.EVENT_CODE_SERIALIZATION_ERROR, f"event could not be serialised: {exc}")
                continue
            if len(part.value) > self._max_message_bytes:
                part.reject(pb.EVENT_CODE_TOO_LARGE,
                            f"the enriched event is {len(part.value)} bytes; the limit is {self._max_message_bytes}")


def meta_json(meta: pb.BatchMeta) -> bytes:
    """The batch meta as it appears in every published message."""
    return orjson.dumps({
        "app_id": meta.app_id,
        "category": meta.category,
        "platform": platform_name(meta.platform),
        "app_version": meta.app_version,
        "sdk_version": meta.sdk_version,
        "device_id": meta.device_id,
        "labels": dict(meta.labels),
    })


def platform_name(platform: pb.Platform) -> str:
    """``PLATFORM_IOS`` → ``ios``."""
    return str(pb.Platform.Name(platform)).removeprefix("PLATFORM_").lower()


def _message_value(part: Part, meta: orjson.Fragment, received_at_ms: int) -> bytes:
    event = part.event
    occurred_at_ms = (
        event.occurred_at.seconds * 1000 + event.occurred_at.nanos // 1_000_000
        if event.HasField("occurred_at") else None
    )
    geo = part.geo
    return orjson.dumps({
        "backend_id": part.backend_id,
        "received_at_ms": received_at_ms,
        "meta": meta,
        "event": {
            "id": event.id,
            "occurred_at_ms": occurred_at_ms,
            "ip": part.ip,
            "attributes": dict(event.attributes),
        },
        "geo": {
            "country_code": geo.country_code,
            "country": geo.country,
            "region": geo.region,
            "city": geo.city,
        },
        "payload": orjson.Fragment(event.payload),
    })
