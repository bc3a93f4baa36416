"""Amplification: no request may cost the server memory far beyond what it is (the oracle of issue #16).

A batch's meta is copied into every event's message, so what a batch costs is its size plus one copy of
the meta and of the server's envelope per event. The oracle: the peak resident memory one request adds is
at most a small multiple of that, and a request whose labels would multiply it is refused at the cost of
reading it. Run against ``venus serve`` with the default limits, peak memory read from /proc (VmHWM).
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from tests.fuzz.checks import upload_raw
from tests.fuzz.live import LiveVenus
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc.tools.devbroker import EmbeddedBroker
from venus_grpc.tools.process import running_venus

ENVELOPE_BYTES = 448  # what the server adds around each event and meta: backend_id, times, geo, JSON keys
FACTOR = 4  # Python objects, the JSON value and the producer's record batch: each a copy of the cost at most
SLACK_BYTES = 8 << 20  # allocator arenas and gRPC buffers that one request may grow


@pytest.fixture(scope="module")
def defaults_venus(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveVenus]:
    """``venus serve`` with every limit at its default, warmed up by the largest batch it accepts."""
    with running_venus(broker.bootstrap, log_dir=tmp_path_factory.mktemp("venus-amplification")) as server:
        venus = LiveVenus(server, broker.bootstrap)
        try:
            for _ in range(3):
                assert upload_raw(venus, _largest_accepted(venus.ledger.category).SerializeToString())[0] is OK
            yield venus
        finally:
            venus.close()


OK = grpc.StatusCode.OK


def _batch(category: str, labels: dict[str, str], events: int = 1000) -> pb.UploadEventsRequest:
    meta = pb.BatchMeta(app_id="com.example.amp", category=category, labels=labels)
    return pb.UploadEventsRequest(meta=meta, events=[pb.Event(id=f"e{i}", payload=b"{}") for i in range(events)])


def _largest_accepted(category: str) -> pb.UploadEventsRequest:
    """Labels at the default limits (4 of 1,000 characters: 4,008 bytes of 4,096) on 1,000 tiny events."""
    return _batch(category, {f"k{i}": "v" * 1000 for i in range(4)})


def _cost(request: pb.UploadEventsRequest) -> int:
    return request.ByteSize() + len(request.events) * (request.meta.ByteSize() + ENVELOPE_BYTES)


def _peak_growth(venus: LiveVenus, request: pb.UploadEventsRequest) -> tuple[grpc.StatusCode, int]:
    before = venus.rss_bytes()
    venus.reset_peak_rss()
    status, _, details = upload_raw(venus, request.SerializeToString())
    print(f"{len(request.events)} events, {request.ByteSize()} bytes, cost {_cost(request)}: {status.name}, "
          f"peak RSS +{(venus.peak_rss_bytes() - before) / 2**20:.1f} MiB ({details[:80]})")
    return status, venus.peak_rss_bytes() - before


def test_labels_that_would_multiply_a_request_are_refused_at_the_cost_of_reading_it(
    defaults_venus: LiveVenus
) -> None:
    """900 KiB of labels on 1,000 tiny events (once 883 MiB of memory and 900 MB of Kafka) is INVALID_ARGUMENT."""
    request = _batch(defaults_venus.ledger.category, {"blob": "x" * (900 << 10)})
    status, growth = _peak_growth(defaults_venus, request)
    assert status is grpc.StatusCode.INVALID_ARGUMENT
    assert growth <= FACTOR * request.ByteSize() + SLACK_BYTES


def test_the_largest_accepted_labels_cost_a_small_multiple_of_the_batch(defaults_venus: LiveVenus) -> None:
    """Labels at their limits on 1,000 events are published, adding at most a few copies of the batch's cost."""
    request = _largest_accepted(defaults_venus.ledger.category)
    status, growth = _peak_growth(defaults_venus, request)
    assert status is OK
    assert growth <= FACTOR * _cost(request) + SLACK_BYTES
