"""Reading what Venus published, all of it and nothing else (the fault ledger's reader, for tests)."""

from __future__ import annotations

from venus_grpc.tools.ledger.reader import Message, TopicReader, published_ids

__all__ = ["Message", "TopicReader", "event_ids"]


async def event_ids(bootstrap: str, category: str, *, within_s: float = 30, read_timeout_s: float = 6) -> list[str]:
    """Every event id published to ``category``'s topic, read again while a just-restarted Tansu fails."""
    return await published_ids(bootstrap, f"to_analyzer__0.{category}", within_s=within_s,
                               read_timeout_s=read_timeout_s)
