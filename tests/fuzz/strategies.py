"""Hypothesis strategies for every field of a Venus request, biased towards the edges.

Large inputs (huge maps, deep JSON) are built from a generated size rather than drawn element by
element, so that hypothesis stays fast and within its own size limits.
"""

from __future__ import annotations

import json
from typing import Any, cast

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import strategies as st

from tests.fuzz.live import LIMITS
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb

# Characters that break naive code: controls, NUL, combining marks, right-to-left, BOM, emoji,
# non-characters, and the largest code point (lone surrogates cannot be in a protobuf string).
_ODD_CHARS = st.sampled_from(["\x00", "\x7f", "\u0301", "\u202e", "\ufeff", "\U0001f600", "\ufffe", "\U0010ffff",
                              "\n", "\\", '"', "%", "\u00e9", "\u4e2d"])
TEXT = st.one_of(st.text(max_size=20), st.text(_ODD_CHARS, max_size=8), st.just(""))
APP_IDS = st.one_of(st.from_regex(r"[A-Za-z0-9._:-]{1,128}", fullmatch=True), TEXT)
_INT64 = st.integers(-(2**63), 2**63 - 1)
_INT32 = st.integers(-(2**31), 2**31 - 1)


def short_text_maps(max_size: int = 8) -> st.SearchStrategy[dict[str, str]]:
    """Small maps of odd strings."""
    return st.dictionaries(TEXT, TEXT, max_size=max_size)


@st.composite
def huge_maps(draw: st.DrawFn) -> dict[str, str]:
    """A map of thousands of entries, or with one very long key or value."""
    count = draw(st.integers(1_000, 8_000))
    value = draw(st.sampled_from(["", "v", "\U0001f600" * 3]))
    entries = {f"k{i}": value for i in range(count)}
    if draw(st.booleans()):
        entries["long"] = "x" * draw(st.integers(10_000, 60_000))
    return entries




@st.composite
def deep_json(draw: st.DrawFn) -> bytes:
    """An object nested hundreds or thousands of levels deep (parsers limit depth)."""
    depth = draw(st.integers(1, 2_000))
    opener, closer = draw(st.sampled_from([('{"a":', "}"), ("[", "]")]))
    return b"{" + b'"d":' + (opener * depth).encode() + b"1" + (closer * depth).encode() + b"}"


_JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                          TEXT)
JSON_VALUES = st.recursive(_JSON_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                                  st.dictionaries(TEXT, inner, max_size=4)),
                           max_leaves=20)
_ODD_JSON = st.sampled_from([
    b"{}", b"{ }", b" {} ", b"\xef\xbb\xbf{}", b'{"a":1,"a":2}', b'{"a":NaN}', b'{"a":Infinity}', b'{"a":1e999}',
    b'{"a":123456789012345678901234567890}', b'{"a":"\\ud800"}', b'{"a":"\\u0000"}', b"{}garbage", b"{}{}",
    b'{"a":"\xff"}', b'{"a":"\xed\xa0\x80"}', b"null", b"[]", b'"str"', b"1", b"", b"\x00", b"{\x00}",
    b'{"a":.5}', b"{'a':1}", b'{"a":1,}', b"\t{\n}\r\n",
])


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


PAYLOADS = st.one_of(
    st.dictionaries(TEXT, JSON_VALUES, max_size=6).map(_json_bytes),
    JSON_VALUES.map(_json_bytes),
    _ODD_JSON,
    deep_json(),
    st.binary(max_size=64),  # mostly not UTF-8, let alone JSON
    st.integers(4_000, 5_000).map(lambda n: b'{"blob":"' + b"x" * n + b'"}'),  # around the size limit
)

IPS = st.one_of(
    st.just(""),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.ip_addresses(v=4).map(lambda a: f"::ffff:{a}"),  # IPv4-mapped
    st.tuples(st.ip_addresses(v=6), st.sampled_from(["eth0", "1", "%", "\u00e9", ""])).map(
        lambda t: f"{t[0]}%{t[1]}"),  # zone ids
    st.sampled_from(["81.2.69.142", "2a02:c7f:5e00::1", "fe80::1%eth0", "::", "::1", "0.0.0.0", "999.1.2.3",
                     "1.2.3", "01.2.3.4", "1.2.3.4 ", " 1.2.3.4", "[::1]", "1.2.3.4:80", "localhost"]),
    TEXT,
)


