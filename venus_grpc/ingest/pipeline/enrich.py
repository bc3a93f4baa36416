"""Enrich: give each valid event its backend id and location, and build its Kafka message."""

from __future__ import annotations

import functools
import hashlib
import os
import uuid

import orjson

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc.geoip import Geo, GeoLookup
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
        dedup = DedupKeys(batch.meta.app_id, batch.meta.device_id)
        for part, backend_id in zip(live, random_uuids(len(live)), strict=True):
            part.backend_id = backend_id
            part.geo = self._geo.lookup(part.ip)
            try:
                part.value = _message_value(part, meta, batch.received_at_ms, dedup.key(part.event.id))
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
    return DedupKeys(app_id, device_id).key(event_id)


# Fixed for ever: consumers may compute dedup_key themselves (docs/contract.md).
DEDUP_NAMESPACE = uuid.UUID("6f1c3e52-8f0a-4d7e-9a55-2b7d3c1e9f40")
_NAMESPACE_SHA1 = hashlib.sha1(DEDUP_NAMESPACE.bytes, usedforsecurity=False)


class DedupKeys:
    """:func:`dedup_key` for the events of one batch: ``uuid.uuid5``'s result at a quarter of its cost.

    ``uuid5`` hashes the namespace and the whole name for every event and builds a ``UUID``; here the
    SHA-1 state after the namespace and ``["<app_id>","<device_id>",`` is computed once per batch and
    copied per event (orjson writes list items independently, so the bytes are the same).
    """

    __slots__ = ("_prefix",)

    def __init__(self, app_id: str, device_id: str) -> None:
        self._prefix = _NAMESPACE_SHA1.copy()
        self._prefix.update(orjson.dumps([app_id, device_id])[:-1] + b",")

    def key(self, event_id: str) -> str:
        """The dedup key of event ``event_id`` of this batch."""
        sha = self._prefix.copy()
        sha.update(orjson.dumps(event_id) + b"]")
        h = sha.hexdigest()
        # The first 16 bytes with RFC 4122 version 5 and variant bits, as uuid.UUID(bytes=..., version=5) sets
        # them: set on the hex digits, which costs less than on bytes.
        return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def meta_json(meta: pb.BatchMeta) -> bytes:
    """The batch meta as it appears in every published message."""
    return orjson.dumps({
        "app_id": meta.app_id,
        "category": meta.category,
        "platform": _PLATFORM_NAMES[meta.platform],
        "app_version": meta.app_version,
        "sdk_version": meta.sdk_version,
        "device_id": meta.device_id,
        "labels": dict(meta.labels),
    })


# ``PLATFORM_IOS`` → ``ios``, built once (the enum's Name() searches its descriptor on every call); meta
# checks let only known platforms through.
_PLATFORM_NAMES = {value: name.removeprefix("PLATFORM_").lower() for name, value in pb.Platform.items()}


@functools.lru_cache(maxsize=4096)
def _geo_json(geo: Geo) -> orjson.Fragment:
    # A location's JSON, built once: the GeoIP cache hands out the same Geo for an address seen before.
    return orjson.Fragment(orjson.dumps({
        "country_code": geo.country_code,
        "country": geo.country,
        "region": geo.region,
        "city": geo.city,
    }))


def _message_value(part: Part, meta: orjson.Fragment, received_at_ms: int, dedup: str) -> bytes:
    event = part.event
    attributes = event.attributes
    return orjson.dumps({
        "backend_id": part.backend_id,
        "dedup_key": dedup,
        "received_at_ms": received_at_ms,
        "meta": meta,
        "event": {
            "id": event.id,
            "occurred_at_ms": part.occurred_at_ms,
            "ip": part.ip,
            "attributes": dict(attributes) if attributes else {},
        },
        "geo": _geo_json(part.geo),
        "payload": orjson.Fragment(event.payload),
    })
