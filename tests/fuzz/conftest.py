"""One live Venus per fuzz module; how many inputs each property gets is in ``tests.fuzz.profiles``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz.checks import TALLY, warm_up
from tests.fuzz.live import LIMIT_FLAGS, LiveVenus, check_aftermath
from venus_grpc.tools.devbroker import EmbeddedBroker
from venus_grpc.tools.process import running_venus


@pytest.fixture(scope="module")
def live(broker: EmbeddedBroker, request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveVenus]:
    """A ``venus serve`` process for the whole module.

    Afterwards it must be alive, SERVING, consistent with Kafka and back near its warmed-up memory.
    """
    with running_venus(broker.bootstrap, log_dir=tmp_path_factory.mktemp("venus-fuzz"), extra=LIMIT_FLAGS) as server:
        venus = LiveVenus(server, broker.bootstrap)
        try:
            baseline_rss = warm_up(venus)
            yield venus
            TALLY.rss[request.module.__name__] = (baseline_rss, venus.rss_bytes())
            check_aftermath(venus, baseline_rss)
        finally:
            venus.close()