@st.composite
def timestamps(draw: st.DrawFn) -> Timestamp | None:
    """No timestamp, one at or beyond the edges of the allowed range, or anything at all on the wire."""
    seconds = draw(st.one_of(
        st.sampled_from([0, -62_135_596_800, -62_135_596_801, 253_402_300_799, 253_402_300_800, 2**63 - 1, -(2**63)]),
        st.integers(-62_135_596_800, 253_402_300_799), _INT64))
    nanos = draw(st.one_of(st.sampled_from([0, 999_999_999, 1_000_000_000, -1]), _INT32))
    return draw(st.sampled_from([None, Timestamp(seconds=seconds, nanos=nanos)]))


EVENT_IDS = st.one_of(st.just(""), st.text(min_size=1, max_size=10), TEXT,
                      st.integers(60, 70).map(lambda n: "i" * n))  # around max_event_id_chars (64)


@st.composite
def events(draw: st.DrawFn, ids: st.SearchStrategy[str] = EVENT_IDS) -> pb.Event:
    """One event with every field drawn from its edge cases."""
    event = pb.Event(id=draw(ids), ip=draw(IPS), payload=draw(PAYLOADS))
    event.attributes.update(draw(st.one_of(st.just({}), short_text_maps())))
    occurred_at = draw(timestamps())
    if occurred_at is not None:
        event.occurred_at.CopyFrom(occurred_at)
    return event


@st.composite
def event_lists(draw: st.DrawFn) -> list[pb.Event]:
    """1 to 12 events, some sharing an id with an earlier one, one maybe with a huge map; rarely 0 or 51."""
    # (hypothesis favours the ends of a range of integers: the common case goes to a sampled choice)
    size = draw(st.sampled_from(["some"] * 18 + ["none", "too many"]))
    if size == "none":
        return []
    if size == "too many":  # one over the limit of 50
        return [pb.Event(id=f"e{i}", payload=b"{}") for i in range(LIMITS["max_events_per_batch"] + 1)]
    drawn = draw(st.lists(events(), min_size=1, max_size=12))
    if drawn and draw(st.integers(0, 9)) == 0:
        drawn[draw(st.integers(0, len(drawn) - 1))].attributes.update(draw(huge_maps()))
    for index in draw(st.lists(st.integers(1, max(1, len(drawn) - 1)), max_size=3)):
        if index < len(drawn):
            drawn[index].id = drawn[draw(st.integers(0, index - 1))].id  # a duplicate id
    return drawn


@st.composite
def metas(draw: st.DrawFn, category: str) -> pb.BatchMeta | None:
    """Usually valid meta for ``category`` with odd optional fields; else missing or odd throughout."""
    meta = pb.BatchMeta(app_id="com.example.fuzz", category=category, platform=pb.PLATFORM_ANDROID,
                        app_version=draw(TEXT), sdk_version=draw(TEXT), device_id=draw(TEXT))
    meta.labels.update(draw(short_text_maps() if draw(st.integers(0, 9)) else huge_maps()))
    kind = draw(st.sampled_from(["valid"] * 6 + ["missing", "odd"]))
    if kind == "missing":
        return None
    if kind == "odd":
        meta.app_id = draw(APP_IDS)
        meta.category = draw(st.one_of(st.just(category), TEXT))
        meta.platform = cast(Any, draw(st.one_of(st.sampled_from(list(pb.Platform.values())), _INT32)))
    return meta


@st.composite
def requests(draw: st.DrawFn, category: str) -> pb.UploadEventsRequest:
    """A whole UploadEventsRequest; valid parts dominate so that most events reach the pipeline."""
    request = pb.UploadEventsRequest(events=draw(event_lists()))
    meta = draw(metas(category))
    if meta is not None:
        request.meta.CopyFrom(meta)
    return request
