"""``create``: build the container from its bundle, leaving init blocked on exec.fifo.

The runtime validates the whole config first (nothing is created for a config
that cannot be applied), makes the state directory, the exec fifo and the
cgroup, clones the init into its new namespaces, maps its user namespace, moves
it into the cgroup, and serves its requests (hooks, console) until it closes the
channel. On any failure everything made so far is undone: no state dir, mount,
cgroup or process is left behind.
"""

from __future__ import annotations

import os
import time

from ..errors import Conflict, DockyardError, InvalidArgument
from . import state as st
from .cli import CommandError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .cgroups import Manager
    from .sync import Channel


def main(ctx, command, opts, args) -> int:
    create(ctx, args[0], opts, detach=True)
    return 0


def create(ctx, container_id: str, opts, *, detach: bool):
    """Create the container; returns (Container, console master fd or None)."""
    from ..oci.runtime_spec import load_bundle

    st.validate_id(container_id)
    bundle = os.path.abspath(opts.get("bundle") or ".")
    spec, rootfs = load_bundle(bundle)
    process = spec.get("process")
    if process is None:
        raise InvalidArgument("process property must not be empty")
    terminal = bool(process.get("terminal"))
    console_socket = opts.get("console-socket")
    if terminal and detach and not console_socket:
        raise CommandError("cannot allocate tty if dockyard-runtime will detach without setting console socket")
    if console_socket and not (terminal and detach):
        raise CommandError("cannot use console socket if dockyard-runtime will not detach or allocate tty")
    os.makedirs(ctx.root, 0o700, exist_ok=True)
    container = st.Container(ctx.root, container_id)
    try:
        os.mkdir(container.dir, 0o711)
    except FileExistsError:
        raise Conflict("container with given ID already exists", id=container_id) from None
    builder = _Builder(ctx, container, spec, bundle, rootfs, opts, console_socket)
    try:
        master = builder.build()
    except BaseException:
        builder.undo()
        raise
    return container, master


