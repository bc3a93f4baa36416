"""The long fuzz run: ``python -m tests.fuzz --examples 100000``.

Runs the same properties as CI against a fresh broker and live Venus, with ``N`` inputs shared out
between them and fresh random seeds, then prints what was tried, the statuses and event codes seen,
memory before and after, and every defect (a property that failed, with hypothesis's smallest
failing input in the pytest output above the summary).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pytest

from tests.fuzz.checks import TALLY


class _Defects:
    """A pytest plugin that keeps the reports of failed tests and fixtures."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.failed.append(f"{report.nodeid} ({report.when})")


def main(argv: list[str] | None = None) -> int:
    """Run the fuzz properties with ``--examples`` inputs in all and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000, help="inputs in all (default 100000)")
    # anything else goes to pytest, e.g. -k raw
    args, pytest_args = parser.parse_known_args(argv)
    os.environ["VENUS_FUZZ_EXAMPLES"] = str(args.examples)
    defects = _Defects()
    started = time.monotonic()
    code = pytest.main([str(Path(__file__).parent), "-q", "-p", "no:cacheprovider", "-o", "timeout=0",
                        *pytest_args], plugins=[defects])
    _report(defects, time.monotonic() - started)
    return int(code)


def _report(defects: _Defects, elapsed_s: float) -> None:
    print(f"\n== fuzz run: {sum(TALLY.inputs.values())} inputs in {elapsed_s:.0f} s")
    for kind, count in sorted(TALLY.inputs.items()):
        statuses = {k.split(":", 1)[1]: n for k, n in TALLY.statuses.items() if k.startswith(f"{kind}:")}
        print(f"  {kind:<9} {count:>7} inputs   statuses: {dict(sorted(statuses.items()))}")
    print(f"  event results: {dict(sorted(TALLY.event_codes.items()))}")
    for module, (before, after) in sorted(TALLY.rss.items()):
        name = module.rsplit('.', 1)[-1]
        print(f"  RSS {name:<14} warmed-up {before / 2**20:.1f} MiB, after {after / 2**20:.1f} MiB")
    print(f"  defects: {len(defects.failed)}" + "".join(f"\n    {d}" for d in defects.failed))


if __name__ == "__main__":
    sys.exit(main())
