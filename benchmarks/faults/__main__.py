"""``python -m benchmarks.faults``: every fault scenario, judged by the ledger, as the Reliability table."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.faults.common import Context
from benchmarks.faults.scenarios import SCENARIOS, run_scenario
from benchmarks.faults.table import markdown


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen scenarios, print the table and write it as markdown; 1 if any failed."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.faults", description=__doc__)
    p.add_argument("--short", action="store_true", help="small counts and short faults, as CI runs them")
    p.add_argument("--only", default="", help="comma-separated scenario keys: " + ", ".join(SCENARIOS))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/reliability.md"))
    args = p.parse_args(argv)
    keys = [k for k in args.only.split(",") if k] or list(SCENARIOS)
    results = []
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="venus-faults-") as log_dir:
        ctx = Context(Path(log_dir), short=args.short)
        for key in keys:
            result = asyncio.run(run_scenario(key, ctx))
            print(f"{'PASS' if result.passed else 'FAIL'} {result.name}"
                  + "".join(f"\n    {p}" for p in result.problems)
                  + (f"\n    figures: {result.notes}" if result.notes else ""), flush=True)
            results.append(result)
    mode = "short (CI)" if args.short else "long"
    table = markdown(results, mode=mode, seconds=time.monotonic() - began)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
