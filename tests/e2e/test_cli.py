"""``venus send`` and ``venus tail`` against a live Venus and broker, as a user runs them."""

from __future__ import annotations

import re
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


async def test_tail_at_a_partition_and_offset_prints_the_message_send_reported(
    venus: Venus, broker: EmbeddedBroker, category: str
) -> None:
    """`venus tail --partition P --offset O` prints, with headers, exactly the event `venus send` said went there."""
    code, out = await _venus_command("send", "--target", f"127.0.0.1:{venus.port}", "--category", category,
                                     "--events", "3", "--batches", "1")
    assert code == 0, out
    places = re.findall(r"backend_id=(\S+) at \S+ partition (\d+) offset (\d+)", out)
    assert len(places) == 3, out
    backend_id, partition, offset = places[-1]  # the third event: past offset 0 of its partition

    code, out = await _venus_command("tail", category, "--bootstrap", broker.bootstrap,
                                     "--partition", partition, "--offset", offset)
    assert code == 0, out
    [line] = [orjson.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert (line["partition"], line["offset"]) == (int(partition), int(offset)) and int(offset) >= 2
    assert line["value"]["backend_id"] == backend_id
    assert line["headers"]["traceparent"].startswith("00-")


async def test_tail_at_an_offset_with_no_message_says_so(venus: Venus, broker: EmbeddedBroker, category: str) -> None:
    """Asking for an offset past the end of a partition exits 1 naming it, rather than printing another message."""
    code, out = await _venus_command("send", "--target", f"127.0.0.1:{venus.port}", "--category", category,
                                     "--events", "1", "--batches", "1")
    assert code == 0, out
    [partition] = re.findall(r" partition (\d+) offset", out)

    code, out = await _venus_command("tail", category, "--bootstrap", broker.bootstrap, "--partition", partition,
                                     "--offset", "1000", "--timeout-s", "2")
    assert code == 1
    assert f"no message at offset 1000 of to_analyzer__0.{category} partition {partition}" in out
