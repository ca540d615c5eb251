"""dockyardd's listening sockets: unix, tcp (+TLS) and systemd's fd://.

Every address the daemon listens on grants root on this host, so the rules
are strict: a unix socket is 0660 root:<group>; tcp needs TLS with client
verification, or the explicit --insecure-tcp (and a loud warning); fd://
takes sockets systemd bound for us (socket activation).
"""

from __future__ import annotations

import errno
import grp
import os
import socket
import ssl
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable
from urllib.parse import urlsplit

from dockyard.errors import Conflict, InvalidArgument, Unavailable

if TYPE_CHECKING:
    from dockyard.engine.config import DaemonConfig

DEFAULT_UNIX_SOCKET = "/var/run/dockyard.sock"
DEFAULT_HOST = "unix://" + DEFAULT_UNIX_SOCKET
DEFAULT_TCP_HOST = "localhost"
DEFAULT_TCP_PORT = 2375
SD_LISTEN_FDS_START = 3

Log = Callable[[str, str], None]


def parse_host(value: str) -> str:
    """Normalise a -H value like dockerd's ParseHost.

    ``""`` -> default unix socket; no scheme -> tcp (``-H 0.0.0.0:2375``);
    ``unix://`` -> default path; ``tcp://`` / ``tcp://:p`` -> localhost and
    port 2375 by default; ``fd://`` / ``fd://N`` as given.
    """
    value = value.strip()
    if not value:
        return DEFAULT_HOST
    proto, sep, rest = value.partition("://")
    if not sep:
        proto, rest = "tcp", value
    if proto == "unix":
        if "://" in rest:
            raise InvalidArgument(f"invalid bind address ({value}): invalid proto, expected unix")
        return "unix://" + (rest or DEFAULT_UNIX_SOCKET)
    if proto == "tcp":
        return _parse_tcp(value, rest)
    if proto == "fd":
        if rest and not rest.isdigit():
            raise InvalidArgument(f"invalid bind address ({value}): fd:// takes a file descriptor number")
        return value
    raise InvalidArgument(f"invalid bind address ({value}): unsupported proto '{proto}'")


def _parse_tcp(value: str, rest: str) -> str:
    if not rest:
        return f"tcp://{DEFAULT_TCP_HOST}:{DEFAULT_TCP_PORT}"
    try:
        url = urlsplit("tcp://" + rest)
        host, port = url.hostname or DEFAULT_TCP_HOST, _port(url.port)
    except ValueError:
        raise InvalidArgument(f"invalid bind address ({value}): invalid port") from None
    if url.path or url.query or url.fragment:
        raise InvalidArgument(f"invalid bind address ({value}): should not contain a path element")
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


@dataclass
class Listener:
    """A bound, listening socket; ``ssl`` wraps accepted connections when set."""

    sock: socket.socket
    ssl: ssl.SSLContext | None
    addr: str
    unlink_path: str | None = None  # a unix socket file we created, removed by close()

    def close(self) -> None:
        self.sock.close()
        if self.unlink_path:
            try:
                os.unlink(self.unlink_path)
            except FileNotFoundError:
                pass


def open_listeners(config: DaemonConfig, *, log: Log) -> list[Listener]:
    """Bind every address in config.hosts; on any failure close what was opened and raise."""
    opened: list[Listener] = []
    activated: list[socket.socket] | None = None
    try:
        for addr in map(parse_host, config.hosts):  # a DaemonConfig built by hand too
            proto, _, rest = addr.partition("://")
            if proto == "unix":
                opened.append(open_unix(rest, config.group, log=log))
            elif proto == "tcp":
                opened.append(open_tcp(addr, config, log=log))
            elif proto == "fd":
                if activated is None:
                    activated = systemd_sockets()
                opened.extend(_pick_fds(addr, rest, activated, config, log))
            else:
                raise InvalidArgument(f"invalid bind address ({addr}): unsupported proto '{proto}'")
    except BaseException:
        for listener in opened:
            listener.close()
        raise
    return opened


def open_unix(path: str, group: str, *, log: Log) -> Listener:
    """Bind a unix socket 0660 root:<group>; a stale socket file is replaced, a live one refused."""
    addr = "unix://" + path
    _clear_stale(path, addr)
    os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # never world-reachable, not even between bind and chmod
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise Unavailable(f"failed to listen on {addr}: {exc.strerror or exc}", path=path) from None
    finally:
        os.umask(old_umask)
    try:
        os.chmod(path, 0o660)
        _chown_group(path, group, log)
        sock.listen(socket.SOMAXCONN)
    except BaseException:
        sock.close()
        os.unlink(path)
        raise
    return Listener(sock, None, addr, unlink_path=path)


def _clear_stale(path: str, addr: str) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise Conflict(f"cannot listen on {addr}: {path} exists and is not a socket", path=path)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise Conflict(f"cannot listen on {addr}: cannot tell whether {path} is in use: "
                           f"{exc.strerror or exc}", path=path) from None
        os.unlink(path)  # nobody answers: a leftover from a daemon that died
        return
    finally:
        probe.close()
    raise Conflict(f"cannot listen on {addr}: another daemon is already listening on it "
                   "(is dockyardd or dockerd running?)", path=path)


