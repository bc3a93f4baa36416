"""Reading what Venus published, all of it and nothing else (the fault ledger's reader, for tests)."""

from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords

from venus_grpc.tools.ledger.reader import Message, TopicReader, published_ids

__all__ = ["Message", "TopicReader", "event_ids", "record_batch_codecs"]

# The codec bits of a record batch's attributes (Kafka's protocol: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
_CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
_FETCH_BYTES = 8 * 1024 * 1024


async def event_ids(bootstrap: str, category: str, *, within_s: float = 30, read_timeout_s: float = 6) -> list[str]:
    """Every event id published to ``category``'s topic, read again while a just-restarted Tansu fails."""
    return await published_ids(bootstrap, f"to_analyzer__0.{category}", within_s=within_s,
                               read_timeout_s=read_timeout_s)


async def record_batch_codecs(bootstrap: str, topic: str) -> list[tuple[str, int]]:
    """The codec and record count of every record batch stored in ``topic``, as the broker sends them.

    A raw Fetch, not a consumer: a consumer decompresses silently, so it cannot tell what was on the wire.
    """
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        client.add_topic(topic)
        await client.force_metadata_update()
        batches: list[tuple[str, int]] = []
        for partition in sorted(client.cluster.partitions_for_topic(topic) or ()):
            leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
            offset = 0
            while True:
                request = FetchRequest(100, 1, _FETCH_BYTES, 0, [(topic, [(partition, offset, _FETCH_BYTES)])])
                [(_, [answer])] = (await client.send(leader, request)).topics
                records, before = MemoryRecords(answer[-1]), len(batches)
                while (batch := records.next_batch()) is not None:
                    batches.append((_CODECS[batch.compression_type], batch.next_offset - batch.base_offset))
                    offset = batch.next_offset
                if len(batches) == before:
                    break
        return batches
    finally:
        await client.close()
