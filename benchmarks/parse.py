"""What the never-raising request parser costs on the hot path, next to plain ``FromString``.

``python -m benchmarks.parse`` prints nanoseconds per request for typical request sizes, for
``UploadEventsRequest.FromString`` and for Venus's ``request_parser`` (which turns a DecodeError
into INVALID_ARGUMENT instead of gRPC's INTERNAL). The two are timed in alternating windows, so a
busy neighbour slows both alike, and each figure is the median over the windows.
"""

from __future__ import annotations

import argparse
import statistics
import timeit

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc.ingest.checks import request_parser
from venus_grpc.tools.send_tail import sample_request

_SIZES = (1, 10, 100, 1000)


def compare(data: bytes, *, repeats: int, window_s: float) -> tuple[float, float, float]:
    """Median ns per request of FromString, of request_parser, and of their per-window difference."""
    never_raising = request_parser(pb.UploadEventsRequest)
    plain = timeit.Timer(lambda: pb.UploadEventsRequest.FromString(data))
    ours = timeit.Timer(lambda: never_raising(data))
    number, elapsed = plain.autorange()
    number = max(1, int(number * window_s / elapsed))
    pairs = [(plain.timeit(number) / number * 1e9, ours.timeit(number) / number * 1e9) for _ in range(repeats)]
    return (statistics.median(p for p, _ in pairs), statistics.median(o for _, o in pairs),
            statistics.median(o - p for p, o in pairs))


def main(argv: list[str] | None = None) -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.parse", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21, help="alternating windows per size")
    parser.add_argument("--window-s", type=float, default=0.05, help="time per window")
    args = parser.parse_args(argv)
    print(f"{'events':>6} {'bytes':>8} {'FromString ns':>14} {'request_parser ns':>18} {'extra ns':>9} {'extra':>7}")
    for events in _SIZES:
        data = sample_request(app_id="venus-bench", category="PERF_CRASH", events=events).SerializeToString()
        base, wrapped, extra = compare(data, repeats=args.repeats, window_s=args.window_s)
        print(f"{events:>6} {len(data):>8} {base:>14.0f} {wrapped:>18.0f} {extra:>9.0f} {extra / base:>7.1%}")


if __name__ == "__main__":
    main()
