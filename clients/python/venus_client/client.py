"""The asynchronous client: one ``upload`` that answers a typed outcome per event and retries safely.

Everything a caller would otherwise get wrong lives here once: resend only what may still succeed,
keep event ids, back off with jitter and honour ``RetryInfo``, carry the trace context and a request id
through every attempt, and raise only for a request that is wrong as a whole.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Literal

import grpc
from opentelemetry import propagate

from venus_client._batch import PendingBatch
from venus_client._pb.venus.v1 import ingest_pb2 as pb
from venus_client._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_client._stream import StreamSender
from venus_client.buffer import BufferConfig, BufferCounters, EventBuffer, OutcomesHook
from venus_client.errors import CallFailed, CallFailure, VenusRequestError
from venus_client.model import EventData, Meta, UploadResult
from venus_client.retry import RetryPolicy

EventLike = pb.Event | EventData
MetaLike = pb.BatchMeta | Meta


class VenusClient:
    """An asynchronous Venus client over one grpc.aio channel; use it as ``async with``.

    ``default_meta`` is merged under each upload's ``meta`` (fields set in the upload's meta win).
    ``api_key`` is sent as ``authorization: Bearer <key>`` on every call (use TLS ``credentials`` with it).
    ``deadline_s`` bounds each call; the ``retry`` policy bounds the whole upload.
    ``emit`` queues single events into a background batcher shaped by ``buffer`` (see
    :class:`~venus_client.buffer.BufferConfig`); each batch's outcomes go to ``on_outcomes`` and to
    ``counters``. With ``transport="stream"`` (the default) those batches go over one StreamEvents stream,
    several times faster than a unary call each for small batches; a server that does not serve
    StreamEvents gets unary calls instead. ``upload`` is always one unary call per attempt.
    ``close`` sends everything queued before it closes the channel.
    """

    def __init__(self, target: str, *, credentials: grpc.ChannelCredentials | None = None,
                 api_key: str | None = None, default_meta: MetaLike | None = None, deadline_s: float = 10.0,
                 compression: Literal["gzip"] | None = None, retry: RetryPolicy | None = None,
                 interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
                 channel_options: Sequence[tuple[str, str | int]] = (), buffer: BufferConfig | None = None,
                 on_outcomes: OutcomesHook | None = None, transport: Literal["stream", "unary"] = "stream") -> None:
        options = list(channel_options)
        grpc_compression = grpc.Compression.Gzip if compression == "gzip" else grpc.Compression.NoCompression
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(target, options=options, compression=grpc_compression,
                                                      interceptors=list(interceptors))
        else:
            self._channel = grpc.aio.secure_channel(target, credentials, options=options,
                                                    compression=grpc_compression, interceptors=list(interceptors))
        # grpc_tools writes no type hints for the stub; the call's types are checked through the messages.
        self._stub = pb_grpc.IngestServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._default_meta = _meta_proto(default_meta) if default_meta is not None else pb.BatchMeta()
        self._deadline_s = deadline_s
        self._key_metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self._retry = retry or RetryPolicy()
        self._rng = random.Random()
        self._stream = StreamSender(self._open_stream) if transport == "stream" else None
        self._buffer = EventBuffer(self._upload_emitted, buffer or BufferConfig(), on_outcomes)

    async def __aenter__(self) -> VenusClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        """Send every emitted event (waiting for its outcome), then close the channel.

        Direct ``upload`` calls still running are cancelled. Closing is bounded by the retry policy:
        what cannot be delivered within it ends counted as failed, not lost silently.
        """
        await self._buffer.close()
        if self._stream is not None:
            await self._stream.close()
        await self._channel.close()

    def emit(self, event: EventLike) -> bool:
        """Queue one event for a background batch upload with the default meta, without waiting.

        Answers False when the queue is full and the policy is ``"drop"`` (the event is counted in
        ``counters.dropped``); raises :class:`~venus_client.buffer.BufferFullError` when full under
        ``"block"``. Call it from the event loop's thread.
        """
        return self._buffer.emit(event)

    async def emit_wait(self, event: EventLike) -> bool:
        """Like :meth:`emit`, but under ``"block"`` waits for room in the queue instead of raising."""
        return await self._buffer.emit_wait(event)

    async def flush(self) -> None:
        """Wait until every emitted event has been uploaded and has its outcome."""
        await self._buffer.flush()

    @property
    def counters(self) -> BufferCounters:
        """Live counts of emitted events: sent OK, rejected, failed, dropped (and batches sent)."""
        return self._buffer.counters

    @property
    def buffer(self) -> EventBuffer:
        """The emit buffer, for its ``queued`` and ``in_flight`` gauges."""
        return self._buffer

    @property
    def streaming(self) -> bool:
        """True while emitted batches go over a StreamEvents stream (False: unary calls)."""
        return self._stream is not None and not self._stream.refused

    async def upload(self, events: Iterable[EventLike], meta: MetaLike | None = None, *,
                     request_id: str | None = None) -> UploadResult:
        """Upload one batch and answer one outcome per event, in the order given.

        Events answered retryable, and whole calls failing with a retryable status, are sent again
        within the retry policy; what still failed then is ``RETRYABLE_FAILURE`` in the result, never
        silently dropped. Raises :class:`VenusRequestError` when the server refuses the request as a
        whole with any other status (``INVALID_ARGUMENT`` with its field violations, for instance).
        """
        return await self._upload(events, meta, request_id=request_id, stream=None)

    async def _upload_emitted(self, events: Iterable[EventLike]) -> UploadResult:
        return await self._upload(events, None, request_id=None, stream=self._stream)

    async def _upload(self, events: Iterable[EventLike], meta: MetaLike | None, *, request_id: str | None,
                      stream: StreamSender | None) -> UploadResult:
        batch = PendingBatch([e.to_proto() if isinstance(e, EventData) else e for e in events])
        request_meta = self._merged_meta(meta)
        request_id = request_id or uuid.uuid4().hex
        metadata = _call_metadata(request_id) + self._key_metadata
        policy, started = self._retry, time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            remaining_s = policy.total_budget_s - (time.monotonic() - started)
            request = pb.UploadEventsRequest(meta=request_meta, events=batch.to_send())
            floor_s: float | None = None
            try:
                response = await self._call(request, metadata, max(min(self._deadline_s, remaining_s), 0.001), stream)
            except CallFailed as err:
                failure = err.failure
                if failure.status not in policy.retryable_codes:
                    raise VenusRequestError(failure.status, failure.message, field_violations=failure.field_violations,
                                            request_id=request_id,
                                            partial=batch.settled_result(failure.status.name, failure.message,
                                                                          request_id, attempt)) from err
                batch.fail_pending(failure.status.name, failure.message)
                floor_s = failure.retry_delay_s
            else:
                batch.record(response)
                if batch.done:
                    return batch.result(request_id, attempt)
            delay_s = policy.backoff_s(attempt, floor_s=floor_s, rng=self._rng)
            if attempt >= policy.max_attempts or time.monotonic() - started + delay_s >= policy.total_budget_s:
                return batch.result(request_id, attempt)
            await asyncio.sleep(delay_s)  # backoff between attempts, not synchronisation

    async def _call(self, request: pb.UploadEventsRequest, metadata: tuple[tuple[str, str], ...], timeout_s: float,
                    stream: StreamSender | None) -> pb.UploadEventsResponse:
        """One attempt: a batch on the stream when there is one, else (or once the server refused the stream) a
        unary call; raises :class:`CallFailed`."""
        if stream is not None and not stream.refused:
            try:
                return await stream.send(request, timeout_s=timeout_s)
            except CallFailed:
                if not stream.refused:
                    raise
        try:
            response: pb.UploadEventsResponse = await self._stub.UploadEvents(request, metadata=metadata,
                                                                              timeout=timeout_s)
            return response
        except grpc.aio.AioRpcError as err:
            raise CallFailed(CallFailure.from_error(err)) from err

    def _open_stream(self) -> grpc.aio.StreamStreamCall:
        # The stream's own id and trace context: batches on it are scoped "<stream id>.<sequence>" by the server.
        return self._stub.StreamEvents(metadata=_call_metadata(uuid.uuid4().hex) + self._key_metadata)

    def _merged_meta(self, meta: MetaLike | None) -> pb.BatchMeta:
        merged = pb.BatchMeta()
        merged.CopyFrom(self._default_meta)
        if meta is not None:
            merged.MergeFrom(_meta_proto(meta))  # proto3 merge: only fields set in ``meta`` override
        return merged


def _meta_proto(meta: MetaLike) -> pb.BatchMeta:
    return meta.to_proto() if isinstance(meta, Meta) else meta


def _call_metadata(request_id: str) -> tuple[tuple[str, str], ...]:
    """``x-request-id`` plus the current OpenTelemetry context (traceparent, tracestate, baggage).

    Read once per upload, so every attempt of one upload belongs to the caller's trace and request.
    """
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return (("x-request-id", request_id), *((k.lower(), v) for k, v in carrier.items()))
