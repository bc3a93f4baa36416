"""What every fault scenario shares: its context, its result, and load around a fault."""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from venus_grpc.tools.ledger import Ledger, LedgerVerdict, Load, drive, judge, published_ids

TOPIC_TEMPLATE = "to_analyzer__0.{category}"


@dataclass(frozen=True)
class Context:
    """Where a scenario writes its process logs, and whether it runs short (CI) or long."""

    log_dir: Path
    short: bool = True

    def pick(self, short: float, long: float) -> float:
        """``short`` in short mode, else ``long`` (durations, counts)."""
        return short if self.short else long


@dataclass
class Result:
    """One scenario judged: the ledger's verdict plus the scenario's own invariants."""

    name: str
    verdict: LedgerVerdict
    recovery_s: float | None
    peak_rss_bytes: int
    problems: list[str] = field(default_factory=list)  # the scenario's own invariants that failed
    notes: dict[str, object] = field(default_factory=dict)  # figures worth printing

    @property
    def passed(self) -> bool:
        """The ledger is sound and every invariant of the scenario held."""
        return self.verdict.sound and not self.problems


def new_category(name: str) -> str:
    """A category (so a topic) of this run only."""
    return f"FAULT_{name.upper()}_{uuid.uuid4().hex[:6].upper()}"


async def under_load(load: Load, fault: Callable[[], Awaitable[float | None]], *, warmup_s: float,
                     after_s: float) -> tuple[Ledger, float | None]:
    """Drive ``load``, run ``fault`` after ``warmup_s`` (it returns when the fault ended), load on for ``after_s``."""
    ledger, stop = Ledger(), asyncio.Event()
    driver = asyncio.create_task(drive(load, ledger, stop))
    try:
        await _running(driver, warmup_s)
        fault_end = await fault()
        await _running(driver, after_s)
    finally:
        stop.set()
        await asyncio.wait_for(driver, timeout=load.deadline_s + 15)
    return ledger, fault_end


async def _running(driver: asyncio.Task[None], seconds: float) -> None:
    # Load for a while; a driver that fails meanwhile fails the scenario at once.
    done, _ = await asyncio.wait({driver}, timeout=seconds)
    if done:
        driver.result()
        raise RuntimeError("the load driver stopped before it was told to")


async def read_back(bootstrap: str, category: str, ledger: Ledger) -> LedgerVerdict:
    """Read the category's topic to its end and judge the ledger against it."""
    # Reading runs at some tens of thousands of events/s here: overload runs publish over a million.
    read_timeout_s = 15 + len(ledger.outcomes) / 25_000
    ids = await published_ids(bootstrap, TOPIC_TEMPLATE.format(category=category), within_s=40,
                              read_timeout_s=read_timeout_s)
    return judge(ledger, ids)


async def poll_until(check: Callable[[], bool | Awaitable[bool]], *, within_s: float,
                     every_s: float = 0.1) -> float | None:
    """Seconds until ``check()`` is true (awaited if need be), or None if it was not within ``within_s``."""
    began = time.monotonic()
    while time.monotonic() - began < within_s:
        answer = check()
        if await answer if inspect.isawaitable(answer) else answer:
            return time.monotonic() - began
        await asyncio.sleep(every_s)  # polling an outside process: there is nothing to await instead
    return None


def statuses(ledger: Ledger, since: float) -> set[str]:
    """gRPC statuses of the RPCs sent at or after ``since``."""
    return {r.status for r in ledger.rpcs if r.started >= since}
