"""API keys: who may call, and which apps and categories each key may write."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import StartVenus
from tests.kafka_helpers import TopicReader
from venus_grpc import Venus
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_grpc.ingest.keys import hash_key, key_entry, new_key

_RELOAD_S = 0.2


class Keys:
    """A keys file on disk, written the way an operator would."""

    def __init__(self, path: Path, category: str) -> None:
        self.path, self.category = path, category
        self.good, self.other_app, self.revoked = new_key(), new_key(), new_key()
        self._grants = {self.good: ("shop-android", "shop-android"), self.other_app: ("other-app", "other-app")}
        self.write(self.good, self.other_app, revoked=self.revoked)

    def write(self, *keys: str, revoked: str | None = None) -> None:
        """Replace the file with entries for ``keys`` (name and app by who holds them) and a revoked key."""
        entries = []
        for key in keys:
            name, app_id = self._grants.get(key, ("extra", "shop-android"))
            entries.append(key_entry(name, key, [app_id], [self.category]))
        if revoked is not None:
            entries.append(key_entry("old-laptop", revoked, ["shop-android"], ["*"]) + "revoked = true\n")
        self.path.write_text("\n".join(entries))


@pytest.fixture
def keys(tmp_path: Path, category: str) -> Keys:
    """A keys file with a key for shop-android in ``category``, one for another app, and a revoked one."""
    return Keys(tmp_path / "keys.toml", category)


@pytest.fixture
async def keyed_venus(start: StartVenus, keys: Keys) -> Venus:
    """Venus that needs a key for uploads."""
    return await start(api_keys_path=str(keys.path), api_keys_reload_s=_RELOAD_S)


@pytest.fixture
async def channel(keyed_venus: Venus) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to ``keyed_venus``."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{keyed_venus.port}") as opened:
        yield opened


def _request(category: str, *ids: str, app_id: str = "shop-android") -> pb.UploadEventsRequest:
    return pb.UploadEventsRequest(meta=pb.BatchMeta(app_id=app_id, category=category),
                                  events=[pb.Event(id=i, payload=b'{"n": 1}') for i in ids])


async def _refused(channel: grpc.aio.Channel, request: pb.UploadEventsRequest,
                   metadata: tuple[tuple[str, str], ...]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await pb_grpc.IngestServiceStub(channel).UploadEvents(request, metadata=metadata, timeout=5)
    return err.value


@pytest.mark.parametrize("how", ["authorization", "x-api-key"])
async def test_a_valid_key_uploads(channel: grpc.aio.Channel, keys: Keys, category: str,
                                   topic_reader: TopicReader, keyed_venus: Venus, how: str) -> None:
    """A key sent as a bearer token or as x-api-key is accepted and the events reach Kafka."""
    metadata = (("authorization", f"Bearer {keys.good}"),) if how == "authorization" else (("x-api-key", keys.good),)
    response = await pb_grpc.IngestServiceStub(channel).UploadEvents(_request(category, "ok-1"), metadata=metadata,
                                                                     timeout=5)
    assert response.code == pb.RESULT_CODE_ALL_SUCCESS
    published = await topic_reader.read_all(keyed_venus.settings.topic_for(category))
    assert [m.value["event"]["id"] for m in published] == ["ok-1"]


async def test_refused_keys_get_the_right_status_and_publish_nothing(
    channel: grpc.aio.Channel, keys: Keys, category: str, topic_reader: TopicReader, keyed_venus: Venus,
) -> None:
    """Missing, unknown and revoked keys are UNAUTHENTICATED; another app's key is PERMISSION_DENIED."""
    cases: list[tuple[pb.UploadEventsRequest, tuple[tuple[str, str], ...], grpc.StatusCode, str]] = [
        (_request(category, "no-key"), (), grpc.StatusCode.UNAUTHENTICATED, "an API key is required"),
        (_request(category, "bad-key"), (("authorization", "Bearer vk_not-a-key"),),
         grpc.StatusCode.UNAUTHENTICATED, "not valid"),
        (_request(category, "revoked"), (("x-api-key", keys.revoked),), grpc.StatusCode.UNAUTHENTICATED,
         "'old-laptop' was revoked"),
        (_request(category, "wrong-app"), (("x-api-key", keys.other_app),), grpc.StatusCode.PERMISSION_DENIED,
         "may not write app_id 'shop-android'"),
        (_request("OTHER_CATEGORY", "wrong-cat"), (("x-api-key", keys.good),), grpc.StatusCode.PERMISSION_DENIED,
         "may not write category 'OTHER_CATEGORY'"),
    ]
    for request, metadata, status, message in cases:
        err = await _refused(channel, request, metadata)
        assert (err.code(), message in (err.details() or "")) == (status, True), err.details()
        for _, value in metadata:
            assert value.split()[-1] not in (err.details() or "")  # the key is never echoed
    assert await topic_reader.read_all(keyed_venus.settings.topic_for(category)) == []
    assert await topic_reader.read_all(keyed_venus.settings.topic_for("OTHER_CATEGORY")) == []


