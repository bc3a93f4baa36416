"""The Go and Java examples, built from the generated stubs with Debian's toolchains, against a live Venus."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.kafka_helpers import TopicReader
from tests.process_helpers import run_command
from venus_grpc import Venus

ROOT = Path(__file__).resolve().parents[2]
JARS = Path("/usr/share/java")  # where Debian's libgrpc-java, libprotobuf-java, libnetty-java... put their jars
COMPILE_JARS = ("grpc-api", "grpc-core", "grpc-stub", "grpc-protobuf", "grpc-protobuf-lite", "grpc-context",
                "grpc-netty", "protobuf", "guava", "jsr305", "error_prone_annotations",
                "geronimo-annotation-1.3-spec")  # javax.annotation.Generated, on the gRPC stubs
RUNTIME_JARS = ("netty-buffer", "netty-codec", "netty-codec-http", "netty-codec-http2", "netty-codec-socks",
                "netty-common", "netty-handler", "netty-handler-proxy", "netty-resolver", "netty-transport",
                "perfmark-api")
BUILD_TIMEOUT_S = 300
RUN_TIMEOUT_S = 60
_RESULT_LINE = re.compile(r'^(?P<id>\S+) (?P<code>EVENT_CODE_\w+) backend_id="(?P<backend_id>[^"]*)"', re.MULTILINE)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: scripts/test installs the Debian packages for Go and Java")
    return found


def _build(command: list[str], **env: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, env=os.environ | env)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stderr}"


@pytest.fixture(scope="module")
def go_example(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The Go example built offline in GOPATH mode against Debian's grpc-go and protobuf-go."""
    gopath = tmp_path_factory.mktemp("gopath")
    shutil.copytree(ROOT / "clients" / "go", gopath / "src" / "venus" / "clients" / "go")  # its go_package
    binary = gopath / "example"
    _build([_tool("go"), "build", "-o", str(binary), "venus/clients/go/example"],
           GO111MODULE="off", GOPATH=f"{gopath}:/usr/share/gocode", GOPROXY="off", GOFLAGS="")
    return [str(binary)]


@pytest.fixture(scope="module")
def java_example(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The Java example and stubs compiled with javac against Debian's jars."""
    classes = tmp_path_factory.mktemp("java-classes")
    compile_path = [str(JARS / f"{jar}.jar") for jar in COMPILE_JARS]
    sources = sorted(str(p) for p in (ROOT / "clients" / "java").rglob("*.java"))
    _build([_tool("javac"), "-nowarn", "-d", str(classes), "-cp", ":".join(compile_path), *sources])
    run_path = [str(classes), *compile_path, *(str(JARS / f"{jar}.jar") for jar in RUNTIME_JARS)]
    return [_tool("java"), "-cp", ":".join(run_path), "Example"]


async def _run(command: list[str]) -> dict[str, tuple[str, str]]:
    """Run an example; the code and backend id it printed for each event, by event id."""
    done = await run_command(command, timeout_s=RUN_TIMEOUT_S)
    assert done.returncode == 0, f"example failed:\n{done.stdout}{done.stderr}"
    return {m["id"]: (m["code"], m["backend_id"]) for m in _RESULT_LINE.finditer(done.stdout)}


async def _assert_published(topic_reader: TopicReader, category: str, printed: dict[str, tuple[str, str]],
                            prefix: str) -> None:
    """The example printed OK for two events and a validation error for the third, and Kafka holds the two."""
    assert {event_id: code for event_id, (code, _) in printed.items()} == {
        f"{prefix}-evt-1": "EVENT_CODE_OK", f"{prefix}-evt-2": "EVENT_CODE_OK",
        f"{prefix}-evt-3": "EVENT_CODE_VALIDATION_ERROR",
    }
    messages = await topic_reader.read_all(f"to_analyzer__0.{category}")
    published = {m.value["event"]["id"]: m.value["backend_id"] for m in messages}
    assert published == {event_id: backend_id for event_id, (code, backend_id) in printed.items()
                         if code == "EVENT_CODE_OK"}


async def test_go_example_sends_a_batch(venus: Venus, category: str, topic_reader: TopicReader,
                                        go_example: list[str]) -> None:
    """The Go example's valid events are published with the backend ids it printed; the invalid one is not."""
    printed = await _run([*go_example, "-category", category, f"127.0.0.1:{venus.port}"])
    await _assert_published(topic_reader, category, printed, "go")


async def test_java_example_sends_a_batch(venus: Venus, category: str, topic_reader: TopicReader,
                                          java_example: list[str]) -> None:
    """The Java example's valid events are published with the backend ids it printed; the invalid one is not."""
    printed = await _run([*java_example, f"127.0.0.1:{venus.port}", category])
    await _assert_published(topic_reader, category, printed, "java")
