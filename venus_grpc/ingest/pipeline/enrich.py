"""Enrich: give each valid event its backend id and location, and build its Kafka message."""

from __future__ import annotations

import os
import uuid

import orjson

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc.geoip import GeoLookup
from venus_grpc.ingest.pipeline.model import Batch, Part, RequestContext


class Enrich:
    """Sets ``backend_id``, the location and the message value of every live part."""

    name = "enrich"

    def __init__(self, geo: GeoLookup, *, max_message_bytes: int) -> None:
        self._geo = geo
        self._max_message_bytes = max_message_bytes

    async def __call__(self, batch: Batch, ctx: RequestContext) -> None:
        meta = orjson.Fragment(meta_json(batch.meta))
        live = batch.live()
        for part, backend_id in zip(live, random_uuids(len(live)), strict=True):
            part.backend_id = backend_id
            part.geo = self._geo.lookup(part.ip)
            try:
                dedup = dedup_key(batch.meta.app_id, batch.meta.device_id, part.event.id)
                part.value = _message_value(part, meta, batch.received_at_ms, dedup)
            except (orjson.JSONEncodeError, TypeError) as exc:
                part.reject(pb.EVENT_CODE_SERIALIZATION_ERROR, f"event could not be serialised: {exc}")
                continue
            if len(part.value) > self._max_message_bytes:
                part.reject(pb.EVENT_CODE_TOO_LARGE,
                            f"the enriched event is {len(part.value)} bytes; the limit is {self._max_message_bytes}")


def random_uuids(count: int) -> list[str]:
    """``count`` random (version 4, RFC 4122) UUIDs as text, from one read of the OS's random source.

    Four times cheaper than ``str(uuid.uuid4())`` per event, which reads the random source each time.
    """
    raw = os.urandom(16 * count).hex()
    return [
        f"{raw[i:i + 8]}-{raw[i + 8:i + 12]}-4{raw[i + 13:i + 16]}-{_VARIANT[raw[i + 16]]}{raw[i + 17:i + 20]}"
        f"-{raw[i + 20:i + 32]}"
        for i in range(0, 32 * count, 32)
    ]


# The first hex digit of the UUID's 9th byte with its top bits set to 10 (the RFC 4122 variant).
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def dedup_key(app_id: str, device_id: str, event_id: str) -> str:
    """The same UUID for every copy of one event, however often it is sent: a version 5 UUID over
    the JSON array ``[app_id, device_id, event_id]`` in the :data:`DEDUP_NAMESPACE`."""
    return str(uuid.uuid5(DEDUP_NAMESPACE, orjson.dumps([app_id, device_id, event_id]).decode()))


# Fixed for ever: consumers may compute dedup_key themselves (docs/contract.md).
DEDUP_NAMESPACE = uuid.UUID("6f1c3e52-8f0a-4d7e-9a55-2b7d3c1e9f40")


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


def _message_value(part: Part, meta: orjson.Fragment, received_at_ms: int, dedup: str) -> bytes:
    event = part.event
    occurred_at_ms = (
        event.occurred_at.seconds * 1000 + event.occurred_at.nanos // 1_000_000
        if event.HasField("occurred_at") else None
    )
    geo = part.geo
    return orjson.dumps({
        "backend_id": part.backend_id,
        "dedup_key": dedup,
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
