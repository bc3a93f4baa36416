"""When to send again, and how long to wait first.

Retrying is only safe because an event keeps its id across attempts, so the client resends exactly
the events that may still succeed. Backoff is exponential with *full* jitter (a uniform draw between 0
and the capped exponential), which spreads many clients recovering from one outage; the server's
``RetryInfo`` is a floor, because the server knows when it expects to be ready again.

``DEADLINE_EXCEEDED`` is retried by default: Venus bounds its publishing by the call's deadline and
answers per-event results before it, so a deadline miss means the network or the server stalled and the
batch most likely was not acknowledged. Losing events is worse than the rare duplicate, which carries the
same event id and so can be dropped downstream. Remove it from ``retryable_codes`` for at-most-once.
``RESOURCE_EXHAUSTED`` is retried as the contract says (overload, with RetryInfo); a request over the
message size limit fails the same way on every attempt, bounded by the policy.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import grpc

_RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED,
                              grpc.StatusCode.DEADLINE_EXCEEDED})


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How many calls one upload may make, how long it waits between them and in all."""

    max_attempts: int = 5
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 5.0
    multiplier: float = 2.0
    total_budget_s: float = 30.0
    retryable_codes: frozenset[grpc.StatusCode] = field(default=_RETRYABLE_CODES)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if not 0 <= self.initial_backoff_s <= self.max_backoff_s:
            raise ValueError(f"need 0 <= initial_backoff_s <= max_backoff_s, got {self.initial_backoff_s}, "
                             f"{self.max_backoff_s}")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be at least 1, got {self.multiplier}")
        if self.total_budget_s <= 0:
            raise ValueError(f"total_budget_s must be positive, got {self.total_budget_s}")

    def backoff_s(self, retry: int, *, floor_s: float | None = None, rng: random.Random | None = None) -> float:
        """The wait before retry number ``retry`` (1 for the first retry), never below ``floor_s``."""
        cap = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (retry - 1))
        jittered = (rng or random).uniform(0.0, cap)
        return max(jittered, floor_s or 0.0)


NO_RETRY = RetryPolicy(max_attempts=1)
