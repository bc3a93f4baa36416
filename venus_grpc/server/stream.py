"""StreamEvents: many batches over one stream, a bounded number of them processed at once.

A reader takes batches off the stream while fewer than ``max_batches_in_flight_per_stream`` are
being processed or waiting for their answer to be written (so a fast sender, or one that does not read
its answers, is slowed by HTTP/2 flow control, not by our memory: a slot comes back once its answer is
written, not when it is ready); each batch is answered as soon as it is done, carrying its sequence
number. A batch beyond the process's limit of calls in flight (ingest/overload.py) is answered at once
with its RESOURCE_EXHAUSTED rejection and retry delay. Shutdown stops the reader: the batches already
taken are answered, then the stream ends with UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc.ingest.admission import Admission, Caller
from venus_grpc.ingest.checks import MalformedRequest
from venus_grpc.ingest.errors import Reason, RequestError, rejection_of
from venus_grpc.ingest.outcomes import Fate
from venus_grpc.ingest.scope import current_request_id, request_scope
from venus_grpc.server.refuse import refuse

StreamItem = pb.StreamEventsRequest | MalformedRequest
CallerOf = Callable[[grpc.aio.ServicerContext], Caller]


async def serve_stream(admission: Admission, caller_of: CallerOf, requests: AsyncIterator[StreamItem],
                       context: grpc.aio.ServicerContext) -> AsyncIterator[pb.StreamEventsResponse]:
    """Yield one response per batch, in the order they finish."""
    with admission.call():
        if admission.draining:
            _refuse_stream(context)
            return
        window = asyncio.Semaphore(admission.settings.max_batches_in_flight_per_stream)
        answers: asyncio.Queue[pb.StreamEventsResponse | None] = asyncio.Queue()
        running: set[asyncio.Task[None]] = set()
        stream_id = current_request_id()

        async def answer(item: StreamItem) -> None:
            answers.put_nowait(await _answer(admission, item, caller_of(context), stream_id))

        async def read() -> None:
            try:
                async for item in requests:
                    await window.acquire()
                    task = asyncio.create_task(answer(item))
                    running.add(task)
                    task.add_done_callback(running.discard)
            finally:
                if running:
                    await asyncio.wait(set(running))  # answer every batch already taken
                answers.put_nowait(None)

        reader = asyncio.create_task(read(), name="venus-stream-reader")
        admission.watch_stream_reader(reader)
        try:
            while (response := await answers.get()) is not None:
                yield response
                window.release()  # once written: a client reading no answers stops being read (module doc)
        finally:
            reader.cancel()
            for task in list(running):
                task.cancel()
        if reader.cancelled() and admission.draining:
            refuse(context, _shutting_down())


async def _answer(admission: Admission, item: StreamItem, caller: Caller, stream_id: str) -> pb.StreamEventsResponse:
    if isinstance(item, MalformedRequest):
        error = RequestError(Reason.MALFORMED_REQUEST,
                             f"a stream message is not a valid venus.v1.StreamEventsRequest: {item.error}")
        Fate("grpc").refused(error)
        return pb.StreamEventsResponse(rejection=rejection_of(error))
    with request_scope(f"{stream_id}.{item.sequence}"):
        try:
            with admission.tracer.start_as_current_span("venus.stream.batch",
                                                        attributes={"venus.sequence": item.sequence}):
                response = await admission.upload(item.batch, caller)
            return pb.StreamEventsResponse(sequence=item.sequence, response=response)
        except RequestError as error:
            return pb.StreamEventsResponse(sequence=item.sequence, rejection=rejection_of(error))


def _refuse_stream(context: grpc.aio.ServicerContext) -> None:
    error = _shutting_down()
    Fate("grpc").refused(error)
    refuse(context, error)


def _shutting_down() -> RequestError:
    return RequestError(Reason.SHUTTING_DOWN,
                        "Venus is shutting down: send the unanswered batches again on a new stream",
                        retry_after_s=0.5)
