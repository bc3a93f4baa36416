"""At startup Venus asks the cluster what acks=all is worth there, and says so in its logs (real Tansu)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import grpc
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import StartVenus
from venus_grpc import Venus
from venus_grpc.server.durability import NOT_CHECKED
from venus_grpc.settings import SERVICE_NAME
from venus_grpc.tools.devbroker import EmbeddedBroker

JsonLogs = Callable[[], list[dict[str, Any]]]


async def _log_line(json_logs: JsonLogs, starts_with: str, *, within_s: float = 20.0) -> dict[str, Any]:
    """The first log line whose message starts with ``starts_with``, waiting for it up to ``within_s``."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not (lines := [line for line in json_logs() if line["event"].startswith(starts_with)]):
        assert asyncio.get_running_loop().time() < deadline, f"no log line {starts_with!r} within {within_s} s"
        await asyncio.sleep(0.05)  # polling the log buffer: the line has no event to wait on
    return lines[0]


async def _health(venus: Venus) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME),
                                                                  timeout=5)
    return int(answer.status)


def _own_template() -> str:
    return f"durability_{uuid.uuid4().hex[:8]}.{{category}}"


async def test_a_cluster_that_does_not_report_its_settings_is_noted_once_at_info_and_venus_serves(
    json_logs: JsonLogs, start: StartVenus
) -> None:
    """Tansu answers DescribeConfigs with no entries: Venus serves, and says once at INFO what it could not check."""
    venus = await start(topic_template=_own_template())

    line = await _log_line(json_logs, NOT_CHECKED)
    assert line["level"] == "info"
    assert line["missing"] == ["default.replication.factor", "min.insync.replicas"]
    assert "docs/kafka.md" in line["fix"]
    assert [other["event"] for other in json_logs()].count(NOT_CHECKED) == 1
    assert await _health(venus) == health_pb2.HealthCheckResponse.SERVING


async def test_an_existing_topic_with_one_replica_is_named_in_a_warning_not_refused(
    json_logs: JsonLogs, start: StartVenus, broker: EmbeddedBroker, category: str
) -> None:
    """A topic of Venus's template that keeps one copy is named in a WARNING (others are not), and Venus serves."""
    template = _own_template()
    topic = template.format(category=category)
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()

    venus = await start(topic_template=template)
    line = await _log_line(json_logs, "kafka durability: topics with replication factor 1")
    assert line["level"] == "warning"
    assert (line["setting"], line["value"]) == ("replication factor", 1)
    assert (line["topics"], line["topic_count"]) == ([topic], 1)  # not the session's other topics, all of one copy
    assert "lost" in line["event"]
    assert await _health(venus) == health_pb2.HealthCheckResponse.SERVING  # a warning, not a refusal
