"""Running a command line tool from a test whose event loop also runs the server under test."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Finished:
    """What a command left behind."""

    returncode: int
    stdout: str
    stderr: str


async def run_command(command: list[str], *, timeout_s: float, cwd: Path | None = None,
                      env: Mapping[str, str] | None = None) -> Finished:
    """Run ``command`` to its end without blocking the loop; the test fails if it takes over ``timeout_s``.

    ``env`` is added to this process's environment for the command.
    """
    process = await asyncio.create_subprocess_exec(*command, cwd=cwd, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})})
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"{' '.join(command)} did not finish within {timeout_s} s")
    assert process.returncode is not None
    return Finished(process.returncode, stdout.decode(), stderr.decode())
