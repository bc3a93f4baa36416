"""kafka_ssl_ca_path: a CA file that cannot be used stops `venus serve` and the tools with one line naming it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.process_helpers import run_command
from venus_grpc.server.transport import free_port

_EXPECTED = "expected a readable PEM file of the brokers' CA"


def _bad_ca(tmp_path: Path, kind: str) -> Path:
    if kind == "not PEM":
        (tmp_path / "ca.pem").write_text("this is not a certificate\n")
    return tmp_path / "ca.pem"  # "missing": never written


@pytest.mark.parametrize("kind", ["missing", "not PEM"])
@pytest.mark.parametrize("given", ["environment", "flag"])
async def test_serve_refuses_a_kafka_ca_it_cannot_use_before_serving(tmp_path: Path, kind: str, given: str) -> None:
    """`venus serve` over SSL with a missing or non-PEM CA exits 2 naming the setting as given, not with every
    worker's traceback."""
    ca = _bad_ca(tmp_path, kind)
    environment = ["VENUS_HOST=127.0.0.1", "VENUS_PORT=0", "VENUS_METRICS_ENABLED=false", "VENUS_WORKERS=2",
                   f"VENUS_KAFKA_BOOTSTRAP=127.0.0.1:{free_port()}", "VENUS_TRACES_EXPORTER=none",
                   "VENUS_KAFKA_SECURITY_PROTOCOL=SSL"]
    flags: list[str] = []
    if given == "flag":
        flags, named = ["--kafka-ssl-ca-path", str(ca)], f"--kafka-ssl-ca-path='{ca}'"
    else:
        environment.append(f"VENUS_KAFKA_SSL_CA_PATH={ca}")
        named = f"VENUS_KAFKA_SSL_CA_PATH='{ca}'"
    done = await run_command(["env", *environment, sys.executable, "-m", "venus_grpc", "serve", *flags], timeout_s=30)

    assert done.returncode == 2, done.stderr
    assert f"venus: bad setting: {named} is not valid: {_EXPECTED}" in done.stderr
    assert "Traceback" not in done.stderr


async def test_a_tool_refuses_a_kafka_ca_it_cannot_use(tmp_path: Path) -> None:
    """`venus tail` with a missing CA says so in one line and exits 2, before it tries the brokers."""
    ca = _bad_ca(tmp_path, "missing")
    done = await run_command([sys.executable, "-m", "venus_grpc", "tail", "PERF_CRASH", "--bootstrap",
                              f"127.0.0.1:{free_port()}", "--kafka-security-protocol", "SASL_SSL",
                              "--kafka-sasl-username", "operator", "--kafka-ssl-ca-path", str(ca)],
                             timeout_s=30, env={"VENUS_KAFKA_SASL_PASSWORD": "pw"})

    assert done.returncode == 2, done.stderr
    assert f"venus: bad setting: --kafka-ssl-ca-path='{ca}' is not valid: {_EXPECTED}" in done.stderr
    assert "No such file or directory" in done.stderr
    assert "Traceback" not in done.stderr
