"""The load driver (gRPC, or HTTP with ``--http``), run by ``run`` as its own process (``python -m benchmarks.load``).

Why a separate process: the server's CPU must be measured alone, and a client sharing its event
loop would distort both. Why patched template bytes: building protobuf messages per RPC would
spend client CPU comparable to the server's; instead one realistic batch is serialized once and
each RPC only gets a fresh request number written into fixed-width placeholders (every event id
and the device id), so every event id stays unique for the read-back check at ~0.1 µs per event.

Closed loop (default): ``--concurrency`` RPCs in flight at all times over ``--channels``
connections. Open loop (``--rate``): RPCs start at a fixed arrival rate whether or not earlier
ones finished, at most ``--max-outstanding`` at once (arrivals beyond it are counted as dropped);
latency is then measured from the scheduled arrival, so a late client does not hide queueing.

``--http``: the same batches as Connect binary POSTs (``application/proto``) to Venus's HTTP port, one
HTTP/1.1 keep-alive connection per call in flight (HTTP/1.1 has no multiplexing), written and read by a
minimal client of our own so that the client's cost stays small beside the server's (``http_calls``).
``--http2``: the same over HTTP/2 (cleartext, prior knowledge), also one connection per call in flight, so
that the two differ only in the protocol.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from benchmarks.http_calls import Http2Call, HttpCall, HttpRefused
from benchmarks.phases import Tally, emit, run_and_emit
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc.tools.ledger.book import retry_delay_s
from venus_grpc.tools.send_tail import sample_request
from venus_grpc.tools.tls import aio_channel, channel_credentials

METHOD = "/venus.v1.IngestService/UploadEvents"
STREAM_METHOD = "/venus.v1.IngestService/StreamEvents"
EVENT_IP = "81.2.69.142"  # a public address in the GeoLite2 test range: enrichment does a real lookup
_PLACEHOLDER = b"#" * 10
_CHANNEL_OPTIONS = [
    ("grpc.use_local_subchannel_pool", 1),  # one TCP connection per channel, not one shared
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


class RequestFactory:
    """Serialized ``UploadEventsRequest`` bytes, each with unique event ids and its own device id."""

    def __init__(self, *, run_id: str, category: str, batch: int) -> None:
        placeholder = _PLACEHOLDER.decode()
        request = sample_request(app_id="venus-bench", category=category, events=batch, ip=EVENT_IP)
        request.meta.device_id = f"dev-{placeholder}"
        for index, event in enumerate(request.events):
            event.id = f"{run_id}-{placeholder}-{index:04d}"
        self._template = bytearray(request.SerializeToString())
        self._offsets = _find_all(bytes(self._template), _PLACEHOLDER)
        if len(self._offsets) != batch + 1:
            raise RuntimeError(f"expected {batch + 1} placeholders in the template, found {len(self._offsets)}")
        self.events = batch
        self._seq = 0

    def next(self) -> bytes:
        """The next request: request number ``n`` gives event ids ``<run>-<n>-<index>``."""
        digits = b"%010d" % self._seq
        self._seq += 1
        buf = self._template
        for offset in self._offsets:
            buf[offset:offset + 10] = digits
        return bytes(buf)


def _find_all(data: bytes, needle: bytes) -> list[int]:
    offsets, at = [], data.find(needle)
    while at >= 0:
        offsets.append(at)
        at = data.find(needle, at + len(needle))
    return offsets


@dataclass(frozen=True)
class LoadSpec:
    """One load run."""

    target: str
    batch: int
    concurrency: int
    channels: int
    warmup_s: float
    duration_s: float
    category: str
    run_id: str
    timeout_s: float
    rate_rps: float = 0.0  # 0: closed loop
    max_outstanding: int = 0
    stream: bool = False  # closed loop over StreamEvents: one stream per channel
    ca_path: str = ""  # TLS: trust this CA (PEM); empty: plaintext
    client_cert_path: str = ""  # mTLS: present this certificate chain (PEM) ...
    client_key_path: str = ""  # ... and its key
    api_key: str = ""  # sent as authorization: Bearer <key> on every call
    http: bool = False  # Connect binary over HTTP/1.1 to the target (Venus's HTTP port) instead of gRPC
    http2: bool = False  # with http: over HTTP/2 instead of HTTP/1.1

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Metadata sent with every call."""
        return (("authorization", f"Bearer {self.api_key}"),) if self.api_key else ()

    def channel(self) -> grpc.aio.Channel:
        """A new channel to the target: plaintext, TLS or mTLS."""
        credentials = channel_credentials(self.ca_path, self.client_cert_path, self.client_key_path)
        return aio_channel(self.target, credentials, options=_CHANNEL_OPTIONS)


Call = Any  # grpc.aio.UnaryUnaryMultiCallable (untyped upstream) or HttpCall


