"""Python client for the Venus event-ingestion gateway.

``VenusClient`` (asyncio) and ``SyncVenusClient`` upload batches and answer one ``EventOutcome`` per
event; ``VenusClient.emit`` batches single events in the background (``BufferConfig``, ``BufferCounters``);
``RetryPolicy`` bounds the retries; ``VenusRequestError`` is raised for a request refused as a whole.
"""

from venus_client._pb.venus.v1.ingest_pb2 import BatchMeta, Event, Platform
from venus_client.buffer import BufferClosedError, BufferConfig, BufferCounters, BufferFullError
from venus_client.client import VenusClient
from venus_client.errors import FieldViolation, VenusError, VenusRequestError
from venus_client.model import EventData, EventOutcome, Meta, OutcomeStatus, UploadResult
from venus_client.retry import RetryPolicy
from venus_client.sync import SyncVenusClient

__all__ = [
    "BatchMeta", "BufferClosedError", "BufferConfig", "BufferCounters", "BufferFullError", "Event", "EventData",
    "EventOutcome", "FieldViolation", "Meta", "OutcomeStatus", "Platform",
    "RetryPolicy", "SyncVenusClient", "UploadResult", "VenusClient", "VenusError", "VenusRequestError",
]
