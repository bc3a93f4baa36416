"""Per-app quotas: token buckets in events/s and request bytes/s, per process.

A batch is admitted while its app's buckets are not empty, and then pays its whole cost, so the
buckets may go below zero: a batch larger than the burst still gets through, and the app then waits
until the debt is paid. That keeps the long-run rate exact without ever refusing a batch forever.
Refusing is cheap (no parsing beyond the meta, no Kafka work), so one flooding app cannot use up
the process's capacity that other apps need.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from venus_grpc.ingest.errors import Reason, RequestError
from venus_grpc.settings import Settings

_MAX_BUCKETS = 10_000  # apps (or app x category pairs) tracked at once; the least recently seen go first


class _Bucket:
    __slots__ = ("bytes", "bytes_per_s", "events", "events_per_s", "updated")

    def __init__(self, events_per_s: float, bytes_per_s: float, burst_s: float, now: float) -> None:
        self.events_per_s, self.bytes_per_s = events_per_s, bytes_per_s
        self.events, self.bytes, self.updated = events_per_s * burst_s, bytes_per_s * burst_s, now

    def refill(self, burst_s: float, now: float) -> float:
        """Add what the rates earned since the last call (up to the burst); the wait until both are positive."""
        elapsed, self.updated = now - self.updated, now
        wait_s = 0.0
        if self.events_per_s:
            self.events = min(self.events + elapsed * self.events_per_s, self.events_per_s * burst_s)
            wait_s = max(wait_s, _wait_s(self.events, self.events_per_s))
        if self.bytes_per_s:
            self.bytes = min(self.bytes + elapsed * self.bytes_per_s, self.bytes_per_s * burst_s)
            wait_s = max(wait_s, _wait_s(self.bytes, self.bytes_per_s))
        return wait_s


def _wait_s(tokens: float, rate: float) -> float:
    # Until the bucket is above zero again, plus the time one token takes.
    return 0.0 if tokens > 0 else (1 - tokens) / rate


class Quotas:
    """Admits or refuses batches by app (or app and category) against the configured rates."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._events_per_s = settings.quota_events_per_s
        self._bytes_per_s = settings.quota_bytes_per_s
        self._app_rates = settings.quota_rates()
        self._burst_s = settings.quota_burst_s
        self._per_category = settings.quota_per_category
        self._clock = clock
        self._buckets: OrderedDict[tuple[str, str], _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        """True when any rate is set."""
        return bool(self._events_per_s or self._bytes_per_s or any(sum(r) for r in self._app_rates.values()))

    def admit(self, app_id: str, category: str, *, events: int, nbytes: int) -> None:
        """Take a batch's cost from its buckets, or raise RESOURCE_EXHAUSTED saying when to come back."""
        now = self._clock()
        bucket = self._bucket(app_id, category if self._per_category else "", now)
        wait_s = bucket.refill(self._burst_s, now)
        if wait_s > 0:
            raise self._refusal(app_id, category, bucket, wait_s)
        if bucket.events_per_s:
            bucket.events -= events
        if bucket.bytes_per_s:
            bucket.bytes -= nbytes

    def _bucket(self, app_id: str, category: str, now: float) -> _Bucket:
        key = (app_id, category)
        bucket = self._buckets.get(key)
        if bucket is None:
            events_per_s, bytes_per_s = self._app_rates.get(app_id, (self._events_per_s, self._bytes_per_s))
            bucket = _Bucket(events_per_s, bytes_per_s, self._burst_s, now)
            self._buckets[key] = bucket
            if len(self._buckets) > _MAX_BUCKETS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket

    def _refusal(self, app_id: str, category: str, bucket: _Bucket, wait_s: float) -> RequestError:
        subject = f"app_id:{app_id}" + (f"/category:{category}" if self._per_category else "")
        limits = []
        if bucket.events_per_s:
            limits.append(f"{bucket.events_per_s:g} events/s")
        if bucket.bytes_per_s:
            limits.append(f"{bucket.bytes_per_s:g} bytes/s")
        description = f"over the quota of {' and '.join(limits)} per Venus instance"
        return RequestError(Reason.QUOTA_EXCEEDED,
                            f"{subject} is {description}; retry in {wait_s:.2f} s",
                            quota_violations=[(subject, description)], retry_after_s=wait_s)
