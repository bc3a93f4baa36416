"""A loopback TCP proxy between Venus and the broker that the scenario makes slow, stalled or reset."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

from venus_grpc.server.transport import free_port


class FaultyLink:
    """Forwards 127.0.0.1:``port`` to ``upstream_port``; :attr:`delay_s`, :meth:`stall`, :meth:`reset` break it."""

    def __init__(self, upstream_port: int) -> None:
        self.port = free_port()
        self.upstream_port = upstream_port
        self.delay_s = 0.0  # added to every chunk forwarded, both ways
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen."""
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", self.port)

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
        self.resume()
        self.reset()

    def stall(self) -> None:
        """Stop forwarding (connections stay open, bytes wait)."""
        self._flowing.clear()

    def resume(self) -> None:
        """Forward again."""
        self._flowing.set()

    def reset(self) -> None:
        """Abort every connection with a TCP RST, as a dying middlebox would."""
        for writer in list(self._writers):
            sock = writer.get_extra_info("socket")
            with contextlib.suppress(OSError):  # already closed by its peer
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        self._writers.clear()

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if self.delay_s:
                await asyncio.sleep(self.delay_s)  # the added latency of a slow link
            await self._flowing.wait()
            writer.write(data)
            await writer.drain()
        writer.transport.abort()
