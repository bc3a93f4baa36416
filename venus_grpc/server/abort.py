"""Ending a gRPC call with a request-level failure: its status, message and google.rpc details."""

from __future__ import annotations

from typing import NoReturn

import grpc
from grpc_status import rpc_status

from venus_grpc.ingest.errors import RequestError, status_of


async def abort(context: grpc.aio.ServicerContext, error: RequestError) -> NoReturn:
    """End the RPC with ``error``, keeping the trailing metadata already set (``x-request-id``)."""
    status = rpc_status.to_status(status_of(error))
    kept = tuple(context.trailing_metadata() or ())
    await context.abort(status.code, status.details, kept + tuple(status.trailing_metadata))
    raise AssertionError("context.abort returned")  # pragma: no cover - abort always raises
