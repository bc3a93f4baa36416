"""One live Venus per fuzz module; how many inputs each property gets is in ``tests.fuzz.profiles``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz.checks import TALLY, warm_up
from tests.fuzz.live import LiveVenus, check_aftermath
from venus_grpc.tools.devbroker import EmbeddedBroker


@pytest.fixture(scope="module")
def live(broker: EmbeddedBroker, request: pytest.FixtureRequest) -> Iterator[LiveVenus]:
    """A ``venus serve`` process for the whole module.

    Afterwards it must be alive, SERVING, consistent with Kafka and back near its warmed-up memory.
    """
    venus = LiveVenus(broker.bootstrap)
    try:
        venus.wait_serving()
        baseline_rss = warm_up(venus)
        yield venus
        TALLY.rss[request.module.__name__] = (baseline_rss, venus.rss_bytes())
        check_aftermath(venus, baseline_rss)
    finally:
        venus.stop()
