"""Token-bucket arithmetic of per-app quotas, on a clock the test moves."""

from __future__ import annotations

import grpc
import pytest

from venus_grpc.ingest.errors import RequestError
from venus_grpc.ingest.quotas import Quotas
from venus_grpc.settings import SettingsError, load_settings


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _quotas(clock: Clock, **values: object) -> Quotas:
    return Quotas(load_settings(environ={}, **values), clock=clock)


def test_no_rate_means_no_quota() -> None:
    """With both rates at 0 quotas are off."""
    assert not _quotas(Clock()).enabled


def test_the_burst_is_admitted_then_the_app_waits_for_its_rate() -> None:
    """A full bucket admits its burst; the next batch waits as long as the debt takes to pay off."""
    clock = Clock()
    quotas = _quotas(clock, quota_events_per_s=10, quota_burst_s=2)
    quotas.admit("app", "C", events=20, nbytes=0)
    with pytest.raises(RequestError) as refused:
        quotas.admit("app", "C", events=1, nbytes=0)
    assert refused.value.status is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refused.value.retry_after_s == pytest.approx(0.1)
    clock.now += 0.1
    quotas.admit("app", "C", events=1, nbytes=0)


def test_a_batch_larger_than_the_burst_passes_and_leaves_a_debt() -> None:
    """A big batch is never refused forever: it goes through and the app then waits for the debt."""
    clock = Clock()
    quotas = _quotas(clock, quota_events_per_s=10, quota_burst_s=1)
    quotas.admit("app", "C", events=50, nbytes=0)
    with pytest.raises(RequestError) as refused:
        quotas.admit("app", "C", events=1, nbytes=0)
    assert refused.value.retry_after_s == pytest.approx(4.1)


def test_apps_have_separate_buckets_and_categories_share_one_unless_asked() -> None:
    """One app's debt does not touch another's; with quota_per_category each category has its own."""
    clock = Clock()
    per_app = _quotas(clock, quota_events_per_s=1, quota_burst_s=1)
    per_app.admit("a", "X", events=5, nbytes=0)
    per_app.admit("b", "X", events=1, nbytes=0)
    with pytest.raises(RequestError):
        per_app.admit("a", "Y", events=1, nbytes=0)
    per_category = _quotas(clock, quota_events_per_s=1, quota_burst_s=1, quota_per_category=True)
    per_category.admit("a", "X", events=5, nbytes=0)
    per_category.admit("a", "Y", events=1, nbytes=0)


def test_bytes_are_limited_too_and_named_in_the_violation() -> None:
    """A bytes/s quota refuses on bytes alone and says so."""
    clock = Clock()
    quotas = _quotas(clock, quota_bytes_per_s=1000, quota_burst_s=1)
    quotas.admit("app", "C", events=1, nbytes=1500)
    with pytest.raises(RequestError) as refused:
        quotas.admit("app", "C", events=1, nbytes=10)
    assert refused.value.quota_violations == (("app_id:app", "over the quota of 1000 bytes/s per Venus instance"),)


def test_an_app_override_replaces_the_default_rates_for_that_app_only() -> None:
    """quota_app_overrides gives one app its own rate (0: unlimited) while others keep the default."""
    clock = Clock()
    quotas = _quotas(clock, quota_events_per_s=1, quota_app_overrides=frozenset({"big=1000", "free=0"}))
    quotas.admit("big", "C", events=900, nbytes=0)
    quotas.admit("big", "C", events=1, nbytes=0)
    for _ in range(3):
        quotas.admit("free", "C", events=10_000, nbytes=0)
    quotas.admit("small", "C", events=1, nbytes=0)
    with pytest.raises(RequestError) as refused:
        quotas.admit("small", "C", events=1, nbytes=0)
    assert "1 events/s" in refused.value.message


def test_a_malformed_override_names_the_setting() -> None:
    """An override that is not app=rate fails at startup."""
    with pytest.raises(SettingsError, match="VENUS_QUOTA_APP_OVERRIDES"):
        load_settings(environ={"VENUS_QUOTA_APP_OVERRIDES": "big=lots"})
