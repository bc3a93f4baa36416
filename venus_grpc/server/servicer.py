"""venus.v1.IngestService over gRPC: decode, hand the batch to admission, encode the answer or the status."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc.ingest.admission import Admission, Caller
from venus_grpc.ingest.checks import MalformedRequest, request_parser
from venus_grpc.ingest.errors import RequestError
from venus_grpc.ingest.scope import current_grant
from venus_grpc.server.client_address import client_ip
from venus_grpc.server.refuse import refuse
from venus_grpc.server.stream import StreamItem, serve_stream
from venus_grpc.settings import SERVICE_NAME


class IngestServicer:
    """The two RPCs; everything they decide is admission's."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self._trusted_proxies = admission.settings.trusted_proxies

    async def upload_events(self, request: pb.UploadEventsRequest | MalformedRequest,
                            context: grpc.aio.ServicerContext) -> pb.UploadEventsResponse | None:
        """The UploadEvents RPC: the answer, or None once the call's status says why the batch was refused."""
        with self._admission.call():
            try:
                return await self._admission.upload(request, self.caller(context))
            except RequestError as error:
                refuse(context, error)
                return None

    def stream_events(self, requests: AsyncIterator[StreamItem],
                      context: grpc.aio.ServicerContext) -> AsyncIterator[pb.StreamEventsResponse]:
        """The StreamEvents RPC."""
        return serve_stream(self._admission, self.caller, requests, context)

    def caller(self, context: grpc.aio.ServicerContext) -> Caller:
        """What admission needs to know of this call's client."""
        return Caller(ip=client_ip(context, self._trusted_proxies), time_left_s=context.time_remaining(),
                      grant=current_grant())


def add_ingest_service(server: grpc.aio.Server, admission: Admission) -> None:
    """Serve venus.v1.IngestService on ``server``, with deserializers that never raise."""
    servicer = IngestServicer(admission)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, {
        "UploadEvents": grpc.unary_unary_rpc_method_handler(
            servicer.upload_events,
            request_deserializer=request_parser(pb.UploadEventsRequest),
            response_serializer=pb.UploadEventsResponse.SerializeToString,
        ),
        "StreamEvents": grpc.stream_stream_rpc_method_handler(
            servicer.stream_events,
            request_deserializer=request_parser(pb.StreamEventsRequest),
            response_serializer=pb.StreamEventsResponse.SerializeToString,
        ),
    }),))
