"""The Go, Java and Android examples, built from the generated stubs with Debian's toolchains, against a live Venus."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.kafka_helpers import Message, TopicReader
from tests.process_helpers import run_command
from venus_grpc import Venus

ROOT = Path(__file__).resolve().parents[2]
GO_STUBS = ROOT / "clients" / "go"
GO_STUBS_MODULE = "github.com/venus-gateway/venus/clients/go"  # clients/go/go.mod
GOCODE = Path("/usr/share/gocode/src")  # where Debian's golang-*-dev packages put Go sources, one dir per module
JARS = Path("/usr/share/java")  # where Debian's libgrpc-java, libprotobuf-java, libnetty-java... put their jars
COMPILE_JARS = ("grpc-api", "grpc-core", "grpc-stub", "grpc-protobuf", "grpc-protobuf-lite", "grpc-context",
                "grpc-netty", "protobuf", "guava", "jsr305", "error_prone_annotations",
                "geronimo-annotation-1.3-spec")  # javax.annotation.Generated, on the gRPC stubs
RUNTIME_JARS = ("netty-buffer", "netty-codec", "netty-codec-http", "netty-codec-http2", "netty-codec-socks",
                "netty-common", "netty-handler", "netty-handler-proxy", "netty-resolver", "netty-transport",
                "perfmark-api")
# The Android stubs need grpc-protobuf-lite, never grpc-protobuf, and the lite protobuf runtime. Debian has no
# protobuf-javalite jar: its protobuf jar is protobuf-java, the lite runtime (from the same sources as
# protobuf-javalite) plus the full one. Without Descriptors, which every full message needs, and the classes the
# lite runtime looks up by name to find the full one, that runtime is gone and each look-up falls back as on Android.
LITE_COMPILE_JARS = ("grpc-api", "grpc-core", "grpc-stub", "grpc-protobuf-lite", "grpc-context", "grpc-netty",
                     "guava", "jsr305", "error_prone_annotations", "geronimo-annotation-1.3-spec")
FULL_RUNTIME_ONLY = re.compile(
    r"com/google/protobuf/(Descriptors|GeneratedMessageV3|UnknownFieldSetSchema|DescriptorMessageInfoFactory|"
    r"ExtensionRegistry|Extension|ExtensionSchemaFull|MapFieldSchemaFull|NewInstanceSchemaFull)(\$.*)?\.class")
WELL_KNOWN_PROTOS = Path("/usr/include")  # where Debian's libprotobuf-dev puts google/protobuf/*.proto
BUILD_TIMEOUT_S = 300
RUN_TIMEOUT_S = 60
_RESULT_LINE = re.compile(r'^(?P<id>\S+) (?P<code>EVENT_CODE_\w+) backend_id="(?P<backend_id>[^"]*)"', re.MULTILINE)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: scripts/test installs the Debian packages for Go, Java and Android")
    return found


def _build(command: list[str], cwd: Path | None = None, **env: str) -> str:
    """Run a build step to its end; what it printed."""
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
                          env=os.environ | env)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stderr}"
    return done.stdout


def _offline_go_module(module: Path, gopath: Path) -> dict[str, str]:
    """Point each module that ``module`` requires at a local copy; the environment that builds it offline.

    The stubs module is replaced by this checkout, the others by Debian's sources. A go 1.17 go.mod names
    every module that provides a package, so the build reads no other go.mod: a missing one would be looked
    up, and GOPROXY=off makes that fail instead of downloading.
    """
    env = {"GOPATH": str(gopath), "GOPROXY": "off", "GOSUMDB": "off", "GOFLAGS": "-mod=readonly", "GOWORK": "off"}
    go = _tool("go")
    replaces = []
    for required in json.loads(_build([go, "mod", "edit", "-json"], cwd=module, **env))["Require"]:
        path = required["Path"]
        local = GO_STUBS if path == GO_STUBS_MODULE else GOCODE / path
        assert (local / "go.mod").exists(), f"no {local}/go.mod: scripts/test installs the Debian package of {path}"
        replaces.append(f"-replace={path}={local}")
    _build([go, "mod", "edit", *replaces], cwd=module, **env)
    return env


@pytest.fixture(scope="module")
def go_example(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The Go example, an outside module requiring the stubs module, built offline in module mode."""
    work = tmp_path_factory.mktemp("go-example")
    example = work / "example"
    shutil.copytree(GO_STUBS / "example", example)  # its `replace ... => ../` would not survive the copy
    env = _offline_go_module(example, work / "gopath")
    _build([_tool("go"), "build", "-o", str(work / "example-bin"), "."], cwd=example, **env)
    return [str(work / "example-bin")]


