"""Batches over one long-lived StreamEvents stream: what ``emit`` sends by default.

A unary call per batch pays for a new HTTP/2 stream, its headers and the server's per-call work every
time; on one stream a batch is one more message, answered with its sequence number. The stream is
opened on the first batch and again after it ends (the server's connection age, a restart: the batches
it had not answered fail with UNAVAILABLE, which the retry policy resends). A server that does not
serve StreamEvents (UNIMPLEMENTED) makes :class:`StreamSender` report :attr:`StreamSender.refused`, and
the client sends every later batch as a unary call.
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


class StreamSender:
    """Sends one batch at a time over the current stream and awaits its answer."""

    def __init__(self, open_stream: Callable[[], Any]) -> None:
        self._open_stream = open_stream  # the stub's StreamEvents with the client's metadata bound
        self._call: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[pb.StreamEventsResponse]] = {}
        self._sequence = itertools.count(1)
        self._write_lock = asyncio.Lock()
        self.refused = False  # the server does not serve StreamEvents: send unary calls instead

    async def send(self, request: pb.UploadEventsRequest, *, timeout_s: float) -> pb.UploadEventsResponse:
        """The response to ``request``; raises :class:`CallFailed` as a failed unary call would."""
        call = self._current()
        sequence = next(self._sequence)
        answer: asyncio.Future[pb.StreamEventsResponse] = asyncio.get_running_loop().create_future()
        self._pending[sequence] = answer
        try:
            async with self._write_lock:  # one write at a time on a grpc.aio stream
                await call.write(pb.StreamEventsRequest(sequence=sequence, batch=request))
            reply = await asyncio.wait_for(answer, timeout=timeout_s)
        except TimeoutError:
            raise CallFailed(CallFailure(grpc.StatusCode.DEADLINE_EXCEEDED, "no answer on the stream in time",
                                         (), None)) from None
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as err:  # the write found the stream ended
            raise CallFailed(await self._ended(call, err)) from err
        finally:
            self._pending.pop(sequence, None)
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
        # A write on a failed stream reports INTERNAL from the client's core, whatever ended the stream.
        return CallFailure(grpc.StatusCode.UNAVAILABLE, f"the stream ended ({code}): {err}", (), None)

    async def close(self) -> None:
        """End the stream: no more batches; those in flight were awaited by their senders."""
        call, reader = self._call, self._reader
        self._call = self._reader = None
        if call is not None:
            try:
                async with self._write_lock:
                    await call.done_writing()
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                pass  # the stream had ended already
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    def _current(self) -> Any:
        if self._call is None or self._call.done():
            self._call = self._open_stream()
            self._reader = asyncio.get_running_loop().create_task(self._read(self._call), name="venus-stream-reader")
        return self._call

    async def _read(self, call: Any) -> None:
        """Hand each answer to its sender; when the stream ends, fail the batches it did not answer."""
        failure = CallFailure(grpc.StatusCode.UNAVAILABLE, "the stream ended before answering the batch", (), None)
        try:
            async for reply in call:
                answer = self._pending.get(reply.sequence)
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
            if self._call is call:
                self._call = None
            for answer in self._pending.values():
                if not answer.done():
                    answer.set_exception(CallFailed(failure))
