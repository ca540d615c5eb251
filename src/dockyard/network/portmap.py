"""Published ports: what a container asks for, and host ports handed out and held for it.

``requested`` turns the engine's Config.ExposedPorts / HostConfig.PortBindings / PublishAllPorts
into a list of wanted bindings; ``PortAllocator`` picks host ports and reserves each one by
holding a socket bound to it (not listening, SO_REUSEADDR off), so no host program can take a
published port and a port a host program already holds is refused with dockerd's text.
IPv4 only: a binding with an empty HostIp means 0.0.0.0, and no "::" entries are reported
(dockerd adds those only when IPv6 is on).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import threading
from dataclasses import dataclass

from dockyard.errors import Conflict, DockyardError, InvalidArgument

PROTOS = ("tcp", "udp", "sctp")
PORT_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
DEFAULT_RANGE = (32768, 60999)
_SOCK = {"tcp": (socket.SOCK_STREAM, 0), "udp": (socket.SOCK_DGRAM, 0),
         "sctp": (socket.SOCK_STREAM, getattr(socket, "IPPROTO_SCTP", 132))}


@dataclass(frozen=True)
class Binding:
    """One published port: container_port/proto reachable at host_ip:host_port ("" = any)."""

    container_port: int
    proto: str
    host_ip: str
    host_port: int


def _bad(text: str) -> InvalidArgument:
    return InvalidArgument(f'invalid port specification: "{text}"')


def parse_key(key: str) -> tuple[int, str]:
    """ "80/tcp", "53/udp" or "80" (tcp) -> (80, "tcp")."""
    num, _, proto = str(key).partition("/")
    proto = (proto or "tcp").lower()
    if not num.isdigit() or not 1 <= int(num) <= 65535:
        raise _bad(num)
    if proto not in PROTOS:
        raise InvalidArgument(f"invalid proto: {proto}")
    return int(num), proto


def parse_spec(spec: str) -> tuple[int, int]:
    """A HostPort value: "" or "0" -> (0, 0) (any), "8080" -> (8080, 8080), "8000-8010"."""
    text = (spec or "").strip()
    if text in ("", "0"):
        return 0, 0
    lo, dash, hi = text.partition("-")
    if not lo.isdigit() or (dash and not hi.isdigit()):
        raise _bad(text)
    start, end = int(lo), int(hi) if dash else int(lo)
    if not 1 <= start <= end <= 65535:
        raise _bad(text)
    return start, end


def _host_ip(text: str | None) -> str | None:
    """The HostIp normalised ("" = any, for "" and 0.0.0.0); None for "::" (IPv6: skipped)."""
    ip = (text or "").strip()
    if ip == "":
        return ""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        raise InvalidArgument(f"invalid IP address: {ip}") from None
    if addr.version == 6:
        if addr.is_unspecified:
            return None
        raise InvalidArgument(f"IPv6 port bindings are not supported: {ip}")
    return "" if addr.is_unspecified else str(addr)


def requested(exposed: dict | None, port_bindings: dict | None,
              publish_all: bool) -> list[tuple[int, str, str, str]]:
    """(container_port, proto, host_ip, host_port_spec) for every binding wanted, in port order.

    Ports are the exposed ones plus the keys of PortBindings; a port with bindings gets each of
    them, one without gets a random host port when publish_all is set.
    """
    bindings = port_bindings or {}
    ports: dict[tuple[int, str], list] = {}
    for key in list(exposed or {}) + list(bindings):
        ports.setdefault(parse_key(key), [])
    for key, entries in bindings.items():
        ports[parse_key(key)].extend(entries or [])
    out: list[tuple[int, str, str, str]] = []
    for (port, proto), entries in sorted(ports.items()):
        for entry in entries:
            entry = entry or {}
            host_ip = _host_ip(entry.get("HostIp"))
            spec = str(entry.get("HostPort") or "").strip()
            parse_spec(spec)
            if host_ip is not None:
                out.append((port, proto, host_ip, spec))
        if publish_all and not entries:
            out.append((port, proto, "", ""))
    return out


def ports_doc(exposed: dict | None, bindings: list[Binding]) -> dict:
    """inspect NetworkSettings.Ports: {"80/tcp": [{"HostIp", "HostPort"}], "443/tcp": None}."""
    doc: dict[str, list[dict[str, str]] | None] = {}
    for key in exposed or {}:
        port, proto = parse_key(key)
        doc[f"{port}/{proto}"] = None
    for b in bindings:
        entries = doc.get(f"{b.container_port}/{b.proto}") or []
        entries.append({"HostIp": b.host_ip or "0.0.0.0", "HostPort": str(b.host_port)})
        doc[f"{b.container_port}/{b.proto}"] = entries
    return doc


def local_port_range(path: str = PORT_RANGE_FILE) -> tuple[int, int]:
    """The kernel's ephemeral port range, where random host ports come from."""
    try:
        with open(path) as f:
            lo, hi = (int(x) for x in f.read().split()[:2])
        if 1 <= lo <= hi <= 65535:
            return lo, hi
    except (OSError, ValueError):
        pass
    return DEFAULT_RANGE