@pytest.fixture(scope="module")
def java_example(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The Java example and stubs compiled with javac against Debian's jars."""
    classes = tmp_path_factory.mktemp("java-classes")
    compile_path = [str(JARS / f"{jar}.jar") for jar in COMPILE_JARS]
    sources = sorted(str(p) for p in (ROOT / "clients" / "java").rglob("*.java"))
    _build([_tool("javac"), "-nowarn", "-d", str(classes), "-cp", ":".join(compile_path), *sources],
           cwd=classes)  # where a failing javac leaves its javac.<time>.args file, not the checkout
    run_path = [str(classes), *compile_path, *(str(JARS / f"{jar}.jar") for jar in RUNTIME_JARS)]
    return [_tool("java"), "-cp", ":".join(run_path), "Example"]


def _lite_runtime(jar: Path) -> None:
    """Debian's protobuf jar without its full runtime: the lite one alone, as protobuf-javalite ships it."""
    with zipfile.ZipFile(JARS / "protobuf.jar") as full, zipfile.ZipFile(jar, "w") as lite:
        for entry in full.infolist():
            if not FULL_RUNTIME_ONLY.fullmatch(entry.filename):
                lite.writestr(entry, full.read(entry))


@pytest.fixture(scope="module")
def android_example(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The Android example, lite messages and lite gRPC stubs compiled with javac against the lite runtime.

    protobuf-javalite carries its own Timestamp and Duration, generated with --java_out=lite; Debian's jar has
    only full ones, so they are generated here the same way and put before it on the class path.
    """
    work = tmp_path_factory.mktemp("android")
    well_known, classes, lite = work / "well-known", work / "classes", work / "protobuf-lite.jar"
    well_known.mkdir()
    _build([_tool("protoc"), f"--proto_path={WELL_KNOWN_PROTOS}", f"--java_out=lite:{well_known}",
            "google/protobuf/timestamp.proto", "google/protobuf/duration.proto"])
    _lite_runtime(lite)
    compile_path = [str(lite), *(str(JARS / f"{jar}.jar") for jar in LITE_COMPILE_JARS)]
    sources = sorted(str(p) for tree in (ROOT / "clients" / "android", well_known) for p in tree.rglob("*.java"))
    _build([_tool("javac"), "-nowarn", "-d", str(classes), "-cp", ":".join(compile_path), *sources], cwd=work)
    run_path = [str(classes), *compile_path, *(str(JARS / f"{jar}.jar") for jar in RUNTIME_JARS)]
    return [_tool("java"), "-cp", ":".join(run_path), "Example"]


async def _run(command: list[str]) -> dict[str, tuple[str, str]]:
    """Run an example; the code and backend id it printed for each event, by event id."""
    done = await run_command(command, timeout_s=RUN_TIMEOUT_S)
    assert done.returncode == 0, f"example failed:\n{done.stdout}{done.stderr}"
    return {m["id"]: (m["code"], m["backend_id"]) for m in _RESULT_LINE.finditer(done.stdout)}


async def _assert_published(topic_reader: TopicReader, category: str, printed: dict[str, tuple[str, str]],
                            prefix: str) -> list[Message]:
    """The example printed OK for two events and a validation error for the third, and Kafka holds the two."""
    assert {event_id: code for event_id, (code, _) in printed.items()} == {
        f"{prefix}-evt-1": "EVENT_CODE_OK", f"{prefix}-evt-2": "EVENT_CODE_OK",
        f"{prefix}-evt-3": "EVENT_CODE_VALIDATION_ERROR",
    }
    messages = await topic_reader.read_all(f"to_analyzer__0.{category}")
    published = {m.value["event"]["id"]: m.value["backend_id"] for m in messages}
    assert published == {event_id: backend_id for event_id, (code, backend_id) in printed.items()
                         if code == "EVENT_CODE_OK"}
    return messages


def test_go_stubs_module_builds_on_its_own(tmp_path: Path) -> None:
    """The stubs module's go.mod is complete: it builds in module mode with nothing downloaded."""
    stubs = tmp_path / "stubs"
    shutil.copytree(GO_STUBS, stubs, ignore=shutil.ignore_patterns("example"))  # a module of its own
    env = _offline_go_module(stubs, tmp_path / "gopath")
    _build([_tool("go"), "build", "./..."], cwd=stubs, **env)


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


async def test_android_example_sends_a_batch_on_the_lite_runtime(venus: Venus, category: str,
                                                                 topic_reader: TopicReader,
                                                                 android_example: list[str]) -> None:
    """The Android example, on the lite runtime alone, publishes its valid events, a lite Timestamp intact."""
    printed = await _run([*android_example, f"127.0.0.1:{venus.port}", category])
    messages = await _assert_published(topic_reader, category, printed, "android")
    assert {m.value["event"]["id"]: m.value["event"]["occurred_at_ms"] for m in messages} == {
        "android-evt-1": 1_700_000_000_250, "android-evt-2": None}
