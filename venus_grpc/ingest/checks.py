"""Checks of a request as a whole, before any event is looked at: is it a message, is its meta usable."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc.ingest.errors import Reason, RequestError
from venus_grpc.settings import Settings
from venus_grpc.topics import CATEGORY

_APP_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_PLATFORMS = frozenset(pb.Platform.values())  # built once: values() makes a new list on every call
_MAX_VIOLATIONS = 5  # an answer names this many problems at most, so that it stays small
M = TypeVar("M", bound=Message)


@dataclass(frozen=True, slots=True)
class MalformedRequest:
    """Bytes that are not the expected message; answered with INVALID_ARGUMENT, not INTERNAL."""

    error: str


def request_parser(message_type: type[M]) -> Callable[[bytes], M | MalformedRequest]:
    """A request deserializer that never raises, so that garbage gets a clear status."""

    def parse(data: bytes) -> M | MalformedRequest:
        try:
            return message_type.FromString(data)
        except DecodeError as exc:
            return MalformedRequest(str(exc))

    return parse


def check_request(request: pb.UploadEventsRequest, settings: Settings) -> None:
    """Raise a :class:`RequestError` when the batch as a whole cannot be taken."""
    _check_meta(request)
    _check_labels(request.meta, settings)
    meta = request.meta
    if settings.allowed_categories and meta.category not in settings.allowed_categories:
        allowed = ", ".join(sorted(settings.allowed_categories))
        raise RequestError(Reason.CATEGORY_NOT_ALLOWED,
                           f"category {meta.category!r} is not accepted here; allowed: {allowed}",
                           violations=[("meta.category", f"not one of: {allowed}")])
    count = len(request.events)
    if count == 0:
        raise RequestError(Reason.NO_EVENTS, "the batch has no events: send at least one",
                           violations=[("events", "at least one event is required")])
    if count > settings.max_events_per_batch:
        limit = settings.max_events_per_batch
        raise RequestError(Reason.TOO_MANY_EVENTS,
                           f"the batch has {count} events; the limit is {limit}: split it into smaller batches",
                           violations=[("events", f"at most {limit} events per batch")])


def _check_meta(request: pb.UploadEventsRequest) -> None:
    violations: list[tuple[str, str]] = []
    meta = request.meta
    if not request.HasField("meta"):
        violations.append(("meta", "meta is missing: every batch needs meta with app_id and category"))
    else:
        if not _APP_ID.fullmatch(meta.app_id):
            violations.append(("meta.app_id", "app_id is required: 1 to 128 letters, digits or ._:-"))
        if not CATEGORY.fullmatch(meta.category):
            violations.append(("meta.category", "category is required: 1 to 64 letters, digits, _ or -"))
        if meta.platform not in _PLATFORMS:
            violations.append(("meta.platform", f"platform {meta.platform} is not a known venus.v1.Platform"))
    if violations:
        raise RequestError(Reason.BAD_META, "invalid batch meta: " + "; ".join(v for _, v in violations),
                           violations=violations)


def _check_labels(meta: pb.BatchMeta, settings: Settings) -> None:
    # Every event's Kafka message carries the meta, labels included: unbounded labels let one small
    # request cost memory and Kafka bytes a thousand times its size (one copy per event).
    labels = meta.labels
    if not labels:
        return
    violations: list[tuple[str, str]] = []
    if len(labels) > settings.max_labels:
        violations.append(("meta.labels", f"{len(labels)} labels; the limit is {settings.max_labels}"))
    total = 0
    for key, value in labels.items():
        total += len(key.encode()) + len(value.encode())
        if len(key) > settings.max_label_key_chars:
            violations.append((f"meta.labels[{_shown(key)}]",
                               f"key is {len(key)} characters; the limit is {settings.max_label_key_chars}"))
        if len(value) > settings.max_label_value_chars:
            violations.append((f"meta.labels[{_shown(key)}]",
                               f"value is {len(value)} characters; the limit is {settings.max_label_value_chars}"))
        if len(violations) >= _MAX_VIOLATIONS:
            break
    if total > settings.max_labels_bytes:
        violations.append(("meta.labels", f"labels are {total} bytes or more; the limit is "
                                          f"{settings.max_labels_bytes} bytes in all"))
    if violations:
        raise RequestError(Reason.BAD_META, "labels too large, and every event carries them: "
                           + "; ".join(f"{path}: {text}" for path, text in violations[:_MAX_VIOLATIONS]),
                           violations=violations[:_MAX_VIOLATIONS])


def _shown(key: str) -> str:
    return repr(key if len(key) <= 40 else key[:40] + "...")
