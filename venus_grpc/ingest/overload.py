"""Shedding load: an adaptive limit of calls worked on at once, and calls whose deadline cannot be met.

Under overload a call that is taken only to wait behind others helps no one: every call in flight
shares one event loop, so each one admitted beyond what the process serves at speed makes all of
them slower, and the callers' deadlines pass while Venus still works for them. So a call is refused at
once with RESOURCE_EXHAUSTED and RetryInfo when

- as many calls are in flight as the current limit allows, or
- its deadline leaves less time than calls take now (a call that waited in gRPC's core, or in a
  client's queue, past what it can still achieve).

A transport asks :meth:`ConcurrencyLimit.check` before it reads the request, so a refusal costs no read;
admission takes the call's place (:meth:`ConcurrencyLimit.hold`) once the request is in, so a client that
sends headers and then stalls holds no place (only its transport slot, until ``request_read_timeout_s``).

The limit adapts in the manner of Netflix's concurrency-limits (gradient) and Envoy's adaptive
concurrency filter: service times (:meth:`ConcurrencyLimit.observe`, from admission, for every
transport) are averaged over short windows; while the limit is what holds calls back (as many in flight
as it allows, at some point in the window) it shrinks in proportion above the latency target and grows
by one within it. Admission's bound on the events and bytes in flight counts as the limit binding too
(:meth:`ConcurrencyLimit.crowded`): large batches reach that bound with fewer calls than the limit allows, and
a limit that waited for its own count would never shrink while the calls it admits queue behind one another.
The target is ``overload_latency_target_s`` or twice the fastest recent service time, whichever is larger, so
a slow broker (every call slow, however few) does not shrink the limit. A limit that does not bind does not
move either: calls slowed by work it does not count (a flood of requests refused as invalid, each parsed
first) are not helped by refusing the few it admits (fault scenario 10).
"""

from __future__ import annotations

import time

from venus_grpc.ingest.errors import Reason, RequestError

_WINDOW_S = 0.1  # service times are averaged over windows of at least this long ...
_WINDOW_CALLS = 8  # ... and at least this many calls (or one second, whichever comes first)
_BASELINE_RISE = 1.02  # per window: the fastest recent service time forgets a fast outlier slowly
_RETRY_AFTER_S = 0.25


class ConcurrencyLimit:
    """How many calls may be in flight now: :meth:`check` refuses a call early, :meth:`hold` keeps its place."""

    def __init__(self, *, max_limit: int, min_limit: int, target_s: float) -> None:
        self.max_limit = max_limit
        self.min_limit = min(min_limit, max_limit)
        self.target_s = target_s  # 0: a fixed limit of max_limit
        self.limit = float(max_limit)
        self.in_flight = 0
        self.expected_s = 0.0  # the average service time of the last window
        self._baseline_s = 0.0
        self._window_start = time.monotonic()
        self._count = 0
        self._total_s = 0.0
        self._fastest_s = float("inf")
        self._peak = 0
        self._crowded = False  # a call was refused for the work in flight during this window

    def check(self, time_left_s: float | None) -> None:
        """Raise the refusal of a call whose deadline is ``time_left_s`` away (None: none) if it came now."""
        if self.in_flight >= int(self.limit):
            raise RequestError(Reason.OVERLOADED, f"Venus is serving as many calls as it can at speed "
                               f"({int(self.limit)}); retry later", retry_after_s=_RETRY_AFTER_S)
        if time_left_s is not None and time_left_s < self.expected_s:
            raise RequestError(Reason.DEADLINE_UNREACHABLE, f"the call's deadline leaves {time_left_s:.3f} s, less "
                               f"than calls take now ({self.expected_s:.3f} s); retry later with a longer deadline",
                               retry_after_s=_RETRY_AFTER_S)

    def hold(self, time_left_s: float | None) -> _Place:
        """A place for one call while the ``with`` block runs, or its refusal (:meth:`check`) raised now."""
        self.check(time_left_s)
        return _Place(self)

    def crowded(self) -> None:
        """A call was refused for the events or bytes already in flight: load binds, if not through this count."""
        self._crowded = True

    def observe(self, service_s: float) -> None:
        """A batch took ``service_s`` from its parsed request to its answer; adapt once a window is full."""
        self._count += 1
        self._total_s += service_s
        self._fastest_s = min(self._fastest_s, service_s)
        now = time.monotonic()
        elapsed = now - self._window_start
        if (self._count >= _WINDOW_CALLS and elapsed >= _WINDOW_S) or elapsed >= 1.0:
            self._adapt(now)

    def _adapt(self, now: float) -> None:
        average_s = self._total_s / self._count
        self.expected_s = average_s
        rising = self._baseline_s * _BASELINE_RISE
        self._baseline_s = self._fastest_s if not self._baseline_s else min(rising, self._fastest_s)
        if self.target_s and (self._peak >= int(self.limit) or self._crowded):  # it moves only while load binds
            target_s = max(self.target_s, 2 * self._baseline_s)
            if average_s > target_s:
                self.limit = max(self.min_limit, self.limit * max(0.5, target_s / average_s))
            else:
                self.limit = min(self.max_limit, self.limit + 1)
        self._window_start, self._count, self._total_s = now, 0, 0.0
        self._fastest_s, self._peak, self._crowded = float("inf"), self.in_flight, False


class _Place:
    """:meth:`ConcurrencyLimit.hold`'s context manager: a class, since a generator one costs a frame per call."""

    __slots__ = ("_limit",)

    def __init__(self, limit: ConcurrencyLimit) -> None:
        self._limit = limit

    def __enter__(self) -> None:
        limit = self._limit
        limit.in_flight += 1
        limit._peak = max(limit._peak, limit.in_flight)

    def __exit__(self, *_: object) -> None:
        self._limit.in_flight -= 1
