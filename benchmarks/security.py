"""``python -m benchmarks.security``: what TLS, mTLS and API keys cost per request, beside plaintext.

One broker for the whole run; for each mode a fresh ``venus serve`` driven in a closed loop by
``benchmarks.load`` (another process). Modes are interleaved round by round, so that a noisy
neighbour hits all of them alike, and each figure is the median over the rounds. The figure that
isolates the cost is Venus's CPU per RPC (its whole process tree, over the measured window); the
ratio to plaintext is taken within each round. Certificates are made fresh (trustme) and every
process is stopped by its pid; everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import trustme

from benchmarks.meter import ProcessTree
from benchmarks.procs import Measured, drive
from benchmarks.report import table
from venus_grpc.ingest.keys import key_entry, new_key
from venus_grpc.tools.devbroker import EmbeddedBroker
from venus_grpc.tools.process import running_venus
from venus_grpc.tools.tls import channel_credentials

MODES = ("plaintext", "api-key", "tls", "tls+api-key", "mtls+api-key")


@dataclass(frozen=True)
class Materials:
    """Certificates and the keys file of one run."""

    directory: Path
    api_key: str

    @classmethod
    def make(cls, directory: Path) -> Materials:
        """A CA, a server certificate for 127.0.0.1, a client certificate, and a keys file."""
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(directory / "ca.pem"))
        for name, leaf in (("server", ca.issue_cert("127.0.0.1")), ("client", ca.issue_cert("bench@example.com"))):
            leaf.private_key_pem.write_to_path(str(directory / f"{name}.key"))
            leaf.private_key_and_cert_chain_pem.write_to_path(str(directory / f"{name}.pem"))
        api_key = new_key()
        (directory / "keys.toml").write_text(key_entry("bench", api_key, ["*"], ["*"]))
        return cls(directory, api_key)

    def server_flags(self, mode: str) -> list[str]:
        """``venus serve`` flags for ``mode``."""
        flags = []
        if "tls" in mode:
            flags += ["--tls-cert-path", str(self.directory / "server.pem"),
                      "--tls-key-path", str(self.directory / "server.key")]
        if mode.startswith("mtls"):
            flags += ["--tls-client-ca-path", str(self.directory / "ca.pem")]
        if "api-key" in mode:
            flags += ["--api-keys-path", str(self.directory / "keys.toml")]
        return flags

    def load_flags(self, mode: str) -> list[str]:
        """``benchmarks.load`` flags for ``mode``."""
        flags = []
        if "tls" in mode:
            flags += ["--ca-path", str(self.directory / "ca.pem")]
        if mode.startswith("mtls"):
            flags += ["--client-cert-path", str(self.directory / "client.pem"),
                      "--client-key-path", str(self.directory / "client.key")]
        if "api-key" in mode:
            flags += ["--api-key", self.api_key]
        return flags

    def credentials(self, mode: str) -> grpc.ChannelCredentials | None:
        """What a health check needs to reach a server in ``mode``."""
        if "tls" not in mode:
            return None
        client = mode.startswith("mtls")
        return channel_credentials(str(self.directory / "ca.pem"),
                                   str(self.directory / "client.pem") if client else "",
                                   str(self.directory / "client.key") if client else "")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.security", description=__doc__.splitlines()[0])
    p.add_argument("--modes", default=",".join(MODES), help=f"comma list of: {', '.join(MODES)}")
    p.add_argument("--batch-sizes", default="1,100", help="events per RPC")
    p.add_argument("--concurrency", type=int, default=16, help="RPCs in flight")
    p.add_argument("--rounds", type=int, default=3, help="every mode once per round; figures are medians")
    p.add_argument("--duration-s", type=float, default=5.0)
    p.add_argument("--warmup-s", type=float, default=1.0)
    p.add_argument("--workers", type=int, default=1, help="`venus serve --workers`")
    a = p.parse_args(argv)
    a.modes = [m for m in a.modes.split(",") if m]
    unknown = set(a.modes) - set(MODES)
    if unknown or "plaintext" not in a.modes:
        p.error(f"--modes must include plaintext and only these: {', '.join(MODES)}")
    a.batch_sizes = [int(b) for b in a.batch_sizes.split(",") if b]
    return a


def _run(a: argparse.Namespace, materials: Materials, broker: EmbeddedBroker, mode: str, batch: int,
         log_dir: Path) -> Measured:
    with running_venus(broker.bootstrap, log_dir=log_dir, name=f"venus-{mode}", workers=a.workers, metrics=True,
                       extra=materials.server_flags(mode), credentials=materials.credentials(mode)) as venus:
        load = [sys.executable, "-m", "benchmarks.load", "--target", venus.target, "--batch", str(batch),
                "--concurrency", str(a.concurrency), "--warmup-s", str(a.warmup_s), "--duration-s",
                str(a.duration_s), "--category", "BENCH_SECURITY", "--run-id", uuid.uuid4().hex[:8],
                *materials.load_flags(mode)]
        return drive("load", load, trees={"service": ProcessTree(venus.pid)}, log_dir=log_dir,
                     timeout_s=a.warmup_s + a.duration_s + 60)


def _cpu_us_per_rpc(run: Measured) -> float:
    return float(1e6 * run.cpu_s["service"] / max(1, run.result["rpcs"]))


def _report(a: argparse.Namespace, runs: dict[tuple[str, int], list[Measured]]) -> str:
    rows = []
    for batch in a.batch_sizes:
        for mode in a.modes:
            done = runs[(mode, batch)]
            base = runs[("plaintext", batch)]
            ratios = [_cpu_us_per_rpc(r) / _cpu_us_per_rpc(b) for r, b in zip(done, base, strict=True)]
            errors = sum(sum(r.result["errors"].values()) for r in done)
            rows.append([
                str(batch), mode,
                f"{statistics.median(r.result['events_per_s'] for r in done):,.0f}",
                f"{statistics.median(r.result['latency_ms']['p50'] for r in done):.1f}",
                f"{statistics.median(r.result['latency_ms']['p99'] for r in done):.1f}",
                f"{statistics.median(_cpu_us_per_rpc(r) for r in done):,.0f}",
                f"{statistics.median(ratios):.2f}",
                str(errors),
            ])
    return table(["batch", "mode", "events/s", "p50 ms", "p99 ms", "Venus CPU µs/RPC", "vs plaintext", "errors"],
                 rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every mode at every batch size for the given rounds and print the medians."""
    a = _parse(argv)
    runs: dict[tuple[str, int], list[Measured]] = {(m, b): [] for m in a.modes for b in a.batch_sizes}
    with tempfile.TemporaryDirectory(prefix="venus-bench-security-") as tmp, EmbeddedBroker() as broker:
        materials = Materials.make(Path(tmp))
        log_dir = Path(tmp) / "logs"
        log_dir.mkdir()
        for round_number in range(1, a.rounds + 1):
            for batch in a.batch_sizes:
                for mode in a.modes:
                    run = _run(a, materials, broker, mode, batch, log_dir)
                    runs[(mode, batch)].append(run)
                    print(f"[round {round_number}/{a.rounds}] batch {batch} {mode}: "
                          f"{run.result['events_per_s']:,.0f} events/s, {_cpu_us_per_rpc(run):,.0f} µs CPU/RPC",
                          file=sys.stderr, flush=True)
    print(_report(a, runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
