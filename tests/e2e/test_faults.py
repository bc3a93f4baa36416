"""The fault ledger's scenarios in short mode: real Tansu, real ``venus serve``, a fault, then Kafka read back.

Each test runs one scenario of ``python -m benchmarks.faults --short`` and asserts what a client
would notice: nothing acknowledged is missing from Kafka, nothing rejected is in it, every RPC was
answered by its deadline, and the scenario's own promise (listed in the failure message) held.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.faults.common import Context
from benchmarks.faults.scenarios import run_scenario

pytestmark = pytest.mark.timeout(150)


async def _assert_scenario(key: str, tmp_path: Path) -> None:
    result = await run_scenario(key, Context(tmp_path, short=True))
    verdict = result.verdict
    assert verdict.acknowledged > 0, f"{result.name}: nothing was acknowledged"
    assert verdict.lost == 0, f"{result.name}: {verdict.lost} acknowledged events are not in Kafka"
    assert verdict.rejected_present == 0, f"{result.name}: {verdict.rejected_present} rejected events are in Kafka"
    assert verdict.late_rpcs == 0, f"{result.name}: {verdict.late_rpcs} RPCs not answered by their deadline"
    # The scenario's own figures go with a failure: a bound missed once in many runs is found from them.
    assert result.problems == [], f"{result.name}: " + "\n".join(result.problems) + f"\nfigures: {result.notes}"


async def test_steady_load_does_not_grow_memory_fds_or_tasks(tmp_path: Path) -> None:
    """Under steady load Venus's RSS, open file descriptors and asyncio tasks stay flat."""
    await _assert_scenario("steady", tmp_path)


@pytest.mark.parametrize("key", ["sigterm-1", "sigterm-2"])
async def test_sigterm_at_load_drains_and_loses_nothing(key: str, tmp_path: Path) -> None:
    """SIGTERM under load: NOT_SERVING first, refusals are UNAVAILABLE and unpublished, exit 0 within grace."""
    await _assert_scenario(key, tmp_path)


async def test_sigkill_of_a_worker_is_replaced_and_loses_nothing(tmp_path: Path) -> None:
    """A worker killed under load is replaced by the supervisor; every event acknowledged is in Kafka."""
    await _assert_scenario("sigkill-worker", tmp_path)


async def test_broker_restarted_on_persistent_storage_loses_nothing(tmp_path: Path) -> None:
    """A broker killed and restarted on its port: Venus recovers without a restart and nothing acknowledged is lost."""
    await _assert_scenario("broker-restart", tmp_path)


async def test_broker_absent_at_startup_refuses_fast_then_serves(tmp_path: Path) -> None:
    """No broker at startup: NOT_SERVING with fast UNAVAILABLE, then SERVING once it starts, without a crash loop."""
    await _assert_scenario("broker-absent", tmp_path)


async def test_frozen_broker_turns_health_not_serving_and_every_rpc_is_answered_in_time(tmp_path: Path) -> None:
    """A broker frozen by SIGSTOP: RPCs are still answered by their deadline, health goes NOT_SERVING and back."""
    await _assert_scenario("broker-frozen", tmp_path)


async def test_slow_stalled_and_reset_broker_link_keeps_in_flight_capped_and_loses_nothing(tmp_path: Path) -> None:
    """Through a proxy adding latency, a stall and resets: in-flight stays under its cap, nothing acked is lost."""
    await _assert_scenario("lossy-link", tmp_path)


async def test_overload_at_three_times_capacity_refuses_with_retry_info_and_keeps_goodput(tmp_path: Path) -> None:
    """At 3x measured capacity: refusals carry RetryInfo; goodput and accepted p99, as ratios to capacity, hold."""
    await _assert_scenario("overload", tmp_path)


async def test_abusive_transport_leaves_a_well_behaved_client_fully_served(tmp_path: Path) -> None:
    """Idle sockets, a ping flood, too many streams and half-sent messages: the steady client sees only OK."""
    await _assert_scenario("abusive-transport", tmp_path)


async def test_hostile_input_is_refused_cheaply_and_a_well_behaved_client_is_fully_served(tmp_path: Path) -> None:
    """Amplifying labels and streams that never read: refused or held back, memory near baseline, the client OK."""
    await _assert_scenario("hostile-input", tmp_path)
