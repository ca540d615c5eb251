"""The embedded DNS server: 127.0.0.11:53 inside each container on a user-defined network.

As in Docker, the engine itself serves every container's DNS: for each sandbox it makes a UDP and
a TCP socket inside the container's network namespace (kernel.netns.socket_in), bound to
127.0.0.11:53, and serves both from the engine's event loop. Container names are answered from the
Resolver; other names are forwarded from the engine's own namespace (see dns_answer). Garbage
input is dropped, never allowed to stop the loop.

Test seam: add(..., netns_path="") makes the sockets in the engine's current namespace, so the
protocol can be exercised without root on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, field
from typing import Any, Coroutine

from dockyard.errors import Unavailable
from dockyard.kernel import netns
from dockyard.network.dns_answer import Answerer, Resolver, parse

__all__ = ["EmbeddedDNS", "Resolver"]

log = logging.getLogger(__name__)

TCP_IDLE = 10.0           # seconds a TCP client may stay silent between queries
MAX_TCP_CLIENTS = 64      # per sandbox


class _UDP(asyncio.DatagramProtocol):
    """Queries on one sandbox's UDP socket: local answers inline, forwards as tasks."""

    def __init__(self, owner: "_Sandbox") -> None:
        self._owner = owner
        self.transport: asyncio.DatagramTransport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)  # the socket is closed now: the port is free

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self._handle(data, addr)
        except Exception:
            log.exception("embedded DNS: dropped a UDP query")

    def error_received(self, exc: Exception) -> None:
        log.debug("embedded DNS: UDP error %r", exc)

    def _handle(self, data: bytes, addr: tuple[str, int]) -> None:
        owner = self._owner
        query = parse(data)
        if query is None:
            return
        reply = owner.answerer.local(owner.sandbox, query, tcp=False)
        if reply is not None:
            self._send(reply, addr)
            return

        async def forward() -> None:
            self._send(await owner.answerer.forward(owner.sandbox, query, data, tcp=False), addr)

        owner.spawn(forward())

    def _send(self, reply: bytes, addr: tuple[str, int]) -> None:
        if reply and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


@dataclass
class _Sandbox:
    """One container's server: its sockets, its TCP clients and its in-flight forwards."""

    sandbox: str
    key: tuple[str, str, int]
    answerer: Answerer
    udp: asyncio.DatagramTransport | None = None
    udp_protocol: _UDP | None = None
    tcp: asyncio.AbstractServer | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    clients: set[asyncio.StreamWriter] = field(default_factory=set)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("embedded DNS: query task failed: %r", task.exception())

    async def serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Length-framed queries on one connection, answered in order, until idle or EOF."""
        if len(self.clients) >= MAX_TCP_CLIENTS:
            writer.close()
            return
        self.clients.add(writer)
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE):
                    size = int.from_bytes(await reader.readexactly(2), "big")
                    data = await reader.readexactly(size)
                reply = await self._tcp_reply(data)
                if reply is None:
                    break  # garbage: drop the connection
                if reply:
                    writer.write(len(reply).to_bytes(2, "big") + reply)
                    await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("embedded DNS: dropped a TCP client")
        finally:
            self.clients.discard(writer)
            writer.close()

    async def _tcp_reply(self, data: bytes) -> bytes | None:
        query = parse(data)
        if query is None:
            return None
        reply = self.answerer.local(self.sandbox, query, tcp=True)
        if reply is None:
            reply = await self.answerer.forward(self.sandbox, query, data, tcp=True)
        return reply

    async def close(self) -> None:
        if self.udp is not None:
            self.udp.close()
        if self.tcp is not None:
            self.tcp.close()
        for writer in list(self.clients):
            writer.close()
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.tcp is not None:
            await self.tcp.wait_closed()
        if self.udp_protocol is not None:
            await self.udp_protocol.closed


def _check_reachable(address: str) -> None:
    """Refuse to serve where address is not routable yet (loopback down).

    A socket bound to 127.0.0.11 while lo is down still gets queries once lo comes up, but its
    replies leave from 127.0.0.1, which resolvers drop; so lo must be up before add().
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((address, 53))
        except OSError as e:
            raise Unavailable(f"embedded DNS: {address} is not reachable (is lo up?): "
                              f"{e.strerror}") from e


def _bound(kind: int, address: str, port: int) -> socket.socket:
    """A non-blocking socket of kind bound to address:port (listening, for TCP)."""
    sock = socket.socket(socket.AF_INET, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(128)
        sock.setblocking(False)
        return sock
    except BaseException:
        sock.close()
        raise


def _open(address: str, port: int) -> tuple[socket.socket, socket.socket]:
    """The UDP and TCP sockets of one server, made in the calling thread's namespace.

    port 0 (tests) takes a free UDP port and the same one for TCP.
    """
    _check_reachable(address)
    udp = _bound(socket.SOCK_DGRAM, address, port)
    try:
        return udp, _bound(socket.SOCK_STREAM, address, udp.getsockname()[1])
    except BaseException:
        udp.close()
        raise


def _open_in(netns_path: str, address: str, port: int) -> tuple[socket.socket, socket.socket]:
    if not netns_path:
        return _open(address, port)
    return netns.run_in(netns_path, lambda: _open(address, port))


class EmbeddedDNS:
    """All containers' embedded DNS servers, served from the running event loop."""

    def __init__(self, resolver: Resolver) -> None:
        self._answerer = Answerer(resolver)
        self._servers: dict[str, _Sandbox] = {}
        self._lock = asyncio.Lock()

    def sandboxes(self) -> list[str]:
        return sorted(self._servers)

    async def add(self, sandbox: str, netns_path: str, address: str = "127.0.0.11",
                  port: int = 53) -> None:
        """Serve sandbox's DNS on address:port inside netns_path ("" = this namespace).

        lo must be up in the namespace first (Unavailable otherwise); OSError when the port is
        taken.

        Idempotent: nothing happens when it is served already with the same arguments; other
        arguments replace the old sockets. port 0 (tests) picks a free port, see bound().
        """
        key = (netns_path, address, port)
        async with self._lock:
            old = self._servers.get(sandbox)
            if old is not None:
                if old.key == key:
                    return
                await self._drop(sandbox)
            self._servers[sandbox] = await self._start(sandbox, key)

    async def _start(self, sandbox: str, key: tuple[str, str, int]) -> _Sandbox:
        netns_path, address, port = key
        server = _Sandbox(sandbox, key, self._answerer)
        loop = asyncio.get_running_loop()
        udp, tcp = await asyncio.to_thread(_open_in, netns_path, address, port)
        try:
            server.udp, server.udp_protocol = await loop.create_datagram_endpoint(
                lambda: _UDP(server), sock=udp)
            server.tcp = await asyncio.start_server(server.serve_tcp, sock=tcp)
        except BaseException:
            await server.close()
            udp.close()
            tcp.close()
            raise
        return server

    def bound(self, sandbox: str) -> tuple[str, int] | None:
        """Where sandbox's server listens (address, port), or None when it is not served."""
        server = self._servers.get(sandbox)
        if server is None or server.udp is None:
            return None
        name = server.udp.get_extra_info("sockname")
        return (name[0], name[1])

    async def remove(self, sandbox: str) -> None:
        """Stop serving sandbox and close its sockets; nothing to do when it is not served."""
        async with self._lock:
            await self._drop(sandbox)

    async def _drop(self, sandbox: str) -> None:
        server = self._servers.pop(sandbox, None)
        if server is not None:
            await server.close()

    async def close(self) -> None:
        """Stop serving every sandbox."""
        async with self._lock:
            for sandbox in list(self._servers):
                await self._drop(sandbox)
