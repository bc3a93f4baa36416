"""The transport ceiling: a grpc.aio server that parses UploadEventsRequest and answers OK for every event.

Run by ``run`` as its own process (``python -m benchmarks.empty_server --port P``). It does what
Venus cannot avoid doing in Python - accept the RPC, parse the same request, build and serialize
one result per event - and nothing else (no validation, enrichment, Kafka, tracing or metrics).
Venus can never be faster than this, so Venus/transport says how much the gateway's own work costs.
It serves grpc.health.v1 too, so ``run`` waits for it exactly as it waits for Venus.

``--processes N`` runs N servers on one port with SO_REUSEPORT, as ``venus serve --workers N`` does,
so the ceiling has as many cores to work with as Venus. The first process starts the others and
stops them by pid when it gets SIGTERM.

``--work-us`` and ``--refuse-past`` make it the overload baseline: it burns that much CPU per call
(in slices, yielding to the event loop between them as Venus's stages do) and refuses a call at once
with RESOURCE_EXHAUSTED while that many calls are in flight in its process. Under the same open-loop
overload it shows what any grpc.aio server with Venus's cost per call achieves, whatever it sheds by.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from benchmarks.phases import run_async
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb

SERVICE = "venus.v1.IngestService"
_BACKEND_ID = "00000000-0000-4000-8000-000000000000"  # as long as Venus's uuid4 text: same response size
_REQUEST_ID = "0" * 32
_WORK_SLICE_S = 250e-6  # CPU between two yields to the event loop

Handler = Callable[[pb.UploadEventsRequest, grpc.aio.ServicerContext], Awaitable[pb.UploadEventsResponse]]


@dataclass(frozen=True)
class Work:
    """What each call costs beyond parsing and answering, and when a call is refused instead."""

    cpu_us: float = 0.0
    refuse_past: int = 0  # calls in flight in this process; 0: never refuse


def handler(work: Work) -> Handler:
    """UploadEvents doing ``work`` before it answers."""
    in_flight = 0

    async def upload_events(request: pb.UploadEventsRequest,
                            context: grpc.aio.ServicerContext) -> pb.UploadEventsResponse:
        nonlocal in_flight
        if work.refuse_past and in_flight >= work.refuse_past:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy: retry later")
        in_flight += 1
        try:
            await _burn(work.cpu_us / 1e6)
        finally:
            in_flight -= 1
        return answer(request)

    return upload_events


async def _burn(cpu_s: float) -> None:
    """Spend ``cpu_s`` of this thread's CPU, yielding to the loop every slice."""
    while cpu_s > 0:
        piece = min(cpu_s, _WORK_SLICE_S)
        until = time.thread_time() + piece
        while time.thread_time() < until:
            pass
        cpu_s -= piece
        await asyncio.sleep(0)


def answer(request: pb.UploadEventsRequest) -> pb.UploadEventsResponse:
    """One OK result per event, in request order."""
    count = len(request.events)
    return pb.UploadEventsResponse(
        code=pb.RESULT_CODE_ALL_SUCCESS,
        message=f"{count} of {count} events published",
        results=[pb.EventResult(id=e.id, backend_id=_BACKEND_ID, code=pb.EVENT_CODE_OK) for e in request.events],
        request_id=_REQUEST_ID,
    )


async def serve(host: str, port: int, *, reuse_port: bool, work: Work) -> None:
    """Serve until SIGTERM or SIGINT."""
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 4 * 1024 * 1024),
                                      ("grpc.so_reuseport", int(reuse_port))])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {
        "UploadEvents": grpc.unary_unary_rpc_method_handler(
            handler(work),
            request_deserializer=pb.UploadEventsRequest.FromString,
            response_serializer=pb.UploadEventsResponse.SerializeToString,
        ),
    }),))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in ("", SERVICE):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    server.add_insecure_port(f"{host}:{port}")
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await server.stop(1.0)


def _serve_one(host: str, port: int, reuse_port: bool, work: Work) -> None:
    run_async(serve(host, port, reuse_port=reuse_port, work=work))


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``--host``/``--port``/``--processes`` and serve."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.empty_server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--processes", type=int, default=1, help="servers sharing the port (SO_REUSEPORT)")
    parser.add_argument("--work-us", type=float, default=0.0, help="CPU µs to burn per call")
    parser.add_argument("--refuse-past", type=int, default=0,
                        help="refuse calls with RESOURCE_EXHAUSTED while this many are in flight (0: never)")
    args = parser.parse_args(argv)
    reuse_port = args.processes > 1
    work = Work(cpu_us=args.work_us, refuse_past=args.refuse_past)
    context = multiprocessing.get_context("spawn")
    others: list[BaseProcess] = [
        context.Process(target=_serve_one, args=(args.host, args.port, True, work), name=f"empty-server-{i}")
        for i in range(1, args.processes)
    ]
    try:
        for process in others:
            process.start()
        run_async(serve(args.host, args.port, reuse_port=reuse_port, work=work))
    finally:
        for process in others:
            process.terminate()
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