async def one_rpc(call: Call, payload: bytes, events: int, started: float, tally: Tally, timeout_s: float) -> None:
    """Send one batch and count its outcome."""
    tally.sent(events)
    try:
        response: pb.UploadEventsResponse = await call(payload, timeout=timeout_s)
    except grpc.aio.AioRpcError as err:
        done = time.monotonic()
        tally.failed(done, _refusal_name(err), events, latency_s=done - started, retry_info=retry_delay_s(err) > 0)
        return
    except HttpRefused as err:
        tally.failed(time.monotonic(), err.code, events)
        return
    except TimeoutError:  # HTTP: no answer within the deadline
        tally.failed(time.monotonic(), "DEADLINE_EXCEEDED", events)
        return
    except (OSError, asyncio.IncompleteReadError):  # HTTP: the connection failed
        tally.failed(time.monotonic(), "UNAVAILABLE", events)
        return
    except asyncio.CancelledError:
        tally.failed(time.monotonic(), "CLIENT_CANCELLED", events)
        raise
    _count(response, events, started, time.monotonic(), tally)


def _refusal_name(err: grpc.aio.AioRpcError) -> str:
    # A stream the server refused at the HTTP/2 level (over max_concurrent_streams) reaches the client
    # as UNAVAILABLE; it is named apart, since the overload target forbids it.
    name: str = err.code().name
    details = (err.details() or "").upper()
    if name == "UNAVAILABLE" and "REFUSED" in details and "STREAM" in details:
        return "REFUSED_STREAM"
    return name


def _count(response: pb.UploadEventsResponse, events: int, started: float, done: float, tally: Tally) -> None:
    if response.code == pb.RESULT_CODE_ALL_SUCCESS and len(response.results) == events:
        tally.answered(done, done - started, events, {})
        return
    codes = Counter(pb.EventCode.Name(r.code) for r in response.results)
    ok = codes.pop("EVENT_CODE_OK", 0)
    tally.answered(done, done - started, ok, dict(codes), ambiguous=codes.get("EVENT_CODE_PUBLISH_ERROR", 0))


async def closed_worker(call: Call, factory: RequestFactory, tally: Tally, stop_at: float, timeout_s: float) -> None:
    """Keep exactly one RPC in flight until ``stop_at``."""
    while (now := time.monotonic()) < stop_at:
        await one_rpc(call, factory.next(), factory.events, now, tally, timeout_s)


def stream_item(sequence: int, batch: bytes) -> bytes:
    """A serialized ``StreamEventsRequest`` around already serialized batch bytes (no re-parse)."""
    return b"\x08" + _varint(sequence) + b"\x12" + _varint(len(batch)) + batch


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


async def stream_worker(channel: grpc.aio.Channel, factory: RequestFactory, tally: Tally, stop_at: float,
                        in_flight: int, timeout_s: float, metadata: tuple[tuple[str, str], ...] = ()) -> None:
    """One StreamEvents stream with ``in_flight`` batches outstanding until ``stop_at``."""
    stream = channel.stream_stream(STREAM_METHOD, request_serializer=None,
                                   response_deserializer=pb.StreamEventsResponse.FromString)(
        timeout=timeout_s + 3600, metadata=metadata)
    window = asyncio.Semaphore(in_flight)
    started: dict[int, float] = {}

    async def write() -> None:
        sequence = 0
        while time.monotonic() < stop_at:
            await window.acquire()
            sequence += 1
            started[sequence] = time.monotonic()
            tally.sent(factory.events)
            await stream.write(stream_item(sequence, factory.next()))
        await stream.done_writing()

    async def read() -> None:
        while (answer := await stream.read()) is not grpc.aio.EOF:
            done = time.monotonic()
            began = started.pop(answer.sequence)
            window.release()
            if answer.HasField("rejection"):
                tally.failed(done, _status_name(answer.rejection.status_code), factory.events)
            else:
                _count(answer.response, factory.events, began, done, tally)

    try:
        await asyncio.gather(write(), read())
    except grpc.aio.AioRpcError as err:
        for _ in started:
            tally.failed(time.monotonic(), err.code().name, factory.events)


def _status_name(code: int) -> str:
    return next((s.name for s in grpc.StatusCode if s.value[0] == code), str(code))


async def open_dispatcher(calls: Sequence[Call], factory: RequestFactory, tally: Tally, spec: LoadSpec,
                          stop_at: float, outstanding: set[asyncio.Task[None]]) -> None:
    """Start RPCs at ``spec.rate_rps`` until ``stop_at``; drop arrivals while the cap is reached."""
    interval = 1.0 / spec.rate_rps
    next_at = time.monotonic()
    sent = 0
    while next_at < stop_at:
        now = time.monotonic()
        if next_at > now:
            await asyncio.sleep(next_at - now)
            continue
        while next_at <= now and next_at < stop_at:
            if len(outstanding) >= spec.max_outstanding:
                tally.drop(next_at)
            else:
                task = asyncio.create_task(one_rpc(calls[sent % len(calls)], factory.next(), factory.events,
                                                   next_at, tally, spec.timeout_s))
                outstanding.add(task)
                task.add_done_callback(outstanding.discard)
                sent += 1
            next_at += interval
        await asyncio.sleep(0)  # let responses in even when behind schedule


