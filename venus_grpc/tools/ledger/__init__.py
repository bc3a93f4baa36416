"""The fault ledger: send events with unique ids, record each one's outcome, read Kafka back, judge.

Shared by the fault scenarios (``python -m benchmarks.faults``) and ``venus canary``; the reader also
by the tests and the throughput benchmarks' read-back.
"""

from venus_grpc.tools.ledger.book import Kind, Ledger, Outcome
from venus_grpc.tools.ledger.driver import Load, drive, send_batch
from venus_grpc.tools.ledger.reader import TopicReader, published_ids
from venus_grpc.tools.ledger.verdict import LedgerVerdict, judge

__all__ = ["Kind", "Ledger", "LedgerVerdict", "Load", "Outcome", "TopicReader", "drive", "judge", "published_ids",
           "send_batch"]
