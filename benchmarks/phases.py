"""What a load driver tells ``run``: phase lines on stdout and one JSON result.

A driver warms up, then measures for a fixed window, then drains what is still in flight. It
prints ``{"phase": "measure"}`` when the window opens and ``{"phase": "window_end"}`` when it
closes, so ``run`` can read the server's CPU counters at the same moments, and finally
``{"phase": "result", ...}``. Rates come from the window only; totals (warm-up and drain
included) are what the topic read-back must match.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from venus_grpc.tools.stats import percentile

T = TypeVar("T")

# Statuses after which the events of the RPC may still have reached Kafka: the verifier
# cannot expect them to be absent, nor present.
NOT_PUBLISHED_STATUSES = frozenset({"RESOURCE_EXHAUSTED", "INVALID_ARGUMENT"})


def emit(phase: str, **data: Any) -> None:
    """One JSON line on stdout, flushed at once (``run`` acts on it immediately)."""
    sys.stdout.write(json.dumps({"phase": phase, **data}) + "\n")
    sys.stdout.flush()


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop when installed, as Venus does, so ceilings and client use the same loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def run_and_emit(main: Coroutine[Any, Any, dict[str, Any]]) -> int:
    """A measuring process's exit: run ``main``, emit its result (or its error) as the last line."""
    try:
        result = run_async(main)
    except Exception as exc:
        emit("error", message=f"{type(exc).__name__}: {exc}")
        return 1
    emit("result", **result)
    return 0


@dataclass
class Tally:
    """Outcomes of one load run, counted inside the measured window and in total.

    An RPC belongs to the window when it completes inside it; in a closed loop at steady state
    the work cut off at either edge balances out.
    """

    window_start: float = math.inf
    window_end: float = math.inf
    events_ok: int = 0
    rpcs: int = 0
    rpcs_ok: int = 0
    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    event_errors: Counter[str] = field(default_factory=Counter)
    total_events_ok: int = 0
    total_events_sent: int = 0
    total_rpcs_sent: int = 0
    ambiguous_events: int = 0
    total_errors: Counter[str] = field(default_factory=Counter)
    dropped: int = 0
    total_dropped: int = 0
    refused_latencies_s: list[float] = field(default_factory=list)  # RESOURCE_EXHAUSTED, from send (or arrival)
    bare_refusals: Counter[str] = field(default_factory=Counter)  # failed without RetryInfo, by status

    def open_window(self, start: float, duration_s: float) -> None:
        """Set the window to [start, start + duration_s) in ``time.monotonic()`` seconds."""
        self.window_start, self.window_end = start, start + duration_s

    def _in_window(self, done: float) -> bool:
        return self.window_start <= done < self.window_end

    def sent(self, events: int) -> None:
        """An RPC (or producer batch) of ``events`` was sent."""
        self.total_rpcs_sent += 1
        self.total_events_sent += events

    def answered(self, done: float, latency_s: float, events_ok: int, event_errors: dict[str, int],
                 ambiguous: int = 0) -> None:
        """An RPC returned OK status; ``events_ok`` of its events are published."""
        self.total_events_ok += events_ok
        self.ambiguous_events += ambiguous
        if self._in_window(done):
            self.rpcs += 1
            self.rpcs_ok += 1
            self.events_ok += events_ok
            self.latencies_s.append(latency_s)
            self.event_errors.update(event_errors)

    def drop(self, at: float) -> None:
        """An open-loop arrival at ``at`` was not sent: the cap on outstanding RPCs was reached."""
        self.total_dropped += 1
        if self._in_window(at):
            self.dropped += 1

    def failed(self, done: float, status: str, events: int, *, latency_s: float | None = None,
               retry_info: bool = True) -> None:
        """An RPC failed with ``status`` (a gRPC status name or an exception's name).

        ``latency_s`` (when known) of a RESOURCE_EXHAUSTED call is kept: a refusal must be quick; a
        RESOURCE_EXHAUSTED or UNAVAILABLE without ``retry_info`` is counted: clients cannot pace on it.
        """
        self.total_errors[status] += 1
        if status not in NOT_PUBLISHED_STATUSES:
            self.ambiguous_events += events
        if self._in_window(done):
            self.rpcs += 1
            self.errors[status] += 1
            if status == "RESOURCE_EXHAUSTED" and latency_s is not None:
                self.refused_latencies_s.append(latency_s)
            if status in ("RESOURCE_EXHAUSTED", "UNAVAILABLE") and not retry_info:
                self.bare_refusals[status] += 1

    def merge(self, other: Tally) -> None:
        """Add ``other``'s counts (from another process with the same window) to this tally."""
        for f in fields(self):
            if f.name in ("window_start", "window_end"):
                continue
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, Counter):
                mine.update(theirs)
            elif isinstance(mine, list):
                mine.extend(theirs)
            else:
                setattr(self, f.name, mine + theirs)

    def result(self, **extra: Any) -> dict[str, Any]:
        """The JSON-able summary: window rates and latencies, and totals for the verifier."""
        window_s = self.window_end - self.window_start
        lat = sorted(self.latencies_s)
        refused = sorted(self.refused_latencies_s)
        return {
            "window_s": window_s,
            "events_ok": self.events_ok,
            "rpcs": self.rpcs,
            "rpcs_ok": self.rpcs_ok,
            "events_per_s": self.events_ok / window_s,
            "rpcs_per_s": self.rpcs / window_s,
            "latency_ms": {name: percentile(lat, q) * 1000 for name, q in
                           (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))},
            "refused_latency_ms": {name: percentile(refused, q) * 1000 for name, q in
                                   (("p50", 50), ("p99", 99), ("max", 100))},
            "refusals_without_retry_info": dict(self.bare_refusals),
            "errors": dict(self.errors),
            "event_errors": dict(self.event_errors),
            "client_dropped": self.dropped,
            "total": {
                "events_ok": self.total_events_ok,
                "events_sent": self.total_events_sent,
                "rpcs_sent": self.total_rpcs_sent,
                "ambiguous_events": self.ambiguous_events,
                "errors": dict(self.total_errors),
                "client_dropped": self.total_dropped,
            },
            **extra,
        }
