"""Start the kernel's slow part of a cgroup move as early as the runtime can.

Moving a process into a cgroup takes the global cgroup_threadgroup_rwsem for
writing, and a writer arriving when there has been none for a while waits for
an RCU grace period (10-35 ms on the benchmark VM; runc pays it too) while
holding cgroup_mutex, so that even a cgroup mkdir waits behind it. Writers
that follow within a grace period do not wait. A thread of the runtime
re-writes the runtime's pid into the cgroup it is already in (a no-op move;
the runtime itself is never moved elsewhere), so that by the time ``create``
makes the container's cgroup and moves the init, the wait has passed in
parallel with the runtime's own start-up.

A thread rather than a child process: after a fork every page the runtime
writes is a copy-on-write fault. This module imports nothing but builtin
modules, so that the launcher can call :func:`early` before anything else.
"""

from __future__ import annotations

import posix

# runc's global flags that take a value: the command is the first argument after the global flags.
GLOBAL_VALUE_FLAGS = ("log", "log-format", "root", "criu", "rootless")
WARM_COMMANDS = ("create", "run", "exec")
CGROUP_ROOT = "/sys/fs/cgroup"

_started = False


def command_of(argv: list[str]) -> str | None:
    """The command word of a dockyard-runtime command line (None if there is none)."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return argv[i + 1] if i + 1 < len(argv) else None
        if not arg.startswith("-") or arg == "-":
            return arg
        name = arg.lstrip("-")
        if "=" not in name and name in GLOBAL_VALUE_FLAGS:
            i += 1
        i += 1
    return None


def early(argv: list[str]) -> None:
    """Start the warm-up if ``argv`` (without the program name) runs a command that moves a process."""
    if command_of(argv) in WARM_COMMANDS:
        start()


def start(root: str = CGROUP_ROOT) -> None:
    """Start the warm-up thread (once per process); returns once it is blocked in the kernel."""
    global _started
    if _started:
        return
    _started = True
    try:
        fd = posix.open(_own_procs_file(root), posix.O_WRONLY | posix.O_CLOEXEC)
    except (OSError, ValueError):  # best effort: only a warm-up
        return
    import _thread

    begun = _thread.allocate_lock()
    begun.acquire()
    _thread.start_new_thread(_warm, (fd, begun))
    begun.acquire()  # releases the GIL until the thread is about to block in write(2)


def _own_procs_file(root: str) -> str:
    """cgroup.procs of this process's cgroup: the unified one, or the first v1 hierarchy's."""
    fd = posix.open("/proc/self/cgroup", posix.O_RDONLY | posix.O_CLOEXEC)
    try:
        line = posix.read(fd, 4096).split(b"\n", 1)[0].decode()  # "N:controllers:/path" (v2: "0::/path")
    finally:
        posix.close(fd)
    _, controllers, path = line.split(":", 2)
    try:
        posix.stat(root + "/cgroup.controllers")  # a cgroup2 mount (see cgroups.detect)
        return f"{root}{path}/cgroup.procs"
    except OSError:
        hierarchy = controllers.split(",")[0].replace("name=", "")
        return f"{root}/{hierarchy}{path}/cgroup.procs"


def _warm(fd: int, begun) -> None:
    begun.release()
    try:
        posix.write(fd, b"0")
    except OSError:
        pass
    finally:
        posix.close(fd)
