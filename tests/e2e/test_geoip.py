"""The GeoIP database of a running Venus: replaced without a restart, refused when broken, and dated."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import maxminddb
import pytest

from tests.conftest import StartVenus
from tests.geoip_helpers import copy_of_bundled_database, replace_atomically, write_city_database
from tests.kafka_helpers import TopicReader
from tests.metrics_helpers import scrape, value
from tests.process_helpers import run_command
from venus_grpc import Venus
from venus_grpc._pb.venus.v1 import ingest_pb2 as pb
from venus_grpc._pb.venus.v1 import ingest_pb2_grpc as pb_grpc
from venus_grpc.geoip import bundled_database_path

Logs = Callable[[], list[dict[str, Any]]]
_RELOAD_S = 0.1
_CLIENT_IP = "81.2.69.142"
_SWEDEN, _NORWAY = ("SE", "Sweden"), ("NO", "Norway")
_BUNDLED_BUILD_EPOCH = 1530653216  # 2018-07-03, the maxminddb-geolite2 package's GeoLite2-City
_RELOADED = "GeoIP database reloaded"
_REFUSED = "GeoIP database changed but cannot be used; still using the previous one"
_OUT_OF_DATE = "GeoIP database is out of date"


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """A City database placing the test client's network in Sweden."""
    return write_city_database(tmp_path / "GeoLite2-City.mmdb", {"81.2.69.0/24": _SWEDEN})


async def _upload(venus: Venus, category: str, event_id: str) -> None:
    request = pb.UploadEventsRequest(meta=pb.BatchMeta(app_id="shop", category=category),
                                     events=[pb.Event(id=event_id, ip=_CLIENT_IP, payload=b"{}")])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{venus.port}") as channel:
        response = await pb_grpc.IngestServiceStub(channel).UploadEvents(request, timeout=10)
    assert response.code == pb.RESULT_CODE_ALL_SUCCESS


async def _countries(topic_reader: TopicReader, venus: Venus, category: str) -> dict[str, str]:
    messages = await topic_reader.read_all(venus.settings.topic_for(category))
    return {m.value["event"]["id"]: m.value["geo"]["country_code"] for m in messages}


