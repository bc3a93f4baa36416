"""The operator tools (send, tail; the Kafka settings of trace-logs and canary) and `venus dev`, as users run them."""

from __future__ import annotations

import asyncio
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import trustme

from tests.conftest import StartVenus
from tests.process_helpers import run_command
from venus_grpc import Venus
from venus_grpc.ingest.keys import key_entry, new_key
from venus_grpc.server.transport import free_port
from venus_grpc.tools.devbroker import EmbeddedBroker
from venus_grpc.tools.process import OwnedProcess


async def _venus_command(*args: str, env: Mapping[str, str] | None = None) -> tuple[int, str]:
    done = await run_command([sys.executable, "-m", "venus_grpc", *args], timeout_s=60, env=env)
    return done.returncode, done.stdout + done.stderr


@dataclass(frozen=True)
class Secured:
    """A Venus serving TLS and requiring API keys, and the files a user of `venus send` holds for it."""

    target: str
    ca_path: Path  # the CA that signed Venus's certificate
    key_path: Path  # a file holding a key for demo-app, the app `venus send` writes as
    key: str
    files: Path  # where a test may write more (client certificates)
    ca: trustme.CA


async def _secured_venus(start: StartVenus, category: str, files: Path, *, mtls: bool = False) -> Secured:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    leaf.private_key_pem.write_to_path(str(files / "tls.key"))
    leaf.cert_chain_pems[0].write_to_path(str(files / "tls.crt"))
    ca.cert_pem.write_to_path(str(files / "ca.pem"))
    key = new_key()
    (files / "keys.toml").write_text(key_entry("operator", key, ["demo-app"], [category]))
    (files / "send.key").write_text(key + "\n")
    venus = await start(tls_cert_path=str(files / "tls.crt"), tls_key_path=str(files / "tls.key"),
                        api_keys_path=str(files / "keys.toml"),
                        tls_client_ca_path=str(files / "ca.pem") if mtls else "")
    return Secured(f"127.0.0.1:{venus.port}", files / "ca.pem", files / "send.key", key, files, ca)


@pytest.fixture
async def secured(start: StartVenus, category: str, tmp_path: Path) -> Secured:
    """Venus with TLS and API keys on, as a production deployment runs it."""
    return await _secured_venus(start, category, tmp_path)