def _chown_group(path: str, group: str, log: Log) -> None:
    """Give the socket to ``group`` (name or gid); a missing group keeps ours, like dockerd."""
    try:
        gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        log("warn", f"group {group!r} not found: {path} stays accessible to its owner's group only")
        return
    try:
        os.chown(path, -1, gid)
    except PermissionError as exc:
        log("warn", f"cannot give {path} to group {group!r}: {exc.strerror}")


def open_tcp(addr: str, config: DaemonConfig, *, log: Log) -> Listener:
    """Bind tcp://host:port, with the TLS context the config demands (or refuse)."""
    context = tls_context(addr, config, log=log)
    url = urlsplit(addr)
    host, port = url.hostname or DEFAULT_TCP_HOST, _port(url.port)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InvalidArgument(f"failed to listen on {addr}: {exc.strerror}") from None
    family, kind, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(socket.SOMAXCONN)
    except OSError as exc:
        sock.close()
        raise Unavailable(f"failed to listen on {addr}: {exc.strerror or exc}") from None
    if port == 0:  # an ephemeral port: report the one the kernel chose
        addr = f"tcp://{url.netloc.rsplit(':', 1)[0]}:{sock.getsockname()[1]}"
    return Listener(sock, context, addr)


def _port(port: int | None) -> int:
    return DEFAULT_TCP_PORT if port is None else port


def tls_context(addr: str, config: DaemonConfig, *, log: Log) -> ssl.SSLContext | None:
    """tlsverify: mutual TLS; tls: server-only TLS; neither: refused unless insecure_tcp."""
    if not (config.tls or config.tlsverify):
        if not config.insecure_tcp:
            raise InvalidArgument(
                f"refusing to listen on {addr} without TLS: anyone who reaches an unauthenticated "
                "Dockyard socket is root on this host. Use --tlsverify with --tlscacert, "
                "--tlscert and --tlskey, or --insecure-tcp to accept the risk")
        log("warn", _INSECURE_BANNER.format(addr=addr))
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load(context.load_cert_chain, addr, config.tlscert, config.tlskey)
    if config.tlsverify:
        context.verify_mode = ssl.CERT_REQUIRED
        _load(context.load_verify_locations, addr, config.tlscacert)
    else:
        log("warn", f"{addr} uses TLS without --tlsverify: clients are not authenticated, and "
                    "anyone who reaches this port is root on this host")
    return context


def _load(loader: Callable[..., None], addr: str, *paths: str) -> None:
    try:
        loader(*paths)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidArgument(f"cannot set up TLS for {addr} from {', '.join(paths)}: "
                              f"{getattr(exc, 'strerror', None) or exc}") from None


_INSECURE_BANNER = (
    "\n" + "!" * 78 + "\n"
    "!! Listening on {addr} WITHOUT TLS (--insecure-tcp).\n"
    "!! Anyone who can reach this port has root on this host: no password, no certificate.\n"
    "!! Bind to 127.0.0.1 only, or use --tlsverify --tlscacert --tlscert --tlskey.\n"
    + "!" * 78
)


def systemd_sockets() -> list[socket.socket]:
    """Take the sockets systemd passed (LISTEN_PID/LISTEN_FDS), then clear those variables."""
    pid, count = os.environ.get("LISTEN_PID", ""), os.environ.get("LISTEN_FDS", "")
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    if not pid.isdigit() or int(pid) != os.getpid() or not count.isdigit() or int(count) == 0:
        raise InvalidArgument("no sockets found via socket activation: make sure the service "
                              "was started by systemd")
    socks = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + int(count)):
        try:
            os.set_inheritable(fd, False)  # systemd hands them over without close-on-exec
            socks.append(socket.socket(fileno=fd))
        except OSError as exc:
            for sock in socks:
                sock.close()
            raise InvalidArgument(f"LISTEN_FDS={count} but fd {fd} is not a usable socket: "
                                  f"{exc.strerror or exc}") from None
    return socks


def _pick_fds(addr: str, rest: str, activated: list[socket.socket],
              config: DaemonConfig, log: Log) -> list[Listener]:
    """``fd://`` takes every activated socket, ``fd://N`` just fd N."""
    chosen = [s for s in activated if not rest or s.fileno() == int(rest)]
    if not chosen:
        fds = ", ".join(str(s.fileno()) for s in activated)
        raise InvalidArgument(f"{addr} is not among the sockets systemd passed (fds {fds})")
    listeners = []
    for sock in chosen:
        inet = sock.family in (socket.AF_INET, socket.AF_INET6)
        context = tls_context(f"{addr} (fd {sock.fileno()})", config, log=log) if inet else None
        listeners.append(Listener(sock, context, f"fd://{sock.fileno()}"))
    return listeners
