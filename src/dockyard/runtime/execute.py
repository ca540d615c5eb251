"""``exec``: run another process inside a running container.

The runtime forks a helper that joins the container's namespaces (user, ipc,
uts, net, pid, mnt, cgroup: the init's /proc/<pid>/ns files) and forks the
process, which is then in the container's PID namespace. The runtime moves it
into the container's cgroup, forwards its pty master to --console-socket (or
relays it), and, unless --detach, waits for it and exits with its status.
"""

from __future__ import annotations

from ..oci import jsonio
import os

from ..errors import InvalidArgument
from . import state as st

_JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "mount", "cgroup")


def main(ctx, command, opts, args) -> int:
    container = st.load(ctx.root, args[0])
    st.check_can_exec(container.status(), opts.flag("ignore-paused"))
    process = build_process(container.config, opts, args[1:])
    detach = opts.flag("detach")
    terminal = bool(process.get("terminal"))
    console_socket = opts.get("console-socket")
    if terminal and detach and not console_socket:
        raise InvalidArgument("cannot allocate tty if dockyard-runtime will detach without setting console socket")
    if console_socket and not (terminal and detach):
        raise InvalidArgument("cannot use console socket if dockyard-runtime will not detach or allocate tty")
    if not detach:
        from ..kernel import libc
        from ..kernel.consts import PR_SET_CHILD_SUBREAPER

        libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
    pid, master = _spawn(container, process, console_socket, terminal and not detach,
                         int(opts.get("preserve-fds") or 0))
    if opts.get("pid-file"):
        from .create import write_pid_file

        write_pid_file(opts["pid-file"], pid)
    if detach:
        return 0
    from .run import _forward_signals, _wait

    forward = _forward_signals(pid)
    if master is not None:
        from .console import relay

        relay(master)
    return _wait(pid, forward)


def build_process(config: dict, opts, argv: list[str]) -> dict:
    """The process to run: --process JSON, or the container's process with flags applied."""
    from ..oci.runtime_spec import validate_process

    if opts.get("process"):
        with open(opts["process"], "rb") as f:
            process = jsonio.loads(f.read())
        validate_process(process)
        return process
    process = jsonio.loads(jsonio.dumps(config.get("process") or {}))
    process["args"] = argv
    if opts.get("cwd"):
        process["cwd"] = opts["cwd"]
    if opts.get("apparmor"):
        process["apparmorProfile"] = opts["apparmor"]
    caps = process.setdefault("capabilities", {})
    for cap in opts.get("cap") or []:
        for kind in ("bounding", "effective", "permitted", "ambient"):
            caps.setdefault(kind, []).append(cap)
    process["env"] = (process.get("env") or []) + (opts.get("env") or [])
    process["terminal"] = opts.flag("tty")
    if "no-new-privs" in opts:
        process["noNewPrivileges"] = opts.flag("no-new-privs")
    user = process.setdefault("user", {})
    if opts.get("user"):
        uid, _, gid = opts["user"].partition(":")
        if gid:
            user["gid"] = _int(gid, "gid")
        user["uid"] = _int(uid, "uid")
    for gid in opts.get("additional-gids") or []:
        user.setdefault("additionalGids", []).append(_int(gid, "additional gid"))
    validate_process(process)
    return process


def _int(raw: str, what: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise InvalidArgument(f"parsing {raw} as int for {what} failed") from None


def _spawn(container: st.Container, process: dict, console_socket, console_to_parent: bool, preserve: int):
    """Start the process in the container; returns (pid, pty master or None)."""
    from ..kernel.consts import NAMESPACE_FLAGS, NAMESPACE_PROC_NAMES
    from . import sync
    from .init import preload

    config = container.config
    preload({"process": process, "linux": config.get("linux")})
    kinds = {ns["type"] for ns in (config.get("linux") or {}).get("namespaces") or []}
    paths = [(k, f"/proc/{container.pid}/ns/{NAMESPACE_PROC_NAMES[k]}") for k in _JOIN_ORDER if k in kinds]
    fds = [(NAMESPACE_FLAGS[k], os.open(p, os.O_RDONLY | os.O_CLOEXEC)) for k, p in paths]
    from .process import compile_seccomp

    program = compile_seccomp(config.get("linux"), os.path.dirname(container.dir))
    parent, child = sync.pair(with_socket=bool(process.get("terminal")))
    middle = os.fork()
    if middle == 0:
        parent.close()  # so that the runtime's death is an end of file here
        _middle(child, fds, process, program, preserve)
    child.close()
    for _, fd in fds:
        os.close(fd)
    master = None
    try:
        pid = int(parent.expect("pid")["pid"])
        os.waitpid(middle, 0)
        container.cgroup().enter(pid)
        parent.send("go")
        while True:
            msg = parent.recv()
            if msg is None:
                break
            if msg["t"] == "error":
                from .create import InitError

                raise InitError("unable to start container process: " + msg["msg"])
            if msg["t"] == "console":
                master = parent.recv_fd()
                if console_socket:
                    from .console import send_to_socket

                    send_to_socket(console_socket, master)
                    os.close(master)
                    master = None
    finally:
        parent.close()
    return pid, master


def _middle(chan, fds, process: dict, program, preserve: int) -> None:
    """In the forked helper: join the namespaces, fork the process, report its pid."""
    from ..kernel import libc
    from .init import _report

    try:
        for flag, fd in fds:
            libc.setns(fd, flag)
        pid = os.fork()
        if pid == 0:
            _process(chan, process, program, preserve)
        chan.send("pid", pid=pid)
        os._exit(0)
    except BaseException as e:
        _report(chan, e)
        os._exit(1)


def _process(chan, process: dict, program, preserve: int) -> None:
    """The exec'd process's side: console, limits, identity, then execve."""
    from .init import _report, apply_apparmor
    from .process import execve, mark_cloexec_from, prepare_exec, preserve_fds, set_rlimits

    try:
        chan.expect("go")
        if process.get("terminal"):
            os.setsid()
            from .console import become_controlling, open_pty

            master, slave, _ = open_pty(process.get("consoleSize"))
            chan.send("console")
            chan.send_fd(master)
            os.close(master)
            become_controlling(slave)
        if process.get("apparmorProfile"):
            apply_apparmor(process["apparmorProfile"])
        set_rlimits(process)
        mark_cloexec_from(preserve_fds(preserve))
        path, args, env = prepare_exec(process, program)
        chan.close()
        execve(path, args, env)
    except BaseException as e:
        _report(chan, e)
        os._exit(1)
