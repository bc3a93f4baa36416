"""The verifier: what the ledger says against what Kafka holds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from venus_grpc.tools.ledger.book import Kind, Ledger
from venus_grpc.tools.stats import percentile


@dataclass(frozen=True)
class LedgerVerdict:
    """Each event's outcome in the ledger against the ids in Kafka.

    The first three counts after ``acknowledged`` must be 0 for a sound gateway.
    """

    sent: int
    acknowledged: int
    lost: int  # acknowledged, yet not in Kafka
    rejected_present: int  # rejected per event, yet in Kafka
    late_rpcs: int  # answered after their deadline, or not by it
    duplicates: int  # ids in Kafka more than once
    failed_present: int  # the RPC failed with a status Venus chose, yet its events are in Kafka
    unknown_present: int  # no clear answer, and in Kafka
    rpcs: int
    p50_s: float
    p99_s: float
    max_s: float

    @property
    def sound(self) -> bool:
        """Nothing acknowledged lost, nothing rejected present, every RPC answered by its deadline."""
        return self.lost == 0 and self.rejected_present == 0 and self.late_rpcs == 0


def judge(ledger: Ledger, published: Iterable[str]) -> LedgerVerdict:
    """Compare the ledger with the event ids read from Kafka (every copy of each)."""
    copies = Counter(published)
    present = set(copies)
    latencies = sorted(r.latency_s for r in ledger.rpcs)
    return LedgerVerdict(
        sent=len(ledger.outcomes),
        acknowledged=len(ledger.ids(Kind.OK)),
        lost=len(ledger.ids(Kind.OK) - present),
        rejected_present=len(ledger.ids(Kind.REJECTED) & present),
        late_rpcs=sum(r.late for r in ledger.rpcs),
        duplicates=sum(1 for n in copies.values() if n > 1),
        failed_present=len(ledger.ids(Kind.FAILED) & present),
        unknown_present=len(ledger.ids(Kind.UNKNOWN) & present),
        rpcs=len(ledger.rpcs),
        p50_s=percentile(latencies, 50),
        p99_s=percentile(latencies, 99),
        max_s=latencies[-1] if latencies else 0.0,
    )
