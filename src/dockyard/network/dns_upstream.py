"""Sending one DNS query to an upstream server and getting its reply, as raw bytes.

The embedded DNS server forwards names it does not own to the container's upstream servers. The
query goes out as the container sent it, except for a fresh random message id (so that a reply
can't be forged by anyone who saw the container's id), and the reply comes back untouched. These
calls run in the engine's own network namespace, so a resolver on the host's loopback works.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket

Address = tuple[str, int]

TIMEOUT = 2.0        # seconds for one exchange with one server
MAX_MESSAGE = 65535  # largest DNS message (TCP framing limit)
QR = 0x80            # the "this is a response" bit of the flags' first byte
TC = 0x02            # the "truncated" bit of the flags' first byte


def parse_address(text: str) -> Address:
    """"ip", "ip:port", "[v6]:port" or a bare IPv6 address -> (ip, port); ValueError when bad."""
    text = text.strip()
    port = 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"bad DNS server address {text!r}")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, p = text.partition(":")
        port = int(p)
    else:
        host = text
    ip = ipaddress.ip_address(host)
    if not 0 < port < 65536:
        raise ValueError(f"bad DNS server port in {text!r}")
    return str(ip), port


def truncated(reply: bytes) -> bool:
    return len(reply) >= 3 and bool(reply[2] & TC)


def _with_id(wire: bytes, qid: bytes) -> bytes:
    return qid + wire[2:]


def _family(addr: Address) -> int:
    return socket.AF_INET6 if ":" in addr[0] else socket.AF_INET


async def udp(wire: bytes, addr: Address, timeout: float | None = None) -> bytes:
    """One UDP exchange; the reply carries the query's original id. Raises OSError/TimeoutError."""
    loop = asyncio.get_running_loop()
    timeout = TIMEOUT if timeout is None else timeout
    qid = os.urandom(2)
    out = _with_id(wire, qid)
    sock = socket.socket(_family(addr), socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.connect(addr)  # a connected socket only receives from addr (and sees ICMP refusals)
        await loop.sock_sendall(sock, out)
        async with asyncio.timeout(timeout):
            while True:
                data = await loop.sock_recv(sock, MAX_MESSAGE)
                if len(data) >= 12 and data[:2] == qid and data[2] & QR:
                    return _with_id(data, wire[:2])
    finally:
        sock.close()


async def tcp(wire: bytes, addr: Address, timeout: float | None = None) -> bytes:
    """One TCP exchange (2-byte length framing); the reply carries the query's original id."""
    qid = os.urandom(2)
    async with asyncio.timeout(TIMEOUT if timeout is None else timeout):
        reader, writer = await asyncio.open_connection(addr[0], addr[1])
        try:
            writer.write(len(wire).to_bytes(2, "big") + _with_id(wire, qid))
            while True:
                size = int.from_bytes(await reader.readexactly(2), "big")
                data = await reader.readexactly(size)
                if len(data) >= 12 and data[:2] == qid and data[2] & QR:
                    return _with_id(data, wire[:2])
        finally:
            writer.close()


async def exchange(wire: bytes, addr: Address, limit: int, timeout: float | None = None) -> bytes:
    """UDP first; when the reply is truncated, the same query over TCP.

    limit is the largest reply the client can take (its UDP payload size, or 65535 over TCP). A
    TCP reply that does not fit it is dropped in favour of the truncated UDP one, which tells the
    client to come back over TCP itself.
    """
    reply = await udp(wire, addr, timeout)
    if not truncated(reply):
        return reply
    try:
        full = await tcp(wire, addr, timeout)
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return reply
    return full if len(full) <= limit else reply
