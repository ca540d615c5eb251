"""Bring up ``lo`` in a fresh network namespace (SIOCGIFFLAGS/SIOCSIFFLAGS)."""

from __future__ import annotations

import os

from . import libc

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
AF_INET = 2
SOCK_DGRAM = 2


def bring_up() -> None:
    """Set IFF_UP on the loopback device of the current network namespace."""
    fd = libc.socket(AF_INET, SOCK_DGRAM)
    try:
        name = b"lo".ljust(16, b"\0")  # struct ifreq: the name, then ifr_flags (a short), padded to 40 bytes
        flags = int.from_bytes(libc.ioctl_buffer(fd, SIOCGIFFLAGS, name + bytes(24))[16:18], "little")
        if not flags & IFF_UP:
            libc.ioctl_buffer(fd, SIOCSIFFLAGS, name + (flags | IFF_UP).to_bytes(2, "little") + bytes(22))
    finally:
        os.close(fd)
