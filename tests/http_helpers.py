"""Calling a live Venus's HTTP port: Connect and gRPC-Web requests, raw connections, and reading their answers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import struct
from dataclasses import dataclass
from typing import Any

import h2.config
import h2.connection
import h2.events
import orjson
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from venus_grpc import Venus

UPLOAD_PATH = "/venus.v1.IngestService/UploadEvents"
PROTO = "application/proto"
JSON = "application/json"
GRPC_WEB = "application/grpc-web+proto"
Detail = error_details_pb2.BadRequest | error_details_pb2.QuotaFailure | error_details_pb2.RetryInfo
_DETAIL_KINDS = (error_details_pb2.BadRequest, error_details_pb2.QuotaFailure, error_details_pb2.RetryInfo)


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return orjson.loads(self.body)

    def details(self) -> list[Detail]:
        """The google.rpc details of a Connect error body."""
        found: list[Detail] = []
        for detail in self.json().get("details", []):
            kind = next(k for k in _DETAIL_KINDS if k.DESCRIPTOR.full_name == detail["type"])
            found.append(kind.FromString(base64.b64decode(detail["value"] + "==")))
        return found


async def post(venus: Venus, body: bytes, content_type: str = PROTO, *, path: str = UPLOAD_PATH,
               headers: dict[str, str] | None = None, method: str = "POST") -> Reply:
    """One request to ``venus``'s HTTP port on a fresh connection."""
    assert venus.http_port is not None, "start Venus with http_enabled=True"
    port = venus.http_port

    def call() -> Reply:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request(method, path, body=body, headers={"content-type": content_type} | (headers or {}))
            answer = connection.getresponse()
            return Reply(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
        finally:
            connection.close()

    return await asyncio.to_thread(call)


def grpc_web_frame(message: Message) -> bytes:
    """``message`` as one gRPC-Web data frame: flag 0, a 4-byte big-endian length, the bytes."""
    data = message.SerializeToString()
    return struct.pack(">BI", 0, len(data)) + data


def grpc_web_answer(body: bytes) -> tuple[list[bytes], dict[str, str]]:
    """The data frames of a gRPC-Web answer, and its trailers (the frame with flag 0x80)."""
    messages: list[bytes] = []
    trailers: dict[str, str] = {}
    while body:
        flag, size = struct.unpack(">BI", body[:5])
        frame, body = body[5:5 + size], body[5 + size:]
        if flag & 0x80:
            for line in frame.decode().split("\r\n"):
                if line:
                    name, _, value = line.partition(":")
                    trailers[name.strip().lower()] = value.strip()
        else:
            messages.append(frame)
    return messages, trailers


def grpc_status_details(encoded: str) -> list[Detail]:
    """The google.rpc details of a ``grpc-status-details-bin`` value."""
    status = status_pb2.Status.FromString(base64.b64decode(encoded + "=="))
    found: list[Detail] = []
    for packed in status.details:
        for kind in _DETAIL_KINDS:
            if packed.Is(kind.DESCRIPTOR):
                detail = kind()
                packed.Unpack(detail)
                found.append(detail)
    return found


class RawConnection:
    """A bare TCP connection to the HTTP port, for requests no well-behaved client sends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, venus: Venus) -> RawConnection:
        """Connect to ``venus``'s HTTP port."""
        assert venus.http_port is not None
        return cls(*await asyncio.open_connection("127.0.0.1", venus.http_port))

    async def send(self, data: bytes) -> None:
        """Write ``data`` now."""
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self, *, timeout_s: float = 10) -> tuple[int, dict[str, str], bytes]:
        """The next answer's status, headers and body (content-length or chunked)."""
        async with asyncio.timeout(timeout_s):
            head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
            if "content-length" in headers:
                body = await self.reader.readexactly(int(headers["content-length"]))
            else:
                body = b""
                while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                    body += (await self.reader.readexactly(size + 2))[:-2]
                await self.reader.readexactly(2)
        return int(head[0].split()[1]), headers, body

    async def closed_by_server(self, *, timeout_s: float = 10) -> bool:
        """True once the server closes the connection (EOF or reset) within ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    async def close(self) -> None:
        """Close our end."""
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


class H2Client:
    """One HTTP/2 connection (cleartext, prior knowledge) to the HTTP port, one request at a time."""

    def __init__(self, raw: RawConnection) -> None:
        self.raw = raw
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))

    @classmethod
    async def open(cls, venus: Venus) -> H2Client:
        """Connect and send the HTTP/2 preface and our settings."""
        client = cls(await RawConnection.open(venus))
        client.h2.initiate_connection()
        await client.raw.send(client.h2.data_to_send())
        return client

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
                      *, timeout_s: float = 10) -> Reply:
        """One request on a new stream; its status, headers and body."""
        stream = self.h2.get_next_available_stream_id()
        self.h2.send_headers(stream, [(":method", method), (":path", path), (":scheme", "http"),
                                      (":authority", "venus"), *(headers or {}).items()], end_stream=not body)
        if body:
            self.h2.send_data(stream, body, end_stream=True)
        await self.raw.send(self.h2.data_to_send())
        status, answer, data = 0, {}, b""
        async with asyncio.timeout(timeout_s):
            while True:
                received = await self.raw.reader.read(65536)
                assert received, "the server closed the connection"
                for event in self.h2.receive_data(received):
                    if isinstance(event, h2.events.ResponseReceived):
                        decoded = {k.decode(): v.decode() for k, v in event.headers or ()}
                        answer = {k: v for k, v in decoded.items() if not k.startswith(":")}
                        status = int(decoded[":status"])
                    elif isinstance(event, h2.events.DataReceived):
                        data += event.data
                        self.h2.acknowledge_received_data(event.flow_controlled_length, stream)
                    elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream:
                        await self.raw.send(self.h2.data_to_send())
                        return Reply(status, answer, data)
                await self.raw.send(self.h2.data_to_send())