def endpoint_error(err: DockyardError, endpoint: str, endpoint_id: str) -> DockyardError:
    """dockerd's wrapping of a port error when a container's endpoint is set up."""
    text = f"driver failed programming external connectivity on endpoint {endpoint} ({endpoint_id}): {err}"
    return type(err)(text, id=err.id)


def _reason(e: OSError) -> str:
    """The kernel's reason as Go prints it ("address already in use")."""
    text = os.strerror(e.errno) if e.errno else str(e)
    return text[:1].lower() + text[1:]


def _shown(host_ip: str) -> str:
    return host_ip or "0.0.0.0"


def _hold(proto: str, host_ip: str, port: int) -> socket.socket:
    """A socket bound to host_ip:port and kept open, which reserves the port; OSError if taken."""
    kind, sproto = _SOCK[proto]
    sock = socket.socket(socket.AF_INET, kind, sproto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        sock.set_inheritable(False)
        sock.bind((_shown(host_ip), port))
    except OSError:
        sock.close()
        raise
    return sock


Key = tuple[str, str, int]  # (proto, host_ip, host_port)


class PortAllocator:
    """Host ports in use by containers, each reserved by a held socket. Thread-safe."""

    def __init__(self, random_range: tuple[int, int] | None = None) -> None:
        self._lock = threading.Lock()
        self._owners: dict[Key, str] = {}
        self._socks: dict[Key, socket.socket | None] = {}
        self._range = random_range
        self._last: dict[tuple[str, str], int] = {}

    def allocate(self, owner: str, container_port: int, proto: str, host_ip: str, spec: str) -> Binding:
        """Reserve a host port for owner: the one in spec, the first free in a range, or any."""
        if proto not in PROTOS:
            raise InvalidArgument(f"invalid proto: {proto}")
        host_ip = _host_ip(host_ip) or ""
        start, end = parse_spec(spec)
        with self._lock:
            if start == end and start:
                port = self._take_fixed(owner, proto, host_ip, start)
            elif start:
                port = self._take_first(owner, proto, host_ip, range(start, end + 1))
            else:
                port = self._take_first(owner, proto, host_ip, self._random_order(proto, host_ip))
                self._last[(proto, host_ip)] = port
        return Binding(container_port, proto, host_ip, port)

    def _take_fixed(self, owner: str, proto: str, host_ip: str, port: int) -> int:
        key = (proto, host_ip, port)
        if key in self._owners:
            raise Conflict(f"Bind for {_shown(host_ip)}:{port} failed: port is already allocated")
        try:
            self._socks[key] = _hold(proto, host_ip, port)
        except OSError as e:
            raise DockyardError(f"Error starting userland proxy: listen {proto}4 {_shown(host_ip)}:{port}: "
                                f"bind: {_reason(e)}") from None
        self._owners[key] = owner
        return port

    def _take_first(self, owner: str, proto: str, host_ip: str, ports: range | list[int]) -> int:
        for port in ports:
            key = (proto, host_ip, port)
            if key in self._owners:
                continue
            try:
                self._socks[key] = _hold(proto, host_ip, port)
            except OSError as e:
                if e.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise DockyardError(f"Error starting userland proxy: listen {proto}4 {_shown(host_ip)}:{port}: "
                                    f"bind: {_reason(e)}") from None
            self._owners[key] = owner
            return port
        raise Conflict("all ports are allocated")

    def _random_order(self, proto: str, host_ip: str) -> list[int]:
        """The ephemeral range, starting after the last port handed out (as dockerd does)."""
        lo, hi = self._range or local_port_range()
        last = self._last.get((proto, host_ip), lo - 1)
        first = last + 1 if lo <= last < hi else lo
        return list(range(first, hi + 1)) + list(range(lo, first))

    def adopt(self, owner: str, binding: Binding) -> None:
        """Record a port found in use after a daemon restart, and hold it again if it is free.

        The port stays recorded even when a host program took it meanwhile (its DNAT rule still
        serves the container); only another owner holding it is an error.
        """
        host_ip = _host_ip(binding.host_ip) or ""
        key = (binding.proto, host_ip, binding.host_port)
        with self._lock:
            holder = self._owners.get(key)
            if holder == owner:
                return
            if holder is not None:
                raise Conflict(f"Bind for {_shown(host_ip)}:{binding.host_port} failed: port is already allocated")
            try:
                self._socks[key] = _hold(binding.proto, host_ip, binding.host_port)
            except OSError:
                self._socks[key] = None
            self._owners[key] = owner

    def release(self, owner: str) -> None:
        """Free every port of owner (nothing to do when it has none)."""
        with self._lock:
            for key in [k for k, o in self._owners.items() if o == owner]:
                del self._owners[key]
                sock = self._socks.pop(key, None)
                if sock is not None:
                    sock.close()
