"""Raw request bytes and request metadata: what a broken or hostile client can really send.

Bytes are random, or valid serialized requests mutated the way corrupted frames look: bit flips,
truncations, splices, deleted ranges and corrupted varints (lengths and tags). Metadata keys and
values stay within what a gRPC client will put on the wire (printable ASCII, ``-bin`` for bytes).
"""

from __future__ import annotations

from hypothesis import strategies as st

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb


@st.composite
def valid_request_bytes(draw: st.DrawFn, category: str) -> bytes:
    """A well-formed request of 1 to 5 plain events, serialized."""
    count = draw(st.integers(1, 5))
    ids = draw(st.lists(st.text(min_size=1, max_size=8), min_size=count, max_size=count))
    request = pb.UploadEventsRequest(
        meta=pb.BatchMeta(app_id="com.example.fuzz", category=category, platform=pb.PLATFORM_WEB,
                          device_id=draw(st.text(max_size=6))),
        events=[pb.Event(id=i, payload=b'{"n":1}', ip="81.2.69.142") for i in ids])
    return bytes(request.SerializeToString())


@st.composite
def _mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with one corruption applied."""
    kind = draw(st.sampled_from(["flip", "truncate", "splice", "delete", "varint", "byte"]))
    at = draw(st.integers(0, max(0, len(data) - 1)))
    if kind == "flip" and data:
        return data[:at] + bytes([data[at] ^ (1 << draw(st.integers(0, 7)))]) + data[at + 1:]
    if kind == "truncate":
        return data[:at]
    if kind == "splice":
        return data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
    if kind == "delete":
        return data[:at] + data[at + draw(st.integers(1, 8)):]
    if kind == "varint":  # an over-long or huge varint where a tag or a length was
        return data[:at] + draw(st.sampled_from([b"\xff" * 10 + b"\x01", b"\x80" * 11, b"\xff\xff\xff\xff\x0f",
                                                 b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00"])) + data[at + 1:]
    if kind == "byte" and data:
        return data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
    return data


@st.composite
def mutated_requests(draw: st.DrawFn, category: str) -> bytes:
    """A valid request, or two concatenated (which protobuf merges), with 1 to 4 corruptions."""
    data = draw(valid_request_bytes(category))
    if draw(st.booleans()):
        data += draw(valid_request_bytes(category))
    for _ in range(draw(st.integers(1, 4))):
        data = draw(_mutated(data))
    return data


def raw_requests(category: str) -> st.SearchStrategy[bytes]:
    """Random bytes, or mutated valid requests."""
    return st.one_of(st.binary(max_size=256), mutated_requests(category), mutated_requests(category))


_HEADER_VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
_TRACEPARENTS = st.one_of(
    st.just("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    st.sampled_from(["00-00000000000000000000000000000000-0000000000000000-01",
                     "ff-" + "a" * 32 + "-" + "b" * 16 + "-01", "00-zz-01", "00-" + "A" * 32 + "-" + "B" * 16 + "-01",
                     "", "-", "00--", "0" * 600]),
    st.from_regex(r"[0-9a-f]{2}-[0-9a-fA-F]{1,40}-[0-9a-f]{1,20}-[0-9a-f]{1,3}", fullmatch=True),
    _HEADER_VALUE,
)
_BAGGAGES = st.one_of(
    st.sampled_from(["request_id=abc", "venus.debug=1", "request_id=", "=", ",,,", "request_id=a=b;c", "%zz=%zz",
                     "request_id=" + "a" * 5000,
                     ",".join(f"k{i}=v" for i in range(500)), "venus.debug=1,request_id=\\"]),
    _HEADER_VALUE,
)
_TIMEOUT_HEADERS = st.sampled_from(["1n", "0S", "99999999H", "-1S", "zzz", "", "1", "100000000S", "1.5S"])
_KEYS = st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,20}", fullmatch=True).filter(
    lambda k: not k.startswith("grpc-") and not k.endswith("-bin"))


@st.composite
def metadata(draw: st.DrawFn) -> list[tuple[str, str | bytes]]:
    """A handful of headers: malformed trace context, baggage and request ids, odd and oversized values."""
    headers: list[tuple[str, str | bytes]] = []
    for _ in range(draw(st.integers(0, 6))):
        name = draw(st.sampled_from(["traceparent", "tracestate", "baggage", "x-request-id", "x-forwarded-for",
                                     "grpc-timeout", "other", "bin"]))
        if name == "traceparent":
            headers.append((name, draw(_TRACEPARENTS)))
        elif name == "baggage":
            headers.append((name, draw(_BAGGAGES)))
        elif name == "grpc-timeout":
            headers.append((name, draw(_TIMEOUT_HEADERS)))
        elif name == "bin":
            headers.append((draw(_KEYS) + "-bin", draw(st.binary(max_size=64))))
        elif name == "other":
            headers.append((draw(_KEYS), draw(_HEADER_VALUE)))
        else:
            headers.append((name, draw(_HEADER_VALUE)))
    if draw(st.integers(0, 7)) == 0:  # beyond the server's metadata limit (8 KiB soft, 16 KiB hard)
        headers.append((draw(_KEYS), "x" * draw(st.integers(8_000, 40_000))))
    return headers
