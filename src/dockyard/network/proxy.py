"""The userland proxy: published TCP ports on the host's IPv6 addresses ([::]:P, [::1]:P included).

Containers are IPv4 only and the kernel cannot DNAT IPv6 to IPv4, so a port published on every
address (no HostIp) is also served by the engine itself: it listens on [::]:P (IPV6_V6ONLY, so the
IPv4 side stays with the kernel's DNAT rules) and relays each connection to the container's
address. This is what `curl http://localhost:P` tries first on a host where localhost is ::1. The
relays run on the engine's event loop; they stop with the engine and come back when it restores
its running containers.
"""

from __future__ import annotations

import asyncio
import logging
import socket

log = logging.getLogger("dockyard.engine")
CHUNK = 256 * 1024


def listen_socket(port: int) -> socket.socket:
    """A listening TCP socket on [::]:port for IPv6 only; OSError when the port is taken."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("::", port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def ipv6_available() -> bool:
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close()
    except OSError:
        return False
    return True


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # half-close: the other direction may still be sending
    except (ConnectionError, OSError):
        writer.close()


class Proxies:
    """The relays of every container, by owner (container id)."""

    def __init__(self) -> None:
        self._servers: dict[str, list[asyncio.Server]] = {}

    async def add(self, owner: str, port: int, target_ip: str, target_port: int) -> None:
        """Serve [::]:port -> target_ip:target_port; OSError if the port is taken on IPv6."""
        sock = listen_socket(port)

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.open_connection(target_ip, target_port)
            except OSError:
                writer.close()
                return
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                writer.close()
                up_writer.close()

        server = await asyncio.start_server(relay, sock=sock)
        self._servers.setdefault(owner, []).append(server)

    async def remove(self, owner: str) -> None:
        for server in self._servers.pop(owner, []):
            server.close()
            try:
                await asyncio.wait_for(server.wait_closed(), 1)
            except asyncio.TimeoutError:
                log.warning("proxy of %s: connections still open after close", owner[:12])

    async def close(self) -> None:
        for owner in list(self._servers):
            await self.remove(owner)
