"""The Reliability table: one row per scenario, as markdown."""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.faults.common import Result

_HEADER = ("| scenario | events sent | acknowledged | acknowledged-then-lost | duplicates | rejected-but-present "
           "| late RPCs | max latency | recovery | peak RSS | invariants |\n"
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")


def markdown(results: Sequence[Result], *, mode: str, seconds: float) -> str:
    """The table, with a line saying which mode produced it and how long it took."""
    rows = [_row(r) for r in results]
    return "\n".join([_HEADER, *rows, "", f"Mode: {mode}; {len(results)} scenarios in {seconds:.0f} s."]) + "\n"


def _row(r: Result) -> str:
    v = r.verdict
    recovery = "—" if r.recovery_s is None else f"{r.recovery_s:.1f} s"
    held = "✓" if r.passed else "✗ " + "; ".join(p.splitlines()[0] for p in r.problems or ["ledger unsound"])
    return (f"| {r.name} | {v.sent:,} | {v.acknowledged:,} | {v.lost} | {v.duplicates} | {v.rejected_present} "
            f"| {v.late_rpcs} | {v.max_s:.2f} s | {recovery} | {r.peak_rss_bytes / 2**20:.0f} MiB | {held} |")