async def run(spec: LoadSpec) -> dict[str, Any]:
    """Warm up, measure for ``spec.duration_s`` (announcing the window), drain, and summarise."""
    factory = RequestFactory(run_id=spec.run_id, category=spec.category, batch=spec.batch)
    channels = [] if spec.http else [spec.channel() for _ in range(spec.channels)]
    http_call = Http2Call if spec.http2 else HttpCall
    http_calls = [http_call(spec.target, spec.api_key) for _ in range(spec.concurrency if spec.http else 0)]
    try:
        await asyncio.wait_for(asyncio.gather(*(ch.channel_ready() for ch in channels)), timeout=10)
        calls: list[Call] = http_calls or [
            functools.partial(ch.unary_unary(METHOD, request_serializer=None,
                                             response_deserializer=pb.UploadEventsResponse.FromString),
                              metadata=spec.metadata) for ch in channels]
        tally = Tally()
        start = time.monotonic()
        window_start = start + spec.warmup_s
        stop_at = window_start + spec.duration_s
        tally.open_window(window_start, spec.duration_s)
        outstanding: set[asyncio.Task[None]] = set()
        if spec.rate_rps > 0:
            drivers = [asyncio.create_task(open_dispatcher(calls, factory, tally, spec, stop_at, outstanding))]
        elif spec.stream:
            per_stream = max(1, spec.concurrency // len(channels))
            drivers = [asyncio.create_task(stream_worker(ch, factory, tally, stop_at, per_stream, spec.timeout_s,
                                                         spec.metadata)) for ch in channels]
        else:
            drivers = [asyncio.create_task(closed_worker(calls[i % len(calls)], factory, tally, stop_at,
                                                         spec.timeout_s)) for i in range(spec.concurrency)]
        await asyncio.sleep(max(0.0, window_start - time.monotonic()))
        emit("measure")
        await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
        emit("window_end")
        pending = set(drivers) | outstanding
        if pending:
            _, late = await asyncio.wait(pending, timeout=spec.timeout_s + 5)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        pending = set(outstanding)  # open loop: RPCs the dispatcher started last
        if pending:
            await asyncio.wait(pending, timeout=spec.timeout_s + 5)
        return tally.result(mode="open" if spec.rate_rps > 0 else "stream" if spec.stream else "closed",
                            batch=spec.batch,
                            concurrency=spec.concurrency, channels=spec.channels, rate_rps=spec.rate_rps,
                            max_outstanding=spec.max_outstanding)
    finally:
        await asyncio.gather(*(ch.close() for ch in channels), return_exceptions=True)
        for call in http_calls:
            call.close()


def _parse(argv: Sequence[str] | None) -> LoadSpec:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.splitlines()[0])
    p.add_argument("--target", required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--concurrency", type=int, default=16, help="closed loop: RPCs in flight")
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--warmup-s", type=float, default=2.0)
    p.add_argument("--duration-s", type=float, default=10.0)
    p.add_argument("--category", default="BENCH")
    p.add_argument("--run-id", default=uuid.uuid4().hex[:8])
    p.add_argument("--timeout-s", type=float, default=10.0, help="RPC deadline")
    p.add_argument("--rate", type=float, default=0.0, help="open loop: RPCs started per second")
    p.add_argument("--max-outstanding", type=int, default=512, help="open loop: cap on RPCs in flight")
    p.add_argument("--stream", action="store_true", help="use StreamEvents: --concurrency batches spread over "
                   "one stream per channel")
    p.add_argument("--ca-path", default="", help="TLS: the CA (PEM) that signed the server's certificate")
    p.add_argument("--client-cert-path", default="", help="mTLS: this client's certificate chain (PEM)")
    p.add_argument("--client-key-path", default="", help="mTLS: this client's private key (PEM)")
    p.add_argument("--api-key", default="", help="sent as authorization: Bearer <key>")
    p.add_argument("--http", action="store_true", help="Connect binary over HTTP/1.1 to the target (Venus's HTTP "
                   "port): one connection per call in flight; unary and closed loop only")
    p.add_argument("--http2", action="store_true", help="with --http: over HTTP/2 (cleartext, prior knowledge)")
    a = p.parse_args(argv)
    if a.http2 and not a.http:
        p.error("--http2 goes with --http")
    if a.http and (a.rate > 0 or a.stream):
        p.error("--http drives a closed loop of unary calls: leave out --rate and --stream")
    return LoadSpec(target=a.target, batch=a.batch, concurrency=a.concurrency,
                    channels=max(1, min(a.channels, a.concurrency if a.rate <= 0 else a.channels)),
                    warmup_s=a.warmup_s, duration_s=a.duration_s, category=a.category, run_id=a.run_id,
                    timeout_s=a.timeout_s, rate_rps=a.rate, max_outstanding=a.max_outstanding,
                    stream=a.stream, ca_path=a.ca_path, client_cert_path=a.client_cert_path,
                    client_key_path=a.client_key_path, api_key=a.api_key, http=a.http,
                    http2=a.http2)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one load and print its phases and result as JSON lines."""
    spec = _parse(argv)
    return run_and_emit(run(spec))


if __name__ == "__main__":
    raise SystemExit(main())
