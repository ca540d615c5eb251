"""The container's init: runs in the cloned child, sets everything up, waits, execs.

Order: wait for ``go`` (in a new user namespace: uid/gid maps
written; otherwise the init sets its own oom_score_adj instead), join
namespaces given by path, new cgroup namespace, session keyring, setsid,
mounts and /dev, prestart/createRuntime hooks (run by the runtime, on
request), createContainer hooks (sysctl, read-only and masked paths are set
by then), pivot_root, console, read-only finish, hostname, rlimits, user switch with
capabilities (and seccomp, without no_new_privs), executable lookup, wait
until the runtime has joined us to the cgroup (it works on that meanwhile),
``ready``, seccomp (with no_new_privs), close the channel (create
succeeded), block opening exec.fifo until ``start``, startContainer hooks, exec.
"""

from __future__ import annotations

import os

from . import hooks
from .process import execve, mark_cloexec_from, prepare_exec, preserve_fds, set_rlimits

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .create import InitConfig


def preload(spec: dict) -> None:
    """Import, in the runtime, every module the init will need after pivot_root.

    Once the init has pivoted into the container's root, the host's Python
    library is out of reach: a lazy import there would fail.
    """
    import stat  # noqa: F401  executable lookup

    import _signal  # noqa: F401  exec

    from ..kernel import consts, keyring, libc  # noqa: F401
    from ..kernel import loopback  # noqa: F401
    from . import capabilities, rootfs  # noqa: F401
    from .cli import _describe  # noqa: F401

    process = spec.get("process") or {}
    if process.get("terminal"):
        import array  # noqa: F401
        import fcntl  # noqa: F401
        import socket  # noqa: F401
        import struct  # noqa: F401
        import termios  # noqa: F401

        from . import console  # noqa: F401
    if (spec.get("linux") or {}).get("seccomp"):
        from . import seccomp  # noqa: F401

        seccomp.preload()


def run(cfg: InitConfig) -> None:
    """Never returns: execs the user process or exits non-zero after reporting."""
    chan = cfg.chan
    try:
        preload(cfg.spec)  # before pivot_root, while the host's Python library is in reach
        joined = _setup(cfg)

        def ready() -> None:
            joined.wait()  # limits in force before anything of the user's runs
            chan.send("ready")

        # The user switch and the rest need no cgroup: they overlap the runtime's join.
        path, args, env = prepare_exec(cfg.spec["process"], cfg.seccomp_program, before_last=ready)
        chan.close()  # EOF tells the runtime create succeeded
        fd = os.open(f"/proc/self/fd/{cfg.fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
        os.write(fd, b"0")
        os.close(fd)
        os.close(cfg.fifo_fd)
        state = _state(cfg, "created")
        hooks.run_hooks(cfg.spec, "startContainer", state)
        execve(path, args, env)
    except BaseException as e:  # report anything, then die: never return into the runtime's code
        _report(chan, e, getattr(cfg, "debug", False))
        os._exit(1)


def _report(chan, e: BaseException, debug: bool = False) -> None:
    from .cli import _describe

    msg = _describe(e) if isinstance(e, OSError) else str(e) or type(e).__name__
    if debug:
        import traceback

        msg += "\n" + "".join(traceback.format_exception(e))
    try:
        chan.send("error", msg=msg)
    except OSError:
        os.write(2, f"dockyard-runtime init: {msg}\n".encode())


def _state(cfg: InitConfig, status: str) -> dict:
    return {"ociVersion": cfg.spec.get("ociVersion", ""), "id": cfg.container_id, "status": status,
            "pid": os.getpid(), "bundle": cfg.bundle, "annotations": cfg.spec.get("annotations") or {}}


def _setup(cfg: InitConfig) -> _CgroupJoin:
    if "user" in cfg.new_types:
        cfg.chan.expect("go")  # uid/gid maps written
    else:
        adj = cfg.spec["process"].get("oomScoreAdj")
        if adj is not None:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(adj))
    joined = _CgroupJoin(cfg.chan)
    _enter_namespaces(cfg, joined)
    builder = _build_rootfs(cfg, joined)
    _finish(cfg, builder)
    return joined


def _enter_namespaces(cfg: InitConfig, joined: _CgroupJoin) -> None:
    """New mount/uts/ipc/net namespaces, joined ones, root in a new user namespace, cgroup namespace, lo,
    keyring, session."""
    from ..kernel import consts as c
    from ..kernel import libc

    if cfg.unshare_flags:
        libc.unshare(cfg.unshare_flags)  # before the joins, as if the clone had made them
    for kind, path in cfg.joins:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            libc.setns(fd, c.NAMESPACE_FLAGS[kind])
        finally:
            os.close(fd)
    if "user" in cfg.new_types:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    if "cgroup" in cfg.new_types:
        joined.wait()  # the namespace's root is the cgroup we are in when unsharing
        libc.unshare(c.CLONE_NEWCGROUP)
    if "network" in cfg.new_types:
        from ..kernel import loopback

        loopback.bring_up()  # a new network namespace gets a working lo, as with runc
    if not cfg.no_new_keyring:
        _join_session_keyring(cfg.container_id)
    os.setsid()


