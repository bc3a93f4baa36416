"""``venus serve --workers N``: N worker processes sharing one port (and the HTTP port) through ``SO_REUSEPORT``.

The supervisor owns no traffic: it starts the workers, serves their Prometheus metrics aggregated
(multiprocess mode), forwards SIGTERM/SIGINT, and restarts a worker that dies while serving (with
a backoff, so a crash loop cannot spin). The kernel spreads new connections over the workers.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import tempfile
import threading
import time
from multiprocessing.process import BaseProcess
from types import FrameType

import structlog

from venus_grpc.server.transport import free_port
from venus_grpc.settings import Settings

log = structlog.get_logger(__name__)
_RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
_HEALTHY_AFTER_S = 30.0  # a worker that ran this long before dying starts its backoff afresh
_KILL_MARGIN_S = 5.0
_ORPHAN_CHECK_S = 0.5


def worker_count(settings: Settings) -> int:
    """``settings.workers``, where 0 means one per available core."""
    if settings.workers:
        return settings.workers
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_workers(settings: Settings, count: int) -> int:
    """Run ``count`` workers until SIGTERM/SIGINT; 0 when every worker shut down cleanly."""
    port = settings.port or free_port(settings.host)
    # Every worker must bind the same ports: "any free port" is chosen once, here.
    http_port = (settings.http_port or free_port(settings.host)) if settings.http_enabled else settings.http_port
    metrics_dir = tempfile.mkdtemp(prefix="venus-metrics-")
    # Read by prometheus_client when a worker imports it: each worker writes its samples there.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    worker_settings = dataclasses.replace(settings, port=port, http_port=http_port, metrics_enabled=False,
                                          reuse_port=True)
    supervisor = _Supervisor(worker_settings, count, metrics_dir)
    try:
        if settings.metrics_enabled:
            _serve_aggregated_metrics(settings, metrics_dir)
        log.info("starting workers", workers=count, port=port, http_port=http_port if settings.http_enabled else None)
        return supervisor.run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


class _Supervisor:
    def __init__(self, settings: Settings, count: int, metrics_dir: str) -> None:
        self._settings = settings
        self._count = count
        self._metrics_dir = metrics_dir
        self._context = multiprocessing.get_context("spawn")
        self._workers: dict[int, BaseProcess] = {}
        self._started_at: dict[int, float] = {}
        self._failures: dict[int, int] = {}
        self._stopping = False

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        for slot in range(self._count):
            self._start(slot)
        while not self._stopping:
            sentinels = [p.sentinel for p in self._workers.values()]
            multiprocessing.connection.wait(sentinels, timeout=0.5)
            for slot, process in list(self._workers.items()):
                if not process.is_alive() and not self._stopping:
                    self._replace(slot, process)
        return self._shut_down()

    def _on_signal(self, signum: int, _: FrameType | None) -> None:
        self._stopping = True

    def _start(self, slot: int) -> None:
        process = self._context.Process(target=_worker_main, args=(self._settings,), name=f"venus-worker-{slot}")
        process.start()
        self._workers[slot] = process
        self._started_at[slot] = time.monotonic()

    def _replace(self, slot: int, dead: BaseProcess) -> None:
        self._mark_dead(dead)
        lived_s = time.monotonic() - self._started_at[slot]
        failures = 0 if lived_s > _HEALTHY_AFTER_S else self._failures.get(slot, 0) + 1
        self._failures[slot] = failures
        delay_s = _RESTART_BACKOFF_S[min(failures, len(_RESTART_BACKOFF_S) - 1)]
        log.error("worker died; restarting", pid=dead.pid, exitcode=dead.exitcode, lived_s=round(lived_s, 1),
                  restart_in_s=delay_s)
        deadline = time.monotonic() + delay_s
        while not self._stopping and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self._stopping:
            self._start(slot)

    def _shut_down(self) -> int:
        log.info("stopping workers", workers=len(self._workers))
        for process in self._workers.values():
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._settings.shutdown_grace_s + _KILL_MARGIN_S
        for process in self._workers.values():
            process.join(max(deadline - time.monotonic(), 0.0))
            if process.is_alive():
                log.error("worker did not stop within its grace; killing it", pid=process.pid)
                process.kill()
                process.join()
            self._mark_dead(process)
        clean = all(p.exitcode == 0 for p in self._workers.values())
        log.info("workers stopped", clean=clean)
        return 0 if clean else 1

    def _mark_dead(self, process: BaseProcess) -> None:
        from prometheus_client import multiprocess

        if process.pid is not None:
            multiprocess.mark_process_dead(process.pid, self._metrics_dir)  # type: ignore[no-untyped-call]


def _serve_aggregated_metrics(settings: Settings, metrics_dir: str) -> None:
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=metrics_dir)  # type: ignore[no-untyped-call]
    start_http_server(settings.metrics_port, settings.metrics_host, registry=registry)


def _worker_main(settings: Settings) -> None:
    # Runs in a fresh (spawned) interpreter: set up logging and serve until SIGTERM.
    from venus_grpc.obs.logs import configure_logging
    from venus_grpc.server.app import run_service

    configure_logging(settings)
    threading.Thread(target=_stop_when_orphaned, args=(os.getppid(),), daemon=True,
                     name="venus-orphan-watch").start()
    run_service(settings)


def _stop_when_orphaned(supervisor_pid: int) -> None:
    # A supervisor killed with SIGKILL cannot forward SIGTERM: its workers notice that they were
    # re-parented and shut themselves down gracefully rather than serve on, unmanaged.
    while os.getppid() == supervisor_pid:
        time.sleep(_ORPHAN_CHECK_S)
    log.warning("supervisor is gone; shutting down", supervisor_pid=supervisor_pid)
    os.kill(os.getpid(), signal.SIGTERM)
