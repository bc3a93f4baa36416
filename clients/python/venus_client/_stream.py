"""Batches over one long-lived StreamEvents stream: what ``emit`` sends by default.

A unary call per batch pays for a new HTTP/2 stream, its headers and the server's per-call work every
time; on one stream a batch is one more message, answered with its sequence number. The stream is
opened on the first batch and again after it ends (the server's connection age, a restart: the batches
it had not answered fail with UNAVAILABLE, which the retry policy resends with the same event ids). A
server that does not serve StreamEvents (UNIMPLEMENTED) makes :class:`StreamSender` report
:attr:`StreamSender.refused`, and the client sends every later batch as a unary call.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import grpc

from venus_client._pb.venus.v1 import ingest_pb2 as pb
from venus_client.errors import CallFailed, CallFailure

_STATUS_WAIT_S = 5.0


class _Stream:
    """One StreamEvents call, its reader, and the batches written on it that it has not answered yet."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.pending: dict[int, asyncio.Future[pb.StreamEventsResponse]] = {}
        self.reader: asyncio.Task[None] | None = None


class StreamSender:
    """Sends one batch at a time over the current stream and awaits its answer."""

    def __init__(self, open_stream: Callable[[], Any]) -> None:
        self._open_stream = open_stream  # the stub's StreamEvents with the client's metadata bound
        self._stream: _Stream | None = None
        self._sequence = itertools.count(1)
        self._write_lock = asyncio.Lock()
        self.refused = False  # the server does not serve StreamEvents: send unary calls instead

    async def send(self, request: pb.UploadEventsRequest, *, timeout_s: float) -> pb.UploadEventsResponse:
        """The response to ``request``; raises :class:`CallFailed` as a failed unary call would."""
        stream = self._current()
        sequence = next(self._sequence)
        answer: asyncio.Future[pb.StreamEventsResponse] = asyncio.get_running_loop().create_future()
        stream.pending[sequence] = answer
        try:
            # The write too: flow control can hold it. A write cut short cancels the whole call (grpc.aio), and
            # the other batches on it then fail as UNAVAILABLE, to be sent again on a new stream.
            async with asyncio.timeout(timeout_s):
                async with self._write_lock:  # one write at a time on a grpc.aio stream
                    await stream.call.write(pb.StreamEventsRequest(sequence=sequence, batch=request))
                reply = await answer
        except TimeoutError:
            raise CallFailed(CallFailure(grpc.StatusCode.DEADLINE_EXCEEDED, "no answer on the stream in time",
                                         (), None)) from None
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as err:  # the write found the stream ended
            raise CallFailed(await self._ended(stream.call, err)) from err
        finally:
            stream.pending.pop(sequence, None)
            if answer.done() and not answer.cancelled():
                answer.exception()  # the stream's end may have failed it while the write failed first: seen
        if reply.HasField("rejection"):
            raise CallFailed(CallFailure.from_rejection(reply.rejection))
        return reply.response

    async def _ended(self, call: Any, err: Exception) -> CallFailure:
        """Why a write failed: the stream's own status. The batch never left, so it is safe to send again."""
        try:
            code = await asyncio.wait_for(call.code(), timeout=_STATUS_WAIT_S)
        except (TimeoutError, grpc.aio.AioRpcError):
            code = None
        if code is grpc.StatusCode.UNIMPLEMENTED:
            self.refused = True
            return CallFailure(code, "the server does not serve StreamEvents", (), None)
        return CallFailure(grpc.StatusCode.UNAVAILABLE, f"the stream ended ({code}): {err}", (), None)

    async def close(self) -> None:
        """End the stream: no more batches; those in flight were awaited by their senders."""
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            async with self._write_lock:
                await stream.call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass  # the stream had ended already
        if stream.reader is not None:
            # Let the server end the stream with OK (it has nothing left to answer), rather than cancel it.
            await asyncio.wait({stream.reader}, timeout=_STATUS_WAIT_S)
            stream.reader.cancel()
            await asyncio.gather(stream.reader, return_exceptions=True)

    def _current(self) -> _Stream:
        if self._stream is None or self._stream.call.done():
            stream = self._stream = _Stream(self._open_stream())
            stream.reader = asyncio.get_running_loop().create_task(self._read(stream), name="venus-stream-reader")
        return self._stream

    async def _read(self, stream: _Stream) -> None:
        """Hand each answer to its sender; when the stream ends, fail the batches it did not answer."""
        failure = CallFailure(grpc.StatusCode.UNAVAILABLE, "the stream ended before answering the batch", (), None)
        try:
            async for reply in stream.call:
                answer = stream.pending.get(reply.sequence)
                if answer is not None and not answer.done():
                    answer.set_result(reply)
        except grpc.aio.AioRpcError as err:
            self.refused = self.refused or err.code() is grpc.StatusCode.UNIMPLEMENTED
            failure = CallFailure.from_error(err)
            if err.code() is grpc.StatusCode.INTERNAL:
                # The client's core reports INTERNAL for a stream a failed write broke, whatever the server said:
                # the batches it carried may or may not have been taken, as on a reset connection; send again.
                failure = CallFailure(grpc.StatusCode.UNAVAILABLE, f"the stream broke: {failure.message}", (), None)
        finally:
            if self._stream is stream:
                self._stream = None
            for answer in stream.pending.values():
                if not answer.done():
                    answer.set_exception(CallFailed(failure))
