"""StreamEvents: many batches over one stream, a bounded number of them processed at once.

A reader takes batches off the stream while fewer than ``max_batches_in_flight_per_stream`` are
being processed (so a fast sender is slowed by HTTP/2 flow control, not by our memory); each batch
is answered as soon as it is done, carrying its sequence number. Shutdown stops the reader: the
batches already taken are answered, then the stream ends with UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import structlog
from opentelemetry import baggage
from opentelemetry import context as otel_context

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc.ingest.errors import Reason, RequestError, abort, rejection_of
from venus_grpc.server.interceptors import REQUEST_ID_KEY, current_request_id
from venus_grpc.server.servicer import IngestServicer, MalformedRequest

StreamItem = pb.StreamEventsRequest | MalformedRequest


async def stream_events(servicer: IngestServicer, requests: AsyncIterator[StreamItem],
                        context: grpc.aio.ServicerContext) -> AsyncIterator[pb.StreamEventsResponse]:
    """The StreamEvents RPC: yields one response per batch, in the order they finish."""
    with servicer.rpc():
        if servicer.draining:
            await abort(context, _shutting_down())
        window = asyncio.Semaphore(servicer.settings.max_batches_in_flight_per_stream)
        answers: asyncio.Queue[pb.StreamEventsResponse | None] = asyncio.Queue()
        running: set[asyncio.Task[None]] = set()
        stream_id = current_request_id()

        async def answer(item: StreamItem) -> None:
            try:
                answers.put_nowait(await _answer(servicer, item, context, stream_id))
            finally:
                window.release()

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
        servicer.watch_stream_reader(reader)
        try:
            while (response := await answers.get()) is not None:
                yield response
        finally:
            reader.cancel()
            for task in list(running):
                task.cancel()
        if reader.cancelled() and servicer.draining:
            await abort(context, _shutting_down())


async def _answer(servicer: IngestServicer, item: StreamItem, context: grpc.aio.ServicerContext,
                  stream_id: str) -> pb.StreamEventsResponse:
    if isinstance(item, MalformedRequest):
        error = RequestError(Reason.MALFORMED_REQUEST,
                             f"a stream message is not a valid venus.v1.StreamEventsRequest: {item.error}")
        return pb.StreamEventsResponse(rejection=rejection_of(error))
    request_id = f"{stream_id}.{item.sequence}"
    token = otel_context.attach(baggage.set_baggage(REQUEST_ID_KEY, request_id))
    bound = structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        with servicer.tracer.start_as_current_span("venus.stream.batch", attributes={"venus.sequence": item.sequence}):
            response = await servicer.process(item.batch, context)
        return pb.StreamEventsResponse(sequence=item.sequence, response=response)
    except RequestError as error:
        return pb.StreamEventsResponse(sequence=item.sequence, rejection=rejection_of(error))
    finally:
        structlog.contextvars.reset_contextvars(**bound)
        otel_context.detach(token)


def _shutting_down() -> RequestError:
    return RequestError(Reason.SHUTTING_DOWN,
                        "Venus is shutting down: send the unanswered batches again on a new stream",
                        retry_after_s=0.5)
