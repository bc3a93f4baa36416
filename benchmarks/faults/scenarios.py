"""The scenarios by key, in table order."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from benchmarks.faults.broker_faults import broker_absent, broker_frozen, broker_restarted
from benchmarks.faults.common import Context, Result
from benchmarks.faults.hostile_input import hostile_input
from benchmarks.faults.link_faults import lossy_link
from benchmarks.faults.overload import overload
from benchmarks.faults.steady import steady_load
from benchmarks.faults.transport_abuse import abusive_transport
from benchmarks.faults.venus_faults import sigkill_worker, sigterm_at_load

SCENARIOS: dict[str, Callable[[Context], Awaitable[Result]]] = {
    "steady": steady_load,
    "sigterm-1": functools.partial(sigterm_at_load, workers=1),
    "sigterm-2": functools.partial(sigterm_at_load, workers=2),
    "sigkill-worker": sigkill_worker,
    "broker-frozen": broker_frozen,
    "broker-restart": broker_restarted,
    "broker-absent": broker_absent,
    "lossy-link": lossy_link,
    "overload": overload,
    "abusive-transport": abusive_transport,
    "hostile-input": hostile_input,
}


async def run_scenario(key: str, ctx: Context) -> Result:
    """Run the scenario called ``key``."""
    return await SCENARIOS[key](ctx)
