"""``venus send``, ``venus tail`` and ``venus dev`` against a live Venus and broker, as a user runs them."""

from __future__ import annotations

import asyncio
import sys
import time
import urllib.request
from pathlib import Path

import orjson

from tests.process_helpers import run_command
from venus_grpc import Venus
from venus_grpc.server.transport import free_port
from venus_grpc.tools.devbroker import EmbeddedBroker
from venus_grpc.tools.process import OwnedProcess


async def _venus_command(*args: str) -> tuple[int, str]:
    done = await run_command([sys.executable, "-m", "venus_grpc", *args], timeout_s=60)
    return done.returncode, done.stdout + done.stderr


async def test_send_then_tail_shows_the_published_events(
    venus: Venus, broker: EmbeddedBroker, category: str
) -> None:
    """`venus send` reports every event OK and `venus tail` prints them with their trace headers."""
    code, out = await _venus_command("send", "--target", f"127.0.0.1:{venus.port}", "--category", category,
                                     "--events", "3", "--batches", "2")
    assert code == 0, out
    assert "6 events OK, 0 not OK" in out

    code, out = await _venus_command("tail", category, "--bootstrap", broker.bootstrap, "--from-beginning",
                                     "--max-messages", "4", "--timeout-s", "10")
    assert code == 0, out
    lines = [orjson.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(lines) == 4
    for line in lines:
        assert line["value"]["meta"]["category"] == category
        assert line["headers"]["traceparent"].startswith("00-")
        assert line["value"]["geo"]["country_code"] == "GB"


async def test_venus_dev_serves_the_http_port(tmp_path: Path) -> None:
    """`venus dev` serves Connect on its HTTP port (on by default there) and says where, so the README's curl works."""
    ports = {flag: free_port() for flag in ("--broker-port", "--port", "--http-port", "--metrics-port")}
    dev = OwnedProcess("venus-dev", [sys.executable, "-m", "venus_grpc", "dev",
                                     *(str(part) for pair in ports.items() for part in pair)], log_dir=tmp_path)
    url = f"http://127.0.0.1:{ports['--http-port']}"
    try:
        status = await asyncio.to_thread(_readyz_within, f"{url}/readyz", 60)
        banner = dev.log_tail(40)
    finally:
        assert await asyncio.to_thread(dev.stop) == 0
    assert status == 200
    assert f"HTTP (Connect, gRPC-Web) on {url}" in banner


def _readyz_within(url: str, within_s: float) -> int:
    deadline = time.monotonic() + within_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return int(reply.status)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
