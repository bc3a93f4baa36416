"""Bad metadata and odd deadlines: a request is answered, refused by gRPC's limits, or out of time."""

from __future__ import annotations

import grpc
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.checks import check_upload
from tests.fuzz.live import LiveVenus
from tests.fuzz.mutations import metadata, valid_request_bytes
from tests.fuzz.profiles import examples
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb

# Below the server's publish margin (50 ms) nothing may be sent to Kafka; the others are generous.
_TINY_TIMEOUTS_S = (1e-9, 1e-3, 0.01, 0.04)
_TIMEOUTS_S = st.sampled_from([*_TINY_TIMEOUTS_S, 5.0, 20.0, 1e4, 1e8])
# gRPC refuses metadata over 8 KiB (counting 32 bytes per entry, and -bin values base64-encoded)
# some of the time, and always over 16 KiB; its own headers (:path, te, user-agent, ...) take ~600 bytes.
_SOFT_METADATA_LIMIT = 8 * 1024 - 1024


@examples(0.15)
@given(data=st.data(), timeout_s=_TIMEOUTS_S)
def test_odd_metadata_never_breaks_a_request(live: LiveVenus, data: st.DataObject, timeout_s: float) -> None:
    """Malformed traceparent, baggage and ids are ignored; only size limits and deadlines may refuse a call."""
    headers = data.draw(metadata())
    request = pb.UploadEventsRequest.FromString(data.draw(valid_request_bytes(live.ledger.category)))
    allowed: set[grpc.StatusCode] = set()
    if timeout_s in _TINY_TIMEOUTS_S:
        # RESOURCE_EXHAUSTED: a deadline nearer than calls take now is refused at once, with RetryInfo.
        allowed |= {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}
    if _wire_size(headers) > _SOFT_METADATA_LIMIT:
        allowed.add(grpc.StatusCode.RESOURCE_EXHAUSTED)
    check_upload(live, request, kind="metadata", metadata=headers, timeout_s=timeout_s,
                 also_allowed=frozenset(allowed))


def _wire_size(headers: list[tuple[str, str | bytes]]) -> int:
    """Metadata size as gRPC counts it: 32 bytes per entry, ``-bin`` values base64-encoded."""
    return sum(len(k) + (-(-len(v) // 3) * 4 if k.endswith("-bin") else len(v)) + 32 for k, v in headers)
