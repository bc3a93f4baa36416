"""The measurements ``benchmarks.run`` is made of: Venus, the transport ceiling and the broker ceiling at one
point, and the sweep, StreamEvents, HTTP, cost rounds and overload built from them.

Each run starts its own processes (a fresh Tansu broker, ``venus serve``, the empty server, the load
driver) and stops them by their pid before it returns; everything listens on 127.0.0.1 only. A failed
run is recorded and printed, never raised, so one failure does not lose the rest of an invocation.
"""

from __future__ import annotations

import shutil
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from benchmarks.empty_server import Work
from benchmarks.meter import ProcessTree
from benchmarks.options import COST_BATCHES, COST_CONCURRENCY, OVERLOAD_BATCH, RESULTS, Options
from benchmarks.procs import REPO_ROOT, drive
from benchmarks.records import Overload, Point, RunRecord
from benchmarks.targets import CostRounds
from benchmarks.verify import verify
from venus_grpc.kafka import OWN_BATCH_FROM_MESSAGES
from venus_grpc.server.transport import free_port
from venus_grpc.settings import Settings
from venus_grpc.tools.devbroker import EmbeddedBroker
from venus_grpc.tools.process import OwnedProcess, running_venus, wait_serving

OVERLOAD_FACTOR = 3.0
BASELINE_REFUSE_PAST = 2  # calls in flight per process: one working, one ready to start, none queued behind
NO_WORK = Work()
HTTP_BATCHES = (100, 1)  # CPU per event at batch 100, per call at batch 1


def say(text: str) -> None:
    """A progress line, on stderr so that stdout stays the report."""
    print(text, file=sys.stderr, flush=True)


