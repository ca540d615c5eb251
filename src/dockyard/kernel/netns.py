"""Network namespaces kept alive by a bind mount, and work done inside one.

A container's network namespace is made by the engine before the runtime runs, so that
links, addresses, routes and the embedded DNS server's sockets can be set up in it while
the container is created, and so that it outlives the engine (live-restore). The namespace
is a file: ``create(path)`` bind-mounts a fresh namespace onto it, ``remove(path)`` drops it.

Namespace membership is per thread, so work inside a namespace runs on a short-lived helper
thread that enters it with setns(2); the caller's threads never change namespace. Sockets
(netlink ones included) stay in the namespace they were created in, which is how the engine
serves DNS inside containers from its own process.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Callable, TypeVar

from dockyard.kernel import libc

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MNT_DETACH = 0x2

T = TypeVar("T")


def _on_thread(fn: Callable[[], T]) -> T:
    """Run fn on a fresh thread and return its result (or raise its exception) here."""
    box: dict[str, object] = {}

    def body() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the caller
            box["error"] = e

    t = threading.Thread(target=body, name="netns", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def create(path: str) -> None:
    """A new, empty network namespace bind-mounted at path (the file is created)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444)
    os.close(fd)

    def make() -> None:
        libc.unshare(CLONE_NEWNET)  # this thread only; it ends right after
        libc.mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", path, None, MS_BIND)

    try:
        _on_thread(make)
    except BaseException:
        os.unlink(path)
        raise


def remove(path: str) -> None:
    """Unmount and delete a namespace file; nothing to do when it is gone already."""
    try:
        libc.umount2(path, MNT_DETACH)
    except OSError:
        pass
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def exists(path: str) -> bool:
    """True when path is a live namespace (nsfs) mount, not just a left-over empty file."""
    try:
        return os.stat(path).st_dev == os.stat("/proc/self/ns/net").st_dev
    except OSError:
        return False


def run_in(path: str, fn: Callable[[], T]) -> T:
    """Run fn inside the namespace at path (a file from create() or /proc/<pid>/ns/net)."""
    def entered() -> T:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            libc.setns(fd, CLONE_NEWNET)
        finally:
            os.close(fd)
        return fn()

    return _on_thread(entered)


def socket_in(path: str, family: int, type: int, proto: int = 0) -> socket.socket:
    """A socket created inside the namespace at path; it stays there whichever thread uses it."""
    return run_in(path, lambda: socket.socket(family, type, proto))
