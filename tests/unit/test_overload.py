"""The adaptive limit of calls in flight: refuses beyond it, shrinks when slow, grows back, and spares a slow broker."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import grpc
import pytest

from venus_grpc.ingest import overload
from venus_grpc.ingest.errors import Reason, RequestError
from venus_grpc.ingest.overload import ConcurrencyLimit


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """time.monotonic as the adaptive limit sees it."""
    fake = Clock()
    monkeypatch.setattr(overload, "time", SimpleNamespace(monotonic=fake))
    return fake


def _serve(limit: ConcurrencyLimit, clock: Clock, *, calls: int, at_once: int, service_s: float) -> None:
    """``calls`` calls, ``at_once`` at a time, each taking ``service_s``."""
    for _ in range(calls // at_once):
        with contextlib.ExitStack() as held:
            for _ in range(at_once):
                held.enter_context(limit.hold(None))
            clock.now += service_s
        for _ in range(at_once):
            limit.observe(service_s)


def test_a_call_beyond_the_limit_is_refused_with_a_retry_delay(clock: Clock) -> None:
    """With the limit in flight, the next call is RESOURCE_EXHAUSTED with RetryInfo; a freed place admits again."""
    limit = ConcurrencyLimit(max_limit=2, min_limit=1, target_s=0)
    with limit.hold(None):
        with limit.hold(None), pytest.raises(RequestError) as refused:
            limit.check(None)
        assert refused.value.status is grpc.StatusCode.RESOURCE_EXHAUSTED and refused.value.retry_after_s
        assert refused.value.reason is Reason.OVERLOADED
        with limit.hold(None):
            pass


def test_a_check_takes_no_place(clock: Clock) -> None:
    """Calls checked before their request is read hold nothing: a call that never sends one cannot crowd others."""
    limit = ConcurrencyLimit(max_limit=1, min_limit=1, target_s=0)
    for _ in range(5):
        limit.check(None)
    with limit.hold(None):
        assert limit.in_flight == 1
    assert limit.in_flight == 0


def test_the_limit_shrinks_while_it_binds_and_calls_are_slower_than_the_target(clock: Clock) -> None:
    """Service times above the target, with as many calls in flight as allowed, bring the limit down to its floor."""
    limit = ConcurrencyLimit(max_limit=64, min_limit=2, target_s=0.05)
    _serve(limit, clock, calls=16, at_once=8, service_s=0.001)  # a fast baseline
    for _ in range(100):
        _serve(limit, clock, calls=int(limit.limit), at_once=int(limit.limit), service_s=0.2)
    assert limit.limit == 2


def test_a_limit_that_does_not_bind_does_not_shrink(clock: Clock) -> None:
    """Slow calls far fewer than the limit leave it where it is: refusing them would not make them faster."""
    limit = ConcurrencyLimit(max_limit=64, min_limit=2, target_s=0.05)
    _serve(limit, clock, calls=16, at_once=8, service_s=0.001)
    _serve(limit, clock, calls=400, at_once=8, service_s=0.2)
    assert limit.limit == 64


def test_the_limit_shrinks_while_the_work_in_flight_binds_instead(clock: Clock) -> None:
    """Few large batches fill the events in flight before the count of calls: refusals there make the limit adapt."""
    limit = ConcurrencyLimit(max_limit=64, min_limit=2, target_s=0.05)
    _serve(limit, clock, calls=16, at_once=8, service_s=0.001)
    for _ in range(10):
        limit.crowded()  # admission refused a batch for the events or bytes in flight
        _serve(limit, clock, calls=8, at_once=2, service_s=0.2)
    assert limit.limit == 2
    limit.limit = 4.0
    for _ in range(10):
        limit.crowded()
        _serve(limit, clock, calls=8, at_once=2, service_s=0.01)
    assert limit.limit > 4, "it grows back once calls are fast, while the work in flight still binds"


def test_the_limit_grows_back_while_it_binds_and_calls_are_fast(clock: Clock) -> None:
    """Once calls are fast again, a limit that holds calls back rises by one per window."""
    limit = ConcurrencyLimit(max_limit=64, min_limit=2, target_s=0.05)
    limit.limit = 4.0
    _serve(limit, clock, calls=400, at_once=4, service_s=0.02)
    assert limit.limit > 4


def test_a_limit_that_does_not_bind_does_not_grow(clock: Clock) -> None:
    """Fast calls far fewer than the limit leave it where it is: it grows only while it holds calls back."""
    limit = ConcurrencyLimit(max_limit=64, min_limit=2, target_s=0.05)
    limit.limit = 10.0
    _serve(limit, clock, calls=400, at_once=2, service_s=0.02)
    assert limit.limit == 10


def test_a_slow_broker_does_not_shrink_the_limit(clock: Clock) -> None:
    """When every call is slow however few run at once, the target follows the fastest recent call."""
    limit = ConcurrencyLimit(max_limit=64, min_limit=2, target_s=0.05)
    limit.limit = 8.0  # binding: every window has as many calls in flight as the limit allows
    _serve(limit, clock, calls=200, at_once=8, service_s=0.5)
    assert limit.limit >= 8


def test_a_fixed_limit_never_moves(clock: Clock) -> None:
    """With no latency target the limit stays at its maximum however slow calls are."""
    limit = ConcurrencyLimit(max_limit=8, min_limit=2, target_s=0)
    _serve(limit, clock, calls=16, at_once=8, service_s=0.001)
    _serve(limit, clock, calls=400, at_once=8, service_s=0.5)
    assert limit.limit == 8


def test_a_deadline_nearer_than_calls_take_is_refused(clock: Clock) -> None:
    """A call whose deadline leaves less time than recent calls took is refused at once, with a retry delay."""
    limit = ConcurrencyLimit(max_limit=64, min_limit=2, target_s=0.05)
    _serve(limit, clock, calls=24, at_once=8, service_s=0.04)
    with pytest.raises(RequestError) as refused:
        limit.check(0.01)
    assert refused.value.reason is Reason.DEADLINE_UNREACHABLE and refused.value.retry_after_s
    limit.check(1.0)
