"""Health follows Kafka: NOT_SERVING until the producer connects, and again while the broker stops answering.

Checked every ``_CHECK_EVERY_S``; the publisher decides what "answering" means (acknowledgements
flowing, or a metadata answer when idle), so one slow acknowledgement does not flap health.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from venus_grpc.kafka import Publisher
from venus_grpc.obs import metrics

_CHECK_EVERY_S = 1.0
_CHECK_TIMEOUT_S = 2.0
log = structlog.get_logger(__name__)

SetServing = Callable[[bool], Awaitable[None]]


async def follow_kafka(publisher: Publisher, set_serving: SetServing, connected: asyncio.Event) -> None:
    """Connect, report SERVING and set ``connected``; then follow the broker until cancelled."""
    await publisher.connect()
    await _report(set_serving, True)
    connected.set()
    log.info("serving")
    serving = True
    while True:
        await asyncio.sleep(_CHECK_EVERY_S)  # a periodic check: there is no event to wait for
        metrics.ASYNCIO_TASKS.set(len(asyncio.all_tasks()))  # sampled here, on the loop, where it is safe
        healthy = await publisher.check(timeout_s=_CHECK_TIMEOUT_S)
        if healthy != serving:
            serving = healthy
            await _report(set_serving, healthy)
            if healthy:
                log.warning("kafka answers again; serving")
            else:
                log.error("kafka is not answering; not serving until it does")


async def _report(set_serving: SetServing, serving: bool) -> None:
    metrics.KAFKA_READY.set(int(serving))
    await set_serving(serving)
