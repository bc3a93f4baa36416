"""max_connection_age_s: the server closes old connections so that clients spread over new instances."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import StartVenus

STATE_CHANGE_DEADLINE_S = 15.0


async def _check(channel: grpc.aio.Channel) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    return int(response.status)


async def test_an_old_connection_is_closed_and_the_client_reconnects(start: StartVenus) -> None:
    """Past max_connection_age_s the server sends GOAWAY: the channel leaves READY, then reconnects on the next call."""
    venus = await start(max_connection_age_s=0.5, max_connection_age_grace_s=0.5)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        assert await _check(channel) == health_pb2.HealthCheckResponse.SERVING
        assert channel.get_state() is grpc.ChannelConnectivity.READY
        await asyncio.wait_for(channel.wait_for_state_change(grpc.ChannelConnectivity.READY),
                               timeout=STATE_CHANGE_DEADLINE_S)
        assert channel.get_state() is not grpc.ChannelConnectivity.READY
        assert await _check(channel) == health_pb2.HealthCheckResponse.SERVING
