"""What one measured run and one sweep point amount to: rates, CPU per event, memory, verdict.

Kept apart from the orchestration so the report and the JSON derive every number the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmarks.empty_server import Work
from benchmarks.procs import Measured
from benchmarks.verify import CountVerdict

MIB = 1024 * 1024


@dataclass(frozen=True)
class RunRecord:
    """One measured run: ``venus``, ``transport`` (empty server), ``broker`` (bare producer) or ``overload``."""

    kind: str
    batch: int
    concurrency: int
    measured: Measured
    verdict: CountVerdict | None = None
    offered_eps: float = 0.0  # open loop only

    @property
    def _service(self) -> str:
        # For the broker ceiling the producer process is both the driver and the thing measured.
        return "driver" if self.kind == "broker" else "service"

    @property
    def eps(self) -> float:
        """Events answered OK (or acknowledged, for the broker ceiling) per second of the window."""
        return float(self.measured.result["events_per_s"])

    @property
    def rps(self) -> float:
        """RPCs (producer batches) completed per second of the window, errors included."""
        return float(self.measured.result["rpcs_per_s"])

    @property
    def latency_ms(self) -> dict[str, float]:
        """p50/p90/p99/max of RPCs answered with status OK."""
        return dict(self.measured.result["latency_ms"])

    def cpu_us_per_event(self, name: str | None = None) -> float:
        """CPU µs that process tree ``name`` (default: the measured service) spent per OK event."""
        busy = self.measured.busy(name or self._service)
        return busy / self.eps * 1e6 if self.eps > 0 else 0.0

    def cpu_us_per_rpc(self, name: str | None = None) -> float:
        """CPU µs that process tree ``name`` (default: the measured service) spent per RPC answered OK in the
        window: refused calls cost little, and counting them would make shedding look like efficiency."""
        result = self.measured.result
        ok_per_s = result.get("rpcs_ok", result["rpcs"]) / result["window_s"] if result.get("window_s") else 0.0
        busy = self.measured.busy(name or self._service)
        return busy / ok_per_s * 1e6 if ok_per_s > 0 else 0.0

    def busy(self, name: str | None = None) -> float:
        """Cores used on average by ``name`` (default: the measured service) in the window."""
        return self.measured.busy(name or self._service)

    def peak_rss_mib(self, name: str | None = None) -> float:
        """Peak resident memory of ``name`` (default: the measured service), summed over its processes."""
        return self.measured.peak_rss.get(name or self._service, 0) / MIB

    def largest_rss_mib(self, name: str | None = None) -> float:
        """Peak resident memory of the largest single process of ``name`` (default: the measured service)."""
        return self.measured.peak_rss_largest.get(name or self._service, 0) / MIB

    @property
    def errors(self) -> dict[str, int]:
        """Failed RPCs in the window by status."""
        return dict(self.measured.result["errors"])

    def to_json(self) -> dict[str, Any]:
        """Everything measured, derived numbers first."""
        meters = [*self.measured.cpu_s.keys(), "others"]
        return {
            "kind": self.kind, "batch": self.batch, "concurrency": self.concurrency,
            "events_per_s": self.eps, "rpcs_per_s": self.rps, "latency_ms": self.latency_ms,
            "offered_events_per_s": self.offered_eps or None,
            "cpu_us_per_event": {name: self.cpu_us_per_event(name) for name in meters},
            "busy_cores": {name: self.busy(name) for name in meters},
            "cpu_us_per_rpc": self.cpu_us_per_rpc(),
            "peak_rss_mib": {name: rss / MIB for name, rss in self.measured.peak_rss.items() if name != "machine"},
            "peak_rss_largest_process_mib": {name: rss / MIB for name, rss in self.measured.peak_rss_largest.items()
                                             if name != "machine"},
            "errors": self.errors,
            "verified": None if self.verdict is None else {
                "ok": self.verdict.ok, "text": self.verdict.text(), "expected": self.verdict.expected,
                "kafka_messages": self.verdict.found.messages if self.verdict.found else None,
                "distinct_ids": self.verdict.found.distinct_ids if self.verdict.found else None,
                "ambiguous_events": self.verdict.ambiguous,
                "short_requests": self.verdict.short_requests(),
            },
            "window_s_seen_by_run": self.measured.window_s,
            "driver": self.measured.result,
        }


@dataclass
class Point:
    """One (batch size, concurrency) of the sweep: Venus and its two ceilings."""

    batch: int
    concurrency: int
    venus: RunRecord | None = None
    transport: RunRecord | None = None
    brokers: dict[str, RunRecord] = field(default_factory=dict)  # by producer API: "send", "batch"
    errors: list[str] = field(default_factory=list)

    @property
    def broker(self) -> RunRecord | None:
        """The faster broker-ceiling run: the ceiling is what the broker and aiokafka allow at best."""
        return max(self.brokers.values(), key=lambda r: r.eps, default=None)

    @property
    def broker_api(self) -> str:
        """Which producer API gave the broker ceiling."""
        best = self.broker
        return next((api for api, r in self.brokers.items() if r is best), "")

    @property
    def ceiling_eps(self) -> float:
        """The lower of the two ceilings (0 when neither was measured)."""
        values = [r.eps for r in (self.transport, self.broker) if r is not None and r.eps > 0]
        return min(values) if values else 0.0

    @property
    def ceiling_name(self) -> str:
        """Which ceiling is the lower one."""
        broker = f"broker/{self.broker_api}"
        if self.transport is None or self.broker is None:
            return "transport" if self.broker is None else broker
        return "transport" if self.transport.eps <= self.broker.eps else broker

    @property
    def ratio(self) -> float:
        """Venus events/s over the lower ceiling."""
        return self.venus.eps / self.ceiling_eps if self.venus and self.ceiling_eps else 0.0

    def to_json(self) -> dict[str, Any]:
        """The point with its three runs."""
        return {
            "batch": self.batch, "concurrency": self.concurrency,
            "venus": self.venus.to_json() if self.venus else None,
            "transport_ceiling": self.transport.to_json() if self.transport else None,
            "broker_ceiling": self.broker.to_json() if self.broker else None,
            "broker_ceiling_api": self.broker_api or None,
            "broker_ceiling_by_api": {api: r.to_json() for api, r in self.brokers.items()},
            "ceiling_events_per_s": self.ceiling_eps, "lower_ceiling": self.ceiling_name,
            "ratio_to_ceiling": self.ratio, "errors": self.errors,
        }


@dataclass
class Overload:
    """Open-loop run at a multiple of measured capacity."""

    capacity_eps: float
    factor: float
    run: RunRecord | None = None
    half: RunRecord | None = None  # open loop at half the capacity: the latency a sized deployment sees
    baseline: Overload | None = None  # the same for the bare server doing Venus's CPU per call
    work: Work | None = None  # what the bare server did per call, when this is the baseline
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        """Capacity, offered load and what the server (Venus, or the baseline) made of it."""
        out: dict[str, Any] = {"capacity_events_per_s": self.capacity_eps, "factor": self.factor,
                               "error": self.error or None}
        if self.run is not None:
            result = self.run.measured.result
            out |= {
                "goodput_events_per_s": self.run.eps,
                "resource_exhausted_share": resource_exhausted_share(self.run),
                "p99_accepted_ms": self.run.latency_ms["p99"],
                "p99_refused_ms": result["refused_latency_ms"]["p99"],
                "client_dropped": result["client_dropped"],
                "run": self.run.to_json(),
            }
        if self.half is not None:
            out |= {"half_capacity_latency_ms": self.half.latency_ms, "half_capacity": self.half.to_json()}
        if self.work is not None:
            out |= {"work_cpu_us_per_call": self.work.cpu_us, "refuse_past": self.work.refuse_past}
        if self.baseline is not None:
            out |= {"bare_server_baseline": self.baseline.to_json()}
        return out


def resource_exhausted_share(run: RunRecord) -> float:
    """Share of RPCs completed in the window that were refused with RESOURCE_EXHAUSTED."""
    rpcs = int(run.measured.result["rpcs"])
    return run.errors.get("RESOURCE_EXHAUSTED", 0) / rpcs if rpcs else 0.0


def refused_p99_text(run: RunRecord) -> str:
    """The refused calls' p99, or that none was refused (then no handler ever saw its limit reached)."""
    if not run.errors.get("RESOURCE_EXHAUSTED", 0):
        return "none refused"
    return f"refused RPCs p99 {run.measured.result['refused_latency_ms']['p99']:,.1f} ms"
