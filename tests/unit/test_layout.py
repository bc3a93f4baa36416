"""The layout's promises: the gateway never depends on operator tools, and ingest never on a transport."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "venus_grpc"


def _imports(room: str) -> dict[str, set[str]]:
    """Every venus_grpc module each file of ``room`` imports, by file."""
    found: dict[str, set[str]] = {}
    for path in sorted((PACKAGE / room).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[str(path.relative_to(PACKAGE))] = {n for n in names if n.startswith("venus_grpc")}
    return found


def _offending(room: str, forbidden: str) -> dict[str, list[str]]:
    found = {f: sorted(m for m in mods if m.startswith(forbidden)) for f, mods in _imports(room).items()}
    return {f: m for f, m in found.items() if m}


@pytest.mark.parametrize("room", ["server", "ingest", "obs"])
def test_the_gateway_does_not_import_the_tools(room: str) -> None:
    """server/, ingest/ and obs/ run without venus_grpc.tools, which the wheel's users may never call."""
    assert _offending(room, "venus_grpc.tools") == {}


def test_ingest_does_not_import_a_transport() -> None:
    """ingest/ is transport-independent: it never imports the gRPC server side."""
    assert _offending("ingest", "venus_grpc.server") == {}
