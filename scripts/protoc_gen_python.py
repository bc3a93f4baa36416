"""A protoc plugin for ``buf generate`` that writes the Python code with grpcio-tools' protoc.

Three reasons. grpcio-tools has the gRPC Python generator built into its protoc, not as a plugin,
and buf runs only its own list of protoc built-ins; Debian's grpc_python_plugin is older than the
grpcio Venus runs on. And buf's compiler writes every field's default ``json_name`` into the
descriptors it hands on, where protoc leaves them out: embedded in the Python code, they would be
served through reflection and change what grpcurl prints (``backendId`` instead of ``backend_id``).
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from google.protobuf.compiler import plugin_pb2
from google.protobuf.descriptor_pb2 import DescriptorProto, FileDescriptorSet
from grpc_tools import protoc  # type: ignore[import-untyped]

OUTPUTS = ("--python_out", "--pyi_out", "--grpc_python_out")


def _default_json_name(name: str) -> str:
    return re.sub(r"_(.)", lambda m: m.group(1).upper(), name)


def _drop_default_json_names(message: DescriptorProto) -> None:
    for field in message.field:
        if field.json_name == _default_json_name(field.name):
            field.ClearField("json_name")
    for nested in message.nested_type:
        _drop_default_json_names(nested)


def generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    """Run grpcio-tools' protoc on the request's descriptors; its output files as a plugin response."""
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    )
    for file in request.proto_file:
        for message in file.message_type:
            _drop_default_json_names(message)
    with tempfile.TemporaryDirectory() as tmp:
        descriptors, out = Path(tmp) / "set.binpb", Path(tmp) / "out"
        out.mkdir()
        descriptors.write_bytes(FileDescriptorSet(file=request.proto_file).SerializeToString())
        status = protoc.main(["protoc", f"--descriptor_set_in={descriptors}",
                              *(f"{option}={out}" for option in OUTPUTS), *request.file_to_generate])
        if status != 0:
            response.error = f"grpc_tools.protoc exited with {status}"
            return response
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            response.file.add(name=str(path.relative_to(out)), content=path.read_text())
    return response


def main() -> int:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    sys.stdout.buffer.write(generate(request).SerializeToString())
    return 0


if __name__ == "__main__":
    sys.exit(main())
