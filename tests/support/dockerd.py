"""A real dockerd, with its own containerd, in a throw-away directory, for interop tests.

    daemon = DockerDaemon(runtimes={"dockyard": "/path/to/dockyard-runtime"})
    daemon.start()                      # returns once GET /_ping answers
    daemon.load_busybox()               # busybox:latest from Debian's static busybox
    rc, out, err = daemon.docker("run", "--rm", "--runtime", "dockyard", "busybox", "true")
    daemon.stop()                       # always; leaves no process, mount or cgroup behind

On-disk layout (``name`` is ``dockyard-interop-<our pid>-<random>``)::

    /tmp/<name>/
        docker.sock  docker.pid       -H unix://...  --pidfile
        daemon.json  key.json         --config-file (the host's /etc/docker is never read or written)
        data/                         --data-root
        exec/                         --exec-root
          runtime-runc/moby/<id>/     every runtime's --root (dockerd 20.10 names it after runc)
        containerd/                   config.toml, containerd.sock, root/, state/, opt/
          state/io.containerd.runtime.v2.task/moby/<id>/   the bundle: config.json, log.json, init.pid
        run/                          mounted on /run in the daemon's mount namespace
        tmp/                          TMPDIR of containerd and the shims
        cli/                          DOCKER_CONFIG of the docker CLI
    <log_dir>/dockerd.log  containerd.log

Isolation. dockerd 20.10 reuses any containerd listening at
/run/containerd/containerd.sock, registers plugins under /run/docker/plugins,
and containerd-shim-runc-v2 1.6 puts its sockets in /run/containerd/s/: all
hard-coded. So containerd is started by us (``--containerd`` points dockerd at
it) inside a private mount namespace whose /run is ``run/`` above, and dockerd
joins that namespace; every mount they make (overlay2, netns, shm) stays in it
and dies with it. Networking: no bridge, no iptables/ip6tables rules, no
masquerading, and net.ipv4.ip_forward is not touched -- unless ``netns`` names a network
namespace file (tests/support/netns_host.py): then both daemons run inside it (nsenter --net)
with dockerd's default networking (docker0, iptables, userland proxy), all confined to it. Cgroups: containers go
under ``/<name>`` (``--cgroup-parent``, cgroupfs driver) and the daemons under
``/<name>/daemon`` in one hierarchy, so a sweep by name finds every process.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from tests.support import hostclean
from tests.support.daemonbase import DaemonBase, Result  # noqa: F401  (Result: re-exported)

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NO_HOST_NETWORKING = ("--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
                      "--ip-forward=false", "--userland-proxy=false")
# $1: cgroup.procs to join, $2: directory to mount on /run, then the command.
_IN_NEW_NAMESPACE = 'echo 0 > "$1" && mount -n --bind "$2" /run && shift 2 && exec "$@"'
_JOIN_CGROUP = 'echo 0 > "$1" && shift && exec "$@"'


class DaemonStartError(RuntimeError):
    """dockerd or containerd did not come up; the message carries the end of its log."""


class LeakError(RuntimeError):
    """stop() could not remove everything: processes, mounts or cgroups are left."""


def missing_prerequisites() -> list[str]:
    """Why the real daemon cannot run here (empty when it can)."""
    reasons = [] if os.geteuid() == 0 else ["not root"]
    for tool in ("dockerd", "containerd", "containerd-shim-runc-v2", "runc", "unshare", "nsenter",
                 "mount", "umount"):
        if shutil.which(tool, path=SYSTEM_PATH) is None:
            reasons.append(f"{tool} not found")
    if docker_cli() is None:
        reasons.append("docker CLI not found")
    if not os.path.exists("/bin/busybox"):
        reasons.append("/bin/busybox (busybox-static) not found")
    return reasons


def docker_cli() -> str | None:
    """The docker CLI to drive the daemon with: $DOCKYARD_DOCKER_CLI, else `docker` on PATH."""
    return os.environ.get("DOCKYARD_DOCKER_CLI") or shutil.which("docker")


def find_runtime_binary(name: str = "dockyard-runtime") -> str:
    """Our runtime's console script: next to this interpreter, else on PATH (absolute path)."""
    beside = os.path.join(sys.prefix, "bin", name)
    if os.path.exists(beside):
        return beside
    return shutil.which(name) or beside


