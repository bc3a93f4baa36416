"""A protoc plugin that writes ``*_pb2_grpc.py`` with grpcio-tools, for ``buf generate``.

grpcio-tools has the gRPC Python generator built into its protoc, not as a plugin executable, and
buf runs only its own list of protoc built-ins. This plugin hands buf's request to that protoc
(pinned in pyproject.toml) so the stubs match the installed grpcio; Debian's grpc_python_plugin
is older and omits what newer grpcio expects.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from google.protobuf.compiler import plugin_pb2
from google.protobuf.descriptor_pb2 import FileDescriptorSet
from grpc_tools import protoc


def generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    """Run grpcio-tools' protoc on the request's descriptors; its output files as a plugin response."""
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    )
    with tempfile.TemporaryDirectory() as tmp:
        descriptors, out = Path(tmp) / "set.binpb", Path(tmp) / "out"
        out.mkdir()
        descriptors.write_bytes(FileDescriptorSet(file=request.proto_file).SerializeToString())
        options = [f"--grpc_python_opt={request.parameter}"] if request.parameter else []
        status = protoc.main(["protoc", f"--descriptor_set_in={descriptors}", f"--grpc_python_out={out}",
                              *options, *request.file_to_generate])
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
