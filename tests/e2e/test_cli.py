"""``venus send`` and ``venus tail`` against a live Venus and broker, as a user runs them."""

from __future__ import annotations

import sys

import orjson

from tests.process_helpers import run_command
from venus_grpc import Venus
from venus_grpc.tools.devbroker import EmbeddedBroker


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
