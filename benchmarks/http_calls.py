"""The load driver's HTTP clients: Connect binary POSTs over HTTP/1.1 or HTTP/2, one call at a time each.

Both are minimal on purpose: the driver runs beside the server on a shared box, so the client's cost must stay
small beside the server's. HTTP/2 uses the ``h2`` library (its frames and HPACK), cleartext with prior
knowledge, and one connection per call in flight as HTTP/1.1 does, so the two differ only in the protocol.
"""

from __future__ import annotations

import asyncio

import h2.config
import h2.connection
import h2.events
import orjson

from venus_grpc._pb.venus.v1 import ingest_pb2 as pb

METHOD = "/venus.v1.IngestService/UploadEvents"


class HttpRefused(Exception):
    """A Connect error answer: ``code`` as a gRPC status name."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class HttpCall:
    """UploadEvents as a Connect binary POST on one HTTP/1.1 keep-alive connection, one call at a time."""

    def __init__(self, target: str, api_key: str = "") -> None:
        self._host, _, port = target.rpartition(":")
        self._port = int(port)
        auth = f"authorization: Bearer {api_key}\r\n" if api_key else ""
        self._head = (f"POST {METHOD} HTTP/1.1\r\nhost: {target}\r\ncontent-type: application/proto\r\n"
                      f"{auth}content-length: ").encode()
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def __call__(self, payload: bytes, *, timeout: float) -> pb.UploadEventsResponse:
        try:
            async with asyncio.timeout(timeout):
                if self._streams is None:
                    self._streams = await asyncio.open_connection(self._host, self._port)
                reader, writer = self._streams
                writer.write(self._head + b"%d\r\n\r\n" % len(payload) + payload)
                status, body = await _http_answer(reader)
        except BaseException:
            self.close()  # a call cut off mid-answer leaves the connection unusable
            raise
        if status != 200:
            code = orjson.loads(body).get("code", "unknown") if body.startswith(b"{") else f"HTTP_{status}"
            raise HttpRefused(code.upper())
        return pb.UploadEventsResponse.FromString(body)

    def close(self) -> None:
        """Drop the connection; the next call opens a new one."""
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def _http_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    if b"content-length:" in lower:
        length = int(lower.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        return status, await reader.readexactly(length)
    chunks = []  # chunked: uvicorn's way when the app sets no length
    while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
        chunks.append((await reader.readexactly(size + 2))[:-2])
    await reader.readexactly(2)
    return status, b"".join(chunks)


class Http2Call:
    """UploadEvents as a Connect binary POST on one HTTP/2 connection (h2c), one stream at a time."""

    def __init__(self, target: str, api_key: str = "") -> None:
        self._host, _, port = target.rpartition(":")
        self._port = int(port)
        self._headers = [(":method", "POST"), (":path", METHOD), (":scheme", "http"), (":authority", target),
                         ("content-type", "application/proto")]
        if api_key:
            self._headers.append(("authorization", f"Bearer {api_key}"))
        self._open: tuple[asyncio.StreamReader, asyncio.StreamWriter, h2.connection.H2Connection] | None = None

    async def __call__(self, payload: bytes, *, timeout: float) -> pb.UploadEventsResponse:
        try:
            async with asyncio.timeout(timeout):
                if self._open is None:
                    reader, writer = await asyncio.open_connection(self._host, self._port)
                    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
                    connection.initiate_connection()
                    self._open = reader, writer, connection
                status, body = await self._exchange(payload, *self._open)
        except BaseException:
            self.close()  # a call cut off mid-answer leaves the connection's state unknown
            raise
        if status != 200:
            code = orjson.loads(body).get("code", "unknown") if body.startswith(b"{") else f"HTTP_{status}"
            raise HttpRefused(code.upper())
        return pb.UploadEventsResponse.FromString(body)

    async def _exchange(self, payload: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        connection: h2.connection.H2Connection) -> tuple[int, bytes]:
        stream = connection.get_next_available_stream_id()
        connection.send_headers(stream, [*self._headers, ("content-length", str(len(payload)))])
        if len(payload) > connection.local_flow_control_window(stream):
            raise ValueError(f"a {len(payload)}-byte batch is over HTTP/2's first window: use smaller batches")
        step = connection.max_outbound_frame_size
        for offset in range(0, len(payload), step):
            connection.send_data(stream, payload[offset:offset + step], end_stream=offset + step >= len(payload))
        status, chunks = 0, []
        while True:
            writer.write(connection.data_to_send())
            received = await reader.read(65536)
            if not received:
                raise ConnectionError("the server closed the connection")
            for event in connection.receive_data(received):
                if isinstance(event, h2.events.ResponseReceived):
                    status = int(dict(event.headers or ())[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    chunks.append(event.data or b"")
                    connection.acknowledge_received_data(event.flow_controlled_length or 0, stream)
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream:
                    writer.write(connection.data_to_send())
                    return status, b"".join(chunks)

    def close(self) -> None:
        """Drop the connection; the next call opens a new one."""
        if self._open is not None:
            self._open[1].close()
            self._open = None