class Bench:
    """One invocation: runs points and the overload test, keeping logs and the Venus message sample."""

    def __init__(self, options: Options) -> None:
        self.o = options
        self.log_dir = RESULTS / "logs"
        shutil.rmtree(self.log_dir, ignore_errors=True)
        self.log_dir.mkdir(parents=True)
        self.sample_path: Path | None = None

    # --- the three kinds of run

    def _load_argv(self, target: str, batch: int, concurrency: int, *, category: str, rate_rps: float = 0.0,
                   max_outstanding: int = 0, stream: bool = False, http: bool = False) -> list[str]:
        argv = [sys.executable, "-m", "benchmarks.load", "--target", target, "--batch", str(batch),
                "--concurrency", str(concurrency), "--channels", str(self.o.channels),
                "--warmup-s", str(self.o.warmup_s), "--duration-s", str(self.o.duration_s),
                "--category", category, "--run-id", uuid.uuid4().hex[:8], "--timeout-s", str(self.o.timeout_s)]
        if rate_rps > 0:
            argv += ["--rate", f"{rate_rps:.3f}", "--max-outstanding", str(max_outstanding)]
        if stream:
            argv.append("--stream")
        if http:
            argv += ["--http", "--http2"] if self.o.http2 else ["--http"]
        return argv

    def _drive_timeout(self) -> float:
        return self.o.warmup_s + self.o.duration_s + 2 * self.o.timeout_s + 30

    def run_venus(self, batch: int, concurrency: int, *, kind: str = "venus", rate_rps: float = 0.0,
                  max_outstanding: int = 0, stream: bool = False, http: bool = False,
                  workers: int | None = None) -> RunRecord:
        """Fresh broker and Venus; drive (its HTTP port with ``http``); stop Venus; read the topic back."""
        category = "BENCH_" + uuid.uuid4().hex[:10].upper()
        http_port = free_port()
        extra: tuple[str, ...] = ("--http-enabled", "true", "--http-port", str(http_port)) if http else ()
        if not rate_rps:  # closed loop measures what a served call costs: a fixed limit, so no refusals mix in
            extra += ("--overload-latency-target-s", "0")
        extra += ("--http2-enabled", "true") if http and self.o.http2 else ()
        with EmbeddedBroker() as broker:
            assert broker.pid is not None
            if workers is None:
                workers = self.o.workers if self.o.workers is not None else Settings().workers  # venus serve's own
            with running_venus(broker.bootstrap, log_dir=self.log_dir, workers=workers, metrics=True,
                               extra=extra) as venus:
                target = f"127.0.0.1:{http_port}" if http else venus.target
                measured = drive("load", self._load_argv(target, batch, concurrency, category=category,
                                                         rate_rps=rate_rps, max_outstanding=max_outstanding,
                                                         stream=stream, http=http),
                                 trees={"service": ProcessTree(venus.pid), "broker": ProcessTree(broker.pid)},
                                 log_dir=self.log_dir, timeout_s=self._drive_timeout())
            total = measured.result["total"]
            verdict = verify(broker.bootstrap, Settings().topic_for(category), expected=total["events_ok"],
                             ambiguous=total["ambiguous_events"], timeout_s=30 + total["events_sent"] / 20_000,
                             batch=batch, requests_sent=total["rpcs_sent"])
        if self.sample_path is None and verdict.found is not None and verdict.found.sample is not None:
            self.sample_path = self.log_dir / "venus-message.json"
            verdict.found.sample.dump(self.sample_path)
        return RunRecord(kind=kind, batch=batch, concurrency=concurrency, measured=measured, verdict=verdict,
                         offered_eps=rate_rps * batch)

    def run_transport(self, batch: int, concurrency: int, *, processes: int | None = None, kind: str = "transport",
                      work: Work = NO_WORK, rate_rps: float = 0.0, max_outstanding: int = 0) -> RunRecord:
        """The empty gRPC server (doing ``work`` per call), same load."""
        port = free_port()
        processes = self.o.ceiling_processes if processes is None else processes
        server = OwnedProcess("empty_server", [sys.executable, "-m", "benchmarks.empty_server", "--port", str(port),
                                               "--processes", str(processes), "--work-us", f"{work.cpu_us:.1f}",
                                               "--refuse-past", str(work.refuse_past)],
                              log_dir=self.log_dir, cwd=REPO_ROOT)
        try:
            wait_serving(f"127.0.0.1:{port}", owner=server)
            measured = drive("load", self._load_argv(f"127.0.0.1:{port}", batch, concurrency, category="BENCH",
                                                     rate_rps=rate_rps, max_outstanding=max_outstanding),
                             trees={"service": ProcessTree(server.pid)}, log_dir=self.log_dir,
                             timeout_s=self._drive_timeout())
        finally:
            server.stop(timeout_s=10)
        return RunRecord(kind=kind, batch=batch, concurrency=concurrency, measured=measured,
                         offered_eps=rate_rps * batch)

    def run_broker(self, batch: int, concurrency: int, api: str, *, processes: int | None = None) -> RunRecord:
        """A bare producer with Venus's settings and message, on a fresh broker."""
        processes = self.o.ceiling_processes if processes is None else processes
        with EmbeddedBroker() as broker:
            assert broker.pid is not None
            argv = [sys.executable, "-m", "benchmarks.broker_load", "--bootstrap", broker.bootstrap,
                    "--topic", "bench_ceiling_" + uuid.uuid4().hex[:8], "--batch", str(batch),
                    "--concurrency", str(concurrency), "--warmup-s", str(self.o.warmup_s),
                    "--duration-s", str(self.o.duration_s), "--timeout-s", str(self.o.timeout_s),
                    "--sample", str(self.sample_path or ""), "--processes", str(processes),
                    "--api", api]
            measured = drive("broker_load", argv, trees={"broker": ProcessTree(broker.pid)}, log_dir=self.log_dir,
                             timeout_s=self._drive_timeout())
        return RunRecord(kind="broker", batch=batch, concurrency=concurrency, measured=measured)

    # --- the sweep and the overload test

    def point(self, batch: int, concurrency: int) -> Point:
        """Venus first (its message sizes the broker ceiling), then both ceilings; failures are recorded."""
        point = Point(batch, concurrency)
        apis = ("send", "batch") if self.o.broker_api == "both" else (self.o.broker_api,)
        try:
            point.venus = self.run_venus(batch, concurrency)
        except Exception as exc:
            point.errors.append(f"venus: {type(exc).__name__}: {exc}")
            say(f"    venus failed: {exc}")
        for api in apis:
            try:
                point.brokers[api] = self.run_broker(batch, concurrency, api)
            except Exception as exc:
                point.errors.append(f"broker ({api}): {type(exc).__name__}: {exc}")
                say(f"    broker ceiling ({api}) failed: {exc}")
        try:
            point.transport = self.run_transport(batch, concurrency)
        except Exception as exc:
            point.errors.append(f"transport: {type(exc).__name__}: {exc}")
            say(f"    transport ceiling failed: {exc}")
        return point

    def sweep(self) -> list[Point]:
        """Every point in order; stops early when Venus fails twice in a row (e.g. a bad flag)."""
        points: list[Point] = []
        plan = self.o.points()
        for index, (batch, concurrency) in enumerate(plan, 1):
            started = time.monotonic()
            point = self.point(batch, concurrency)
            points.append(point)
            v = point.venus
            summary = (f"{v.eps:,.0f} events/s, {point.ratio:.2f} of ceiling, in Kafka {v.verdict.text()}"
                       if v and v.verdict else "Venus failed")
            say(f"[{index}/{len(plan)}] batch {batch}, concurrency {concurrency}: {summary} "
                 f"({time.monotonic() - started:.0f} s)")
            if len(points) >= 2 and all(p.venus is None for p in points[-2:]):
                say("Venus failed twice in a row; stopping the sweep.")
                break
        return points

    def streaming(self, points: Sequence[Point]) -> tuple[RunRecord | None, RunRecord | None]:
        """StreamEvents at the base point, beside the unary run of the sweep (or one measured now)."""
        batch, concurrency = self.o.base_batch, self.o.base_concurrency
        unary = next((p.venus for p in points if (p.batch, p.concurrency) == (batch, concurrency)), None)
        try:
            return unary, self.run_venus(batch, concurrency, kind="stream", stream=True)
        except Exception as exc:
            say(f"    StreamEvents run failed: {exc}")
            return unary, None

    def http(self, points: Sequence[Point]) -> list[tuple[RunRecord | None, RunRecord | None]]:
        """(gRPC, HTTP) at batch 100 and 1, base concurrency: gRPC's from the sweep (or measured now)."""
        pairs: list[tuple[RunRecord | None, RunRecord | None]] = []
        concurrency = self.o.base_concurrency
        for batch in HTTP_BATCHES:
            grpc_run = next((p.venus for p in points if (p.batch, p.concurrency) == (batch, concurrency)), None)
            try:
                grpc_run = grpc_run or self.run_venus(batch, concurrency)
                pairs.append((grpc_run, self.run_venus(batch, concurrency, kind="http", http=True)))
            except Exception as exc:
                say(f"    HTTP comparison at batch {batch} failed: {exc}")
                pairs.append((grpc_run, None))
        return pairs

    def cost(self) -> list[CostRounds]:
        """Venus, the bare server and the producer alone back to back at each cost batch size, rounds
        interleaved; one process each, as the issue measures it, whatever ``--workers`` says."""
        found = [CostRounds(batch, COST_CONCURRENCY) for batch in COST_BATCHES]
        for round_number in range(1, self.o.cost_rounds + 1):
            for rounds in found:
                try:
                    pair = (self.run_venus(rounds.batch, rounds.concurrency, kind="cost", workers=1),
                            self.run_transport(rounds.batch, rounds.concurrency, processes=1))
                except Exception as exc:
                    say(f"    cost round {round_number} at batch {rounds.batch} failed: {exc}")
                    continue
                rounds.pairs.append(pair)
                v, b = pair
                # Publishing the way Venus does at this size: its own record batch, or message by message.
                api = "batch" if rounds.batch >= OWN_BATCH_FROM_MESSAGES else "send"
                producer = ""
                try:
                    alone = self.run_broker(rounds.batch, rounds.concurrency, api, processes=1)
                    rounds.producers.append(alone)
                    producer = f", producer alone {alone.cpu_us_per_rpc():,.0f} µs"
                except Exception as exc:
                    say(f"    producer alone, cost round {round_number} at batch {rounds.batch}, failed: {exc}")
                say(f"[cost {round_number}/{self.o.cost_rounds}] batch {rounds.batch}: Venus "
                     f"{v.cpu_us_per_rpc():,.0f} µs CPU per call, bare server {b.cpu_us_per_rpc():,.0f} µs{producer}")
        return found

    def overload(self, points: Sequence[Point]) -> Overload:
        """Capacity at batch 100 (from the sweep, else measured now), then 3x that, open loop; then the
        same for the bare server doing Venus's CPU per call, the baseline any grpc.aio server would meet."""
        batch = OVERLOAD_BATCH
        cap = self.o.overload_max_outstanding
        found = [p for p in points if p.batch == batch and p.venus is not None]
        try:
            if not found:
                say(f"overload: measuring capacity at batch {batch} first")
                found = [self.point(batch, self.o.base_concurrency)]
            at_capacity = max(found, key=lambda p: p.venus.eps if p.venus else 0.0)
            if at_capacity.venus is None or at_capacity.venus.eps <= 0:
                return Overload(capacity_eps=0, factor=OVERLOAD_FACTOR, error="no capacity measured at batch 100")
            capacity = at_capacity.venus.eps
            half_rate = 0.5 * capacity / batch
            say(f"half capacity: offering {half_rate * batch:,.0f} events/s open loop")
            half = self.run_venus(batch, cap, kind="half-capacity", rate_rps=half_rate, max_outstanding=cap)
            rate = OVERLOAD_FACTOR * capacity / batch
            say(f"overload: offering {rate * batch:,.0f} events/s ({rate:,.1f} RPC/s) open loop")
            run = self.run_venus(batch, cap, kind="overload", rate_rps=rate, max_outstanding=cap)
            return Overload(capacity_eps=capacity, factor=OVERLOAD_FACTOR, run=run, half=half,
                            baseline=self.overload_baseline(at_capacity))
        except Exception as exc:
            return Overload(capacity_eps=0, factor=OVERLOAD_FACTOR, error=f"{type(exc).__name__}: {exc}")

    def overload_baseline(self, at_capacity: Point) -> Overload:
        """The bare server burning what Venus spent per call beyond it at capacity, refusing past a few calls
        in flight: its own capacity at the same point, then 3x that, open loop."""
        assert at_capacity.venus is not None
        batch, concurrency, cap = at_capacity.batch, at_capacity.concurrency, self.o.overload_max_outstanding
        bare = at_capacity.transport.cpu_us_per_rpc() if at_capacity.transport else 0.0
        work = Work(cpu_us=max(0.0, at_capacity.venus.cpu_us_per_rpc() - bare), refuse_past=BASELINE_REFUSE_PAST)
        try:
            say(f"overload baseline: bare server burning {work.cpu_us:,.0f} µs per call, capacity first")
            closed = self.run_transport(batch, concurrency, kind="baseline-capacity", work=Work(cpu_us=work.cpu_us))
            if closed.eps <= 0:
                return Overload(capacity_eps=0, factor=OVERLOAD_FACTOR, work=work, error="no capacity measured")
            rate = OVERLOAD_FACTOR * closed.eps / batch
            run = self.run_transport(batch, cap, kind="baseline-overload", work=work, rate_rps=rate,
                                     max_outstanding=cap)
            return Overload(capacity_eps=closed.eps, factor=OVERLOAD_FACTOR, run=run, work=work)
        except Exception as exc:
            return Overload(capacity_eps=0, factor=OVERLOAD_FACTOR, work=work, error=f"{type(exc).__name__}: {exc}")