async def test_health_and_reflection_need_no_key(channel: grpc.aio.Channel) -> None:
    """Probes and grpcurl's reflection work without a key; uploads do not."""
    health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
    services = [s.name async for answer in reflection for s in answer.list_services_response.service]
    assert "venus.v1.IngestService" in services


async def test_streams_need_a_key_and_each_batch_is_authorized(channel: grpc.aio.Channel, keys: Keys,
                                                               category: str) -> None:
    """A stream without a key ends UNAUTHENTICATED; with a key, a batch of another app is rejected alone."""
    stub = pb_grpc.IngestServiceStub(channel)
    call = stub.StreamEvents(timeout=5)
    await call.write(pb.StreamEventsRequest(sequence=1, batch=_request(category, "s-1")))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED

    call = stub.StreamEvents(metadata=(("x-api-key", keys.good),), timeout=5)
    await call.write(pb.StreamEventsRequest(sequence=1, batch=_request(category, "s-2")))
    await call.write(pb.StreamEventsRequest(sequence=2, batch=_request(category, "s-3", app_id="other-app")))
    await call.done_writing()
    answers = {r.sequence: r async for r in call}
    assert answers[1].response.code == pb.RESULT_CODE_ALL_SUCCESS
    assert answers[2].rejection.status_code == grpc.StatusCode.PERMISSION_DENIED.value[0]


async def test_the_keys_file_is_reloaded_without_a_restart(channel: grpc.aio.Channel, keys: Keys,
                                                           category: str) -> None:
    """A key added to the file starts working, and a key removed from it stops, within the reload period."""
    added = new_key()
    keys.write(keys.good, added)
    stub = pb_grpc.IngestServiceStub(channel)
    response = await _eventually(lambda: stub.UploadEvents(_request(category, "new-key"),
                                                           metadata=(("x-api-key", added),), timeout=5))
    assert response.code == pb.RESULT_CODE_ALL_SUCCESS
    keys.write(added)
    err = await _eventually_refused(channel, _request(category, "gone"), (("x-api-key", keys.good),))
    assert err.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_keys_never_reach_logs_spans_or_kafka(
    channel: grpc.aio.Channel, keys: Keys, category: str, topic_reader: TopicReader, keyed_venus: Venus,
    json_logs: Callable[[], list[dict[str, Any]]], spans: InMemorySpanExporter,
) -> None:
    """Neither a good nor a refused key appears in a log line, a span or a Kafka message."""
    stub = pb_grpc.IngestServiceStub(channel)
    await stub.UploadEvents(_request(category, "k-1"), metadata=(("authorization", f"Bearer {keys.good}"),),
                            timeout=5)
    await _refused(channel, _request(category, "k-2"), (("x-api-key", keys.revoked),))
    published = await topic_reader.read_all(keyed_venus.settings.topic_for(category))
    seen = json.dumps(json_logs()) + json.dumps([s.to_json() for s in spans.get_finished_spans()])
    seen += json.dumps([(m.value, m.headers) for m in published])
    assert published and json_logs()
    for secret in (keys.good, keys.revoked, hash_key(keys.good)):
        assert secret not in seen


async def _eventually(call: Callable[[], Any], within_s: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(_RELOAD_S)


async def _eventually_refused(channel: grpc.aio.Channel, request: pb.UploadEventsRequest,
                              metadata: tuple[tuple[str, str], ...], within_s: float = 5.0) -> grpc.aio.AioRpcError:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        try:
            await pb_grpc.IngestServiceStub(channel).UploadEvents(request, metadata=metadata, timeout=5)
        except grpc.aio.AioRpcError as err:
            return err
        assert asyncio.get_running_loop().time() < deadline, "the removed key still works"
        await asyncio.sleep(_RELOAD_S)
