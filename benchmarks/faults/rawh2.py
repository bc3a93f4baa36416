"""A raw HTTP/2 client that breaks the rules a gRPC client follows: pings without calls, too many
streams, half-sent and oversized messages. Built on the ``h2`` state machine over asyncio streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions

UPLOAD_PATH = "/venus.v1.IngestService/UploadEvents"
ENHANCE_YOUR_CALM = 0xB


@dataclass
class Seen:
    """What the server sent back on one connection."""

    goaway_code: int | None = None
    goaway_debug: bytes = b""
    closed: bool = False  # the server closed the TCP connection
    statuses: dict[int, str] = field(default_factory=dict)  # stream id -> grpc-status (or "reset:<code>")


class RawH2:
    """One HTTP/2 connection to ``127.0.0.1:port``, driven by hand."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.seen = Seen()
        self._conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pump: asyncio.Task[None] | None = None

    async def open(self, *, read: bool = True) -> None:
        """Connect and send the preface and SETTINGS; with ``read``, answer the server in the background."""
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._conn.initiate_connection()
        await self.flush()
        if read:
            self.listen()

    def listen(self) -> None:
        """Read and answer the server in the background (from then on h2 knows the server's limits)."""
        self._pump = asyncio.create_task(self._read_loop())

    async def flush(self) -> None:
        """Write whatever the state machine has queued."""
        assert self._writer is not None
        data = self._conn.data_to_send()
        if data and not self._writer.is_closing():
            self._writer.write(data)
            with contextlib.suppress(ConnectionError):
                await self._writer.drain()

    def ping(self, n: int) -> None:
        """Queue a PING frame (sent on the next :meth:`flush`)."""
        self._conn.ping(struct.pack(">Q", n))

    def start_call(self, *, path: str = UPLOAD_PATH, timeout_s: float | None = None) -> int:
        """Queue the HEADERS of a new unary gRPC call; its stream id.

        Before :meth:`listen`, h2 has not read the server's SETTINGS, so it lets any number of streams
        open: that is how a client ignores ``max_concurrent_streams``.
        """
        stream_id = self._conn.get_next_available_stream_id()
        headers = [(":method", "POST"), (":scheme", "http"), (":path", path),
                   (":authority", f"127.0.0.1:{self.port}"), ("content-type", "application/grpc"), ("te", "trailers")]
        if timeout_s is not None:
            headers.append(("grpc-timeout", f"{int(timeout_s * 1000)}m"))
        self._conn.send_headers(stream_id, headers)
        return stream_id

    def send_message_start(self, stream_id: int, *, declared_bytes: int, sent_bytes: int) -> None:
        """Queue a gRPC length prefix declaring ``declared_bytes`` and only ``sent_bytes`` of the body."""
        data = struct.pack(">BI", 0, declared_bytes) + b"\x0a" * sent_bytes
        size = self._conn.max_outbound_frame_size
        for at in range(0, len(data), size):
            self._conn.send_data(stream_id, data[at:at + size])

    def send_message(self, stream_id: int, message: bytes) -> None:
        """Queue the whole request ``message`` of a unary call, ending the client's side of the stream."""
        self._conn.send_data(stream_id, struct.pack(">BI", 0, len(message)) + message, end_stream=True)

    async def wait_closed(self, timeout_s: float) -> bool:
        """Whether the server closed the connection within ``timeout_s``."""
        if self._pump is None:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._pump), timeout=timeout_s)
        return self.seen.closed

    async def wait_status(self, stream_id: int, timeout_s: float) -> str | None:
        """The grpc-status (or reset) of ``stream_id`` once the server answered, None if it did not in time."""
        loop = asyncio.get_running_loop()
        ends = loop.time() + timeout_s
        while stream_id not in self.seen.statuses and not self.seen.closed and loop.time() < ends:
            await asyncio.sleep(0.02)  # the read loop fills ``seen``; nothing to await on
        return self.seen.statuses.get(stream_id)

    async def close(self) -> None:
        """Drop the connection (no GOAWAY: an abusive client just goes)."""
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()

    async def _read_loop(self) -> None:
        assert self._reader is not None
        with contextlib.suppress(ConnectionError, h2.exceptions.ProtocolError):
            while data := await self._reader.read(65536):
                for event in self._conn.receive_data(data):
                    self._note(event)
                await self.flush()  # ACK settings and pings, as a live client would
        self.seen.closed = True

    def _note(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ConnectionTerminated):
            self.seen.goaway_code = int(event.error_code) if event.error_code is not None else None
            self.seen.goaway_debug = event.additional_data or b""
        elif isinstance(event, (h2.events.TrailersReceived, h2.events.ResponseReceived)):
            for name, value in event.headers or ():
                if _text(name) == "grpc-status" and event.stream_id is not None:
                    self.seen.statuses[event.stream_id] = _text(value)
        elif isinstance(event, h2.events.StreamReset) and event.stream_id is not None:
            self.seen.statuses.setdefault(event.stream_id, f"reset:{int(event.error_code or 0)}")


def _text(value: str | bytes) -> str:
    # h2 types header fields as bytes; with header_encoding set they arrive as str.
    return value.decode() if isinstance(value, bytes) else value