class _Builder:
    """The runtime's side of create, with everything needed to undo it."""

    def __init__(self, ctx, container, spec, bundle, rootfs, opts, console_socket) -> None:
        self.ctx = ctx
        self.container = container
        self.spec = spec
        self.bundle = bundle
        self.rootfs = rootfs
        self.opts = opts
        self.console_socket = console_socket
        self.pid = 0
        self.cgroup: Manager | None = None
        self.resources: dict = {}

    def build(self):
        from . import cgroups, sync
        from .namespaces import plan
        from .process import compile_seccomp

        spec, linux = self.spec, self.spec.get("linux") or {}
        ns = plan(linux.get("namespaces") or [], linux.get("timeOffsets"))
        program = compile_seccomp(linux, self.ctx.root)
        fifo = self.container.fifo_path
        os.mkfifo(fifo)
        os.chmod(fifo, 0o622)  # the init opens it after switching to the container user
        fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
        parent, child = sync.pair(with_socket=bool(spec["process"].get("terminal")))
        cfg = InitConfig(
            spec=spec, container_id=self.container.id, bundle=self.bundle, rootfs=self.rootfs, chan=child,
            fifo_fd=fifo_fd, joins=ns.joins, new_types=ns.new_types, unshare_flags=ns.init_unshare_flags,
            no_pivot=self.opts.flag("no-pivot"), preserve=int(self.opts.get("preserve-fds") or 0),
            no_new_keyring=self.opts.flag("no-new-keyring"), debug=self.ctx.debug, seccomp_program=program)
        if ns.time_offsets is not None:
            ns.enter_time_namespace()
        # The init imports what it needs itself, in parallel with the rest of create.
        self.pid = ns.spawn(lambda: _child(cfg, parent))
        child.close()
        os.close(fifo_fd)
        try:
            # After the clone, so that the init imports its modules meanwhile (measured: about 3 ms
            # sooner than making the manager first, even though copy-on-write faults slow this down).
            self.cgroup = cgroups.new_manager(linux.get("cgroupsPath"), self.container.id)
            self.resources = cgroups.create_resources(linux)
            self._record_provisional()
            master = self._serve(parent, ns, linux)
        finally:
            parent.close()
        pid_file = self.opts.get("pid-file")
        if pid_file:
            write_pid_file(pid_file, self.pid)
        return master

    def _serve(self, chan, ns, linux):
        """Map ids, join the cgroup, then answer the init until it closes the channel."""
        from . import hooks

        if ns.new_user:
            # The init waits for its ids to be mapped; oom_score_adj is written from out here,
            # where lowering it is allowed (outside a user namespace the init sets its own).
            ns.write_id_maps(self.pid, linux)
            adj = self.spec["process"].get("oomScoreAdj")
            if adj is not None:
                with open(f"/proc/{self.pid}/oom_score_adj", "w") as f:
                    f.write(str(adj))
            chan.send("go")
        # The init builds its rootfs meanwhile: making and joining a cgroup can wait on the
        # kernel (see warmup), and the init needs it only for its cgroup mount and before ready.
        assert self.cgroup is not None
        try:
            chan.send("cgroup", mounts=self.cgroup.container_mounts())
        except BrokenPipeError:
            pass
        self.cgroup.create(self.resources)
        try:
            chan.send("cgdirs")
            # Limits before the move: the init never runs under half-written rules (a v1
            # devices list is a deny-all followed by the allowed devices; /dev is being made).
            self.cgroup.set(self.resources)
            self.cgroup.apply(self.pid, self.resources)
            chan.send("joined")
        except BrokenPipeError:
            pass  # the init is gone; its error message (if any) is read below
        self._record()  # staged while the init finishes; published at its ready
        master = None
        recorded = False
        while True:
            msg = chan.recv()
            if msg is None:
                break
            kind = msg["t"]
            if kind == "error":
                raise InitError("unable to start container process: " + msg["msg"])
            if kind == "ready":
                self.container.publish()  # an error after this still undoes all
                recorded = True
            elif kind == "hooks":
                state = self._oci_state("creating")
                hooks.run_hooks(self.spec, "prestart", state)
                hooks.run_hooks(self.spec, "createRuntime", state)
                chan.send("resume")
            elif kind == "console":
                master = chan.recv_fd()
                if self.console_socket:
                    from .console import send_to_socket

                    send_to_socket(self.console_socket, master)
                    os.close(master)
                    master = None
        # EOF: the init either finished its setup or died without a word.
        stat = st.proc_stat(self.pid)
        if stat is None or stat[0] == "Z":
            raise InitError("unable to start container process: container init exited prematurely")
        if not recorded:
            self.container.publish()
        return master

    def _oci_state(self, status: str) -> dict:
        return {"ociVersion": self.spec.get("ociVersion", ""), "id": self.container.id, "status": status,
                "pid": self.pid, "bundle": self.bundle, "annotations": self.spec.get("annotations") or {}}

    def _record_provisional(self) -> None:
        """A record naming the cgroup before anything is made, so that even after a
        kill -9 of this process, ``delete`` finds what to clean up."""
        me = st.proc_stat(os.getpid())
        self.container.data = {
            "id": self.container.id, "init_pid": 0, "creator_pid": os.getpid(), "creator_start": me[1] if me else 0,
            "bundle": self.bundle, "rootfs": self.rootfs, "created": rfc3339_nano(time.time_ns()),
            "owner": "", "config": self.spec, "cgroup": self.cgroup.to_state() if self.cgroup else None,
        }
        self.container.save()

    def _record(self) -> None:
        """Stage the final record (init pid, start time, namespaces): published when the init is ready."""
        stat = st.proc_stat(self.pid)
        data = self.container.data
        for key in ("creator_pid", "creator_start"):
            data.pop(key, None)
        data.update(init_pid=self.pid, init_start=stat[1] if stat else 0,
                    namespaces={kind: f"/proc/{self.pid}/ns/{name}" for kind, name in _proc_ns_names(self.spec)})
        self.container.stage()

    def undo(self) -> None:
        """Leave nothing behind: kill the init, remove the cgroup and the state dir."""
        if self.pid:
            try:
                os.kill(self.pid, 9)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
        if self.cgroup is not None:
            try:
                self.cgroup.destroy()
            except Exception as e:  # cleanup must go on
                self.ctx.log.warning(f"removing cgroup: {e}")
        st.remove_dir(self.container.dir)


class InitConfig:
    """What the runtime hands its child across the clone (plain attributes)."""

    def __init__(self, **kw) -> None:
        self.__dict__.update(kw)

    spec: dict
    container_id: str
    bundle: str
    rootfs: str
    chan: Channel
    fifo_fd: int
    joins: list
    new_types: set
    unshare_flags: int
    no_pivot: bool
    preserve: int
    no_new_keyring: bool
    debug: bool
    seccomp_program: object


class InitError(DockyardError):
    """The container's init reported a failure during create."""


def _child(cfg, parent_end) -> None:
    # Close the runtime's ends first: if the runtime dies, reads here must see end of file.
    parent_end.close()
    from . import init

    init.run(cfg)


def _proc_ns_names(spec: dict):
    from ..kernel.consts import NAMESPACE_PROC_NAMES

    for ns in (spec.get("linux") or {}).get("namespaces") or []:
        yield ns["type"], NAMESPACE_PROC_NAMES[ns["type"]]


def write_pid_file(path: str, pid: int) -> None:
    """Write the pid atomically (temp file + rename), without a newline, as runc."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)
    os.rename(tmp, path)


def rfc3339_nano(ns: int) -> str:
    """Go's RFC3339Nano in UTC: fractional seconds without trailing zeros."""
    seconds, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"
