"""The targets of issue #15, each judged from what one ``benchmarks.run`` invocation measured.

Every figure is a ratio against something measured in the same invocation (the bare grpc.aio server,
the best point of the sweep, the capacity found minutes before), because the machines are shared and
absolute figures move with the neighbours. CPU per call is compared round by round (Venus and the bare
server run back to back, rounds interleaved) and the median of the per-round ratios is judged.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.records import Overload, Point, RunRecord, refused_p99_text

CPU_PER_CALL_LIMIT = {1: 2.0, 100: 3.0}  # Venus CPU per call over the bare server's, by batch size
END_TO_END_EPS = 90_000  # events/s with two workers, acks=all, every event read back
SHARE_AT_64 = 0.9  # events/s at 64 calls in flight over the best of 1/4/16/64
RSS_PER_WORKER_MIB = 200
GOODPUT_SHARE = 0.9  # of capacity, at 3x overload
ACCEPTED_P99_MS = 250.0
REFUSED_P99_MS = 10.0


@dataclass
class CostRounds:
    """Venus and the bare server at one batch size and concurrency, one pair per round."""

    batch: int
    concurrency: int
    pairs: list[tuple[RunRecord, RunRecord]] = field(default_factory=list)  # (venus, bare)
    producers: list[RunRecord] = field(default_factory=list)  # aiokafka alone, publishing as Venus does

    def floor_us_per_rpc(self) -> float | None:
        """The bare server's CPU per call plus the producer's alone: what Venus pays before any work of its own."""
        if not self.pairs or not self.producers:
            return None
        return (statistics.median(b.cpu_us_per_rpc() for _, b in self.pairs)
                + statistics.median(p.cpu_us_per_rpc() for p in self.producers))

    def ratios(self) -> list[float]:
        """Venus CPU per call over the bare server's, per round."""
        return [v.cpu_us_per_rpc() / b.cpu_us_per_rpc() for v, b in self.pairs if b.cpu_us_per_rpc() > 0]

    def to_json(self) -> dict[str, Any]:
        """Per-round CPU per call of both, and the ratios."""
        return {"batch": self.batch, "concurrency": self.concurrency, "ratios": self.ratios(),
                "venus_cpu_us_per_rpc": [v.cpu_us_per_rpc() for v, _ in self.pairs],
                "bare_cpu_us_per_rpc": [b.cpu_us_per_rpc() for _, b in self.pairs],
                "producer_cpu_us_per_rpc": [p.cpu_us_per_rpc() for p in self.producers],
                "venus_verified": [v.verdict.ok if v.verdict else None for v, _ in self.pairs]}


@dataclass(frozen=True)
class Verdict:
    """One target: what was measured, what is asked, and whether it holds (None: not measured)."""

    name: str
    measured: str
    target: str
    met: bool | None

    def line(self) -> str:
        """One line of the report."""
        mark = {True: "met", False: "MISSED", None: "not measured"}[self.met]
        return f"  {self.name}: {self.measured} (target {self.target}): {mark}"


def cost_verdict(rounds: CostRounds) -> Verdict:
    """Venus's CPU per call as a multiple of the bare server's, median over rounds."""
    limit = CPU_PER_CALL_LIMIT.get(rounds.batch, 3.0)
    name = f"CPU per call at batch {rounds.batch}, {rounds.concurrency} in flight"
    ratios = rounds.ratios()
    if not ratios:
        return Verdict(name, "no complete round", f"<= {limit:g}x the bare grpc.aio server", None)
    venus = statistics.median(v.cpu_us_per_rpc() for v, _ in rounds.pairs)
    bare = statistics.median(b.cpu_us_per_rpc() for _, b in rounds.pairs)
    per_event = f" ({venus / rounds.batch:,.1f} µs per event)" if rounds.batch > 1 else ""
    floor = rounds.floor_us_per_rpc()
    floor_text = ("" if floor is None else f"; bare server + the producer alone {floor:,.0f} µs = {floor / bare:.2f}x, "
                  "before any work of Venus's own")
    measured = (f"Venus {venus:,.0f} µs{per_event}, bare server {bare:,.0f} µs: {statistics.median(ratios):.2f}x "
                f"(rounds {', '.join(f'{r:.2f}' for r in ratios)}){floor_text}")
    return Verdict(name, measured, f"<= {limit:g}x", statistics.median(ratios) <= limit)


