"""kafka_compression: every documented value publishes for real, and a codec that cannot work stops startup."""

from __future__ import annotations

import sys
from pathlib import Path

import aiokafka.codec
import grpc
import orjson
import pytest

from tests.conftest import StartVenus
from tests.kafka_helpers import TopicReader, record_batch_codecs
from tests.process_helpers import run_command
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_grpc.server.transport import free_port
from venus_grpc.settings import SettingsError


def _request(category: str, first: int, count: int) -> pb.UploadEventsRequest:
    return pb.UploadEventsRequest(
        meta=pb.BatchMeta(app_id="com.example.shop", category=category, device_id="device-7"),
        events=[pb.Event(id=f"e{i}", payload=orjson.dumps({"screen": "cart", "items": ["sku-1"] * 20}))
                for i in range(first, first + count)],
    )


@pytest.mark.parametrize("codec", ["none", "gzip", "lz4", "zstd", "snappy"])
async def test_every_compression_value_publishes_batches_with_that_codec(
    start: StartVenus, category: str, topic_reader: TopicReader, codec: str
) -> None:
    """Every record batch Venus wrote carries the configured codec, and its events read back whole.

    The codec is read from the raw record batches the broker returns to a Fetch request (Tansu keeps
    the producer's batches as they were sent), not from the producer's settings: a producer that
    silently stayed uncompressed fails here. A request of 3 events (sent event by event) and one of 20
    (sent as its own record batch) cover both ways Venus hands events to the producer.
    """
    venus = await start(kafka_compression=codec)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        stub = pb_grpc.IngestServiceStub(channel)
        small = await stub.UploadEvents(_request(category, 0, 3), timeout=10)
        large = await stub.UploadEvents(_request(category, 3, 20), timeout=10)
    assert small.code == large.code == pb.RESULT_CODE_ALL_SUCCESS

    topic = venus.settings.topic_for(category)
    batches = await record_batch_codecs(venus.settings.kafka_bootstrap, topic)  # before the reader's sentinels
    assert {name for name, _ in batches} == {codec}
    assert sum(count for _, count in batches) == 23
    published = await topic_reader.read_all(topic)
    assert sorted(m.value["event"]["id"] for m in published) == sorted(f"e{i}" for i in range(23))


async def test_start_venus_refuses_a_codec_whose_library_is_missing(
    start: StartVenus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starting Venus in-process with lz4 but no codec library raises a SettingsError naming the setting.

    A fault the test cannot cause for real (the library is installed): aiokafka's codec module is told
    that cramjam did not import, which is what its availability check reads.
    """
    monkeypatch.setattr(aiokafka.codec, "cramjam", None)
    with pytest.raises(SettingsError, match=r"VENUS_KAFKA_COMPRESSION='lz4' cannot be used: .*pip install"):
        await start(kafka_compression="lz4")


@pytest.mark.parametrize(("given", "named"), [
    (["VENUS_KAFKA_COMPRESSION=zstd"], "VENUS_KAFKA_COMPRESSION='zstd' cannot be used"),
    (["--kafka-compression", "zstd"], "--kafka-compression='zstd' is not valid"),
], ids=["environment", "flag"])
async def test_serve_refuses_a_codec_whose_library_is_missing(tmp_path: Path, given: list[str], named: str) -> None:
    """`venus serve` with zstd but no codec library exits 2 naming the setting as given and the fix, before serving.

    The codec library is installed with Venus, so its absence is a fault the test cannot cause for real:
    a module named cramjam that fails to import, first on PYTHONPATH, hides the installed one, as if
    it had not been installed.
    """
    (tmp_path / "cramjam.py").write_text('raise ImportError("hidden by the test, as if not installed")\n')
    environment = [f"PYTHONPATH={tmp_path}", "VENUS_HOST=127.0.0.1", "VENUS_PORT=0", "VENUS_METRICS_ENABLED=false",
                   f"VENUS_KAFKA_BOOTSTRAP=127.0.0.1:{free_port()}", "VENUS_TRACES_EXPORTER=none"]
    variables, flags = [g for g in given if "=" in g], [g for g in given if "=" not in g]
    done = await run_command(["env", *environment, *variables, sys.executable, "-m", "venus_grpc", "serve", *flags],
                             timeout_s=30)

    assert done.returncode == 2, done.stderr
    assert f"venus: bad setting: {named}" in done.stderr
    assert "aiokafka finds no zstd codec" in done.stderr
    assert "pip install venus-gateway" in done.stderr
    assert "Traceback" not in done.stderr
