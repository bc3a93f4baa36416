"""``venus send`` and ``venus tail`` against a live Venus and broker, as a user runs them."""

from __future__ import annotations

import asyncio
import sys

import orjson

from venus_grpc import Venus
from venus_grpc.tools.devbroker import EmbeddedBroker


async def _venus_command(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "venus_grpc", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return process.returncode or 0, out.decode()


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