async def _logged(json_logs: Logs, event: str, *, within_s: float = 10.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + within_s
    while not (lines := [line for line in json_logs() if line["event"].startswith(event)]):
        assert asyncio.get_running_loop().time() < deadline, f"no log line {event!r} within {within_s} s"
        await asyncio.sleep(_RELOAD_S / 2)
    return lines[-1]


async def test_a_replaced_database_places_later_uploads(start: StartVenus, database: Path, category: str,
                                                        topic_reader: TopicReader, json_logs: Logs) -> None:
    """Once the file is replaced by one placing the client in Norway, its next upload is enriched with Norway."""
    venus = await start(geoip_db_path=str(database), geoip_reload_s=_RELOAD_S)
    await _upload(venus, category, "before")
    replace_atomically(write_city_database(database.with_name("new.mmdb"), {"81.2.69.0/24": _NORWAY}), database)
    reloaded = await _logged(json_logs, _RELOADED)
    await _upload(venus, category, "after")
    assert await _countries(topic_reader, venus, category) == {"before": "SE", "after": "NO"}
    assert reloaded["level"] == "info" and reloaded["path"] == str(database)


@pytest.mark.parametrize("broken", ["half_written", "not_a_database", "not_a_city_database"])
async def test_a_broken_replacement_is_refused_and_the_previous_database_kept(
    start: StartVenus, database: Path, category: str, topic_reader: TopicReader, json_logs: Logs, broken: str,
) -> None:
    """A truncated file, junk, or a database of another kind is logged as refused; uploads keep the old answers."""
    venus = await start(geoip_db_path=str(database), geoip_reload_s=_RELOAD_S)
    replacement = database.with_name("new.mmdb")
    if broken == "not_a_city_database":
        write_city_database(replacement, {"81.2.69.0/24": _NORWAY}, database_type="GeoLite2-ASN")
    else:
        complete = write_city_database(replacement, {"81.2.69.0/24": _NORWAY}).read_bytes()
        replacement.write_bytes(complete[: len(complete) // 2] if broken == "half_written" else b"junk" * 100)
    replace_atomically(replacement, database)
    refused = await _logged(json_logs, _REFUSED)
    await _upload(venus, category, "after")
    assert refused["level"] == "error" and refused["path"] == str(database) and str(database) in refused["error"]
    assert await _countries(topic_reader, venus, category) == {"after": "SE"}


async def test_a_good_file_after_a_refused_one_is_used(start: StartVenus, database: Path, category: str,
                                                      topic_reader: TopicReader, json_logs: Logs) -> None:
    """A refused file does not stop later updates: the next good replacement places uploads."""
    venus = await start(geoip_db_path=str(database), geoip_reload_s=_RELOAD_S)
    junk = database.with_name("junk.mmdb")
    junk.write_bytes(b"junk" * 100)
    replace_atomically(junk, database)
    await _logged(json_logs, _REFUSED)
    replace_atomically(write_city_database(database.with_name("new.mmdb"), {"81.2.69.0/24": _NORWAY}), database)
    await _logged(json_logs, _RELOADED)
    await _upload(venus, category, "after")
    assert await _countries(topic_reader, venus, category) == {"after": "NO"}


@pytest.mark.parametrize(("kind", "complaint"), [("junk", "cannot open GeoIP database {path!r}"),
                                                  ("asn", "GeoIP database {path!r} is a GeoLite2-ASN database")])
async def test_serve_refuses_to_start_on_a_database_it_cannot_use(tmp_path: Path, kind: str, complaint: str) -> None:
    """`venus serve` on a junk file or an ASN database exits at once as a bad setting that names the file."""
    path = tmp_path / "GeoLite2-City.mmdb"
    if kind == "junk":
        path.write_bytes(b"junk" * 100)
    else:
        write_city_database(path, {"81.2.69.0/24": _SWEDEN}, database_type="GeoLite2-ASN")
    done = await run_command([sys.executable, "-m", "venus_grpc", "serve", "--geoip-db-path", str(path),
                              "--workers", "1", "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0",
                              "--kafka-bootstrap", "127.0.0.1:1"], timeout_s=60)
    assert done.returncode == 2
    assert "venus: bad setting: VENUS_GEOIP_DB_PATH: " + complaint.format(path=str(path)) in done.stderr


async def test_an_out_of_date_database_is_warned_about_at_startup(start: StartVenus, json_logs: Logs) -> None:
    """The bundled 2018 database makes Venus warn, naming the file, its date and how to replace it."""
    await start()
    warning = await _logged(json_logs, _OUT_OF_DATE, within_s=0)
    assert warning["level"] == "warning"
    assert (warning["path"], warning["built"]) == (bundled_database_path(), "2018-07-03")
    assert "VENUS_GEOIP_DB_PATH" in warning["event"] and "geoipupdate" in warning["event"]


async def test_a_current_database_starts_without_a_warning(start: StartVenus, database: Path,
                                                           json_logs: Logs) -> None:
    """A database built today brings no out-of-date warning."""
    await start(geoip_db_path=str(database))
    assert not [line for line in json_logs() if line["event"].startswith(_OUT_OF_DATE)]


async def test_reloading_an_out_of_date_database_is_warned_about(start: StartVenus, database: Path,
                                                                 json_logs: Logs) -> None:
    """A current database replaced by a 2018 one brings the warning with the reload."""
    await start(geoip_db_path=str(database), geoip_reload_s=_RELOAD_S)
    assert not [line for line in json_logs() if line["event"].startswith(_OUT_OF_DATE)]
    replace_atomically(copy_of_bundled_database(database.with_name("old.mmdb")), database)
    warning = await _logged(json_logs, _OUT_OF_DATE)
    assert (warning["path"], warning["built"]) == (str(database), "2018-07-03")


async def test_the_build_time_metric_follows_the_database_in_use(start: StartVenus, database: Path,
                                                                 json_logs: Logs) -> None:
    """venus_geoip_build_timestamp_seconds is the build time of the database in use, at startup and after a reload."""
    venus = await start(geoip_db_path=str(database), geoip_reload_s=_RELOAD_S)
    with maxminddb.open_database(str(database)) as reader:
        built = reader.metadata().build_epoch
    assert value(await scrape(venus), "venus_geoip_build_timestamp_seconds") == built
    replace_atomically(copy_of_bundled_database(database.with_name("old.mmdb")), database)
    await _logged(json_logs, _RELOADED)
    assert value(await scrape(venus), "venus_geoip_build_timestamp_seconds") == _BUNDLED_BUILD_EPOCH
