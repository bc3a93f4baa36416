"""Send one generated input to the live Venus and assert the invariants every answer must keep.

Per input: the status is one the contract names (never UNKNOWN or INTERNAL), there is one result
per event in request order, OK results carry a backend_id and a place in Kafka (topic, partition,
offset) and the others do not, and the oracle's verdicts hold. What was answered OK goes to the
ledger, checked against Kafka after the run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
from google.protobuf.message import DecodeError

from tests.fuzz.live import LIMITS, LiveVenus
from tests.fuzz.oracle import event_must_fail, is_json_object, request_is_bad
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb

UPLOAD = "/venus.v1.IngestService/UploadEvents"
STREAM = "/venus.v1.IngestService/StreamEvents"
Metadata = Sequence[tuple[str, str | bytes]]
_NEVER_OK = (pb.EVENT_CODE_UNSPECIFIED, pb.EVENT_CODE_SERIALIZATION_ERROR, pb.EVENT_CODE_PUBLISH_ERROR)


@dataclass
class Tally:
    """Counts for the long run's report: inputs per kind, statuses and event codes seen."""

    inputs: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    event_codes: Counter[str] = field(default_factory=Counter)
    rss: dict[str, tuple[int, int]] = field(default_factory=dict)  # module -> (warmed-up, after) bytes

    def status(self, kind: str, code: grpc.StatusCode) -> None:
        """Count one answered input of ``kind``."""
        self.inputs[kind] += 1
        self.statuses[f"{kind}:{code.name}"] += 1


TALLY = Tally()


def upload_raw(live: LiveVenus, data: bytes, *, metadata: Metadata = (),
               timeout_s: float = 20.0) -> tuple[grpc.StatusCode, bytes | None, str]:
    """Send ``data`` as the UploadEvents request bytes: (status, response bytes or None, details)."""
    call = live.channel.unary_unary(UPLOAD, request_serializer=None, response_deserializer=None)
    try:
        response = call(data, metadata=metadata, timeout=timeout_s)
    except grpc.RpcError as err:
        return err.code(), None, err.details() or ""
    return grpc.StatusCode.OK, response, ""


def check_upload(live: LiveVenus, request: pb.UploadEventsRequest, *, kind: str = "typed",
                 metadata: Metadata = (), timeout_s: float = 20.0,
                 also_allowed: frozenset[grpc.StatusCode] = frozenset()) -> None:
    """Upload a typed request and check the answer against the oracle."""
    data = request.SerializeToString()
    status, response, details = upload_raw(live, data, metadata=metadata, timeout_s=timeout_s)
    TALLY.status(kind, status)
    if status not in also_allowed:
        _check_answer(live, request, len(data), status, response, details)


def check_raw(live: LiveVenus, data: bytes, *, kind: str = "raw") -> None:
    """Upload arbitrary bytes: garbage is INVALID_ARGUMENT, anything that parses is answered in full."""
    status, response, details = upload_raw(live, data)
    TALLY.status(kind, status)
    try:
        request = pb.UploadEventsRequest.FromString(data)
    except DecodeError:
        assert status is grpc.StatusCode.INVALID_ARGUMENT, (status, details)
        assert "not a valid venus.v1.UploadEventsRequest" in details, details
        return
    _check_answer(live, request, len(data), status, response, details)


def _check_answer(live: LiveVenus, request: pb.UploadEventsRequest, size: int, status: grpc.StatusCode,
                  response: bytes | None, details: str) -> None:
    if size > LIMITS["max_message_bytes"]:
        assert status is grpc.StatusCode.RESOURCE_EXHAUSTED, (status, details)
    elif request_is_bad(request):
        assert status is grpc.StatusCode.INVALID_ARGUMENT, (status, details)
        assert details, "a refused request says why"
    else:
        assert status is grpc.StatusCode.OK, (status, details)
        assert response is not None
        check_results(live, request, pb.UploadEventsResponse.FromString(response))


