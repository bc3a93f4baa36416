"""Every batch ends with exactly one fate, recorded here and nowhere else: its metrics and its log line.

A batch is refused as a whole (a request-level status) or answered (one result per event). Each path
through a transport or admission creates one :class:`Fate` and records it once; a second record is a bug
and raises, as a part's second decision does. So ``venus_uploads_total{type="all_upload"}`` equals the
refused batches plus the answered ones, and nothing is counted twice. Every fate metric carries the
``transport`` the batch came by (``grpc`` or ``http``), so the two ports can be told apart and added up.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any, Literal

import structlog

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc.ingest.errors import Reason, RequestError
from venus_grpc.obs import metrics
from venus_grpc.obs.logs import debug_enabled

log = structlog.get_logger(__name__)
Transport = Literal["grpc", "http"]

# Refusals for what the batch itself says (rather than who sent it, or the state of Venus).
_WRONG_META = frozenset({Reason.MALFORMED_REQUEST, Reason.NO_REQUEST, Reason.BAD_META, Reason.NO_EVENTS,
                         Reason.TOO_MANY_EVENTS, Reason.CATEGORY_NOT_ALLOWED})
_AUTH_FAILURE = {Reason.KEY_MISSING: "missing", Reason.KEY_UNKNOWN: "unknown", Reason.KEY_REVOKED: "revoked",
                 Reason.PERMISSION_DENIED: "forbidden"}
# Refusals that come by the thousand a second under overload: logged as a count, at most once a second,
# since a line each would cost the process more than refusing does.
_SHED = frozenset({Reason.OVERLOADED, Reason.DEADLINE_UNREACHABLE})
_SHED_LOG_EVERY_S = 1.0
_MAX_APP_LABELS = 100  # distinct app_id label values of the throttled-events metric
OTHER_APPS = "_other"
_app_labels: set[str] = set()
_CODE_NAMES = {code: pb.EventCode.Name(code) for code in pb.EventCode.values()}


class Fate:
    """The one outcome of one batch that came by ``transport``: :meth:`refused` or :meth:`answered`, exactly once."""

    __slots__ = ("_recorded", "transport")

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._recorded = False

    def refused(self, error: RequestError, *, app_id: str = "", events: int = 0) -> None:
        """The batch failed as a whole with ``error``; ``events`` of app ``app_id`` were not taken."""
        self._record()
        _child(metrics.BATCH_REJECTIONS, error.status.name, error.reason.value, self.transport).inc()
        if error.reason in _WRONG_META:
            _child(metrics.UPLOADS, "wrong_meta", self.transport).inc()
        elif error.reason in _AUTH_FAILURE:
            _child(metrics.AUTH_FAILURES, _AUTH_FAILURE[error.reason], self.transport).inc()
        elif error.reason is Reason.QUOTA_EXCEEDED:
            _child(metrics.THROTTLED_EVENTS, app_label(app_id), self.transport).inc(events)
        if error.reason in _SHED:
            _shed_log.note(error, self.transport)
        else:
            log.info("batch refused", status=error.status.name, reason=error.reason.value, error=error.message,
                     transport=self.transport)

    def answered(self, category: str, codes: Sequence[pb.EventCode], *, topic: str, seconds: float) -> None:
        """The batch was answered with one result per event, whose codes are ``codes``, ``seconds`` after its
        admission began."""
        self._record()
        _child(metrics.BATCH_SECONDS, self.transport).observe(seconds)
        for code in set(codes):
            _child(metrics.EVENTS, category, _CODE_NAMES[code], self.transport).inc(codes.count(code))
        ok = codes.count(pb.EVENT_CODE_OK)
        if ok == len(codes):
            _child(metrics.UPLOADS, "success_upload", self.transport).inc()
        elif ok + codes.count(pb.EVENT_CODE_PUBLISH_ERROR) < len(codes):
            _child(metrics.UPLOADS, "wrong_data", self.transport).inc()
        if debug_enabled():
            log.debug("batch answered", topic=topic, events=len(codes), ok=ok, transport=self.transport)

    def _record(self) -> None:
        if self._recorded:
            raise RuntimeError("this batch's fate is already recorded: every batch ends exactly once")
        self._recorded = True
        _child(metrics.UPLOADS, "all_upload", self.transport).inc()


@functools.lru_cache(maxsize=4096)
def _child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, looked up once per label values rather than on every batch."""
    return metric.labels(*labels)


class _ShedLog:
    """Counts shed batches; logs the count at most once per :data:`_SHED_LOG_EVERY_S`."""

    def __init__(self) -> None:
        self._count = 0
        self._logged_at = 0.0

    def note(self, error: RequestError, transport: Transport) -> None:
        self._count += 1
        now = time.monotonic()
        if now - self._logged_at >= _SHED_LOG_EVERY_S:
            log.info("batches refused", status=error.status.name, reason=error.reason.value, error=error.message,
                     transport=transport, batches=self._count)
            self._count, self._logged_at = 0, now


_shed_log = _ShedLog()


def app_label(app_id: str) -> str:
    """``app_id`` as a metric label: the first apps seen get their own, later ones share ``_other``."""
    if app_id in _app_labels:
        return app_id
    if len(_app_labels) < _MAX_APP_LABELS:
        _app_labels.add(app_id)
        return app_id
    return OTHER_APPS
