"""Kernel tunables under /proc/sys that networking depends on.

Network sysctls are per network namespace, and /proc/sys/net shows the namespace of the
thread that opens the file, so these act on the caller's thread's namespace (wrap them in
``kernel.netns.run_in`` to act on another one).
"""

from __future__ import annotations

import os

from dockyard.errors import Unavailable

PROC_SYS = "/proc/sys"


def _path(name: str) -> str:
    """The file for a name like "net/ipv4/ip_forward" (a leading /proc/sys/ is accepted)."""
    if name.startswith(PROC_SYS + "/"):
        return name
    return os.path.join(PROC_SYS, name.lstrip("/"))


def read(name: str) -> str | None:
    """The value of a sysctl, stripped; None when the kernel does not have it."""
    try:
        with open(_path(name)) as f:
            return f.read().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None


def write(name: str, value: str) -> None:
    """Set a sysctl; skipped when it already has the value (read-only /proc/sys still works then)."""
    if read(name) == value:
        return
    try:
        with open(_path(name), "w") as f:
            f.write(value)
    except OSError as e:
        raise Unavailable(f"cannot set {_path(name)} to {value}: {e.strerror or e}") from e


def set_forwarding() -> None:
    """Turn on IPv4 forwarding, without which bridged containers cannot reach out."""
    write("net/ipv4/ip_forward", "1")


def set_route_localnet(ifname: str) -> None:
    """Let packets to 127.0.0.0/8 be routed out of ifname, so loopback DNAT to containers works."""
    write(f"net/ipv4/conf/{ifname}/route_localnet", "1")
