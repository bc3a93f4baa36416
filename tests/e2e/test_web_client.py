"""The web client's page, in a real headless Chromium, uploads a batch to Venus's HTTP port across origins (CORS).

The page (clients/web/index.html and its script, bundled here with esbuild) is served by a static server on
one port and Venus's HTTP port is another, so the browser sends a real CORS preflight before each upload.
A Node script drives Debian's Chromium with playwright-core, presses Send and reads back what the page shows.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import StartVenus
from tests.kafka_helpers import TopicReader
from venus_grpc.tools.process import OwnedProcess

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "clients" / "web"
NODE_BIN = ROOT / "node_modules" / ".bin"
DRIVER = Path(__file__).with_name("drive_web_page.mjs")
BUILD_TIMEOUT_S = 60
PAGE_TIMEOUT_MS = 20_000  # each browser step (launch, load, the upload's answer)
DRIVE_TIMEOUT_S = 60  # the whole Node run; past it the driver and its browser are stopped by pid
ALLOWED_ELSEWHERE = "https://app.example.com"


def _tool(path: Path | str | None, install: str) -> str:
    if path is None or not Path(path).exists():
        pytest.fail(f"{path or 'a tool'} is missing: {install} (scripts/test does it)")
    return str(path)


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """index.html with its script type-checked (tsc) and bundled (esbuild) beside it, as a static site."""
    site = tmp_path_factory.mktemp("web-site")
    shutil.copy(WEB / "index.html", site / "index.html")
    steps = [
        [_tool(NODE_BIN / "tsc", "npm install"), "-p", str(WEB)],
        [_tool(NODE_BIN / "esbuild", "npm install"), str(WEB / "src" / "page.ts"), "--bundle", "--format=iife",
         "--target=es2022", f"--outfile={site / 'dist' / 'page.js'}"],
    ]
    for step in steps:
        done = subprocess.run(step, cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        assert done.returncode == 0, f"{' '.join(step)} failed:\n{done.stdout}{done.stderr}"
    return site


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # a test run needs no access log
        pass


@pytest.fixture
def page_origin(site_dir: Path) -> Iterator[str]:
    """The origin of a static HTTP server on 127.0.0.1 serving the site; shut down after the test."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_QuietHandler, directory=str(site_dir)))
    thread = threading.Thread(target=server.serve_forever, name="web-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def _press_send(url: str, log_dir: Path) -> dict[str, Any]:
    """Open ``url`` in headless Chromium, press Send, and return what the page then shows (status and rows)."""
    chromium = _tool(shutil.which("chromium"), "apt-get install chromium")
    driver = OwnedProcess("web-driver", ["node", str(DRIVER), url, chromium, str(PAGE_TIMEOUT_MS)],
                          log_dir=log_dir, cwd=ROOT, pipe_stdout=True)
    try:
        stdout, _ = await asyncio.to_thread(driver.process.communicate, timeout=DRIVE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the browser run took over {DRIVE_TIMEOUT_S} s:\n{driver.log_tail()}")
    finally:
        driver.stop(timeout_s=5)  # it and any Chromium left behind, by pid
    assert driver.process.returncode == 0, f"the browser run failed:\n{driver.log_tail()}"
    shown: dict[str, Any] = json.loads(stdout)
    return shown


def _page_url(origin: str, venus_http_port: int | None, category: str, transport: str) -> str:
    return (f"{origin}/index.html?venus=http://127.0.0.1:{venus_http_port}&category={category}"
            f"&transport={transport}")


@pytest.mark.parametrize("transport", ["connect", "grpc-web"])
async def test_the_page_shows_each_events_result_and_the_ok_one_is_in_kafka(
    start: StartVenus, page_origin: str, category: str, topic_reader: TopicReader, tmp_path: Path, transport: str
) -> None:
    """A page of an allowed origin shows OK with a backend_id and VALIDATION_ERROR, and Kafka holds the OK event."""
    venus = await start(http_enabled=True, http_port=0, http_cors_origins=frozenset({page_origin}))

    shown = await _press_send(_page_url(page_origin, venus.http_port, category, transport), tmp_path)

    assert shown["state"] == "done", shown
    assert not [line for line in shown["console"] if line.startswith("error")], shown["console"]
    good, bad = shown["rows"]
    assert good["id"].startswith("web-ok-") and good["code"] == "EVENT_CODE_OK"
    assert good["backendId"] and good["message"] == ""
    assert bad["id"].startswith("web-bad-") and bad["code"] == "EVENT_CODE_VALIDATION_ERROR"
    assert bad["backendId"] == "" and bad["message"]
    published = await topic_reader.read_all(f"to_analyzer__0.{category}")
    assert [(m.value["event"]["id"], m.value["backend_id"]) for m in published] == [(good["id"], good["backendId"])]


async def test_a_page_of_an_origin_not_allowed_cannot_upload(
    start: StartVenus, page_origin: str, category: str, topic_reader: TopicReader, tmp_path: Path
) -> None:
    """The browser refuses the upload of a page whose origin is not in http_cors_origins: it shows the failure."""
    venus = await start(http_enabled=True, http_port=0, http_cors_origins=frozenset({ALLOWED_ELSEWHERE}))

    shown = await _press_send(_page_url(page_origin, venus.http_port, category, "connect"), tmp_path)

    assert shown["state"] == "failed" and shown["rows"] == [], shown
    assert "Failed to fetch" in shown["status"]
    assert any("blocked by CORS policy" in line for line in shown["console"]), shown["console"]
    assert await topic_reader.read_all(f"to_analyzer__0.{category}") == []
