"""A refused call leaves nothing behind: once answered, its request is freed at once, not at some later collection.

grpc.aio keeps the error of ``context.abort()`` on the call's state, and that error's traceback held the
handler's frames, the request among them, in a reference cycle: only Python's cyclic collector freed it, and
that runs by counts of objects, not bytes. A flood of large refused requests piled up hundreds of MiB before
a collection (fault scenario 10 peaked at 384 MiB). Counted here in the server's own process (the in-process
Venus) with the cyclic collector paused, so that only what is freed at once counts as freed.
"""

from __future__ import annotations

import gc

import grpc
import pytest

from venus_grpc import Venus
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc

CALLS = 30


def _live_requests() -> int:
    return sum(isinstance(o, pb.UploadEventsRequest) for o in gc.get_objects())


@pytest.mark.parametrize("labels", [{"blob": "x" * 2000}, {}], ids=["labels-too-large", "no-events"])
async def test_refused_uploads_free_their_request_at_once(venus: Venus, category: str,
                                                          labels: dict[str, str]) -> None:
    """Thirty refused uploads, and none of their requests is still alive in the server once answered."""
    request = pb.UploadEventsRequest(meta=pb.BatchMeta(app_id="leak", category=category, labels=labels),
                                     events=[pb.Event(id="e", payload=b"{}")] if labels else [])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        stub = pb_grpc.IngestServiceStub(channel)
        gc.collect()
        gc.disable()
        try:
            before = _live_requests()
            for _ in range(CALLS):
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await stub.UploadEvents(request, timeout=5)
                assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            left = _live_requests() - before
        finally:
            gc.enable()
    assert left <= 1  # at most the last one, until its call object goes