class DockerDaemon(DaemonBase):
    """One dockerd + containerd pair, private to a test session."""

    def __init__(self, runtimes: dict[str, str] | None = None, *, storage_driver: str = "overlay2",
                 log_dir: str | None = None, tmp_parent: str = "/tmp", debug: bool = True,
                 start_timeout: float = 60.0, shutdown_timeout: int = 5,
                 extra_args: tuple[str, ...] = (), netns: str | None = None) -> None:
        self.runtimes = dict(runtimes or {})
        # a network namespace file (tests/support/netns_host.py): both daemons run in it WITH host
        # networking (docker0, iptables, userland proxy); None: the caller's netns and no networking
        self.netns = netns
        self.extra_args = tuple(extra_args)  # more dockerd flags, e.g. ("--default-runtime", "dockyard")
        self.storage_driver = storage_driver
        self.debug = debug
        self.start_timeout = start_timeout
        self.shutdown_timeout = shutdown_timeout
        self.base = tempfile.mkdtemp(prefix=f"{hostclean.PREFIX}{os.getpid()}-", dir=tmp_parent)
        self.name = os.path.basename(self.base)
        self.log_dir = log_dir or self.base
        self.cli = docker_cli() or "docker"
        self._procs: dict[str, subprocess.Popen] = {}
        self._logs: list[io.IOBase] = []
        self._mnt_ns: str | None = None
        self._stopped = False

    # -- paths -------------------------------------------------------------------------------
    @property
    def socket_path(self) -> str:
        return self.path("docker.sock")

    @property
    def runtime_root(self) -> str:
        """The --root every runtime gets (with dockerd 20.10, for all runtimes, not just runc)."""
        return self.path("exec", "runtime-runc", "moby")

    def bundle_dir(self, container_id: str) -> str:
        return self.path("containerd", "state", "io.containerd.runtime.v2.task", "moby", container_id)

    def container_cgroups(self, container_id: str) -> list[str]:
        """The container's cgroup directories that still exist, in any hierarchy."""
        return [d for d in hostclean.cgroup_dirs(self.name) if os.path.basename(d) == container_id]

    @property
    def dockerd_log(self) -> str:
        return os.path.join(self.log_dir, "dockerd.log")

    def log_tail(self, lines: int = 40, which: str = "dockerd") -> str:
        try:
            with open(os.path.join(self.log_dir, f"{which}.log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError as e:
            return f"(no log: {e})"

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start containerd then dockerd; fall back from overlay2 to vfs if overlay2 will not do."""
        try:
            try:
                self._launch()
            except DaemonStartError:
                if self.storage_driver != "overlay2":
                    raise
                self._teardown()
                os.replace(self.dockerd_log, os.path.join(self.log_dir, "dockerd-overlay2-failed.log"))
                shutil.rmtree(self.path("data"), ignore_errors=True)
                self.storage_driver = "vfs"
                self._launch()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the daemons, kill stragglers, unmount, remove cgroups and the directory.

        Idempotent. Raises LeakError if anything could not be removed.
        """
        if self._stopped:
            return
        self._stopped = True
        leaks = self._teardown()
        for f in self._logs:
            f.close()
        mounts = hostclean.remove_tree(self.base) if self.log_dir != self.base or not leaks else []
        if leaks or mounts:
            raise LeakError(f"{self.name}: left behind: {leaks + mounts}")

    def _launch(self) -> None:
        for d in ("data", "exec", "run", "tmp", "cli", "containerd/root", "containerd/state",
                  "containerd/opt"):
            os.makedirs(self.path(d), exist_ok=True)
        os.makedirs(self.log_dir, exist_ok=True)
        procs_file = self._tracking_cgroup()
        self._start_containerd(procs_file)
        self._start_dockerd(procs_file)

    def _env(self) -> dict[str, str]:
        env = {"PATH": SYSTEM_PATH, "HOME": self.base, "TMPDIR": self.path("tmp"), "LANG": "C.UTF-8"}
        env.update({k: v for k, v in os.environ.items() if k.startswith("DOCKYARD_")})
        return env

    def _spawn(self, what: str, argv: list[str]) -> subprocess.Popen:
        log = open(os.path.join(self.log_dir, f"{what}.log"), "ab")
        self._logs.append(log)
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=self._env(), cwd=self.base, start_new_session=True)
        self._procs[what] = proc
        return proc

    def _start_containerd(self, procs_file: str) -> None:
        config = self.path("containerd", "config.toml")
        with open(config, "w") as f:
            f.write(self._containerd_config())
        sock = self.path("containerd", "containerd.sock")
        enter_net = ["nsenter", f"--net={self.netns}", "--"] if self.netns else []
        proc = self._spawn("containerd", [
            *enter_net, "unshare", "--mount", "--propagation", "private", "--", "sh", "-c", _IN_NEW_NAMESPACE, "sh",
            procs_file, self.path("run"), "containerd", "--config", config])
        self._wait_until("containerd", proc, lambda: _connects(sock), timeout=30)
        self._mnt_ns = os.readlink(f"/proc/{proc.pid}/ns/mnt")

    def _containerd_config(self) -> str:
        q = json.dumps  # a TOML basic string is a JSON string for these paths
        return "\n".join([
            "version = 2",
            f"root = {q(self.path('containerd', 'root'))}",
            f"state = {q(self.path('containerd', 'state'))}",
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
            "[grpc]", f"  address = {q(self.path('containerd', 'containerd.sock'))}",
            "[debug]", f"  address = {q(self.path('containerd', 'debug.sock'))}",
            f"  level = {q('debug' if self.debug else 'info')}",
            '[plugins."io.containerd.internal.v1.opt"]', f"  path = {q(self.path('containerd', 'opt'))}",
            ""])

    def _start_dockerd(self, procs_file: str) -> None:
        with open(self.path("daemon.json"), "w") as f:
            json.dump({"deprecated-key-path": self.path("key.json")}, f)
        ns = [f"--net={self.netns}"] if self.netns else []
        argv = [
            "nsenter", f"--mount=/proc/{self._procs['containerd'].pid}/ns/mnt", *ns, "--",
            "sh", "-c", _JOIN_CGROUP, "sh", procs_file,
            "dockerd", "--config-file", self.path("daemon.json"),
            "--data-root", self.path("data"), "--exec-root", self.path("exec"),
            "-H", self.host, "--pidfile", self.path("docker.pid"),
            "--containerd", self.path("containerd", "containerd.sock"),
            "--storage-driver", self.storage_driver,
            "--cgroup-parent", self.cgroup_parent, "--exec-opt", "native.cgroupdriver=cgroupfs",
            "--shutdown-timeout", str(self.shutdown_timeout),
            *(() if self.netns else NO_HOST_NETWORKING),
        ]
        for name, path in self.runtimes.items():
            argv += ["--add-runtime", f"{name}={os.path.abspath(path)}"]
        if self.debug:
            argv.append("--debug")
        argv += self.extra_args
        proc = self._spawn("dockerd", argv)
        self._wait_until("dockerd", proc, self.ping, timeout=self.start_timeout)

    def _wait_until(self, what: str, proc: subprocess.Popen, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                raise DaemonStartError(f"{what} exited with {proc.returncode}:\n{self.log_tail(which=what)}")
            if time.monotonic() > deadline:
                raise DaemonStartError(f"{what} not ready after {timeout}s:\n{self.log_tail(which=what)}")
            time.sleep(0.05)

    def _teardown(self) -> list[str]:
        """Stop both daemons and remove every trace but the directory; return what would not go."""
        self._terminate("dockerd", self.shutdown_timeout + 10)
        self._terminate("containerd", 10)
        survivors = hostclean.kill_everything(self.name, self._mnt_ns, needle=self.base)
        for proc in self._procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                survivors.add(proc.pid)
        self._procs.clear()
        mounts = hostclean.unmount_under(self.base)
        cgroups = hostclean.remove_cgroups(self.name)
        return [f"process {p}" for p in sorted(survivors)] + [f"mount {m}" for m in mounts] + \
            [f"cgroup {c}" for c in cgroups]

    def _terminate(self, what: str, timeout: float) -> None:
        proc = self._procs.get(what)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    # -- client ------------------------------------------------------------------------------
    def load_busybox(self, tag: str = "busybox:latest") -> str:
        """Build a static-busybox rootfs, `docker import` it as ``tag`` with CMD ["sh"]; return the image id."""
        scripts = str(REPO / "scripts")
        if scripts not in sys.path:
            sys.path.insert(0, scripts)
        from busybox_bundle import make_rootfs

        rootfs = self.path("busybox-rootfs")
        make_rootfs(rootfs)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(rootfs, arcname=".", filter=_owned_by_root)
        shutil.rmtree(rootfs)
        r = self.docker("import", "--change", 'CMD ["sh"]', "-", tag, input=buf.getvalue(), timeout=120)
        if r.rc != 0:
            raise DaemonStartError(f"docker import failed: {r}")
        return r.stdout.strip()


def _owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _connects(path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(1)
            s.connect(path)
        return True
    except OSError:
        return False