def check_results(live: LiveVenus, request: pb.UploadEventsRequest, response: pb.UploadEventsResponse) -> None:
    """One result per event, in order, each consistent with the oracle; OK ones go to the ledger."""
    assert [r.id for r in response.results] == [e.id for e in request.events], "one result per event, in order"
    earlier: set[str] = set()
    for event, result in zip(request.events, response.results, strict=True):
        TALLY.event_codes[pb.EventCode.Name(result.code)] += 1
        assert result.code not in _NEVER_OK, (pb.EventCode.Name(result.code), result.message)
        if result.code == pb.EVENT_CODE_OK:
            assert not event_must_fail(event, earlier), f"accepted an event the contract refuses: {event!r:.300}"
            assert result.backend_id and not result.retryable
            assert result.topic and result.HasField("partition") and result.HasField("offset"), result
            assert is_json_object(event.payload), f"accepted a payload that is no JSON object: {event.payload!r:.200}"
            live.ledger.acknowledge(request.meta.category, result.backend_id, event.id)
        else:
            assert not result.backend_id and result.message, result
            assert not (result.topic or result.HasField("partition") or result.HasField("offset")), result
            if event.id in earlier:
                assert result.code == pb.EVENT_CODE_DUPLICATE_ID, result
        earlier.add(event.id)
    codes = {r.code for r in response.results}
    expected = (pb.RESULT_CODE_ALL_SUCCESS if codes == {pb.EVENT_CODE_OK} else
                pb.RESULT_CODE_PARTIAL_SUCCESS if pb.EVENT_CODE_OK in codes else pb.RESULT_CODE_ALL_FAIL)
    assert response.code == expected, (response.code, codes)


def warm_up(live: LiveVenus, *, rounds: int = 30) -> int:
    """Serve the largest kinds of input a few times, then return the resident memory as the baseline.

    Caches, buffer pools and allocator arenas grow to their working size on the first large
    requests; measuring before that would count them as a leak.
    """
    category = live.ledger.category
    meta = pb.BatchMeta(app_id="com.example.fuzz", category=category, platform=pb.PLATFORM_IOS)
    blob = b'{"blob":"' + b"x" * 4000 + b'"}'
    for n in range(rounds):
        full = pb.UploadEventsRequest(meta=meta, events=[pb.Event(id=f"w{n}.{i}", payload=blob, ip="81.2.69.142")
                                                         for i in range(LIMITS["max_events_per_batch"])])
        check_upload(live, full, kind="warm-up")
        huge = pb.UploadEventsRequest(meta=meta, events=[pb.Event(id=f"h{n}", payload=b"{}")])
        huge.events[0].attributes.update({f"k{i}": "v" * 16 for i in range(30_000)})  # just under 1 MiB
        check_upload(live, huge, kind="warm-up")
        check_raw(live, b"\xff" * 1000, kind="warm-up")
    return live.rss_bytes()


StreamItem = tuple[int, pb.UploadEventsRequest] | bytes  # (sequence, batch), or bytes that may be no message


def check_stream(live: LiveVenus, items: Sequence[StreamItem]) -> None:
    """Send ``items`` on one StreamEvents stream: one answer per item, bad ones rejected, the stream OK."""
    messages = [i if isinstance(i, bytes) else pb.StreamEventsRequest(sequence=i[0], batch=i[1]).SerializeToString()
                for i in items]
    call = live.channel.stream_stream(STREAM, request_serializer=None, response_deserializer=None)
    try:
        answers = [pb.StreamEventsResponse.FromString(r) for r in call(iter(messages), timeout=60)]
    except grpc.RpcError as err:
        TALLY.status("stream", err.code())
        raise AssertionError(f"the stream failed: {err.code()} {err.details()}") from None
    TALLY.status("stream", grpc.StatusCode.OK)
    assert len(answers) == len(items), "one answer per batch"
    batches = [parsed for m in messages if (parsed := _stream_request(m)) is not None]
    malformed = [a for a in answers if a.WhichOneof("outcome") == "rejection" and "not a valid" in a.rejection.message]
    assert len(malformed) == len(messages) - len(batches), "every undecodable message is rejected"
    assert all(a.sequence == 0 and a.rejection.status_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
               for a in malformed)
    for answer in (a for a in answers if a not in malformed):
        batch = _answered_batch(answer, batches)  # answers may come out of order, sequences may repeat
        batches.remove(batch)
        if answer.WhichOneof("outcome") == "response":
            check_results(live, batch.batch, answer.response)


def _stream_request(message: bytes) -> pb.StreamEventsRequest | None:
    try:
        return pb.StreamEventsRequest.FromString(message)
    except DecodeError:  # the server's parser catches exactly this; anything else would be a finding
        return None


def _answered_batch(answer: pb.StreamEventsResponse, batches: list[pb.StreamEventsRequest]) -> pb.StreamEventsRequest:
    """The batch ``answer`` is for: same sequence, refused if the oracle calls it bad, else the same event ids."""
    for sent in batches:
        if sent.sequence != answer.sequence:
            continue
        if answer.WhichOneof("outcome") == "rejection":
            if request_is_bad(sent.batch):
                assert answer.rejection.status_code == grpc.StatusCode.INVALID_ARGUMENT.value[0], answer
                return sent
        elif not request_is_bad(sent.batch) and [r.id for r in answer.response.results] == [
                e.id for e in sent.batch.events]:
            return sent
    raise AssertionError(f"an answer matches no batch sent: {answer}")
