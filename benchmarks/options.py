"""The command line of ``python -m benchmarks.run``: what to measure, and for how long."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.procs import REPO_ROOT
from venus_grpc.settings import Settings

RESULTS = REPO_ROOT / "benchmarks" / "results"
OVERLOAD_BATCH = 100
COST_BATCHES = (1, 100)  # batch sizes of the CPU-per-call comparison with the bare server
COST_CONCURRENCY = 64
DESCRIPTION = "Venus throughput with same-run ceilings, and the targets of issue #15, in one bounded command."


@dataclass(frozen=True)
class Options:
    """What to measure, and for how long."""

    quick: bool
    workers: int | None
    batch_sizes: tuple[int, ...]
    concurrency: tuple[int, ...]
    grid: bool
    duration_s: float
    warmup_s: float
    channels: int
    timeout_s: float
    overload: bool
    json_path: Path
    ceiling_processes: int
    broker_api: str
    overload_max_outstanding: int
    cost_rounds: int
    http2: bool = False  # the HTTP comparison over HTTP/2 (h2c) instead of HTTP/1.1


    @property
    def base_batch(self) -> int:
        """The batch size of the concurrency sweep (100 when swept)."""
        return 100 if 100 in self.batch_sizes else max(self.batch_sizes)

    @property
    def base_concurrency(self) -> int:
        """The concurrency of the batch-size sweep (16 when swept)."""
        return 16 if 16 in self.concurrency else max(self.concurrency)

    def points(self) -> list[tuple[int, int]]:
        """Every batch size at the base concurrency, and every concurrency at the base batch (or the grid)."""
        if self.grid:
            return [(b, c) for b in self.batch_sizes for c in self.concurrency]
        pairs = [(b, self.base_concurrency) for b in self.batch_sizes]
        pairs += [(self.base_batch, c) for c in self.concurrency if (self.base_batch, c) not in pairs]
        return pairs


def _ints(text: str) -> tuple[int, ...]:
    values = tuple(int(v) for v in text.split(",") if v.strip())
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive whole numbers separated by commas, got {text!r}")
    return values


def parse_options(argv: Sequence[str] | None) -> Options:
    """The command line; ``--quick`` changes the defaults, explicit flags still win."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=DESCRIPTION)
    p.add_argument("--quick", action="store_true", help="short runs and a smaller sweep: about 2 minutes")
    p.add_argument("--workers", type=int, help="passed to `venus serve --workers` (default: its own, one per core)")
    p.add_argument("--batch-sizes", type=_ints, help="events per RPC (default 1,10,100,1000)")
    p.add_argument("--concurrency", type=_ints, help="RPCs in flight (default 1,4,16,64; quick 16,64)")
    p.add_argument("--grid", action="store_true", help="every batch size at every concurrency")
    p.add_argument("--duration-s", type=float, help="measured seconds per run (default 10; quick 2)")
    p.add_argument("--warmup-s", type=float, help="unmeasured seconds before each window (default 2; quick 1)")
    p.add_argument("--channels", type=int, default=8, help="gRPC connections of the load driver")
    p.add_argument("--ceiling-processes", type=int,
                   help="processes of each ceiling (default: as many as Venus's workers)")
    p.add_argument("--timeout-s", type=float, default=10.0, help="RPC deadline")
    p.add_argument("--overload", action="store_true", help="also offer 3x capacity at batch 100, open loop")
    p.add_argument("--overload-max-outstanding", type=int,
                   help="cap on RPCs in flight in the overload run (default: twice what Venus admits at batch 100)")
    p.add_argument("--broker-api", choices=("both", "batch", "send"), default="both",
                   help="how the broker ceiling publishes (see benchmarks/broker_load.py); both: the faster counts")
    p.add_argument("--cost-rounds", type=int,
                   help=f"interleaved rounds of Venus and the bare server at batch {'/'.join(map(str, COST_BATCHES))}, "
                        f"{COST_CONCURRENCY} in flight, one process each, for CPU per call "
                        "(default 3; quick 1; 0: skip)")
    p.add_argument("--json", type=Path, default=RESULTS / "latest.json", help="where to write the results")
    p.add_argument("--http2", action="store_true", help="drive the HTTP comparison over HTTP/2 (h2c) instead of "
                   "HTTP/1.1, with http2_enabled on")
    a = p.parse_args(argv)
    if a.workers is not None and a.workers < 1:
        p.error("--workers must be at least 1")
    return Options(
        quick=a.quick, workers=a.workers,
        batch_sizes=a.batch_sizes or (1, 10, 100, 1000),
        concurrency=a.concurrency or ((16, 64) if a.quick else (1, 4, 16, 64)),
        grid=a.grid,
        duration_s=a.duration_s or (2.0 if a.quick else 10.0),
        warmup_s=a.warmup_s if a.warmup_s is not None else (1.0 if a.quick else 2.0),
        channels=a.channels, timeout_s=a.timeout_s, overload=a.overload, json_path=a.json,
        ceiling_processes=a.ceiling_processes or venus_processes(a.workers), broker_api=a.broker_api,
        overload_max_outstanding=a.overload_max_outstanding or _overload_cap(venus_processes(a.workers)),
        cost_rounds=a.cost_rounds if a.cost_rounds is not None else (1 if a.quick else 3),
        http2=a.http2,
    )


def _overload_cap(processes: int) -> int:
    # Each worker admits max_events_in_flight events; offer room for twice that, so that Venus's own
    # overload protection, not the client's cap, decides what is refused.
    return max(64, 2 * processes * Settings().max_events_in_flight // OVERLOAD_BATCH)


def venus_processes(workers: int | None) -> int:
    """How many processes serve Venus's traffic: ``--workers`` if given, else its default (0: one per core)."""
    count = workers if workers is not None else int(getattr(Settings(), "workers", 1))
    if count == 0:
        count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, count)