def end_to_end_verdict(points: Sequence[Point], processes: int, batch: int) -> Verdict:
    """The best events/s at ``batch`` (the issue asks it at batch 100), every OK event of the sweep read back.

    The best of the whole sweep is printed beside it: larger batches go faster, but are not what is asked.
    """
    ran = [p for p in points if p.venus is not None]
    name = f"end to end at batch {batch} with {processes} worker(s), acks=all"
    target = f">= {END_TO_END_EPS:,} events/s with 2 workers"
    at_batch = [p for p in ran if p.batch == batch]
    if not at_batch:
        return Verdict(name, f"no Venus run at batch {batch}", target, None)
    top = max(at_batch, key=lambda p: p.venus.eps if p.venus else 0.0)
    best = max(ran, key=lambda p: p.venus.eps if p.venus else 0.0)
    assert top.venus is not None and best.venus is not None
    read_back = all(p.venus is not None and p.venus.verdict is not None and p.venus.verdict.ok for p in ran)
    measured = (f"{top.venus.eps:,.0f} events/s ({top.concurrency} in flight; best of the sweep "
                f"{best.venus.eps:,.0f} at batch {best.batch}); every OK event read back: "
                f"{'yes' if read_back else 'NO'}")
    met = None if processes != 2 else top.venus.eps >= END_TO_END_EPS and read_back
    return Verdict(name, measured, target, met)


def concurrency_verdict(points: Sequence[Point], batch: int) -> Verdict:
    """Events/s at 64 calls in flight as a share of the best concurrency at the same batch size."""
    runs = {p.concurrency: p.venus for p in points if p.batch == batch and p.venus is not None}
    name = f"64 in flight at batch {batch}"
    if 64 not in runs or len(runs) < 2:
        return Verdict(name, "the sweep did not cover 64 and another concurrency", f">= {SHARE_AT_64} of the best",
                       None)
    best_c = max(runs, key=lambda c: runs[c].eps)
    share = runs[64].eps / runs[best_c].eps if runs[best_c].eps > 0 else 0.0
    measured = (f"{runs[64].eps:,.0f} events/s, {share:.2f} of the best ({best_c} in flight, "
                f"{runs[best_c].eps:,.0f}) among {'/'.join(str(c) for c in sorted(runs))}")
    return Verdict(name, measured, f">= {SHARE_AT_64} of the best", share >= SHARE_AT_64)


def rss_verdict(runs: Sequence[RunRecord]) -> Verdict:
    """The largest single Venus process seen in any run."""
    if not runs:
        return Verdict("RSS per worker", "no Venus run", f"<= {RSS_PER_WORKER_MIB} MiB", None)
    largest = max(r.largest_rss_mib() for r in runs)
    return Verdict("RSS per worker", f"largest process peaked at {largest:,.0f} MiB", f"<= {RSS_PER_WORKER_MIB} MiB",
                   largest <= RSS_PER_WORKER_MIB)


def overload_verdicts(ov: Overload) -> list[Verdict]:
    """Goodput, accepted and refused latency, and what the refusals said, at 3x capacity; each figure beside
    the bare server's with Venus's CPU per call under the same overload, when that baseline ran."""
    if ov.run is None:
        return [Verdict("3x overload", f"not run ({ov.error})", "goodput, p99 and refusals", None)]
    r, res = ov.run, ov.run.measured.result
    goodput = r.eps / ov.capacity_eps if ov.capacity_eps else 0.0
    accepted_p99, refused_p99 = r.latency_ms["p99"], res["refused_latency_ms"]["p99"]
    refused = r.errors.get("RESOURCE_EXHAUSTED", 0)
    others = {k: v for k, v in r.errors.items() if k != "RESOURCE_EXHAUSTED"}
    bare = res.get("refusals_without_retry_info", {})
    statuses = (f"{refused:,} RESOURCE_EXHAUSTED, {sum(bare.values()):,} refusals without RetryInfo, other "
                f"statuses {others or 'none'}")
    base_goodput = base_accepted = base_refused = ""
    if ov.baseline is not None and ov.baseline.run is not None and ov.baseline.capacity_eps:
        b = ov.baseline.run
        beside = "; bare server with Venus's CPU per call, same overload: "
        base_goodput = f"{beside}{b.eps / ov.baseline.capacity_eps:.2f}"
        base_accepted = f"{beside}{b.latency_ms['p99']:,.0f} ms"
        base_refused = f"{beside}{refused_p99_text(b)}"
    return [
        Verdict("3x overload goodput",
                f"{r.eps:,.0f} events/s, {goodput:.2f} of capacity {ov.capacity_eps:,.0f}{base_goodput}",
                f">= {GOODPUT_SHARE} of capacity", goodput >= GOODPUT_SHARE),
        Verdict("3x overload, accepted calls' p99", f"{accepted_p99:,.0f} ms{base_accepted}",
                f"<= {ACCEPTED_P99_MS:g} ms", accepted_p99 <= ACCEPTED_P99_MS),
        Verdict("3x overload, refused calls' p99", f"{refused_p99:,.1f} ms over {refused:,} refusals{base_refused}",
                f"<= {REFUSED_P99_MS:g} ms", refused_p99 <= REFUSED_P99_MS if refused else None),
        Verdict("3x overload statuses", statuses, "only RESOURCE_EXHAUSTED, each with RetryInfo",
                not others and not bare),
    ]


def targets_text(verdicts: Sequence[Verdict]) -> str:
    """The report's closing section."""
    met = sum(v.met is True for v in verdicts)
    judged = sum(v.met is not None for v in verdicts)
    return "\n".join([f"Issue #15 targets, from this run ({met} of {judged} judged met):",
                      *(v.line() for v in verdicts)])