async def test_send_then_tail_shows_the_published_events(
    venus: Venus, broker: EmbeddedBroker, category: str
) -> None:
    """`venus send` reports every event OK and `venus tail` prints them with their trace headers (Kafka PLAINTEXT)."""
    code, out = await _venus_command("send", "--target", f"127.0.0.1:{venus.port}", "--category", category,
                                     "--events", "3", "--batches", "2")
    assert code == 0, out
    assert "6 events OK, 0 not OK" in out

    code, out = await _venus_command("tail", category, "--bootstrap", broker.bootstrap, "--from-beginning",
                                     "--max-messages", "4", "--timeout-s", "10",
                                     "--kafka-security-protocol", "PLAINTEXT")
    assert code == 0, out
    lines = [orjson.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(lines) == 4
    for line in lines:
        assert line["value"]["meta"]["category"] == category
        assert line["headers"]["traceparent"].startswith("00-")
        assert line["value"]["geo"]["country_code"] == "GB"


async def test_send_reaches_a_venus_behind_tls_with_a_key_file(secured: Secured, category: str) -> None:
    """With --ca-path and --api-key-path, `venus send` uploads to a TLS, key-protected Venus and reports OK."""
    code, out = await _venus_command("send", "--target", secured.target, "--category", category, "--events", "3",
                                     "--ca-path", str(secured.ca_path), "--api-key-path", str(secured.key_path))
    assert code == 0, out
    assert "3 events OK, 0 not OK" in out


async def test_send_reads_the_api_key_from_venus_api_key(secured: Secured, category: str) -> None:
    """Without --api-key-path, `venus send` sends the key in the VENUS_API_KEY environment variable."""
    code, out = await _venus_command("send", "--target", secured.target, "--category", category, "--events", "2",
                                     "--ca-path", str(secured.ca_path), env={"VENUS_API_KEY": secured.key})
    assert code == 0, out
    assert "2 events OK, 0 not OK" in out


async def test_send_presents_a_client_certificate_for_mtls(start: StartVenus, category: str,
                                                           tmp_path: Path) -> None:
    """With --client-cert-path and --client-key-path, `venus send` passes a Venus that requires mTLS."""
    secured = await _secured_venus(start, category, tmp_path, mtls=True)
    client = secured.ca.issue_cert("operator@example.com")
    client.cert_chain_pems[0].write_to_path(str(tmp_path / "client.crt"))
    client.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    code, out = await _venus_command("send", "--target", secured.target, "--category", category,
                                     "--ca-path", str(secured.ca_path), "--api-key-path", str(secured.key_path),
                                     "--client-cert-path", str(tmp_path / "client.crt"),
                                     "--client-key-path", str(tmp_path / "client.key"))
    assert code == 0, out
    assert "5 events OK, 0 not OK" in out


async def test_send_without_the_ca_fails_and_says_to_pass_it(secured: Secured, category: str) -> None:
    """Plaintext to a TLS port: `venus send` exits 1 and tells the user to pass the CA with --ca-path."""
    code, out = await _venus_command("send", "--target", secured.target, "--category", category,
                                     "--api-key-path", str(secured.key_path), "--timeout-s", "5")
    assert code == 1, out
    assert "UNAVAILABLE" in out
    assert "--ca-path" in out


async def test_send_without_a_key_fails_and_says_how_to_give_one(secured: Secured, category: str) -> None:
    """No key for a key-protected Venus: `venus send` exits 1 naming --api-key-path and VENUS_API_KEY."""
    code, out = await _venus_command("send", "--target", secured.target, "--category", category,
                                     "--ca-path", str(secured.ca_path))
    assert code == 1, out
    assert "UNAUTHENTICATED" in out
    assert "--api-key-path" in out and "VENUS_API_KEY" in out


async def test_send_with_a_missing_key_file_names_the_flag(secured: Secured, category: str) -> None:
    """A key file that does not exist stops `venus send` before any call, naming the flag and the path."""
    missing = secured.files / "no-such.key"
    code, out = await _venus_command("send", "--target", secured.target, "--category", category,
                                     "--ca-path", str(secured.ca_path), "--api-key-path", str(missing))
    assert code == 2, out
    assert f"--api-key-path={str(missing)!r}" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("tool", ["tail", "trace-logs", "canary"])
async def test_kafka_tools_take_serves_kafka_security_flags(
    tool: str, venus: Venus, broker: EmbeddedBroker, category: str
) -> None:
    """Given serve's SASL flags (the password in its variable), each tool logs in to Kafka with SASL.

    Tansu, the broker of the tests, has no SASL (nor TLS): it refuses the mechanism, and that refusal in the
    tool's output shows the settings reached its consumer. Reading Kafka for real is tested in PLAINTEXT only.
    """
    target, bootstrap = f"127.0.0.1:{venus.port}", broker.bootstrap
    argv = {
        "tail": ["tail", category, "--bootstrap", bootstrap, "--timeout-s", "5"],
        "trace-logs": ["trace-logs", "5b8efff798038103d269b633813fc60c", "--bootstrap", bootstrap, "--timeout-s", "10"],
        "canary": ["canary", "--target", target, "--bootstrap", bootstrap, "--category", category,
                   "--metrics-host", "127.0.0.1", "--metrics-port", "0", "--duration-s", "10"],
    }[tool]
    code, out = await _venus_command(*argv, "--kafka-security-protocol", "SASL_PLAINTEXT",
                                     "--kafka-sasl-mechanism", "SCRAM-SHA-256", "--kafka-sasl-username", "operator",
                                     env={"VENUS_KAFKA_SASL_PASSWORD": "pw"})
    assert code != 0, out
    assert "UnsupportedSaslMechanism" in out


async def test_tail_reads_kafka_settings_from_serves_variables(broker: EmbeddedBroker, category: str) -> None:
    """With no flags, `venus tail` reads the cluster and its SASL settings from the VENUS_KAFKA_* variables.

    Tansu has no SASL: its refusal shows the settings were used (see the test above).
    """
    code, out = await _venus_command("tail", category, "--timeout-s", "5", env={
        "VENUS_KAFKA_BOOTSTRAP": broker.bootstrap, "VENUS_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "VENUS_KAFKA_SASL_USERNAME": "operator", "VENUS_KAFKA_SASL_PASSWORD": "pw"})
    assert code != 0, out
    assert "UnsupportedSaslMechanism" in out


async def test_venus_dev_serves_the_http_port(tmp_path: Path) -> None:
    """`venus dev` serves Connect on its HTTP port (on by default there) and says where, so the README's curl works."""
    ports = {flag: free_port() for flag in ("--broker-port", "--port", "--http-port", "--metrics-port")}
    dev = OwnedProcess("venus-dev", [sys.executable, "-m", "venus_grpc", "dev",
                                     *(str(part) for pair in ports.items() for part in pair)], log_dir=tmp_path)
    url = f"http://127.0.0.1:{ports['--http-port']}"
    try:
        status = await asyncio.to_thread(_readyz_within, f"{url}/readyz", 60)
        banner = dev.log_tail(40)
    finally:
        assert await asyncio.to_thread(dev.stop) == 0
    assert status == 200
    assert f"HTTP (Connect, gRPC-Web) on {url}" in banner


def _readyz_within(url: str, within_s: float) -> int:
    deadline = time.monotonic() + within_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return int(reply.status)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
