"""The README's "Calling it with curl" commands, run as written (the real curl) against a live Venus's HTTP port."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import StartVenus
from tests.process_helpers import run_command
from tests.readme_helpers import ROOT, Example, masked, readme_examples

SECTION = "## Calling it with curl"
README_ADDRESS = "127.0.0.1:8080"
CURL_TIMEOUT_S = 30.0
EXAMPLES = readme_examples(SECTION)


def test_readme_shows_an_upload_and_a_readiness_check() -> None:
    """The section shows one JSON upload and a readiness check, both with curl on the README's address."""
    assert [e.argv[0] for e in EXAMPLES] == ["curl", "curl"]
    assert [e.argv[-1] for e in EXAMPLES] == [f"http://{README_ADDRESS}/venus.v1.IngestService/UploadEvents",
                                              f"http://{README_ADDRESS}/readyz"]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.argv[-1].rsplit("/", 1)[-1] for e in EXAMPLES])
async def test_readme_curl_command_prints_what_the_readme_shows(start: StartVenus, example: Example) -> None:
    """A README command, aimed at a live server with HTTP on, prints the README's output but for per-run ids."""
    if shutil.which("curl") is None:
        pytest.fail("curl is missing: install it (Debian: apt-get install curl)")
    venus = await start(http_enabled=True)
    argv = [arg.replace(README_ADDRESS, f"127.0.0.1:{venus.http_port}") for arg in example.argv]
    done = await run_command(argv, timeout_s=CURL_TIMEOUT_S, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert masked(done.stdout.strip() + "\n") == masked(example.output)
