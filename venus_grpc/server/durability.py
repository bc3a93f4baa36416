"""What "OK means in Kafka" rests on, asked of the cluster once, after the producer connects.

Venus publishes with ``acks="all"``: the partition leader acknowledges once every replica in its
in-sync set has the record. How many copies that is depends on the topic's replication factor and
``min.insync.replicas``, which are the cluster's settings, not Venus's. So, in the background, Venus
asks (Metadata for the replicas of its existing topics, DescribeConfigs for the cluster defaults
and those topics' settings) and logs a WARNING naming the setting when an acknowledged event could
rest on one copy; what the cluster does not report is noted once at INFO. It never blocks or fails
startup. Operators' notes: docs/kafka.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from venus_grpc.kafka_clients import security_options
from venus_grpc.settings import Settings
from venus_grpc.topics import category_topics

REPLICATION = "default.replication.factor"
MIN_INSYNC = "min.insync.replicas"
NOT_CHECKED = "kafka durability not fully checked: the cluster did not report what acks=all depends on"
_TIMEOUT_S = 15.0
_TOPICS_SHOWN = 10  # a warning names this many topics and counts the rest
log = structlog.get_logger(__name__)

Finding = tuple[str, str, dict[str, Any]]  # (log level, message, fields)


@dataclass(frozen=True)
class Durability:
    """What the cluster reported: its defaults (absent where it did not say) and Venus's existing topics."""

    defaults: Mapping[str, int] = field(default_factory=dict)  # REPLICATION and MIN_INSYNC
    replicas: Mapping[str, int] = field(default_factory=dict)  # topic -> replication factor (its smallest partition)
    min_insync: Mapping[str, int] = field(default_factory=dict)  # topic -> min.insync.replicas, where reported


async def check_durability(settings: Settings, connected: asyncio.Event) -> None:
    """Once ``connected`` is set, ask the cluster and log what acks=all is worth there; never raises."""
    await connected.wait()
    try:
        found = await asyncio.wait_for(_describe(settings), timeout=_TIMEOUT_S)
    except (KafkaError, TimeoutError, ValueError) as exc:
        log.info(NOT_CHECKED, reason=repr(exc), fix="check it by hand: see docs/kafka.md")
        return
    for level, message, fields in findings(found):
        getattr(log, level)(message, **fields)


def findings(found: Durability) -> list[Finding]:
    """The log lines for what the cluster reported: a WARNING per risk, an INFO for what it did not say."""
    lines: list[Finding] = []
    default_rf, default_min = found.defaults.get(REPLICATION), found.defaults.get(MIN_INSYNC)
    if default_rf == 1:
        lines.append(("warning", f"kafka durability: {REPLICATION}=1, so topics created for new categories keep one "
                      "copy and an acknowledged event is lost with that broker's disk; set it to 3",
                      {"setting": REPLICATION, "value": 1, "see": "docs/kafka.md"}))
    elif default_rf is not None and default_rf > 1 and default_min == 1:
        lines.append(("warning", _weak_min_insync_message("the cluster default"),
                      {"setting": MIN_INSYNC, "value": 1, REPLICATION: default_rf, "see": "docs/kafka.md"}))
    single = sorted(topic for topic, rf in found.replicas.items() if rf == 1)
    if single:
        lines.append(("warning", "kafka durability: topics with replication factor 1 keep one copy, so an "
                      "acknowledged event is lost with that broker's disk; give them 3 replicas",
                      {"setting": "replication factor", "value": 1, **_topics(single), "see": "docs/kafka.md"}))
    weak = sorted(topic for topic, rf in found.replicas.items()
                  if rf > 1 and found.min_insync.get(topic, default_min) == 1)
    if weak:
        lines.append(("warning", _weak_min_insync_message("these topics"),
                      {"setting": MIN_INSYNC, "value": 1, **_topics(weak), "see": "docs/kafka.md"}))
    missing = [name for name in (REPLICATION, MIN_INSYNC) if name not in found.defaults]
    if missing:
        lines.append(("info", NOT_CHECKED, {"missing": missing, "fix": "check it by hand: see docs/kafka.md"}))
    return lines


def _weak_min_insync_message(where: str) -> str:
    return (f"kafka durability: {MIN_INSYNC}=1 in {where}: acks=all then accepts the leader alone once its "
            "followers fall behind, and an acknowledged event is lost if that leader fails; set it to 2")


def _topics(names: list[str]) -> dict[str, Any]:
    return {"topics": names[:_TOPICS_SHOWN], "topic_count": len(names)}


async def _describe(settings: Settings) -> Durability:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id=settings.kafka_client_id,
                                request_timeout_ms=settings.kafka_request_timeout_ms, **security_options(settings))
    await admin.start()
    try:
        brokers = (await admin.describe_cluster())["brokers"]
        pattern = category_topics(settings.topic_template)
        replicas = {t["topic"]: min(len(p["replicas"]) for p in t["partitions"])
                    for t in await admin.describe_topics() if pattern.fullmatch(t["topic"]) and t["partitions"]}
        # All of each resource's configs: naming the wanted ones made Tansu 0.6 close the connection.
        resources = [ConfigResource(ConfigResourceType.BROKER, str(brokers[0]["node_id"]))]
        resources += [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in replicas]
        configs = _configs(await admin.describe_configs(resources))
    finally:
        await admin.close()
    topics = {topic: int(value) for topic in replicas
              if (value := configs.get((ConfigResourceType.TOPIC, topic), {}).get(MIN_INSYNC)) is not None}
    broker = configs.get((ConfigResourceType.BROKER, str(brokers[0]["node_id"])), {})
    return Durability(defaults={k: int(v) for k, v in broker.items() if k in (REPLICATION, MIN_INSYNC)},
                      replicas=replicas, min_insync=topics)


def _configs(responses: list[Any]) -> dict[tuple[int, str], dict[str, str]]:
    """{(resource type, name): {config name: value}} from DescribeConfigs answers; resources in error left out."""
    found: dict[tuple[int, str], dict[str, str]] = {}
    for response in responses:
        for error_code, _message, kind, name, entries in response.resources:
            if error_code == 0:
                found[(kind, name)] = {entry[0]: entry[1] for entry in entries if entry[1] is not None}
    return found