def _build_rootfs(cfg: InitConfig, joined: _CgroupJoin):
    """Mounts, the runtime-side hooks, createContainer hooks, then the root switch."""
    from ..kernel import libc

    spec = cfg.spec
    builder = None
    if "mount" in cfg.new_types or any(k == "mount" for k, _ in cfg.joins):
        from .rootfs import RootfsBuilder

        builder = RootfsBuilder(spec, cfg.rootfs, libc, joined.container_mounts, cgroup_dirs=joined,
                                new_cgroupns="cgroup" in cfg.new_types,
                                new_netns="network" in cfg.new_types or any(k == "network" for k, _ in cfg.joins),
                                in_userns="user" in cfg.new_types)
    hook_names = spec.get("hooks") or {}
    runtime_hooks = bool(hook_names.get("prestart") or hook_names.get("createRuntime"))
    # Hooks see the tree as runc leaves it for them: mounted, not yet hardened.
    late_protect = runtime_hooks or bool(hook_names.get("createContainer"))
    if builder is not None:
        builder.prepare(protect=not late_protect)
    if runtime_hooks:
        cfg.chan.send("hooks")
        cfg.chan.expect("resume")
    if builder is not None:
        os.chdir(cfg.rootfs)
        hooks.run_hooks(spec, "createContainer", _state(cfg, "creating"))
        if late_protect:
            builder.protect()
        builder.pivot(cfg.no_pivot)
    else:
        os.chroot(cfg.rootfs)
        os.chdir("/")
    return builder


def _finish(cfg: InitConfig, builder) -> None:
    """Inside the new root: cwd, console, read-only remounts, names, sysctl, paths, limits."""
    from ..kernel import libc

    spec, process = cfg.spec, cfg.spec["process"]
    linux = spec.get("linux") or {}
    os.makedirs(process.get("cwd") or "/", 0o755, exist_ok=True)
    if process.get("terminal"):
        _setup_console(cfg)
    if builder is not None:
        builder.finalize()
    if spec.get("hostname"):
        libc.sethostname(spec["hostname"])
    if spec.get("domainname"):
        libc.setdomainname(spec["domainname"])
    if builder is None:  # with a mount namespace the builder did these before pivot_root
        for key, value in (linux.get("sysctl") or {}).items():
            with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
                f.write(value)
    if process.get("apparmorProfile"):
        apply_apparmor(process["apparmorProfile"])
    set_rlimits(process)
    mark_cloexec_from(preserve_fds(cfg.preserve))


class _CgroupJoin:
    """The runtime's words about the init's cgroup (see sync), each waited for once.

    ``cgroup`` carries what /sys/fs/cgroup must show (the manager's
    ``container_mounts``), before the dirs exist: :meth:`dir_ready` tells
    when one does. ``cgdirs`` says they all do, ``joined`` that the init is
    in its cgroup with the limits set.
    """

    POLL = 0.0002  # seconds between looks for a cgroup dir the runtime is making

    def __init__(self, chan) -> None:
        self.chan = chan
        self.mounts: list[tuple[str, str]] | None = None
        self.joined = False

    def wait(self) -> None:
        if not self.joined:
            self.container_mounts()
            self.chan.expect("joined")
            self.joined = True

    def container_mounts(self) -> list[tuple[str, str]]:
        if self.mounts is None:
            self.mounts = [(host, name) for host, name in self.chan.expect("cgroup").get("mounts") or []]
        return self.mounts

    def dir_ready(self, path: str) -> bool:
        """Whether ``path`` can be bound: it exists, or the runtime has made every dir."""
        return self.joined or "cgdirs" in self.chan.noticed or os.path.isdir(path)

    def wait_a_little(self) -> None:
        self.chan.notice_within(self.POLL)


def _setup_console(cfg: InitConfig) -> None:
    from ..kernel import consts as c
    from ..kernel import libc
    from .console import become_controlling, open_pty

    master, slave, name = open_pty(cfg.spec["process"].get("consoleSize"))
    if os.path.exists("/dev"):
        console = "/dev/console"
        if not os.path.lexists(console):
            os.close(os.open(console, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        libc.mount(name, console, None, c.MS_BIND)
    cfg.chan.send("console")  # the runtime forwards it to --console-socket or relays it
    cfg.chan.send_fd(master)
    os.close(master)
    become_controlling(slave)


def _join_session_keyring(container_id: str) -> None:
    """A fresh session keyring per container, so keys are not shared with the host."""
    from ..kernel import keyring

    keyring.join_session(f"_ses.{container_id}")


def apply_apparmor(profile: str) -> None:
    for path in ("/proc/self/attr/apparmor/exec", "/proc/self/attr/exec"):
        if os.path.exists(path):
            with open(path, "w") as f:
                f.write(f"exec {profile}")
            return
    raise OSError(f"apparmor profile {profile!r} requested but AppArmor is not available")
