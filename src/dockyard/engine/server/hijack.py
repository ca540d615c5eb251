"""Hijacked connections for attach and exec start: after the status line, raw bytes both ways.

Clients send ``Connection: Upgrade`` + ``Upgrade: tcp`` and get ``101 UPGRADED``; without
those headers the answer is ``200 OK``; either way the body is the raw (or multiplexed) stream,
neither chunked nor length-delimited. Bytes the client sends afterwards are the process's
stdin, and a client half-close (shutdown of its write side) is EOF on stdin while output keeps
flowing, so the connection must survive the EOF (the docker CLI half-closes after piped stdin).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"


class _RawReader:
    """Receives the client's bytes once aiohttp hands the upgraded connection over."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if data:
            self.queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.queue.put_nowait(b"")


class _TakeOver:
    """Stands in for aiohttp's protocol on the transport: input goes to the reader, EOF keeps it open."""

    def __init__(self, inner: object, reader: _RawReader) -> None:
        self._inner = inner
        self._reader = reader

    def data_received(self, data: bytes) -> None:
        self._reader.feed_data(data)

    def eof_received(self) -> bool:
        self._reader.feed_eof()
        return True

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


class Hijacked(web.StreamResponse):
    """The upgraded response: write() sends raw bytes; read() returns stdin bytes, b"" at EOF."""

    def __init__(self, request: web.Request, content_type: str = RAW_STREAM) -> None:
        self.upgrade = "upgrade" in request.headers.get("Connection", "").lower() and "Upgrade" in request.headers
        super().__init__(status=101 if self.upgrade else 200, reason="UPGRADED" if self.upgrade else "OK")
        self._length_check = False  # neither chunked nor length-delimited
        self.headers["Content-Type"] = content_type
        if self.upgrade:
            self.headers["Connection"] = "Upgrade"
            self.headers["Upgrade"] = "tcp"
        self.force_close()
        self._request = request
        self._reader = _RawReader()
        self._eof = False

    async def start(self) -> None:
        await self.prepare(self._request)
        protocol = self._request.protocol
        if self.upgrade:
            protocol.set_parser(self._reader)  # type: ignore[arg-type]  # takes bytes aiohttp buffered
        transport = self._request.transport
        if transport is not None:
            transport.set_protocol(_TakeOver(protocol, self._reader))  # type: ignore[arg-type]

    async def read(self) -> bytes:
        if self._eof:
            return b""
        data = await self._reader.queue.get()
        if not data:
            self._eof = True
        return data

    async def send(self, data: bytes) -> None:
        await self.write(data)

    async def close(self) -> None:
        try:
            await self.write_eof()
        except (ConnectionError, RuntimeError):
            pass
        transport = self._request.transport
        if transport is not None:
            transport.close()
