"""Load drivers the benchmark runs and meters: started by ``OwnedProcess``, stopped by pid, always bounded.

Every process is started in its own session, so a Ctrl-C reaches only the orchestrator, whose
``finally`` blocks then stop each process it started: SIGTERM, then SIGKILL after a bound, and the
same for any descendant (Venus workers) still alive afterwards (``venus_grpc.tools.process``).
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from benchmarks.meter import Machine, PeakRss, ProcessTree
from venus_grpc.tools.process import OwnedProcess

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Measured:
    """A driver's result with the CPU and memory of the metered processes over its window."""

    result: dict[str, Any]
    window_s: float  # wall clock between the driver's "measure" and "window_end", seen from here
    cpu_s: dict[str, float]  # per metered tree, plus "driver" and "machine" (every process)
    peak_rss: dict[str, int]  # bytes, from the window's start to the driver's result
    peak_rss_largest: dict[str, int] = field(default_factory=dict)  # bytes, of the largest process of each tree

    def busy(self, name: str) -> float:
        """Average CPU use of ``name`` in the window, in cores (1.0 = one core saturated).

        ``others`` is what processes the benchmark did not start used meanwhile.
        """
        if name == "others":
            ours = sum(v for k, v in self.cpu_s.items() if k != "machine")
            return max(0.0, self.cpu_s.get("machine", 0.0) - ours) / self.window_s if self.window_s > 0 else 0.0
        return self.cpu_s.get(name, 0.0) / self.window_s if self.window_s > 0 else 0.0


def drive(name: str, argv: Sequence[str], *, trees: dict[str, ProcessTree], log_dir: Path,
          timeout_s: float) -> Measured:
    """Run a load driver to completion, reading ``trees`` (and the driver) at its window's edges."""
    driver = OwnedProcess(name, argv, log_dir=log_dir, cwd=REPO_ROOT, pipe_stdout=True)
    lines: queue.Queue[str | None] = queue.Queue()
    assert driver.process.stdout is not None
    threading.Thread(target=_pump, args=(driver.process.stdout, lines), daemon=True).start()
    meters: dict[str, ProcessTree | Machine] = {**trees, "driver": ProcessTree(driver.pid), "machine": Machine()}
    rss = PeakRss(meters)
    rss.start()
    deadline = time.monotonic() + timeout_s
    cpu0: dict[str, float] = {}
    cpu1: dict[str, float] = {}
    t0 = t1 = 0.0
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"{name} gave no result within {timeout_s:.0f} s:\n{driver.log_tail()}") from None
            if line is None:
                driver.process.wait(timeout=5)
                raise RuntimeError(f"{name} exited ({driver.process.returncode}) without a result:\n"
                                   f"{driver.log_tail()}")
            try:
                message = json.loads(line)
            except ValueError:
                continue
            phase = message.get("phase")
            if phase == "measure":
                cpu0 = {k: tree.cpu_seconds() for k, tree in meters.items()}
                t0 = time.monotonic()
                rss.reset()
            elif phase == "window_end":
                cpu1 = {k: tree.cpu_seconds() for k, tree in meters.items()}
                t1 = time.monotonic()
            elif phase == "error":
                raise RuntimeError(f"{name} failed: {message.get('message')}\n{driver.log_tail()}")
            elif phase == "result":
                message.pop("phase")
                with contextlib.suppress(subprocess.TimeoutExpired):
                    driver.process.wait(timeout=10)  # let it close its connections; stop() below is the bound
                return Measured(result=message, window_s=t1 - t0,
                                cpu_s={k: cpu1.get(k, 0.0) - cpu0.get(k, 0.0) for k in meters},
                                peak_rss=rss.peaks(), peak_rss_largest=rss.largest())
    finally:
        rss.stop()
        driver.stop(timeout_s=5)


def _pump(stream: IO[bytes], lines: queue.Queue[str | None]) -> None:
    for raw in stream:
        lines.put(raw.decode(errors="replace"))
    lines.put(None)
