"""Processes that tests, benchmarks and the dev broker start: each one is stopped by its own pid.

``running_venus`` is the one way they run ``venus serve``: on free loopback ports, waited for until
grpc.health.v1 says SERVING (failing at once, with the tail of its log, if it exits), and stopped on
the way out: SIGTERM, SIGKILL once a bound has passed, then the same for any worker left behind.
It lives here, beside the dev broker, so that tests and benchmarks share it without either
importing the other's internals.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from venus_grpc.server.transport import free_port

INGEST_SERVICE = "venus.v1.IngestService"
_CHECK_TIMEOUT_S = 2.0  # one health call; a server busy after a heavy run may take a moment to answer
_POLL_S = 0.1


def stop_process(process: subprocess.Popen[bytes], *, timeout_s: float) -> None:
    """Stop a child by its pid: SIGTERM, then SIGKILL once ``timeout_s`` has passed."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class OwnedProcess:
    """A subprocess this program started and must stop; its stdout and stderr go to a log file.

    It runs in its own session, so a Ctrl-C reaches only the caller, whose ``finally`` then stops it.
    """

    def __init__(self, name: str, argv: Sequence[str], *, log_dir: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None, pipe_stdout: bool = False) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            list(argv), cwd=cwd, env=env or _child_env(), start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE if pipe_stdout else self._log, stderr=self._log,
        )

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the process wrote."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, *, timeout_s: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout_s``; then the same for descendants left behind. The exit code."""
        left_behind = _pidfds(_descendants(self.pid)) if self.process.poll() is None else []
        stop_process(self.process, timeout_s=timeout_s)
        _stop_pidfds(left_behind, timeout_s=timeout_s)
        self._log.close()
        return self.process.returncode


def wait_serving(target: str, *, within_s: float = 30.0, service: str = INGEST_SERVICE,
                 credentials: grpc.ChannelCredentials | None = None, owner: OwnedProcess | None = None) -> None:
    """Return once grpc.health.v1 at ``target`` says SERVING for ``service``; RuntimeError after ``within_s``.

    With ``owner``, fail at once, with the tail of its log, if that process exits meanwhile.
    """
    deadline = time.monotonic() + within_s
    channel = grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if owner is not None and owner.process.poll() is not None:
                raise RuntimeError(f"{owner.name} exited with code {owner.process.returncode}:\n{owner.log_tail()}")
            with contextlib.suppress(grpc.RpcError):
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=_CHECK_TIMEOUT_S)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            if time.monotonic() >= deadline:
                tail = f":\n{owner.log_tail()}" if owner is not None else ""
                raise RuntimeError(f"{target} was not SERVING {service} within {within_s:g} s{tail}")
            time.sleep(_POLL_S)  # asking another process: there is nothing to await instead


class VenusProcess(OwnedProcess):
    """``venus serve`` on 127.0.0.1 with free ports, without traces, logging to a file in ``log_dir``.

    ``metrics`` serves /metrics on ``metrics_port``; ``extra`` adds flags (TLS, limits, log shipping...).
    """

    def __init__(self, bootstrap: str, *, log_dir: Path, name: str = "venus", workers: int = 1,
                 metrics: bool = False, log_level: str = "WARNING", shutdown_grace_s: float = 5.0,
                 extra: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.metrics_port = free_port() if metrics else None
        metrics_flags = (["--metrics-host", "127.0.0.1", "--metrics-port", str(self.metrics_port)] if metrics
                         else ["--metrics-enabled", "false"])
        argv = [sys.executable, "-m", "venus_grpc", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                *metrics_flags, "--kafka-bootstrap", bootstrap, "--log-level", log_level, "--traces-exporter", "none",
                "--shutdown-grace-s", str(shutdown_grace_s), "--workers", str(workers), *extra]
        super().__init__(name, argv, log_dir=log_dir, env=_child_env(OTEL_TRACES_EXPORTER="none"))

    def wait_serving(self, *, within_s: float = 30.0, credentials: grpc.ChannelCredentials | None = None) -> None:
        """Return once health says SERVING for the ingest service; fail at once if the process exits."""
        wait_serving(self.target, within_s=within_s, credentials=credentials, owner=self)


@contextlib.contextmanager
def running_venus(bootstrap: str, *, log_dir: Path, name: str = "venus", workers: int = 1, metrics: bool = False,
                  log_level: str = "WARNING", shutdown_grace_s: float = 5.0, extra: Sequence[str] = (),
                  credentials: grpc.ChannelCredentials | None = None, ready_within_s: float = 30.0,
                  stop_timeout_s: float = 15.0) -> Iterator[VenusProcess]:
    """``venus serve`` (see :class:`VenusProcess`), SERVING when this yields, stopped by its pid afterwards.

    ``credentials`` reach a server started with TLS flags in ``extra``. Stopping sends SIGTERM and, if
    it has not exited after ``stop_timeout_s``, SIGKILL; a test may stop it earlier to check its exit.
    """
    venus = VenusProcess(bootstrap, log_dir=log_dir, name=name, workers=workers, metrics=metrics,
                         log_level=log_level, shutdown_grace_s=shutdown_grace_s, extra=extra)
    try:
        venus.wait_serving(within_s=ready_within_s, credentials=credentials)
        yield venus
    finally:
        venus.stop(timeout_s=stop_timeout_s)


def _child_env(**extra: str) -> dict[str, str]:
    """This environment without ``VENUS_*`` (a run must not depend on the caller's settings), plus ``extra``."""
    return {k: v for k, v in os.environ.items() if not k.startswith("VENUS_")} | extra


def _descendants(pid: int) -> dict[int, int]:
    """Every process below ``pid`` now, each with its parent, from /proc (none where there is no /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        parent = _parent(int(entry.name))
        if parent is not None:
            children.setdefault(parent, []).append(int(entry.name))
    found: dict[int, int] = {}
    todo = [pid]
    while todo:
        parent = todo.pop()
        for child in children.get(parent, []):
            found[child] = parent
            todo.append(child)
    return found


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])  # "pid (comm) state ppid ..."
    except (OSError, IndexError, ValueError):
        return None  # it exited meanwhile


def _pidfds(tree: dict[int, int]) -> list[int]:
    """A pidfd for each process of ``tree`` (pid: parent) still there, so that a signal never reaches a reused pid.

    A pidfd names one process for good; one whose parent is no longer the one seen is left alone, as it
    may not be ours.
    """
    fds = []
    for pid, parent in tree.items():
        try:
            fd = os.pidfd_open(pid)
        except OSError:  # gone already, or no pidfd_open (before Linux 5.3)
            continue
        if _parent(pid) == parent:
            fds.append(fd)
        else:
            os.close(fd)
    return fds


def _stop_pidfds(fds: list[int], *, timeout_s: float) -> None:
    """SIGTERM each process still running, then SIGKILL those not gone within ``timeout_s``; close the pidfds."""
    deadline = time.monotonic() + timeout_s
    try:
        running = [fd for fd in fds if not _exited(fd, within_s=0)]
        for fd in running:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(fd, signal.SIGTERM)
        for fd in running:
            if not _exited(fd, within_s=deadline - time.monotonic()):
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
    finally:
        for fd in fds:
            os.close(fd)


def _exited(pidfd: int, *, within_s: float) -> bool:
    """Whether the process of ``pidfd`` exits within ``within_s``: a pidfd turns readable when it does."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(max(0, int(within_s * 1000))))
